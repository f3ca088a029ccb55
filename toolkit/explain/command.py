"""`python -m toolkit explain [MODEL] [--json]`: the blocks, the equation, findings and cheaper equivalents."""

from __future__ import annotations

import argparse
import json
import sys

from toolkit.explain import explain
from toolkit.explain.render import render_text
from toolkit.load import ANY_GRAPH, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="ONNX model file (default: the built-in openWakeWord front end)")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model, limits=ANY_GRAPH)
    source = args.model or "built-in default model (openWakeWord melspectrogram)"
    explanation = explain(model)
    if args.json:
        json.dump({"model": source, **explanation.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(explanation, source))
    return 0
