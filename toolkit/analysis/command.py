"""`python -m toolkit analyze [MODEL] [--batch B] [--samples N] [--dim NAME=N] [--input NAME=VALUE]
[--branch NODE=then|else] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from toolkit.analysis import analyze
from toolkit.analysis.crosscheck import crosscheck_json, heavy_nodes
from toolkit.analysis.report import print_analysis
from toolkit.errors import ToolkitError


def dim_assignment(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=INTEGER") from None


def input_assignment(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    for parse in (int, float):
        try:
            return name, parse(value)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"'{text}' is not NAME=NUMBER")


def branch_assignment(text: str) -> tuple[str, str]:
    name, _, branch = text.partition("=")
    if not name or branch not in ("then", "else"):
        raise argparse.ArgumentTypeError(f"'{text}' is not NODE=then or NODE=else")
    return name, branch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="an .onnx file (default: the built-in openWakeWord-style mel graph)")
    parser.add_argument("--batch", type=int, help="the first dim of the first input (default 1 where it is symbolic)")
    parser.add_argument("--samples", type=int,
                        help="the last dim of the first input: audio samples (default 16000 = 1 s at 16 kHz, "
                             "where it is symbolic)")
    parser.add_argument("--dim", type=dim_assignment, action="append", default=[], metavar="NAME=N",
                        help="bind any other symbolic input dim")
    parser.add_argument("--input", type=input_assignment, action="append", default=[], metavar="NAME=VALUE",
                        help="the value of an input beside the audio, filled to its shape (default: lengths = the "
                             "samples, a sample rate = --sample-rate, others unknown)")
    parser.add_argument("--branch", type=branch_assignment, action="append", default=[], metavar="NODE=then|else",
                        help="the branch an If whose condition the data decides takes (default: none fixed, the "
                             "totals are bounds)")
    parser.add_argument("--against-onnxruntime", action="store_true",
                        help="also run the graph in onnxruntime and compare each Conv / MatMul / Gemm / STFT's "
                             "multiplications with those its real shapes give (exit 1 on a difference)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="for per-second figures (default 16000)")
    parser.add_argument("--json", action="store_true", help="print the JSON contract instead of tables")


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--batch", args.batch), ("--samples", args.samples), ("--sample-rate", args.sample_rate)):
        if value is not None and value < 1:
            raise ToolkitError(f"{flag} {value} must be at least 1")
    result = analyze(args.model, batch=args.batch, samples=args.samples, dims=dict(args.dim),
                     inputs=dict(args.input), sample_rate=args.sample_rate, branches=dict(args.branch))
    data = result.to_json()
    if args.against_onnxruntime:
        data["against_onnxruntime"] = crosscheck_json(heavy_nodes(result))
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print_analysis(data, Console())
    return 0 if data.get("against_onnxruntime", {}).get("equal", True) else 1
