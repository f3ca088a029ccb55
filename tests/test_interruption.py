"""Ctrl-C and a crashing runner during `python -m toolkit profile`: finished results stay on disk, the rest is
marked unfinished, `--resume` continues; a crash is recorded against the run it hit and the others go on; and
artifacts/<target>/ is replaced only by a complete new choice.

Real processes: the toolkit in its own process group (Ctrl-C signals the whole foreground group, so the test
does the same with killpg), the bench runner as its child, a quick target whose streaming runs leave seconds
in which to interrupt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_pipeline import write_target
from toolkit.errors import ToolkitError
from toolkit.profiling.host import profile_on_host
from toolkit.profiling.runner import CRASHED

ROOT = Path(__file__).resolve().parent.parent
NAME = "interrupted-host"
PREVIOUS = '{"previous": "a choice exported before this run"}'


def profile_command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "toolkit", "profile", "--target", str(root / f"{NAME}.toml"), "--quick",
            "--only", "dft-400tap", "--build", str(root / "build"), "--artifacts", str(root / "artifacts"), *extra]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A quick host target with six 1-second streaming runs, and artifacts from an earlier choice."""
    target = write_target(tmp_path, NAME)
    text = target.read_text().replace("intra_op_threads = [1]", "intra_op_threads = [1, 2]\nallow_spinning = "
                                      "[true, false]")
    target.write_text(text)
    previous = tmp_path / "artifacts" / NAME
    previous.mkdir(parents=True)
    (previous / "manifest.json").write_text(PREVIOUS)
    return tmp_path


def result_file(root: Path) -> Path:
    return root / "build" / NAME / "profile.json"


def two_runs_recorded(document: dict) -> bool:
    return len(document["runs"]) >= 2


def inside_a_stream(document: dict) -> bool:
    """The runner is inside a 1-second streaming run (the mark it saves before each unit)."""
    return document.get("running", "").startswith("stream|original|onnxruntime|CPUExecutionProvider")


def interrupt_when(root: Path, ready: Callable[[dict], bool], stop: Callable[[subprocess.Popen[str]], None]
                   ) -> tuple[int, str]:
    """Start the pipeline, wait until the runner's result file is `ready`, then `stop` it: exit code, stderr."""
    process = subprocess.Popen(profile_command(root), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if result_file(root).is_file() and ready(json.loads(result_file(root).read_text())):
            stop(process)
            break
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def ctrl_c(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGINT)


def kill_runner(process: subprocess.Popen[str]) -> None:
    """SIGKILL the bench runner, the toolkit's child: what a segfault in an execution provider looks like."""
    (child,) = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    os.kill(int(child), signal.SIGKILL)


def assert_kept_and_marked(root: Path) -> dict:
    """Finished runs on disk, the result marked incomplete, the unfinished stages not in the ledger, no temp
    files left, and the previous artifacts untouched."""
    document = json.loads(result_file(root).read_text())
    assert document["complete"] is False and len(document["runs"]) >= 2 and "running" not in document
    assert all(run["status"] in ("ok", "unavailable") for run in document["runs"])
    ledger = json.loads((root / "build" / NAME / "pipeline.json").read_text())
    assert list(ledger["stages"]) == ["variants", "accuracy", "counts"]
    leftovers = [p for p in root.rglob(".*") if p.name.endswith(".tmp") or ".old-" in p.name
                 or p.name.startswith(f".{NAME}.")]
    assert leftovers == []
    assert (root / "artifacts" / NAME / "manifest.json").read_text() == PREVIOUS
    return document


def assert_resume_finishes(root: Path, before: dict) -> None:
    """--resume skips the finished runs (same records, same numbers) and exports a complete new choice."""
    resumed = subprocess.run(profile_command(root, "--resume"), cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = json.loads(result_file(root).read_text())
    assert after["complete"] is True
    assert after["runs"][: len(before["runs"])] == before["runs"]
    progress = " ".join(resumed.stderr.split())  # the progress lines wrap at 80 columns
    finished = len(before["runs"]) + len(before["outputs"]["variants"])
    assert progress.count("already in profile.json, skipped") == finished
    manifest = json.loads((root / "artifacts" / NAME / "manifest.json").read_text())
    assert "previous" not in manifest and manifest["model"]["variant"] in ("original", "dft-400tap")


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_resume_continues(root: Path) -> None:
    code, stderr = interrupt_when(root, two_runs_recorded, ctrl_c)
    assert code == 130
    assert "Traceback" not in stderr and stderr.rstrip().endswith("interrupted: finished results were kept")
    before = assert_kept_and_marked(root)
    assert_resume_finishes(root, before)


@pytest.mark.slow
def test_a_crashing_run_is_recorded_and_the_others_go_on(root: Path) -> None:
    """SIGKILL to the runner mid-run: restarted with --resume, the run it was in recorded as failed, never rerun."""
    code, stderr = interrupt_when(root, inside_a_stream, kill_runner)
    assert code == 0, stderr[-2000:]
    assert "the runner died by SIGKILL; restarting it with --resume" in stderr
    document = json.loads(result_file(root).read_text())
    records = document["runs"] + document["streaming"] + list(document["outputs"]["variants"].values())
    crashed = [r for r in records if r.get("reason") == CRASHED]
    assert document["complete"] is True and [r["key"] for r in crashed] == [
        "stream|original|onnxruntime|CPUExecutionProvider|t1|spin|all"]
    assert all(r["status"] in ("ok", "unavailable") for r in records if r.get("reason") != CRASHED)
    keys = [r["key"] for r in document["runs"] + document["streaming"]]
    assert len(keys) == len(set(keys))
    manifest = json.loads((root / "artifacts" / NAME / "manifest.json").read_text())
    assert manifest["model"]["variant"] in ("original", "dft-400tap")


@pytest.mark.slow
def test_no_complete_choice_keeps_the_previous_artifacts(root: Path) -> None:
    """A policy nothing meets (a 80 ns budget): the run ends in one error line, the old artifacts stay whole."""
    target = root / f"{NAME}.toml"
    target.write_text(target.read_text().replace("realtime_budget = 0.1", "realtime_budget = 0.000001"))
    done = subprocess.run(profile_command(root), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: no variant meets target '{NAME}'")
    assert [p.name for p in (root / "artifacts").iterdir()] == [NAME]
    assert [p.name for p in (root / "artifacts" / NAME).iterdir()] == ["manifest.json"]
    assert (root / "artifacts" / NAME / "manifest.json").read_text() == PREVIOUS


CRASHING_RUNNER = '''\
import json, os, signal, sys
out = sys.argv[sys.argv.index("--out") + 1]
doc = json.load(open(out)) if os.path.exists(out) else {"runs": [], "streaming": [], "outputs": {"variants": {}}}
if len(doc["runs"]) < CRASHES or STUCK:  # one unit recorded, then the engine segfaults
    doc["runs"] += [] if STUCK else [{"key": str(len(doc["runs"])), "status": "failed"}]
    json.dump(doc, open(out, "w"))
    os.kill(os.getpid(), signal.SIGSEGV)
doc["complete"] = True
json.dump(doc, open(out, "w"))
'''


def crashing_bundle(folder: Path, crashes: int, stuck: bool) -> Path:
    """A bundle whose runner.py is a stand-in that dies by SIGSEGV `crashes` times, each after one more unit
    (or, `stuck`, every time with nothing recorded)."""
    folder.mkdir()
    script = CRASHING_RUNNER.replace("CRASHES", str(crashes)).replace("STUCK", str(stuck))
    (folder / "runner.py").write_text(script, encoding="utf-8")
    return folder


def test_the_runner_is_restarted_for_as_long_as_each_restart_finishes_more(tmp_path: Path) -> None:
    """An engine that segfaults on each of its settings: six crashes, each after progress, still finish."""
    bundle = crashing_bundle(tmp_path / "bundle", crashes=6, stuck=False)
    document = profile_on_host(bundle, tmp_path / "result.json", quick=True)
    assert document["complete"] is True and len(document["runs"]) == 6


def test_a_runner_that_crashes_without_progress_is_an_error(tmp_path: Path) -> None:
    bundle = crashing_bundle(tmp_path / "bundle", crashes=0, stuck=True)
    with pytest.raises(ToolkitError, match="the runner exited with -11"):
        profile_on_host(bundle, tmp_path / "result.json", quick=True)
