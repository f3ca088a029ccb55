"""choice.json: the select stage's candidate configurations, its choice and its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.configs import engine_words
from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS, output_name
from toolkit.records.base import from_fields, to_fields


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
        return {**to_fields(self), "realtime_factor": self.realtime_factor}

    @classmethod
    def from_json(cls, document: Json) -> Candidate:
        """From a candidate's JSON or a row built on it (the rows' own keys and the real-time factor are not
        fields)."""
        return from_fields(cls, document)


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Excluded:
        return from_fields(cls, document)


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Choice:
        def candidate(key: str) -> Candidate | None:
            return None if document[key] is None else Candidate.from_json(document[key])

        return from_fields(cls, document, original_best=candidate("original_best"), chosen=candidate("chosen"),
                          excluded=[Excluded.from_json(e) for e in document["excluded"]],
                          rejected=[Rejected.from_json(r) for r in document["rejected"]],
                          runners_up=[RunnerUp.from_json(r) for r in document["runners_up"]])
