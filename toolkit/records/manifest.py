"""artifacts/<target>/manifest.json: what the export states, group by group."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.base import from_fields, to_fields


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Manifest:
        return from_fields(cls, document)
