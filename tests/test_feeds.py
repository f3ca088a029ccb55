"""Front ends with more inputs than the audio: a lengths input is fed the number of samples, other inputs their
default or `--input NAME=VALUE`, through variants, the accuracy gate (integer outputs compared exactly) and a
quick host profile to an exported artifact.

The front end is built here with onnx.helper: a 64-tap strided Conv filterbank, power, a 4-band MatMul, a floor
and Log (features [batch, 4, frames]), and frames = (lengths - 64) / 32 + 1 (features_lens [batch]).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import TEST_HOST_TARGET
from toolkit import accuracy
from toolkit.cli import main
from toolkit.engines import run_onnx, run_session, session
from toolkit.files import read_json
from toolkit.load import feed_plan
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.variants import build_variants

TAPS, HOP, BANDS = 64, 32, 4
POLICY = {"max_abs_db_error": 0.5, "p99_abs_db_error": 0.1}
AMIN = 1e-10


def frames(samples: int) -> int:
    return (samples - TAPS) // HOP + 1


def front_end(*, gain: bool = False, lengths_step: int = 1) -> onnx.ModelProto:
    """waveforms [batch, samples] + waveforms_lens [batch] -> features [batch, 4, frames] + features_lens.

    With `gain`, two more inputs: `gain` [1] scales the mel energies (no default: zeros), and `floor`, the Clip
    minimum, is also an initializer (its default). `lengths_step` is the constant added to the frame count: 1 is
    right, anything else gives wrong lengths.
    """
    rng = np.random.default_rng(3)
    weights = {
        "kernel": rng.normal(0.0, 0.1, (8, 1, TAPS)).astype(np.float32),
        "bands": np.abs(rng.normal(0.0, 1.0, (8, BANDS))).astype(np.float32),
        "taps": np.array(TAPS, np.int64), "hop": np.array(HOP, np.int64), "step": np.array(lengths_step, np.int64),
        "axis": np.array([1], np.int64), "floor": np.array(AMIN, np.float32),
    }
    mel = "mel_gained" if gain else "mel"
    nodes = [
        helper.make_node("Unsqueeze", ["waveforms", "axis"], ["audio_b1s"], name="to_b1s"),
        helper.make_node("Conv", ["audio_b1s", "kernel"], ["spectrum"], name="filterbank", strides=[HOP]),
        helper.make_node("Mul", ["spectrum", "spectrum"], ["power"], name="power"),
        helper.make_node("Transpose", ["power"], ["power_btk"], name="to_btk", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["power_btk", "bands"], ["mel"], name="mel"),
        *([helper.make_node("Mul", ["mel", "gain"], ["mel_gained"], name="gain")] if gain else []),
        helper.make_node("Clip", [mel, "floor"], ["floored"], name="floor"),
        helper.make_node("Log", ["floored"], ["log_mel"], name="log"),
        helper.make_node("Transpose", ["log_mel"], ["features"], name="to_bkt", perm=[0, 2, 1]),
        helper.make_node("Sub", ["waveforms_lens", "taps"], ["after_first"], name="after_first"),
        helper.make_node("Div", ["after_first", "hop"], ["hops"], name="hops"),
        helper.make_node("Add", ["hops", "step"], ["features_lens"], name="frame_count"),
    ]
    inputs = [helper.make_tensor_value_info("waveforms", TensorProto.FLOAT, ["batch_size", "N"]),
              helper.make_tensor_value_info("waveforms_lens", TensorProto.INT64, ["batch_size"])]
    if gain:
        inputs += [helper.make_tensor_value_info("gain", TensorProto.FLOAT, [1]),
                   helper.make_tensor_value_info("floor", TensorProto.FLOAT, [])]
    outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch_size", BANDS, "T"]),
               helper.make_tensor_value_info("features_lens", TensorProto.INT64, ["batch_size"])]
    graph = helper.make_graph(nodes, "two-input-front-end", inputs, outputs,
                              [numpy_helper.from_array(value, name) for name, value in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def saved(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    return accuracy.signal_set(1760)


def test_the_lengths_input_is_fed_the_number_of_samples() -> None:
    plan = {entry.name: entry for entry in feed_plan(front_end())}
    assert [(e.role, e.dtype, e.shape) for e in plan.values()] == [
        ("audio", "float32", ("batch", "samples")), ("lengths", "int64", ("batch",))]
    audio = np.random.default_rng(1).normal(0, 1000, (1, 1760)).astype(np.float32)
    features, lengths = run_onnx(front_end(), audio)
    assert lengths.tolist() == [frames(1760)] == [features.shape[2]]


def test_a_float_input_without_a_value_is_fed_zeros_and_an_initializer_is_its_default() -> None:
    model = front_end(gain=True)
    plan = {entry.name: entry for entry in feed_plan(model)}
    assert (plan["gain"].role, plan["gain"].value, plan["gain"].shape) == ("zeros", 0.0, (1,))
    assert plan["floor"].role == "initializer"
    audio = np.random.default_rng(2).normal(0, 1000, (1, 1760)).astype(np.float32)
    zeroed = run_onnx(model, audio)[0]
    np.testing.assert_allclose(zeroed, math.log(AMIN), rtol=1e-6)  # 0 x mel, floored by the initializer's value
    once, twice = (run_session(session(model, feed_plan(model, {"gain": value})), audio)[0] for value in "12")
    np.testing.assert_allclose(twice - once, math.log(2.0), atol=1e-5)


def test_variants_and_the_gate_on_a_two_input_front_end(tmp_path: Path, signals: dict[str, np.ndarray]) -> None:
    names = ["original", "simplified", "dft-fused", "int8-dynamic", "fp16", "tflite"]
    variants = {v.name: v for v in build_variants(front_end(), tmp_path, names=names)}
    assert [variants[n].status for n in names] == ["built", "built", "skipped", "built", "built", "skipped"]
    assert variants["tflite"].reason == ("the TFLite writer emits one input (the audio) and one output; this graph "
                                         "takes waveforms, waveforms_lens and outputs features, features_lens")
    reference = accuracy.run_signals(variants["original"].path, "onnx", signals)
    assert reference.names == ["features", "features_lens"]
    assert reference.outputs["silence"][1].tolist() == [frames(1760)]
    simplified = accuracy.measure(reference, variants["simplified"].path, "onnx", signals)
    assert list(simplified.by_output) == ["features"] and simplified.mismatches == []
    assert accuracy.gate(simplified, POLICY) == (True, [])
    quantized = accuracy.measure(reference, variants["int8-dynamic"].path, "onnx", signals)
    assert quantized.overall.max_abs_db == quantized.by_output["features"].max_abs_db > 0


def test_an_integer_output_that_differs_fails_the_gate_with_the_reason(
    tmp_path: Path, signals: dict[str, np.ndarray]
) -> None:
    reference = accuracy.run_signals(saved(front_end(), tmp_path / "right.onnx"), "onnx", signals)
    report = accuracy.measure(reference, saved(front_end(lengths_step=2), tmp_path / "wrong.onnx"), "onnx", signals)
    assert report.overall.max_abs_db == 0.0  # the features are the same
    reason = (f"integer output features_lens differs from the original's on 11 of 11 signals (first 'silence': "
              f"[{frames(1760) + 1}] vs [{frames(1760)}]); it must be equal")
    assert accuracy.gate(report, POLICY) == (False, [reason])


def test_input_values_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = saved(front_end(gain=True), tmp_path / "gain.onnx")
    code = main(["variants", str(model), "--only", "simplified", "--input", "gain=2", "--samples", "1760",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "input gain: given (--input gain=2)" in lines
    assert any(line.startswith("input floor: initializer (") for line in lines)
    verdicts = json.loads((tmp_path / "out" / "accuracy.json").read_text())["variants"]
    assert verdicts["simplified"]["report"]["by_output"]["features"]["max_abs_db"] == 0.0


def test_a_quick_host_profile_of_a_two_input_front_end_exports_it(tmp_path: Path) -> None:
    target = tmp_path / "feeds-host.toml"
    target.write_text(TEST_HOST_TARGET.format(name="feeds-host"), encoding="utf-8")
    settings = Settings(target=str(target), model=str(saved(front_end(), tmp_path / "front.onnx")),
                        variants=("simplified", "tflite"), quick=True, build_root=tmp_path / "build",
                        artifacts_root=tmp_path / "artifacts")
    folder = run_pipeline(settings).folder
    plan = read_json(folder / "variants.json", "variants")["inputs"]
    assert [(e["name"], e["role"]) for e in plan] == [("waveforms", "audio"), ("waveforms_lens", "lengths")]
    assert read_json(folder / "bundle" / "bundle.json", "bundle")["inputs"] == plan
    with np.load(folder / "profile.outputs.npz") as outputs:
        assert outputs["simplified/silence/1"].tolist() == [frames(16000)]
    platform = read_json(folder / "platform.json", "platform")["accuracy"]
    assert platform["simplified"]["passed"] and platform["simplified"]["report"]["mismatches"] == []
    out = settings.artifacts_root / "feeds-host"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["accuracy"]["gate"] == {"passed": True, "reasons": []}
    assert [e["role"] for e in manifest["inputs"]["feeds"]] == ["audio", "lengths"]
    assert (out / manifest["model"]["file"]).is_file()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Inputs fed" in report and "| waveforms_lens | lengths | int64 | [batch] |" in report
    assert "| tflite | yes | - | - | - | - | skipped: the TFLite writer emits one input" in report


def test_a_sample_rate_input_is_fed_the_signals_rate_and_a_refusal_is_one_line() -> None:
    """An int64 `sr` beside the audio is fed 16000 (the signal set's rate), not zeros; a model onnxruntime
    cannot run on the clip gives a ToolkitError naming the feed, not onnxruntime's exception."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from toolkit.engines import run_session, session
    from toolkit.errors import ToolkitError
    from toolkit.load import feed_plan

    graph = helper.make_graph(
        [helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["x", "srf"], ["y"]),
         helper.make_node("Reshape", ["y", "shape"], ["z"])], "rate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "N"]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.array([2, 256], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rate = next(entry for entry in feed_plan(model) if entry.name == "sr")
    assert (rate.role, rate.value) == ("rate", 16000.0)
    fed = session(model)
    (out,) = run_session(fed, np.ones((1, 512), np.float32))
    assert out.shape == (2, 256) and float(out[0, 0]) == 16000.0
    with pytest.raises(ToolkitError, match=r"could not run the model on 500 samples \(fed x as audio, sr as rate\)"):
        run_session(fed, np.ones((1, 500), np.float32))
