"""counts.json: analyze's exact operation counts of every built variant at each bundle workload.

Left as Json: the node table's rows (read only by compare's per-node shares, which walk them whole) and the
inference audio (toolkit.profiling.workload.InferenceAudio as JSON, copied into choice.json).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.base import from_fields, to_fields

CONVENTIONS = ("dense", "effective")


@dataclass(frozen=True)
class WorkloadCounts:
    """One variant's totals at one workload, by kind (mul, add, div, ...), in both conventions."""

    batch: int
    samples: int
    dense: dict[str, int]
    effective: dict[str, int]
    not_counted: list[str]
    nodes: list[Json]
    bounded_by: list[str]

    def mults(self) -> dict[str, int]:
        """{dense, effective} multiplications."""
        return {c: int(getattr(self, c).get("mul", 0)) for c in CONVENTIONS}

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> WorkloadCounts:
        return from_fields(cls, document)


@dataclass(frozen=True)
class VariantCounts:
    """One variant's counts: "counted", "bounded" (decided by data: upper bounds), "partial" (lower bounds) or
    "not counted" (with why in `note`, and no workloads)."""

    status: str
    note: str
    workloads: dict[str, WorkloadCounts]

    @property
    def counted(self) -> bool:
        """Whether its totals are exact."""
        return self.status == "counted"

    def at(self, workload: str) -> WorkloadCounts | None:
        """Its counts at a workload, or None when it is not counted there."""
        return self.workloads.get(workload)

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> VariantCounts:
        return from_fields(cls, document, workloads={name: WorkloadCounts.from_json(w)
                                                     for name, w in document["workloads"].items()})


NOT_COUNTED = VariantCounts("not counted", "", {})


@dataclass(frozen=True)
class CountsFile:
    """counts.json: the evidence, the counting convention, the bundle's workloads, each built variant's counts
    and the audio one inference covers."""

    evidence: str
    convention: str
    workloads: list[Json]  # the bundle's {name, batch, samples}
    variants: dict[str, VariantCounts]
    inference_audio: Json

    def of(self, variant: str) -> VariantCounts:
        """A variant's counts; a variant the stage did not count (none built) reads as not counted."""
        return self.variants.get(variant, NOT_COUNTED)

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> CountsFile:
        return from_fields(cls, document, variants={name: VariantCounts.from_json(v)
                                                    for name, v in document["variants"].items()})
