"""artifacts/<target>/ from a real quick profile: the chosen file, a manifest with an evidence label on every
group of numbers, report.md; a failed export leaves the previous artifacts byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnxruntime
import pytest

import toolkit
from tests.test_pipeline import write_target
from toolkit.compare import compare
from toolkit.errors import ToolkitError
from toolkit.evidence import EVIDENCE
from toolkit.export import export_folder
from toolkit.files import read_json, sha256_file, write_json
from toolkit.folder import BuildFolder
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.profiling.emulate import InstructionCounts
from toolkit.profiling.predict import predict_latency
from toolkit.report import gather
from toolkit.report.html import flatten
from toolkit.report.markdown import summary
from toolkit.select import select_folder
from toolkit.targets import Target, load_target

NAME = "export-host"


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Target]:
    """(build folder, artifacts folder, target) after a quick pipeline run with the original and one rewrite."""
    root = tmp_path_factory.mktemp("export")
    target_path = write_target(root, NAME)
    run = run_pipeline(Settings(target=str(target_path), variants=("dft-fused",), quick=True,
                                build_root=root / "build", artifacts_root=root / "artifacts"))
    return run.folder, run.artifacts, load_target(target_path)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_files_and_model(profiled: tuple[Path, Path, Target]) -> None:
    build, artifacts, _ = profiled
    chosen = read_json(build / "choice.json", "choice")["chosen"]["variant"]
    assert sorted(p.name for p in artifacts.iterdir()) == sorted([f"{chosen}.onnx", "manifest.json", "report.md"])
    assert (artifacts / f"{chosen}.onnx").read_bytes() == (build / "variants" / f"{chosen}.onnx").read_bytes()
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in artifacts.iterdir())
    assert [p.name for p in artifacts.parent.iterdir()] == [NAME]  # no staging folder left beside it


def test_manifest_holds_everything_with_evidence(profiled: tuple[Path, Path, Target]) -> None:
    _, artifacts, target = profiled
    manifest = json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["sha256"] == sha256_file(artifacts / manifest["model"]["file"])
    assert manifest["analytic_counts"]["workloads"]["stream"]["dense"]["mul"] == 2_175_504
    assert manifest["accuracy"]["gate"]["passed"] is True
    assert set(manifest["accuracy"]["by_level"]) >= {"silence", "-90 dBFS", "0 dBFS"}
    assert manifest["latency"]["workloads"]["second"]["latency_ms"]["n"] == 5  # quick settings
    assert manifest["versions"]["onnxruntime_where_measured"] == onnxruntime.__version__
    assert manifest["versions"]["toolkit"] == toolkit.__version__
    assert manifest["cpu"]["target_file"] == target.cpu.model
    assert manifest["date_utc"].endswith("+00:00")
    groups = ("analytic_counts", "accuracy", "latency", "achieved")
    labels = {group: manifest[group]["evidence"] for group in groups}
    assert labels["analytic_counts"] == "counted" and labels["latency"] == "measured-on-host"
    assert all(label in EVIDENCE or label.startswith("derived: ") for label in labels.values())


def test_changed_model_file_keeps_previous_artifacts(profiled: tuple[Path, Path, Target], tmp_path: Path) -> None:
    build, artifacts, target = profiled
    copy = tmp_path / NAME
    shutil.copytree(build, copy)
    ledger = read_json(copy / "variants.json", "variants")
    for variant in ledger["variants"]:
        variant["path"] = str(copy / "variants" / Path(variant["path"]).name)
    write_json(copy / "variants.json", ledger)
    chosen = read_json(copy / "choice.json", "choice")["chosen"]["variant"]
    (copy / "variants" / f"{chosen}.onnx").write_bytes(b"not the measured model")
    before = snapshot(artifacts)
    with pytest.raises(ToolkitError, match="changed since it was built and measured"):
        export_folder(copy, artifacts, target)
    assert snapshot(artifacts) == before
    assert [p.name for p in artifacts.parent.iterdir()] == [NAME]


def test_no_choice_keeps_previous_artifacts(profiled: tuple[Path, Path, Target], tmp_path: Path) -> None:
    build, artifacts, target = profiled
    copy = tmp_path / NAME
    shutil.copytree(build, copy)
    choice = read_json(copy / "choice.json", "choice")
    choice.update(chosen=None, reasons=["no configuration meets the policy"])
    write_json(copy / "choice.json", choice)
    before = snapshot(artifacts)
    with pytest.raises(ToolkitError, match="keeps the previous artifacts"):
        export_folder(copy, artifacts, target)
    assert snapshot(artifacts) == before


def labelled(label: str | None) -> bool:
    return label is not None and (label in EVIDENCE or label.startswith("derived: "))


def test_every_number_in_the_manifest_carries_an_evidence_label(profiled: tuple[Path, Path, Target]) -> None:
    _, artifacts, _ = profiled
    manifest = json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))
    unlabelled = [path for path, _, label in flatten(manifest) if not labelled(label) and path != "format_version"]
    assert unlabelled == []
    assert (manifest["target"]["evidence"], manifest["model"]["evidence"]) == ("target-file", "file")
    assert manifest["choice"]["policy"]["evidence"] == "setting"


def emulated_copy(build: Path, folder: Path, target: Target) -> Path:
    """The profiled build folder as an emulated board run would leave it: outputs and wall times from the runner,
    instruction counts per variant (original 4 M, the rewrite 3 M per chunk) and their real predictions."""
    shutil.copytree(build, folder)
    platform = read_json(folder / "platform.json", "platform")
    bundle = read_json(folder / "bundle" / "bundle.json", "bundle")
    rows, predictions = [], []
    for variant in bundle["variants"]:
        for workload, scale in (("stream", 1.0), ("second", 10.0)):
            total = (4e6 if variant["name"] == "original" else 3e6) * scale
            counts = InstructionCounts(variant["name"], workload, "cortex-a72", 50, total,
                                       {"simd_vector": total / 2, "integer": total / 2}, {})
            rows.append(counts.to_json())
            config = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": True,
                      "optimization": "all"}
            predictions.append({**predict_latency(counts, target).to_json(), "config": config})
    platform.update(source="emulate", description="the bench runner under qemu-aarch64",
                    latency_evidence="emulated-wall-time", output_evidence="emulated-instructions",
                    instructions={"evidence": "emulated-instructions", "rows": rows, "reason": "", "method": "m"},
                    predictions={"evidence": "predicted", "rows": predictions, "reason": ""},
                    prediction_error={"evidence": "derived", "rows": [], "ratio": None,
                                      "reason": "no board measurement"})
    write_json(folder / "platform.json", platform)
    files = BuildFolder(folder)
    files.write("compare", compare(target, files.counts(), files.profile(), "emulated-wall-time"))
    select_folder(folder, target)
    return folder


def test_an_emulated_board_shows_predictions_never_emulated_wall_time(profiled: tuple[Path, Path, Target],
                                                                      tmp_path: Path) -> None:
    build, _, _ = profiled
    rpi4 = load_target("rpi4")
    folder = emulated_copy(build, tmp_path / "rpi4", rpi4)
    out = export_folder(folder, tmp_path / "artifacts" / "rpi4", rpi4)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    labels = {label for _, _, label in flatten(manifest)}
    assert "emulated-wall-time" not in labels and all(labelled(label) for label in labels - {None})
    assert manifest["latency"]["evidence"] == "predicted" and manifest["choice"]["evidence"] == "predicted"
    assert manifest["instructions"]["rows"][0]["total"] == 3e6  # the rewrite is chosen on its prediction
    wall = {f"{r['latency_ms']['median']:.4g}" for r in read_json(folder / "profile.json", "profile")["runs"]
            if r["status"] == "ok"}
    report = (out / "report.md").read_text(encoding="utf-8")
    table = summary(gather(folder))
    assert "chunk ms `predicted`" in table and "instructions per chunk `emulated-instructions`" in table
    assert "3,000,000" in table and "4,000,000" in table
    assert not any(f"| {w} |" in table or f"| {w} |" in report for w in wall)
    assert "predicted 1.33x faster than the original" in report
    assert "emulation wall time (not a board latency)" in report


def hundredth(stats: dict[str, float]) -> dict[str, float]:
    """Latency statistics of a run 100 times faster (the run count unchanged)."""
    return {k: v if k == "n" else v / 100 for k, v in stats.items()}


def test_the_manifest_carries_the_chosen_precision_its_placement_and_its_own_verdict_where_it_ran(
        profiled: tuple[Path, Path, Target], tmp_path: Path) -> None:
    """The original run again natively on OpenVINO at f32 (the runner's format 3 records), faster than
    everything: chosen, and exported with its precision, its placement and its setting's verdict."""
    build, _, target = profiled
    folder = tmp_path / NAME
    shutil.copytree(build, folder)
    profile = read_json(folder / "profile.json", "profile")
    placement = {"nodes": 14, "by_provider": {"CPU": 14}, "labelled": 14, "method": "exec graph",
                 "precisions": {"f32": 13, "i64": 1}}
    base = [r for r in profile["runs"] if r["status"] == "ok" and r["variant"] == "original"
            and r["provider"] == "CPUExecutionProvider" and r["threads"] == 1]
    profile["runs"] = [r for r in profile["runs"] if r["engine"] != "openvino"]  # this host's own, if it has any
    profile["runs"] += [{**r, "engine": "openvino", "provider": "CPU", "spinning": None, "optimization": None,
                         "precision": "f32", "key": f"{r['key']}|openvino|f32", "placement": placement,
                         "latency_ms": hundredth(r["latency_ms"])} for r in base]
    write_json(folder / "profile.json", profile)
    platform = read_json(folder / "platform.json", "platform")
    platform["accuracy"]["original@openvino.CPU.f32"] = {
        "measured": True, "passed": True, "reasons": [], "report": {"overall": {"max_abs_db": 0.0012}}}
    write_json(folder / "platform.json", platform)
    files = BuildFolder(folder)
    files.write("compare", compare(target, files.counts(), files.profile(), files.platform().latency_evidence))
    select_folder(folder, target)
    out = export_folder(folder, tmp_path / "artifacts" / NAME, target)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["configuration"] == {
        "evidence": "setting", "engine": "openvino", "provider": "CPU", "threads": 1, "spinning": None,
        "optimization": None, "precision": "f32", "placement": {"evidence": "measured-on-host", **placement}}
    assert manifest["accuracy"]["where_measured"]["report"]["overall"]["max_abs_db"] == 0.0012
    assert set(manifest["latency"]["workloads"]) == {"stream", "second"}
    stream = next(r for r in base if r["workload"] == "stream")
    assert manifest["latency"]["workloads"]["stream"]["latency_ms"] == hundredth(stream["latency_ms"])
    assert manifest["achieved"]["workloads"]["stream"]["dense"]["mults"] == 2_175_504
    assert all(labelled(label) for path, _, label in flatten(manifest) if path != "format_version")
    assert "**original** on openvino CPU f32, 1 thr:" in (out / "report.md").read_text(encoding="utf-8")
