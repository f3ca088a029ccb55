"""`python -m toolkit profile --pipeline NAME --target T [--stage name=path ...]`: the whole wake-word chain.

Variants per stage, each stage's gate, each gated variant streamed alone at the cadence per engine
configuration, the choice under the pipeline gate, the original and the chosen chain streamed with N = 1, 2, 4,
8 classifiers, then artifacts/<pipeline>/<target>/. With --host the streams run on that board over SSH
(toolkit.wakeword.remote), measured there; on a board target with no --host, every CPU share and latency is
predicted from instructions counted under emulation (toolkit.wakeword.emulated), labelled so.
Results go to build/<pipeline>/<target>/results.json; the report section is printed on stdout,
progress on stderr.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.accuracy import signal_set
from toolkit.errors import ToolkitError
from toolkit.evidence import PREDICTED
from toolkit.files import write_json_atomic
from toolkit.profiling import emulate
from toolkit.profiling.ssh import Board
from toolkit.targets import Target, load_target
from toolkit.terminal import progress
from toolkit.wakeword import remote
from toolkit.wakeword.choose import choose, fit, mults_per_chunk
from toolkit.wakeword.emulated import METHOD as EMULATED_METHOD
from toolkit.wakeword.emulated import predict_variant, predicted_sweep
from toolkit.wakeword.export import export, markdown
from toolkit.wakeword.models import StageModel, parse_stage_args, stage_models
from toolkit.wakeword.spec import Pipeline, Stage, load_pipeline
from toolkit.wakeword.stream import DEFAULT_CONFIG, METHOD, WAKE_WORD_COUNTS, sweep
from toolkit.wakeword.variants import (
    FIRST_STAGE_VARIANTS,
    LATER_STAGE_VARIANTS,
    NOT_STREAMED,
    StageVariant,
    Trace,
    build_stage,
    candidate_config,
    candidates,
    count_stage,
    gate_stage,
    measure_stage,
    stage_configs,
    trace,
)

SIGNAL_SECONDS = 4.0
SECONDS = {"stage": 3.0, "sweep": 10.0}
QUICK_SECONDS = {"stage": 0.5, "sweep": 1.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pipeline options of `profile` (toolkit.pipeline.command adds them to its own)."""
    parser.add_argument("--pipeline", help="profile a wake-word pipeline (pipelines/NAME.toml or a .toml file) "
                                           "instead of one model")
    parser.add_argument("--stage", action="append", default=[], metavar="NAME=PATH",
                        help="with --pipeline: a stage's model file (repeat for each classifier; mel=builtin runs "
                             "the built-in mel graph); stages not given come from the pipeline's [package]")


def _wanted(names: tuple[str, ...], only: tuple[str, ...]) -> tuple[str, ...]:
    """Variant names narrowed by --only (the original always stays)."""
    return tuple(n for n in names if not only or n == "original" or n in only)


def _variants(pipeline: Pipeline, models: dict[str, list[StageModel]], build: Path,
              only: tuple[str, ...]) -> dict[str, list[StageVariant]]:
    """Every stage's variants, built under build/variants/<stage>/<model>/."""
    per_stage = {}
    for index, stage in enumerate(pipeline.stages):
        names = _wanted((*FIRST_STAGE_VARIANTS, *NOT_STREAMED) if index == 0 else LATER_STAGE_VARIANTS, only)
        per_stage[stage.name] = build_stage(stage, index == 0, models[stage.name], build / "variants", names)
    return per_stage


Measurer = Callable[[list[tuple[StageVariant, Stage, bool]]], list[list[dict[str, Any]]]]  # gated -> measured


def _host_measurer(pipeline: Pipeline, recorded: Trace, target: Target, seconds: float) -> Measurer:
    """Each variant streamed alone on this host per engine configuration of the target's matrix."""
    configs = stage_configs(target)
    return lambda gated: [[measure_stage(variant, stage, recorded, c, pipeline.rate_hz, seconds) for c in configs]
                          for variant, stage, _ in gated]


def _ssh_measurer(board: Board, pipeline: Pipeline, recorded: Trace, target: Target, seconds: float,
                  build: Path) -> Measurer:
    """Every variant streamed alone on the board per engine configuration of the target's matrix, in one trip."""
    return lambda gated: remote.measure_stages(board, pipeline, target, [(v, s) for v, s, _ in gated], recorded,
                                               seconds, build)


def _emulated_measurer(pipeline: Pipeline, target: Target, build: Path) -> tuple[Measurer, emulate.Guest]:
    """Each variant's models counted under emulation and predicted on the board's core."""
    missing = emulate.emulation_missing()
    if missing:
        raise ToolkitError(f"target {target.name!r}: no board to stream on and no emulation here: {missing}")
    guest = emulate.Guest.for_target(target)
    return (lambda gated: [predict_variant(variant, stage, first, pipeline, target, guest, build / "bundles")
                           for variant, stage, first in gated]), guest


def _gate_and_measure(pipeline: Pipeline, per_stage: dict[str, list[StageVariant]], recorded: Trace,
                      measurer: Measurer) -> None:
    """Each built variant's stage gate; then every passing one measured (or predicted)."""
    gated = []
    for index, stage in enumerate(pipeline.stages):
        for variant in per_stage[stage.name]:
            gate_stage(variant, stage, recorded)
            if variant.passed:
                count_stage(variant, stage, index == 0)
                gated.append((variant, stage, index == 0))
            progress(f"[wakeword] {stage.name} {variant.name}: {variant.status}"
                      + (f", max |error| {variant.max_abs_error:.3g}, {'pass' if variant.passed else 'fail'}"
                         if variant.max_abs_error is not None else f" {variant.reason}"))
    progress(f"[wakeword] measuring {len(gated)} gated variants")
    for (variant, _, _), measured in zip(gated, measurer(gated), strict=True):
        variant.measured = measured


def _choice_entry(variant: StageVariant, models: list[StageModel]) -> dict[str, Any]:
    best = candidate_config(variant)
    return {"variant": variant.name, "config": best["config"], "cpu_share": best["cpu_share"],
            "files": [str(f) for f in variant.files], "models": [m.label for m in models]}


def _platform(platform: dict[str, Any]) -> str:
    return (f"{platform['machine']}, Python {platform['python']}, {platform['glibc']}, onnxruntime "
            f"{platform['onnxruntime']}")


def _streams(pipeline: Pipeline, target: Target, chains: dict[str, dict[str, StageVariant]], seconds: float,
             board: Board | None, guest: emulate.Guest | None, build: Path) -> tuple[dict[str, Any], str, str]:
    """The original and the chosen chain with N = 1, 2, 4, 8 classifiers: streamed on the board over SSH, on this
    host, or predicted under emulation; with where and how."""
    configs = {"original": {s: DEFAULT_CONFIG for s in chains["original"]},
               "chosen": {s: candidate_config(v)["config"] for s, v in chains["chosen"].items()}}
    if board:
        streams, platform = remote.sweep_chains(board, pipeline, chains, configs, seconds, build)
        return streams, f"streamed on {board.destination} over SSH ({_platform(platform)}), {target.cpu.model}", METHOD
    if guest is None:
        streams = {label: sweep(pipeline, {s: v.files for s, v in combo.items()}, configs[label], seconds)
                   for label, combo in chains.items()}
        return streams, f"streamed on this host, {target.cpu.model}", METHOD
    streams = {label: predicted_sweep(pipeline, combo, WAKE_WORD_COUNTS, guest.qemu_cpu)
               for label, combo in chains.items()}
    return (streams, f"predicted for {target.cpu.model} from counts under qemu-aarch64 -cpu {guest.qemu_cpu}",
            EMULATED_METHOD.format(cpu=guest.qemu_cpu))


def profile_pipeline(pipeline: Pipeline, target: Target, models: dict[str, list[StageModel]], build: Path,
                     only: tuple[str, ...] = (), quick: bool = False, board: Board | None = None) -> dict[str, Any]:
    """Every step up to the results document (not exported): streamed on a host target or on the board over SSH,
    predicted from emulated instruction counts on a board target without one."""
    board_check = remote.check(board, target) if board else None  # an unusable board fails before any work
    seconds = QUICK_SECONDS if quick else SECONDS
    signals = signal_set(round(SIGNAL_SECONDS * pipeline.sample_rate))
    per_stage = _variants(pipeline, models, build, only)
    originals = {s: next(v for v in variants if v.name == "original") for s, variants in per_stage.items()}
    progress(f"[wakeword] tracing the original pipeline over {len(signals)} signals")
    recorded = trace(pipeline, {s: v.files for s, v in originals.items()}, signals)
    guest = None
    if board:
        measurer = _ssh_measurer(board, pipeline, recorded, target, seconds["stage"], build)
    elif target.kind == "host":
        measurer = _host_measurer(pipeline, recorded, target, seconds["stage"])
    else:
        measurer, guest = _emulated_measurer(pipeline, target, build)
    _gate_and_measure(pipeline, per_stage, recorded, measurer)
    combo, gate, tried = choose(pipeline, {s: candidates(v) for s, v in per_stage.items()}, signals, recorded)
    progress("[wakeword] the original and the chosen pipeline with N = 1, 2, 4, 8 classifiers")
    chains = {"original": originals, "chosen": combo}
    streams, measured_on, method = _streams(pipeline, target, chains, seconds["sweep"], board, guest, build)
    for label, picked in chains.items():
        for row in streams[label]:
            row["mults_per_chunk"] = mults_per_chunk(pipeline, picked, row["wake_words"])
    budget = target.policy.max_stream_cpu_share
    fits = {label: fit(measured, budget) for label, measured in streams.items()}
    held = next((m for m in streams["chosen"] if m["wake_words"] == pipeline.policy.wake_words), None)
    return {
        "pipeline": pipeline.name, "target": target.name, "kind": target.kind, "measured_on": measured_on,
        "evidence": "measured" if guest is None else PREDICTED, "board_check": board_check,
        "rate_hz": pipeline.rate_hz, "chunk_samples": pipeline.chunk_samples, "quick": quick,
        "signals": list(signals), "signal_seconds": SIGNAL_SECONDS,
        "stages": {s.name: {"models": [m.label for m in models[s.name]], "tolerance": s.max_abs_error,
                            "variants": [v.to_dict() for v in per_stage[s.name]]} for s in pipeline.stages},
        "choice": {s: _choice_entry(v, models[s]) for s, v in combo.items()},
        "pipeline_gate": gate, "tried": tried, "streams": streams, "fit": fits,
        "policy": {"max_stream_cpu_share": budget, "wake_words": pipeline.policy.wake_words,
                   "max_abs_score_error": pipeline.policy.max_abs_score_error},
        "meets_policy": bool(held and held["cpu_share"] <= budget and gate["passed"]),
        "original_max_score": float(np.max(recorded.scores)),
        "method": method,
    }


SINGLE_MODEL_OPTIONS = (("model", "MODEL"), ("imported", "--import"), ("resume", "--resume"))


def run(args: argparse.Namespace) -> int:
    """The pipeline's profile; the single-model options that do not apply to a pipeline are refused."""
    given = [flag for attribute, flag in SINGLE_MODEL_OPTIONS if getattr(args, attribute)]
    if given:
        raise ToolkitError(f"{', '.join(given)} does not apply with --pipeline: its models come from --stage "
                           "NAME=PATH or the pipeline's [package]")
    pipeline = load_pipeline(args.pipeline)
    target = load_target(args.target)
    models = stage_models(pipeline, parse_stage_args(args.stage, pipeline))
    build = Path(args.build) / pipeline.name / target.name
    board = Board(args.board) if args.board else None
    doc = profile_pipeline(pipeline, target, models, build, tuple(args.only), args.quick, board)
    write_json_atomic(build / "results.json", doc)
    out = Path(args.artifacts) / pipeline.name / target.name
    export(doc, out)
    print(markdown(doc))
    print(f"artifacts: {out}")
    return 0
