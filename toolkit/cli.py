"""`python -m toolkit <command>`: a thin layer over the functions users can import.

Each command lives in the module that does its job; COMMANDS names that module, which provides
`add_arguments(parser)` and `run(args) -> int`. A ToolkitError anywhere becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from toolkit.errors import ToolkitError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("toolkit.analysis.command", "input contract, per-node math and exact operation counts"),
    "variants": ("toolkit.variants.command", "build every variant and measure its accuracy on the signal set"),
    "explain": ("toolkit.explain.command", "recognized blocks, recovered parameters, one equation, findings"),
    "profile": ("toolkit.pipeline.command", "variants, gate, counts, profile, compare, select, export for a target"),
    "select": ("toolkit.select", "pick one variant and configuration from a profiled target's results"),
    "export": ("toolkit.export", "write artifacts/<target>/ (model, manifest.json, report.md) from the choice"),
    "report": ("toolkit.report.command", "Markdown and one self-contained HTML report from profiled targets"),
    "board-check": ("toolkit.profiling.ssh", "check a board over SSH: Python, glibc, numpy, wheels, ISA flags"),
}


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line and exit 2, like every other user error (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's help line; the arguments of `command` only (all when None): each module import costs
    startup time, and the command modules import onnx, onnxruntime, sympy and onnxsim between them."""
    parser = OneLineParser(
        prog="python -m toolkit",
        description="Analyze, vary, profile and pick the log-mel ONNX front end of wake-word models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished results were kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
