"""artifacts/<pipeline>/<target>/: the chosen stage files, one manifest.json, report.md.

Not under artifacts/<target>/: the single-model export swaps that folder in whole, which would drop these.

The folder is written in a staging folder beside it and swapped in whole, so a reader never sees half of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from toolkit.configs import engine_words
from toolkit.files import sha256_file, swap_in_dir, write_json_atomic, write_text_atomic
from toolkit.folder import manifest_path


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f} %"


def _mults(count: dict[str, Any] | None) -> str:
    """Millions of multiplications, 'at most' for a count taken at an If's dearer branch."""
    if not count or count["mul"] is None:
        return "-"
    return f"{'at most ' if count['at_most'] else ''}{count['mul'] / 1e6:.3g} M"


def _variant_mults(variant: dict[str, Any]) -> str:
    counts = variant["counts"]
    if not counts or any(c["mul"] is None for c in counts):
        return "-"
    return _mults({"mul": sum(c["mul"] for c in counts), "at_most": any(c["at_most"] for c in counts)})


def _config(config: dict[str, Any]) -> str:
    spin = "" if config["threads"] == 1 else (", spin" if config["spinning"] else ", no spin")
    return f"{engine_words(config)}, {config['threads']} thread{'s' if config['threads'] > 1 else ''}{spin}"


def _variant_rows(doc: dict[str, Any]) -> list[str]:
    rows = ["| stage | variant | status | max abs error (tolerance) | stage gate | mults / run | cheapest CPU share "
            "| with |", "|---|---|---|---|---|---|---|---|"]
    for stage, entry in doc["stages"].items():
        for v in entry["variants"]:
            ok = [m for m in v["measured"] if m["status"] == "ok"]
            best = min(ok, key=lambda m: m["cpu_share"]) if ok else None
            error = "-" if v["max_abs_error"] is None else f"{v['max_abs_error']:.3g} ({entry['tolerance']:g})"
            gate = "-" if v["status"] != "built" else "pass" if v["passed"] else "fail"
            status = v["status"] if v["status"] == "built" else f"{v['status']}: {v['reason']}"
            share, config = (_percent(best["cpu_share"]), _config(best["config"])) if best else ("-", "-")
            rows.append(f"| {stage} | {v['variant']} | {status} | {error} | {gate} | {_variant_mults(v)} | {share} "
                        f"| {config} |")
    return rows


def _stream_rows(doc: dict[str, Any]) -> list[str]:
    stages = list(doc["stages"])
    rows = [f"| pipeline | N | mults / chunk | whole | {' | '.join(stages)} | between chunks | p99 chunk latency "
            "| deadline misses |", "|---|---|---|---|" + "---|" * len(stages) + "---|---|---|"]
    for label, streams in doc["streams"].items():
        for m in streams:
            per = " | ".join(_percent(m["stage_cpu_share"][s]) for s in stages)
            misses = "-" if m["deadline_misses"] is None else f"{m['deadline_misses']} / {m['chunks']}"
            name = f"{label} ({m['label']})" if m.get("label") else label
            rows.append(f"| {name} | {m['wake_words']} | {_mults(m.get('mults_per_chunk'))} | "
                        f"{_percent(m['cpu_share'])} | {per} | "
                        f"{_percent(m['between_cpu_share'])} | {m['latency_ms']['p99']:.2f} ms | {misses} |")
    return rows


def markdown(doc: dict[str, Any]) -> str:
    """The report section: stage variants, the choice and its gate, CPU share by stage and by N, the fit."""
    gate, policy = doc["pipeline_gate"], doc["policy"]
    choice = ", ".join(f"{stage} = {c['variant']} ({_config(c['config'])})" for stage, c in doc["choice"].items())
    fits = doc["fit"]["chosen"]
    lines = [
        f"## Wake-word pipeline {doc['pipeline']} on {doc['target']}",
        "",
        f"{doc['chunk_samples']} new samples per chunk at {doc['rate_hz']:g} chunks/s; CPU shares "
        f"{doc['evidence']}: {doc['measured_on']}. Stage models: "
        + "; ".join(f"{s}: {', '.join(e['models'])}" for s, e in doc["stages"].items()) + ".",
        "",
        *_variant_rows(doc),
        "",
        f"**Chosen**: {choice}.",
        "",
        f"**Pipeline gate** over {len(doc['signals'])} signals of {doc['signal_seconds']:g} s "
        f"({gate['scores']} scores): max |score difference| {gate['max_abs_score_error']:.3g} (tolerance "
        f"{gate['tolerance']:g}), {gate['flips']} detections flipped at {gate['threshold']:g} (the original "
        f"detects {gate['original_detections']}): {'pass' if gate['passed'] else 'fail'}.",
        "",
        "CPU share of one core while streaming, by stage and by N wake-word classifiers:",
        "",
        *_stream_rows(doc),
        "",
        f"**Policy**: at most {_percent(policy['max_stream_cpu_share'])} of one core with {policy['wake_words']} "
        f"wake words: {'met' if doc['meets_policy'] else 'not met'}. Within the budget: "
        f"{fits['largest_measured_within']} of the {doc['evidence']} N; estimated {fits['estimated_within']} "
        f"({_percent(fits['base_share'])} + {_percent(fits['per_classifier_share'])} per classifier).",
        "",
        f"Method: {doc['method']}. Fit: {fits['method']}.",
    ]
    return "\n".join(lines) + "\n"


def _stage_files(stage: str, variant: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """Copy one stage's chosen files into the folder: <stage>.onnx, or <stage>-<model>.onnx when fanned out."""
    entries = []
    for source, label in zip(variant["files"], variant["models"], strict=True):
        name = f"{stage}.onnx" if len(variant["files"]) == 1 else f"{stage}-{label}.onnx"
        shutil.copyfile(source, folder / name)
        entries.append({"file": name, "model": label, "sha256": sha256_file(folder / name),
                        "bytes": (folder / name).stat().st_size})
    return entries


def export(doc: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write the chosen files, manifest.json and report.md into `out`; the manifest."""
    staging = out.with_name(f".{out.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stages = {stage: {"variant": c["variant"], "engine": c["config"], "cpu_share": c["cpu_share"],
                      "files": _stage_files(stage, c, staging)} for stage, c in doc["choice"].items()}
    manifest = {"pipeline": doc["pipeline"], "target": doc["target"], "rate_hz": doc["rate_hz"],
                "chunk_samples": doc["chunk_samples"], "stages": stages, "pipeline_gate": doc["pipeline_gate"],
                "policy": doc["policy"], "meets_policy": doc["meets_policy"], "fit": doc["fit"]["chosen"],
                "cpu_share_by_n": [{"wake_words": m["wake_words"], "cpu_share": m["cpu_share"],
                                    "mults_per_chunk": m["mults_per_chunk"],
                                    "stage_cpu_share": m["stage_cpu_share"], "p99_ms": m["latency_ms"]["p99"]}
                                   for m in doc["streams"]["chosen"]],
                "method": doc["method"]}
    write_json_atomic(manifest_path(staging), manifest)
    write_text_atomic(staging / "report.md", markdown(doc))
    swap_in_dir(staging, out)
    return manifest
