"""Control flow: If, Scan and Loop, counted by propagating their bodies in the scope the node sees.

If: both branches are counted and reported. A condition known before the run (a constant, or computed from
shapes and inputs the user fixes) picks the branch: as a formula in the input dims it is decided once they are
bound (counts and dims are Piecewise until then), or at the bound dims when its branches differ in rank. A
condition the data decides leaves the rule's total unstated: analyze then bounds it by the two branches (or takes
the branch --branch fixes).
Scan and Loop: the body's cost once, times the number of iterations, which must be known before the run; a body
whose carried shapes change from one iteration to the next is refused (its cost per iteration would differ).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from onnx import TensorProto

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import Shape, pretty
from toolkit.analysis.ops.base import Branches, NodeContext, NodeResult, Subgraph, Tensor, normalize_axis, rule
from toolkit.errors import ToolkitError

LABELS = ("then", "else")


def condition_of(ctx: NodeContext, i: int) -> sp.Basic | None:
    """A boolean input's value: sympy true / false, a formula in the input dims, or None (decided by data)."""
    value = ctx.known(i)
    if value is None:
        return None
    return sp.sympify(np.asarray(value).reshape(-1)[0])


def decided(condition: sp.Basic | None) -> bool | None:
    return bool(condition) if condition in (sp.true, sp.false) else None


def either(condition: sp.Basic | None, a: object, b: object) -> sp.Expr | None:
    """a where the condition holds, else b; equal sides need no condition, an unknown condition no answer."""
    if a == b:
        return sp.sympify(a)
    return None if condition is None else sp.Piecewise((a, condition), (b, True))


def merged_shape(condition: sp.Basic | None, a: Tensor, b: Tensor) -> Shape | None:
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return None
    dims = [either(condition, x, y) for x, y in zip(a.shape, b.shape, strict=True)]
    return None if any(d is None for d in dims) else tuple(dims)


def mergeable(a: Subgraph, b: Subgraph) -> bool:
    """Whether every output of the two branches has one shape formula across both (equal ranks)."""
    return all(x.shape is not None and y.shape is not None and len(x.shape) == len(y.shape)
               for x, y in zip(a.outputs, b.outputs, strict=True))


def merged_counts(condition: sp.Basic, a: Counts, b: Counts) -> Counts:
    return Counts({k: either(condition, a[k], b[k]) for k in set(a.kinds()) | set(b.kinds())})


def branch_runs(ctx: NodeContext) -> tuple[dict[str, Subgraph], dict[str, str]]:
    """Both branches propagated; a branch that cannot be is kept as its reason (it may be the one not taken)."""
    runs, failed = {}, {}
    for label in LABELS:
        try:
            runs[label] = ctx.body(f"{label}_branch", [])
        except ToolkitError as error:
            failed[label] = str(error)
    return runs, failed


@rule("If")
def if_op(ctx: NodeContext) -> NodeResult:
    condition = condition_of(ctx, 0)
    runs, failed = branch_runs(ctx)
    text = ctx.name(0) if condition is None else f"{ctx.name(0)} = {condition}"
    taken = decided(condition)
    if taken is None and condition is not None and (failed or not mergeable(runs["then"], runs["else"])):
        # a condition on the dims whose branches give different ranks (Silero VAD's squeeze when batch is 1), or
        # one of which cannot be propagated: no formula spans both, so the dims decide it now, and the formulas
        # hold where the condition is decided the same way
        taken = bool(condition.subs(ctx.bindings))
        text += f" (decided at these dims: {'true' if taken else 'false'}; the formulas hold only where it is)"
        condition = sp.true if taken else sp.false
    label = None if taken is None else LABELS[0] if taken else LABELS[1]
    if failed and (label is None or label in failed):  # the branch that runs (or either) cannot be counted
        raise ToolkitError(failed.get(label or "", next(iter(failed.values()))))
    branches = Branches(text, condition, {lab: (run.dense, run.effective) for lab, run in runs.items()}, failed)
    math = f"{', '.join(ctx.node.output)} = the then branch if {text}, else the else branch"
    if label is not None:
        chosen = runs[label]
        outputs = [ctx.out(t.shape, t.dtype, index=i, value=t.value) for i, t in enumerate(chosen.outputs)]
        return NodeResult(outputs, chosen.dense, math, chosen.effective, chosen.constraints, branches)
    then, other = runs["then"], runs["else"]
    outputs = [ctx.out(merged_shape(condition, a, b), a.dtype, index=i)
               for i, (a, b) in enumerate(zip(then.outputs, other.outputs, strict=True))]
    if condition is None:
        return NodeResult(outputs, None, math, branches=branches)
    constraints = [(either(condition, e, 0), why) for e, why in then.constraints] + \
        [(either(condition, 0, e), why) for e, why in other.constraints]
    return NodeResult(outputs, merged_counts(condition, then.dense, other.dense), math,
                      merged_counts(condition, then.effective, other.effective), constraints, branches)


def same_shapes(ctx: NodeContext, before: list[Tensor], after: list[Tensor]) -> None:
    """Loop-carried tensors must keep their shapes, or each iteration would cost something else."""
    for a, b in zip(before, after, strict=True):
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape) or \
                any(sp.simplify(x - y) != 0 for x, y in zip(a.shape, b.shape, strict=True)):
            raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): carried value '{b.name}' changes shape from "
                               f"{a.shape} to {b.shape} across iterations; not counted")


def stacked(ctx: NodeContext, per_iteration: list[Tensor], count: sp.Expr, axes: list[int], first: int) -> list[Tensor]:
    """Scan outputs: each iteration's tensor stacked along its axis, `count` long."""
    outputs = []
    for k, tensor in enumerate(per_iteration):
        axis = normalize_axis(axes[k] if k < len(axes) else 0, tensor.rank + 1, ctx)
        dims = list(tensor.dims)
        dims.insert(axis, count)
        outputs.append(ctx.out(tuple(dims), tensor.dtype, index=first + k))
    return outputs


def repeated(ctx: NodeContext, body: Subgraph, count: sp.Expr, outputs: list[Tensor], what: str) -> NodeResult:
    math = f"{', '.join(ctx.node.output)} = {what}, {pretty(count)} iterations of the body"
    return NodeResult(outputs, body.dense * count, math, body.effective * count,
                      [(sp.sympify(e), why) for e, why in body.constraints])


@rule("Scan")
def scan(ctx: NodeContext) -> NodeResult:
    """Opset 9 and later: states first, then the scanned inputs, sliced along their scan axes."""
    if ctx.opset < 9:
        raise ToolkitError(f"node '{ctx.node.name}' (Scan): opset {ctx.opset} Scan (with sequence_lens) has no rule")
    scanned = int(ctx.attr("num_scan_inputs"))
    inputs = [ctx.require(i) for i in range(len(ctx.node.input))]
    states, sequences = inputs[:len(inputs) - scanned], inputs[len(inputs) - scanned:]
    axes = [normalize_axis(int(a), t.rank, ctx) for a, t in
            zip(ctx.attr("scan_input_axes") or [0] * scanned, sequences, strict=True)]
    count = sequences[0].dims[axes[0]]
    slices = [Tensor(t.name, t.dtype, tuple(d for j, d in enumerate(t.dims) if j != a))
              for t, a in zip(sequences, axes, strict=True)]
    body = ctx.body("body", [Tensor(t.name, t.dtype, t.shape) for t in states] + slices)
    final = body.outputs[:len(states)]
    same_shapes(ctx, states, final)
    outputs = [ctx.out(t.shape, t.dtype, index=i) for i, t in enumerate(final)]
    outputs += stacked(ctx, body.outputs[len(states):], count, list(ctx.attr("scan_output_axes") or []),
                       len(states))
    return repeated(ctx, body, count, outputs, f"scan over axis {axes[0]} of {ctx.name(len(states))}")


def trip_count(ctx: NodeContext, body_condition: sp.Basic | None) -> sp.Expr:
    """Iterations of a Loop: M, when the condition can never stop it earlier; else unknown before the run."""
    start = condition_of(ctx, 1) if ctx.input(1) is not None else sp.true
    if decided(start) is False:
        return sp.Integer(0)
    if decided(start) is None or decided(body_condition) is not True:
        raise ToolkitError(f"node '{ctx.node.name}' (Loop): the loop ends when a condition computed at run time "
                           "turns false; its trip count is unknown before the run")
    if ctx.input(0) is None or ctx.known(0) is None:
        raise ToolkitError(f"node '{ctx.node.name}' (Loop): the trip count M is not known before the run")
    return sp.sympify(np.asarray(ctx.known(0)).reshape(-1)[0])


@rule("Loop")
def loop(ctx: NodeContext) -> NodeResult:
    """The body sees the iteration number (no value) and the condition (its initial value); the carried values by
    shape only, so a condition the body finds true holds in every iteration, not just the first."""
    carried = [ctx.require(i) for i in range(2, len(ctx.node.input))]
    start = ctx.input(1)
    condition = Tensor("cond", TensorProto.BOOL, (), None if start is None else start.value)
    if start is None:
        condition.value = np.array(True)
    inputs = [Tensor("iteration", TensorProto.INT64, ()), condition] + \
        [Tensor(t.name, t.dtype, t.shape) for t in carried]
    body = ctx.body("body", inputs)
    body_condition = None if body.outputs[0].value is None else sp.sympify(body.outputs[0].value.reshape(-1)[0])
    count = trip_count(ctx, body_condition)
    final = body.outputs[1:1 + len(carried)]
    same_shapes(ctx, carried, final)
    outputs = [ctx.out(t.shape, t.dtype, index=i) for i, t in enumerate(final)]
    outputs += stacked(ctx, body.outputs[1 + len(carried):], count, [], len(carried))
    return repeated(ctx, body, count, outputs, "loop")
