"""The whole pipeline on the built-in model with a reduced target matrix and the runner's quick settings: real
variants, real onnxruntime and LiteRT runs in the bundle's runner subprocess, real choice and export.

One run (module fixture) with the original, one exact rewrite, one int8 variant that must fail the gate, and the
TFLite variant; then --resume, the CLI commands, and bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import pytest

from tests.helpers import TEST_HOST_TARGET
from toolkit import cli
from toolkit.accuracy import signal_set
from toolkit.errors import ToolkitError
from toolkit.files import read_json, sha256_file
from toolkit.folder import BuildFolder, Stage, manifest_path
from toolkit.pipeline.orchestrate import STAGES, Settings, prepare, run_pipeline
from toolkit.pipeline.sources import choose_source
from toolkit.profiling import runner
from toolkit.profiling.bundle import make_bundle
from toolkit.records import (
    AccuracyFile,
    Candidate,
    Choice,
    ComparedRun,
    Comparison,
    Contradiction,
    ContradictionSummary,
    CountsFile,
    Excluded,
    LedgerFile,
    Manifest,
    PlatformFile,
    ProfileFile,
    Rejected,
    RunnerUp,
    RunRecord,
    StreamRecord,
    VariantCounts,
    VariantRecord,
    VariantsFile,
    Verdict,
)
from toolkit.targets import load_target

VARIANTS = ("dft-400tap", "int8-dynamic", "tflite")
Json = dict[str, Any]


def write_target(folder: Path, name: str = "pipeline-host") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(TEST_HOST_TARGET.format(name=name), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("pipeline")
    return Settings(target=str(write_target(root)), variants=VARIANTS, quick=True, build_root=root / "build",
                    artifacts_root=root / "artifacts")


@pytest.fixture(scope="module")
def folder(settings: Settings) -> Path:
    return run_pipeline(settings).folder


def test_every_stage_recorded(folder: Path) -> None:
    ledger = read_json(folder / "pipeline.json", "ledger")
    assert list(ledger["stages"]) == list(STAGES)
    assert ledger["inputs"]["variants"] == ["original", *VARIANTS]


def test_failed_gate_keeps_numbers_and_is_not_profiled(folder: Path) -> None:
    verdict = read_json(folder / "accuracy.json", "accuracy")["variants"]["int8-dynamic"]
    assert verdict["passed"] is False
    assert verdict["report"]["overall"]["max_abs_db"] > 0.5
    assert "-60 dBFS" in verdict["report"]["by_level"]
    profiled = {r["variant"] for r in read_json(folder / "profile.json", "profile")["runs"]}
    assert profiled == {"original", "dft-400tap", "tflite"}
    excluded = read_json(folder / "choice.json", "choice")["excluded"]
    assert excluded[0]["variant"] == "int8-dynamic"
    assert excluded[0]["reason"].startswith("not profiled: failed the gate: max |dB error|")


def test_unavailable_provider_listed_with_reason(folder: Path) -> None:
    runs = read_json(folder / "profile.json", "profile")["runs"]
    xnnpack = [r for r in runs if r["provider"] == "XnnpackExecutionProvider"]
    assert xnnpack and all(r["status"] == "unavailable" and "get_available_providers" in r["reason"]
                           for r in xnnpack)


def test_counts_per_variant(folder: Path) -> None:
    counts = read_json(folder / "counts.json", "counts")["variants"]
    assert counts["original"]["workloads"]["second"]["dense"]["mul"] == 26_377_986
    assert counts["dft-400tap"]["workloads"]["stream"]["dense"]["mul"] < 2_175_504
    assert counts["tflite"]["status"] == "not counted"
    assert "ONNX only" in counts["tflite"]["note"]


def test_choice_within_tolerance_and_not_slower_than_original(folder: Path) -> None:
    choice = read_json(folder / "choice.json", "choice")
    chosen = choice["chosen"]
    accuracy = read_json(folder / "accuracy.json", "accuracy")["variants"]
    assert accuracy[chosen["variant"]]["passed"]
    assert chosen["median_ms"] <= choice["original_best"]["median_ms"]
    assert chosen["cpu_share"] is not None and chosen["evidence"] == "measured-on-host"


def test_compare_has_every_finished_run(folder: Path) -> None:
    document = read_json(folder / "compare.json", "compare")
    profile = read_json(folder / "profile.json", "profile")
    assert len(document["runs"]) == len(profile["runs"])
    original = next(r for r in document["runs"] if r["variant"] == "original" and r["workload"] == "second"
                    and r["status"] == "ok")
    assert original["dense"]["mults_per_s"] == pytest.approx(26_377_986 / (original["median_ms"] / 1e3))
    assert {t["variant"] for t in document["nodes"]} == {"original", "dft-400tap"}


def test_artifacts(folder: Path, settings: Settings) -> None:
    out = settings.artifacts_root / "pipeline-host"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    model = out / manifest["model"]["file"]
    assert sha256_file(model) == manifest["model"]["sha256"]
    assert manifest["accuracy"]["evidence"] == "measured-on-host"
    assert manifest["analytic_counts"]["evidence"] == "counted"
    assert manifest["latency"]["workloads"]["stream"]["latency_ms"]["median"] > 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "not profiled: failed the gate" in report and "## Rank contradictions" in report


def test_each_record_reads_its_file_back_exactly(folder: Path, settings: Settings) -> None:
    """Every record from this run's files: to_json() is the file's JSON (keys, order, values) and from_json()
    of it is the record again."""
    files = BuildFolder(folder)

    def written(stage: Stage) -> Json:
        """The file as it is on disk, not through its record."""
        document: Json = json.loads(files.path(stage).read_text(encoding="utf-8"))
        return document

    variants, accuracy, choice = written("variants"), written("accuracy"), written("choice")
    counts, profile, compare = written("counts"), written("profile"), written("compare")
    cases: list[tuple[Any, Json]] = [
        (VariantsFile, variants), (AccuracyFile, accuracy), (Choice, choice), (CountsFile, counts),
        (ProfileFile, profile), (PlatformFile, written("platform")), (Comparison, compare),
        (LedgerFile, written("pipeline")), *((VariantCounts, v) for v in counts["variants"].values()),
        *((RunRecord, r) for r in profile["runs"]), *((StreamRecord, s) for s in profile["streaming"]),
        *((ComparedRun, r) for r in compare["runs"]), *((Contradiction, c) for c in compare["contradictions"]),
        *((ContradictionSummary, c) for c in compare["contradiction_summary"]),
        (Manifest, read_json(manifest_path(settings.artifacts_root / "pipeline-host"), "manifest")),
        *((VariantRecord, v) for v in variants["variants"]),
        *((Verdict, v) for v in [*accuracy["variants"].values(), *written("platform")["accuracy"].values()]),
        (Candidate, choice["chosen"]), (Candidate, choice["original_best"]),
        *((RunnerUp, r) for r in choice["runners_up"]), *((Excluded, e) for e in choice["excluded"]),
        *((Rejected, r) for r in choice["rejected"]),
    ]
    for kind, document in cases:
        record = kind.from_json(document)
        assert json.dumps(record.to_json()) == json.dumps(document), kind.__name__
        assert kind.from_json(record.to_json()) == record, kind.__name__
    assert {kind for kind, _ in cases} >= {VariantsFile, AccuracyFile, Choice, Manifest, VariantRecord, Verdict,
                                           Candidate, RunnerUp, Excluded, CountsFile, ProfileFile, PlatformFile,
                                           Comparison, LedgerFile, RunRecord, StreamRecord,
                                           ComparedRun}  # this run rejects nothing and ranks too few to contradict


def test_resume_skips_finished_stages(settings: Settings, folder: Path) -> None:
    before = read_json(folder / "pipeline.json", "ledger")["stages"]
    run_pipeline(Settings(**{**vars(settings), "resume": True}))
    assert read_json(folder / "pipeline.json", "ledger")["stages"] == before


def test_resume_refuses_another_run(settings: Settings, folder: Path) -> None:
    other = Settings(**{**vars(settings), "resume": True, "variants": ("stft-op",)})
    with pytest.raises(ToolkitError, match="belongs to another run"):
        run_pipeline(other)


def test_select_and_export_commands(settings: Settings, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--target", settings.target, "--build", str(settings.build_root)]
    assert cli.main(["select", *root]) == 0
    chosen = read_json(folder / "choice.json", "choice")["chosen"]["variant"]
    assert capsys.readouterr().out.startswith(f"chosen: {chosen} on ")
    assert cli.main(["export", *root, "--artifacts", str(settings.artifacts_root)]) == 0
    assert "manifest.json" in capsys.readouterr().out


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(write_target(tmp_path, "bad-input"))
    with pytest.raises(ToolkitError, match="unknown variant"):
        run_pipeline(Settings(target=target, variants=("int4",), build_root=tmp_path))
    assert cli.main(["profile", str(tmp_path / "missing.onnx"), "--target", target, "--build", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    board = load_target("rpi4")
    assert choose_source(board, None, None, False) == "emulate"
    assert choose_source(board, "pi@rpi4.local", None, False) == "ssh"
    assert choose_source(board, None, tmp_path / "result.json", False) == "import"


def test_imported_result_is_a_source(settings: Settings, folder: Path, tmp_path: Path) -> None:
    imported = Settings(**{**vars(settings), "imported": str(folder / "profile.json"),
                           "build_root": tmp_path / "build", "artifacts_root": tmp_path / "artifacts"})
    run = run_pipeline(imported)
    platform = read_json(run.folder / "platform.json", "platform")
    assert (platform["source"], platform["latency_evidence"]) == ("import", "measured-on-host")  # made on this CPU
    assert read_json(run.folder / "profile.json", "profile") == read_json(folder / "profile.json", "profile")
    assert read_json(run.folder / "choice.json", "choice")["chosen"] == read_json(folder / "choice.json",
                                                                                   "choice")["chosen"]


def test_no_openvino_leaves_its_settings_out_of_the_bundle_and_is_another_run(tmp_path: Path) -> None:
    """--no-openvino: the bundle the runner gets has no OpenVINO configuration (x86-host has six native ones and
    six through the plugin EP) and keeps every other, and the run identity differs, so --resume cannot mix the
    two."""
    configs, ids = {}, {}
    for openvino in (True, False):
        run = prepare(Settings(target="x86-host", openvino=openvino, build_root=tmp_path / str(openvino),
                               artifacts_root=tmp_path / "artifacts"))
        original = run.path("original.onnx")
        onnx.save(run.model, original)
        make_bundle([("original", original, "onnx")], run.target, signal_set(1600, 32768.0), run.path("bundle"))
        bundle = read_json(run.path("bundle") / "bundle.json", "the bundle")
        configs[openvino] = [(c["engine"], c["provider"]) for c in runner.run_configs(bundle, bundle["variants"][0])]
        ids[openvino] = run.ledger.run_id
    openvino_runs = [c for c in configs[True] if "openvino" in c or "OpenVINOExecutionProvider" in c]
    assert len(openvino_runs) == 12
    assert configs[False] == [c for c in configs[True] if c not in openvino_runs]
    assert ids[True] != ids[False]
