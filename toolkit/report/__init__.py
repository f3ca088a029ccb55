"""Reports of a profiled target: one data document gathered from the build folder, rendered by format.

    data = gather(Path("build/x86-host"), bench=Path("build/bench/benchmark.json"))
    markdown.render(data)       # report.md
    markdown.summary(data)      # the short per-variant table CI prints

gather() reads only the stage files (toolkit.pipeline.stages documents each), so a renderer never measures or
counts anything itself; a later HTML renderer reads the same document.
"""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.pipeline.ledger import LEDGER, Json, read_json

# key in the data document -> (file in the build folder, the stage that writes it)
FILES: dict[str, tuple[str, str]] = {
    "pipeline": (LEDGER, "the pipeline ledger"),
    "variants": ("variants.json", "the variants stage"),
    "accuracy": ("accuracy.json", "the accuracy stage"),
    "counts": ("counts.json", "the counts stage"),
    "profile": ("profile.json", "the profile stage"),
    "platform": ("platform.json", "the profile stage"),
    "compare": ("compare.json", "the compare stage"),
    "choice": ("choice.json", "the select stage"),
}


def read_bench(path: Path) -> Json:
    """A pytest-benchmark JSON file (make bench)."""
    return json.loads(path.read_text(encoding="utf-8"))


def runner_up_rows(choice: Json) -> list[Json]:
    """choice.json's runners-up, then the variants it excluded, each with the select stage's own sentence as
    `why`: both renderers show these rows as they are, so a report never words a reason select did not give."""
    return [*choice["runners_up"], *({"variant": e["variant"], "why": e["reason"]} for e in choice["excluded"])]


def gather(folder: Path, bench: Path | None = None) -> Json:
    """Every stage file of a build folder in one document, with the runner-up rows both renderers read; `bench`
    adds a pytest-benchmark JSON."""
    data = {key: read_json(folder / name, stage) for key, (name, stage) in FILES.items()}
    data["inputs"] = data["variants"]["inputs"]
    data["variants"] = data["variants"]["variants"]
    data["runners_up"] = runner_up_rows(data["choice"])
    data["bench"] = read_bench(bench) if bench is not None and bench.is_file() else None
    return data
