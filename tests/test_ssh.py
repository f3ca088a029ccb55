"""The SSH path against a real sshd on loopback whose 'board' is the emulated arm64 rootfs.

sshd runs every command through ForceCommand: a script that enters the rootfs (arm_enter.sh) with the Pi 4's
cpuinfo and QEMU_CPU=cortex-a72, so the remote shell, tar and the runner are all aarch64 code. Needs root,
`make ci-deps` and the rootfs (built on first use).
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import bench_folders, emulated_board, keygen
from toolkit import melgraph
from toolkit.errors import ToolkitError
from toolkit.profiling import ssh
from toolkit.profiling.bundle import make_bundle
from toolkit.profiling.runner import OPENVINO_PLUGIN
from toolkit.profiling.ssh import Board, check_board, installable, profile_on_board, run_remote
from toolkit.targets import load_target


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A throwaway sshd on 127.0.0.1 fronting the emulated Pi 4, with its key pinned in a private known_hosts."""
    with emulated_board(tmp_path_factory.mktemp("sshd")) as board:
        yield board


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default graph alone, one streaming workload, rpi4's matrix."""
    work = tmp_path_factory.mktemp("bundle")
    melgraph.save_model(melgraph.default_model(), work / "original.onnx")
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(1760) / 16000)).astype(np.float32)[None, :]
    return make_bundle([("original", work / "original.onnx", "onnx")], "rpi4", {"tone": tone}, work / "bundle",
                       workloads=[{"name": "stream", "batch": 1, "samples": 1760}], warmup=1, runs=2,
                       streaming={"seconds": 0.5, "chunk_samples": 1760, "rate_hz": 12.5})


@pytest.mark.qemu
@pytest.mark.sshd
def test_unknown_host_is_refused_before_connecting(board: Board, tmp_path: Path) -> None:
    """A known_hosts without the board: refused with the command to check its key, no connection made."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ToolkitError, match=r"is not in .*ssh-keyscan"):
        check_board(Board(board.destination, board.port, board.identity, empty, board.python), load_target("rpi4"))


@pytest.mark.qemu
@pytest.mark.sshd
def test_changed_host_key_is_refused(board: Board, tmp_path: Path) -> None:
    """known_hosts pinning another key for the same [host]:port: ssh refuses, and so do we."""
    other = keygen(tmp_path / "other_key")
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"[127.0.0.1]:{board.port} {other}\n")
    with pytest.raises(ToolkitError, match="does not match"):
        check_board(Board(board.destination, board.port, board.identity, pinned, board.python), load_target("rpi4"))


@pytest.mark.qemu
@pytest.mark.sshd
def test_arguments_reach_the_board_quoted(board: Board) -> None:
    """Spaces, ; and $() in an argument arrive as one literal argument, not as shell syntax."""
    text = "a b; echo injected $(id -u) 'q'"
    assert run_remote(board, shlex.join(["printf", "%s", text])).decode() == text


@pytest.mark.qemu
@pytest.mark.sshd
def test_board_check_reads_the_emulated_pi(board: Board) -> None:
    """Python 3.11 / glibc 2.36 (bookworm), numpy 2, every wheel installable, and the Pi 4's ISA flags."""
    facts = check_board(board, load_target("rpi4"))
    assert facts["machine"] == "aarch64"
    assert facts["python"][:2] == [3, 11]
    assert facts["libc"] == ["glibc", "2.36"]
    assert facts["numpy_major"] == 2
    assert set(facts["installable"].values()) == {"yes"}
    assert facts["isa_flags"] == ["fp", "asimd", "evtstrm", "crc32", "cpuid"]
    assert facts["isa_flags_missing"] == [] and facts["cpu_part"] == "0xd08"


def test_installable_names_why_a_wheel_is_missing() -> None:
    """Bullseye's Python 3.9 gets no onnxruntime 1.32 or LiteRT 2.3 wheel; an old glibc none at all."""
    bullseye = installable((3, 9), "aarch64", (2, 31))
    assert bullseye["numpy>=2,<3"] == "yes"
    assert "Python 3.9 is outside 3.11..3.14" in bullseye["onnxruntime==1.32.0"]
    old = installable((3, 11), "aarch64", (2, 24))
    assert "glibc 2.24 is older than 2.28" in old["onnxruntime==1.32.0"]
    assert "not aarch64" in installable((3, 11), "armv7l", (2, 36))["numpy>=2,<3"]


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.sshd
def test_copy_check_run_fetch_end_to_end(board: Board, bundle: Path, tmp_path: Path) -> None:
    """The whole remote path on aarch64: result JSON and outputs fetched, board check attached, board cleaned."""
    result = tmp_path / "rpi4" / "result.json"
    before = bench_folders(board)  # other runs sharing the emulated Pi's rootfs may have theirs
    record = profile_on_board(board, load_target("rpi4"), bundle, result, quick=True)
    assert record["complete"] is True
    assert record["platform"]["machine"] == "aarch64"
    assert record["board_check"]["libc"] == ["glibc", "2.36"]
    plugin = [run for run in record["runs"] if run["provider"] == OPENVINO_PLUGIN]  # x86-64 wheels only
    assert {run["status"] for run in record["runs"] if run not in plugin} == {"ok"}
    assert plugin and all(run["status"] == "unavailable" and "x86-64 only" in run["reason"] for run in plugin)
    outputs = np.load(result.with_name("result.outputs.npz"))
    assert outputs["original/tone"].shape == (1, 1, 8, 32)
    assert bench_folders(board) <= before  # this run's folder on the board is gone


@pytest.mark.qemu
@pytest.mark.sshd
def test_board_check_command_prints_the_facts(board: Board, capsys: pytest.CaptureFixture[str]) -> None:
    """`board-check rpi4 root@127.0.0.1 ...` parses like the CLI and prints the board check as JSON."""
    parser = argparse.ArgumentParser()
    ssh.add_arguments(parser)
    args = parser.parse_args(["rpi4", board.destination, "--port", str(board.port), "--identity",
                              str(board.identity), "--known-hosts", str(board.known_hosts),
                              "--python", board.python])
    assert ssh.run(args) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (facts["machine"], facts["cpu_part"], facts["numpy_major"]) == ("aarch64", "0xd08", 2)
