"""Measure on a real board over SSH: copy the bench bundle, check the board, run the runner, fetch the JSON.

Safety rules this module keeps:
- host-key checking stays on: StrictHostKeyChecking=yes with BatchMode, and a host that is not in known_hosts is
  refused before any connection, with the command that shows its key for the user to verify and add;
- every local command is an argument list (no local shell); every remote command is built with shlex.join, so
  each argument reaches the board's shell quoted;
- files travel as tar streams over ssh's stdin/stdout (the board needs tar, not scp/sftp), and fetched files
  are written locally with a temp file in the same folder + os.replace.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.files import write_bytes_atomic, write_json_atomic
from toolkit.records import ProfileFile
from toolkit.targets import Target, load_target
from toolkit.terminal import progress

# What the runner needs on the board, and which boards the PyPI wheels install on:
# requirement -> (lowest Python, highest Python checked, lowest glibc), for linux aarch64 (manylinux tags).
WHEELS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "onnxruntime==1.32.0": ((3, 11), (3, 14), (2, 28)),
    "ai-edge-litert==2.3.0": ((3, 10), (3, 14), (2, 27)),
    "numpy>=2,<3": ((3, 9), (3, 14), (2, 17)),
}
# Runs on the board with its Python: facts only, as one JSON line; nothing is installed or changed.
PROBE = r"""
import json, platform, sys
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
def cpuinfo():
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields
info = cpuinfo()
print(json.dumps({
    "python": list(sys.version_info[:3]),
    "machine": platform.machine(),
    "libc": list(platform.libc_ver()),
    "packages": {n: version(n) for n in ("numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime")},
    "isa_flags": info.get("Features", "").split(),
    "cpu_part": info.get("CPU part"),
    "model": info.get("Model"),
}))
"""


@dataclass(frozen=True)
class Board:
    """How to reach a board: `user@host`, port, optional key, the known_hosts file that must list it."""

    destination: str
    port: int = 22
    identity: Path | None = None
    known_hosts: Path = Path.home() / ".ssh" / "known_hosts"
    python: str = "python3"
    connect_timeout: int = 10

    @property
    def host(self) -> str:
        """The host part of the destination, as known_hosts names it."""
        return self.destination.rpartition("@")[2]

    @property
    def known_hosts_name(self) -> str:
        """`host`, or `[host]:port` for a port other than 22 (OpenSSH's known_hosts convention)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def ssh_command(board: Board, remote: str) -> list[str]:
    """ssh with host-key checking on, no prompts, and `remote` as the one command string."""
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={board.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", f"ConnectTimeout={board.connect_timeout}", "-p", str(board.port)]
    if board.identity is not None:
        options += ["-i", str(board.identity), "-o", "IdentitiesOnly=yes"]
    return ["ssh", *options, "--", board.destination, remote]


def remote_command(*argvs: Sequence[str]) -> str:
    """Argument lists joined with && for the board's shell, every argument quoted."""
    return " && ".join(shlex.join(argv) for argv in argvs)


def require_known_host(board: Board) -> None:
    """Refuse a board whose host key is not in known_hosts: we never accept a key on first sight."""
    if not board.known_hosts.is_file():
        raise ToolkitError(f"known_hosts file {board.known_hosts} does not exist; check the board's host key and "
                           f"add it: ssh-keyscan -p {board.port} {board.host} (compare the fingerprint first)")
    found = subprocess.run(["ssh-keygen", "-F", board.known_hosts_name, "-f", str(board.known_hosts)],
                           capture_output=True, check=False)
    if found.returncode != 0:
        raise ToolkitError(f"{board.known_hosts_name} is not in {board.known_hosts}: host-key checking is on and "
                           f"unknown hosts are refused; check its key and add it: ssh-keyscan -p {board.port} "
                           f"{board.host} >> {board.known_hosts} (compare the fingerprint first)")


def run_remote(board: Board, remote: str, *, stdin: bytes | None = None, timeout: float | None = None,
               stream_stderr: bool = False) -> bytes:
    """One command on the board; its stdout, or one line naming the failure."""
    done = subprocess.run(ssh_command(board, remote), input=stdin, stdout=subprocess.PIPE,
                          stderr=None if stream_stderr else subprocess.PIPE, timeout=timeout, check=False)
    if done.returncode == 0:
        return done.stdout
    message = (done.stderr or b"").decode(errors="replace").strip().splitlines()
    last = message[-1] if message else "see the messages above"
    if "Host key verification failed" in "\n".join(message):
        raise ToolkitError(f"host key of {board.known_hosts_name} does not match {board.known_hosts}: refusing "
                           "to connect; if the board was reinstalled, check its new key and replace the line")
    raise ToolkitError(f"on {board.destination}: {remote[:80]!r} failed (exit {done.returncode}): {last}")


def _version(text: str) -> tuple[int, ...]:
    """'2.36' -> (2, 36); empty when not a version."""
    parts = text.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) and text else ()


def installable(python: tuple[int, int], machine: str, glibc: tuple[int, ...]) -> dict[str, str]:
    """For each wheel the runner needs: 'yes', or why PyPI has none for this board."""
    verdicts = {}
    for requirement, (low, high, libc) in WHEELS.items():
        problems = [
            f"machine {machine} is not aarch64" if machine != "aarch64" else "",
            f"Python {python[0]}.{python[1]} is outside {low[0]}.{low[1]}..{high[0]}.{high[1]}"
            if not low <= python <= high else "",
            f"glibc {'.'.join(map(str, glibc)) or 'unknown'} is older than {libc[0]}.{libc[1]}"
            if glibc[:2] < libc else "",
        ]
        verdicts[requirement] = "; ".join(p for p in problems if p) or "yes"
    return verdicts


def check_board(board: Board, target: Target) -> dict[str, Any]:
    """Python, glibc, numpy major, which wheels install, ISA flags against the target's; refuses unusable boards."""
    require_known_host(board)
    facts = json.loads(run_remote(board, shlex.join([board.python, "-c", PROBE])).decode())
    python = (facts["python"][0], facts["python"][1])
    glibc = _version(facts["libc"][1]) if facts["libc"][0] == "glibc" else ()
    numpy = facts["packages"]["numpy"]
    facts["numpy_major"] = int(numpy.split(".")[0]) if numpy else None
    facts["installable"] = installable(python, facts["machine"], glibc)
    facts["isa_flags_missing"] = sorted(set(target.cpu.isa_flags) - set(facts["isa_flags"]))
    facts["isa_flags_extra"] = sorted(set(facts["isa_flags"]) - set(target.cpu.isa_flags))
    if facts["machine"] != "aarch64":
        raise ToolkitError(f"{board.destination} is {facts['machine']}, not aarch64: it is not a {target.name}")
    if facts["numpy_major"] is None and facts["installable"]["numpy>=2,<3"] != "yes":
        raise ToolkitError(f"{board.destination} has no numpy and no numpy 2 wheel installs there: "
                           f"{facts['installable']['numpy>=2,<3']}")
    if facts["isa_flags_missing"]:
        progress(f"warning: {board.destination} lacks ISA flags target {target.name} lists: "
                 f"{' '.join(facts['isa_flags_missing'])}; is it a {target.name}?")
    return facts


def _tar_bundle(bundle_dir: Path) -> bytes:
    """The bundle folder's files as an uncompressed tar stream, paths relative to the folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(bundle_dir.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(bundle_dir)), recursive=False)
    return buffer.getvalue()


def copy_bundle(board: Board, bundle_dir: Path) -> str:
    """A fresh folder on the board (mktemp -d) holding the bundle; returns its path there."""
    remote_dir = run_remote(board, shlex.join(["mktemp", "-d", "/tmp/meltoolkit-bench.XXXXXX"])).decode().strip()
    run_remote(board, remote_command(["tar", "-x", "-f", "-", "-C", remote_dir]), stdin=_tar_bundle(bundle_dir))
    return remote_dir


def fetch_files(board: Board, remote_dir: str, names: Sequence[str]) -> dict[str, bytes]:
    """The named files of the board's folder, as one tar stream; each must be there."""
    stream = run_remote(board, remote_command(["tar", "-c", "-f", "-", "-C", remote_dir, *names]))
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        if set(members) != set(names):
            raise ToolkitError(f"the board returned {sorted(members)}, expected {list(names)}")
        files = {}
        for name in names:
            extracted = archive.extractfile(members[name])
            assert extracted is not None  # a regular file member always has content
            files[name] = extracted.read()
    return files


def run_copied(board: Board, bundle_dir: Path, argv: Callable[[str], list[str]], fetch: Sequence[str], *,
               keep: bool = False, timeout: float | None = None) -> dict[str, bytes]:
    """Copy the folder to a fresh folder on the board, run argv(that folder) there (its stderr shown as it
    runs), fetch the named files; the board's folder is removed afterwards unless `keep`."""
    remote_dir = copy_bundle(board, bundle_dir)
    try:
        run_remote(board, shlex.join(argv(remote_dir)), timeout=timeout, stream_stderr=True)
        return fetch_files(board, remote_dir, fetch)
    finally:
        if not keep:
            run_remote(board, shlex.join(["rm", "-rf", "--", remote_dir]))


def profile_on_board(board: Board, target: Target, bundle_dir: Path, result: Path, *, quick: bool = False,
                     keep: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """Copy, check, run, fetch: the board's RESULT.json (with the board check under 'board_check') at `result`,
    its outputs npz beside it."""
    facts = check_board(board, target)
    progress(f"ssh: {board.destination} Python {'.'.join(map(str, facts['python']))}, {' '.join(facts['libc'])}, "
             f"numpy {facts['packages']['numpy']}; copying the bundle")
    names = ["result.json", "result.outputs.npz"]
    files = run_copied(board, bundle_dir, lambda remote_dir: [
        board.python, f"{remote_dir}/runner.py", remote_dir, "--out", f"{remote_dir}/result.json",
        *["--quick"] * quick], names, keep=keep, timeout=timeout)
    write_bytes_atomic(result.with_suffix(".outputs.npz"), files["result.outputs.npz"])
    record = json.loads(files["result.json"])
    record["board_check"] = facts
    write_json_atomic(result, ProfileFile.from_json(record).to_json())  # the runner's format: inf stays inf
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`board-check TARGET USER@HOST`: what `make profile HOST=...` would find on the board, changing nothing."""
    parser.add_argument("target", help="board target name, e.g. rpi4")
    parser.add_argument("destination", metavar="USER@HOST")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--identity", type=Path, help="private key file (default: ssh's own choice)")
    parser.add_argument("--known-hosts", type=Path, default=Board.known_hosts,
                        help="known_hosts that must already list the board (default: %(default)s)")
    parser.add_argument("--python", default="python3", help="the board's Python with numpy and onnxruntime")


def run(args: argparse.Namespace) -> int:
    """Print the board check as JSON; unusable or unknown boards are one-line errors."""
    board = Board(args.destination, args.port, args.identity, args.known_hosts, args.python)
    print(json.dumps(check_board(board, load_target(args.target)), indent=1))
    return 0
