"""profile.json: the bench runner's RESULT.json, as the source that made it left it (the runner writes it alone,
with the standard library and numpy, so this is the host's reading of it).

    RunRecord     an entry of "runs": one configuration of one variant at one workload
    StreamRecord  an entry of "streaming": one configuration fed chunks at the real rate
    ProfileFile   the whole file, with what the emulated source ("emulation", "instructions") and the SSH source
                  ("board_check") add

Left as Json, because they are copied through or read only by their producer's own helpers: the bundle's
identity, the settings, the signal pass's per-signal records (runner.add_outputs), the per-node profile, the
placement, the platform facts and the board check.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS, output_name
from toolkit.records.base import field_json, from_fields, to_fields


@dataclass(frozen=True)
class Latency:
    """Latency statistics in ms (runner.latency_stats)."""

    n: int
    median: float
    p90: float
    p99: float
    min: float
    mean: float
    max: float
    stdev: float

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Latency:
        return from_fields(cls, document)


def _latency(document: Json) -> Latency | None:
    """A record's latency_ms as its record, when it was measured."""
    stats = document.get("latency_ms")
    return None if stats is None else Latency.from_json(stats)


@dataclass(frozen=True)
class Configured:
    """The fields every run record starts with: its identity, its variant and its configuration."""

    key: str
    variant: str
    format: str
    engine: str
    provider: str
    threads: int
    spinning: bool | None
    optimization: str | None
    precision: str | None

    def config(self) -> Json:
        """The runner's configuration fields, in CONFIG_FIELDS order."""
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    @property
    def outputs(self) -> str:
        """The signal-pass outputs its numbers belong to (runner.output_name)."""
        return output_name(self.variant, self.config())


def _runner_json(record: RunRecord | StreamRecord) -> Json:
    """A run's keys as the runner writes them: the identity and status always, then `reason` when it was not
    measured, or the measured fields when it was (each of those even when null, as LiteRT's placement is)."""
    return {f.name: field_json(getattr(record, f.name)) for f in fields(record)
            if f.default is not None or (f.name == "reason") != record.ok}


@dataclass(frozen=True)
class RunRecord(Configured):
    """One timed run; the measured fields only when it is ok, `reason` only when it is not."""

    workload: str
    status: str  # "ok" | "unavailable" | "failed"
    reason: str | None = None
    input_shape: list[int] | None = None
    output_shape: list[int] | None = None
    session_providers: list[str] | None = None
    placement: Json | None = None
    session_create_ms: float | None = None
    first_inference_ms: float | None = None
    warmup: int | None = None
    latency_ms: Latency | None = None
    timer: str | None = None
    profile: Json | None = None


    @property
    def ok(self) -> bool:
        """Whether it was measured."""
        return self.status == "ok"

    def to_json(self) -> Json:
        return _runner_json(self)

    @classmethod
    def from_json(cls, document: Json) -> RunRecord:
        return from_fields(cls, document, latency_ms=_latency(document))


@dataclass(frozen=True)
class StreamRecord(Configured):
    """One streaming run: chunks fed on a fixed schedule, the process's CPU share of one core over it."""

    status: str
    reason: str | None = None
    chunks: int | None = None
    chunk_samples: int | None = None
    rate_hz: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    cpu_share: float | None = None
    latency_ms: Latency | None = None
    deadline_misses: int | None = None
    streams_per_core: int | None = None
    placement: Json | None = None
    method: str | None = None

    @property
    def ok(self) -> bool:
        """Whether it was measured."""
        return self.status == "ok"

    def to_json(self) -> Json:
        return _runner_json(self)

    @classmethod
    def from_json(cls, document: Json) -> StreamRecord:
        return from_fields(cls, document, latency_ms=_latency(document))


def measured(run: RunRecord | StreamRecord) -> Latency:
    """A finished run's latency: the runner writes latency_ms on every run that is ok, so a missing one is a bug
    in the caller (it took a run that did not finish), not something to print around."""
    if run.latency_ms is None:
        raise ValueError(f"run {run.key} has no latency: status {run.status}")
    return run.latency_ms


@dataclass(frozen=True)
class ProfileFile:
    """profile.json: the runner's result, and what its source added."""

    format_version: int
    complete: bool
    started_utc: str
    bundle: Json
    settings: Json
    outputs: Json  # {"file": npz name, "variants": {outputs name: the signal pass's record}}
    runs: list[RunRecord]
    streaming: list[StreamRecord]
    platform: Json
    updated_utc: str
    emulation: Json | None = None  # the emulated source: qemu CPU, rootfs, what its latencies are
    instructions: list[Json] | None = None  # the emulated source: emulate.InstructionCounts.to_json() rows
    board_check: Json | None = None  # the SSH source: ssh.check_board's facts
    running: str | None = field(default=None, compare=False)  # a unit a dead runner was in (runner.Recorder)

    def ok_runs(self) -> list[RunRecord]:
        """The runs that were measured."""
        return [run for run in self.runs if run.ok]

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> ProfileFile:
        return from_fields(cls, document, runs=[RunRecord.from_json(r) for r in document["runs"]],
                           streaming=[StreamRecord.from_json(s) for s in document["streaming"]])
