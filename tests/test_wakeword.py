"""The wake-word pipeline: its file validated as data, the executor's cadence, the gates, the CLI end to end.

Stand-in models with the real models' shapes are built with onnx.helper (embedding [1, 76, 32, 1] -> [1, 1, 1, 96],
classifier [1, 16, 96] -> [1, 1]) and the built-in mel graph is the first stage; nothing is downloaded and no
test asserts on a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import TEST_HOST_TARGET, bench_folders, emulated_board, free_port
from toolkit.analysis import analyze
from toolkit.cli import main
from toolkit.errors import ToolkitError
from toolkit.files import sha256_file
from toolkit.melgraph import default_model, save_model
from toolkit.profiling.ssh import Board
from toolkit.targets import load_target
from toolkit.wakeword import command, remote
from toolkit.wakeword.choose import fit, pipeline_gate
from toolkit.wakeword.emulated import predicted_sweep
from toolkit.wakeword.export import export
from toolkit.wakeword.models import StageModel, stage_models
from toolkit.wakeword.spec import PIPELINES_DIR, load_pipeline
from toolkit.wakeword.stream import open_chain, scores, settle_chunks
from toolkit.wakeword.variants import StageVariant, candidates, cheapest, combinations, stage_configs

SHIPPED = (PIPELINES_DIR / "openwakeword.toml").read_text()


def _dense(name: str, in_shape: list[int], out_shape: list[int], seed: int, sigmoid: bool = False) -> onnx.ModelProto:
    """Flatten -> MatMul (+ Sigmoid) -> Reshape: a small model with the given input and output shapes."""
    rng = np.random.default_rng(seed)
    size_in, size_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    weights = (rng.standard_normal((size_in, size_out)) / np.sqrt(size_in)).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["m"])]
    last = "m"
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["m"], ["s"]))
        last = "s"
    nodes.append(helper.make_node("Reshape", [last, "shape"], ["y"]))
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(weights, "w"),
                     numpy_helper.from_array(np.array([1, size_in], dtype=np.int64), "flat"),
                     numpy_helper.from_array(np.array(out_shape, dtype=np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Stand-in stage files: the built-in mel graph, one embedding model, two classifiers."""
    folder = tmp_path_factory.mktemp("stand-ins")
    files = {"mel": folder / "mel.onnx", "embedding": folder / "embedding.onnx",
             "classifier": [folder / "wake_a.onnx", folder / "wake_b.onnx"]}
    save_model(default_model(), files["mel"])
    save_model(_dense("embedding", [1, 76, 32, 1], [1, 1, 1, 96], seed=1), files["embedding"])
    for seed, path in enumerate(files["classifier"], 2):
        save_model(_dense("classifier", [1, 16, 96], [1, 1], seed=seed, sigmoid=True), path)
    return {"mel": [files["mel"]], "embedding": [files["embedding"]], "classifier": files["classifier"]}


# ---------------------------------------------------------------- the pipeline file


def test_shipped_pipeline_reads_as_openwakeword_streams() -> None:
    pipeline = load_pipeline("openwakeword")
    mel, embedding, classifier = pipeline.stages
    assert pipeline.rate_hz == 12.5
    assert (mel.window, mel.rows, mel.scale, mel.offset, mel.fill) == (1760, 8, 0.1, 2.0, 1.0)
    assert (embedding.source, embedding.window, embedding.input_shape) == ("mel", 76, (1, 76, 32, 1))
    assert (classifier.window, classifier.input_shape, classifier.fanout) == (16, (1, 16, 96), True)
    # 2 chunks fill the audio window, 10 the 76 mel frames, 16 the 16 embeddings.
    assert settle_chunks(pipeline) == 28


BAD_FILES = [
    (SHIPPED.replace("chunk_samples = 1280", "chunk_samples = 1280\nspeed = 2"), r":\d+: unknown key 'speed'"),
    (SHIPPED.replace("input_shape = [1, 76, 32, 1]", "input_shape = [1, 76, 32, 2]"),
     r":\d+: \[\[stage\]\] #2 input_shape \[1, 76, 32, 2\] holds 4864 values, the window 76 x row size 32"),
    (SHIPPED.replace('source = "mel"', 'source = "audio"'), r"\[\[stage\]\] #2 source must be 'mel'"),
    (SHIPPED.replace("window = 16", "window = 0"), r"\[\[stage\]\] #3 window must be positive, got 0"),
    (SHIPPED.replace("threshold = 0.5", "threshold = 1.5"), r"\[policy\] threshold must be in \(0, 1\)"),
    (SHIPPED.replace("window = 76\ninput_shape = [1, 76, 32, 1]", "window = 4\ninput_shape = [1, 4, 32, 1]"),
     r"window 4 is shorter than the 8 rows 'mel' adds per step"),
    (SHIPPED.replace("wake_words = 4", 'wake_words = "four"'), r"wake_words must be an integer, got 'four'"),
    (SHIPPED.replace('files = ["embedding_model.onnx"]', 'files = ["a.onnx", "b.onnx"]'),
     r"files must name one model \(several only with fanout = true\)"),
    (SHIPPED.replace('name = "classifier"', 'name = "embedding"'), r"\[\[stage\]\] stage names must be unique"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_pipeline_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "openwakeword.toml"
    path.write_text(text)
    with pytest.raises(ToolkitError) as error:
        load_pipeline(path)
    assert str(error.value).startswith(str(path))
    assert "\n" not in str(error.value)
    assert re.search(message, str(error.value)), str(error.value)


def test_bad_line_number_points_at_the_key(tmp_path: Path) -> None:
    path = tmp_path / "openwakeword.toml"
    path.write_text(SHIPPED.replace("window = 16", "window = 0"))
    with pytest.raises(ToolkitError) as error:
        load_pipeline(path)
    line = int(str(error.value).split(":")[1])
    assert path.read_text().splitlines()[line - 1] == "window = 0"


# ---------------------------------------------------------------- the executor


def test_first_chunk_feeds_the_embedding_ones_then_eight_transformed_frames(models: dict[str, list[Path]]) -> None:
    pipeline = load_pipeline("openwakeword")
    chain = open_chain(pipeline, models, {})
    chunk = np.random.default_rng(5).normal(0, 3000, 1280).astype(np.float32)
    chain.step(chunk)
    mel = ort.InferenceSession(str(models["mel"][0]), providers=["CPUExecutionProvider"])
    audio = np.concatenate([np.zeros(480, np.float32), chunk])[None, :]
    frames = mel.run(None, {"input": audio})[0].reshape(8, 32) / 10 + 2
    fed = chain.inputs[1].reshape(76, 32)
    assert np.all(fed[:68] == 1.0)  # the mel buffer starts as ones, as openWakeWord's
    np.testing.assert_allclose(fed[68:], frames, rtol=0, atol=1e-5)
    classifier_in = chain.inputs[2].reshape(16, 96)
    assert np.all(classifier_in[:15] == 0.0)
    np.testing.assert_array_equal(classifier_in[15], chain.outputs[1].reshape(96))


def test_n_classifiers_repeat_the_available_models(models: dict[str, list[Path]]) -> None:
    pipeline = load_pipeline("openwakeword")
    audio = np.random.default_rng(6).normal(0, 3000, 1280 * 30).astype(np.float32)
    five = scores(open_chain(pipeline, models, {}, n=5), audio, pipeline)
    assert five.shape == (30, 5)
    np.testing.assert_array_equal(five[:, 0], five[:, 2])
    np.testing.assert_array_equal(five[:, 1], five[:, 3])
    np.testing.assert_array_equal(five[:, 0], five[:, 4])
    assert np.abs(five[:, 0] - five[:, 1]).max() > 0.01  # two different classifiers


def test_classifier_with_another_window_is_refused(models: dict[str, list[Path]], tmp_path: Path) -> None:
    wide = tmp_path / "timer.onnx"
    save_model(_dense("timer", [1, 34, 96], [1, 1], seed=9, sigmoid=True), wide)
    files = {**models, "classifier": [wide]}
    with pytest.raises(ToolkitError, match=r"timer.onnx: stage 'classifier' feeds one input \[1, 16, 96\]"):
        open_chain(load_pipeline("openwakeword"), files, {})


# ---------------------------------------------------------------- gates and the fit


def test_pipeline_gate_counts_flips_and_the_largest_difference() -> None:
    policy = load_pipeline("openwakeword").policy
    original = np.array([[0.1, 0.49], [0.7, 0.2]])
    chosen = np.array([[0.1, 0.51], [0.69, 0.2]])
    gate = pipeline_gate(original, chosen, policy)
    assert gate["flips"] == 1 and gate["original_detections"] == 1
    assert gate["max_abs_score_error"] == pytest.approx(0.02)
    assert not gate["passed"]
    assert pipeline_gate(original, original + 0.001, policy)["passed"]


def test_fit_solves_the_line_for_the_budget() -> None:
    measured = [{"wake_words": n, "cpu_share": 0.05 + 0.02 * n} for n in (1, 2, 4, 8)]
    result = fit(measured, 0.26)
    assert result["largest_measured_within"] == 8
    assert result["estimated_within"] == 10  # (0.26 - 0.05) / 0.02 = 10.5
    assert result["per_classifier_share"] == pytest.approx(0.02)
    assert fit(measured, 0.1)["largest_measured_within"] == 2


# ---------------------------------------------------------------- the command


@pytest.fixture
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short streams: the command's work is checked here, its measurements belong in benchmarks/."""
    monkeypatch.setitem(command.QUICK_SECONDS, "stage", 0.2)
    monkeypatch.setitem(command.QUICK_SECONDS, "sweep", 0.3)


def _stage_args(models: dict[str, list[Path]]) -> list[str]:
    return ["--stage", "mel=builtin", "--stage", f"embedding={models['embedding'][0]}",
            *(arg for path in models["classifier"] for arg in ("--stage", f"classifier={path}"))]


@pytest.mark.usefixtures("short_streams")
def test_profile_pipeline_exports_chosen_files_with_one_manifest(models: dict[str, list[Path]], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "testhost.toml"
    target.write_text(TEST_HOST_TARGET.format(name="testhost"))
    code = main(["profile", "--pipeline", "openwakeword", "--target", str(target), "--quick", "--only", "simplified",
                 "--only", "int8-dynamic", "--only", "tflite", *_stage_args(models), "--build", str(tmp_path / "build"),
                 "--artifacts", str(tmp_path / "artifacts")])
    assert code == 0
    out = tmp_path / "artifacts" / "openwakeword" / "testhost"
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["mel", "embedding", "classifier"]
    for stage in manifest["stages"].values():
        assert stage["variant"] in ("original", "simplified")  # exact ones: int8 fails the stand-ins' gates
        for entry in stage["files"]:
            assert sha256_file(out / entry["file"]) == entry["sha256"]
        assert stage["engine"]["provider"] == "CPUExecutionProvider"
    assert [f["file"] for f in manifest["stages"]["classifier"]["files"]] == ["classifier-wake_a.onnx",
                                                                             "classifier-wake_b.onnx"]
    assert manifest["pipeline_gate"]["passed"] and manifest["pipeline_gate"]["flips"] == 0
    assert manifest["pipeline_gate"]["scores"] == 11 * 50 * 2  # 11 signals x 50 chunks x 2 classifiers
    by_n = manifest["cpu_share_by_n"]
    assert [m["wake_words"] for m in by_n] == [1, 2, 4, 8]
    assert all(set(m["stage_cpu_share"]) == {"mel", "embedding", "classifier"} for m in by_n)
    mel_mults = analyze(samples=1760, batch=1).totals("dense")["mul"]
    # embedding: [1, 2432] x [2432, 96]; each classifier [1, 1536] x [1536, 1]
    assert by_n[3]["mults_per_chunk"] == {"mul": mel_mults + 2432 * 96 + 8 * 1536, "at_most": False}
    results = json.loads((tmp_path / "build" / "openwakeword" / "testhost" / "results.json").read_text())
    int8 = next(v for v in results["stages"]["embedding"]["variants"] if v["variant"] == "int8-dynamic")
    assert int8["status"] == "built" and int8["max_abs_error"] > 0
    assert int8["passed"] == (int8["max_abs_error"] <= 0.05)  # the stage's tolerance in the pipeline file
    assert (int8["measured"] != []) == int8["passed"]  # only a gated variant is streamed
    tflite = next(v for v in results["stages"]["mel"]["variants"] if v["variant"] == "tflite")
    assert tflite["status"] == "skipped" and "not streamed" in tflite["reason"]
    unavailable = {m["status"] for v in results["stages"]["mel"]["variants"] for m in v["measured"]}
    assert unavailable == {"ok", "unavailable"}  # the test target lists a provider this build lacks
    report = (out / "report.md").read_text()
    assert "CPU share of one core while streaming, by stage and by N" in report
    assert "| chosen | 8 |" in report
    assert capsys.readouterr().out.startswith("## Wake-word pipeline openwakeword on testhost")


@pytest.mark.parametrize(("args", "message"), [
    (["--stage", "vad=x.onnx"], "pipeline 'openwakeword' has no stage 'vad'; its stages: mel, embedding, classifier"),
    (["--stage", "embedding"], "--stage 'embedding': write it as NAME=PATH"),
    (["--stage", "embedding=builtin"], "only the first stage ('mel') has a built-in graph"),
    (["--stage", "embedding=a.onnx", "--stage", "embedding=b.onnx"], "stage 'embedding' runs one model"),
    (["model.onnx", "--resume"], "MODEL, --resume does not apply with --pipeline"),
])
def test_bad_stage_arguments_exit_2_with_one_line(args: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--pipeline", "openwakeword", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_stage_file_and_unknown_board_exit_2(models: dict[str, list[Path]], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["profile", "--pipeline", "openwakeword", "--build", str(tmp_path), "--artifacts", str(tmp_path)]
    assert main(["profile", *_stage_args(models)]) == 2
    assert "--stage names a stage of a pipeline: add --pipeline NAME" in capsys.readouterr().err
    assert main([*args, *_stage_args(models)[:-2], "--stage", "classifier=/nonexistent.onnx"]) == 2
    assert "stage model '/nonexistent.onnx' is not a file" in capsys.readouterr().err
    assert main([*args, "--target", "zero2w", "--host", "pi@board", *_stage_args(models)]) == 2
    assert "ssh-keyscan -p 22 board" in capsys.readouterr().err  # a board whose key is not pinned is refused


def test_predicted_sweep_adds_the_stages_files_for_each_n() -> None:
    pipeline = load_pipeline("openwakeword")

    def variant(stage: str, *ms: float) -> StageVariant:
        measured = [{"files": [{"predicted_ms": m} for m in ms]}]
        return StageVariant(stage, "original", "built", "", [], True, 0.0, True, measured)

    combo = {"mel": variant("mel", 2.0), "embedding": variant("embedding", 20.0),
             "classifier": variant("classifier", 1.0, 2.0)}
    rows = predicted_sweep(pipeline, combo, (1, 8), "cortex-a53")
    assert rows[0]["latency_ms"]["p99"] == pytest.approx(23.0)
    eight = rows[1]
    assert eight["stage_cpu_share"]["classifier"] == pytest.approx(12.0 * 12.5 / 1000)  # 4 x 1 ms + 4 x 2 ms
    assert eight["cpu_share"] == pytest.approx(34.0 * 12.5 / 1000)
    assert eight["label"] == "predicted" and "cortex-a53" in eight["method"]


def _measured(name: str, share: float, mults: int | None = None) -> StageVariant:
    measured = [{"status": "ok", "cpu_share": share, "config": {"threads": 1, "spinning": True}}]
    counts = [{"mul": mults, "at_most": False}] if mults else None
    return StageVariant("mel", name, "built", "", [], True, 0.0, True, measured, counts)


def test_candidates_keep_the_original_beyond_the_cheapest() -> None:
    failed = StageVariant("mel", "fp16", "built", "", [], False, 3.0, False, None)
    variants = [_measured("original", 0.9), _measured("a", 0.1), _measured("b", 0.2), _measured("c", 0.3), failed]
    assert [v.name for v in candidates(variants, limit=2)] == ["a", "b", "original"]
    assert [v.name for v in candidates(variants, limit=4)] == ["a", "b", "c", "original"]


def test_near_tied_shares_go_to_fewer_multiplications_then_the_original() -> None:
    variants = [_measured("sparse", 0.0080, 800_000), _measured("original", 0.0070, 2_180_000),
                _measured("simplified", 0.0075, 2_180_000), _measured("slow", 0.0200, 100)]
    assert [v.name for v in candidates(variants, limit=4)] == ["sparse", "original", "simplified", "slow"]


def test_combinations_start_with_each_stages_best_then_step_one_stage_down() -> None:
    mel = [_measured("m0", 0.1), _measured("m1", 0.2)]
    embedding = [_measured("e0", 0.1), _measured("e1", 0.2)]
    combos = [(c["mel"].name, c["embedding"].name) for c in combinations({"mel": mel, "embedding": embedding})]
    assert combos == [("m0", "e0"), ("m0", "e1"), ("m1", "e0"), ("m1", "e1")]


def test_near_tied_configurations_go_to_fewer_threads_then_no_spinning() -> None:
    def config(threads: int, spinning: bool, share: float) -> dict[str, object]:
        return {"status": "ok", "cpu_share": share, "config": {"threads": threads, "spinning": spinning}}

    variant = StageVariant("embedding", "original", "built", "", [], True, 0.0, True,
                           [config(2, False, 0.029), config(1, True, 0.030), config(2, True, 0.020),
                            {"status": "unavailable", "config": {}}])
    assert cheapest(variant)["config"] == {"threads": 2, "spinning": True}  # 0.029 and 0.030 are > 0.025
    variant.measured[2]["cpu_share"] = 0.028
    assert cheapest(variant)["config"] == {"threads": 1, "spinning": True}


# ---------------------------------------------------------------- on a board over SSH


@pytest.fixture(scope="module")
def pi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A real sshd on 127.0.0.1 fronting the emulated Pi 4 (tests.helpers.emulated_board)."""
    with emulated_board(tmp_path_factory.mktemp("sshd")) as board:
        yield board


def _stand_ins(models: dict[str, list[Path]]) -> dict[str, list[StageModel]]:
    given = {"mel": ["builtin"], "embedding": [str(models["embedding"][0])],
             "classifier": [str(path) for path in models["classifier"]]}
    return stage_models(load_pipeline("openwakeword"), given)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.sshd
@pytest.mark.usefixtures("short_streams")
def test_pipeline_streams_on_the_board_over_ssh(models: dict[str, list[Path]], pi: Board, tmp_path: Path) -> None:
    """Every gated stage variant and both chains streamed on the (emulated) Pi by board.py, with the host's own
    stream.py and runner.py; then the choice and the export as on a host target."""
    pipeline, target = load_pipeline("openwakeword"), load_target("rpi4")
    build = tmp_path / "build"
    before = bench_folders(pi)  # other runs sharing the emulated Pi's rootfs may have theirs
    doc = command.profile_pipeline(pipeline, target, _stand_ins(models), build, only=("simplified",), quick=True,
                                   board=pi)
    assert doc["evidence"] == "measured"
    assert doc["measured_on"].startswith(f"streamed on {pi.destination} over SSH (aarch64, Python 3.11.")
    assert doc["board_check"]["cpu_part"] == "0xd08"
    for script in ("runner.py", "stream.py"):  # the board ran this host's executor and streaming loop
        shipped = build / "board" / "stages" / script
        assert sha256_file(shipped) == sha256_file(Path(remote.__file__).parent.parent / {
            "runner.py": "profiling/runner.py", "stream.py": "wakeword/stream.py"}[script])
    configs = stage_configs(target)
    for entry in doc["stages"].values():
        for variant in entry["variants"]:
            assert [m["config"] for m in variant["measured"]] == (configs if variant["passed"] else [])
            assert all(m["status"] == "ok" and m["chunks"] == 2 for m in variant["measured"])  # 0.2 s at 12.5/s
    kept = json.loads((build / "board" / "sweeps.json").read_text())
    assert kept["complete"] and kept["platform"]["machine"] == "aarch64"
    for label in ("original", "chosen"):
        rows = doc["streams"][label]
        assert rows == [{**row, "mults_per_chunk": doc["streams"][label][i]["mults_per_chunk"]}
                        for i, row in enumerate(kept["sweeps"][label])]
        assert [r["wake_words"] for r in rows] == [1, 2, 4, 8]
        for row in rows:
            assert row["chunks"] == 4 and row["latency_ms"]["n"] == 4  # 0.3 s at 12.5 chunks/s
            assert set(row["stage_cpu_share"]) == {"mel", "embedding", "classifier"}
            assert row["between_cpu_share"] == pytest.approx(row["cpu_share"] - sum(row["stage_cpu_share"].values()))
    manifest = export(doc, tmp_path / "artifacts")
    assert [m["cpu_share"] for m in manifest["cpu_share_by_n"]] == [r["cpu_share"] for r in doc["streams"]["chosen"]]
    for stage, chosen in manifest["stages"].items():
        variant = next(v for v in doc["stages"][stage]["variants"] if v["variant"] == chosen["variant"])
        assert chosen["cpu_share"] in [m["cpu_share"] for m in variant["measured"]]
        assert chosen["engine"] in configs
    assert manifest["pipeline_gate"]["passed"]
    assert bench_folders(pi) <= before  # this run's folder on the board is gone


def _unreachable(pi: Board, folder: Path) -> Board:
    """The pinned host key, at a port nothing listens on."""
    port = free_port()
    known = folder / "known_hosts"
    known.write_text(pi.known_hosts.read_text().replace(f"]:{pi.port} ", f"]:{port} "))
    return replace(pi, port=port, known_hosts=known)


@pytest.mark.qemu
@pytest.mark.sshd
@pytest.mark.parametrize(("bad", "message"), [
    ("unreachable", r"on root@127\.0\.0\.1: .* failed \(exit 255\): ssh: connect to host 127\.0\.0\.1 port \d+: "
                    "Connection refused"),
    ("no onnxruntime", r"root@127\.0\.0\.1: /usr/bin/python3 has no onnxruntime, which the pipeline's executor "
                       r"needs there \(onnxruntime==1\.32\.0 wheel: yes\)"),
])
def test_unusable_board_is_one_line_exit_2_keeping_results(bad: str, message: str, models: dict[str, list[Path]],
                                                           pi: Board, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any work; an earlier run's results and artifacts stay as they were."""
    board = _unreachable(pi, tmp_path) if bad == "unreachable" else replace(pi, python="/usr/bin/python3")
    monkeypatch.setattr(command, "Board", lambda destination: board)
    earlier = {tmp_path / "build" / "openwakeword" / "rpi4" / "results.json": '{"earlier": 1}',
               tmp_path / "artifacts" / "openwakeword" / "rpi4" / "manifest.json": '{"earlier": 2}'}
    for path, text in earlier.items():
        path.parent.mkdir(parents=True)
        path.write_text(text)
    code = main(["profile", "--pipeline", "openwakeword", "--target", "rpi4", "--host", board.destination,
                 *_stage_args(models), "--build", str(tmp_path / "build"), "--artifacts", str(tmp_path / "artifacts")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert re.search(message, err), err
    assert {path: path.read_text() for path in earlier} == earlier
