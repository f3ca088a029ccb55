"""pipeline.json: the run's identity and its finished stages (toolkit.pipeline.ledger keeps it)."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.base import from_fields, to_fields


@dataclass(frozen=True)
class StageDone:
    """When a stage finished and how long it took."""

    finished_utc: str
    seconds: float

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> StageDone:
        return from_fields(cls, document)


@dataclass(frozen=True)
class LedgerFile:
    """pipeline.json: a sha256 over what decides the run's results, the run's inputs, the finished stages."""

    run_id: str
    inputs: Json
    started_utc: str
    stages: dict[str, StageDone]
    stage_seconds_total: float

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> LedgerFile:
        return from_fields(cls, document, stages={name: StageDone.from_json(s)
                                                  for name, s in document["stages"].items()})
