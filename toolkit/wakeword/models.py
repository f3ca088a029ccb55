"""Which model file each stage runs: the user's `--stage name=path`, else the pipeline's [package] files.

The package is installed with pip --no-deps into the toolkit's cache folder (never the repository), once; tests
always pass their own files. `--stage mel=builtin` runs the built-in mel graph (toolkit.melgraph) as the first
stage, the stand-in for a front end file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from toolkit.errors import ToolkitError
from toolkit.load import ANY_GRAPH, load_model
from toolkit.melgraph import default_model
from toolkit.packages import installed
from toolkit.wakeword.spec import Package, Pipeline

BUILTIN = "builtin"


@dataclass(frozen=True)
class StageModel:
    """One model a stage runs: a label for reports (the file's stem), where it came from, the loaded graph."""

    label: str
    source: str
    model: onnx.ModelProto


def parse_stage_args(pairs: Sequence[str], pipeline: Pipeline) -> dict[str, list[str]]:
    """`name=path` pairs grouped by stage, in the order given; unknown stages and malformed pairs are errors."""
    grouped: dict[str, list[str]] = {}
    names = [s.name for s in pipeline.stages]
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not path:
            raise ToolkitError(f"--stage {pair!r}: write it as NAME=PATH, e.g. --stage embedding=embedding_model.onnx")
        if name not in names:
            raise ToolkitError(f"--stage {pair!r}: pipeline {pipeline.name!r} has no stage {name!r}; its stages: "
                               f"{', '.join(names)}")
        grouped.setdefault(name, []).append(path)
    for name, paths in grouped.items():
        stage = pipeline.stage(name)
        if len(paths) > 1 and not stage.fanout:
            raise ToolkitError(f"--stage {name}= given {len(paths)} times; stage {name!r} runs one model")
        if BUILTIN in paths and stage is not pipeline.stages[0]:
            raise ToolkitError(f"--stage {name}={BUILTIN}: only the first stage ({pipeline.stages[0].name!r}) "
                               "has a built-in graph")
    return grouped


def package_dir(package: Package, cache: Path | None = None) -> Path:
    """The package's models folder, the package installed (without its dependencies) under the cache folder first
    when missing."""
    return installed(package.name, package.version, package.models_dir, cache,
                     "pass every stage's file with --stage NAME=PATH") / package.models_dir


def _load(path: str) -> StageModel:
    """A stage file through the toolkit's safe loader (any graph: only the mel stage reads audio)."""
    if path == BUILTIN:
        return StageModel("builtin-mel", "the built-in mel graph (toolkit.melgraph)", default_model())
    file = Path(path)
    if not file.is_file():
        raise ToolkitError(f"stage model {path!r} is not a file")
    return StageModel(file.stem, str(file), load_model(file, limits=ANY_GRAPH))


def stage_models(pipeline: Pipeline, given: dict[str, list[str]]) -> dict[str, list[StageModel]]:
    """Every stage's models: the given files, the rest from the pipeline's package."""
    missing = [s for s in pipeline.stages if s.name not in given]
    folder: Path | None = None
    if missing:
        if pipeline.package is None:
            raise ToolkitError(f"pipeline {pipeline.name!r} has no [package]: pass "
                               + " ".join(f"--stage {s.name}=PATH" for s in missing))
        folder = package_dir(pipeline.package)
    models = {}
    for stage in pipeline.stages:
        paths = given.get(stage.name) or [str(folder / name) for name in stage.files if folder]
        models[stage.name] = [_load(path) for path in paths]
    return models
