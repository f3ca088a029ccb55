"""What every operator rule gets and gives: the registry, the node context and the node result.

A rule is one function per op family that returns shape, cost and math together (see DESIGN.md), so that the
three can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import onnx
import sympy as sp
from onnx import helper

from toolkit.analysis.attributes import Attributes, AttributeValue, FromInput, decode
from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import Shape, numel
from toolkit.errors import ToolkitError


@dataclass
class Tensor:
    """A tensor during propagation. `value` is known for constants (numeric) and for shape arithmetic (sympy)."""

    name: str
    dtype: int
    shape: Shape | None
    value: np.ndarray | None = None
    constant: bool = False

    @property
    def dims(self) -> Shape:
        """The shape a rule needs (NodeContext.require has checked it is known): unknown is an error."""
        if self.shape is None:
            raise ToolkitError(f"tensor '{self.name}' has unknown rank; give the model static ranks")
        return self.shape

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def numel(self) -> sp.Expr:
        return numel(self.shape or ())

    def const_value(self) -> np.ndarray | None:
        """The numeric value if this tensor is a constant, else None."""
        if self.constant and self.value is not None and self.value.dtype != object:
            return self.value
        return None


@dataclass
class NodeResult:
    outputs: list[Tensor]
    dense: Counts | None  # None = this op has no cost rule: reported as "not counted", never as zero
    math: str
    effective: Counts | None = None  # None = same as dense
    constraints: list[tuple[sp.Expr, str]] = field(default_factory=list)  # (expr >= 0, why)
    branches: Branches | None = None  # an If: both branches' costs and its condition


@dataclass(frozen=True)
class Branches:
    """An If's two costs. `condition` is a sympy boolean in the input dims (decided once they are bound) or None
    when data decides it at run time: then the rule states no total, only what each branch costs (analyze
    bounds the node by them, toolkit.analysis.run_time_branches)."""

    condition_text: str
    condition: sp.Basic | None
    costs: dict[str, tuple[Counts, Counts]]  # "then" / "else" -> (dense, effective)
    not_counted: dict[str, str] = field(default_factory=dict)  # a branch not taken that could not be propagated


@dataclass
class Subgraph:
    """A control-flow body as propagated: its outputs and the cost of running it once."""

    outputs: list[Tensor]
    dense: Counts
    effective: Counts
    constraints: list[tuple[sp.Expr, str]]


Bindings = Mapping[sp.Symbol, int]  # the input dims' values this analysis is made at


@dataclass
class NodeContext:
    node: onnx.NodeProto
    inputs: list[Tensor | None]
    opset: int
    # propagates a body (If branch, Loop or Scan body) given its inputs, in the scope the node sees
    subgraph: Callable[[onnx.GraphProto, list[Tensor]], Subgraph] | None = None
    # the dims' values: only for what no formula can carry (an If on the dims whose branches differ in rank)
    bindings: Bindings = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attrs: Attributes = decode(self.node, self.opset)

    @property
    def op(self) -> str:
        return self.node.op_type

    def attr(self, name: str) -> AttributeValue:
        """The node's value, else its schema's default (None where the schema has none)."""
        return self.attrs[name]

    def param(self, name: str) -> Tensor | None:
        """A parameter some opsets give as an attribute and others as an input (attributes.MOVED): that input,
        or the attribute's value as a constant; None when the node gives it neither way."""
        source = self.attrs[name]
        if isinstance(source, FromInput):
            if self.input(source.index) is not None or source.absent is None:
                return self.input(source.index)
            source = source.absent
        if source is None:
            return None
        value = np.asarray(source)
        return Tensor(name, helper.np_dtype_to_tensor_dtype(value.dtype), tuple(sp.Integer(d) for d in value.shape),
                      value, constant=True)

    def body(self, name: str, inputs: list[Tensor]) -> Subgraph:
        """The graph attribute `name` (an If branch, a Loop or Scan body) propagated with these inputs."""
        if self.subgraph is None:
            raise ToolkitError(f"node '{self.node.name}' ({self.op}): its {name} cannot be propagated here")
        return self.subgraph(self.attr(name), inputs)

    def input(self, i: int) -> Tensor | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def require(self, i: int) -> Tensor:
        tensor = self.input(i)
        if tensor is None or tensor.shape is None:
            raise ToolkitError(f"node '{self.node.name}' ({self.op}) needs input {i} with a known shape")
        return tensor

    def const(self, i: int) -> np.ndarray | None:
        tensor = self.input(i)
        return None if tensor is None else tensor.const_value()

    def known(self, i: int) -> np.ndarray | None:
        """The input's value if known at all: a constant, or shape arithmetic in sympy."""
        tensor = self.input(i)
        return None if tensor is None else tensor.value

    def out(self, shape: Shape | None, dtype: int | None = None, index: int = 0,
            value: np.ndarray | None = None) -> Tensor:
        first = next((t for t in self.inputs if t is not None), None)
        return Tensor(self.node.output[index], dtype if dtype is not None else (first.dtype if first else 1),
                      None if shape is None else tuple(sp.sympify(d) for d in shape), value)

    def name(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else "?"


Rule = Callable[[NodeContext], NodeResult]
RULES: dict[str, Rule] = {}
Fn = TypeVar("Fn", bound=Callable[..., object])


def registrar(table: dict[str, Fn]) -> Callable[..., Callable[[Fn], Fn]]:
    """A decorator that registers one function in `table` under each op type it is given."""
    def register_as(*op_types: str) -> Callable[[Fn], Fn]:
        def register(fn: Fn) -> Fn:
            for op_type in op_types:
                table[op_type] = fn
            return fn
        return register
    return register_as


rule = registrar(RULES)  # one function as the shape + cost + math rule of these op types


def normalize_axis(axis: int, rank: int, ctx: NodeContext) -> int:
    if not -rank <= axis < rank:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): axis {axis} is out of range for rank {rank}")
    return axis % rank


def dtype_size(dtype: int) -> int:
    return int(np.dtype(helper.tensor_dtype_to_np_dtype(dtype)).itemsize) if dtype else 4
