"""artifacts/<target>/: the chosen model file, manifest.json and report.md, replaced only as a whole.

The new folder is built beside the old one and swapped in with os.replace once every file is written, so an
interrupted or failed export leaves the previous artifacts intact. Every number in manifest.json sits in a group
with an `evidence` label (toolkit.evidence.EVIDENCE says what each label means).

    python -m toolkit export --target x86-host      # from build/x86-host/ (after `profile`)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

import toolkit
from toolkit.configs import STREAM_FIELDS, WITHOUT_SPINNING, same
from toolkit.errors import ToolkitError
from toolkit.evidence import (
    COUNTED,
    EMULATED,
    EMULATED_TIME,
    ESTIMATED,
    EVIDENCE,
    EXPLAINED,
    FILE,
    PREDICTED,
    SETTING,
    TARGET_FILE,
)
from toolkit.files import Json, sha256_file, swap_in_dir
from toolkit.folder import BuildFolder, manifest_path, write_manifest
from toolkit.profiling.runner import now_utc
from toolkit.records import (
    AccuracyFile,
    Candidate,
    Choice,
    ComparedRun,
    Comparison,
    Manifest,
    PlatformFile,
    ProfileFile,
    Rows,
    RunRecord,
    StreamRecord,
    VariantRecord,
)
from toolkit.records.base import field_json
from toolkit.report import Gathered, gather
from toolkit.report.markdown import render
from toolkit.targets import Target, load_target

FORMAT_VERSION = 1
FILE_MODE = 0o644
EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite"}
REPO = Path(__file__).resolve().parent.parent


def toolkit_commit() -> str | None:
    """The git commit of this toolkit checkout, None outside a git checkout."""
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except OSError:
        return None
    return done.stdout.strip() or None


def _runs_of(profile: ProfileFile, chosen: Candidate) -> dict[str, RunRecord]:
    """The chosen configuration's finished runs, by workload."""
    return {r.workload: r for r in profile.ok_runs() if same(r, chosen.run())}


def _streaming_of(profile: ProfileFile, chosen: Candidate) -> StreamRecord | None:
    """The chosen variant's streaming run in the same configuration but the optimization level, if it was made."""
    return next((s for s in profile.streaming if s.ok and same(s, chosen.run(), STREAM_FIELDS)), None)


def _of_variant(rows: list[Json], name: str) -> list[Json]:
    """The rows of a platform.json group (instructions, predictions, prediction_error) for one variant."""
    return [r for r in rows if r["variant"] == name]


def _predictions_of(predictions: Rows, chosen: Candidate) -> list[Json]:
    """The predictions of the chosen variant in the chosen configuration (one row per workload)."""
    return [r for r in _of_variant(predictions.rows, chosen.variant)
            if same(r["config"], chosen.config(), WITHOUT_SPINNING)]


def configuration_section(profile: ProfileFile, platform_file: PlatformFile, chosen: Candidate) -> Json:
    """The chosen engine settings, and where the engine placed the graph's nodes in the chosen run (None when
    the runner recorded no placement: older results, LiteRT)."""
    placement = next((r.placement for r in profile.ok_runs() if r.workload == "stream"
                      and r.variant == chosen.variant and same(r, chosen.config(), WITHOUT_SPINNING)), None)
    return {"evidence": SETTING, **chosen.config(),
            "placement": None if placement is None else {"evidence": platform_file.output_evidence, **placement}}


def _run_latency(run: RunRecord) -> Json:
    """What the manifest states of one timed run."""
    return {"input_shape": run.input_shape, "session_create_ms": run.session_create_ms,
            "first_inference_ms": run.first_inference_ms, "warmup": run.warmup,
            "latency_ms": field_json(run.latency_ms), "timer": run.timer}


def _stream_latency(stream: StreamRecord) -> Json:
    """What the manifest states of the streaming run."""
    return {"chunks": stream.chunks, "chunk_samples": stream.chunk_samples, "rate_hz": stream.rate_hz,
            "cpu_share": stream.cpu_share, "streams_per_core": stream.streams_per_core,
            "latency_ms": field_json(stream.latency_ms), "deadline_misses": stream.deadline_misses,
            "method": stream.method}


def latency_section(profile: ProfileFile, platform_file: PlatformFile, chosen: Candidate) -> Json:
    """Latency statistics of the chosen configuration, per workload, plus its streaming run; under emulation
    the predicted latencies instead (emulation wall time is not a board latency and is left out)."""
    if platform_file.latency_evidence == EMULATED_TIME:
        return {"evidence": PREDICTED, "measured": False,
                "note": "no latency measured: emulation wall time (not a board latency) is left out; these are "
                        "predictions from emulated instruction counts",
                "workloads": {p["workload"]: {"latency_ms": p["latency_ms"], "bound": p["bound"],
                                              "bounds_ms": p["bounds_ms"]}
                              for p in _predictions_of(platform_file.predictions, chosen)}}
    stream = _streaming_of(profile, chosen)
    return {
        "evidence": platform_file.latency_evidence,
        "settings": profile.settings,
        "workloads": {name: _run_latency(run) for name, run in _runs_of(profile, chosen).items()},
        "streaming": None if stream is None else _stream_latency(stream),
    }


def _achieved_row(row: ComparedRun) -> Json:
    """A compared run's counts status and achieved numbers, each only when compare wrote it."""
    values = {"counts": row.counts, "dense": row.dense, "effective": row.effective,
              "peak_mults_per_s": row.peak_mults_per_s, "note": row.note}
    return {key: field_json(value) for key, value in values.items() if value is not None}


def achieved_section(compare: Comparison, platform_file: PlatformFile, chosen: Candidate) -> Json:
    """Achieved mults/s of the chosen configuration per workload against the target's estimated peak."""
    if compare.not_timed:
        return {"evidence": EMULATED_TIME, "note": compare.not_timed}
    rows = {r.workload: r for r in compare.runs if r.status == "ok" and same(r, chosen.run())}
    return {
        "evidence": f"derived: {COUNTED} mults / {platform_file.latency_evidence} median; peak {ESTIMATED}",
        "peak_method": compare.peak["method"],
        "workloads": {name: _achieved_row(row) for name, row in rows.items()},
    }


def choice_section(choice: Choice, chosen: Candidate) -> Json:
    """The choice with its rule, reasons, policy, the original's best configuration and the runners-up."""
    return {"evidence": chosen.evidence, "rule": choice.rule, "reasons": choice.reasons,
            "policy": {"evidence": SETTING, **choice.policy},
            "inference_audio": {"evidence": EXPLAINED, **choice.inference_audio},
            "beats_original": choice.beats_original,
            "original_best": choice.original_best.to_json() if choice.original_best else None,
            "runners_up": [r.to_json() for r in choice.runners_up]}


def accuracy_section(accuracy: AccuracyFile, platform_file: PlatformFile, chosen: Candidate) -> Json:
    """The chosen variant's gate and errors on this host, and its outputs' where the runs ran."""
    verdict = accuracy.variants[chosen.variant]
    where = platform_file.accuracy.get(chosen.outputs)
    return {"evidence": accuracy.evidence, "method": accuracy.method, "signals": accuracy.signals,
            "gate": {"passed": verdict.passed, "reasons": verdict.reasons}, **(verdict.report or {}),
            "where_measured": {"evidence": platform_file.output_evidence, **(where.to_json() if where else {})}}


def manifest(data: Gathered, target: Target, model_file: Path, chosen: Candidate, variant: VariantRecord) -> Manifest:
    """manifest.json's content for the chosen candidate and its variant."""
    name = chosen.variant
    platform_file, measured_on = data.platform, data.profile.platform
    error = platform_file.prediction_error
    return Manifest(
        format_version=FORMAT_VERSION,
        date_utc=now_utc(),
        target={"evidence": TARGET_FILE, "name": target.name, "description": target.description, "kind": target.kind,
                "file": str(target.path), "cpu": vars(target.cpu) | {"isa_flags": list(target.cpu.isa_flags)}},
        model={"evidence": FILE, "file": model_file.name, "sha256": sha256_file(model_file),
               "bytes": model_file.stat().st_size, "variant": name, "format": variant.format, "exact": variant.exact,
               "description": variant.description, "input_model": data.ledger.inputs["model"]},
        inputs={"evidence": SETTING, "note": "what each graph input is fed on every run, and why",
                "feeds": data.inputs, "audio_scale": data.ledger.inputs.get("audio_scale", "int16")},
        configuration=configuration_section(data.profile, platform_file, chosen),
        choice=choice_section(data.choice, chosen),
        analytic_counts={"evidence": COUNTED, **data.counts.variants[name].to_json()},
        accuracy=accuracy_section(data.accuracy, platform_file, chosen),
        latency=latency_section(data.profile, platform_file, chosen),
        predicted_latency={"evidence": PREDICTED, "rows": _predictions_of(platform_file.predictions, chosen),
                           "reason": platform_file.predictions.reason},
        instructions={"evidence": EMULATED, "method": platform_file.instructions.method,
                      "rows": _of_variant(platform_file.instructions.rows, name),
                      "reason": platform_file.instructions.reason},
        prediction_error={"evidence": error.evidence, "ratio_over_variants": error.ratio, "rows": error.rows,
                          "reason": error.reason},
        achieved=achieved_section(data.compare, platform_file, chosen),
        versions={
            "toolkit": toolkit.__version__, "toolkit_commit": toolkit_commit(),
            "onnxruntime_where_measured": measured_on.get("onnxruntime"),
            "litert_where_measured": measured_on.get("litert"),
            "onnxruntime_here": onnxruntime.__version__, "python_here": platform.python_version(),
            "numpy_here": np.__version__,
        },
        cpu={"where_measured": measured_on.get("cpu", {}).get("model"), "target_file": target.cpu.model},
        platform_where_measured={"evidence": platform_file.output_evidence, **measured_on},
        evidence_labels=EVIDENCE,
    )


def export_folder(folder: Path, out: Path, target: Target, bench: Path | None = None) -> Path:
    """Write artifacts for the choice in `folder` into `out` (e.g. artifacts/x86-host); returns `out`."""
    gathered = gather(folder, bench)
    chosen = gathered.choice.chosen
    if chosen is None:
        why = "; ".join(gathered.choice.reasons)
        raise ToolkitError(f"no variant meets target {target.name!r}'s policy ({why}); {out} keeps the previous "
                           f"artifacts; see {BuildFolder(folder).path('choice')}")
    variant = next(v for v in gathered.variants if v.name == chosen.variant)
    source = Path(variant.path or "")
    if sha256_file(source) != variant.sha256:
        raise ToolkitError(f"{variant.path} changed since it was built and measured; run `make profile` again")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model_file = staging / f"{chosen.variant}{EXTENSIONS[variant.format]}"
        shutil.copyfile(source, model_file)
        os.chmod(model_file, FILE_MODE)
        write_manifest(staging, manifest(gathered, target, model_file, chosen, variant))
        (staging / "report.md").write_text(render(gathered), encoding="utf-8")
        for path in (manifest_path(staging), staging / "report.md", staging):
            os.chmod(path, FILE_MODE if path.is_file() else 0o755)
        swap_in_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="x86-host", help="target name or .toml file (default x86-host)")
    parser.add_argument("--build", type=Path, default=Path("build"),
                        help="build root holding <target>/ from `profile` (default build)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"),
                        help="artifacts root; the folder <target>/ in it is replaced (default artifacts)")
    parser.add_argument("--bench", type=Path, help="a pytest-benchmark JSON to add to report.md (default for a host "
                                                   "target: BUILD/bench/benchmark.json from make bench, if present)")


def run(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    bench = args.bench or (args.build / "bench" / "benchmark.json" if target.kind == "host" else None)
    out = export_folder(args.build / target.name, args.artifacts / target.name, target, bench)
    print(f"exported to {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0

