"""Gathers and scatters by index tensors: GatherElements, GatherND, ScatterElements, ScatterND.

Gathers only move data. A scatter writes its updates into a copy of data; with a reduction each update element
costs one operation against the value already there (add: add, mul: mul, max and min: cmp), duplicates included.
Gather itself lives with the shape ops (movement.py): it carries shape values.
"""

from __future__ import annotations

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import pretty
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, normalize_axis, rule
from toolkit.errors import ToolkitError

# reduction attribute -> the kind of its one operation per update element (none: a plain write)
SCATTER_KINDS = {"none": None, "add": "add", "mul": "mul", "max": "cmp", "min": "cmp"}


def tuple_length(ctx: NodeContext, indices: Tensor) -> int:
    """The last dim of a *ND op's indices: how many leading data dims each index tuple addresses."""
    k = indices.dims[-1]
    if not k.is_Integer:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): the last dim of the indices must be known")
    return int(k)


@rule("GatherElements")
def gather_elements(ctx: NodeContext) -> NodeResult:
    data, indices = ctx.require(0), ctx.require(1)
    axis = normalize_axis(int(ctx.attr("axis")), data.rank, ctx)
    out = ctx.out(indices.dims, data.dtype)
    return NodeResult([out], Counts(), f"{out.name}[p] = {ctx.name(0)}[p with coordinate {axis} "
                                       f"replaced by {ctx.name(1)}[p]]")


@rule("GatherND")
def gather_nd(ctx: NodeContext) -> NodeResult:
    data, indices = ctx.require(0), ctx.require(1)
    batch, k = int(ctx.attr("batch_dims")), tuple_length(ctx, indices)
    out = ctx.out((*indices.dims[:-1], *data.dims[batch + k:]), data.dtype)
    return NodeResult([out], Counts(), f"{out.name} = slices of {ctx.name(0)} at the {k}-tuples of {ctx.name(1)}"
                                       f"{f' ({batch} batch dims)' if batch else ''}")


@rule("ScatterElements", "ScatterND")
def scatter(ctx: NodeContext) -> NodeResult:
    data, indices, updates = ctx.require(0), ctx.require(1), ctx.require(2)
    reduction = str(ctx.attr("reduction"))
    if reduction not in SCATTER_KINDS:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): unknown reduction '{reduction}'")
    if ctx.op == "ScatterND":
        places = f"the {tuple_length(ctx, indices)}-tuples of {ctx.name(1)}"
    else:
        places = f"{ctx.name(1)} along axis {normalize_axis(int(ctx.attr('axis')), data.rank, ctx)}"
    out = ctx.out(data.dims)
    kind = SCATTER_KINDS[reduction]
    verb = "written" if kind is None else f"combined by {reduction}"
    return NodeResult([out], Counts() if kind is None else Counts({kind: updates.numel}),
                      f"{out.name} = {ctx.name(0)} with the {pretty(updates.numel)} elements of {ctx.name(2)} "
                      f"{verb} at {places}")
