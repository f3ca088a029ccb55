"""DFT and STFT as the naive O(N^2) transform: what the graph asks for, not what an FFT library does."""

from __future__ import annotations

import sympy as sp

from toolkit.analysis.counts import Counts
from toolkit.analysis.dims import floor_div
from toolkit.analysis.ops.base import NodeContext, NodeResult, Tensor, normalize_axis, rule
from toolkit.analysis.ops.elementwise import skip_mask
from toolkit.errors import ToolkitError


def bin_cost(length: sp.Expr, complex_input: bool) -> Counts:
    """One output bin of a length-N DFT: real input 2N mul, 2(N-1) add; complex 4N mul, 4N - 2 add."""
    if complex_input:
        return Counts(mul=4 * length, add=4 * length - 2)
    return Counts(mul=2 * length, add=2 * (length - 1))


def scalar(ctx: NodeContext, tensor: Tensor | None, what: str) -> sp.Expr | None:
    """A scalar input's (or moved parameter's) value, which must be known before the run; None if not given."""
    if tensor is None:
        return None
    if tensor.value is None:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): {what} is computed at run time")
    return sp.sympify(tensor.value.reshape(-1)[0])


def required_scalar(ctx: NodeContext, tensor: Tensor | None, what: str) -> sp.Expr:
    """As scalar, for one the op cannot do without (DFT's axis, STFT's frame step)."""
    value = scalar(ctx, tensor, what)
    if value is None:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): {what} is not given")
    return value


@rule("DFT")
def dft(ctx: NodeContext) -> NodeResult:
    x = ctx.require(0)
    axis = normalize_axis(int(required_scalar(ctx, ctx.param("axis"), "the axis")), x.rank, ctx)
    length = scalar(ctx, ctx.param("dft_length"), "dft_length") or x.dims[axis]
    onesided = int(ctx.attr("onesided"))
    inverse = int(ctx.attr("inverse"))
    bins = floor_div(length, 2) + 1 if onesided else length
    dims = list(x.dims)
    dims[axis] = bins
    dims[-1] = sp.Integer(2)
    out = ctx.out(tuple(dims))
    transforms = out.numel / (2 * bins)
    cost = bin_cost(length, x.dims[-1] == 2) + (Counts(div=2) if inverse else Counts())
    sign = "+" if inverse else "-"
    scale = f"(1/{length}) " if inverse else ""
    math = (f"{out.name}[..,k,..] = {scale}sum_{{n=0..{length - 1}}} {ctx.name(0)}[..,n,..] * "
            f"exp({sign}2 pi i k n / {length}), k < {bins}")
    return NodeResult([out], cost * (transforms * bins), math)


@rule("STFT")
def stft(ctx: NodeContext) -> NodeResult:
    signal = ctx.require(0)
    step = required_scalar(ctx, ctx.input(1), "frame_step")
    window = ctx.input(2)
    frame_length = scalar(ctx, ctx.input(3), "frame_length") or (window.dims[0] if window is not None else None)
    if frame_length is None:
        raise ToolkitError(f"node '{ctx.node.name}' (STFT): frame_length is not given, nor a window")
    onesided = int(ctx.attr("onesided"))
    frames = floor_div(signal.dims[1] - frame_length, int(step)) + 1
    bins = floor_div(frame_length, 2) + 1 if onesided else frame_length
    out = ctx.out((signal.dims[0], frames, bins, 2))
    per_frame = bin_cost(frame_length, signal.dims[-1] == 2) * bins
    parts = 2 if signal.dims[-1] == 2 else 1  # a real window times a complex sample is 2 muls
    windowing = Counts(mul=parts * frame_length) if window is not None else Counts()
    mask = skip_mask(ctx, 2, (0.0, 1.0)) if window is not None else None
    windowing_effective = windowing if mask is None else Counts(mul=parts * int((~mask).sum()))
    count = signal.dims[0] * frames
    windowed = f"{ctx.name(2)}[n] * " if window is not None else ""
    math = (f"{out.name}[b,t,k] = sum_{{n=0..{frame_length - 1}}} {windowed}{ctx.name(0)}[b, {step} t + n] * "
            f"exp(-2 pi i k n / {frame_length}), k < {bins}")
    constraint = (signal.dims[1] - frame_length, f"node '{ctx.node.name}' (STFT) needs one full frame")
    return NodeResult([out], (windowing + per_frame) * count, math,
                      (windowing_effective + per_frame) * count, [constraint])
