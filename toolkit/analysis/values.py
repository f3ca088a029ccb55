"""Values of shape arithmetic: sympy expressions in the input dims, carried through the ops that compute shapes.

Numeric values are folded by onnx's reference evaluator (propagate.fold_values); this table covers what it cannot
compute: tensors whose values are formulas, such as Shape(waveforms) = [batch_size, N] and everything computed from
it, so that a Pad, Slice or Reshape sized from the input's length gets an exact symbolic size. A value holds sympy
objects (object dtype) until every element is a number again, then it is an ordinary numeric array.

Integer division and remainders follow ONNX (truncation; Mod's sign from the divisor unless fmod): where sympy
cannot tell a quotient's sign, the non-negative case is taken and recorded as a constraint, so dims outside it are
refused rather than guessed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import cast

import numpy as np
import sympy as sp
from onnx import helper

from toolkit.analysis.dims import assume_nonnegative
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, registrar

Constraints = list[tuple[sp.Expr, str]]
ValueFn = Callable[[NodeContext, Tensor, Constraints], np.ndarray | None]
VALUES: dict[str, ValueFn] = {}
value_rule = registrar(VALUES)  # one function as the value rule of these op types


def is_integer_dtype(dtype: int) -> bool:
    return np.dtype(helper.tensor_dtype_to_np_dtype(dtype)).kind in "iu" if dtype else False


def fixed_shape(tensor: Tensor) -> tuple[int, ...] | None:
    """The tensor's shape as ints, or None when a dim is a formula (no array can hold such a value)."""
    if tensor.shape is None or not all(sp.sympify(d).is_Integer for d in tensor.shape):
        return None
    return tuple(int(d) for d in tensor.shape)


def operands(ctx: NodeContext) -> list[np.ndarray] | None:
    """Every given input's value as an object array, or None if one is unknown."""
    values = [ctx.known(i) for i, name in enumerate(ctx.node.input) if name]
    if any(v is None for v in values):
        return None
    return [np.asarray(v).astype(object) for v in values]


def quotient(a: sp.Expr, b: sp.Expr, integer: bool, where: str, constraints: Constraints) -> sp.Expr:
    """a / b: ONNX truncates integer division toward zero."""
    q = sp.sympify(a) / sp.sympify(b)
    if not integer:
        return q
    if q.is_integer:
        return q
    return sp.floor(q) if assume_nonnegative(q, f"{where} divides shape values as non-negative numbers", constraints) \
        else sp.ceiling(q)


def remainder(a: sp.Expr, b: sp.Expr, fmod: bool, where: str, constraints: Constraints) -> sp.Expr:
    """a mod b as a - b q, q floored (the divisor's sign, Mod's default) or truncated (fmod): the floor form keeps
    frame counts recognizable (N - (N - 400) mod 160 is 400 + 160 floor((N - 400)/160))."""
    a, b = sp.sympify(a), sp.sympify(b)
    q = quotient(a, b, True, where, constraints) if fmod else sp.floor(a / b)
    return sp.expand(a - b * q)


def numeric(tensor: Tensor | None) -> np.ndarray | None:
    """The tensor's value when it is known and holds numbers (slice bounds and indices must be numbers)."""
    value = None if tensor is None else tensor.value
    return None if value is None or np.asarray(value).dtype == object else np.asarray(value)


def settle(value: np.ndarray, dtype: int) -> np.ndarray:
    """A value whose elements are all numbers again becomes a numeric array of the tensor's type."""
    flat = [sp.sympify(v) for v in value.reshape(-1)]
    if all(v in (sp.true, sp.false) for v in flat):
        return np.array([bool(v) for v in flat], dtype=bool).reshape(value.shape)
    if all(v.is_Number for v in flat):
        np_type = helper.tensor_dtype_to_np_dtype(dtype) if dtype else np.int64
        return np.array([int(v) if v.is_Integer else float(v) for v in flat]).astype(np_type).reshape(value.shape)
    return np.array(flat, dtype=object).reshape(value.shape)


@value_rule("Shape")
def shape_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray:
    start, end = int(ctx.attr("start")), ctx.attr("end")
    return np.array(list(ctx.require(0).dims)[slice(start, None if end is None else int(end))], dtype=object)


@value_rule("Size")
def size_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray:
    return np.array(ctx.require(0).numel, dtype=object)


@value_rule("Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshaped_value(ctx: NodeContext, out: Tensor, constraints: Constraints) -> np.ndarray | None:
    """Same elements, new shape. A cast to an integer type truncates, as the division does."""
    value, shape = ctx.known(0), fixed_shape(out)
    if value is None or shape is None:
        return None
    value = np.asarray(value).astype(object)
    if ctx.op == "Cast" and is_integer_dtype(out.dtype):
        where = f"node '{ctx.node.name}' (Cast)"
        value = np.vectorize(lambda v: quotient(v, 1, True, where, constraints), otypes=[object])(value)
    return value.reshape(shape)


@value_rule("Transpose")
def transposed_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    value = ctx.known(0)
    perm = ctx.attr("perm")
    return None if value is None else np.transpose(np.asarray(value), None if perm is None else list(perm))


@value_rule("Concat")
def concat_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    values = operands(ctx)
    return None if values is None else np.concatenate(values, axis=int(ctx.attr("axis")))


@value_rule("Slice")
def slice_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    """numpy's slicing clamps starts and ends exactly as ONNX does, for either sign of step."""
    value = ctx.known(0)
    given = [ctx.param(name) for name in ("starts", "ends", "axes", "steps")]
    params = [numeric(tensor) for tensor in given]
    if value is None or any(p is None and tensor is not None for p, tensor in zip(params, given, strict=True)):
        return None
    starts, ends, axes, steps = ([int(v) for v in p.reshape(-1)] if p is not None else None for p in params)
    if starts is None or ends is None:  # the Slice rule has refused the node already
        return None
    value = np.asarray(value)
    slices = [slice(None)] * value.ndim
    for i, axis in enumerate(axes or range(len(starts))):
        slices[axis] = slice(starts[i], ends[i], steps[i] if steps else 1)
    return value[tuple(slices)]


@value_rule("Gather")
def gather_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    value, indices = ctx.known(0), numeric(ctx.input(1))
    if value is None or indices is None:
        return None
    return np.take(np.asarray(value), indices.astype(np.int64), axis=int(ctx.attr("axis")))


@value_rule("Expand")
def expand_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    value, shape = ctx.known(0), fixed_shape(out)
    return None if value is None or shape is None else np.broadcast_to(np.asarray(value), shape).copy()


@value_rule("Range")
def range_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    shape, values = fixed_shape(out), operands(ctx)
    if shape is None or values is None:
        return None
    start, delta = values[0].reshape(-1)[0], values[2].reshape(-1)[0]
    return np.array([start + i * delta for i in range(shape[0])], dtype=object)


@value_rule("Where")
def where_value(ctx: NodeContext, out: Tensor, _: Constraints) -> np.ndarray | None:
    """Elementwise Piecewise: exact whatever the dims, and a plain choice once the condition is decided."""
    values = operands(ctx)
    if values is None:
        return None
    return cast(np.ndarray, np.vectorize(lambda c, a, b: sp.Piecewise((a, c), (b, True)), otypes=[object])(*values))


# op -> its scalar function on sympy operands (Div and Mod need the dtype: see arithmetic_value)
ELEMENTWISE: dict[str, Callable[..., sp.Basic]] = {
    "Add": operator.add, "Sub": operator.sub, "Mul": operator.mul, "Neg": operator.neg,
    "Max": sp.Max, "Min": sp.Min, "Not": sp.Not, "And": sp.And, "Or": sp.Or,
    "Equal": sp.Eq, "Less": sp.Lt, "LessOrEqual": sp.Le, "Greater": sp.Gt, "GreaterOrEqual": sp.Ge,
}


def scalar_function(ctx: NodeContext, out: Tensor, constraints: Constraints) -> Callable[..., sp.Basic] | None:
    """The op's function on one element; Div and Mod by the ONNX rules of the input's type."""
    where = f"node '{ctx.node.name}' ({ctx.op})"
    integer = is_integer_dtype(ctx.require(0).dtype)
    if ctx.op == "Div":
        return lambda a, b: quotient(a, b, integer, where, constraints)
    if ctx.op == "Mod":
        fmod = bool(ctx.attr("fmod"))
        return (lambda a, b: remainder(a, b, fmod, where, constraints)) if integer else None
    return ELEMENTWISE[ctx.op]


@value_rule(*ELEMENTWISE, "Div", "Mod")
def arithmetic_value(ctx: NodeContext, out: Tensor, constraints: Constraints) -> np.ndarray | None:
    values, fn = operands(ctx), scalar_function(ctx, out, constraints)
    if values is None or fn is None:
        return None
    return cast(np.ndarray, np.vectorize(lambda *xs: fn(*(sp.sympify(x) for x in xs)), otypes=[object])(*values))


def symbolic_values(ctx: NodeContext, result: NodeResult) -> list[np.ndarray] | None:
    """The node's output values as formulas, when its op is in the table and its inputs are known.

    Assumptions a value needed (a quotient's sign) join the node's constraints.
    """
    fn = VALUES.get(ctx.op)
    if fn is None or not result.outputs or result.outputs[0].shape is None:
        return None
    value = fn(ctx, result.outputs[0], result.constraints)
    return None if value is None else [settle(np.asarray(value, dtype=object), result.outputs[0].dtype)]

