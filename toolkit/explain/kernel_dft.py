"""Recognize a DFT written as products with constant window x cos and window x sin kernels.

Two operators carry such kernels: a strided Conv on the samples (it frames and transforms at once: its stride
is the hop) and a MatMul of frames [.., T, n] by a [n, bins] matrix (the framing was done before it, so the hop
comes from the framing block). Either way the kernels come as two nodes (real, imaginary) or one node of
2 x bins outputs, whose halves are split off by a Reshape to (.., 2, bins, ..), by a Split, or by Slices. The
kernels are a DFT when, row by row, they are one window times cos and sin of 2 pi k j / n (`stft.dft_fit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from toolkit.explain.block import Block, Match, Param, Signal, node_names
from toolkit.explain.graph import GraphView, attribute, tolerance
from toolkit.explain.stft import bins_text, dft_fit, dft_formula, frames_text, sign_text, window_params
from toolkit.explain.windows import TOLERANCE as WINDOW_TOLERANCE
from toolkit.explain.windows import fit_window

Kernel = Callable[[GraphView, onnx.NodeProto, str], np.ndarray | None]
_UNBOUNDED = 2**31 - 1  # a Slice end at least this large keeps the whole axis


@dataclass(frozen=True)
class _KernelDft:
    """What a kernel form of a DFT is made of: its nodes, kernels [bins, n], the node that reads the samples
    (a Conv's stride and pads), and the complex value after it (a (re, im) pair, or stacked on `complex_axis`)."""

    nodes: list[onnx.NodeProto]
    cos_kernel: np.ndarray
    sin_kernel: np.ndarray
    reader: onnx.NodeProto
    outputs: tuple[str, ...]
    form: str
    complex_axis: int = -1
    gain: float = 1.0
    kernel_nodes: int = 1


def conv_kernel(view: GraphView, node: onnx.NodeProto, start: str) -> np.ndarray | None:
    """The [out, n] kernel of a plain 1-D Conv on `start` (one input channel, group 1, no dilation, no bias)."""
    weight = view.const(node.input[1]) if node.op_type == "Conv" and node.input[0] == start else None
    if weight is None:
        return None
    plain = (
        weight.ndim == 3
        and weight.shape[1] == 1
        and attribute(node, "group", 1) == 1
        and all(d == 1 for d in attribute(node, "dilations", [1]))
        and _zero_bias(view, node)
    )
    return weight[:, 0, :] if plain else None


def matmul_kernel(view: GraphView, node: onnx.NodeProto, start: str) -> np.ndarray | None:
    """The [out, n] kernel of MatMul(start, B) with a constant 2-D B [n, out]: B transposed."""
    weight = view.const(node.input[1]) if node.op_type == "MatMul" and node.input[0] == start else None
    return weight.T if weight is not None and weight.ndim == 2 else None


def _zero_bias(view: GraphView, node: onnx.NodeProto) -> bool:
    """True when the Conv has no bias or a constant all-zero one."""
    if len(node.input) < 3 or not node.input[2]:
        return True
    bias = view.const(node.input[2])
    return bias is not None and not np.any(bias)


def _output_gain(view: GraphView, outputs: tuple[str, str]) -> tuple[list[onnx.NodeProto], tuple[str, ...], float]:
    """A Mul by the same constant on both outputs (an fp16 variant's unscale), absorbed as a gain; else 1."""
    steps = []
    for tensor in outputs:
        end, path = view.forward(tensor)
        users = view.data_consumers(end)
        value = view.scalar(view.other_input(users[0], end) or "") if len(users) == 1 else None
        if users[0].op_type != "Mul" or value is None:
            return [], outputs, 1.0
        steps.append(([*path, users[0]], users[0].output[0], value))
    if steps[0][2] != steps[1][2]:
        return [], outputs, 1.0
    return [*steps[0][0], *steps[1][0]], (steps[0][1], steps[1][1]), steps[0][2]


def _pair(view: GraphView, start: str, kernel: Kernel) -> _KernelDft | None:
    """Two nodes on the same samples with window x cos and window x sin kernels (the one whose row 0 is not
    all zero is the cosine)."""
    candidates = [(node, kernel(view, node, start)) for node in view.data_consumers(start)]
    kernels = [(node, weights) for node, weights in candidates if weights is not None]
    if len(kernels) != 2 or kernels[0][1].shape != kernels[1][1].shape:
        return None
    (cos_node, cos_kernel), (sin_node, sin_kernel) = sorted(kernels, key=lambda pair: not np.any(pair[1][0]))
    if any(attribute(cos_node, a) != attribute(sin_node, a) for a in ("strides", "pads", "auto_pad")):
        return None
    gain_nodes, outputs, gain = _output_gain(view, (cos_node.output[0], sin_node.output[0]))
    return _KernelDft([cos_node, sin_node, *gain_nodes], cos_kernel, sin_kernel, cos_node, outputs, "pair",
                      gain=gain, kernel_nodes=2)


def _complex_axis(view: GraphView, path: list[onnx.NodeProto], bins: int) -> int | None:
    """The axis of size 2 that a Reshape of the [2 x bins] outputs into (..., 2, bins, ...) creates."""
    reshapes = [node for node in path if node.op_type == "Reshape"]
    shape = view.const(reshapes[-1].input[1]) if reshapes else None
    if shape is None:
        return None
    dims = [int(d) for d in shape.reshape(-1)]
    return next((i for i in range(len(dims) - 1) if dims[i] == 2 and dims[i + 1] == bins), None)


def _same_axis(a: int, axis: int, rank: int | None) -> bool:
    return a == axis or (rank is not None and a % rank == axis % rank)


def _slice_kept(view: GraphView, node: onnx.NodeProto, axis: int, rank: int | None,
                size: int) -> tuple[int, int] | None:
    """The range [lo, hi) of `axis` (of `size`) a constant, step-1 Slice keeps while keeping every other axis
    whole; None for any other Slice."""
    found = [view.const(name) for name in node.input[1:5] if name]
    values = [v for v in found if v is not None]
    if len(found) < 2 or len(values) < len(found) or (len(values) > 3 and np.any(values[3] != 1)):
        return None
    starts, ends = (v.reshape(-1).astype(np.int64) for v in values[:2])
    axes = values[2].reshape(-1) if len(values) > 2 else np.arange(starts.size)
    kept = (0, size)
    for s, e, a in zip(starts, ends, axes, strict=False):
        if not _same_axis(int(a), axis, rank):
            if s != 0 or e < _UNBOUNDED:
                return None
            continue
        lo, hi = (min(max(int(v) + size if v < 0 else int(v), 0), size) for v in (s, e))
        kept = (lo, hi)
    return kept if kept[1] > kept[0] else None


def _sliced(view: GraphView, tensor: str, axis: int, rank: int | None, span: tuple[int, int],
            nodes: list[onnx.NodeProto]) -> list[tuple[tuple[int, int], str, list[onnx.NodeProto]]]:
    """Every tensor reached from `tensor` through constant Slices, with the range of `axis` it keeps."""
    found = [(span, tensor, nodes)]
    for node in view.data_consumers(tensor):
        kept = _slice_kept(view, node, axis, rank, span[1] - span[0]) if node.op_type == "Slice" else None
        if kept is not None and node.input[0] == tensor:
            range_ = (span[0] + kept[0], span[0] + kept[1])
            found += _sliced(view, node.output[0], axis, rank, range_, [*nodes, node])
    return found


def _halves(view: GraphView, tensor: str, bins: int, axis: int) -> tuple[list[onnx.NodeProto], tuple[str, str]] | None:
    """The first and second halves of `axis` (2 x bins long) as separate tensors: a Split in two, or Slices."""
    rank = view.rank(tensor)
    for node in view.data_consumers(tensor):
        sizes = view.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        even = sizes is None or [int(s) for s in sizes.reshape(-1)] == [bins, bins]
        if node.op_type == "Split" and len(node.output) == 2 and even and _same_axis(
                int(attribute(node, "axis", 0)), axis, rank):
            return [node], (node.output[0], node.output[1])
    reached = _sliced(view, tensor, axis, rank, (0, 2 * bins), [])[::-1]  # the deepest of a chain of Slices first
    first = next((found for found in reached if found[0] == (0, bins)), None)
    second = next((found for found in reached if found[0] == (bins, 2 * bins)), None)
    if first is None or second is None:
        return None
    return list({id(n): n for n in [*first[2], *second[2]]}.values()), (first[1], second[1])


def _single(view: GraphView, start: str, kernel: Kernel, axis: int) -> _KernelDft | None:
    """One node whose 2 x bins outputs (on `axis`) are the cos rows then the sin rows, stacked by a Reshape to
    (..., 2, bins, ...) or split into halves."""
    node = next((n for n in view.data_consumers(start) if kernel(view, n, start) is not None), None)
    weights = kernel(view, node, start) if node is not None else None
    if node is None or weights is None or weights.shape[0] % 2:
        return None
    bins = weights.shape[0] // 2
    end, path = view.forward(node.output[0])
    stacked = _complex_axis(view, path, bins)
    if stacked is not None:
        return _KernelDft([node, *path], weights[:bins], weights[bins:], node, (end,), "stacked", stacked)
    halves = _halves(view, node.output[0], bins, axis)
    if halves is None:
        return None
    return _KernelDft([node, *halves[0]], weights[:bins], weights[bins:], node, halves[1], "pair")


def _dft_block(view: GraphView, signal: Signal, nodes: list[onnx.NodeProto], found: _KernelDft, how: str,
               reads: str, framing: list[Param]) -> Match | None:
    """The stft block of a kernel form, when its kernels fit a windowed DFT; `reads` is which samples frame t
    position j is (the formula's index), `framing` the parameters the form knows about its frames."""
    fitted = dft_fit(found.cos_kernel, found.sin_kernel)
    if fitted is None:
        return None
    taps, sign, error = fitted
    bins, n = found.cos_kernel.shape
    fit = fit_window(taps, tolerance(found.cos_kernel[0], WINDOW_TOLERANCE))
    hop = next((p.value for p in framing if p.name == "hop"), None)
    every = f" every {hop} samples" if hop is not None else ""
    block = Block(
        kind="stft",
        nodes=node_names(view, nodes),
        summary=(f"Short-time Fourier transform written as {how}{'-' if sign < 0 else '+'}window x sin): frames of "
                 f"{n} samples{every}, {bins} {bins_text(bins, n)} bins, "
                 f"window {fit.describe() if fit else 'unnamed'}."),
        params=[
            Param("n_fft", n, "samples", "kernel length"),
            *framing[:1],
            Param("bins", bins, "", bins_text(bins, n)),
            *window_params(fit, taps, found.cos_kernel[0]),
            Param("sign", sign_text(sign)),
            *framing[1:],
            Param("kernel fit error", float(f"{error:.2g}"), "", "relative max |kernel - w x basis|"),
            *([Param("output gain", found.gain, "", "the same constant Mul on both outputs")]
              if found.gain != 1 else []),
        ],
        formula=dft_formula(n, reads, bins, sign, fit, found.gain),
        data={"form": found.reader.op_type.lower(), "n_fft": n, "bins": bins, "window": taps,
              "window_taps": int(np.count_nonzero(taps)), "dense_mul": 2 * bins * n, "dense_add": 2 * bins * (n - 1),
              "operator": f"the two DFT {found.reader.op_type}s" if found.kernel_nodes == 2
              else f"the DFT {found.reader.op_type}"},
    )
    context = {"hop": hop} if hop is not None else {}
    out = signal.then(found.outputs, found.form, domain="spectral", n_fft=n, bins=bins,
                      complex_axis=found.complex_axis, **context)
    return Match(block, out)


def _how(found: _KernelDft, op: str) -> str:
    """How the summary names the form: two nodes (real, imaginary) or one of stacked outputs."""
    if found.kernel_nodes == 2:
        return f"two {op}s (real part: window x cos, imaginary part: "
    return f"one {op} (outputs: window x cos, then "


def recognize_conv_dft(view: GraphView, signal: Signal) -> Match | None:
    """Strided Convs on the samples with window x cos and window x sin kernels: an STFT whose hop is the stride."""
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    found = _pair(view, start, conv_kernel) or _single(view, start, conv_kernel, axis=1)
    if found is None:
        return None
    n = found.cos_kernel.shape[1]
    hop = int((attribute(found.reader, "strides") or [1])[0])
    pads = [int(p) for p in attribute(found.reader, "pads") or [0, 0]]
    framing = [Param("hop", hop, "samples", "Conv stride"),
               Param("padding", pads, "samples", "Conv pads (begin, end)"),
               Param("frames", frames_text(signal.context.get("samples", "samples"), pads, n, hop))]
    return _dft_block(view, signal, [*path, *found.nodes], found, _how(found, "strided Conv"), f"{hop}t + j",
                      framing)


def recognize_matmul_dft(view: GraphView, signal: Signal) -> Match | None:
    """Frames [.., T, n] times constant [n, bins] window x cos and window x sin matrices: the DFT of an STFT
    whose framing (and hop) the block before it recognized."""
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    found = _pair(view, start, matmul_kernel) or _single(view, start, matmul_kernel, axis=-1)
    if found is None:
        return None
    hop = signal.context.get("hop")
    framing = [Param("hop", hop, "samples", "from the framing before the MatMul")] if hop is not None else []
    return _dft_block(view, signal, [*path, *found.nodes], found, _how(found, "MatMul of the frames"), "t, j",
                      framing)


RECOGNIZERS = (recognize_conv_dft, recognize_matmul_dft)
