"""ARM boards emulated here: the real aarch64 onnxruntime and LiteRT wheels run under QEMU user-mode emulation.

What this gives, and what it does not:
- the same runner and bundle as on a board, on the same aarch64 builds of numpy, onnxruntime and LiteRT, with the
  target's CPU model (`qemu-aarch64 -cpu cortex-a72`: QEMU's default CPU advertises SVE/SME, which would send
  onnxruntime down code paths no Pi has) and the board's /proc/cpuinfo (onnxruntime's cpuinfo library crashes
  on the host's x86 text). Outputs are exact aarch64 results, so the accuracy gate applies unchanged;
- executed guest instructions per inference by class (AdvSIMD vector / AdvSIMD scalar / scalar FP / loads and
  stores / integer / branch / SVE / other; the total is their sum), counted by the toolkit's own TCG plugin
  (plugins/insnclass.c) with one counter set per guest thread, so concurrent threads lose nothing. The runner's
  --count-only mode makes an empty segment (the marks' own cost, taken off the others) and S segments of N
  inferences after imports, session creation and COUNT_WARMUP warm-up inferences; the plugin snapshots its
  counters at each mark. Per inference = the median segment / N; the spread of the segments / N is its
  uncertainty;
- NOT a board's speed: emulated wall time is hundreds of times a Pi's and says nothing about it. Latency on a
  board is either measured there (toolkit.profiling.ssh) or `predicted` (toolkit.profiling.predict).

This x86-64 host is counted the same way, so that the prediction method can be held against a measurement of
the same thing (count_host_instructions): the host's own Python and onnxruntime run under `qemu-x86_64 -cpu max`
(TCG's fullest x86 model: AVX2 and FMA, but no AVX-512, so MLAS takes its AVX2 kernels there) with the same
plugin, which classifies x86 instructions from their disassembly, in the same segments. QEMU's x86 "max" model
is the same on AMD and Intel hosts (TCG's vendor and features, not the host's), so the counts do not depend on
which x86-64 machine counts them.

The rootfs (Debian bookworm arm64 + a venv with the wheels) and the plugins are built once and cached in
MELTOOLKIT_CACHE (default /var/cache/meltoolkit) by arm_rootfs.sh and qemu_plugins.sh; commands run in it through
arm_enter.sh (mount namespace + chroot). All of it needs root and `make ci-deps`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.evidence import EMULATED
from toolkit.files import write_json_atomic
from toolkit.profiling import runner
from toolkit.records import ProfileFile
from toolkit.targets import Target
from toolkit.terminal import progress

HERE = Path(__file__).resolve().parent
ROOTFS_SCRIPT = HERE / "arm_rootfs.sh"
PLUGINS_SCRIPT = HERE / "qemu_plugins.sh"
ENTER_SCRIPT = HERE / "arm_enter.sh"
TOOLS = ("qemu-aarch64", "qemu-aarch64-static", "unshare", "chroot", "debootstrap", "gcc")

# Paths inside the rootfs. arm_enter.sh mounts the host's x86-64 libraries and the plugin-capable (dynamically
# linked) qemu-aarch64 there; it is started through its loader because its PT_INTERP (/lib64/...) cannot exist
# in an arm64 rootfs.
GUEST_PYTHON = "/opt/venv/bin/python"
GUEST_QEMU = ("/opt/meltoolkit/x86-64/ld-linux-x86-64.so.2", "--library-path", "/opt/meltoolkit/x86-64",
              "/opt/meltoolkit/qemu-aarch64")
GUEST_PLUGINS = "/opt/meltoolkit/plugins"
GUEST_BUNDLE = "/opt/meltoolkit/bundle"
GUEST_OUT = "/opt/meltoolkit/out"

PLUGIN = "libinsnclass.so"
# the classes plugins/insnclass.c prints for aarch64 guests, in its order
CLASSES = ("simd_vector", "simd_scalar", "fp_scalar", "load_store_simd", "load_store", "integer", "branch", "sve",
           "other")
HOST_QEMU = "qemu-x86_64"
HOST_QEMU_CPU = "max"
SEGMENTS = 3
COUNT_REPEAT = 10
COUNT_WARMUP = 10
COUNT_SETTINGS = ("the toolkit's insnclass TCG plugin, one counter set per guest thread summed at each mark, "
                  "PYTHONHASHSEED=0; after imports, session creation and " f"{COUNT_WARMUP} warm-up inferences, "
                  "{segments} segments of {repeat} inferences between the runner's marks, less an empty "
                  "segment (the marks' own cost); per inference = the median segment / {repeat}, uncertainty = "
                  "(largest - smallest segment) / {repeat}")
GUEST_METHOD = "QEMU user-mode qemu-aarch64 -cpu {cpu}, instructions classed from their A64 encoding; " + COUNT_SETTINGS
HOST_METHOD = ("QEMU user-mode qemu-x86_64 -cpu max (AVX2 + FMA, no AVX-512), instructions classed from their "
               "disassembly; " + COUNT_SETTINGS)
LOST_MARKS_LINE = re.compile(r"^lost marks: (\d+)$", re.M)
COUNTS_LINE = re.compile(r"^(segment|process): (.*)$", re.M)


def cache_dir() -> Path:
    """Where the rootfs, the wheels and the plugins are kept between runs (outside the repository)."""
    return Path(os.environ.get("MELTOOLKIT_CACHE", "/var/cache/meltoolkit"))


def require_host() -> None:
    """Root and the Debian tools emulation needs, or one line saying how to get them."""
    if os.geteuid() != 0:
        raise ToolkitError("emulating ARM boards needs root (mount namespaces, chroot, binfmt_misc); run as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ToolkitError(f"emulating ARM boards needs {', '.join(missing)}: run 'make ci-deps'")


def emulation_missing(rootfs: Path | None = None) -> str | None:
    """Why a board cannot be emulated here without building anything, or None when it can."""
    try:
        require_host()
    except ToolkitError as error:
        return str(error)
    stamp = (rootfs or cache_dir() / "arm64-rootfs") / ".meltoolkit-stamp"
    return None if stamp.is_file() else f"no cached arm64 rootfs at {stamp.parent}: run 'make arm-rootfs'"


def _run_script(script: Path, *args: str) -> None:
    """A build script with its progress on our stderr; its failure becomes one line."""
    env = {**os.environ, "PIP": f"{sys.executable} -m pip"}
    done = subprocess.run([str(script), *args], env=env, stdout=sys.stderr, check=False)
    if done.returncode != 0:
        raise ToolkitError(f"{script.name} failed (exit {done.returncode}); its messages are above, and "
                           f"'make ci-deps' installs what it needs")


def ensure_rootfs(path: Path | None = None) -> Path:
    """The cached arm64 rootfs, built first when it is missing or stale (about 5 minutes)."""
    require_host()
    rootfs = path or cache_dir() / "arm64-rootfs"
    _run_script(ROOTFS_SCRIPT, str(rootfs))
    return rootfs


def ensure_plugins(path: Path | None = None) -> Path:
    """The folder holding libinsnclass.so for the installed qemu-user, built when missing."""
    require_host()
    plugins = path or cache_dir() / "qemu-plugins"
    _run_script(PLUGINS_SCRIPT, str(plugins))
    return plugins


@dataclass(frozen=True)
class Guest:
    """One emulated board: the rootfs, QEMU's model of its core, and the /proc/cpuinfo it shows."""

    rootfs: Path
    qemu_cpu: str
    cpuinfo: str

    @classmethod
    def for_target(cls, target: Target, rootfs: Path | None = None) -> Guest:
        """The guest a board target describes; refuses targets that cannot be emulated."""
        if target.emulation is None:
            raise ToolkitError(f"target {target.name!r} has no [emulation] table: only boards can be emulated")
        return cls(rootfs or ensure_rootfs(), target.emulation.qemu_cpu, target.emulation.cpuinfo)


def guest_command(guest: Guest, cpuinfo_file: Path, argv: Sequence[str], binds: Mapping[Path, str],
                  qemu_args: Sequence[str] = ()) -> list[str]:
    """The host command that runs `argv` (a guest program and its arguments) under qemu-aarch64 in the rootfs."""
    mounts = [f"{host}:{inside}" for host, inside in binds.items()]
    return [str(ENTER_SCRIPT), str(guest.rootfs), str(cpuinfo_file), *mounts, "--",
            *GUEST_QEMU, "-cpu", guest.qemu_cpu, *qemu_args, *argv]


def guest_env(guest: Guest) -> dict[str, str]:
    """Environment for guest programs: any program they start (through binfmt_misc, qemu-aarch64-static) gets
    the same CPU model; a fixed hash seed keeps Python's executed instructions the same from run to run."""
    return {"QEMU_CPU": guest.qemu_cpu, "PYTHONHASHSEED": "0"}


def run_in_guest(guest: Guest, argv: Sequence[str], binds: Mapping[Path, str] | None = None, *,
                 qemu_args: Sequence[str] = (), timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run one guest program; stdout is captured, stderr (progress) passes through; a failure raises."""
    with tempfile.TemporaryDirectory(prefix="meltoolkit-guest-") as scratch:
        cpuinfo_file = Path(scratch) / "cpuinfo"
        cpuinfo_file.write_text(guest.cpuinfo, encoding="utf-8")
        command = guest_command(guest, cpuinfo_file, argv, binds or {}, qemu_args)
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False,
                              env={**os.environ, **guest_env(guest)})
    if done.returncode != 0:
        raise ToolkitError(f"{' '.join(argv[:2])} failed under qemu-aarch64 -cpu {guest.qemu_cpu} "
                           f"(exit {done.returncode}); its messages are above")
    return done


def run_bundle(guest: Guest, bundle_dir: Path, result: Path, *, quick: bool = False,
               only: Sequence[str] = (), timeout: float | None = None) -> dict[str, Any]:
    """The runner over a bundle, under emulation; RESULT.json (+ outputs npz) land at `result`, parsed back.

    Latencies in it are emulated wall time, meaningless for a board; its outputs are the aarch64 builds' own.
    """
    result.parent.mkdir(parents=True, exist_ok=True)
    argv = [GUEST_PYTHON, f"{GUEST_BUNDLE}/runner.py", GUEST_BUNDLE, "--out", f"{GUEST_OUT}/{result.name}"]
    argv += ["--quick"] * quick + [arg for name in only for arg in ("--only", name)]
    binds = {bundle_dir.resolve(): GUEST_BUNDLE, result.parent.resolve(): GUEST_OUT}
    run_in_guest(guest, argv, binds, timeout=timeout)
    return json.loads(result.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class InstructionCounts:
    """Executed instructions per inference, total and by class (the total is their sum), with the spread of the
    segments they were counted in (`uncertainty`, per inference) and the raw segment counts."""

    variant: str
    workload: str
    qemu_cpu: str
    repeat: int
    total: float
    by_class: dict[str, float]
    uncertainty: dict[str, float]
    raw: dict[str, Any] = field(default_factory=dict)
    method: str = GUEST_METHOD.format(cpu="<the target's core>", segments=SEGMENTS, repeat=COUNT_REPEAT)
    segments: int = 1
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record a result file keeps; `evidence` says what kind of number it is."""
        return {"evidence": EMULATED, **self.__dict__}


def guest_method(qemu_cpu: str, segments: int = SEGMENTS, repeat: int = COUNT_REPEAT) -> str:
    """How count_instructions counts on this CPU model, for the records that carry its counts."""
    return GUEST_METHOD.format(cpu=qemu_cpu, segments=segments, repeat=repeat)


def _parse_counts(fields: str) -> dict[str, int]:
    """'total=N name=N ...' -> {'total': N, 'name': N, ...}."""
    return {key: int(value) for key, value in (item.split("=", 1) for item in fields.split())}


def _runner_block(text: str) -> str:
    """The exit summary of the process that made the marks. Each process writes one at its exit, and a child that
    the engine forks (OpenVINO does, while loading) exits with a copy of the counters as they were at the fork:
    its summary holds no marks when it was forked before counting began, and is left out. Two summaries with
    marks would mean a fork after counting began: refused."""
    blocks = [block for block in re.split(r"(?m)^(?=marks: )", text) if block.startswith("marks: ")]
    marked = [block for block in blocks if int(block.split(maxsplit=2)[1]) > 0]
    if len(marked) > 1:
        raise ToolkitError(f"{len(marked)} guest processes carried the runner's count marks (a child forked after "
                           "counting began): their counts cannot be told apart; not counted")
    return marked[0] if marked else (blocks[-1] if blocks else text)


def parse_plugin_log(text: str) -> tuple[list[dict[str, int]], dict[str, int]]:
    """(the counts of each segment between the runner's marks, less the first, empty one: the marks' own cost;
    the whole process's counts) from one insnclass log; a log without the exit summary or without the runner's
    marks is refused in one line."""
    text = _runner_block(text)
    process = [_parse_counts(fields) for kind, fields in COUNTS_LINE.findall(text) if kind == "process"]
    if len(process) != 1:
        raise ToolkitError(f"the insnclass plugin's log has {len(process)} 'process:' lines, expected 1: the guest "
                           "did not exit normally")
    lost = sum(int(n) for n in LOST_MARKS_LINE.findall(text))
    if lost:
        raise ToolkitError(f"the insnclass plugin dropped {lost} of the runner's count marks (it keeps 64): count "
                           "fewer segments")
    segments = [_parse_counts(fields) for kind, fields in COUNTS_LINE.findall(text) if kind == "segment"]
    if len(segments) < 2:
        raise ToolkitError(f"the insnclass plugin saw {len(segments) + 1 if segments else 'fewer than 2'} of the "
                           "runner's count marks, expected an empty segment and one per counted segment: the "
                           "bundle's runner.py predates them; rebuild the bundle")
    marks = segments[0]
    return [{key: value - marks[key] for key, value in counts.items()} for counts in segments[1:]], process[0]


def per_inference(variant: str, workload: str, qemu_cpu: str, repeat: int, log: str,
                  method: str) -> InstructionCounts:
    """The counts of one inference from a plugin log of segments of `repeat` inferences: the median segment
    (all its classes together, so the total stays their sum) / repeat, and the segments' spread / repeat."""
    segments, process = parse_plugin_log(log)
    median = sorted(segments, key=lambda counts: counts["total"])[(len(segments) - 1) // 2]
    by_class = {key: value / repeat for key, value in median.items() if key != "total"}
    spread = {key: (max(s[key] for s in segments) - min(s[key] for s in segments)) / repeat for key in median}
    return InstructionCounts(variant=variant, workload=workload, qemu_cpu=qemu_cpu, repeat=repeat,
                             total=median["total"] / repeat, by_class=by_class, uncertainty=spread,
                             raw={"segments": segments, "process": process}, method=method,
                             segments=len(segments))


def _count_only_argv(runner: str, bundle: str, variant: str, workload: str, repeat: int, segments: int,
                     config: int) -> list[str]:
    """The runner's arguments for one counted run."""
    if repeat < 1 or segments < 1:
        raise ToolkitError(f"counting needs at least 1 inference in at least 1 segment, got {segments} x {repeat}")
    return [runner, bundle, "--count-only", variant, "--workload", workload, "--repeat", str(repeat),
            "--segments", str(segments), "--warmup", str(COUNT_WARMUP), "--config", str(config)]


def count_instructions(guest: Guest, bundle_dir: Path, variant: str, workload: str, *,
                       repeat: int = COUNT_REPEAT, segments: int = SEGMENTS, config: int = 0,
                       plugins: Path | None = None, timeout: float | None = None) -> InstructionCounts:
    """Instructions one inference of `variant` on `workload` executes on the guest CPU, by class: one runner
    --count-only run under the insnclass plugin. `config` indexes the runner's configurations of the variant
    (the first one of a target's matrix has one thread, the configuration predictions assume)."""
    argv = [GUEST_PYTHON, *_count_only_argv(f"{GUEST_BUNDLE}/runner.py", GUEST_BUNDLE, variant, workload, repeat,
                                            segments, config)]
    plugins = plugins or ensure_plugins()
    progress(f"emulate: counting {variant} on {workload}, {segments} x {repeat} under -cpu {guest.qemu_cpu}")
    with tempfile.TemporaryDirectory(prefix="meltoolkit-count-") as scratch:
        qemu_args = ["-plugin", f"{GUEST_PLUGINS}/{PLUGIN}", "-d", "plugin", "-D", f"{GUEST_OUT}/plugins.log"]
        binds = {bundle_dir.resolve(): GUEST_BUNDLE, Path(scratch): GUEST_OUT, plugins.resolve(): GUEST_PLUGINS}
        run_in_guest(guest, argv, binds, qemu_args=qemu_args, timeout=timeout)
        log = (Path(scratch) / "plugins.log").read_text(encoding="utf-8")
    return per_inference(variant, workload, guest.qemu_cpu, repeat, log, guest_method(guest.qemu_cpu, segments, repeat))


def host_counting_missing() -> str | None:
    """Why this machine's own instructions cannot be counted here, or None when they can."""
    if platform.machine() != "x86_64":
        return f"counting the host's instructions needs an x86-64 host, this one is {platform.machine()}"
    if shutil.which(HOST_QEMU) is None:
        return f"{HOST_QEMU} is missing (Debian qemu-user): run 'make ci-deps'"
    return None


def host_method(segments: int = SEGMENTS, repeat: int = COUNT_REPEAT) -> str:
    """How count_host_instructions counts, for the records that carry its counts."""
    return HOST_METHOD.format(segments=segments, repeat=repeat)


def count_host_instructions(bundle_dir: Path, variant: str, workload: str, *, repeat: int = COUNT_REPEAT,
                            segments: int = SEGMENTS, config: int = 0, plugins: Path | None = None,
                            timeout: float | None = None) -> InstructionCounts:
    """Instructions one inference of `variant` on `workload` executes on this x86-64 host, by class: this Python
    runs the bundle's runner under qemu-x86_64 with the insnclass plugin, in segments between its marks."""
    argv = _count_only_argv(str(bundle_dir / "runner.py"), str(bundle_dir), variant, workload, repeat, segments,
                            config)
    missing = host_counting_missing()
    if missing:
        raise ToolkitError(missing)
    plugins = plugins or ensure_plugins()
    progress(f"emulate: counting {variant} on {workload}, {segments} x {repeat} on this host under {HOST_QEMU} "
             f"-cpu {HOST_QEMU_CPU}")
    with tempfile.TemporaryDirectory(prefix="meltoolkit-count-") as scratch:
        log = Path(scratch) / "plugins.log"
        command = [HOST_QEMU, "-cpu", HOST_QEMU_CPU, "-plugin", str(plugins / PLUGIN), "-d", "plugin",
                   "-D", str(log), sys.executable, *argv]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, timeout=timeout, check=False,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        if done.returncode != 0 or not log.is_file():
            raise ToolkitError(f"counting {variant} on {workload} under {HOST_QEMU} failed (exit "
                               f"{done.returncode}); its messages are above")
        text = log.read_text(encoding="utf-8")
    return per_inference(variant, workload, f"x86-64 {HOST_QEMU_CPU}", repeat, text, host_method(segments, repeat))


def ok_configs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The configurations (runner.CONFIG_FIELDS) of a runner result's ok runs, as the runner wrote them."""
    return [{k: r.get(k) for k in runner.CONFIG_FIELDS} for r in document.get("runs", []) if r["status"] == "ok"]


def counted_configs(bundle: dict[str, Any], variant: dict[str, Any],
                    ran: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The configurations a variant's instructions are counted in: the first of each engine setting among those
    that `ran` (the configurations of the ok runs where the runs were made: an engine that machine lacks is not
    counted)."""
    return runner.counted_configs(bundle, variant,
                                  lambda config: {k: config.get(k) for k in runner.CONFIG_FIELDS} in ran)


def profile_emulated(target: Target, bundle_dir: Path, result: Path, *, quick: bool = True,
                     repeat: int = COUNT_REPEAT,
                     rootfs: Path | None = None, workloads: Sequence[str] = ()) -> dict[str, Any]:
    """Every variant of the bundle on the target's emulated CPU: the runner's RESULT.json (outputs for the
    accuracy gate; its latencies are emulated wall time) plus `instructions`, per variant and workload (these
    `workloads` only, when given), labelled emulated-instructions. Written to `result` atomically."""
    guest = Guest.for_target(target, rootfs)
    record = run_bundle(guest, bundle_dir, result, quick=quick)
    bundle = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
    record["emulation"] = {"qemu_cpu": guest.qemu_cpu, "rootfs": str(guest.rootfs),
                           "latency_note": "emulated wall time: not a board's latency"}
    record["instructions"] = [
        replace(count_instructions(guest, bundle_dir, variant["name"], workload["name"], repeat=repeat,
                                   config=index), config=config).to_json()
        for variant in bundle["variants"] for index, config in counted_configs(bundle, variant, ok_configs(record))
        for workload in bundle["workloads"] if not workloads or workload["name"] in workloads
    ]
    write_json_atomic(result, ProfileFile.from_json(record).to_json())  # the runner's format: inf stays inf
    return record
