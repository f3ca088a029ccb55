"""variants.json: the feed plan and every variant the variants stage built, skipped or failed."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.base import from_fields, to_fields


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
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> VariantRecord:
        return from_fields(cls, document)


@dataclass(frozen=True)
class VariantsFile:
    """variants.json: what each graph input is fed (the feed plan), then every variant."""

    inputs: list[Json]
    variants: list[VariantRecord]

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> VariantsFile:
        return from_fields(cls, document, variants=[VariantRecord.from_json(v) for v in document["variants"]])
