"""`python -m toolkit profile [MODEL] --target T`: every stage from variants to artifacts/<target>/.

Prints the per-variant summary table (Markdown) and the choice on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.pipeline.orchestrate import ARTIFACTS_ROOT, BUILD_ROOT, Settings, run_pipeline
from toolkit.report import gather
from toolkit.report.markdown import summary
from toolkit.select import choice_lines
from toolkit.variants import VARIANTS
from toolkit.variants.command import add_input_argument
from toolkit.wakeword import command as wakeword


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="an .onnx file (default: the built-in openWakeWord-style mel graph)")
    parser.add_argument("--target", default="x86-host", help="target name or .toml file (default x86-host)")
    parser.add_argument("--quick", action="store_true",
                        help="the runner's quick settings (2 warm-up, 5 runs, 1 s streams): for CI, not for choosing")
    parser.add_argument("--resume", action="store_true",
                        help="skip the stages this run finished before and continue the runner's result file")
    parser.add_argument("--only", action="append", choices=list(VARIANTS), metavar="VARIANT", default=[],
                        help="build only these variants besides the original (repeatable)")
    parser.add_argument("--host", dest="board", metavar="USER@BOARD", help="measure on this board over SSH")
    parser.add_argument("--emulate", action="store_true", help="run the bundle under qemu-aarch64 (board targets)")
    parser.add_argument("--import", dest="imported", metavar="RESULT.json",
                        help="use a runner result made elsewhere (RESULT.outputs.npz beside it)")
    parser.add_argument("--count-host", action=argparse.BooleanOptionalAction, default=None,
                        help="host targets: count each variant's instructions under qemu-x86_64 and report "
                             "predicted against measured latency (about 20 s per variant; default: on, off with "
                             "--quick)")
    parser.add_argument("--no-openvino", dest="openvino", action="store_false",
                        help="leave out the target's [openvino] settings (they triple a quick profile's runs; for "
                             "checks that need no OpenVINO numbers)")
    add_input_argument(parser)
    parser.add_argument("--build", type=Path, default=BUILD_ROOT, help="build root (default build)")
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_ROOT, help="artifacts root (default artifacts)")
    wakeword.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.pipeline:
        return wakeword.run(args)
    if args.stage:
        raise ToolkitError("--stage names a stage of a pipeline: add --pipeline NAME")
    settings = Settings(target=args.target, model=args.model, variants=tuple(args.only), quick=args.quick,
                        resume=args.resume, board=args.board, imported=args.imported, emulate=args.emulate,
                        count_host=not args.quick if args.count_host is None else args.count_host,
                        inputs=tuple(args.input), audio_scale=args.audio_scale, openvino=args.openvino,
                        build_root=args.build, artifacts_root=args.artifacts)
    result = run_pipeline(settings)
    data = gather(result.folder)
    print(summary(data))
    print()
    print("\n".join(choice_lines(data.choice)))
    print(f"artifacts: {result.artifacts}")
    return 0
