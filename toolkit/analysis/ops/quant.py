"""Quantization ops, as onnxruntime.quantization writes them, counted by their ONNX definitions.

QuantizeLinear  y = saturate(round(x / scale) + zero_point): 1 div, 1 round, 1 add (with a zero point), 2 cmp.
DequantizeLinear  y = (x - zero_point) * scale: 1 add (with a zero point), 1 mul.
DynamicQuantizeLinear: min and max over the tensor with 0 (2n cmp), the scale (1 add, 1 div), the zero point
(1 div, 1 add, 1 round, 2 cmp), then QuantizeLinear per element.
ConvInteger, MatMulInteger: each zero point subtracted once per element of its operand, then Conv / MatMul.
Effective: as elsewhere, x / 1, x * 1, x * 0 and x - 0 with a constant scale or zero point cost nothing.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from onnx import TensorProto, helper

from toolkit.analysis.counts import Counts
from toolkit.analysis.ops.base import NodeContext, NodeResult, Rule, Tensor, rule
from toolkit.analysis.ops.broadcast import nary_effective_ops
from toolkit.analysis.ops.linear import conv, matmul


def per_axis(value: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A per-axis scale or zero point reshaped to broadcast against the tensor it applies to."""
    if value.size == 1:
        return value.reshape(())
    axis = axis % rank
    return value.reshape([1] * axis + [value.size] + [1] * (rank - axis - 1))


def free_where(ctx: NodeContext, i: int, rank: int, axis: int, values: tuple[float, ...]) -> np.ndarray | None:
    """Mask of positions where constant input i makes the op a no-op; None when input i is not constant."""
    value = ctx.const(i)
    return None if value is None else np.isin(per_axis(value, rank, axis).astype(np.float64), values)


def elementwise_with(ctx: NodeContext, x: Tensor, kind: str, i: int, values: tuple[float, ...]
                     ) -> tuple[sp.Expr, sp.Expr]:
    """(dense, effective) of one op per element of x whose other operand is input i (absent: no op)."""
    if ctx.input(i) is None:
        return sp.Integer(0), sp.Integer(0)
    mask = free_where(ctx, i, x.rank, int(ctx.attr("axis")), values)
    return x.numel, nary_effective_ops(x.dims, [None, mask])


@rule("QuantizeLinear")
def quantize_linear(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    zero_point = ctx.input(2)
    out = ctx.out(x.dims, zero_point.dtype if zero_point is not None else TensorProto.UINT8)
    div, div_eff = elementwise_with(ctx, x, "div", 1, (1.0,))
    add, add_eff = elementwise_with(ctx, x, "add", 2, (0.0,))
    shared = Counts(round=x.numel, cmp=2 * x.numel)
    zp = f" + {ctx.name(2)}" if zero_point is not None else ""
    return NodeResult([out], shared + Counts(div=div, add=add),
                      f"{out.name} = saturate(round({ctx.name(0)} / {ctx.name(1)}){zp})",
                      shared + Counts(div=div_eff, add=add_eff))


@rule("DequantizeLinear")
def dequantize_linear(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    out = ctx.out(x.dims, ctx.require(1).dtype)
    mul, mul_eff = elementwise_with(ctx, x, "mul", 1, (0.0, 1.0))
    add, add_eff = elementwise_with(ctx, x, "add", 2, (0.0,))
    zp = f" - {ctx.name(2)}" if ctx.input(2) is not None else ""
    return NodeResult([out], Counts(mul=mul, add=add), f"{out.name} = ({ctx.name(0)}{zp}) * {ctx.name(1)}",
                      Counts(mul=mul_eff, add=add_eff))


@rule("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    n = x.numel
    outputs = [ctx.out(x.dims, TensorProto.UINT8), ctx.out((), TensorProto.FLOAT, index=1),
               ctx.out((), TensorProto.UINT8, index=2)]
    cost = Counts(cmp=4 * n + 2, add=n + 2, div=n + 2, round=n + 1)
    math = (f"{outputs[0].name} = saturate(round({ctx.name(0)} / s) + z), s = (max(x, 0) - min(x, 0)) / 255, "
            f"z = saturate(round(-min(x, 0) / s)) over the whole tensor")
    return NodeResult(outputs, cost, math)


def zero_point_subtraction(ctx: NodeContext, operand: int, zero_point: int, axis: int) -> tuple[Counts, Counts, Tensor]:
    """Counts of operand - zero_point, and the operand as the product stage sees it (constant if both are)."""
    tensor = ctx.require(operand)
    if ctx.input(zero_point) is None:
        return Counts(), Counts(), tensor
    mask = free_where(ctx, zero_point, tensor.rank, axis, (0.0,))
    dense, effective = Counts(add=tensor.numel), Counts(add=nary_effective_ops(tensor.dims, [None, mask]))
    value, zp = ctx.const(operand), ctx.const(zero_point)
    if value is not None and zp is not None:
        shifted = value.astype(np.int32) - per_axis(zp, tensor.rank, axis).astype(np.int32)
        tensor = Tensor(tensor.name, TensorProto.INT32, tensor.dims, shifted, constant=True)
    else:
        tensor = Tensor(tensor.name, TensorProto.INT32, tensor.dims)
    return dense, effective, tensor


def integer_products(ctx: NodeContext, inner_rule: Rule, axes: tuple[int, int]) -> NodeResult:
    """Subtract the zero points, then count the Conv / MatMul on the shifted operands."""
    a_dense, a_eff, a = zero_point_subtraction(ctx, 0, 2, axes[0])
    b_dense, b_eff, b = zero_point_subtraction(ctx, 1, 3, axes[1])
    plain = helper.make_node(ctx.op.removesuffix("Integer"), list(ctx.node.input[:2]), list(ctx.node.output),
                             name=ctx.node.name)
    plain.attribute.extend(ctx.node.attribute)
    inner = inner_rule(NodeContext(plain, [a, b], ctx.opset))
    assert inner.dense is not None, "the Conv and MatMul rules always count"
    out = inner.outputs[0]
    out.dtype = TensorProto.INT32
    effective = inner.effective if inner.effective is not None else inner.dense
    zp = " with zero points subtracted" if len(ctx.node.input) > 2 else ""
    return NodeResult([out], inner.dense + a_dense + b_dense, f"{inner.math} (int32{zp})",
                      effective + a_eff + b_eff, inner.constraints)


@rule("ConvInteger")
def conv_integer(ctx: NodeContext) -> NodeResult:
    return integer_products(ctx, conv, (1, 0))


@rule("MatMulInteger")
def matmul_integer(ctx: NodeContext) -> NodeResult:
    return integer_products(ctx, matmul, (-2, -1))
