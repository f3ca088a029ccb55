"""`python -m toolkit explain [MODEL] [--json] [--input NAME=VALUE] [--sample-rate SR]`: the blocks, the equation,
findings and cheaper equivalents; an If the inputs decide is explained through the branch it takes."""

from __future__ import annotations

import argparse
import json
import sys

from toolkit.analysis.command import input_assignment
from toolkit.explain import explain
from toolkit.explain.render import render_text
from toolkit.load import ANY_GRAPH, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="ONNX model file (default: the built-in openWakeWord front end)")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    parser.add_argument("--input", type=input_assignment, action="append", default=[], metavar="NAME=VALUE",
                        help="the value of an input beside the audio, to decide the If it conditions (default: a "
                             "sample rate input = --sample-rate, others unknown)")
    parser.add_argument("--sample-rate", type=int, default=16000,
                        help="the value of a sample rate input (default 16000)")


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model, limits=ANY_GRAPH)
    source = args.model or "built-in default model (openWakeWord melspectrogram)"
    explanation = explain(model, dict(args.input), args.sample_rate)
    if args.json:
        json.dump({"model": source, **explanation.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(explanation, source))
    return 0
