"""Where profiling results come from: one table, one function each, all returning the runner's RESULT.json.

    host      the bundle's runner.py in a subprocess here            latencies measured-on-host
    ssh       copied to a board over SSH and run there               latencies measured-on-board
    emulate   run under qemu-aarch64 with the board's CPU model      outputs emulated; its latencies are
              (a board target without HOST or --import)              emulated wall time, never a board's speed;
                                                                     latency predicted from instruction counts
    import    a RESULT.json (+ RESULT.outputs.npz) made elsewhere    as the file says where it was made

Every source leaves RESULT.json and RESULT.outputs.npz at `request.result`; the later stages read only those,
with the evidence labels of the source that made them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.evidence import BOARD, EMULATED, EMULATED_TIME, HOST
from toolkit.files import Json, read_json
from toolkit.profiling.emulate import profile_emulated
from toolkit.profiling.host import profile_on_host
from toolkit.profiling.runner import outputs_path, read_cpuinfo
from toolkit.profiling.ssh import Board, profile_on_board
from toolkit.records import ProfileFile
from toolkit.records.base import parsed
from toolkit.targets import Target

# what --quick counts under emulation: the chunk the choice is made on (each count is 3 emulated runs)
QUICK_COUNT_WORKLOADS = ("stream",)


@dataclass(frozen=True)
class Request:
    """What a source needs: the target, the bundle, where RESULT.json goes, and the user's options."""

    target: Target
    bundle_dir: Path
    result: Path
    quick: bool
    resume: bool
    board: str | None = None
    imported: Path | None = None


@dataclass(frozen=True)
class Source:
    """One way of getting results, and the evidence labels of what it returns."""

    description: str
    latency_evidence: str
    output_evidence: str
    profile: Callable[[Request], Json]


def profile_host(request: Request) -> Json:
    """The bundle's runner in a subprocess of this Python (toolkit.profiling.host)."""
    return profile_on_host(request.bundle_dir, request.result, quick=request.quick, resume=request.resume)


def profile_ssh(request: Request) -> Json:
    """The bundle copied to `request.board` (user@host) over SSH, run there, results fetched back."""
    board = Board(request.board or "")
    return profile_on_board(board, request.target, request.bundle_dir, request.result, quick=request.quick)


def profile_qemu(request: Request) -> Json:
    """The bundle under qemu-aarch64 with the board's CPU model, plus labelled instruction counts per variant
    and workload, on the streaming chunk only with --quick (toolkit.profiling.emulate.profile_emulated; needs
    root and `make ci-deps`)."""
    return profile_emulated(request.target, request.bundle_dir, request.result,
                            workloads=QUICK_COUNT_WORKLOADS if request.quick else ())


def imported_evidence(document: ProfileFile) -> str:
    """measured-on-host when the file was made on this machine's CPU, else measured-on-board."""
    made_on = document.platform.get("cpu", {}).get("model")
    on_board = document.board_check is not None or made_on != read_cpuinfo().get("model")
    return BOARD if on_board else HOST


def profile_imported(request: Request) -> Json:
    """Copy a RESULT.json and its outputs npz into the build folder."""
    source = request.imported
    if source is None or not source.is_file() or not outputs_path(source).is_file():
        raise ToolkitError(f"--import {source}: needs RESULT.json with RESULT.outputs.npz beside it, as the "
                           "runner writes them")
    document = read_json(source, "an imported runner result")
    if not parsed(ProfileFile.from_json, document, source, "the bench runner").complete:
        raise ToolkitError(f"--import {source}: the runner did not finish (complete is false); rerun it there "
                           "with --resume and import the finished file")
    for src, dst in ((outputs_path(source), outputs_path(request.result)), (source, request.result)):
        staging = dst.with_name(f".{dst.name}.import")
        shutil.copyfile(src, staging)
        staging.replace(dst)
    return document


SOURCES: dict[str, Source] = {
    "host": Source("the bench runner on this machine", HOST, HOST, profile_host),
    "ssh": Source("the bench runner on the board over SSH", BOARD, BOARD, profile_ssh),
    "emulate": Source("the bench runner under qemu-aarch64", EMULATED_TIME, EMULATED, profile_qemu),
    "import": Source("an imported runner result", BOARD, BOARD, profile_imported),
}

# (test on (target, board, imported, emulate), source name): first match wins
RULES: list[tuple[Callable[[Target, str | None, Path | None, bool], bool], str]] = [
    (lambda target, board, imported, emulate: imported is not None, "import"),
    (lambda target, board, imported, emulate: board is not None, "ssh"),
    (lambda target, board, imported, emulate: emulate, "emulate"),
    (lambda target, board, imported, emulate: target.kind == "host", "host"),
    (lambda target, board, imported, emulate: target.kind == "board", "emulate"),
]


def choose_source(target: Target, board: str | None, imported: Path | None, emulate: bool) -> str:
    """The source the options name; a board with none of them is emulated (its latency then predicted)."""
    return next(name for test, name in RULES if test(target, board, imported, emulate))


def evidence_of(source: str, document: ProfileFile) -> tuple[str, str]:
    """(latency label, output label) of a result document from `source`."""
    if source == "import":
        label = imported_evidence(document)
        return label, label
    return SOURCES[source].latency_evidence, SOURCES[source].output_evidence
