"""platform.json: where the profile's numbers came from, what the runs there say about each set of outputs, and
the instruction counts and predictions made from them.

Left as Json: the streaming plan (printed whole), and the rows of the instructions, predictions and prediction
errors: each row is its producer's record as JSON with the configuration it was made in
(toolkit.profiling.emulate.InstructionCounts, toolkit.profiling.predict.Prediction and prediction_error).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.files import Json
from toolkit.records.accuracy import Verdict, verdicts
from toolkit.records.base import from_fields, to_fields


@dataclass(frozen=True)
class Rows:
    """A labelled group of rows (instructions or predictions); `reason` says why there are none. Instructions
    carry how they were counted (`method`)."""

    evidence: str
    rows: list[Json]
    reason: str
    method: str | None = None

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> Rows:
        return from_fields(cls, document)


@dataclass(frozen=True)
class PredictionErrors:
    """measured / predicted for every prediction with a measured run of its configuration, and the spread."""

    evidence: str
    rows: list[Json]
    ratio: Json | None  # {"min", "median", "max"}, None when there is no row
    reason: str

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> PredictionErrors:
        return from_fields(cls, document)


@dataclass(frozen=True)
class PlatformFile:
    """platform.json, written by the profile stage."""

    source: str  # toolkit.pipeline.sources: host | ssh | emulate | import
    description: str
    latency_evidence: str
    output_evidence: str
    streaming_plan: Json
    quick: bool
    instructions: Rows
    predictions: Rows
    prediction_error: PredictionErrors
    accuracy: dict[str, Verdict]  # outputs name (a variant's, or a variant's in an engine setting) -> its verdict

    def to_json(self) -> Json:
        return to_fields(self)

    @classmethod
    def from_json(cls, document: Json) -> PlatformFile:
        return from_fields(cls, document, instructions=Rows.from_json(document["instructions"]),
                           predictions=Rows.from_json(document["predictions"]),
                           prediction_error=PredictionErrors.from_json(document["prediction_error"]),
                           accuracy=verdicts(document["accuracy"]))
