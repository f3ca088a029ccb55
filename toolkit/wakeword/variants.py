"""Each stage's variants, its own gate, and its CPU share at the streaming cadence per engine configuration.

The first stage (the mel front end) gets every ONNX variant toolkit.variants builds for a mel graph; the later
stages get the builders that apply to any graph: original, onnxsim-simplified and dynamic int8. TFLite is
skipped with its reason: the streaming executor runs onnxruntime sessions. A stage's gate compares a variant's
output (after the stage's transform) with the original's on the inputs the original pipeline gave that stage
over the signal set, so a stage is judged on its own error, not on its upstream's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from toolkit.analysis import analyze
from toolkit.errors import ToolkitError
from toolkit.profiling.runner import streaming_configs
from toolkit.targets import Target
from toolkit.variants import VARIANTS, build_one, build_variants
from toolkit.wakeword.models import StageModel
from toolkit.wakeword.spec import Pipeline, Stage
from toolkit.wakeword.stream import (
    DEFAULT_CONFIG,
    Chain,
    Config,
    chunks_of,
    open_chain,
    open_sessions,
    stage_chunks,
    stream_stage,
)

FIRST_STAGE_VARIANTS = tuple(name for name, spec in VARIANTS.items() if spec.format == "onnx")
LATER_STAGE_VARIANTS = ("original", "simplified", "int8-dynamic")
TIE = 0.25  # relative: stage CPU shares this close to the lowest are not told apart
NOT_STREAMED = {name: "not streamed: the executor runs onnxruntime sessions (the single-model profile measures "
                      "LiteRT files)" for name, spec in VARIANTS.items() if spec.format != "onnx"}


@dataclass
class StageVariant:
    """One variant of a stage: a file per model, its status, its gate and its measured configurations."""

    stage: str
    name: str
    status: str  # built | skipped | failed
    reason: str
    files: list[Path]
    exact: bool
    max_abs_error: float | None = None
    passed: bool = False
    measured: list[dict[str, Any]] | None = None
    counts: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "variant": self.name, "status": self.status, "reason": self.reason,
                "files": [str(f) for f in self.files], "exact": self.exact, "max_abs_error": self.max_abs_error,
                "passed": self.passed, "measured": self.measured or [], "counts": self.counts or []}


def _build_model(first: bool, model: StageModel, out: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """name -> toolkit.variants.Variant for one model of a stage."""
    if first:
        return {v.name: v for v in build_variants(model.model, out, names=list(names))}
    return {name: build_one(name, model.model, out, []) for name in names}


def build_stage(stage: Stage, first: bool, models: list[StageModel], out: Path,
                names: tuple[str, ...] | None = None) -> list[StageVariant]:
    """Every variant of a stage, built for each of its models (a fanned-out stage's variant is that variant of
    every classifier; it is built only when it builds for all of them); the ones the executor does not stream
    are listed as skipped, with why."""
    chosen = names or ((*FIRST_STAGE_VARIANTS, *NOT_STREAMED) if first else LATER_STAGE_VARIANTS)
    wanted = tuple(name for name in chosen if name not in NOT_STREAMED)
    built = [_build_model(first, model, out / stage.name / model.label, wanted) for model in models]
    variants = []
    for name in wanted:
        per_model = [b[name] for b in built]
        bad = next((v for v in per_model if v.status != "built"), None)
        files = [Path(v.path) for v in per_model] if bad is None else []
        variants.append(StageVariant(stage.name, name, bad.status if bad else "built", bad.reason if bad else "",
                                     files, VARIANTS[name].exact))
    variants += [StageVariant(stage.name, name, "skipped", NOT_STREAMED[name], [], VARIANTS[name].exact)
                 for name in chosen if name in NOT_STREAMED]
    return variants


@dataclass
class Trace:
    """What the original pipeline fed each stage and what each stage gave, chunk by chunk over the signal set."""

    inputs: dict[str, list[np.ndarray]]
    outputs: dict[str, list[np.ndarray]]
    scores: np.ndarray  # [chunks of all signals, models]


def trace(pipeline: Pipeline, files: dict[str, list[Path]], signals: dict[str, np.ndarray],
          configs: dict[str, Config] | None = None) -> Trace:
    """Run the chain over every signal (a fresh chain each), recording each stage's inputs and outputs."""
    inputs: dict[str, list[np.ndarray]] = {s.name: [] for s in pipeline.stages}
    outputs: dict[str, list[np.ndarray]] = {s.name: [] for s in pipeline.stages}
    scores = []
    for audio in signals.values():
        chain = open_chain(pipeline, files, configs or {})
        for chunk in chunks_of(audio, pipeline):
            scores.append(chain.step(chunk))
            for stage, x, y in zip(pipeline.stages, chain.inputs, chain.outputs, strict=True):
                inputs[stage.name].append(x)
                outputs[stage.name].append(y)
    return Trace(inputs, outputs, np.stack(scores))


def _stage_chain(variant: StageVariant, stage: Stage, config: Config) -> Chain:
    """A one-stage chain on the variant's files, to run it on recorded inputs."""
    return Chain([open_sessions(stage, variant.files, config)])


def gate_stage(variant: StageVariant, stage: Stage, recorded: Trace) -> None:
    """Largest |output difference| from the original's on the recorded inputs; passes within the stage's
    max_abs_error."""
    if variant.status != "built":
        return
    chain = _stage_chain(variant, stage, DEFAULT_CONFIG)
    errors = [np.abs(chain.run_stage(0, x) - y).max() for x, y in
              zip(recorded.inputs[stage.name], recorded.outputs[stage.name], strict=True)]
    variant.max_abs_error = float(max(errors))
    variant.passed = variant.max_abs_error <= stage.max_abs_error


def _analysis_dims(stage: Stage, first: bool, path: Path) -> dict[str, Any]:
    """The analyzer's input dims for one run of the stage: [batch, samples] for the audio, else each symbolic
    dim of the model's input bound to the stage's input_shape."""
    if first:
        return {"batch": stage.input_shape[0], "samples": stage.input_shape[1]}
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return {"dims": {d.dim_param: want for d, want in zip(dims, stage.input_shape, strict=True) if d.dim_param}}


def count_stage(variant: StageVariant, stage: Stage, first: bool) -> None:
    """Exact multiplications of one run of each of the variant's files (toolkit.analysis, dense convention); an
    If the data decides makes `mul` the most any run costs ("at_most"; `mul_at_least` the least); a graph the
    analyzer refuses says why."""
    counts: list[dict[str, Any]] = []
    for path in variant.files:
        try:
            analysis = analyze(path, **_analysis_dims(stage, first, path))
        except ToolkitError as error:
            counts.append({"file": str(path), "mul": None, "reason": str(error)})
            continue
        counts.append({"file": str(path), "mul": analysis.totals("dense")["mul"], "at_most": bool(analysis.bounded),
                       "mul_at_least": analysis.totals_at_least("dense")["mul"]})
    variant.counts = counts


def stage_configs(target: Target) -> list[Config]:
    """The target's streaming configurations (provider x threads x spinning at the first optimization level)."""
    matrix = target.matrix
    bundle = {"matrix": {"providers": list(matrix.providers), "intra_op_threads": list(matrix.intra_op_threads),
                         "graph_optimization": list(matrix.graph_optimization),
                         "allow_spinning": list(matrix.allow_spinning)}}
    return streaming_configs(bundle, {"format": "onnx"})


def measure_stage(variant: StageVariant, stage: Stage, recorded: Trace, config: Config, rate_hz: float,
                  seconds: float) -> dict[str, Any]:
    """The stage alone at the cadence on this host, fed its recorded inputs in order."""
    inputs = recorded.inputs[stage.name]
    return stream_stage(stage, variant.files, inputs, config, rate_hz, stage_chunks(rate_hz, seconds))


def cheapest(variant: StageVariant) -> dict[str, Any] | None:
    """The variant's measured configuration with the lowest CPU share; shares within TIE of it are a tie, broken
    by fewer threads, then no spinning (as the single-model choice breaks near-ties)."""
    ok = [m for m in variant.measured or [] if m["status"] == "ok"]
    if not ok:
        return None
    lowest = min(m["cpu_share"] for m in ok)
    tied = [m for m in ok if m["cpu_share"] <= lowest * (1 + TIE)]
    return min(tied, key=lambda m: (m["config"]["threads"], m["config"]["spinning"] is True, m["cpu_share"]))


def candidate_config(variant: StageVariant) -> dict[str, Any]:
    """cheapest() of a variant that has a finished run, as every candidate has."""
    best = cheapest(variant)
    assert best is not None, f"{variant.name} has no finished run"
    return best


def _mults(variant: StageVariant) -> float:
    """The variant's exact multiplications per run, all its files together (inf when not counted)."""
    counts = [c["mul"] for c in variant.counts or []]
    return float(sum(counts)) if counts and None not in counts else math.inf


def candidates(variants: list[StageVariant], limit: int = 3) -> list[StageVariant]:
    """Gated, measured variants of one stage, best first (at most `limit`), and the original always, so the
    original pipeline is among the combinations. Shares within TIE of the lowest are a tie (a stage's share from
    a 3 s stream moved by up to that between runs here: the mel original 0.7 to 0.9 % of a core), broken by
    fewer exact multiplications, then the original, then the share."""
    usable = [v for v in variants if v.passed and cheapest(v) is not None]
    if not usable:
        return []
    lowest = min(candidate_config(v)["cpu_share"] for v in usable)

    def rank(variant: StageVariant) -> tuple[float, ...]:
        share = candidate_config(variant)["cpu_share"]
        if share > lowest * (1 + TIE):
            return 1, share
        return 0, _mults(variant), variant.name != "original", share

    usable.sort(key=rank)
    return usable[:limit] + [v for v in usable[limit:] if v.name == "original"]


def combinations(per_stage: dict[str, list[StageVariant]]) -> list[dict[str, StageVariant]]:
    """Every combination of the stages' ranked candidates (candidates()), best first: by the sum of their ranks,
    so the first takes each stage's best and the next ones step one stage down."""
    names = list(per_stage)
    picks = sorted(itertools.product(*(range(len(v)) for v in per_stage.values())), key=sum)
    return [{name: per_stage[name][i] for name, i in zip(names, pick, strict=True)} for pick in picks]
