"""A node's attributes decoded once, for the analyzer's rules and the counting interpreter alike.

Values come from the node; an attribute the node leaves out takes the default its op's schema states
(`onnx.defs.get_schema(op_type, opset, domain)`), so no default is copied into our code. The parameters that
moved between attribute and input across opsets (MOVED) are told apart here and nowhere else: before the move
they decode to the attribute's value, from it to a FromInput naming the input that carries them. How the two
callers read an input differs (formulas there, arrays here), so each resolves a FromInput itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeAlias

import onnx
from onnx import defs, helper

STANDARD_DOMAINS = ("", "ai.onnx")
LATEST_OPSET = defs.onnx_opset_version()
SOFTMAX_ONE_AXIS_SINCE = 13  # before it Softmax, LogSoftmax and Hardmax coerce the input to 2-D at `axis`
# An attribute's Python type is its schema's (int, float, str, a list of them, a TensorProto, a GraphProto, or a
# FromInput here), which depends on the op and the name: no static type can say which, so readers get Any, as from
# onnx.helper.get_attribute_value, and the rule that reads one converts it as its schema says.
AttributeValue: TypeAlias = Any


@dataclass(frozen=True)
class FromInput:
    """A parameter this node's opset passes as input `index`; `absent` is what it means when that input is not
    given (None: nothing, the parameter is not set)."""

    index: int
    absent: object = None


@dataclass(frozen=True)
class Moved:
    """A parameter that is an attribute before opset `since` and input `index` from it on."""

    index: int
    since: int
    absent: object = None  # its meaning when the input is not given: the spec states it in prose, not as a default
    schema_default: bool = True  # before `since`, an attribute left out takes the schema's default


_REDUCE_OPS = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
               "ReduceProd", "ReduceSumSquare")

# op -> parameter -> where it moved
MOVED: dict[str, dict[str, Moved]] = {
    "ReduceSum": {"axes": Moved(1, 13)},
    **{op: {"axes": Moved(1, 18)} for op in _REDUCE_OPS},
    # Clip 6-10's schema defaults (-+FLT_MAX) bound nothing: a bound left out is no bound, as an absent input is
    "Clip": {"min": Moved(1, 11, schema_default=False), "max": Moved(2, 11, schema_default=False)},
    "DFT": {"dft_length": Moved(1, 17), "axis": Moved(2, 20, absent=-2)},  # dft_length: an input since DFT began
    "Slice": {name: Moved(i, 10) for i, name in enumerate(("starts", "ends", "axes", "steps"), start=1)},
    "Squeeze": {"axes": Moved(1, 13)},
    "Unsqueeze": {"axes": Moved(1, 13)},
    "Split": {"split": Moved(1, 13)},
    "Pad": {"pads": Moved(1, 11), "value": Moved(2, 11, absent=0.0), "axes": Moved(3, 18)},
}


@dataclass(frozen=True)
class Attributes:
    """One node's attributes by name: every one its op's schema knows (the node's value, else the schema's
    default, else None) and the moved parameters (a value, or a FromInput). An unknown name is a KeyError."""

    values: Mapping[str, AttributeValue]
    given: tuple[str, ...]  # the names the node itself sets, in its order

    def __getitem__(self, name: str) -> AttributeValue:
        return self.values[name]


def plain(value: AttributeValue) -> AttributeValue:
    """Strings as str, not the bytes protobuf holds them as."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def decode(node: onnx.NodeProto, opset: int) -> Attributes:
    """Every attribute of `node` at the model's default-domain `opset`, decoded once."""
    given = {a.name: plain(helper.get_attribute_value(a)) for a in node.attribute}
    defaults = schema_defaults(node.op_type, opset, node.domain)
    values = {name: None if d is None else plain(helper.get_attribute_value(d)) for name, d in defaults.items()}
    values.update(given)
    moved = MOVED.get(node.op_type, {}) if node.domain in STANDARD_DOMAINS else {}
    for name, where in moved.items():
        if opset >= where.since:
            values[name] = FromInput(where.index, where.absent)
        elif name not in given:
            values[name] = values.get(name) if where.schema_default else where.absent
    return Attributes(values, tuple(given))


@cache
def schema_defaults(op_type: str, opset: int, domain: str = "") -> Mapping[str, onnx.AttributeProto | None]:
    """Each attribute the op's schema at `opset` knows -> its default (None: the schema has none). An attribute
    a later version added takes the default of the version that added it: ONNX adds attributes with the default
    that keeps the older behaviour (Shape's start and end at 15, Reshape's allowzero at 14), so the earlier
    version means the same. No schema at all (a custom op): no defaults."""
    found: dict[str, onnx.AttributeProto | None] = {}
    for schema in schema_versions(op_type, opset, "" if domain in STANDARD_DOMAINS else domain):
        for name, attribute in schema.attributes.items():
            if name not in found:
                found[name] = attribute.default_value if attribute.default_value.type else None
    return found


def schema_versions(op_type: str, opset: int, domain: str) -> list[defs.OpSchema]:
    """The op's schema in force at `opset`, then each later version of it, oldest first."""
    versions: list[defs.OpSchema] = []
    for version in range(opset, max(opset, LATEST_OPSET) + 1):
        try:
            schema = defs.get_schema(op_type, version, domain)
        except defs.SchemaError:
            continue
        if not versions or schema.since_version != versions[-1].since_version:
            versions.append(schema)
    return versions


def softmax_axes(axis: int, rank: int, opset: int) -> list[int]:
    """The axes one Softmax / LogSoftmax / Hardmax row spans, `axis` already in [0, rank): that axis alone from
    opset 13, every axis from it to the end before."""
    return [axis] if opset >= SOFTMAX_ONE_AXIS_SINCE else list(range(axis, rank))
