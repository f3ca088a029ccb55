"""The build folder's ledger: which stages of which run are finished, so `--resume` skips them.

build/<target>/pipeline.json holds the run's identity (a sha256 over the input model's bytes, the target file's
text, the settings and the toolkit version) and, per finished stage, when it finished and how long it took. It is
rewritten atomically after each stage, so Ctrl-C keeps every finished stage and never leaves half a ledger.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.files import Json
from toolkit.folder import BuildFolder
from toolkit.profiling.runner import now_utc
from toolkit.records import LedgerFile, StageDone


def run_identity(parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that decides a run's results."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass
class Ledger:
    """pipeline.json in memory: run identity, inputs, finished stages."""

    files: BuildFolder
    run_id: str
    inputs: Json
    stages: dict[str, StageDone] = field(default_factory=dict)
    started_utc: str = field(default_factory=now_utc)

    @classmethod
    def open(cls, folder: Path, run_id: str, inputs: Json, resume: bool) -> Ledger:
        """A fresh ledger, or with --resume the existing one (which must be of the same run)."""
        files = BuildFolder(folder)
        if not resume or not files.has("pipeline"):
            ledger = cls(files, run_id, inputs)
            ledger.save()
            return ledger
        saved = files.ledger()
        if saved.run_id != run_id:
            raise ToolkitError(f"{files.path('pipeline')} belongs to another run (other model, target file or "
                               "settings); drop --resume to start over")
        return cls(files, run_id, saved.inputs, dict(saved.stages), saved.started_utc)

    def done(self, stage: str) -> bool:
        """Whether this run finished `stage`."""
        return stage in self.stages

    def finish(self, stage: str, seconds: float) -> None:
        """Record a finished stage and save."""
        self.stages[stage] = StageDone(now_utc(), round(seconds, 3))
        self.save()

    @property
    def seconds(self) -> float:
        """Wall time spent in this run's finished stages (summed over resumed sessions)."""
        return sum(s.seconds for s in self.stages.values())

    def save(self) -> None:
        """Rewrite pipeline.json atomically."""
        self.files.write("pipeline", LedgerFile(self.run_id, self.inputs, self.started_utc, dict(self.stages),
                                                round(self.seconds, 3)))


class Stopwatch:
    """Wall time of a block, in seconds."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
