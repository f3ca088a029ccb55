"""Reductions, Softmax and the normalizations: ops whose cost is per row of m elements."""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from toolkit.analysis.attributes import softmax_axes
from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import Shape, numel, pretty
from toolkit.analysis.ops.base import NodeContext, NodeResult, normalize_axis, rule

# op -> (cost of reducing m elements to one, math template)
REDUCTIONS: dict[str, tuple[Callable[[sp.Expr], Counts], str]] = {
    "ReduceSum": (lambda m: Counts(add=m - 1), "sum"),
    "ReduceMean": (lambda m: Counts(add=m - 1, div=1), "mean"),
    "ReduceMax": (lambda m: Counts(cmp=m - 1), "max"),
    "ReduceMin": (lambda m: Counts(cmp=m - 1), "min"),
    "ReduceProd": (lambda m: Counts(mul=m - 1), "prod"),
    "ReduceSumSquare": (lambda m: Counts(mul=m, add=m - 1), "sum of squares"),
    "ReduceL1": (lambda m: Counts(add=m - 1), "sum of |x|"),
    "ReduceL2": (lambda m: Counts(mul=m, add=m - 1, sqrt=1), "sqrt of sum of squares"),
    "ReduceLogSum": (lambda m: Counts(add=m - 1, log=1), "ln of sum"),
    "ReduceLogSumExp": (lambda m: Counts(exp=m, add=m - 1, log=1), "ln of sum of exp"),
}
def reduce_axes(ctx: NodeContext, rank: int) -> list[int] | None:
    """The reduced axes; None means no reduction at all (empty axes with noop_with_empty_axes)."""
    given = ctx.param("axes")
    values = None if given is None else given.value
    if given is not None and values is None:
        return list(range(rank))  # axes only known at run time: not analyzable exactly
    axes = [] if values is None else [int(a) for a in values.reshape(-1)]
    if not axes:
        return None if int(ctx.attr("noop_with_empty_axes")) else list(range(rank))
    return sorted(normalize_axis(a, rank, ctx) for a in axes)


@rule(*REDUCTIONS)
def reduction(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axes = reduce_axes(ctx, x.rank)
    cost_of, verb = REDUCTIONS[ctx.op]
    if axes is None:
        out = ctx.out(x.dims)
        return NodeResult([out], Counts(), f"{out.name} = {ctx.name(0)} (no axes: identity)")
    keep = int(ctx.attr("keepdims"))
    shape = tuple(sp.Integer(1) if a in axes else d for a, d in enumerate(x.dims) if keep or a not in axes)
    out = ctx.out(shape)
    m = numel([x.dims[a] for a in axes])
    scope = "the whole tensor" if len(axes) == x.rank else f"axes {axes}"
    return NodeResult([out], cost_of(m) * out.numel, f"{out.name} = {verb} of {ctx.name(0)} over {scope}"
                      f" ({pretty(m)} elements per output)")


def softmax_rows(ctx: NodeContext, shape: Shape) -> tuple[sp.Expr, sp.Expr]:
    """(rows, n): opset 13 normalizes one axis; older opsets flatten from `axis` on."""
    axis = normalize_axis(int(ctx.attr("axis")), len(shape), ctx)
    n = numel([shape[a] for a in softmax_axes(axis, len(shape), ctx.opset)])
    return numel(shape) / n, n


@rule("Softmax", "LogSoftmax")
def softmax(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    out = ctx.out(x.dims)
    rows, n = softmax_rows(ctx, x.dims)
    if ctx.op == "Softmax":
        per_row = Counts(exp=n, add=n - 1, div=n)
        math = f"{out.name} = exp({ctx.name(0)}) / sum exp({ctx.name(0)}) along the axis ({n} per row)"
    else:
        per_row = Counts(exp=n, add=2 * n - 1, log=1)
        math = f"{out.name} = {ctx.name(0)} - ln(sum exp({ctx.name(0)})) along the axis ({n} per row)"
    return NodeResult([out], per_row * rows, math)


@rule("BatchNormalization")
def batch_norm(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    out = ctx.out(x.dims)
    channels = x.dims[1]
    cost = Counts(mul=x.numel, add=2 * x.numel + channels, div=x.numel, sqrt=channels)
    math = (f"{out.name}[n,c,..] = ({ctx.name(0)}[n,c,..] - {ctx.name(3)}[c]) / sqrt({ctx.name(4)}[c] + eps)"
            f" * {ctx.name(1)}[c] + {ctx.name(2)}[c]")
    return NodeResult([out], cost, math)


@rule("LayerNormalization")
def layer_norm(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axis = normalize_axis(int(ctx.attr("axis")), x.rank, ctx)
    n = numel(x.dims[axis:])
    rows = numel(x.dims[:axis])
    has_bias = ctx.input(2) is not None
    per_row = Counts(mul=2 * n, add=3 * n - 1 + has_bias * n, div=n + 2, sqrt=1)
    outputs = [ctx.out(x.dims)]
    stats_shape = (*x.dims[:axis], *(sp.Integer(1),) * (x.rank - axis))
    outputs += [ctx.out(stats_shape, index=i) for i in range(1, len(ctx.node.output)) if ctx.node.output[i]]
    bias = f" + {ctx.name(2)}" if has_bias else ""
    math = (f"{outputs[0].name} = ({ctx.name(0)} - mean) / sqrt(var + eps) * {ctx.name(1)}{bias}, "
            f"mean and var over the last {x.rank - axis} axes ({n} per row)")
    return NodeResult(outputs, per_row * rows, math)


