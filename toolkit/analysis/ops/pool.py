"""Pooling: a window of k taps per output element, padding taps included (the naive loop visits them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import numel
from toolkit.analysis.ops.base import NodeContext, NodeResult, rule
from toolkit.analysis.ops.windows import sliding_output, window_of

# op -> (cost of one window of k taps, or of reducing m elements, and the math's verb)
CostOf = Callable[[sp.Expr], Counts]
POOLS: dict[str, tuple[CostOf, str]] = {"MaxPool": (lambda k: Counts(cmp=k - 1), "max"),
                                        "AveragePool": (lambda k: Counts(add=k - 1, div=1), "mean")}
GLOBAL_POOLS: dict[str, tuple[CostOf, str]] = {"GlobalAveragePool": (lambda m: Counts(add=m - 1, div=1), "mean"),
                                               "GlobalMaxPool": (lambda m: Counts(cmp=m - 1), "max")}


@rule(*POOLS)
def pool(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape"))
    window = window_of(ctx, x.dims[2:], kernel)
    spatial, constraints = sliding_output(ctx, window, x.dims[2:], bool(ctx.attr("ceil_mode")))
    out = ctx.out((*x.dims[:2], *spatial))
    outputs = [out] + ([ctx.out(out.shape, 7, index=1)] if len(ctx.node.output) > 1 and ctx.node.output[1] else [])
    cost_of, verb = POOLS[ctx.op]
    taps = int(np.prod(kernel))
    math = (f"{out.name}[n,c,..] = {verb} of {ctx.name(0)}[n,c,..] over a {'x'.join(map(str, kernel))} window, "
            f"strides {list(window.strides)}")
    return NodeResult(outputs, cost_of(taps) * out.numel, math, constraints=constraints)


@rule(*GLOBAL_POOLS)
def global_pool(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    out = ctx.out((*x.dims[:2], *(1,) * (x.rank - 2)))
    cost_of, verb = GLOBAL_POOLS[ctx.op]
    m = numel(x.dims[2:])
    return NodeResult([out], cost_of(m) * out.numel, f"{out.name}[n,c] = {verb} of {ctx.name(0)}[n,c,..] "
                      f"over all {m} spatial positions")
