"""The anatomy from explain's blocks, and the rewrites built on it, on small front ends of the other layouts:
ONNX's STFT op (as gigaam and whisper write it) and one Conv of stacked cos and sin kernels (onnx-asr's *_conv).
Each rewrite must equal the original, and a variant that does not apply says why in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.engines import run_onnx
from toolkit.melgraph import MelParams, mel_filterbank
from toolkit.variants import build_variants, rewrites
from toolkit.variants.anatomy import NotApplicable, anatomy

N_FFT, HOP, BINS, BANDS = 256, 128, 129, 16
FILTERBANK = mel_filterbank(MelParams(n_fft=N_FFT, win_length=N_FFT, n_mels=BANDS, fmin=60.0, fmax=3800.0))
WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann: w[0] = 0


def _model(nodes: list[onnx.NodeProto], initializers: dict[str, np.ndarray], output_rank: int) -> onnx.ModelProto:
    """audio [1, samples] -> nodes -> ln(max(mel, 1e-10)) * 10 / ln 10 named "db"."""
    tail = [
        helper.make_node("MatMul", ["power_btk", "melW"], ["mel"], name="mel"),
        helper.make_node("Clip", ["mel", "amin"], ["floored"], name="floor"),
        helper.make_node("Log", ["floored"], ["ln"], name="log"),
        helper.make_node("Mul", ["ln", "db_scale"], ["db"], name="to_db"),
    ]
    values = {**initializers, "melW": FILTERBANK, "amin": np.array(1e-10, np.float32),
              "db_scale": np.array(10 / np.log(10), np.float32)}
    graph = helper.make_graph(
        [*nodes, *tail], "front-end",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("db", TensorProto.FLOAT, [None] * output_rank)],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in values.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def stft_op_model() -> onnx.ModelProto:
    """ONNX's STFT op on [1, samples, 1], power by ReduceSumSquare over (re, im), [1, frames, bands] out."""
    return _model([
        helper.make_node("Unsqueeze", ["audio", "last"], ["audio_bs1"], name="to_bs1"),
        helper.make_node("STFT", ["audio_bs1", "hop", "window"], ["spectrum"], name="stft"),
        helper.make_node("ReduceSumSquare", ["spectrum"], ["power_btk"], name="power", axes=[-1], keepdims=0),
    ], {"last": np.array([-1]), "hop": np.array(HOP), "window": WINDOW}, output_rank=3)


def stacked_conv_model() -> onnx.ModelProto:
    """One Conv of window x cos rows then -window x sin rows, reshaped to [1, 2, bins, frames] (onnx-asr's *_conv)."""
    phase = 2 * np.pi * (np.outer(np.arange(BINS), np.arange(N_FFT)) % N_FFT) / N_FFT
    kernel = np.concatenate([WINDOW * np.cos(phase), -WINDOW * np.sin(phase)])[:, None, :].astype(np.float32)
    return _model([
        helper.make_node("Unsqueeze", ["audio", "one"], ["audio_b1s"], name="to_b1s"),
        helper.make_node("Conv", ["audio_b1s", "kernel"], ["channels"], name="dft", strides=[HOP]),
        helper.make_node("Reshape", ["channels", "shape"], ["complex"], name="to_b2kt"),
        helper.make_node("ReduceSumSquare", ["complex"], ["power_bkt"], name="power", axes=[1], keepdims=0),
        helper.make_node("Transpose", ["power_bkt"], ["power_btk"], name="to_btk", perm=[0, 2, 1]),
    ], {"one": np.array([1]), "kernel": kernel, "shape": np.array([0, 2, BINS, -1])}, output_rank=3)


def _audio() -> np.ndarray:
    return np.round(np.random.default_rng(3).normal(0, 3000, (1, 2000))).astype(np.float32)


def _rewritten(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    return rewrites.apply(model, rewrites.REWRITES[name][0])


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node if node.op_type != "Constant"]


def _conv_weights(model: onnx.ModelProto) -> list[tuple[int, ...]]:
    values = {tensor.name: tensor.dims for tensor in model.graph.initializer}
    return [tuple(values[node.input[1]]) for node in model.graph.node if node.op_type == "Conv"]


def test_anatomy_reads_the_stft_op_window_and_the_filterbank() -> None:
    parts = anatomy(stft_op_model())
    assert parts.chain() == "stft -> power spectrum -> mel filterbank -> log"
    dft = parts.require_dft()
    assert (dft.form, dft.n_fft, dft.bins, dft.hop, dft.source) == ("op", N_FFT, BINS, HOP, "audio_bs1")
    np.testing.assert_array_equal(dft.window, WINDOW)
    np.testing.assert_allclose(dft.cos[1], WINDOW * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT), atol=1e-7)
    assert parts.require_mel().output == "mel"
    np.testing.assert_array_equal(parts.require_mel().weight, FILTERBANK)


def test_the_stft_op_becomes_one_fused_conv_equal_to_it() -> None:
    model = stft_op_model()
    fused = _rewritten(model, "dft-fused")
    assert "STFT" not in _ops(fused) and _conv_weights(fused) == [(2 * BINS, 1, N_FFT)]
    audio = _audio()
    np.testing.assert_allclose(run_onnx(fused, audio)[0], run_onnx(model, audio)[0], atol=2e-4)


def test_stft_op_graph_trims_taps_and_bins_and_stays_equal() -> None:
    model = stft_op_model()
    used = np.flatnonzero(FILTERBANK.any(axis=1))
    lean = _rewritten(model, "dft-400tap-fused-mel-sparse")
    # the periodic Hann's w[0] = 0 is dropped; only the bins the filterbank weighs are computed
    assert _conv_weights(lean) == [(2 * (used[-1] - used[0] + 1), 1, N_FFT - 1)]
    audio = _audio()
    np.testing.assert_allclose(run_onnx(lean, audio)[0], run_onnx(model, audio)[0], atol=2e-4)


def test_a_stacked_conv_becomes_the_stft_op_equal_to_it() -> None:
    model = stacked_conv_model()
    assert anatomy(model).require_dft().form == "stacked"
    stft = _rewritten(model, "stft-op")
    assert "Conv" not in _ops(stft) and "STFT" in _ops(stft)
    window = next(numpy_helper.to_array(n.attribute[0].t) for n in stft.graph.node if n.name == "rewrite/window")
    np.testing.assert_allclose(window, WINDOW, atol=1e-7)
    audio = _audio()
    np.testing.assert_allclose(run_onnx(stft, audio)[0], run_onnx(model, audio)[0], atol=2e-4)


def test_a_stacked_conv_trims_its_bins_through_its_reshape() -> None:
    model = stacked_conv_model()
    sparse = _rewritten(model, "mel-sparse")
    bins = int(np.ptp(np.flatnonzero(FILTERBANK.any(axis=1)))) + 1
    assert _conv_weights(sparse) == [(2 * bins, 1, N_FFT)]
    shape = next(numpy_helper.to_array(n.attribute[0].t) for n in sparse.graph.node
                 if n.op_type == "Constant" and n.output[0].endswith("_shape") and "complex" in n.output[0])
    assert shape.tolist() == [0, 2, bins, -1]
    audio = _audio()
    np.testing.assert_allclose(run_onnx(sparse, audio)[0], run_onnx(model, audio)[0], atol=2e-4)


def test_variants_that_do_not_apply_say_why(tmp_path: Path) -> None:
    names = ["dft-fused", "stft-op", "fp16-dft", "tflite"]
    stft = {v.name: v for v in build_variants(stft_op_model(), tmp_path / "op", names=names)}
    stacked = {v.name: v for v in build_variants(stacked_conv_model(), tmp_path / "conv", names=names)}
    assert stft["dft-fused"].status == "built" and stacked["stft-op"].status == "built"
    assert stacked["fp16-dft"].status == "built"
    assert stft["stft-op"].reason == "the DFT already is ONNX's STFT op"
    assert stft["fp16-dft"].reason.startswith("the DFT is ONNX's STFT op, not Convs")
    assert stacked["dft-fused"].reason.startswith("the DFT already is one Conv of stacked cos and sin kernels")
    # the writer emits [1, 1, frames, bands]; these graphs give [1, frames, bands]
    assert stft["tflite"].reason == ("the TFLite writer outputs [1, 1, frames, bands] [1, 1, 13, 16]; this graph "
                                     "outputs [1, 13, 16]")
    for variant in [*stft.values(), *stacked.values()]:
        assert variant.status in ("built", "skipped") and "\n" not in variant.reason


def test_an_unrecognized_span_is_left_alone_and_named_where_it_is_in_the_way() -> None:
    model = stft_op_model()
    mel = next(node for node in model.graph.node if node.op_type == "MatMul")
    mel.input[0] = "odd"
    model.graph.node.insert(3, helper.make_node("Relu", ["power_btk"], ["odd"], name="odd"))
    assert anatomy(model).chain() == "stft -> power spectrum -> unrecognized[Relu] -> mel filterbank -> log"
    with pytest.raises(NotApplicable, match=r"^unrecognized\[Relu\] lies between the DFT and the mel filterbank"):
        rewrites.conv_dft(model, rewrites.ConvPlan(bins=True))
    fused = _rewritten(model, "dft-fused")  # the span is not in the transform's way: kept as it is
    assert "Relu" in _ops(fused) and "STFT" not in _ops(fused)
