"""Which graph-input dim flows to which axis of each tensor, and what role an operator gives that axis.

This is how explain knows, without reading any dim name, that openWakeWord's first output axis is the batch:
it is an unchanged copy of input dim 0, which Conv treats as its batch axis N.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx

from toolkit.explain.graph import GraphView, attribute


@dataclass(frozen=True)
class Axis:
    """One axis: the input axis it is an unchanged copy of (if any), the input axes it depends on, and its role."""

    origin: tuple[str, int] | None = None
    sources: frozenset[tuple[str, int]] = frozenset()
    role: str | None = None
    role_by: str | None = None

    def derived(self, role: str | None = None, role_by: str | None = None) -> Axis:
        """The same dependence with a changed size: no longer an unchanged copy."""
        return Axis(None, self.sources, role or self.role, role_by or self.role_by)

    def with_role(self, role: str, role_by: str) -> Axis:
        return Axis(self.origin, self.sources, role, role_by)


NEW = Axis()
Axes = list[Axis]
Rule = Callable[[GraphView, onnx.NodeProto, list[Axes | None]], list[Axes] | None]


def _merge(a: Axis, b: Axis) -> Axis:
    """Broadcasting two aligned axes: a constant (dependence-free) side takes the other side's identity."""
    if not a.sources and not b.sources:
        return a if a.role else b
    if not b.sources:
        return a
    if not a.sources:
        return b
    origin = a.origin if a.origin == b.origin else None
    return Axis(origin, a.sources | b.sources, a.role or b.role, a.role_by or b.role_by)


def _broadcast(inputs: list[Axes | None]) -> Axes | None:
    known = [axes for axes in inputs if axes is not None]
    if len(known) != len(inputs):
        return None
    rank = max(len(axes) for axes in known)
    out = [NEW] * rank
    for axes in known:
        for i, axis in enumerate(axes):
            position = rank - len(axes) + i
            out[position] = _merge(out[position], axis)
    return out


def _elementwise(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    merged = _broadcast(inputs)
    return None if merged is None else [merged]


def _first(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    return None if inputs[0] is None else [inputs[0]] * len(node.output)


def axes_input(view: GraphView, node: onnx.NodeProto) -> list[int] | None:
    """Axes from input 1 (newer opsets) or the `axes` attribute (older); None when absent."""
    if len(node.input) > 1 and node.input[1]:
        value = view.const(node.input[1])
        return None if value is None else [int(v) for v in value.reshape(-1)]
    axes = attribute(node, "axes")
    return None if axes is None else [int(v) for v in axes]


def _unsqueeze(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    axes = axes_input(view, node)
    if inputs[0] is None or axes is None:
        return None
    rank = len(inputs[0]) + len(axes)
    inserted = sorted(a % rank for a in axes)
    source = iter(inputs[0])
    return [[NEW if i in inserted else next(source) for i in range(rank)]]


def _squeeze(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    axes = axes_input(view, node)
    if inputs[0] is None or axes is None:
        return None
    removed = {a % len(inputs[0]) for a in axes}
    return [[axis for i, axis in enumerate(inputs[0]) if i not in removed]]


def _transpose(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    if inputs[0] is None:
        return None
    perm = attribute(node, "perm") or list(reversed(range(len(inputs[0]))))
    return [[inputs[0][p] for p in perm]]


def _conv(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    """Conv reads axis 0 as the batch N and axis 1 as channels; strided spatial axes become frames."""
    data = inputs[0]
    if data is None:
        return None
    by = view.name(node)
    strides = attribute(node, "strides") or [1] * (len(data) - 2)
    spatial = [
        axis.derived("frames" if stride > 1 else axis.role, by) for axis, stride in zip(data[2:], strides, strict=False)
    ]
    return [[data[0].with_role("batch", by), Axis(role="channels", role_by=by), *spatial]]


def _matmul(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    a, b = inputs
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    batch = _broadcast([a[:-2], b[:-2]]) or []
    features = b[-1] if b[-1].sources else Axis(role="features", role_by=view.name(node))
    return [[*batch, a[-2], features]]


def _reduce(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    data = inputs[0]
    if data is None:
        return None
    reduced = reduced_axes(view, node, len(data))
    if reduced is None:
        return None
    if attribute(node, "keepdims", 1):
        return [[Axis(role="reduced", role_by=view.name(node)) if i in reduced else a for i, a in enumerate(data)]]
    return [[a for i, a in enumerate(data) if i not in reduced]]


def reduced_axes(view: GraphView, node: onnx.NodeProto, rank: int) -> set[int] | None:
    """The axes a Reduce* node reduces (all of them when no axes are given), or None if not constant."""
    has_axes_input = len(node.input) > 1 and node.input[1]
    axes = axes_input(view, node)
    if has_axes_input and axes is None:
        return None
    if not axes:
        return set() if attribute(node, "noop_with_empty_axes", 0) else set(range(rank))
    return {a % rank for a in axes}


def _slice(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    """Sliced axes change size (no longer copies) but keep their dependence and role."""
    data = inputs[0]
    if data is None:
        return None
    touched = _axes_input_at(view, node, 3, len(data))
    return [[a.derived() if i in touched else a for i, a in enumerate(data)]]


def _pad(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    """Padded axes (a nonzero pad on either side) change size but keep their dependence and role."""
    data = inputs[0]
    pads = view.const(node.input[1]) if len(node.input) > 1 else None
    if data is None or pads is None or (len(node.input) > 3 and node.input[3]):
        return None
    rank = len(data)
    touched = {i for i in range(rank) if pads[i] or pads[i + rank]}
    return [[a.derived() if i in touched else a for i, a in enumerate(data)]]


def _axes_input_at(view: GraphView, node: onnx.NodeProto, index: int, rank: int) -> set[int]:
    """Axes named by input `index`; every axis when that input is absent (the op's default) or unknown."""
    value = view.const(node.input[index]) if len(node.input) > index and node.input[index] else None
    if value is None:
        return set(range(rank))
    return {int(a) % rank for a in value.reshape(-1)}


def _stft(view: GraphView, node: onnx.NodeProto, inputs: list[Axes | None]) -> list[Axes] | None:
    data = inputs[0]
    if data is None or len(data) not in (2, 3):  # [batch, samples] or [batch, samples, 1]
        return None
    by = view.name(node)
    return [[data[0].with_role("batch", by), data[1].derived("frames", by), Axis(role="bins", role_by=by), NEW]]


RULES: dict[str, Rule] = {
    **dict.fromkeys(
        ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less", "Greater"),
        _elementwise,
    ),
    **dict.fromkeys(
        ("Log", "Exp", "Sqrt", "Abs", "Neg", "Relu", "Cast", "Identity", "Sigmoid", "Tanh", "Erf", "Reciprocal",
         "Floor", "Ceil", "Sin", "Cos", "Clip", "LeakyRelu", "Softplus", "Round", "Sign"),
        _first,
    ),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Conv": _conv,
    "MatMul": _matmul,
    **dict.fromkeys(
        ("ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceL1",
         "ReduceProd", "ReduceLogSumExp"),
        _reduce,
    ),
    "Slice": _slice,
    "Pad": _pad,
    "STFT": _stft,
}


# Ops whose inputs after the first are parameters (bounds, weights, axes), not data that broadcasts.
_DATA_ONLY = frozenset({"Clip", "Conv", "STFT", "Slice", "Pad", "Unsqueeze", "Squeeze", "Transpose", "Cast"})


def propagate(view: GraphView) -> dict[str, Axes]:
    """Axes of every tensor whose axes could be followed from the graph inputs (constants have no sources)."""
    axes: dict[str, Axes] = {}
    for value in view.inputs:
        dims = value.type.tensor_type.shape.dim
        axes[value.name] = [Axis((value.name, i), frozenset({(value.name, i)})) for i in range(len(dims))]
    for name, array in view.constants.items():
        axes[name] = [NEW] * array.ndim
    for node in view.nodes:
        rule = RULES.get(node.op_type)
        if rule is None or all(name in view.constants for name in node.output):
            continue
        inputs = [axes.get(name) for name in node.input if name]
        if node.op_type in _DATA_ONLY:
            inputs = inputs[:1]
        results = rule(view, node, inputs)
        for name, result in zip(node.output, results or [], strict=False):
            axes[name] = result
    return axes


def holds_samples(value: onnx.ValueInfoProto) -> bool:
    """True when a graph input can be audio: [samples], [batch, samples], [batch, 1, samples] or of unknown
    shape. A [1, 16, 96] input (openWakeWord's classifiers) holds features, so the walk from it does not start
    on the samples."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return True
    return all(dim.HasField("dim_value") and dim.dim_value == 1 for dim in tensor_type.shape.dim[1:-1])


def along_samples(view: GraphView, tensor: str, axis: int) -> bool:
    """False when the axis is known to carry input dims other than the audio's samples (the first input's last
    dim): a mean over the batch or a feature axis is no DC removal. Unknown axes are left to the domain."""
    axes = view.axes.get(tensor)
    audio = view.axes.get(view.inputs[0].name) if view.inputs else None
    if axes is None or not audio or not -len(axes) <= axis < len(axes):
        return True
    sources = axes[axis].sources
    return not sources or (view.inputs[0].name, len(audio) - 1) in sources
