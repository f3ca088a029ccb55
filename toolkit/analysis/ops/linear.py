"""Sums of products: Conv, ConvTranspose, MatMul, Gemm. Effective counts drop products by constant 0 and 1."""

from __future__ import annotations

from typing import cast

import numpy as np
import sympy as sp
from onnx import helper
from onnx.reference import ReferenceEvaluator

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import Dim, Shape, numel, pretty
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, rule
from toolkit.analysis.ops.broadcast import broadcast_shapes
from toolkit.analysis.ops.windows import Window, index_expr, sliding_output, window_of
from toolkit.errors import ToolkitError

SPATIAL_INDICES = {1: ("t",), 2: ("y", "x"), 3: ("z", "y", "x")}
TAP_INDICES = {1: ("j",), 2: ("p", "q"), 3: ("o", "p", "q")}


def terms_per_group(weights: np.ndarray, axis_groups: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per output unit: products that survive (factor != 0) and of those the ones that need a mul (!= 1)."""
    nonzero = (weights != 0).sum(axis=axis_groups)
    ones = (weights == 1).sum(axis=axis_groups)
    return nonzero, nonzero - ones


def bias_terms(ctx: NodeContext, index: int, channels: int) -> np.ndarray:
    """1 where the bias adds a term: present and not a constant exactly 0."""
    if ctx.input(index) is None:
        return np.zeros(channels, dtype=np.int64)
    value = ctx.const(index)
    if value is None:
        return np.ones(channels, dtype=np.int64)
    return cast(np.ndarray, (np.broadcast_to(value, (channels,)) != 0).astype(np.int64))


def spatial_names(rank: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if rank not in SPATIAL_INDICES:
        raise ToolkitError(f"convolutions of {rank} spatial dims are not supported (1 to 3 are)")
    return SPATIAL_INDICES[rank], TAP_INDICES[rank]


def conv_math(ctx: NodeContext, window: Window, cin_per_group: int, group: int, out_name: str) -> str:
    outs, taps = spatial_names(len(window.kernel))
    positions = ", ".join(index_expr(window.strides[a], window.dilations[a], window.pads[a], outs[a], taps[a])
                          for a in range(len(outs)))
    tap_sum = " ".join(f"sum_{{{t}=0..{k - 1}}}" for t, k in zip(taps, window.kernel, strict=True))
    channel = "0" if cin_per_group == 1 else "c"
    channel_in = channel if group == 1 else f"g(m) {cin_per_group} + {channel}"
    channel_sum = "" if cin_per_group == 1 else f"sum_{{c=0..{cin_per_group - 1}}} "
    bias = f" + {ctx.name(2)}[m]" if ctx.input(2) is not None else ""
    padded = " (zero-padded)" if any(p != 0 for p in window.pads) else ""
    return (f"{out_name}[n,m,{','.join(outs)}] = {channel_sum}{tap_sum} {ctx.name(1)}[m,{channel},{','.join(taps)}]"
            f" * {ctx.name(0)}[n,{channel_in},{positions}]{bias}{padded}")


@rule("Conv")
def conv(ctx: NodeContext) -> NodeResult:
    x, w = ctx.require(0), ctx.require(1)
    if any(not d.is_Integer for d in w.dims[2:]):
        raise ToolkitError(f"node '{ctx.node.name}' (Conv): the kernel shape must be known")
    group = int(ctx.attr("group"))
    kernel = tuple(int(d) for d in w.dims[2:])
    window = window_of(ctx, x.dims[2:], kernel)
    spatial, constraints = sliding_output(ctx, window, x.dims[2:])
    out = ctx.out((x.dims[0], w.dims[0], *spatial))
    taps = int(w.dims[1]) * int(np.prod(kernel))
    has_bias = ctx.input(2) is not None
    dense = Counts(mul=taps * out.numel, add=(taps - 1 + has_bias) * out.numel)
    data, weights = ctx.const(0), ctx.const(1)
    effective = None
    if data is not None:
        effective = constant_input_conv(ctx, data, window, group)
    elif weights is not None:
        channels = int(w.dims[0])
        terms, muls = terms_per_group(weights.reshape(channels, -1), (1,))
        terms = terms + bias_terms(ctx, 2, channels)
        positions = x.dims[0] * numel(spatial)
        effective = Counts(mul=int(muls.sum()) * positions,
                           add=int(np.maximum(terms - 1, 0).sum()) * positions)
    math = conv_math(ctx, window, int(w.dims[1]), group, out.name)
    return NodeResult([out], dense, math, effective, constraints)


def indicator(value: np.ndarray | None, shape: tuple[int, ...], skip: tuple[float, ...]) -> np.ndarray:
    """1.0 where a factor keeps its product (or its mul), 0.0 where a constant in `skip` removes it."""
    if value is None:
        return np.ones(shape)
    return (~np.isin(value.astype(np.float64), skip)).astype(np.float64)


def constant_input_conv(ctx: NodeContext, x: np.ndarray, window: Window, group: int) -> Counts:
    """Effective cost when the Conv's input X is itself constant: surviving products counted position by
    position, by running the same Conv on 0/1 indicators (exact small integers in float64). Padding taps are
    not constants: they keep their products, as in the dense count."""
    w = ctx.const(1)
    w_shape = tuple(int(d) for d in ctx.require(1).dims)
    rank = len(window.kernel)
    pads = [(0, 0), (0, 0)] + [(int(window.pads[a]), int(window.pads[a + rank])) for a in range(rank)]

    def count(skip: tuple[float, ...]) -> np.ndarray:
        x_alive = np.pad(indicator(x, x.shape, skip), pads, constant_values=1.0)
        conv_node = helper.make_node("Conv", ["x", "w"], ["y"], group=group, strides=list(window.strides),
                                     dilations=list(window.dilations))
        (result,) = ReferenceEvaluator(conv_node).run(None, {"x": x_alive, "w": indicator(w, w_shape, skip)})
        return cast(np.ndarray, np.rint(result).astype(np.int64))

    terms, muls = count((0.0,)), count((0.0, 1.0))
    bias = bias_terms(ctx, 2, w_shape[0]).reshape(1, -1, *(1,) * rank)
    return Counts(mul=int(muls.sum()), add=int(np.maximum(terms + bias - 1, 0).sum()))


@rule("ConvTranspose")
def conv_transpose(ctx: NodeContext) -> NodeResult:
    x, w = ctx.require(0), ctx.require(1)
    group = int(ctx.attr("group"))
    kernel = tuple(int(d) for d in w.dims[2:])
    rank = len(kernel)
    strides = tuple(ctx.attr("strides") or (1,) * rank)
    dilations = tuple(ctx.attr("dilations") or (1,) * rank)
    output_padding = tuple(ctx.attr("output_padding") or (0,) * rank)
    pads = tuple(ctx.attr("pads") or (0,) * (2 * rank))
    given = ctx.attr("output_shape")
    auto_pad = ctx.attr("auto_pad")
    spatial = []
    for a, length in enumerate(x.dims[2:]):
        if given:
            spatial.append(sp.Integer(given[-rank + a]))
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(length * strides[a])
        else:
            spatial.append(strides[a] * (length - 1) + output_padding[a] + dilations[a] * (kernel[a] - 1) + 1
                           - pads[a] - pads[a + rank])
    cout = int(w.dims[1]) * group
    out = ctx.out((x.dims[0], cout, *spatial))
    products = x.numel * int(w.dims[1]) * int(np.prod(kernel))
    has_bias = ctx.input(2) is not None
    dense = Counts(mul=products, add=products + (out.numel if has_bias else 0))
    weights = ctx.const(1)
    effective = None
    if weights is not None:
        inputs_per_channel = x.dims[0] * numel(x.dims[2:])
        bias = bias_terms(ctx, 2, cout)
        bias_adds = int(bias.sum()) * x.dims[0] * numel(spatial)
        effective = Counts(mul=int(((weights != 0) & (weights != 1)).sum()) * inputs_per_channel,
                           add=int((weights != 0).sum()) * inputs_per_channel + bias_adds)
    outs, taps = spatial_names(rank)
    axes = zip(strides, dilations, taps, pads[:rank], outs, strict=True)
    where = ", ".join(f"{s} i{a} + {d} {t} - {p} = {o}" for a, (s, d, t, p, o) in enumerate(axes))
    math = (f"{out.name}[n,m,{','.join(outs)}] = sum over c, input positions i and taps with {where} of "
            f"{ctx.name(1)}[c,m,{','.join(taps)}] * {ctx.name(0)}[n,c,i] (scatter)")
    return NodeResult([out], dense, math, effective)


def matmul_shapes(ctx: NodeContext, a_shape: Shape, b_shape: Shape
                  ) -> tuple[Shape, Dim, list[tuple[sp.Expr, str]]]:
    """Output shape of numpy matmul, with 1-D operands promoted and then dropped."""
    a = tuple(a_shape) if len(a_shape) > 1 else (sp.Integer(1), *a_shape)
    b = tuple(b_shape) if len(b_shape) > 1 else (*b_shape, sp.Integer(1))
    constraints: list[tuple[sp.Expr, str]] = []
    if a[-1] != b[-2]:
        if a[-1].is_Integer and b[-2].is_Integer:
            raise ToolkitError(f"node '{ctx.node.name}' (MatMul): inner dims {a[-1]} and {b[-2]} differ")
        constraints.append((a[-1] - b[-2], f"node '{ctx.node.name}' (MatMul) needs equal inner dims"))
    batch = broadcast_shapes([a[:-2], b[:-2]], f"node '{ctx.node.name}' (MatMul)")
    shape = (*batch, *((a[-2],) if len(a_shape) > 1 else ()), *((b[-1],) if len(b_shape) > 1 else ()))
    return shape, a[-1], constraints


def product_terms(a: np.ndarray | None, b: np.ndarray | None, out_numel: sp.Expr) -> Counts | None:
    """Effective cost of sum_k A[.., m, k] B[.., k, n] when A or B (or both) is constant; None if neither."""
    if a is not None and b is not None:
        return both_constant_terms(a, b)
    if b is not None:
        stacked = b.reshape(-1, *b.shape[-2:]) if b.ndim > 1 else b.reshape(1, -1, 1)
        terms, muls = terms_per_group(stacked, (1,))
    elif a is not None:
        stacked = a.reshape(-1, *a.shape[-2:]) if a.ndim > 1 else a.reshape(1, 1, -1)
        terms, muls = terms_per_group(stacked, (2,))
    else:
        return None
    replication = out_numel / terms.size
    return Counts(mul=int(muls.sum()) * replication, add=int(np.maximum(terms - 1, 0).sum()) * replication)


def both_constant_terms(a: np.ndarray, b: np.ndarray) -> Counts:
    """Both operands known: count surviving products output element by output element."""
    alive = np.matmul((a != 0).astype(np.int64), (b != 0).astype(np.int64))
    needs_mul = np.matmul(((a != 0) & (a != 1)).astype(np.int64), ((b != 0) & (b != 1)).astype(np.int64))
    return Counts(mul=int(needs_mul.sum()), add=int(np.maximum(alive - 1, 0).sum()))


@rule("MatMul")
def matmul(ctx: NodeContext) -> NodeResult:
    a, b = ctx.require(0), ctx.require(1)
    shape, k, constraints = matmul_shapes(ctx, a.dims, b.dims)
    out = ctx.out(shape)
    dense = Counts(mul=k * out.numel, add=(k - 1) * out.numel)
    effective = product_terms(ctx.const(0), ctx.const(1), out.numel)
    math = f"{out.name}[..,m,n] = sum_{{k=0..{pretty(k - 1)}}} {ctx.name(0)}[..,m,k] * {ctx.name(1)}[..,k,n]"
    return NodeResult([out], dense, math, effective, constraints)


@rule("Gemm")
def gemm(ctx: NodeContext) -> NodeResult:
    a, b = ctx.require(0), ctx.require(1)
    trans_a, trans_b = int(ctx.attr("transA")), int(ctx.attr("transB"))
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    m, k = (a.dims[1], a.dims[0]) if trans_a else (a.dims[0], a.dims[1])
    n = b.dims[0] if trans_b else b.dims[1]
    out = ctx.out((m, n))
    has_c = ctx.input(2) is not None
    extra_mul = (alpha != 1) + (has_c and beta != 1)
    dense = Counts(mul=(k + extra_mul) * out.numel, add=(k - 1 + has_c) * out.numel)
    ca, cb = ctx.const(0), ctx.const(1)
    ma = None if ca is None else (ca.T if trans_a else ca)
    mb = None if cb is None else (cb.T if trans_b else cb)
    products = product_terms(ma, mb, out.numel)  # None when neither operand is constant
    effective = None
    if products is not None:
        c_terms, c_muls = c_term_counts(ctx, out)
        effective = Counts(mul=products["mul"] + (alpha != 1) * out.numel + (beta != 1) * c_muls,
                           add=products["add"] + c_terms)
    c_text = f" + {beta:g} * {ctx.name(2)}[m,n]" if has_c else ""
    a_idx, b_idx = ("k,m" if trans_a else "m,k"), ("n,k" if trans_b else "k,n")
    math = (f"{out.name}[m,n] = {alpha:g} * sum_{{k=0..{pretty(k - 1)}}} {ctx.name(0)}[{a_idx}] * "
            f"{ctx.name(1)}[{b_idx}]{c_text}")
    return NodeResult([out], dense, math, effective)


def c_term_counts(ctx: NodeContext, out: Tensor) -> tuple[sp.Expr, sp.Expr]:
    """(output elements where beta C adds a term, of those the ones where beta C needs a mul).

    beta C is a product with a constant factor: C exactly 0 drops the term, C exactly 1 drops the mul.
    """
    if ctx.input(2) is None:
        return sp.Integer(0), sp.Integer(0)
    c = ctx.const(2)
    if c is None:
        return out.numel, out.numel
    full = np.broadcast_to(c, tuple(int(d) for d in out.dims))
    return sp.Integer(int((full != 0).sum())), sp.Integer(int(((full != 0) & (full != 1)).sum()))
