"""SSH with untrusted strings: nothing reaches a shell unquoted, host keys are never accepted on first sight,
and a board whose host is not configured is refused, through the CLI too.

A real sshd on 127.0.0.1 whose remote shell is this machine's /bin/sh (no emulation: these tests are about
what the shell sees, not about ARM), with its host key pinned in a private known_hosts. Every hostile string
tries to create a marker file; the marker must never appear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import running_sshd
from toolkit.errors import ToolkitError
from toolkit.profiling.ssh import Board, check_board, remote_command, run_remote, ssh_command
from toolkit.targets import load_target

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A throwaway sshd on loopback; the Board has its key pinned in a private known_hosts."""
    with running_sshd(tmp_path_factory.mktemp("sshd-plain")) as board:
        yield board


def hostile(marker: Path) -> list[str]:
    """Strings that run `touch marker` if any shell ever sees them unquoted."""
    touch = f"touch {marker}"
    return [f"x; {touch}", f"$({touch})", f"`{touch}`", f"x && {touch}", f"x | {touch}", f"x\n{touch}",
            f"'; {touch}; '", f'"; {touch}; "', "*", "~root", "$HOME"]


@pytest.mark.sshd
def test_every_hostile_argument_reaches_the_remote_shell_as_one_literal(sshd: Board, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for text in hostile(marker):
        echoed = run_remote(sshd, remote_command(["printf", "%s", text], ["printf", "|%s", text]))
        assert echoed.decode() == f"{text}|{text}"
    assert not marker.exists()


@pytest.mark.sshd
def test_a_hostile_board_python_is_one_command_name(sshd: Board, tmp_path: Path) -> None:
    """The board's Python path (a CLI/target string) with shell syntax: not found, one error line, nothing run."""
    marker = tmp_path / "marker"
    for text in hostile(marker)[:6]:
        board = Board(sshd.destination, sshd.port, sshd.identity, sshd.known_hosts, python=f"python3{text}")
        with pytest.raises(ToolkitError) as error:
            check_board(board, load_target("rpi4"))
        assert "\n" not in str(error.value) and "failed (exit 127)" in str(error.value)
    assert not marker.exists()


@pytest.mark.sshd
@pytest.mark.parametrize("destination", ["root@127.0.0.1;touch {marker}", "-oProxyCommand=touch {marker}",
                                         "root@$(touch {marker})"])
def test_a_hostile_destination_is_refused_and_runs_nothing(sshd: Board, tmp_path: Path, destination: str) -> None:
    marker = tmp_path / "marker"
    board = Board(destination.format(marker=marker), sshd.port, sshd.identity, sshd.known_hosts)
    with pytest.raises(ToolkitError, match=r"is not in .*host-key checking is on"):
        check_board(board, load_target("rpi4"))
    ssh = subprocess.run(ssh_command(board, "true"), capture_output=True, timeout=30, check=False)
    assert ssh.returncode == 255  # not a host: ssh itself refuses; `--` keeps it from being an option
    assert not marker.exists()


@pytest.mark.sshd
def test_an_unknown_host_key_is_refused_and_never_recorded(sshd: Board, tmp_path: Path) -> None:
    """ssh exactly as the toolkit runs it, against a live sshd missing from known_hosts: refused, file unchanged."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    board = Board(sshd.destination, sshd.port, sshd.identity, known_hosts)
    ssh = subprocess.run(ssh_command(board, "true"), capture_output=True, text=True, timeout=30, check=False)
    assert ssh.returncode == 255 and "Host key verification failed" in ssh.stderr
    assert known_hosts.read_text() == ""
    assert run_remote(sshd, "echo pinned") == b"pinned\n"  # the same sshd, pinned: accepted


def test_profile_refuses_a_board_whose_host_is_not_configured(tmp_path: Path) -> None:
    """`profile --host` for a host missing from ~/.ssh/known_hosts: exit 2, one line, nothing measured."""
    command = [sys.executable, "-m", "toolkit", "profile", "--target", "rpi4", "--host", "pi@rpi4.invalid",
               "--quick", "--only", "dft-400tap", "--build", str(tmp_path / "build"),
               "--artifacts", str(tmp_path / "artifacts")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(tmp_path)})
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert last == (f"error: known_hosts file {tmp_path}/.ssh/known_hosts does not exist; check the board's host "
                    "key and add it: ssh-keyscan -p 22 rpi4.invalid (compare the fingerprint first)")
    assert not (tmp_path / "build" / "rpi4" / "profile.json").exists()
    assert not (tmp_path / "artifacts").exists()
