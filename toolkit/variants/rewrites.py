"""Exact rewrites of the mel graph: the same float result (within float rounding), less work.

Each rewrite reads what it needs from the model's own weights (the nonzero tap range, the used bins, the
window), composes with the others, and is checked against the unrewritten model on random audio before
it is written: a rewrite that disagrees by more than VERIFY_TOLERANCE_DB is refused, never shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, version_converter

from toolkit.errors import ToolkitError
from toolkit.melgraph import save_model
from toolkit.variants.anatomy import (
    Feed,
    NotApplicable,
    find_dft_pair,
    find_mel_stage,
    nonzero_range,
    prune,
    run_session,
    session,
)

VERIFY_TOLERANCE_DB = 1e-3
STFT_OPSET = 17
INT64_MAX = np.iinfo(np.int64).max

Rewrite = Callable[[onnx.ModelProto], onnx.ModelProto]


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    """A Constant node holding `value`, named after its output."""
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(value, name))


def _ints(values: Sequence[int]) -> np.ndarray:
    """An int64 1-D tensor, the form Slice, Split and Unsqueeze take their index inputs in."""
    return np.array(values, dtype=np.int64)


def _set_attribute(node: onnx.NodeProto, name: str, value: object) -> None:
    """Replace (or add) one attribute of `node`."""
    kept = [attribute for attribute in node.attribute if attribute.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _add_weight(model: onnx.ModelProto, node: onnx.NodeProto, name: str, value: np.ndarray) -> None:
    """Point input 1 of `node` at a new initializer `name`; prune() drops the old one once unused."""
    model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
    node.input[1] = name


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


def drop_zero_taps(model: onnx.ModelProto) -> onnx.ModelProto:
    """Slice the audio to the taps where the window is nonzero and shorten both DFT kernels to match.

    With taps lo..hi-1 nonzero out of N, slicing samples [lo, S - (N - hi)) keeps every frame's start
    (hop unchanged) and the frame count floor((S - N) / hop) + 1, so the output is the same.
    """
    pair = find_dft_pair(model)
    taps = pair.real_weight.shape[2]
    lo, hi = nonzero_range(np.concatenate([pair.real_weight, pair.imag_weight]), axis=2)
    if (lo, hi) == (0, taps):
        raise NotApplicable(f"the DFT kernels have no all-zero taps (all {taps} used): nothing to drop")
    end = hi - taps if hi < taps else INT64_MAX
    sliced = "rewrite/audio_taps"
    slice_nodes = [
        _constant("rewrite/taps_start", _ints([lo])),
        _constant("rewrite/taps_end", _ints([end])),
        _constant("rewrite/taps_axis", _ints([2])),
        helper.make_node(
            "Slice",
            [pair.signal, "rewrite/taps_start", "rewrite/taps_end", "rewrite/taps_axis"],
            [sliced],
            name="rewrite/slice_taps",
        ),
    ]
    for node, weight, tag in ((pair.real, pair.real_weight, "real"), (pair.imag, pair.imag_weight, "imag")):
        node.input[0] = sliced
        _add_weight(model, node, f"rewrite/dft_{tag}_{hi - lo}taps", weight[:, :, lo:hi])
        _set_attribute(node, "kernel_shape", [hi - lo])
    _replace_nodes(model, [pair.real], [*slice_nodes, pair.real])
    return prune(model)


def trim_bins(model: onnx.ModelProto) -> onnx.ModelProto:
    """Compute only the DFT bins the mel filterbank uses: fewer kernel rows and a smaller mel MatMul."""
    mel = find_mel_stage(model)
    pair = find_dft_pair(model)
    bins = mel.weight.shape[0]
    lo, hi = nonzero_range(mel.weight, axis=0)
    if (lo, hi) == (0, bins):
        raise NotApplicable(f"the mel filterbank uses all {bins} DFT bins: there is nothing to drop")
    if pair.real_weight.shape[0] != bins:
        raise NotApplicable(
            f"the DFT has {pair.real_weight.shape[0]} bins but the mel MatMul reads {bins}: cannot trim both"
        )
    _add_weight(model, pair.real, f"rewrite/dft_real_bins{lo}_{hi}", pair.real_weight[lo:hi])
    _add_weight(model, pair.imag, f"rewrite/dft_imag_bins{lo}_{hi}", pair.imag_weight[lo:hi])
    _add_weight(model, mel.node, f"rewrite/mel_bins{lo}_{hi}", mel.weight[lo:hi])
    return prune(model)


def fuse_dft(model: onnx.ModelProto) -> onnx.ModelProto:
    """One Conv with the real and imaginary kernels stacked (2 x bins channels), then Split back in two."""
    pair = find_dft_pair(model)
    bins = pair.real_weight.shape[0]
    fused = onnx.NodeProto()
    fused.CopyFrom(pair.real)
    fused.name = "rewrite/dft_fused"
    fused.output[0] = "rewrite/dft_fused_out"
    _add_weight(model, fused, "rewrite/dft_fused_weight", np.concatenate([pair.real_weight, pair.imag_weight]))
    split = helper.make_node(
        "Split",
        ["rewrite/dft_fused_out", "rewrite/split_sizes"],
        [pair.real.output[0], pair.imag.output[0]],
        name="rewrite/split_real_imag",
        axis=1,
    )
    _replace_nodes(model, [pair.real, pair.imag], [fused, _constant("rewrite/split_sizes", _ints([bins, bins])), split])
    return prune(model)


def stft_op(model: onnx.ModelProto) -> onnx.ModelProto:
    """The ONNX STFT op (opset 17) with the window recovered from the kernels, squared and summed to power.

    Real kernel row 0 is w[j] * cos(0) = w[j], so it is the window itself; n_fft is the kernel length.
    """
    pair = find_dft_pair(model)
    mel = find_mel_stage(model)
    bins, _, n_fft = pair.real_weight.shape
    if bins != n_fft // 2 + 1:
        raise NotApplicable(f"the DFT kernels have {bins} rows for {n_fft} taps; STFT needs n_fft/2 + 1 rows")
    model = version_converter.convert_version(model, STFT_OPSET)
    producer = next(node for node in model.graph.node if mel.power in node.output)
    new_nodes = [
        helper.make_node("Transpose", [pair.signal], ["rewrite/audio_bsc"], name="rewrite/to_bsc", perm=[0, 2, 1]),
        _constant("rewrite/hop", np.array(pair.hop, dtype=np.int64)),
        _constant("rewrite/window", pair.real_weight[0, 0].astype(np.float32)),
        _constant("rewrite/n_fft", np.array(n_fft, dtype=np.int64)),
        helper.make_node(
            "STFT",
            ["rewrite/audio_bsc", "rewrite/hop", "rewrite/window", "rewrite/n_fft"],
            ["rewrite/stft"],
            name="rewrite/stft",
            onesided=1,
        ),
        helper.make_node("Mul", ["rewrite/stft", "rewrite/stft"], ["rewrite/stft_squared"], name="rewrite/square"),
        _constant("rewrite/last_axis", _ints([-1])),
        helper.make_node(
            "ReduceSum",
            ["rewrite/stft_squared", "rewrite/last_axis"],
            ["rewrite/power_btk"],
            name="rewrite/re2_plus_im2",
            keepdims=0,
        ),
        _constant("rewrite/channel_axis", _ints([1])),
        helper.make_node(
            "Unsqueeze", ["rewrite/power_btk", "rewrite/channel_axis"], [mel.power], name="rewrite/to_b1tk"
        ),
    ]
    _replace_nodes(model, [producer], new_nodes)
    return prune(model)


# variant name -> (rewrites applied in order, what it does)
REWRITES: dict[str, tuple[tuple[Rewrite, ...], str]] = {
    "dft-400tap": (
        (drop_zero_taps,),
        "DFT Convs on the nonzero tap range read from the kernels (input sliced to match)",
    ),
    "dft-fused": ((fuse_dft,), "real and imaginary DFT in one Conv (stacked kernels) + Split"),
    "stft-op": ((stft_op,), "ONNX STFT op (opset 17) with the recovered window, then re^2 + im^2"),
    "mel-sparse": ((trim_bins,), "DFT and mel MatMul restricted to the bins the filterbank uses"),
    "dft-400tap-fused-mel-sparse": (
        (drop_zero_taps, trim_bins, fuse_dft),
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
