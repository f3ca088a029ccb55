"""accuracy.json, and the verdicts platform.json's "accuracy" holds in the same form."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.base import from_fields, to_fields


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Verdict:
        return from_fields(cls, document)


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> AccuracyFile:
        return from_fields(cls, document, variants=verdicts(document["variants"]))
