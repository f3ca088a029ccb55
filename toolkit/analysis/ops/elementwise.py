"""Elementwise ops: arithmetic with broadcasting, unary math, compares and Clip."""

from __future__ import annotations

import numpy as np
import sympy as sp
from onnx import TensorProto

from toolkit.analysis.counts import Counts
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, rule
from toolkit.analysis.ops.broadcast import broadcast_shapes, nary_effective_ops

# op -> (kind of its one operation, symbol, which operands can make it a no-op, and the constants that do)
BINARY: dict[str, tuple[str, str, dict[int, tuple[float, ...]]]] = {
    "Add": ("add", "+", {0: (0.0,), 1: (0.0,)}),
    "Sub": ("add", "-", {1: (0.0,)}),
    "Mul": ("mul", "*", {0: (0.0, 1.0), 1: (0.0, 1.0)}),
    "Div": ("div", "/", {1: (1.0,)}),
}
VARIADIC = {"Sum": ("add", (0.0,)), "Max": ("cmp", (-np.inf, np.inf)), "Min": ("cmp", (-np.inf, np.inf))}
COMPARES = {"Equal": "==", "Less": "<", "Greater": ">", "LessOrEqual": "<=", "GreaterOrEqual": ">="}

# unary op -> (counts per element, math template)
UNARY = {
    "Relu": (Counts(cmp=1), "max({x}, 0)"),
    "Abs": (Counts(), "|{x}|"),
    "Neg": (Counts(), "-{x}"),
    "Not": (Counts(), "not {x}"),
    "Reciprocal": (Counts(div=1), "1 / {x}"),
    "Sigmoid": (Counts(exp=1, add=1, div=1), "1 / (1 + exp(-{x}))"),
    "Tanh": (Counts(tanh=1), "tanh({x})"),
    "Log": (Counts(log=1), "ln({x})"),
    "Exp": (Counts(exp=1), "exp({x})"),
    "Sqrt": (Counts(sqrt=1), "sqrt({x})"),
    "Erf": (Counts(erf=1), "erf({x})"),
    "Sin": (Counts(sin=1), "sin({x})"),
    "Cos": (Counts(cos=1), "cos({x})"),
    "Floor": (Counts(floor=1), "floor({x})"),
    "Ceil": (Counts(ceil=1), "ceil({x})"),
    "Round": (Counts(round=1), "round({x})"),
    "Softplus": (Counts(exp=1, add=1, log=1), "ln(1 + exp({x}))"),
}


def shown(value: np.ndarray | None, name: str) -> str:
    """How an operand reads in math: small constants by value, tensors by name."""
    if value is not None and value.size == 1:
        return format(float(value.reshape(-1)[0]), "g")
    return name


def operand(ctx: NodeContext, i: int) -> str:
    return shown(ctx.const(i), ctx.name(i))


def skip_mask(ctx: NodeContext, i: int, no_op_values: tuple[float, ...]) -> np.ndarray | None:
    value = ctx.const(i)
    if value is None or not no_op_values:
        return None
    return np.isin(value.astype(np.float64), no_op_values)


def elementwise_out(ctx: NodeContext, dtype: int | None = None) -> Tensor:
    shapes = [ctx.require(i).dims for i in range(len(ctx.node.input)) if ctx.node.input[i]]
    return ctx.out(broadcast_shapes(shapes, f"node '{ctx.node.name}' ({ctx.op})"), dtype)


@rule(*BINARY)
def binary(ctx: NodeContext) -> NodeResult:
    kind, symbol, no_ops = BINARY[ctx.op]
    out = elementwise_out(ctx)
    masks = [skip_mask(ctx, i, no_ops.get(i, ())) for i in range(2)]
    effective = Counts({kind: nary_effective_ops(out.dims, masks)})
    return NodeResult([out], Counts({kind: out.numel}),
                      f"{out.name} = {operand(ctx, 0)} {symbol} {operand(ctx, 1)}", effective)


@rule(*VARIADIC)
def variadic(ctx: NodeContext) -> NodeResult:
    kind, no_op_values = VARIADIC[ctx.op]
    out = elementwise_out(ctx)
    n = len(ctx.node.input)
    masks = [skip_mask(ctx, i, no_op_values) for i in range(n)]
    names = ", ".join(operand(ctx, i) for i in range(n))
    math = f"{out.name} = {' + '.join(operand(ctx, i) for i in range(n))}" if ctx.op == "Sum" else \
        f"{out.name} = {ctx.op.lower()}({names}) elementwise"
    return NodeResult([out], Counts({kind: (n - 1) * out.numel}), math,
                      Counts({kind: nary_effective_ops(out.dims, masks)}))


@rule("Mean")
def mean(ctx: NodeContext) -> NodeResult:
    out = elementwise_out(ctx)
    n = len(ctx.node.input)
    masks = [skip_mask(ctx, i, (0.0,)) for i in range(n)]
    terms = " + ".join(operand(ctx, i) for i in range(n))
    return NodeResult([out], Counts(add=(n - 1) * out.numel, div=out.numel), f"{out.name} = ({terms}) / {n}",
                      Counts(add=nary_effective_ops(out.dims, masks), div=out.numel))


@rule(*COMPARES)
def compare(ctx: NodeContext) -> NodeResult:
    out = elementwise_out(ctx, TensorProto.BOOL)
    return NodeResult([out], Counts(cmp=out.numel),
                      f"{out.name} = {operand(ctx, 0)} {COMPARES[ctx.op]} {operand(ctx, 1)}")


def pow_cost(exponent: np.ndarray | None, out_numel: sp.Expr) -> Counts:
    """Per element: a constant positive-integer exponent p costs p - 1 muls, anything else one 'pow'."""
    if exponent is None:
        return Counts(pow=out_numel)
    p = exponent.astype(np.float64).reshape(-1)
    integral = (p == np.round(p)) & (p >= 1)
    replication = out_numel / p.size
    return Counts(mul=int((p[integral] - 1).sum()) * replication, pow=int((~integral).sum()) * replication)


@rule("Pow")
def power(ctx: NodeContext) -> NodeResult:
    base = ctx.require(0)
    out = ctx.out(broadcast_shapes([base.dims, ctx.require(1).dims], f"node '{ctx.node.name}' (Pow)"))
    return NodeResult([out], pow_cost(ctx.const(1), out.numel), f"{out.name} = {operand(ctx, 0)} ^ {operand(ctx, 1)}")


@rule(*UNARY)
def unary(ctx: NodeContext) -> NodeResult:
    per_element, template = UNARY[ctx.op]
    out = ctx.out(ctx.require(0).dims)
    return NodeResult([out], per_element * out.numel, f"{out.name} = {template.format(x=ctx.name(0))}")


@rule("LeakyRelu")
def leaky_relu(ctx: NodeContext) -> NodeResult:
    out = ctx.out(ctx.require(0).dims)
    alpha = ctx.attr("alpha")
    return NodeResult([out], Counts(mul=out.numel, cmp=out.numel),
                      f"{out.name} = max({ctx.name(0)}, {alpha:g} * {ctx.name(0)})")


def clip_bounds(ctx: NodeContext) -> list[tuple[str, str, np.ndarray | None]]:
    """(side, how it reads, constant value or None) for each bound the node gives."""
    bounds = [(side, ctx.param(side)) for side in ("min", "max")]
    return [(side, shown(b.const_value(), b.name), b.const_value()) for side, b in bounds if b is not None]


@rule("Clip")
def clip(ctx: NodeContext) -> NodeResult:
    out = ctx.out(ctx.require(0).dims)
    bounds = clip_bounds(ctx)
    free = sum(1 for _, _, value in bounds if value is not None and np.all(np.isinf(value)))
    text = ctx.name(0)
    for side, shown, _ in bounds:
        text = f"{'max' if side == 'min' else 'min'}({text}, {shown})"
    return NodeResult([out], Counts(cmp=len(bounds) * out.numel), f"{out.name} = {text}",
                      Counts(cmp=(len(bounds) - free) * out.numel))


@rule("Mod")
def mod(ctx: NodeContext) -> NodeResult:
    """One 'mod' per output element, named like a special function: a remainder is not a plain div."""
    out = elementwise_out(ctx)
    sign = "dividend" if int(ctx.attr("fmod")) else "divisor"
    return NodeResult([out], Counts(mod=out.numel),
                      f"{out.name} = {operand(ctx, 0)} mod {operand(ctx, 1)} (sign of the {sign})")


@rule("Where")
def where(ctx: NodeContext) -> NodeResult:
    shapes = [ctx.require(i).dims for i in range(3)]
    out = ctx.out(broadcast_shapes(shapes, f"node '{ctx.node.name}' (Where)"), ctx.require(1).dtype)
    return NodeResult([out], Counts(), f"{out.name} = {ctx.name(1)} where {ctx.name(0)} else {ctx.name(2)}")
