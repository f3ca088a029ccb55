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
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.pipeline.ledger import Json, read_json
from toolkit.profiling.emulate import profile_emulated
from toolkit.profiling.host import profile_on_host
from toolkit.profiling.runner import outputs_path, read_cpuinfo
from toolkit.profiling.ssh import Board, profile_on_board
from toolkit.targets import Target

HOST = "measured-on-host"
BOARD = "measured-on-board"
EMULATED = "emulated-instructions"
EMULATED_TIME = "emulated-wall-time"
PREDICTED = "predicted"
COUNTED = "counted"
ESTIMATED = "target-file-estimate"
TARGET_FILE = "target-file"
FILE = "file"
SETTING = "setting"
EXPLAINED = "explained"

# evidence label -> what it means, for manifests and reports
EVIDENCE: dict[str, str] = {
    COUNTED: "exact analytic count of the graph as written (toolkit.analysis, README counting convention)",
    HOST: "measured on this machine by the bench runner (time.perf_counter_ns, process CPU time)",
    BOARD: "measured on the board by the same bench runner, copied there over SSH or imported",
    EMULATED: "computed or counted under QEMU user-mode emulation: the board's aarch64 builds under qemu-aarch64 "
              "with the board's CPU model (outputs, instructions), or this host's own build under qemu-x86_64 "
              "(instructions)",
    EMULATED_TIME: "emulation wall time (not a board latency): hundreds of times a board's, never used as a "
                   "board's speed",
    PREDICTED: "predicted from emulated instruction counts and the core's pipe rates (toolkit.profiling.predict)",
    ESTIMATED: "estimate from the target file's [cpu] facts and [peak] method, not measured",
    TARGET_FILE: "a fact copied from the target file; target.cpu.sources says where each [cpu] fact comes from",
    FILE: "a property of the exported model file itself (its size and sha256)",
    SETTING: "a setting: the chosen configuration or the target's policy, not a measurement",
    EXPLAINED: "recovered from the graph's structure and weights by toolkit.explain (the fixed length it pads "
               "every input to, which the real-time budget is a fraction of)",
}
# what --quick counts under emulation: the chunk the choice is made on (each count is 3 emulated runs)
QUICK_COUNT_WORKLOADS = ("stream",)
# latencies with these labels may decide a choice (a prediction only where nothing was measured: see select)
CHOOSABLE = (HOST, BOARD, PREDICTED)


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


def imported_evidence(document: Json) -> str:
    """measured-on-host when the file was made on this machine's CPU, else measured-on-board."""
    made_on = document.get("platform", {}).get("cpu", {}).get("model")
    on_board = "board_check" in document or made_on != read_cpuinfo().get("model")
    return BOARD if on_board else HOST


def profile_imported(request: Request) -> Json:
    """Copy a RESULT.json and its outputs npz into the build folder."""
    source = request.imported
    if source is None or not source.is_file() or not outputs_path(source).is_file():
        raise ToolkitError(f"--import {source}: needs RESULT.json with RESULT.outputs.npz beside it, as the "
                           "runner writes them")
    document = read_json(source, "an imported runner result")
    if not document.get("complete"):
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


def evidence_of(source: str, document: dict[str, Any]) -> tuple[str, str]:
    """(latency label, output label) of a result document from `source`."""
    if source == "import":
        label = imported_evidence(document)
        return label, label
    return SOURCES[source].latency_evidence, SOURCES[source].output_evidence
