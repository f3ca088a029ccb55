"""Wake-word pipelines: one TOML file per pipeline in pipelines/, data not code, checked on load.

Every key a pipeline file may hold (any other key is an error naming the file, line and key):

    name           str   the file's stem: pipelines/openwakeword.toml has name = "openwakeword"
    description    str   one line for reports
    sample_rate    int   audio samples per second
    chunk_samples  int   new samples per streaming step (openWakeWord: 1280, 80 ms): every stage runs once a step

    [package]      optional: where the stage files come from when no --stage file is given (pip --no-deps into
                   the toolkit's cache folder, never the repository)
    name, version  str   the PyPI distribution
    models_dir     str   the folder of the stage files inside the installed package

    [policy]
    wake_words           int    the classifier count the pipeline must hold within the target's
                                max_stream_cpu_share
    max_abs_score_error  float  largest |score difference| of the chosen combination against the original
    threshold            float  in (0, 1): the detection threshold whose flips the pipeline gate counts

    [[stage]]      in streaming order; the first reads the audio, each later one the stage before it
    name           str         unique, e.g. "mel"
    source         str         "audio" for the first stage, else the previous stage's name
    window         int         rows of the source's buffer each run reads: the last `window` samples or rows
    input_shape    list[int]   the shape the window is reshaped to; its size is window x the source's row_size
    rows           int         rows the stage's output adds to its buffer each run (openWakeWord's mel: 8 frames)
    row_size       int         values per output row; the output's size must be rows x row_size
    scale, offset  float, optional (1, 0)  the output becomes output x scale + offset (openWakeWord's mel: x/10 + 2)
    fill           float, optional (0)     what the stage's buffer holds before streaming
    fanout         bool, optional (false)  the last stage only: one model per wake word, all on the same window
    files          list[str]   model file names in [package] models_dir; one unless fanout
    max_abs_error  float       the stage's gate: largest |output difference| of a variant against the original

A stage runs once per step, so its window must be at least the rows its source adds per step.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.files import named_file, names_in
from toolkit.targets import BOOL, INT, INT_LIST, NUMBER, STR, STR_LIST, Key, _line_of
from toolkit.wakeword.stream import Cadence, Cut

PIPELINES_DIR = Path(__file__).resolve().parent.parent.parent / "pipelines"
AUDIO = "audio"

SCHEMA: dict[str, dict[str, Key]] = {
    "": {"name": Key(STR), "description": Key(STR), "sample_rate": Key(INT), "chunk_samples": Key(INT)},
    "package": {"name": Key(STR), "version": Key(STR), "models_dir": Key(STR)},
    "policy": {"wake_words": Key(INT), "max_abs_score_error": Key(NUMBER), "threshold": Key(NUMBER)},
    "stage": {
        "name": Key(STR), "source": Key(STR), "window": Key(INT), "input_shape": Key(INT_LIST), "rows": Key(INT),
        "row_size": Key(INT), "scale": Key(NUMBER, required=False), "offset": Key(NUMBER, required=False),
        "fill": Key(NUMBER, required=False), "fanout": Key(BOOL, required=False), "files": Key(STR_LIST),
        "max_abs_error": Key(NUMBER),
    },
}
REQUIRED_TABLES = ("policy", "stage")
POSITIVE = {("", "sample_rate"), ("", "chunk_samples"), ("policy", "wake_words"), ("policy", "max_abs_score_error"),
            ("stage", "window"), ("stage", "rows"), ("stage", "row_size"), ("stage", "max_abs_error")}


@dataclass(frozen=True)
class Stage(Cut):
    """One model (or, fanned out, one per wake word) in the chain: how its input is cut (the executor's Cut), where
    it reads from, its files and its gate."""

    source: str
    files: tuple[str, ...]
    max_abs_error: float


@dataclass(frozen=True)
class Package:
    """The PyPI distribution that ships the stage files."""

    name: str
    version: str
    models_dir: str


@dataclass(frozen=True)
class Policy:
    """What the chosen combination must meet beside the target's CPU budget."""

    wake_words: int
    max_abs_score_error: float
    threshold: float


@dataclass(frozen=True)
class Pipeline(Cadence):
    """A validated pipeline file: the executor's Cadence (rate, stages) with the rest of the file."""

    name: str
    description: str
    path: Path
    policy: Policy
    stages: tuple[Stage, ...]
    package: Package | None = None

    def stage(self, name: str) -> Stage:
        """The stage called `name`."""
        return next(s for s in self.stages if s.name == name)


class _File:
    """The file being checked: every message starts with 'path:line:'."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, section: str, key: str | None, entry: int | None, message: str) -> ToolkitError:
        line = _line_of(self.text, section, key, entry or 0) if section or key else 1
        if section == "stage":
            where = f"[[stage]] #{entry + 1} " if entry is not None else "[[stage]] "
        else:
            where = f"[{section}] " if section else ""
        return ToolkitError(f"{self.path}:{line}: {where}{message}")


def _check_table(file: _File, section: str, entry: int | None, values: Any) -> None:
    """Known keys, present required keys, right types, positive where positive."""
    if not isinstance(values, dict):
        raise file.fail("", section, None, f"{section} must be a table")
    schema = SCHEMA[section]
    for key, value in values.items():
        if key not in schema:
            raise file.fail(section, key, entry, f"unknown key {key!r}; known keys there: {', '.join(schema)}")
        if not schema[key].kind.check(value):
            raise file.fail(section, key, entry, f"{key} must be {schema[key].kind.description}, got {value!r}")
        if (section, key) in POSITIVE and value <= 0:
            raise file.fail(section, key, entry, f"{key} must be positive, got {value!r}")
    for key, spec in schema.items():
        if spec.required and key not in values:
            raise file.fail(section, None, entry,
                            f"missing key {key!r} (keys are described in toolkit/wakeword/spec.py)")


def _check_layout(file: _File, data: dict[str, Any]) -> None:
    """Tables: known ones only, the required ones present, [[stage]] an array of tables."""
    top = {k: v for k, v in data.items() if k not in SCHEMA}
    for key, value in top.items():
        if isinstance(value, dict | list) and key not in SCHEMA[""]:
            raise file.fail("", key, None, f"unknown table {key!r}; known tables: package, policy, stage")
    _check_table(file, "", None, top)
    for section in REQUIRED_TABLES:
        if section not in data:
            raise file.fail("", None, None, f"missing table [{section}]" if section != "stage" else
                            "missing [[stage]] entries: a pipeline has at least one stage")
    if not isinstance(data["stage"], list):
        raise file.fail("", "stage", None, "stage must be written as [[stage]] entries (an array of tables)")
    for section in ("package", "policy"):
        if section in data:
            _check_table(file, section, None, data[section])
    for entry, values in enumerate(data["stage"]):
        _check_table(file, "stage", entry, values)


def _stage(values: dict[str, Any]) -> Stage:
    """A stage with its defaults filled in."""
    return Stage(name=values["name"], source=values["source"], window=values["window"],
                 input_shape=tuple(values["input_shape"]), rows=values["rows"], row_size=values["row_size"],
                 scale=float(values.get("scale", 1.0)), offset=float(values.get("offset", 0.0)),
                 fill=float(values.get("fill", 0.0)), fanout=values.get("fanout", False),
                 files=tuple(values["files"]), max_abs_error=float(values["max_abs_error"]))


def _check_chain(file: _File, data: dict[str, Any], stages: list[Stage]) -> None:
    """Each stage reads the one before it, its window fits its input shape and covers one step's new rows."""
    previous: Stage | None = None
    for entry, stage in enumerate(stages):
        source = previous.name if previous else AUDIO
        if stage.source != source:
            raise file.fail("stage", "source", entry, f"source must be {source!r} (stages read the one before "
                            f"them, the first the audio), got {stage.source!r}")
        source_row = previous.row_size if previous else 1
        if math.prod(stage.input_shape) != stage.window * source_row:
            raise file.fail("stage", "input_shape", entry, f"input_shape {list(stage.input_shape)} holds "
                            f"{math.prod(stage.input_shape)} values, the window {stage.window} x row size "
                            f"{source_row} of {source!r} is {stage.window * source_row}")
        new_rows = previous.rows if previous else data["chunk_samples"]
        if stage.window < new_rows:
            raise file.fail("stage", "window", entry, f"window {stage.window} is shorter than the {new_rows} rows "
                            f"{source!r} adds per step: rows would be skipped")
        last = entry == len(stages) - 1
        if stage.fanout and not last:
            raise file.fail("stage", "fanout", entry, "only the last stage may fan out to one model per wake word")
        if not stage.files or (len(stage.files) != 1 and not stage.fanout):
            raise file.fail("stage", "files", entry, "files must name one model (several only with fanout = true)")
        previous = stage
    if len({s.name for s in stages}) != len(stages):
        raise file.fail("stage", "name", None, "stage names must be unique")


def _check_policy(file: _File, policy: dict[str, Any]) -> None:
    if not 0 < policy["threshold"] < 1:
        raise file.fail("policy", "threshold", None, f"threshold must be in (0, 1), got {policy['threshold']!r}")


def known_pipelines() -> list[str]:
    """Pipeline names, one per pipelines/*.toml."""
    return names_in(PIPELINES_DIR)


def load_pipeline(name_or_path: str | os.PathLike[str]) -> Pipeline:
    """Load and validate a pipeline; every problem is one line naming the file, line and key."""
    path = named_file("pipeline", name_or_path, PIPELINES_DIR)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ToolkitError(f"{path}: not valid TOML: {error}") from None
    file = _File(path, text)
    _check_layout(file, data)
    _check_policy(file, data["policy"])
    if data["name"] != path.stem:
        raise file.fail("", "name", None, f"name {data['name']!r} must equal the file name {path.stem!r}")
    stages = [_stage(values) for values in data["stage"]]
    _check_chain(file, data, stages)
    package = data.get("package")
    return Pipeline(name=data["name"], description=data["description"], path=path, sample_rate=data["sample_rate"],
                    chunk_samples=data["chunk_samples"], policy=Policy(**data["policy"]), stages=tuple(stages),
                    package=Package(**package) if package else None)
