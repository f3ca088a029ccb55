"""`python -m toolkit variants [MODEL]`: build every variant, measure it on the signal set, print the gate's view.

Writes the variant files, variants.json and accuracy.json into --out through the pipeline's own stage functions
(toolkit.pipeline.stages.build_folder, gate_folder), so the records are the ones `profile` writes and any reader
of a build folder reads them; the table on stdout has each variant's max and p99 |dB error| against the original,
the gate's verdict by the --target's [policy], the worst input level and the build status, then what each graph
input was fed and why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolkit.accuracy import GATE_CHECKS
from toolkit.errors import ToolkitError
from toolkit.folder import FILES, BuildFolder, Stage
from toolkit.load import AUDIO_SCALES, FeedPlan, feed_plan, load_model, parse_inputs
from toolkit.pipeline.orchestrate import variant_names
from toolkit.pipeline.stages import build_folder, gate_folder
from toolkit.records import AccuracyFile, VariantRecord, VariantsFile, Verdict
from toolkit.targets import Policy, load_target
from toolkit.variants import VARIANTS

MAX_SAMPLES = 10 * 60 * 16000  # per accuracy signal: about 38 MB of float32, times the signal set
STAGES: tuple[Stage, ...] = ("variants", "accuracy")  # the stage files the command writes, as the pipeline does


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="an .onnx file (default: the built-in openWakeWord-style mel graph)")
    parser.add_argument("--out", default="build/variants", help="folder for the variant files (default build/variants)")
    parser.add_argument(
        "--samples", type=int, default=16000, help="length of each accuracy signal (default 16000 = 1 s)"
    )
    parser.add_argument(
        "--only", action="append", choices=list(VARIANTS), metavar="NAME", help="build only these (repeatable)"
    )
    parser.add_argument("--target", default="x86-host",
                        help="target name or .toml file whose [policy] gates the variants (default x86-host)")
    parser.add_argument("--json", action="store_true",
                        help="print variants.json and accuracy.json (one object, keyed by file name) instead of "
                             "the table")
    add_input_argument(parser)


def add_input_argument(parser: argparse.ArgumentParser) -> None:
    """--input NAME=VALUE, for the commands that run the model (variants, profile)."""
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                        help="feed graph input NAME this number or comma-separated numbers (default: lengths get "
                             "the number of samples, other inputs their initializer or zeros; repeatable)")
    parser.add_argument("--audio-scale", choices=list(AUDIO_SCALES), default="int16",
                        help="the units the audio input takes: int16 = int16 values as floats, full scale 32768 "
                             "(openWakeWord); unit = [-1, 1] (most ASR front ends: onnx-asr, torchaudio, librosa). "
                             "The signal set and the quantizers' calibration audio are fed in these units "
                             "(default int16)")


def feed_lines(plan: FeedPlan) -> list[str]:
    """One line per graph input: what it is fed, and why."""
    return [f"input {entry.name}: {entry.role} ({entry.why})" for entry in plan]


def _levels(verdict: Verdict) -> str:
    """The worst input level of a measured variant ("-" when it has no error), and why it fails the gate."""
    by_level = verdict.by_level
    worst = max(by_level, key=lambda label: by_level[label]["max_abs_db"]) if verdict.overall["max_abs_db"] else "-"
    return "; ".join([worst, *verdict.reasons])


def _row(variant: VariantRecord, verdict: Verdict | None) -> str:
    """One table line: numbers and the gate's verdict for a measured variant, the reason for one not built
    (verdict None) or one that could not run."""
    if verdict is None:
        return f"{variant.name:30} {variant.status}: {variant.reason}"
    head = f"{variant.name:30} {variant.format:6} {'yes' if variant.exact else 'no':5}"
    if not verdict.measured:
        return f"{head} fails the gate: {'; '.join(verdict.reasons)}"
    overall = verdict.overall
    mel = "-" if overall["max_rel_mel"] is None else f"{overall['max_rel_mel']:.4g}"  # no mel block: not measured
    gate = "passes" if verdict.passed else "fails"
    return (f"{head} {overall['max_abs_db']:12.4g} {overall['p99_abs_db']:12.4g} {mel:>12} {gate:6}  "
            f"{_levels(verdict)}")


def _policy_line(name: str, policy: Policy) -> str:
    """The tolerances the gate checked, and whose they are."""
    limits = ", ".join(f"{key} {getattr(policy, key):g}" for key in GATE_CHECKS if getattr(policy, key) is not None)
    return f"gate: {name}'s [policy]: {limits}"


def _table(variants: VariantsFile, gated: AccuracyFile) -> list[str]:
    """The header and one row per variant, the original first."""
    errors = f"{'max |dB err|':>12} {'p99 |dB err|':>12} {'max rel mel':>12}"
    rows = [_row(v, gated.variants.get(v.name)) for v in variants.variants]
    return [f"{'variant':30} {'format':6} {'exact':5} {errors} {'gate':6}  worst level; why it fails", *rows]


def run(args: argparse.Namespace) -> int:
    if args.samples < 512:
        raise ToolkitError(f"--samples {args.samples} gives no frame; use at least 512")
    if args.samples > MAX_SAMPLES:
        raise ToolkitError(f"--samples {args.samples} is more than {MAX_SAMPLES:,} (10 minutes at 16 kHz): each of "
                           "the accuracy signals would be generated and run whole; use a shorter length")
    target = load_target(args.target)
    model = load_model(args.model)
    plan = feed_plan(model, parse_inputs(args.input))
    out = Path(args.out)
    full_scale = AUDIO_SCALES[args.audio_scale]
    variants = build_folder(model, out, out, variant_names(tuple(args.only or ())), plan, full_scale)
    gated = gate_folder(out, plan, full_scale, target.policy, args.samples)
    if args.json:
        folder = BuildFolder(out)  # the files as written (strict JSON), read back as their records
        print(json.dumps({FILES[stage].name: folder.record(stage).to_json() for stage in STAGES}, indent=1))
        return 0
    print("\n".join(_table(variants, gated)))
    print(_policy_line(target.name, target.policy))
    print("\n".join(feed_lines(plan)))
    names = " and ".join(FILES[stage].name for stage in STAGES)
    print(f"signals: {len(gated.signals['levels'])} x {args.samples} samples; files, {names} in {out}")
    return 0
