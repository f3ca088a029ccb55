"""Profile a bench bundle on this machine: the bundle's own runner.py in a subprocess of the venv's Python.

A subprocess, not an import, so the host runs exactly what a board or QEMU runs, in a fresh process whose
CPU time belongs to the measurement alone.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.report.terminal import runner_progress

STDERR_TAIL = 5


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
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    command = runner_command(bundle, result, quick, resume)
    with runner_progress(f"profiling {bundle.name}") as feed, \
            subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            feed(line)
            tail.append(line.rstrip())
    if proc.returncode != 0:
        last = tail[-1] if tail else "no message"
        raise ToolkitError(f"the runner exited with {proc.returncode} on {bundle}: {last}")
    return json.loads(result.read_text(encoding="utf-8"))
