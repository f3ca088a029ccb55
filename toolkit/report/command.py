"""`python -m toolkit report [--target T ...] [--format md|html ...]`: the reports people read, from result files.

Reads what `make profile` wrote (build/<target>/ stage files: variants, accuracy, counts, profile, platform,
compare, choice; artifacts/<target>/manifest.json) for every target named, or for every target that has results
when none is named, and writes build/report/report.html (one self-contained file) and build/report/report.md
(with its plots beside it as SVG files). Nothing is measured here: every number comes from those files or from
the analyzer run on the original model file the profile stage built.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from rich.console import Console

from toolkit.analysis import analyze
from toolkit.errors import ToolkitError
from toolkit.explain import explain
from toolkit.files import Json, write_text_atomic
from toolkit.folder import FILES, BuildFolder, Stage, manifest_path, read_manifest
from toolkit.records import AccuracyFile, Candidate, CountsFile
from toolkit.report import gather, markdown
from toolkit.report.html import ModelView, TargetView, all_plots, plain, render_html
from toolkit.targets import load_target
from toolkit.terminal import Output, add_output_flags, rich_table
from toolkit.variants.anatomy import anatomy

FORMATS = ("html", "md")
REFERENCE_SAMPLES = 16000
# the signal drawn as a spectrogram, first one present wins
SPECTROGRAM_SIGNALS = ("speech-am-fm-30dBFS", "sweep-10dBFS", "noise-30dBFS")
REQUIRED: tuple[Stage, ...] = ("profile", "choice")


def targets_with_results(build: Path) -> list[str]:
    """Target folders under build/ that hold a profile and a choice."""
    if not build.is_dir():
        return []
    return sorted(p.name for p in build.iterdir() if all(BuildFolder(p).has(stage) for stage in REQUIRED))


# ---------------------------------------------------------------- the model


def model_view(path: Path) -> ModelView:
    """Counts at one second of audio, the equation, and the window and filterbank explain recognized."""
    model = onnx.load(str(path))
    explanation = explain(model)
    parts = anatomy(model)
    mel = explanation.block("mel filterbank")
    rate = int(mel.param("sample rate")) if mel is not None else REFERENCE_SAMPLES
    return ModelView(
        analysis=analyze(model, batch=1, samples=REFERENCE_SAMPLES, sample_rate=rate).to_json(),
        equation=explanation.equation["text"],
        blocks=[{"kind": b.kind, "summary": b.summary} for b in explanation.blocks],
        window=None if parts.dft is None else parts.dft.window,
        filterbank=None if parts.mel is None else np.asarray(parts.mel.weight, dtype=np.float64),
        sample_rate=rate,
        notes=[f"model file: {path}"] + [f"finding [{f.kind}]: {f.message}" for f in explanation.findings],
    )


# ---------------------------------------------------------------- result files -> view


def counts_view(document: CountsFile) -> dict[str, dict[str, Json]]:
    """variant -> workload -> {dense, effective, nodes: {name: dense mul}} from counts.json."""
    return {
        name: {w: {"dense": entry.dense["mul"], "effective": entry.effective["mul"],
                   "nodes": {n["name"]: n["mul"]["dense"] for n in entry.nodes if n["mul"]["dense"] is not None}}
               for w, entry in variant.workloads.items()}
        for name, variant in document.variants.items()
    }


def choice_numbers(chosen: Candidate, accuracy: AccuracyFile) -> list[tuple[str, Any, str, str]]:
    """The headline numbers of the choice: (label, value, unit, evidence)."""
    verdict = accuracy.variants.get(chosen.variant)
    overall, evidence = verdict.overall if verdict else {}, chosen.evidence
    rows = [("median, 1760-sample chunk", chosen.median_ms, " ms", evidence),
            ("p90, 1760-sample chunk", chosen.p90_ms, " ms", evidence),
            ("median, 16000 samples", chosen.second_median_ms, " ms", evidence),
            (f"real-time factor (median / {chosen.audio_ms:g} ms of audio per inference)",
             chosen.realtime_factor, "", evidence),
            ("CPU share of one core, streaming", chosen.cpu_share, "", evidence),
            ("streams per core", chosen.streams_per_core, "", evidence),
            ("max |dB error| vs original", overall.get("max_abs_db"), " dB", accuracy.evidence),
            ("file size", chosen.bytes, " bytes", "")]
    return [row for row in rows if row[1] is not None]


def spectrogram(folder: Path, variant: str | None) -> Json | None:
    """One signal's output through the original and through the chosen variant, as [frames, bands]."""
    path = BuildFolder(folder).outputs
    if variant is None or not path.is_file():
        return None
    with np.load(path) as npz:
        keys = set(npz.files)
        signal = next((s for s in SPECTROGRAM_SIGNALS if {f"original/{s}", f"{variant}/{s}"} <= keys), None)
        if signal is None:
            return None
        original, chosen = npz[f"original/{signal}"], npz[f"{variant}/{signal}"]
    bands = original.shape[-1]
    return {"signal": signal, "variant": variant, "original": original.reshape(-1, bands),
            "chosen": chosen.reshape(-1, bands)}


def collect(name: str, build: Path = Path("build"), artifacts: Path = Path("artifacts")) -> TargetView:
    """Everything the report shows for one target, from its result files (toolkit.report.gather)."""
    folder = build / name
    files = BuildFolder(folder)
    missing = [files.path(stage).name for stage in REQUIRED if not files.has(stage)]
    if missing:
        raise ToolkitError(f"{folder} lacks {', '.join(missing)}; run `make profile TARGET={name}` first")
    data = gather(folder)
    target = load_target(data.ledger.inputs["target"]["file"])
    manifest = read_manifest(artifacts / name)
    choice, platform, compare = data.choice, data.platform, data.compare
    chosen = choice.chosen
    shown = None
    if chosen is not None:
        shown = {**chosen.to_json(), "numbers": choice_numbers(chosen, data.accuracy)}
    sources: dict[str, str] = {stage: str(files.path(stage)) for stage in FILES}
    if manifest:
        sources["manifest"] = str(manifest_path(artifacts / name))
    original = folder / "variants" / "original.onnx"
    return TargetView(
        name=name, description=target.description,
        cpu=f"{target.cpu.model} ({target.cpu.cores} cores, {target.cpu.clock_ghz} GHz)",
        peak={int(t): float(v) for t, v in compare.peak["mults_per_s"].items()},
        peak_method=compare.peak["method"],
        latency_evidence=platform.latency_evidence, output_evidence=platform.output_evidence,
        choice=shown, facts=data.facts, manifest=manifest.to_json() if manifest else {},
        accuracy=data.accuracy.variants,
        runs=data.profile.runs, counts=counts_view(data.counts),
        model=model_view(original) if original.is_file() else ModelView(analysis={}),
        spectrogram=spectrogram(folder, chosen.variant if chosen else None),
        data=data, contradictions=compare.contradiction_summary, node_rows=compare.nodes,
        sources=sources,
    )


def markdown_report(views: list[TargetView], plots_dir: str) -> tuple[str, dict[str, str]]:
    """report.md: each target's Markdown report (toolkit.report.markdown) followed by its plots as SVG files;
    returns the text and {file name: svg}."""
    parts, files = [f"# meltoolkit report: {', '.join(v.name for v in views)}\n"], {}
    for view in views:
        parts.append(markdown.render(view.data))
        parts.append(f"\n## Plots for {view.name}\n")
        for section in all_plots(view).values():
            for plot_name, svg, caption in section:
                file_name = f"{view.name}-{plot_name}.svg"
                files[file_name] = svg
                parts.append(f"![{plot_name}]({plots_dir}/{file_name})\n\n{plain(caption)}\n")
    return "\n".join(parts), files


# ---------------------------------------------------------------- writing


def write_reports(views: list[TargetView], out: Path, formats: list[str]) -> list[Path]:
    """report.html and/or report.md (+ its plots folder) under out."""
    written = []
    if "html" in formats:
        written.append(write_text_atomic(out / "report.html", render_html(views)))
    if "md" in formats:
        text, figures = markdown_report(views, "plots")
        for file_name, svg in figures.items():
            write_text_atomic(out / "plots" / file_name, svg)
        written.append(write_text_atomic(out / "report.md", text))
    return written


def summary_row(view: TargetView) -> dict[str, Any]:
    """One target's choice as the command prints it (and --json emits it)."""
    chosen = view.facts.chosen
    return {"target": view.name, "chosen": chosen.variant if chosen else None,
            "configuration": view.facts.configuration, "median_ms": chosen.median_ms if chosen else None,
            "evidence": chosen.evidence if chosen else view.latency_evidence}


def print_summary(console: Console, summary: list[dict[str, Any]], written: list[Path]) -> None:
    """The report command's result: the choice per target and the files written."""
    rows = [(s["target"], s["chosen"] or "none", s["configuration"],
             f"{s['median_ms']:.4g}" if s["median_ms"] is not None else None, s["evidence"]) for s in summary]
    console.print(rich_table("chosen per target", ("target", "variant", "configuration", "median ms (chunk)",
                                                   "evidence"), rows, numeric=("median ms (chunk)",)))
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", metavar="T",
                        help="target name (repeatable; default: every target with results under --build)")
    parser.add_argument("--format", action="append", choices=FORMATS,
                        help="md and/or html (repeatable; default both)")
    parser.add_argument("--build", type=Path, default=Path("build"), help="build root (default build)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="artifacts root (default artifacts)")
    parser.add_argument("--out", type=Path, default=Path("build/report"), help="output folder (default build/report)")
    add_output_flags(parser)


def run(args: argparse.Namespace) -> int:
    names = args.target or targets_with_results(args.build)
    if not names:
        raise ToolkitError(f"no target under {args.build} has results; run `make profile TARGET=x86-host` first")
    out = Output.from_args(args)
    views = []
    for name in out.track(names, "reading results"):
        views.append(collect(name, args.build, args.artifacts))
    written = write_reports(views, args.out, args.format or list(FORMATS))
    summary = [summary_row(v) for v in views]
    out.emit({"files": [str(p) for p in written], "targets": summary},
             lambda console: print_summary(console, summary, written))
    return 0 if all(v.facts.chosen for v in views) else 1

