"""Reports of a profiled target: one Gathered document of records from the build folder, rendered by format.

    data = gather(Path("build/x86-host"), bench=Path("build/bench/benchmark.json"))
    markdown.render(data)       # report.md
    markdown.summary(data)      # the short per-variant table CI prints

gather() reads only the stage files (toolkit.pipeline.stages documents each), so a renderer never measures or
counts anything itself. What both renderers state (the chosen variant and the words of its configuration, select's
reasons, the runners-up and excluded variants with select's own sentences, the engine settings' own accuracy
verdicts, the evidence labels) is worded here once, in the document's Facts (data.facts): report.md and
report.html read those values and never word them again. The runs that could not run are listed by one function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from toolkit.configs import config_text, engine_words
from toolkit.evidence import EVIDENCE
from toolkit.files import Json
from toolkit.folder import BuildFolder
from toolkit.records import (
    AccuracyFile,
    Candidate,
    Choice,
    Comparison,
    CountsFile,
    Excluded,
    LedgerFile,
    PlatformFile,
    ProfileFile,
    RunnerUp,
    RunRecord,
    StreamRecord,
    VariantRecord,
    Verdict,
)


@dataclass(frozen=True)
class RunnerUpRow:
    """A row of the runners-up table: a runner-up with its numbers, or an excluded variant with none; `why` is the
    select stage's own sentence, so a report never words a reason select did not give."""

    variant: str
    why: str
    configuration: str | None = None
    median_ms: float | None = None
    evidence: str | None = None
    slower_than_chosen: float | None = None
    second_median_ms: float | None = None
    cpu_share: float | None = None
    bytes: int | None = None

    @classmethod
    def of_runner_up(cls, row: RunnerUp) -> RunnerUpRow:
        c = row.candidate
        return cls(c.variant, row.why, config_text(c.config()), c.median_ms, c.evidence, row.slower_than_chosen,
                   c.second_median_ms, c.cpu_share, c.bytes)

    @classmethod
    def of_excluded(cls, row: Excluded) -> RunnerUpRow:
        return cls(row.variant, row.reason)


@dataclass(frozen=True)
class SettingVerdict:
    """An engine setting gated on its own outputs where the runs ran (an OpenVINO precision: runner.output_name),
    which the per-variant tables cannot show: a precision can fail while its variant passes."""

    outputs: str
    passed: bool
    text: str  # 'passes: max |dB error| 0.0012' or 'fails: <reasons>'


@dataclass(frozen=True)
class Facts:
    """What both reports state about one build folder, each worded once."""

    chosen: Candidate | None
    configuration: str | None  # the chosen configuration's words (toolkit.configs.config_text)
    reasons: list[str]  # select's, for the choice or for there being none
    runners_up: list[RunnerUpRow]  # select's runners-up, then the variants it excluded
    settings: list[SettingVerdict]
    evidence_labels: dict[str, str]  # label -> what it means (toolkit.evidence.EVIDENCE)


def read_bench(path: Path) -> Json:
    """A pytest-benchmark JSON file (make bench)."""
    return cast(Json, json.loads(path.read_text(encoding="utf-8")))


def setting_verdicts(variants: list[VariantRecord], where_run: dict[str, Verdict]) -> list[SettingVerdict]:
    """The verdicts where the runs ran of every engine setting with numerics of its own (outputs that are no
    variant's own)."""
    names = {v.name for v in variants}
    found = []
    for name, verdict in where_run.items():
        if name in names:
            continue
        worst = verdict.overall.get("max_abs_db")
        text = (f"passes: max |dB error| {worst:.4g}" if verdict.passed and worst is not None
                else "passes" if verdict.passed else "fails: " + "; ".join(verdict.reasons))
        found.append(SettingVerdict(name, verdict.passed, text))
    return found


def facts(choice: Choice, variants: list[VariantRecord], where_run: dict[str, Verdict]) -> Facts:
    """The Facts of a build folder's choice, variants and verdicts where the runs ran."""
    return Facts(
        chosen=choice.chosen, configuration=config_text(choice.chosen.config()) if choice.chosen else None,
        reasons=choice.reasons,
        runners_up=[*map(RunnerUpRow.of_runner_up, choice.runners_up), *map(RunnerUpRow.of_excluded, choice.excluded)],
        settings=setting_verdicts(variants, where_run), evidence_labels=dict(EVIDENCE),
    )


@dataclass(frozen=True)
class Gathered:
    """Every stage file of a build folder as its record (toolkit.records), so a renderer reads fields, not keys."""

    ledger: LedgerFile
    inputs: list[Json]  # variants.json's feed plan
    variants: list[VariantRecord]
    accuracy: AccuracyFile
    counts: CountsFile
    profile: ProfileFile
    platform: PlatformFile
    compare: Comparison
    choice: Choice
    where_run: dict[str, Verdict]  # platform.json's verdicts on the outputs made where the runs ran
    facts: Facts
    bench: Json | None  # a pytest-benchmark JSON (make bench), when given


def gather(folder: Path, bench: Path | None = None) -> Gathered:
    """Every stage file of a build folder as its record, with the verdicts of the outputs made where the runs ran
    (`where_run`) and the Facts both renderers read; `bench` adds a pytest-benchmark JSON."""
    files = BuildFolder(folder)
    listed, platform, choice = files.variants(), files.platform(), files.choice()
    return Gathered(
        ledger=files.ledger(), inputs=listed.inputs, variants=listed.variants, accuracy=files.accuracy(),
        counts=files.counts(), profile=files.profile(), platform=platform, compare=files.compare(), choice=choice,
        where_run=platform.accuracy, facts=facts(choice, listed.variants, platform.accuracy),
        bench=read_bench(bench) if bench is not None and bench.is_file() else None,
    )


def could_not_run(runs: list[RunRecord] | list[StreamRecord]) -> dict[str, str]:
    """'<what> (<status>)' -> the runner's reason for every run that did not finish: a missing engine or provider
    once per setting, any other failure (a crash, a provider that placed none of the nodes) per variant too."""
    reasons: dict[str, str] = {}
    for run in (r for r in runs if not r.ok):
        words = engine_words(run.config())
        what = words if run.status == "unavailable" else f"{run.variant} on {words}"
        reasons.setdefault(f"{what} ({run.status})", run.reason or "")
    return reasons
