"""Test fixtures shared by several test files: a small host target file and a real sshd on loopback, optionally
fronting the emulated arm64 rootfs."""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from toolkit.profiling import emulate
from toolkit.profiling.ssh import Board, run_remote
from toolkit.targets import load_target

# A host target whose matrix is tiny: the CPU provider, one provider this onnxruntime build lacks, one thread.
TEST_HOST_TARGET = """\
name = "{name}"
description = "test host: the CPU provider plus one this onnxruntime build lacks, one thread"
kind = "host"

[cpu]
model = "detect"
core = "detect"
cores = "detect"
clock_ghz = "detect"
isa_flags = "detect"
l1d_kib = "detect"
l2_kib = "detect"
l3_kib = "detect"
fp32_flops_per_cycle_per_core = "detect"
sources = {{}}

[matrix]
providers = ["CPUExecutionProvider", "XnnpackExecutionProvider"]
intra_op_threads = [1]
graph_optimization = ["all"]

[litert]
threads = [1]
xnnpack = true

[policy]
max_abs_db_error = 0.5
p99_abs_db_error = 0.1
max_rel_mel_error = 0.025
realtime_budget = 0.1

[peak]
method = "cores x clock x flops / 2"
"""

SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
"""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    """Until sshd accepts connections; its own error if it exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"sshd did not listen on port {port}")


def keygen(path: Path) -> str:
    """A fresh ed25519 key pair; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextlib.contextmanager
def running_sshd(folder: Path, force_command: Path | None = None, python: str = "python3") -> Iterator[Board]:
    """A throwaway sshd on 127.0.0.1 (optionally running every session through `force_command`), and a Board
    for it whose host key is pinned in a private known_hosts."""
    host_key = keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(keygen(folder / "client_key") + "\n")
    port = free_port()
    config = SSHD_CONFIG.format(port=port, dir=folder)
    if force_command is not None:
        config += f"ForceCommand {force_command}\n"
    (folder / "sshd_config").write_text(config)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")],
                               stderr=subprocess.PIPE)
    try:
        wait_listening(port, process)
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
        yield Board("root@127.0.0.1", port=port, identity=folder / "client_key",
                    known_hosts=folder / "known_hosts", python=python)
    finally:
        process.terminate()
        process.wait(timeout=10)


BOARD_SHELL = """#!/bin/sh
export QEMU_CPU={qemu_cpu} PYTHONHASHSEED=0
exec {enter} {rootfs} {cpuinfo} -- /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


@contextlib.contextmanager
def emulated_board(folder: Path, target: str = "rpi4") -> Iterator[Board]:
    """A throwaway sshd on 127.0.0.1 whose every command runs inside the emulated rootfs (arm_enter.sh) with the
    target's cpuinfo and QEMU core, so the remote shell, tar and Python are aarch64 code. Needs root, `make
    ci-deps` and the rootfs (built on first use)."""
    rootfs = emulate.ensure_rootfs()
    board_target = load_target(target)
    (folder / "cpuinfo").write_text(board_target.emulation.cpuinfo)
    shell = folder / "board-shell"
    shell.write_text(BOARD_SHELL.format(qemu_cpu=board_target.emulation.qemu_cpu,
                                        enter=shlex.quote(str(emulate.ENTER_SCRIPT)), rootfs=shlex.quote(str(rootfs)),
                                        cpuinfo=shlex.quote(str(folder / "cpuinfo"))))
    shell.chmod(0o755)
    with running_sshd(folder, force_command=shell, python="/opt/venv/bin/python") as board:
        yield board


def bench_folders(board: Board) -> set[str]:
    """The bench folders in a board's /tmp (the emulated Pi's rootfs is shared by every run on this machine)."""
    return set(run_remote(board, "ls -d /tmp/meltoolkit-bench.* 2>/dev/null || true").decode().split())
