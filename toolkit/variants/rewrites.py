"""Exact rewrites of a front end's transform block: the same float result (within float rounding), less work.

Each rewrite replaces the nodes of one block explain recognized (toolkit.variants.anatomy) with an equivalent
of that block, wherever the block is found: the Conv DFT (a pair, one stacked Conv, or the STFT op written as
Convs) on the nonzero taps only, on the bins the mel filterbank uses only, as one fused Conv; and the Conv DFT as
ONNX's STFT op. The weights come from the model itself, the replacement hands the next block the tensors it read
before, and every rewrite is checked against the unrewritten model on random audio before it is written: one
that disagrees by more than VERIFY_TOLERANCE_DB is refused, never shipped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, version_converter

from toolkit.engines import Feed, run_session, session
from toolkit.errors import ToolkitError
from toolkit.explain.stft import dft_fit
from toolkit.melgraph import save_model
from toolkit.variants.anatomy import Anatomy, Dft, Mel, NotApplicable, anatomy, nonzero_range, prune

VERIFY_TOLERANCE_DB = 1e-3
STFT_OPSET = 17
INT64_MAX = np.iinfo(np.int64).max
# blocks that may stand between the DFT and the mel filterbank when the bins are trimmed: they act per bin
SPECTRAL_BLOCKS = frozenset({"power spectrum", "magnitude spectrum", "slice"})

Rewrite = Callable[[onnx.ModelProto], onnx.ModelProto]


@dataclass(frozen=True)
class ConvPlan:
    """What the emitted Conv DFT keeps: only the nonzero taps, only the bins the filterbank uses, one fused Conv
    (a stacked Conv and the STFT op are always written as one)."""

    taps: bool = False
    bins: bool = False
    fuse: bool = False


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    """A Constant node holding `value`, named after its output."""
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(value, name))


def _ints(values: Sequence[int]) -> np.ndarray:
    """An int64 1-D tensor, the form Slice, Split and Reshape take their index inputs in."""
    return np.array(values, dtype=np.int64)


def _add_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    """A new initializer; prune() drops the weights it replaces once nothing reads them."""
    model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))


def _slice_taps(source: str, start: int, end: int) -> list[onnx.NodeProto]:
    """Slice the samples (last axis) to [start, end): frames keep their starts and their count."""
    return [
        _constant("rewrite/taps_start", _ints([start])),
        _constant("rewrite/taps_end", _ints([end])),
        _constant("rewrite/taps_axis", _ints([-1])),
        helper.make_node("Slice", [source, "rewrite/taps_start", "rewrite/taps_end", "rewrite/taps_axis"],
                         ["rewrite/audio_taps"], name="rewrite/slice_taps"),
    ]


def _trim_mel(model: onnx.ModelProto, mel: Mel, lo: int, hi: int) -> None:
    """Point the mel MatMul at its rows lo..hi-1 (the bins kept), in the orientation it stored them."""
    weight = mel.weight[lo:hi]
    name = f"rewrite/mel_bins{lo}_{hi}"
    _add_initializer(model, name, weight if mel.operand == 1 else weight.T)
    mel.node.input[mel.operand] = name


def _copied(node: onnx.NodeProto) -> onnx.NodeProto:
    """A detached copy: nodes read from a graph are live views that die when the graph's list is cleared."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def _replace_nodes(model: onnx.ModelProto, old: Sequence[onnx.NodeProto], new: list[onnx.NodeProto]) -> None:
    """Put `new` where the first of `old` stood (keeping topological order) and remove all of `old`.

    Nodes are told apart by their first output, which is unique in a valid graph.
    """
    old_outputs = {node.output[0] for node in old}
    nodes = [_copied(node) for node in model.graph.node]
    new = [_copied(node) for node in new]
    position = next(i for i, node in enumerate(nodes) if node.output[0] in old_outputs)
    kept = [node for node in nodes if node.output[0] not in old_outputs]
    del model.graph.node[:]
    model.graph.node.extend(kept[:position] + new + kept[position:])


def _tap_range(dft: Dft, trim: bool) -> tuple[int, int]:
    """[lo, hi): the taps the emitted kernels keep: all, or the nonzero ones."""
    if not trim:
        return 0, dft.n_fft
    lo, hi = nonzero_range(np.concatenate([dft.cos, dft.sin]), axis=1)
    if (lo, hi) == (0, dft.n_fft):
        raise NotApplicable(f"the window has no all-zero taps (all {dft.n_fft} used): nothing to drop")
    if dft.pads != (0, 0):
        raise NotApplicable(f"the DFT Conv pads the samples by {list(dft.pads)}: its taps are not trimmed")
    return lo, hi


def _bin_range(parts: Anatomy, dft: Dft, trim: bool) -> tuple[int, int]:
    """[lo, hi): the bins the emitted kernels keep: all, or those the mel filterbank weighs."""
    if not trim:
        return 0, dft.bins
    mel = parts.require_mel()
    between = parts.blocks[parts.blocks.index(dft.located) + 1 : parts.blocks.index(mel.located)]
    others = [b.label for b in between if b.kind not in SPECTRAL_BLOCKS]
    if others:
        raise NotApplicable(f"{', '.join(others)} lies between the DFT and the mel filterbank: bins are not trimmed")
    rows = mel.weight.shape[0]
    if rows != dft.bins:
        raise NotApplicable(f"the DFT has {dft.bins} bins but the mel MatMul reads {rows}: cannot trim both")
    lo, hi = nonzero_range(mel.weight, axis=0)
    if (lo, hi) == (0, rows):
        raise NotApplicable(f"the mel filterbank uses all {rows} DFT bins: there is nothing to drop")
    return lo, hi


def _conv(name: str, source: str, weight_name: str, output: str, dft: Dft, taps: int) -> onnx.NodeProto:
    """A DFT Conv with the block's stride and padding."""
    pads: dict[str, Any] = {"pads": list(dft.pads)} if any(dft.pads) else {}  # make_node's **kwargs: Any
    return helper.make_node("Conv", [source, weight_name], [output], name=name, strides=[dft.hop],
                            kernel_shape=[taps], **pads)


def _reshape(name: str, source: str, shape: Sequence[int], output: str) -> list[onnx.NodeProto]:
    """A Reshape to a constant shape (0 copies the input's dim)."""
    return [_constant(f"{name}_shape", _ints(shape)),
            helper.make_node("Reshape", [source, f"{name}_shape"], [output], name=name)]


def _to_block_outputs(dft: Dft, fused: str, bins: int) -> list[onnx.NodeProto]:
    """From the fused Conv's output [B, 2 bins, T] (cos rows, then sin rows) to the tensors the block handed on,
    in its own form: the (re, im) pair, the stacked layout, or the STFT op's [B, T, bins, 2]."""
    if dft.form == "pair":
        outputs = [node.output[0] for node, _ in dft.convs]
        return [_constant("rewrite/split_sizes", _ints([bins, bins])),
                helper.make_node("Split", [fused, "rewrite/split_sizes"], outputs, name="rewrite/split_real_imag",
                                 axis=1)]
    if dft.form == "op":
        return [*_reshape("rewrite/to_b2kt", fused, [0, 2, bins, -1], "rewrite/dft_b2kt"),
                helper.make_node("Transpose", ["rewrite/dft_b2kt"], [dft.transform[0].output[0]],
                                 name="rewrite/to_btk2", perm=[0, 3, 2, 1])]
    return [new for node in dft.after for new in _with_bins(node, dft, bins)]


def _with_bins(node: onnx.NodeProto, dft: Dft, bins: int) -> list[onnx.NodeProto]:
    """A copy of a layout node after the stacked Conv; a Reshape to (..., 2, bins, ...) reshapes to `bins`."""
    copy = _copied(node)
    shape = dft.shapes.get(node.output[0])
    if shape is None or bins == dft.bins:
        return [copy]
    dims = [int(d) for d in shape.reshape(-1)]
    axis = next(i for i in range(len(dims) - 1) if dims[i] == 2 and dims[i + 1] == dft.bins)
    dims[axis + 1] = bins
    copy.input[1] = f"rewrite/{node.output[0]}_shape"
    return [_constant(copy.input[1], _ints(dims)), copy]


def conv_dft(model: onnx.ModelProto, plan: ConvPlan) -> onnx.ModelProto:
    """The transform block as Conv DFT kernels read from the model (or, for the STFT op, built from its window),
    on the nonzero taps and the used bins as `plan` says, written in the form the next block reads."""
    parts = anatomy(model)
    dft = parts.require_dft()
    if plan == ConvPlan(fuse=True) and dft.form == "stacked":
        raise NotApplicable("the DFT already is one Conv of stacked cos and sin kernels: nothing to fuse")
    tap_lo, tap_hi = _tap_range(dft, plan.taps)
    bin_lo, bin_hi = _bin_range(parts, dft, plan.bins)
    bins, taps = bin_hi - bin_lo, tap_hi - tap_lo
    cos = dft.cos[bin_lo:bin_hi, None, tap_lo:tap_hi]
    sin = dft.sin[bin_lo:bin_hi, None, tap_lo:tap_hi]
    nodes, source = [], dft.source
    if dft.form == "op":  # the STFT op reads [B, S] or [B, S, 1]; a Conv reads [B, 1, S]
        nodes += _reshape("rewrite/to_b1s", source, [0, 1, -1], "rewrite/audio_b1s")
        source = "rewrite/audio_b1s"
    if taps != dft.n_fft:
        nodes += _slice_taps(source, tap_lo, tap_hi - dft.n_fft if tap_hi < dft.n_fft else INT64_MAX)
        source = "rewrite/audio_taps"
    tag = f"{bins}bins_{taps}taps"
    if dft.form == "pair" and not plan.fuse:
        for (node, _), kernel, part in zip(dft.convs, (cos, sin), ("real", "imag"), strict=True):
            _add_initializer(model, f"rewrite/dft_{part}_{tag}", kernel)
            nodes.append(_conv(f"rewrite/dft_{part}", source, f"rewrite/dft_{part}_{tag}", node.output[0], dft, taps))
    else:
        fused = dft.convs[0][0].output[0] if dft.form == "stacked" else "rewrite/dft_fused_out"
        _add_initializer(model, f"rewrite/dft_fused_{tag}", np.concatenate([cos, sin]))
        nodes += [_conv("rewrite/dft_fused", source, f"rewrite/dft_fused_{tag}", fused, dft, taps),
                  *_to_block_outputs(dft, fused, bins)]
    if plan.bins:
        _trim_mel(model, parts.require_mel(), bin_lo, bin_hi)
    _replace_nodes(model, dft.transform, nodes)
    return prune(model)


def _at_stft_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at opset 17 at least, where the STFT op exists."""
    opset = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), STFT_OPSET)
    return model if opset >= STFT_OPSET else version_converter.convert_version(model, STFT_OPSET)


def _stft_ready(dft: Dft) -> tuple[bool, int]:
    """(one-sided, sign of the kernels' sine part) when the Conv DFT can be ONNX's STFT op, else NotApplicable."""
    if dft.form == "op":
        raise NotApplicable("the DFT already is ONNX's STFT op")
    if dft.pads != (0, 0):
        raise NotApplicable(f"the DFT Conv pads the samples by {list(dft.pads)}; the STFT op has no padding")
    if dft.bins not in (dft.n_fft // 2 + 1, dft.n_fft):
        raise NotApplicable(f"the DFT kernels have {dft.bins} rows for {dft.n_fft} taps; the STFT op gives "
                            f"n_fft/2 + 1 or n_fft bins")
    fitted = dft_fit(dft.cos, dft.sin)
    if fitted is None:
        raise NotApplicable("the DFT kernels are not one window times the DFT basis to float32 precision")
    return dft.bins == dft.n_fft // 2 + 1, fitted[1]


def stft_op(model: onnx.ModelProto) -> onnx.ModelProto:
    """The Conv DFT as ONNX's STFT op (opset 17) with the window recovered from the kernels, its [B, T, bins, 2]
    output laid out as the Conv's [B, 2 bins, T] channels and handed on in the block's own form.

    Kernel row 0 of the cosine part is w[j] cos(0) = w[j]: the window itself; n_fft is the kernel length. A
    sine part of the inverse sign (+w sin) is the op's imaginary part negated.
    """
    model = _at_stft_opset(model)
    dft = anatomy(model).require_dft()
    onesided, sign = _stft_ready(dft)
    stft = "rewrite/stft"
    nodes = [
        *_reshape("rewrite/to_bs1", dft.source, [0, -1, 1], "rewrite/audio_bs1"),
        _constant("rewrite/hop", np.array(dft.hop, dtype=np.int64)),
        _constant("rewrite/window", dft.window.astype(np.float32)),
        _constant("rewrite/n_fft", np.array(dft.n_fft, dtype=np.int64)),
        helper.make_node("STFT", ["rewrite/audio_bs1", "rewrite/hop", "rewrite/window", "rewrite/n_fft"], [stft],
                         name=stft, onesided=int(onesided)),
    ]
    if sign > 0:
        nodes += [_constant("rewrite/conjugate", np.array([1.0, -1.0], dtype=np.float32)),
                  helper.make_node("Mul", [stft, "rewrite/conjugate"], ["rewrite/stft_signed"],
                                   name="rewrite/stft_signed")]
        stft = "rewrite/stft_signed"
    channels = dft.convs[0][0].output[0] if dft.form == "stacked" else "rewrite/dft_fused_out"
    nodes += [
        helper.make_node("Transpose", [stft], ["rewrite/stft_b2kt"], name="rewrite/to_b2kt", perm=[0, 3, 2, 1]),
        *_reshape("rewrite/to_channels", "rewrite/stft_b2kt", [0, 2 * dft.bins, -1], channels),
    ]
    if dft.form == "pair":
        nodes += _to_block_outputs(dft, channels, dft.bins)
    _replace_nodes(model, [node for node, _ in dft.convs], nodes)
    return prune(model)


def _conv_rewrite(plan: ConvPlan) -> Rewrite:
    """conv_dft with this plan, as one rewrite step."""
    return functools.partial(conv_dft, plan=plan)


# variant name -> (rewrites applied in order, what it does)
REWRITES: dict[str, tuple[tuple[Rewrite, ...], str]] = {
    "dft-400tap": (
        (_conv_rewrite(ConvPlan(taps=True)),),
        "DFT Convs on the nonzero tap range read from the kernels (input sliced to match)",
    ),
    "dft-fused": (
        (_conv_rewrite(ConvPlan(fuse=True)),),
        "real and imaginary DFT in one Conv (stacked kernels); an STFT op becomes that Conv",
    ),
    "stft-op": ((stft_op,), "ONNX STFT op (opset 17) with the window recovered from the DFT Convs"),
    "mel-sparse": (
        (_conv_rewrite(ConvPlan(bins=True)),),
        "DFT and mel MatMul restricted to the bins the filterbank uses",
    ),
    "dft-400tap-fused-mel-sparse": (
        (_conv_rewrite(ConvPlan(taps=True, bins=True, fuse=True)),),
        "nonzero taps only, used bins only, one fused Conv",
    ),
}


def verify_inputs() -> list[np.ndarray]:
    """Deterministic int16-scale noise, loud and quiet, with a length that is not a whole number of hops."""
    rng = np.random.default_rng(1234)
    return [
        np.round(rng.normal(0.0, 3000.0, (1, 1919))).astype(np.float32),
        np.round(rng.normal(0.0, 3.0, (1, 1760))).astype(np.float32),
    ]


def max_db_difference(original: onnx.ModelProto, rewritten: onnx.ModelProto) -> float:
    """Largest |difference| of any output (dB for the features, exact for lengths) over verify_inputs()."""
    before, after = session(original), session(rewritten)
    return max(
        float(np.max(np.abs(ours.astype(np.float64) - theirs)))
        for audio in verify_inputs()
        for ours, theirs in zip(run_session(before, audio), run_session(after, audio), strict=True)
    )


def apply(model: onnx.ModelProto, steps: Sequence[Rewrite]) -> onnx.ModelProto:
    """Apply `steps` in order to a copy of `model` and check the result against it."""
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    for step in steps:
        rewritten = step(rewritten)
    onnx.checker.check_model(rewritten)
    difference = max_db_difference(model, rewritten)
    if not difference <= VERIFY_TOLERANCE_DB:
        raise ToolkitError(
            f"the rewrite differs from the original by {difference:.3g} dB on random audio "
            f"(limit {VERIFY_TOLERANCE_DB} dB): refused"
        )
    return rewritten


def build_rewrite(name: str, model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Write the verified rewrite `name` of `model` to `path`."""
    del calibration  # exact rewrites need no data
    steps, _ = REWRITES[name]
    save_model(apply(model, steps), path)
