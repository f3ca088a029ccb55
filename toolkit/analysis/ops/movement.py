"""Data movement and shape computation: no arithmetic, but they decide the shapes everything else costs.

Values are carried where known (constants numerically, Shape arithmetic as sympy) so that Reshape, Slice,
Expand... get exact output dims from shape-computing subgraphs.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from onnx import TensorProto, helper, numpy_helper

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import assume_nonnegative, numel, pretty
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, normalize_axis, rule
from toolkit.analysis.ops.broadcast import broadcast_shapes
from toolkit.errors import ToolkitError

BIG = 2**31  # Slice ends at or beyond this mean "to the end"


def no_cost(outputs: list[Tensor], math: str) -> NodeResult:
    return NodeResult(outputs, Counts(), math)


def needs_value(ctx: NodeContext, i: int, what: str) -> np.ndarray:
    return known_value(ctx, ctx.input(i), f"{what} (input {i})")


def known_value(ctx: NodeContext, tensor: Tensor | None, what: str) -> np.ndarray:
    if tensor is None or tensor.value is None:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): {what} is computed at run time; "
                           "only shapes known before the run can be analyzed")
    return tensor.value


def as_dims(values: np.ndarray) -> tuple[sp.Expr, ...]:
    return tuple(sp.sympify(v) for v in np.asarray(values).reshape(-1))


def dim_list(ctx: NodeContext, name: str) -> list[sp.Expr] | None:
    """Sizes or indices some opsets give as an attribute and others as an input (ctx.param): numbers or
    formulas; None when the node gives none."""
    tensor = ctx.param(name)
    return None if tensor is None else list(as_dims(known_value(ctx, tensor, name)))


def required_dims(ctx: NodeContext, name: str) -> list[sp.Expr]:
    """As dim_list, for a parameter the op cannot do without (Slice's starts and ends, Pad's pads)."""
    values = dim_list(ctx, name)
    if values is None:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): {name} is not given")
    return values


def int_list(ctx: NodeContext, name: str) -> list[int] | None:
    """As dim_list, where the values must be numbers (axes, steps)."""
    values = dim_list(ctx, name)
    if values is not None and not all(v.is_Integer for v in values):
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): {name} must be numbers, not formulas")
    return None if values is None else [int(v) for v in values]


@rule("Identity", "Dropout")
def identity(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    outputs = [ctx.out(x.dims)]
    if ctx.op == "Dropout" and len(ctx.node.output) > 1 and ctx.node.output[1]:
        outputs.append(ctx.out(x.dims, TensorProto.BOOL, index=1))
    return no_cost(outputs, f"{outputs[0].name} = {ctx.name(0)}")


@rule("Cast")
def cast(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    to = int(ctx.attr("to"))
    same = " (same type: a no-op)" if to == x.dtype else ""
    out = ctx.out(x.dims, to)
    type_name = helper.tensor_dtype_to_string(to).removeprefix("TensorProto.")
    return no_cost([out], f"{out.name} = ({type_name}) {ctx.name(0)}{same}")


@rule("Constant")
def constant(ctx: NodeContext) -> NodeResult:
    name = ctx.attrs.given[0]
    value = ctx.attr(name)
    if name in ("value", "sparse_value"):
        array = numpy_helper.to_array(value if name == "value" else value.values)
        dtype = value.data_type if name == "value" else value.values.data_type
    else:
        array = np.asarray(value, dtype=np.float32 if "float" in name else np.int64)
        dtype = helper.np_dtype_to_tensor_dtype(array.dtype) if name != "value_string" else TensorProto.STRING
    out = ctx.out(array.shape, dtype, value=array)
    shown = format(float(array.reshape(-1)[0]), "g") if array.size == 1 and array.dtype.kind in "fiu" else \
        f"a constant {list(array.shape)} tensor"
    return no_cost([out], f"{out.name} = {shown}")


@rule("Shape")
def shape_of(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    start, end = int(ctx.attr("start")), ctx.attr("end")
    dims = list(x.dims)[slice(start, None if end is None else int(end))]
    out = ctx.out((len(dims),), TensorProto.INT64)
    return no_cost([out], f"{out.name} = shape of {ctx.name(0)}")


@rule("Size")
def size_of(ctx: NodeContext) -> NodeResult:
    out = ctx.out((), TensorProto.INT64)
    return no_cost([out], f"{out.name} = number of elements of {ctx.name(0)} ({pretty(ctx.require(0).numel)})")


@rule("Reshape")
def reshape(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    target = list(as_dims(needs_value(ctx, 1, "the target shape")))
    allow_zero = int(ctx.attr("allowzero"))
    dims = [x.dims[i] if d == 0 and not allow_zero else d for i, d in enumerate(target)]
    if sum(1 for d in dims if d == -1) > 1:
        raise ToolkitError(f"node '{ctx.node.name}' (Reshape): more than one -1 in the target shape")
    if -1 in dims:
        known = numel([d for d in dims if d != -1])
        dims[dims.index(-1)] = sp.simplify(x.numel / known)
    out = ctx.out(tuple(dims))
    return no_cost([out], f"{out.name} = {ctx.name(0)} reshaped to {[str(d) for d in dims]}")


@rule("Flatten")
def flatten(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axis = int(ctx.attr("axis"))
    axis = axis if axis >= 0 else axis + x.rank
    out = ctx.out((numel(x.dims[:axis]), numel(x.dims[axis:])))
    return no_cost([out], f"{out.name} = {ctx.name(0)} flattened to 2-D at axis {axis}")


@rule("Unsqueeze")
def unsqueeze(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axes = int_list(ctx, "axes") or []
    rank = x.rank + len(axes)
    axes = sorted(normalize_axis(a, rank, ctx) for a in axes)
    dims = list(x.dims)
    for a in axes:
        dims.insert(a, sp.Integer(1))
    out = ctx.out(tuple(dims))
    return no_cost([out], f"{out.name} = {ctx.name(0)} with new axes {axes} of size 1")


@rule("Squeeze")
def squeeze(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axes = int_list(ctx, "axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.dims) if d == 1]
    axes = [normalize_axis(a, x.rank, ctx) for a in axes]
    dims = tuple(d for i, d in enumerate(x.dims) if i not in axes)
    out = ctx.out(dims)
    return no_cost([out], f"{out.name} = {ctx.name(0)} without axes {sorted(axes)}")


@rule("Transpose")
def transpose(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    perm = [int(p) for p in (ctx.attr("perm") or range(x.rank - 1, -1, -1))]
    out = ctx.out(tuple(x.dims[p] for p in perm))
    return no_cost([out], f"{out.name} = {ctx.name(0)} with axes permuted {perm}")


@rule("Concat")
def concat(ctx: NodeContext) -> NodeResult:
    parts = [ctx.require(i) for i in range(len(ctx.node.input))]
    axis = normalize_axis(int(ctx.attr("axis")), parts[0].rank, ctx)
    dims = list(parts[0].dims)
    dims[axis] = sum((p.dims[axis] for p in parts), sp.Integer(0))
    out = ctx.out(tuple(dims))
    return no_cost([out], f"{out.name} = concatenation of {len(parts)} tensors along axis {axis}")


def clamped(value: sp.Expr, low: sp.Expr, high: sp.Expr, why: str, constraints: list[tuple[sp.Expr, str]]
            ) -> sp.Expr:
    """value held within [low, high]; where sympy cannot compare them, inside is assumed and recorded."""
    if not assume_nonnegative(value - low, f"{why} at or after {pretty(low)}", constraints):
        return sp.sympify(low)
    if not assume_nonnegative(high - value, f"{why} at or before {pretty(high)}", constraints):
        return sp.sympify(high)
    return value


def slice_length(dim: sp.Expr, start: sp.Expr, end: sp.Expr, step: int, constraints: list[tuple[sp.Expr, str]],
                 where: str) -> sp.Expr:
    """Elements a slice keeps along one axis, with ONNX's clamping of starts and ends. Where the answer depends on
    a comparison sympy cannot make (a formula index against a formula dim), the in-range case is taken and the
    assumption joins the constraints, so that dims where it fails are refused."""
    low, high = (sp.Integer(0), dim) if step > 0 else (sp.Integer(-1), dim - 1)

    def place(index: sp.Expr) -> sp.Expr:
        if index.is_Integer and index >= BIG:
            return high
        if index.is_Integer and index <= -BIG:
            return low
        why = f"{where} needs its index {pretty(index)}"
        value = index if assume_nonnegative(index, f"{why} counted from the front", constraints) else dim + index
        return clamped(value, low, high, f"{why} inside the axis", constraints)
    first, last = place(start), place(end)
    length = sp.ceiling((last - first) / step)
    return length if assume_nonnegative(length, f"{where} keeps 0 or more elements", constraints) else sp.Integer(0)


@rule("Slice")
def slice_op(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    starts, ends = required_dims(ctx, "starts"), required_dims(ctx, "ends")
    axes = int_list(ctx, "axes") or list(range(len(starts)))
    steps = int_list(ctx, "steps") or [1] * len(starts)
    dims = list(x.dims)
    slices = [slice(None)] * x.rank
    constraints: list[tuple[sp.Expr, str]] = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = normalize_axis(axis, x.rank, ctx)
        dims[axis] = slice_length(x.dims[axis], start, end, step, constraints, f"node '{ctx.node.name}' (Slice)")
        slices[axis] = slice(start, end, step)
    out = ctx.out(tuple(dims))
    shown = ", ".join(":" if s.start is None else f"{pretty(s.start)}:{pretty(s.stop)}:{s.step}" for s in slices)
    return NodeResult([out], Counts(), f"{out.name} = {ctx.name(0)}[{shown}]", constraints=constraints)


@rule("Gather")
def gather(ctx: NodeContext) -> NodeResult:
    data, indices = ctx.require(0), ctx.require(1)
    axis = normalize_axis(int(ctx.attr("axis")), data.rank, ctx)
    dims = (*data.dims[:axis], *indices.dims, *data.dims[axis + 1:])
    out = ctx.out(dims)
    return no_cost([out], f"{out.name} = {ctx.name(0)} indexed by {ctx.name(1)} along axis {axis}")


@rule("Split")
def split(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axis = normalize_axis(int(ctx.attr("axis")), x.rank, ctx)
    sizes = int_list(ctx, "split")
    count = len(ctx.node.output)
    if sizes is None:
        length = x.dims[axis]
        chunk = sp.ceiling(length / count)
        sizes = [chunk] * (count - 1) + [length - chunk * (count - 1)]
    outputs = []
    for i, size in enumerate(sizes):
        dims = list(x.dims)
        dims[axis] = sp.sympify(size)
        outputs.append(ctx.out(tuple(dims), index=i))
    return no_cost(outputs, f"{', '.join(ctx.node.output)} = {ctx.name(0)} split along axis {axis} "
                            f"into {[str(s) for s in sizes]}")


@rule("Pad")
def pad(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    pads = required_dims(ctx, "pads")
    axes = int_list(ctx, "axes")
    axes = [normalize_axis(a, x.rank, ctx) for a in axes] if axes else list(range(x.rank))
    dims = list(x.dims)
    for i, axis in enumerate(axes):
        dims[axis] = dims[axis] + pads[i] + pads[i + len(axes)]
    out = ctx.out(tuple(dims))
    shown = [pretty(p) for p in pads]
    return no_cost([out], f"{out.name} = {ctx.name(0)} padded ({ctx.attr('mode')}) by {shown}")


@rule("ConstantOfShape")
def constant_of_shape(ctx: NodeContext) -> NodeResult:
    dims = as_dims(needs_value(ctx, 0, "the shape"))
    fill = ctx.attr("value")
    dtype = fill.data_type if fill is not None else TensorProto.FLOAT
    out = ctx.out(dims, dtype)
    return no_cost([out], f"{out.name} = a {[str(d) for d in dims]} tensor filled with one value")


@rule("Expand")
def expand(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    target = as_dims(needs_value(ctx, 1, "the target shape"))
    out = ctx.out(broadcast_shapes([x.dims, target], f"node '{ctx.node.name}' (Expand)"))
    return no_cost([out], f"{out.name} = {ctx.name(0)} broadcast to {[str(d) for d in out.dims]}")


@rule("Tile")
def tile(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    repeats = as_dims(needs_value(ctx, 1, "the repeats"))
    out = ctx.out(tuple(d * r for d, r in zip(x.dims, repeats, strict=True)))
    return no_cost([out], f"{out.name} = {ctx.name(0)} tiled {[str(r) for r in repeats]} times")


@rule("Range")
def range_op(ctx: NodeContext) -> NodeResult:
    start, limit, delta = (sp.sympify(needs_value(ctx, i, name).reshape(-1)[0])
                           for i, name in enumerate(("start", "limit", "delta")))
    length = sp.ceiling((limit - start) / delta)
    constraints: list[tuple[sp.Expr, str]] = []
    if not assume_nonnegative(length, f"node '{ctx.node.name}' (Range) counts its elements", constraints):
        length = sp.Integer(0)
    out = ctx.out((length,))
    return NodeResult([out], Counts(add=sp.Max(length - 1, 0)),
                      f"{out.name} = {start}, {start} + {delta}, ... below {pretty(limit)} (each the previous + "
                      f"{delta})", constraints=constraints)
