"""The records of the stage files that later stages read field by field: one dataclass each, with to_json() (the
file's JSON, key for key and in its order) and from_json() (its inverse: from_json(x.to_json()) == x).

    VariantRecord   an entry of variants.json's "variants"; VariantsFile the whole file
    Verdict         an accuracy verdict: an entry of accuracy.json's "variants" or of platform.json's "accuracy"
    AccuracyFile    accuracy.json
    Candidate       one configuration of one variant as select weighs it (choice.json's chosen, original_best,
                    and the base of every runner-up and rejected row)
    Choice          choice.json, with its RunnerUp, Rejected and Excluded rows
    Manifest        artifacts/<target>/manifest.json

Left as Json, because they are copied through as they are or typing them would only restate their producer: an
accuracy report's numbers (Verdict.report: overall / by_level / by_signal, toolkit.accuracy.AccuracyReport), the feed
plan's entries (VariantsFile.inputs, toolkit.load.InputFeed), the policy, signals and inference audio copied into
accuracy.json and choice.json, the manifest's groups (each a sub-document with its own evidence label), and the
documents of counts.json, profile.json (the runner's), platform.json (beyond its verdicts), compare.json and the
ledger.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from toolkit.configs import engine_words
from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS, output_name

Record = TypeVar("Record")


def _json(value: Any) -> Any:
    """A field's JSON: records by their to_json(), lists and dicts item by item, anything else as it is."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    return value


def _to_json(record: Any) -> Json:
    """A record's fields in order; a field that defaults to None is written only when set (the stages leave
    such keys out)."""
    return {f.name: _json(getattr(record, f.name)) for f in fields(record)
            if not (f.default is None and getattr(record, f.name) is None)}


def _from_json(cls: type[Record], document: Json, **records: Any) -> Record:
    """A record from the keys of `document` that name its fields, with `records` (its fields that are records,
    already read) in place of theirs: a field without a default must be there; other keys are not the record's."""
    values = {**document, **records}
    return cls(**{f.name: values[f.name] for f in fields(cls)  # type: ignore[arg-type]
                  if f.name in values or (f.default is MISSING and f.default_factory is MISSING)})


# ---------------------------------------------------------------- variants.json


@dataclass(frozen=True)
class VariantRecord:
    """One variant as the variants stage wrote it; bytes and sha256 only for a file that was written."""

    name: str
    path: str | None
    format: str
    status: str  # "built" | "skipped" | "failed"
    reason: str
    description: str
    exact: bool
    build_seconds: float
    bytes: int | None = None
    sha256: str | None = None

    @property
    def built(self) -> bool:
        """Whether its file was written."""
        return self.status == "built"

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> VariantRecord:
        return _from_json(cls, document)


@dataclass(frozen=True)
class VariantsFile:
    """variants.json: what each graph input is fed (the feed plan), then every variant."""

    inputs: list[Json]
    variants: list[VariantRecord]

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> VariantsFile:
        return _from_json(cls, document, variants=[VariantRecord.from_json(v) for v in document["variants"]])


# ---------------------------------------------------------------- accuracy.json, platform.json "accuracy"


@dataclass(frozen=True)
class Verdict:
    """The gate on one set of outputs; `report` (toolkit.accuracy.AccuracyReport as JSON) when they were
    measured."""

    measured: bool
    passed: bool
    reasons: list[str]
    report: Json | None = None

    @property
    def overall(self) -> Json:
        """The report's overall errors; empty when nothing was measured."""
        overall: Json = (self.report or {}).get("overall", {})
        return overall

    @property
    def by_level(self) -> Json:
        """The report's errors by input level; empty when nothing was measured."""
        by_level: Json = (self.report or {}).get("by_level", {})
        return by_level

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> Verdict:
        return _from_json(cls, document)


def verdicts(entries: Json) -> dict[str, Verdict]:
    """Outputs name -> verdict, from accuracy.json's "variants" or platform.json's "accuracy"."""
    return {name: Verdict.from_json(entry) for name, entry in entries.items()}


@dataclass(frozen=True)
class AccuracyFile:
    """accuracy.json: how and against which policy every built variant was measured, and each one's verdict."""

    evidence: str
    method: str
    signals: Json
    policy: Json
    variants: dict[str, Verdict]

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> AccuracyFile:
        return _from_json(cls, document, variants=verdicts(document["variants"]))


# ---------------------------------------------------------------- choice.json


@dataclass(frozen=True)
class Candidate:
    """One configuration of one variant, measured on the streaming chunk (or predicted for it)."""

    variant: str
    format: str
    engine: str
    provider: str
    threads: int
    spinning: bool | None
    optimization: str | None
    precision: str | None
    key: str
    median_ms: float
    p90_ms: float | None
    min_ms: float | None
    second_median_ms: float | None
    cpu_share: float | None
    streams_per_core: int | None
    stream_p99_ms: float | None
    bytes: int
    evidence: str
    audio_ms: float

    @property
    def realtime_factor(self) -> float:
        """Median latency / the audio one inference covers (the chunk's 80 ms step unless the graph pads to a
        fixed window)."""
        return self.median_ms / self.audio_ms

    def config(self) -> Json:
        """The runner's configuration fields of this candidate."""
        return {field: getattr(self, field) for field in CONFIG_FIELDS}

    def run(self) -> Json:
        """Its variant and configuration: what configs.same() matches a run record on."""
        return {"variant": self.variant, **self.config()}

    @property
    def outputs(self) -> str:
        """The signal-pass outputs its numbers belong to: the variant's, or the variant's in its engine setting."""
        return output_name(self.variant, self.config())

    def label(self) -> str:
        """'variant on [engine] provider [precision], N threads, spinning, opt' for sentences."""
        parts = [f"{self.variant} on {engine_words(self.config())}", f"{self.threads} thread{'s' * (self.threads > 1)}"]
        if self.spinning is not None and self.threads > 1:
            parts.append("spinning" if self.spinning else "no spinning")
        if self.optimization:
            parts.append(f"optimization {self.optimization}")
        return ", ".join(parts)

    def to_json(self) -> Json:
        """Plain fields plus the real-time factor."""
        return {**_to_json(self), "realtime_factor": self.realtime_factor}

    @classmethod
    def from_json(cls, document: Json) -> Candidate:
        """From a candidate's JSON or a row built on it (the rows' own keys and the real-time factor are not
        fields)."""
        return _from_json(cls, document)


@dataclass(frozen=True)
class RunnerUp:
    """An eligible configuration that was not chosen, or the fastest one excluded for its CPU share, and why."""

    candidate: Candidate
    slower_than_chosen: float
    why: str

    def to_json(self) -> Json:
        return {**self.candidate.to_json(), "slower_than_chosen": self.slower_than_chosen, "why": self.why}

    @classmethod
    def from_json(cls, document: Json) -> RunnerUp:
        return cls(Candidate.from_json(document), document["slower_than_chosen"], document["why"])


@dataclass(frozen=True)
class Rejected:
    """A candidate that failed checks, with each failed check's sentence."""

    candidate: Candidate
    fails: list[str]

    def to_json(self) -> Json:
        return {**self.candidate.to_json(), "fails": self.fails}

    @classmethod
    def from_json(cls, document: Json) -> Rejected:
        return cls(Candidate.from_json(document), document["fails"])


@dataclass(frozen=True)
class Excluded:
    """A variant that never became a candidate, and why."""

    variant: str
    reason: str

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> Excluded:
        return _from_json(cls, document)


@dataclass(frozen=True)
class Choice:
    """choice.json: the policy and rule, the chosen candidate (None when none is eligible) and why, the original's
    best configuration, the runners-up, the rejected candidates and the excluded variants. `beats_original` is
    written only when something was chosen."""

    policy: Json  # the target's policy with max_chunk_ms, the budget it makes
    inference_audio: Json  # toolkit.profiling.workload.InferenceAudio as JSON
    checks: list[str]
    rule: str
    latency_evidence: str
    candidates: int
    eligible: int
    original_best: Candidate | None
    excluded: list[Excluded]
    rejected: list[Rejected]
    chosen: Candidate | None
    reasons: list[str]
    beats_original: bool | None = None
    runners_up: list[RunnerUp] = field(default_factory=list)

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> Choice:
        def candidate(key: str) -> Candidate | None:
            return None if document[key] is None else Candidate.from_json(document[key])

        return _from_json(cls, document, original_best=candidate("original_best"), chosen=candidate("chosen"),
                          excluded=[Excluded.from_json(e) for e in document["excluded"]],
                          rejected=[Rejected.from_json(r) for r in document["rejected"]],
                          runners_up=[RunnerUp.from_json(r) for r in document["runners_up"]])


# ---------------------------------------------------------------- manifest.json


@dataclass(frozen=True)
class Manifest:
    """artifacts/<target>/manifest.json: every group of numbers the export states, each with its evidence label
    (toolkit.export builds each group)."""

    format_version: int
    date_utc: str
    target: Json
    model: Json
    inputs: Json
    configuration: Json
    choice: Json
    analytic_counts: Json
    accuracy: Json
    latency: Json
    predicted_latency: Json
    instructions: Json
    prediction_error: Json
    achieved: Json
    versions: Json
    cpu: Json
    platform_where_measured: Json
    evidence_labels: dict[str, str]

    def to_json(self) -> Json:
        return _to_json(self)

    @classmethod
    def from_json(cls, document: Json) -> Manifest:
        return _from_json(cls, document)
