"""Variants: every builder makes a real file from the model, rewrites have the structure they claim and are
checked against the original, and one builder's failure is recorded without stopping the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Model import Model

from toolkit.cli import main
from toolkit.engines import run_onnx, run_tflite
from toolkit.errors import ToolkitError
from toolkit.melgraph import MelParams, build_mel_model, default_model, mel_filterbank, padded_window
from toolkit.variants import VARIANTS, Variant, build_variants, rewrites
from toolkit.variants import fp16 as fp16_variants
from toolkit.variants.anatomy import anatomy


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    variants = build_variants(default_model(), tmp_path_factory.mktemp("variants"))
    return {variant.name: variant for variant in variants}


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every initializer and Constant-node value by tensor name."""
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _load(variant: Variant) -> onnx.ModelProto:
    return onnx.load(variant.path)


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node if node.op_type != "Constant"]


def _weights_of(model: onnx.ModelProto, op_type: str) -> list[np.ndarray]:
    constants = initializers(model)
    return [constants[node.input[1]] for node in model.graph.node if node.op_type == op_type]


def test_every_variant_is_built_as_a_real_file(built: dict[str, Variant]) -> None:
    assert list(built) == list(VARIANTS)
    for variant in built.values():
        assert variant.status == "built", f"{variant.name}: {variant.reason}"
        assert Path(variant.path).stat().st_size > 10_000
        assert Path(variant.path).suffix == {"onnx": ".onnx", "tflite": ".tflite"}[variant.format]
    folder = Path(built["original"].path).parent
    assert not list(folder.glob(".tmp-*"))  # every file went through a temp file + os.replace


def test_builders_that_do_not_apply_are_skipped_and_the_others_still_run(tmp_path: Path) -> None:
    # a graph that is not a mel front end: Log of the input
    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"], name="log")],
        "not-mel",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    variants = {v.name: v for v in build_variants(model, tmp_path, names=["original", "dft-400tap", "tflite"])}
    assert variants["original"].status == "built"
    assert variants["dft-400tap"].status == "skipped"
    assert variants["dft-400tap"].reason == "no STFT block (Conv DFT or STFT op) on the signal path; explain read: log"
    assert variants["tflite"].status == "skipped" and variants["tflite"].path is None


def test_unknown_variant_name_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="unknown variant"):
        build_variants(default_model(), tmp_path, names=["int4"])


def test_dft_400tap_slices_to_the_window_found_in_the_weights(built: dict[str, Variant]) -> None:
    model = _load(built["dft-400tap"])
    assert "Slice" in _ops(model)
    kernels = _weights_of(model, "Conv")
    # the periodic Hann's first sample is exactly 0, so of the 400-sample window at taps 56..455 only
    # 57..455 are nonzero: 399 taps, found in the weights, times cos(0) = 1 in row 0
    assert [k.shape for k in kernels] == [(257, 1, 399), (257, 1, 399)]
    np.testing.assert_allclose(kernels[0][0, 0], padded_window(MelParams())[57:456], atol=1e-7)


def test_dft_fused_is_one_conv_with_514_channels_then_split(built: dict[str, Variant]) -> None:
    model = _load(built["dft-fused"])
    assert _ops(model).count("Conv") == 1 and "Split" in _ops(model)
    assert _weights_of(model, "Conv")[0].shape == (514, 1, 512)


def test_mel_sparse_keeps_only_the_bins_the_filterbank_uses(built: dict[str, Variant]) -> None:
    model = _load(built["mel-sparse"])
    used = np.flatnonzero(mel_filterbank(MelParams()).any(axis=1))
    assert (used[0], used[-1]) == (2, 121)
    assert [k.shape for k in _weights_of(model, "Conv")] == [(120, 1, 512), (120, 1, 512)]
    assert _weights_of(model, "MatMul")[0].shape == (120, 32)


def test_combined_rewrite_is_one_400tap_conv_over_the_used_bins(built: dict[str, Variant]) -> None:
    model = _load(built["dft-400tap-fused-mel-sparse"])
    assert _weights_of(model, "Conv")[0].shape == (240, 1, 399)


def test_stft_op_uses_the_recovered_window_at_opset_17(built: dict[str, Variant]) -> None:
    model = _load(built["stft-op"])
    assert model.opset_import[0].version == 17
    stft = next(node for node in model.graph.node if node.op_type == "STFT")
    window = initializers(model)[stft.input[2]]
    np.testing.assert_allclose(window, padded_window(MelParams()), atol=1e-7)
    assert "Conv" not in _ops(model)


def test_rewrites_follow_other_parameters() -> None:
    params = MelParams(window="hamming", win_length=320, n_mels=40, fmin=20.0, fmax=7600.0, hop=128)
    model = build_mel_model(params)
    for name, (steps, _) in rewrites.REWRITES.items():
        rewritten = rewrites.apply(model, steps)
        assert rewrites.max_db_difference(model, rewritten) <= rewrites.VERIFY_TOLERANCE_DB, name
    trimmed = rewrites.apply(model, rewrites.REWRITES["dft-400tap"][0])
    # Hamming has no zero sample: all 320 window taps kept
    assert [w.shape for w in _weights_of(trimmed, "Conv")] == [(257, 1, 320), (257, 1, 320)]


def test_a_wrong_rewrite_is_refused_with_its_error() -> None:
    def louder_mel(model: onnx.ModelProto) -> onnx.ModelProto:
        weight = initializers(model)["1.melW"] * 1.01  # +0.043 dB: small, but not float rounding
        kept = [t for t in model.graph.initializer if t.name != "1.melW"]
        del model.graph.initializer[:]
        model.graph.initializer.extend([*kept, numpy_helper.from_array(weight, "1.melW")])
        return model

    with pytest.raises(ToolkitError, match=r"differs from the original by 0\.04\d* dB"):
        rewrites.apply(default_model(), [louder_mel])


def test_log_and_clamp_parameters_are_read_from_the_graph() -> None:
    parts = anatomy(build_mel_model(MelParams(amin=1e-6, top_db=60.0, ref=10.0)))
    log = parts.find("log").block.data
    assert log["floor"] == "max" and log["amin"] == pytest.approx(1e-6)
    assert log["multiplier"] == pytest.approx(10 / np.log(10), rel=1e-6)
    assert log["offset"] == pytest.approx(-10.0, rel=1e-6)
    assert parts.find("top-db clamp").block.param("top") == pytest.approx(60.0)


def test_quantized_variants_quantize_what_they_say(built: dict[str, Variant]) -> None:
    dynamic = _ops(_load(built["int8-dynamic"]))
    assert "ConvInteger" in dynamic and "MatMulInteger" in dynamic
    assert _ops(_load(built["int8-static-qdq"])).count("QuantizeLinear") >= 2

    def dequantized_inputs(name: str, op_type: str) -> bool:
        model = _load(built[name])
        producers = {out: node.op_type for node in model.graph.node for out in node.output}
        node = next(node for node in model.graph.node if node.op_type == op_type)
        return producers.get(node.input[0]) == "DequantizeLinear"

    assert dequantized_inputs("int8-conv-only", "Conv") and not dequantized_inputs("int8-conv-only", "MatMul")
    assert dequantized_inputs("int8-matmul-only", "MatMul") and not dequantized_inputs("int8-matmul-only", "Conv")


def test_fp16_dft_prescale_keeps_full_scale_int16_in_fp16_range(built: dict[str, Variant]) -> None:
    real, imag = (weight for _, weight in anatomy(default_model()).dft.convs)
    scale = fp16_variants.dft_prescale(real, imag)
    assert scale == 2.0**-8
    worst = 32768 * np.abs(real).sum(axis=(1, 2)).max() * scale
    assert fp16_variants.FP16_MAX / 4 < worst <= fp16_variants.FP16_MAX / 2
    weights = _weights_of(_load(built["fp16-dft"]), "Conv")
    assert [w.dtype for w in weights] == [np.float16, np.float16]
    full = _load(built["fp16"])
    assert full.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {t.data_type for t in full.graph.initializer if t.name.endswith("weight")} == {TensorProto.FLOAT16}


def test_tflite_is_a_flatbuffer_of_builtin_ops(built: dict[str, Variant]) -> None:
    model = Model.GetRootAsModel(Path(built["tflite"].path).read_bytes(), 0)
    names = {value: key for key, value in vars(BuiltinOperator).items() if not key.startswith("_")}
    codes = [names[model.OperatorCodes(i).BuiltinCode()] for i in range(model.OperatorCodesLength())]
    assert sorted(codes) == sorted(
        ["RESHAPE", "STRIDED_SLICE", "CONV_2D", "MUL", "BATCH_MATMUL", "MAXIMUM", "LOG", "REDUCE_MAX", "SUB"]
    )
    subgraph = model.Subgraphs(0)
    assert list(subgraph.Tensors(subgraph.Inputs(0)).ShapeSignatureAsNumpy()) == [1, -1]


def test_tflite_runs_in_litert_at_both_workloads(built: dict[str, Variant]) -> None:
    rng = np.random.default_rng(5)
    for samples, frames in ((1760, 8), (16000, 97)):
        audio = np.round(rng.normal(0, 2000, (1, samples))).astype(np.float32)
        output, mel = run_tflite(built["tflite"].path, audio, with_mel=True)
        expected = run_onnx(default_model(), audio)[0]
        assert output.shape == expected.shape == (1, 1, frames, 32)
        assert float(np.abs(output - expected).max()) < 1e-3
        assert mel.shape == (1, 1, frames, 32) and float(mel.min()) > 0


def test_variants_command_writes_files_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["variants", "--only", "dft-fused", "--only", "int8-static-qdq", "--samples", "1760", "--out", str(tmp_path)]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "dft-fused" in table and "int8-static-qdq" in table
    records = json.loads((tmp_path / "variants.json").read_text())["variants"]
    assert [r["name"] for r in records] == ["original", "dft-fused", "int8-static-qdq"]
    verdicts = json.loads((tmp_path / "accuracy.json").read_text())["variants"]
    assert verdicts["dft-fused"]["report"]["overall"]["max_abs_db"] == 0.0
    assert verdicts["int8-static-qdq"]["report"]["by_level"]["-90 dBFS"]["max_abs_db"] > 10
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [
        "dft-fused.onnx",
        "int8-static-qdq.onnx",
        "original.onnx",
    ]


def test_variants_command_refuses_a_too_short_signal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variants", "--samples", "400"]) == 2
    assert "at least 512" in capsys.readouterr().err
