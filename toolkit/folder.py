"""build/<target>/ and artifacts/<target>/: the one place that names each stage file, reads it and writes it.

A stage reads the files of the stages before it and writes its own, each through BuildFolder and each as its
record (toolkit.records): a missing file is one line naming the stage that makes it (files.read_json), a write
takes only the stage's own record and is atomic (files.write_json), so a reader never sees half a file or another
stage's shape. FILES lists them in the order the pipeline writes them (its ledger first). The one file no stage of
this process writes is profile.json: the bench runner writes it (standard library only, also on the board; the
emulated and SSH sources rewrite it through its record with what they add), and it is read as its record like
the rest. The exported manifest sits in the artifacts folder, beside the chosen model
file (manifest_path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, cast

from toolkit.files import Json, read_json, write_json
from toolkit.profiling.runner import outputs_path
from toolkit.records import (
    AccuracyFile,
    Choice,
    Comparison,
    CountsFile,
    LedgerFile,
    Manifest,
    PlatformFile,
    ProfileFile,
    VariantsFile,
)
from toolkit.records.base import parsed

Stage = Literal["pipeline", "variants", "accuracy", "counts", "profile", "platform", "compare", "choice"]
MANIFEST = "manifest.json"
R = TypeVar("R")


@dataclass(frozen=True)
class StageFile:
    """One result file of a build folder, and what makes it (named when the file is missing or broken)."""

    name: str
    stage: str


StageRecord = (VariantsFile | AccuracyFile | CountsFile | ProfileFile | PlatformFile | Comparison | Choice
               | LedgerFile)
RECORDS: dict[Stage, type[StageRecord]] = {
    "pipeline": LedgerFile, "variants": VariantsFile, "accuracy": AccuracyFile, "counts": CountsFile,
    "profile": ProfileFile, "platform": PlatformFile, "compare": Comparison, "choice": Choice,
}

FILES: dict[Stage, StageFile] = {
    "pipeline": StageFile("pipeline.json", "the pipeline's ledger"),
    "variants": StageFile("variants.json", "the variants stage"),
    "accuracy": StageFile("accuracy.json", "the accuracy stage"),
    "counts": StageFile("counts.json", "the counts stage"),
    "profile": StageFile("profile.json", "the profile stage"),  # the runner's RESULT.json
    "platform": StageFile("platform.json", "the profile stage"),
    "compare": StageFile("compare.json", "the compare stage"),
    "choice": StageFile("choice.json", "the select stage"),
}


@dataclass(frozen=True)
class BuildFolder:
    """build/<target>/: every stage file's path, read and written here only."""

    root: Path

    def path(self, stage: Stage) -> Path:
        """Where `stage`'s file is."""
        return self.root / FILES[stage].name

    def has(self, stage: Stage) -> bool:
        """Whether `stage`'s file was written."""
        return self.path(stage).is_file()

    def _read(self, stage: Stage, record: Callable[[Json], R]) -> R:
        """`stage`'s file as its record (the readers below), or one line saying which stage makes it."""
        path, what = self.path(stage), FILES[stage].stage
        return parsed(record, read_json(path, what), path, what)

    def write(self, stage: Stage, record: StageRecord) -> None:
        """`stage`'s record as strict JSON, atomically; another stage's record is a bug, not a file."""
        if not isinstance(record, RECORDS[stage]):
            raise TypeError(f"{FILES[stage].name} holds a {RECORDS[stage].__name__}, not a {type(record).__name__}")
        write_json(self.path(stage), record.to_json())

    def record(self, stage: Stage) -> StageRecord:
        """`stage`'s file as its record, whichever stage it is (the readers below name their record's type)."""
        return self._read(stage, cast(Callable[[Json], StageRecord], RECORDS[stage].from_json))

    def variants(self) -> VariantsFile:
        """variants.json as its record."""
        return self._read("variants", VariantsFile.from_json)

    def accuracy(self) -> AccuracyFile:
        """accuracy.json as its record."""
        return self._read("accuracy", AccuracyFile.from_json)

    def counts(self) -> CountsFile:
        """counts.json as its record."""
        return self._read("counts", CountsFile.from_json)

    def profile(self) -> ProfileFile:
        """profile.json (the runner's result) as its record."""
        return self._read("profile", ProfileFile.from_json)

    def platform(self) -> PlatformFile:
        """platform.json as its record."""
        return self._read("platform", PlatformFile.from_json)

    def compare(self) -> Comparison:
        """compare.json as its record."""
        return self._read("compare", Comparison.from_json)

    def choice(self) -> Choice:
        """choice.json as its record."""
        return self._read("choice", Choice.from_json)

    def ledger(self) -> LedgerFile:
        """pipeline.json as its record."""
        return self._read("pipeline", LedgerFile.from_json)

    @property
    def outputs(self) -> Path:
        """The runner's outputs beside profile.json (runner.outputs_path)."""
        return outputs_path(self.path("profile"))


def manifest_path(artifacts: Path) -> Path:
    """An artifacts folder's manifest."""
    return artifacts / MANIFEST


def read_manifest(artifacts: Path) -> Manifest | None:
    """An artifacts folder's manifest, or None when nothing was exported there."""
    path = manifest_path(artifacts)
    if not path.is_file():
        return None
    return parsed(Manifest.from_json, read_json(path, "the export stage"), path, "the export stage")


def write_manifest(artifacts: Path, manifest: Manifest) -> None:
    """An artifacts folder's manifest as strict JSON, atomically."""
    write_json(manifest_path(artifacts), manifest.to_json())
