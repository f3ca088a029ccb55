"""Profile a bench bundle on this machine: the bundle's own runner.py in a subprocess of the venv's Python.

A subprocess, not an import, so the host runs exactly what a board or QEMU runs, in a fresh process whose
CPU time belongs to the measurement alone.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.terminal import progress, runner_progress

STDERR_TAIL = 5
# A runner killed by one of these crashed inside one unit of work: it is restarted with --resume, which records
# that unit as failed and goes on with the others, for as long as each restart finishes more units than the last
# (an engine may crash on every one of its settings: OpenVINO 2026.4 segfaults on some graphs).
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGKILL}


def runner_command(bundle_dir: Path, result_path: Path, quick: bool, resume: bool) -> list[str]:
    """The command line: venv Python, the bundle's runner, its flags."""
    command = [sys.executable, str(bundle_dir / "runner.py"), str(bundle_dir), "--out", str(result_path)]
    return command + ["--quick"] * quick + ["--resume"] * resume


def profile_on_host(
    bundle_dir: str | os.PathLike[str],
    result_path: str | os.PathLike[str],
    quick: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the bundle's runner here, its progress lines on stderr with an ETA (a bar on a terminal); returns the
    result JSON."""
    bundle = Path(bundle_dir)
    result = Path(result_path)
    if not (bundle / "runner.py").is_file():
        raise ToolkitError(f"{bundle} holds no runner.py; make it with toolkit.profiling.bundle.make_bundle")
    result.parent.mkdir(parents=True, exist_ok=True)
    restarted, finished = resume, -1
    while True:
        code, last = _run_runner(runner_command(bundle, result, quick, restarted), bundle)
        now = units_finished(result)
        if -code not in CRASH_SIGNALS or now <= finished:
            break
        restarted, finished = True, now
        progress(f"[profile] the runner died by {signal.Signals(-code).name}; restarting it with --resume: the "
                 "run it was in is recorded as failed, the others go on")
    if code != 0:
        raise ToolkitError(f"the runner exited with {code} on {bundle}: {last}")
    return json.loads(result.read_text(encoding="utf-8"))


def units_finished(result: Path) -> int:
    """Units of work the result file holds (0 before the runner wrote one): a restart must add to them."""
    if not result.is_file():
        return 0
    document = json.loads(result.read_text(encoding="utf-8"))
    return len(document["runs"]) + len(document["streaming"]) + len(document["outputs"]["variants"])


def _run_runner(command: list[str], bundle: Path) -> tuple[int, str]:
    """One runner process, its progress passed through: exit code and its last stderr line."""
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    with runner_progress(f"profiling {bundle.name}") as feed, \
            subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            feed(line)
            tail.append(line.rstrip())
    return proc.returncode, tail[-1] if tail else "no message"
