"""build/<target>/ and artifacts/<target>/: the one place that names each stage file, reads it and writes it.

A stage reads the files of the stages before it and writes its own, each through BuildFolder: a missing file
is one line naming the stage that makes it (files.read_json), and every write is atomic (files.write_json), so a
reader never sees half a file. FILES lists them in the order the pipeline writes them (its ledger first). The
files whose fields later stages read one by one are also read as their records (toolkit.records).
The exported manifest sits in the artifacts folder, beside the chosen model file (manifest_path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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

Stage = Literal["pipeline", "variants", "accuracy", "counts", "profile", "platform", "compare", "choice"]
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StageFile:
    """One result file of a build folder, and what makes it (named when the file is missing or broken)."""

    name: str
    stage: str


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

    def read(self, stage: Stage) -> Json:
        """`stage`'s file, or one line saying which stage makes it."""
        return read_json(self.path(stage), FILES[stage].stage)

    def write(self, stage: Stage, document: Any) -> None:
        """`stage`'s file as strict JSON, atomically."""
        write_json(self.path(stage), document)

    def variants(self) -> VariantsFile:
        """variants.json as its record."""
        return VariantsFile.from_json(self.read("variants"))

    def accuracy(self) -> AccuracyFile:
        """accuracy.json as its record."""
        return AccuracyFile.from_json(self.read("accuracy"))

    def counts(self) -> CountsFile:
        """counts.json as its record."""
        return CountsFile.from_json(self.read("counts"))

    def profile(self) -> ProfileFile:
        """profile.json (the runner's result) as its record."""
        return ProfileFile.from_json(self.read("profile"))

    def platform(self) -> PlatformFile:
        """platform.json as its record."""
        return PlatformFile.from_json(self.read("platform"))

    def compare(self) -> Comparison:
        """compare.json as its record."""
        return Comparison.from_json(self.read("compare"))

    def choice(self) -> Choice:
        """choice.json as its record."""
        return Choice.from_json(self.read("choice"))

    def ledger(self) -> LedgerFile:
        """pipeline.json as its record."""
        return LedgerFile.from_json(self.read("pipeline"))

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
    return Manifest.from_json(read_json(path, "the export stage")) if path.is_file() else None


def write_manifest(artifacts: Path, manifest: Manifest) -> None:
    """An artifacts folder's manifest as strict JSON, atomically."""
    write_json(manifest_path(artifacts), manifest.to_json())
