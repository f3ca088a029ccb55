"""compare.json: measured against analytic (toolkit.compare): each run's achieved multiplications per second,
the per-node tables and the rank contradictions.

Left as Json: the target's peak (its method and sources, copied into the reports as they are) and the per-node
tables' rows (rendered whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS
from toolkit.records.base import from_fields, to_fields


@dataclass(frozen=True)
class Achieved:
    """A run's exact analytic mults in one convention, per second of its median, and as a share of the peak."""

    mults: int
    mults_per_s: float
    of_peak: float

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Achieved:
        return from_fields(cls, document)


def _achieved(document: Json, convention: str) -> Achieved | None:
    entry = document.get(convention)
    return None if entry is None else Achieved.from_json(entry)


@dataclass(frozen=True)
class ComparedRun:
    """One run of the profile: `reason` when it did not run; its median and, when its variant is counted at the
    workload, the achieved numbers (else `counts` says "not counted" and `note` why)."""

    key: str
    variant: str
    format: str
    engine: str
    provider: str
    threads: int
    spinning: bool | None
    optimization: str | None
    precision: str | None
    workload: str
    status: str
    reason: str | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    min_ms: float | None = None
    counts: str | None = None
    note: str | None = None
    peak_mults_per_s: float | None = None
    dense: Achieved | None = None
    effective: Achieved | None = None

    @property
    def ranked(self) -> bool:
        """Whether it takes part in the ranking: measured, with exact counts."""
        return self.status == "ok" and self.counts == "counted"

    def config(self) -> Json:
        """The runner's configuration fields, in CONFIG_FIELDS order."""
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    def achieved(self, convention: str) -> Achieved | None:
        """Its achieved numbers in a convention ("dense" or "effective")."""
        found: Achieved | None = getattr(self, convention)
        return found

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> ComparedRun:
        return from_fields(cls, document, dense=_achieved(document, "dense"),
                           effective=_achieved(document, "effective"))


@dataclass(frozen=True)
class Contradiction:
    """Two variants measured in one configuration and workload whose analytic and measured orders disagree."""

    engine: str
    provider: str
    threads: int
    spinning: bool | None
    optimization: str | None
    precision: str | None
    workload: str
    convention: str
    fewer_mults: str
    fewer_mults_count: int
    fewer_mults_median_ms: float
    more_mults: str
    more_mults_count: int
    more_mults_median_ms: float
    mults_ratio: float
    time_ratio: float
    clear: bool  # even the slower one's fastest run is slower than the other's median

    def config(self) -> Json:
        """The configuration both were measured in."""
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Contradiction:
        return from_fields(cls, document)


@dataclass(frozen=True)
class ContradictionSummary:
    """One variant pair's contradictions over every configuration they were measured together in."""

    fewer_mults: str
    more_mults: str
    convention: str
    workload: str
    fewer_mults_count: int
    more_mults_count: int
    configurations: int
    clear: int
    measured_together: int
    time_ratio_min: float
    time_ratio_max: float

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> ContradictionSummary:
        return from_fields(cls, document)


@dataclass(frozen=True)
class Comparison:
    """compare.json; `not_timed` (and no runs) when the runs ran under emulation."""

    latency_evidence: str
    peak: Json
    runs: list[ComparedRun]
    nodes: list[Json]
    contradictions: list[Contradiction]
    contradiction_summary: list[ContradictionSummary]
    not_ranked: dict[str, str]  # variant -> why it is not ranked (its counts' note)
    not_timed: str | None = field(default=None)

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Comparison:
        return from_fields(cls, document, runs=[ComparedRun.from_json(r) for r in document["runs"]],
                           contradictions=[Contradiction.from_json(c) for c in document["contradictions"]],
                           contradiction_summary=[ContradictionSummary.from_json(s)
                                                  for s in document["contradiction_summary"]])
