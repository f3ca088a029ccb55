"""Sliding-window geometry shared by Conv and the pools: pads, strides and dilations in one place."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from toolkit.analysis.dims import Dim, Shape, ceil_div, floor_div
from toolkit.analysis.ops.base import NodeContext
from toolkit.errors import ToolkitError


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[Dim, ...]  # begins then ends, as ONNX orders them

    def span(self, axis: int) -> int:
        """Taps covered by the dilated kernel along one axis."""
        return self.dilations[axis] * (self.kernel[axis] - 1) + 1

    def padded_extent(self, length: Dim, axis: int) -> Dim:
        """Input length plus pads minus the kernel's span: >= 0 for at least one window."""
        rank = len(self.kernel)
        return length + self.pads[axis] + self.pads[axis + rank] - self.span(axis)


def window_of(ctx: NodeContext, spatial: Shape, kernel: tuple[int, ...]) -> Window:
    """Read kernel_shape, strides, dilations, pads and auto_pad the way the ONNX spec defines them."""
    rank = len(kernel)
    strides = tuple(ctx.attr("strides") or (1,) * rank)
    dilations = tuple(ctx.attr("dilations") or (1,) * rank)
    auto_pad = ctx.attr("auto_pad")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for axis, length in enumerate(spatial):
            out = ceil_div(length, strides[axis])
            total = sp.Max((out - 1) * strides[axis] + dilations[axis] * (kernel[axis] - 1) + 1 - length, 0)
            small = floor_div(total, 2)
            begins.append(small if auto_pad == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        pads: tuple[Dim, ...] = (*begins, *ends)
    elif auto_pad == "VALID":
        pads = (sp.Integer(0),) * (2 * rank)
    elif auto_pad == "NOTSET":
        pads = tuple(sp.Integer(p) for p in (ctx.attr("pads") or (0,) * (2 * rank)))
    else:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): unknown auto_pad '{auto_pad}'")
    return Window(tuple(int(k) for k in kernel), strides, dilations, pads)


def sliding_output(ctx: NodeContext, window: Window, spatial: Shape, ceil_mode: bool = False
                   ) -> tuple[Shape, list[tuple[sp.Expr, str]]]:
    """Output length per axis, floor((L + pads - span) / stride) + 1, and the constraint of one window."""
    out, constraints = [], []
    for axis, length in enumerate(spatial):
        extent = window.padded_extent(length, axis)
        stride = window.strides[axis]
        size = (ceil_div(extent, stride) if ceil_mode else floor_div(extent, stride)) + 1
        if ceil_mode:  # the last window may not start in the end padding
            size = sp.Piecewise((size - 1, (size - 1) * stride >= length + window.pads[axis]), (size, True))
        out.append(size)
        constraints.append((extent, f"node '{ctx.node.name}' ({ctx.op}) needs a full "
                                    f"{window.span(axis)}-tap window along spatial axis {axis}"))
    return tuple(out), constraints


def index_expr(stride: int, dilation: int, pad: Dim, out_index: str, tap_index: str) -> str:
    """The input position a tap reads, e.g. '160 t + j'."""
    parts = [f"{stride} {out_index}" if stride != 1 else out_index,
             f"{dilation} {tap_index}" if dilation != 1 else tap_index]
    text = " + ".join(parts)
    return f"{text} - {pad}" if pad != 0 else text
