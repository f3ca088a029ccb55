"""The bench runner on a real bundle: real onnxruntime and LiteRT sessions, run as a subprocess from a copy.

One quick profile (module fixture) of three variants: the default mel graph, a two-node ONNX model and a
one-op TFLite model written with LiteRT's own flatbuffer schema; the tests read its JSON and outputs.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ai_edge_litert import schema_py_generated as tfl
from onnx import TensorProto, helper

from tests.helpers import TEST_HOST_TARGET
from toolkit.errors import ToolkitError
from toolkit.melgraph import default_model, save_model
from toolkit.profiling.bundle import make_bundle
from toolkit.profiling.host import profile_on_host
from toolkit.profiling.runner import (
    QUICK,
    TimeLeft,
    outputs_path,
    parse_ort_profile,
    run_configs,
    streaming_configs,
)

TFLITE_SCALE = 3.0


def small_onnx(path: Path) -> Path:
    """output = |2 x input|, any [batch, samples]."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "samples"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "samples"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [helper.make_node("Mul", ["input", "two"], ["m"], name="scale"),
             helper.make_node("Abs", ["m"], ["output"], name="magnitude")]
    model = helper.make_model(helper.make_graph(nodes, "small", [x], [y], [two]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)
    return path


def tiny_tflite(path: Path, scale: float) -> Path:
    """A one-op TFLite model (MUL by a constant), input [1, -1], written with LiteRT's flatbuffer schema."""
    def tensor(name: str, shape: list[int], signature: list[int], buffer: int) -> tfl.TensorT:
        t = tfl.TensorT()
        t.name, t.shape, t.shapeSignature, t.type, t.buffer = name, shape, signature, tfl.TensorType.FLOAT32, buffer
        return t

    buffers = [tfl.BufferT() for _ in range(4)]
    buffers[2].data = np.frombuffer(np.float32(scale).tobytes(), np.uint8)
    graph = tfl.SubGraphT()
    graph.tensors = [tensor("input", [1, 1760], [1, -1], 1), tensor("scale", [], [], 2),
                     tensor("output", [1, 1760], [1, -1], 3)]
    graph.inputs, graph.outputs = [0], [2]
    op = tfl.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = tfl.BuiltinOptions.MulOptions, tfl.MulOptionsT()
    graph.operators = [op]
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.MUL
    code.version = 1
    model = tfl.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def signals() -> dict[str, np.ndarray]:
    """Noise at int16 scale, and 400 samples: too short for one mel frame (the mel graph must fail on it)."""
    rng = np.random.default_rng(7)
    return {"noise": rng.normal(0, 2000, (1, 16000)).astype(np.float32), "short": np.ones((1, 400), np.float32)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle built in one folder and copied to another, as scp would carry it to a board."""
    work = tmp_path_factory.mktemp("bundle")
    target = work / "testhost.toml"
    target.write_text(TEST_HOST_TARGET.format(name="testhost"))
    mel = work / "mel.onnx"
    save_model(default_model(), mel)
    variants = [("mel", mel, "onnx"), ("small", small_onnx(work / "small.onnx"), "onnx"),
                ("tiny", tiny_tflite(work / "tiny.tflite", TFLITE_SCALE), "tflite")]
    built = make_bundle(variants, str(target), signals(), work / "made")
    return Path(shutil.copytree(built, work / "copied"))


@pytest.fixture(scope="module")
def result(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One quick profile of the bundle through profile_on_host."""
    path = tmp_path_factory.mktemp("result") / "result.json"
    return path, profile_on_host(bundle, path, quick=True)


def runs_by_key(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in doc["runs"] + doc["streaming"]}


def run_runner(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(bundle / "runner.py"), str(bundle), *args],
                          capture_output=True, text=True, check=False)


def test_result_has_every_run_and_the_platform(result: tuple[Path, dict[str, Any]]) -> None:
    _, doc = result
    assert doc["complete"] is True
    # 2 onnx variants x 2 providers x 2 workloads + tflite x 2 workloads; streaming: 2 x 2 + 1.
    assert len(doc["runs"]) == 10
    assert len(doc["streaming"]) == 5
    platform = doc["platform"]
    assert platform["onnxruntime"] == ort.__version__
    assert platform["numpy"] == np.__version__
    assert platform["machine"] and platform["python"] and platform["glibc"].startswith("glibc")
    assert platform["litert_package"] == "ai-edge-litert" and platform["litert"]
    assert platform["cpu"]["flags"], "the CPU flags of /proc/cpuinfo are recorded"


def test_latency_statistics_are_consistent(result: tuple[Path, dict[str, Any]]) -> None:
    _, doc = result
    ok = [r for r in doc["runs"] if r["status"] == "ok"]
    assert len(ok) == 6
    for run in ok:
        stats = run["latency_ms"]
        assert stats["n"] == QUICK["runs"]
        assert 0 < stats["min"] <= stats["median"] <= stats["p90"] <= stats["p99"] <= stats["max"]
        assert stats["min"] <= stats["mean"] <= stats["max"]
        assert run["session_create_ms"] > 0 and run["first_inference_ms"] > 0


def test_mel_run_shapes_and_node_profile(result: tuple[Path, dict[str, Any]]) -> None:
    _, doc = result
    runs = runs_by_key(doc)
    second = runs["run|mel|onnxruntime|CPUExecutionProvider|t1|spin|all|second"]
    assert second["input_shape"] == [1, 16000]
    assert second["output_shape"] == [1, 1, 97, 32]  # floor((16000 - 512) / 160) + 1 frames
    profile = second["profile"]
    assert profile["runs_profiled"] == QUICK["runs"]
    assert all(node["calls"] == QUICK["runs"] for node in profile["nodes"])
    ops = [node["op_type"] for node in profile["nodes"]]
    assert ops.count("Conv") == 2 and "MatMul" in ops and "Log" in ops
    kernel_sum = sum(node["median_us"] for node in profile["nodes"])
    assert kernel_sum <= profile["model_run_median_us"] * 1.5


def test_unavailable_provider_is_listed_with_its_reason(result: tuple[Path, dict[str, Any]]) -> None:
    _, doc = result
    runs = runs_by_key(doc)
    for key in ("run|small|onnxruntime|XnnpackExecutionProvider|t1|spin|all|stream",
                "stream|mel|onnxruntime|XnnpackExecutionProvider|t1|spin|all"):
        assert runs[key]["status"] == "unavailable"
        assert "get_available_providers()" in runs[key]["reason"]
        assert "XnnpackExecutionProvider" in runs[key]["reason"]


def test_streaming_cadence(result: tuple[Path, dict[str, Any]]) -> None:
    _, doc = result
    stream = runs_by_key(doc)["stream|mel|onnxruntime|CPUExecutionProvider|t1|spin|all"]
    expected_chunks = round(QUICK["streaming_seconds"] * 12.5)
    assert stream["chunks"] == stream["latency_ms"]["n"] == expected_chunks
    assert stream["wall_s"] >= expected_chunks / 12.5 - 1e-3
    assert stream["cpu_share"] == pytest.approx(stream["cpu_s"] / stream["wall_s"])
    assert 0 < stream["cpu_share"] < 1
    assert stream["streams_per_core"] == math.floor(1 / stream["cpu_share"])


def test_outputs_match_a_direct_onnxruntime_run(bundle: Path, result: tuple[Path, dict[str, Any]]) -> None:
    path, doc = result
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    noise = signals()["noise"]
    with np.load(outputs_path(path)) as outputs:
        for name in ("mel", "small"):
            session = ort.InferenceSession(str(bundle / "models" / f"{name}.onnx"), options,
                                           providers=["CPUExecutionProvider"])
            np.testing.assert_array_equal(outputs[f"{name}/noise"], session.run(None, {"input": noise})[0])
        np.testing.assert_array_equal(outputs["tiny/noise"], noise * np.float32(TFLITE_SCALE))
        assert "mel/short" not in outputs.files
        assert outputs["small/short"].shape == (1, 400)
    mel = doc["outputs"]["variants"]["mel"]
    assert mel["status"] == "partial"
    assert "Invalid input shape" in mel["signals"]["short"]["reason"]


def test_resume_runs_only_what_is_missing(bundle: Path, result: tuple[Path, dict[str, Any]],
                                          tmp_path: Path) -> None:
    path, doc = result
    dropped = "run|small|onnxruntime|CPUExecutionProvider|t1|spin|all|second"
    partial = dict(doc, runs=[r for r in doc["runs"] if r["key"] != dropped])
    out = tmp_path / "resumed.json"
    out.write_text(json.dumps(partial))
    shutil.copyfile(outputs_path(path), outputs_path(out))
    finished = run_runner(bundle, "--out", str(out), "--quick", "--resume")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.count("skipped") == len(doc["runs"]) + len(doc["streaming"]) - 1 + 3
    resumed = runs_by_key(json.loads(out.read_text()))
    assert resumed[dropped]["status"] == "ok"
    kept = "run|mel|onnxruntime|CPUExecutionProvider|t1|spin|all|stream"
    assert resumed[kept] == runs_by_key(doc)[kept]


def test_resume_reruns_the_signal_pass_when_its_npz_is_gone(bundle: Path, result: tuple[Path, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    path, doc = result
    out = tmp_path / "no-npz.json"
    shutil.copyfile(path, out)
    finished = run_runner(bundle, "--out", str(out), "--quick", "--resume")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.count("skipped") == len(doc["runs"]) + len(doc["streaming"])
    with np.load(outputs_path(out)) as outputs, np.load(outputs_path(path)) as first:
        assert sorted(outputs.files) == sorted(first.files)
        np.testing.assert_array_equal(outputs["mel/noise"], first["mel/noise"])


def test_resume_refuses_other_settings(bundle: Path, result: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = result
    out = tmp_path / "r.json"
    shutil.copyfile(path, out)
    refused = run_runner(bundle, "--out", str(out), "--resume", "--only", "small")
    assert refused.returncode == 2
    assert "other settings" in refused.stderr


def test_count_only_runs_inferences_and_writes_nothing(bundle: Path, tmp_path: Path) -> None:
    counted = run_runner(bundle, "--count-only", "tiny", "--workload", "second", "--repeat", "3")
    assert counted.returncode == 0, counted.stderr
    assert "3 inferences after 1 warm-up" in counted.stderr
    wrong = run_runner(bundle, "--count-only", "mel", "--workload", "minute", "--repeat", "1")
    assert wrong.returncode == 2
    assert "stream, second" in wrong.stderr


def test_a_damaged_copy_is_refused(bundle: Path, tmp_path: Path) -> None:
    damaged = Path(shutil.copytree(bundle, tmp_path / "damaged"))
    model = damaged / "models" / "small.onnx"
    model.write_bytes(model.read_bytes()[:-1])
    refused = run_runner(damaged, "--out", str(tmp_path / "x.json"), "--only", "small")
    assert refused.returncode == 2
    assert "small.onnx" in refused.stderr and "sha256" in refused.stderr


def test_unknown_variant_lists_the_bundle(bundle: Path, tmp_path: Path) -> None:
    refused = run_runner(bundle, "--out", str(tmp_path / "x.json"), "--only", "nope")
    assert refused.returncode == 2
    assert "mel, small, tiny" in refused.stderr


def test_parse_profile_drops_warmup_runs() -> None:
    trace = [
        {"cat": "Node", "name": "a_kernel_time", "ts": 1, "dur": 50, "args": {"op_name": "Conv", "node_index": "0"}},
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 60},
        {"cat": "Node", "name": "a_kernel_time", "ts": 101, "dur": 7, "args": {"op_name": "Conv", "node_index": "0"}},
        {"cat": "Node", "name": "a_kernel_time", "ts": 201, "dur": 9, "args": {"op_name": "Conv", "node_index": "0"}},
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 10},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 12},
    ]
    profile = parse_ort_profile(trace, skip_runs=1)
    assert profile["runs_profiled"] == 2
    assert profile["nodes"] == [{"name": "a", "op_type": "Conv", "provider": None, "node_index": 0,
                                 "calls": 2, "total_us": 16, "median_us": 8.0}]
    assert profile["model_run_median_us"] == 11.0


def test_make_bundle_rejects_bad_input(tmp_path: Path) -> None:
    model = small_onnx(tmp_path / "m.onnx")
    with pytest.raises(ToolkitError, match="repeated"):
        make_bundle([("a", model, "onnx"), ("a", model, "onnx")], "x86-host", signals(), tmp_path / "b")
    with pytest.raises(ToolkitError, match="shape"):
        make_bundle([("a", model, "onnx")], "x86-host", {"flat": np.zeros(10)}, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_spinning_is_measured_only_where_workers_exist() -> None:
    bundle = {"matrix": {"providers": ["CPUExecutionProvider"], "intra_op_threads": [1, 2],
                         "graph_optimization": ["all", "basic"], "allow_spinning": [True, False]}}
    configs = run_configs(bundle, {"format": "onnx"})
    assert [(c["threads"], c["spinning"], c["optimization"]) for c in configs] == [
        (1, True, "all"), (1, True, "basic"),
        (2, True, "all"), (2, True, "basic"), (2, False, "all"), (2, False, "basic"),
    ]
    streams = streaming_configs(bundle, {"format": "onnx"})
    assert [(c["threads"], c["spinning"], c["optimization"]) for c in streams] == [
        (1, True, "all"), (2, True, "all"), (2, False, "all"),
    ]


def test_time_left_counts_each_stream_at_its_real_time_seconds() -> None:
    """Streams run in real time: two 10 s streams and one 2 s run left are about 26 s, not 3 x the average."""
    config = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": True,
              "optimization": "all", "precision": None}
    work = [("runs", "a", {}, config, {}), ("runs", "b", {}, config, {}),
            ("streaming", "c", {}, config, None), ("streaming", "d", {}, config, None)]
    left = TimeLeft(work, stream_seconds=10.0)
    assert left.words() == ""
    left.finished("runs", config, 2.0)
    assert left.words() == " (about 26 s left)"
    left.finished("streaming", config, 11.0)  # its 10 s of feeding, then 1 s of its own work
    assert left.words() == " (about 13 s left)"  # one stream at 10 + 1.5 and one run at 1.5
