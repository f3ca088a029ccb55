"""Reports of a profiled target: one data document gathered from the build folder, rendered by format.

    data = gather(Path("build/x86-host"), bench=Path("build/bench/benchmark.json"))
    markdown.render(data)       # report.md
    markdown.summary(data)      # the short per-variant table CI prints

gather() reads only the stage files (toolkit.pipeline.stages documents each), so a renderer never measures or
counts anything itself; a later HTML renderer reads the same document. What both renderers list the same way
(the engine settings' own accuracy verdicts, the runs that could not run) is derived here once.
"""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.configs import engine_words
from toolkit.files import Json
from toolkit.folder import BuildFolder
from toolkit.records import Choice, verdicts


def read_bench(path: Path) -> Json:
    """A pytest-benchmark JSON file (make bench)."""
    return json.loads(path.read_text(encoding="utf-8"))


def runner_up_rows(choice: Choice) -> list[Json]:
    """choice.json's runners-up, then the variants it excluded, each with the select stage's own sentence as
    `why`: both renderers show these rows as they are, so a report never words a reason select did not give."""
    return [*(r.to_json() for r in choice.runners_up),
            *({"variant": e.variant, "why": e.reason} for e in choice.excluded)]


def gather(folder: Path, bench: Path | None = None) -> Json:
    """Every stage file of a build folder in one document (the files later stages read field by field as their
    records: toolkit.records), with the verdicts of the outputs made where the runs ran (`where_run`) and the
    runner-up rows both renderers read; `bench` adds a pytest-benchmark JSON."""
    files = BuildFolder(folder)
    pipeline, listed = files.read("pipeline"), files.variants()
    data: Json = {"pipeline": pipeline, "inputs": listed.inputs, "variants": listed.variants,
                  "accuracy": files.accuracy(), "counts": files.read("counts"), "profile": files.read("profile"),
                  "platform": files.read("platform"), "compare": files.read("compare"), "choice": files.choice()}
    data["where_run"] = verdicts(data["platform"]["accuracy"])
    data["runners_up"] = runner_up_rows(data["choice"])
    data["bench"] = read_bench(bench) if bench is not None and bench.is_file() else None
    return data


def setting_verdicts(data: Json) -> list[tuple[str, bool, str]]:
    """(outputs name, passed, 'passes: max |dB error| 0.0012' or 'fails: <reasons>') of every engine setting
    gated on its own outputs where the runs ran (an OpenVINO precision: runner.output_name), which the per-variant
    tables cannot show: a precision can fail while its variant passes."""
    variants = {v.name for v in data["variants"]}
    found = []
    for name, verdict in data["where_run"].items():
        if name in variants:
            continue
        worst = verdict.overall.get("max_abs_db")
        text = (f"passes: max |dB error| {worst:.4g}" if verdict.passed and worst is not None
                else "passes" if verdict.passed else "fails: " + "; ".join(verdict.reasons))
        found.append((name, verdict.passed, text))
    return found


def could_not_run(runs: list[Json]) -> dict[str, str]:
    """'<what> (<status>)' -> the runner's reason for every run that did not finish: a missing engine or provider
    once per setting, any other failure (a crash, a provider that placed none of the nodes) per variant too."""
    reasons: dict[str, str] = {}
    for run in (r for r in runs if r["status"] != "ok"):
        what = engine_words(run) if run["status"] == "unavailable" else f"{run['variant']} on {engine_words(run)}"
        reasons.setdefault(f"{what} ({run['status']})", run.get("reason", ""))
    return reasons
