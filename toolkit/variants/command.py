"""`python -m toolkit variants [MODEL]`: build every variant, measure it on the signal set, print the gate's view.

Writes the variant files and variants.json (records + accuracy reports) into --out; the table on stdout has
each variant's max and p99 |dB error| against the original, the worst input level and the build status, then
what each graph input was fed and why.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from toolkit import accuracy
from toolkit.errors import ToolkitError
from toolkit.files import write_bytes_atomic
from toolkit.folder import BuildFolder
from toolkit.load import AUDIO_SCALES, FeedPlan, feed_plan, load_model, parse_inputs
from toolkit.variants import VARIANTS, Variant, build_variants

MAX_SAMPLES = 10 * 60 * 16000  # per accuracy signal: about 38 MB of float32, times the signal set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="an .onnx file (default: the built-in openWakeWord-style mel graph)")
    parser.add_argument("--out", default="build/variants", help="folder for the variant files (default build/variants)")
    parser.add_argument(
        "--samples", type=int, default=16000, help="length of each accuracy signal (default 16000 = 1 s)"
    )
    parser.add_argument(
        "--only", action="append", choices=list(VARIANTS), metavar="NAME", help="build only these (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print variants.json instead of the table")
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


def _finite_or_text(value: object) -> object:
    """JSON has no inf or nan: write them as the strings "inf" / "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_or_text(item) for key, item in value.items()}
    return value


def _row(variant: Variant, report: accuracy.AccuracyReport | None) -> str:
    """One table line: numbers for a built variant, the reason for a failed one."""
    if report is None:
        return f"{variant.name:30} {variant.status}: {variant.reason}"
    overall = report.overall
    worst = max(report.by_level, key=lambda label: report.by_level[label].max_abs_db) if overall.max_abs_db else "-"
    differ = f"; integer outputs differ: {'; '.join(report.mismatches)}" if report.mismatches else ""
    mel = "-" if overall.max_rel_mel is None else f"{overall.max_rel_mel:.4g}"  # no mel block: not measured
    return (
        f"{variant.name:30} {variant.format:6} {'yes' if variant.exact else 'no':5} "
        f"{overall.max_abs_db:12.4g} {overall.p99_abs_db:12.4g} {mel:>12}  {worst}{differ}"
    )


def run(args: argparse.Namespace) -> int:
    if args.samples < 512:
        raise ToolkitError(f"--samples {args.samples} gives no frame; use at least 512")
    if args.samples > MAX_SAMPLES:
        raise ToolkitError(f"--samples {args.samples} is more than {MAX_SAMPLES:,} (10 minutes at 16 kHz): each of "
                           "the accuracy signals would be generated and run whole; use a shorter length")
    model = load_model(args.model)
    plan = feed_plan(model, parse_inputs(args.input))
    out = Path(args.out)
    # the original comes first: it is the reference every error is measured against
    others = [name for name in (args.only or VARIANTS) if name != "original"]
    full_scale = AUDIO_SCALES[args.audio_scale]
    variants = build_variants(model, out, names=["original", *others], plan=plan, full_scale=full_scale)
    if variants[0].status != "built":
        raise ToolkitError(f"could not write the original model to {out}: {variants[0].reason}")
    signals = accuracy.signal_set(args.samples, full_scale)
    reference = accuracy.run_signals(variants[0].path, "onnx", signals, plan)
    reports: dict[str, accuracy.AccuracyReport | None] = {}
    for index, variant in enumerate(variants, 1):
        print(f"[accuracy {index}/{len(variants)}] {variant.name}", file=sys.stderr)
        built = variant.status == "built"
        reports[variant.name] = accuracy.measure(reference, variant.path, variant.format, signals, plan) \
            if built else None
    payload = [
        {**v.to_dict(), "accuracy": _finite_or_text(r.to_dict()) if r else None}
        for v, r in zip(variants, reports.values(), strict=True)
    ]
    write_bytes_atomic(BuildFolder(out).path("variants"), json.dumps(payload, indent=2).encode())
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    errors = f"{'max |dB err|':>12} {'p99 |dB err|':>12} {'max rel mel':>12}"
    print(f"{'variant':30} {'format':6} {'exact':5} {errors}  worst level")
    for variant in variants:
        print(_row(variant, reports[variant.name]))
    print("\n".join(feed_lines(plan)))
    print(f"signals: {len(signals)} x {args.samples} samples; files and variants.json in {out}")
    return 0
