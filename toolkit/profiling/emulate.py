"""ARM boards emulated here: the real aarch64 onnxruntime and LiteRT wheels run under QEMU user-mode emulation.

What this gives, and what it does not:
- the same runner and bundle as on a board, on the same aarch64 builds of numpy, onnxruntime and LiteRT, with the
  target's CPU model (`qemu-aarch64 -cpu cortex-a72`: QEMU's default CPU advertises SVE/SME, which would send
  onnxruntime down code paths no Pi has) and the board's /proc/cpuinfo (onnxruntime's cpuinfo library crashes
  on the host's x86 text). Outputs are exact aarch64 results, so the accuracy gate applies unchanged;
- executed guest instructions per inference, in total (QEMU's insn plugin) and by class (its howvec plugin,
  with the FP/SIMD class split into AdvSIMD vector / AdvSIMD scalar / scalar FP, see plugins/), counted as
  count(N inferences) - count(0 inferences), divided by N: imports, session creation and the runner's one
  warm-up inference cancel out;
- NOT a board's speed: emulated wall time is hundreds of times a Pi's and says nothing about it. Latency on a
  board is either measured there (toolkit.profiling.ssh) or `predicted` (toolkit.profiling.predict).

This x86-64 host is counted the same way, so that the prediction method can be held against a measurement of
the same thing (count_host_instructions): the host's own Python and onnxruntime run under `qemu-x86_64 -cpu max`
(TCG's fullest x86 model: AVX2 and FMA, but no AVX-512, so MLAS takes its AVX2 kernels there) with
plugins/x86class.c, which classifies x86 instructions from their disassembly (howvec has no x86 class table) and
counts only between the two marks the runner's --count-only loop makes, so one run per variant suffices.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.files import write_json_atomic
from toolkit.targets import Target

HERE = Path(__file__).resolve().parent
ROOTFS_SCRIPT = HERE / "arm_rootfs.sh"
PLUGINS_SCRIPT = HERE / "qemu_plugins.sh"
ENTER_SCRIPT = HERE / "arm_enter.sh"
TOOLS = ("qemu-aarch64", "qemu-aarch64-static", "unshare", "chroot", "debootstrap", "gcc", "patch")

# Paths inside the rootfs. arm_enter.sh mounts the host's x86-64 libraries and the plugin-capable (dynamically
# linked) qemu-aarch64 there; it is started through its loader because its PT_INTERP (/lib64/...) cannot exist
# in an arm64 rootfs.
GUEST_PYTHON = "/opt/venv/bin/python"
GUEST_QEMU = ("/opt/meltoolkit/x86-64/ld-linux-x86-64.so.2", "--library-path", "/opt/meltoolkit/x86-64",
              "/opt/meltoolkit/qemu-aarch64")
GUEST_PLUGINS = "/opt/meltoolkit/plugins"
GUEST_BUNDLE = "/opt/meltoolkit/bundle"
GUEST_OUT = "/opt/meltoolkit/out"

# howvec class name (as the patched plugin prints it) -> the class the predictor uses; unlisted names are "other".
HOWVEC_CLASSES: dict[str, str] = {
    "AdvSIMD vector": "simd_vector",
    "AdvSIMD scalar": "simd_scalar",
    "Scalar FP": "fp_scalar",
    "AdvSimd ldstmult": "load_store_simd",
    "AdvSimd ldstmult++": "load_store_simd",
    "AdvSimd ldst": "load_store_simd",
    "AdvSimd ldst++": "load_store_simd",
    "FP/SIMD ldst": "load_store_simd",
    "ldst excl": "load_store",
    "Prefetch": "load_store",
    "Load Reg (lit)": "load_store",
    "ldst noalloc pair": "load_store",
    "ldst pair": "load_store",
    "ldst reg": "load_store",
    "Atomic ldst": "load_store",
    "ldst reg (reg off)": "load_store",
    "ldst reg (pac)": "load_store",
    "ldst reg (imm)": "load_store",
    "Loads & Stores": "load_store",
    "PCrel addr": "integer",
    "Add/Sub (imm,tags)": "integer",
    "Add/Sub (imm)": "integer",
    "Logical (imm)": "integer",
    "Move Wide (imm)": "integer",
    "Bitfield": "integer",
    "Extract": "integer",
    "Data Proc Imm": "integer",
    "Data Proc Reg": "integer",
    "Cond Branch (imm)": "branch",
    "Branch (reg)": "branch",
    "Branch (imm)": "branch",
    "Cmp & Branch": "branch",
    "Tst & Branch": "branch",
    "Branches": "branch",
    "SVE": "sve",
}
# x86class.c prints the predictor's class names itself; *_mem classes also read or write memory
X86_CLASSES: dict[str, str] = {name: name for name in (
    "simd_vector", "simd_vector_mem", "fp_scalar", "fp_scalar_mem", "load_store_simd", "load_store", "integer",
    "integer_mem", "branch")}
HOST_QEMU = "qemu-x86_64"
HOST_QEMU_CPU = "max"
HOST_PLUGIN = "libx86class.so"
HOST_METHOD = ("QEMU user-mode qemu-x86_64 -cpu max (AVX2 + FMA, no AVX-512) with the x86class TCG plugin: x86 "
               "instructions classed from their disassembly, inline counters, one thread, PYTHONHASHSEED=0; "
               "counted between the runner's two marks around N inferences, divided by N (one run)")
WINDOW_LINE = re.compile(r"^window: (yes|no)$", re.M)
CLASSES = ("simd_vector", "simd_scalar", "fp_scalar", "load_store_simd", "load_store", "integer", "branch", "sve",
           "other")
HOWVEC_LINE = re.compile(r"^Class:\s+(.+?)\s+\((\d+) hits\)$", re.M)
INSN_LINE = re.compile(r"^insns: (\d+)$", re.M)


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
    """The folder holding libinsn.so and libhowvec.so for the installed qemu-user, built when missing."""
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
    """Executed aarch64 instructions per inference, total and by class, with their run-to-run uncertainty.

    per inference = (count with N inferences - mean of two counts with 0) / N; uncertainty = |difference of the
    two 0-inference counts| / N: what the emulated process does besides inferring (imports, session creation,
    glibc and onnxruntime waiting on the clock) varies by a few million instructions from run to run.
    """

    variant: str
    workload: str
    qemu_cpu: str
    repeat: int
    total: float
    by_class: dict[str, float]
    uncertainty: dict[str, float]
    raw: dict[str, dict[str, int]] = field(default_factory=dict)
    method: str = ("QEMU TCG plugins insn (total) and howvec (classes, FP/SIMD split), inline counters, one "
                   "thread, PYTHONHASHSEED=0; (count with N inferences - mean of two counts with 0) / N")

    def to_json(self) -> dict[str, Any]:
        """The record a result file keeps; `evidence` says what kind of number it is."""
        return {"evidence": "emulated-instructions", **self.__dict__}


def parse_plugin_log(text: str, classes: Mapping[str, str] = HOWVEC_CLASSES) -> dict[str, int]:
    """{'total': insn's count, '<predictor class>': class hits summed} from one QEMU plugin log; `classes` maps
    the plugin's class names to the predictor's (howvec's by default, X86_CLASSES for x86class)."""
    totals = INSN_LINE.findall(text)
    if len(totals) != 1:
        raise ToolkitError(f"the insn plugin's log has {len(totals)} 'insns:' lines, expected 1: the guest did "
                           "not exit normally")
    names = CLASSES if classes is HOWVEC_CLASSES else (*dict.fromkeys(classes.values()), "other")
    counts = dict.fromkeys(names, 0) | {"total": int(totals[0])}
    for name, hits in HOWVEC_LINE.findall(text):
        bucket = classes.get(name.strip(), "other")
        counts[bucket] += int(hits)
    return counts


def _count_once(guest: Guest, plugins: Path, bundle_dir: Path, variant: str, workload: str, repeat: int,
                config: int, timeout: float | None) -> dict[str, int]:
    """One runner --count-only run under both plugins; returns its parsed counts."""
    with tempfile.TemporaryDirectory(prefix="meltoolkit-count-") as scratch:
        qemu_args = ["-plugin", f"{GUEST_PLUGINS}/libinsn.so,inline=on",
                     "-plugin", f"{GUEST_PLUGINS}/libhowvec.so,inline=on",
                     "-d", "plugin", "-D", f"{GUEST_OUT}/plugins.log"]
        argv = [GUEST_PYTHON, f"{GUEST_BUNDLE}/runner.py", GUEST_BUNDLE, "--count-only", variant,
                "--workload", workload, "--repeat", str(repeat), "--config", str(config)]
        binds = {bundle_dir.resolve(): GUEST_BUNDLE, Path(scratch): GUEST_OUT, plugins.resolve(): GUEST_PLUGINS}
        run_in_guest(guest, argv, binds, qemu_args=qemu_args, timeout=timeout)
        return parse_plugin_log((Path(scratch) / "plugins.log").read_text(encoding="utf-8"))


def count_instructions(guest: Guest, bundle_dir: Path, variant: str, workload: str, *, repeat: int = 50,
                       config: int = 0, plugins: Path | None = None,
                       timeout: float | None = None) -> InstructionCounts:
    """Instructions one inference of `variant` on `workload` executes on the guest CPU, by class.

    `config` indexes the runner's configurations of the variant; the first one of a target's matrix has one
    thread, which keeps the plugins' inline (non-atomic) counters exact.
    """
    if repeat < 1:
        raise ToolkitError(f"repeat must be at least 1 to count an inference, got {repeat}")
    plugins = plugins or ensure_plugins()
    runs = []
    for n in (repeat, 0, 0):
        print(f"emulate: counting {variant} on {workload} x{n} under -cpu {guest.qemu_cpu}", file=sys.stderr)
        runs.append(_count_once(guest, plugins, bundle_dir, variant, workload, n, config, timeout))
    counted, base_a, base_b = runs
    per_inference = {key: (counted[key] - (base_a[key] + base_b[key]) / 2) / repeat for key in counted}
    return InstructionCounts(
        variant=variant, workload=workload, qemu_cpu=guest.qemu_cpu, repeat=repeat,
        total=per_inference.pop("total"), by_class=per_inference,
        uncertainty={key: abs(base_a[key] - base_b[key]) / repeat for key in counted},
        raw={f"repeat_{repeat}": counted, "repeat_0": base_a, "repeat_0_again": base_b},
    )


def host_counting_missing() -> str | None:
    """Why this machine's own instructions cannot be counted here, or None when they can."""
    if platform.machine() != "x86_64":
        return f"counting the host's instructions needs an x86-64 host, this one is {platform.machine()}"
    if shutil.which(HOST_QEMU) is None:
        return f"{HOST_QEMU} is missing (Debian qemu-user): run 'make ci-deps'"
    return None


def count_host_instructions(bundle_dir: Path, variant: str, workload: str, *, repeat: int = 20, config: int = 0,
                            plugins: Path | None = None, timeout: float | None = None) -> InstructionCounts:
    """Instructions one inference of `variant` on `workload` executes on this x86-64 host, by class: this Python
    runs the bundle's runner under qemu-x86_64 with the x86class plugin, counted between the runner's marks."""
    if repeat < 1:
        raise ToolkitError(f"repeat must be at least 1 to count an inference, got {repeat}")
    missing = host_counting_missing()
    if missing:
        raise ToolkitError(missing)
    plugins = plugins or ensure_plugins()
    print(f"emulate: counting {variant} on {workload} x{repeat} on this host under {HOST_QEMU} -cpu {HOST_QEMU_CPU}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="meltoolkit-count-") as scratch:
        log = Path(scratch) / "plugins.log"
        command = [HOST_QEMU, "-cpu", HOST_QEMU_CPU, "-plugin", str(plugins / HOST_PLUGIN), "-d", "plugin",
                   "-D", str(log), sys.executable, str(bundle_dir / "runner.py"), str(bundle_dir), "--count-only",
                   variant, "--workload", workload, "--repeat", str(repeat), "--config", str(config)]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, timeout=timeout, check=False,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        if done.returncode != 0 or not log.is_file():
            raise ToolkitError(f"counting {variant} on {workload} under {HOST_QEMU} failed (exit "
                               f"{done.returncode}); its messages are above")
        text = log.read_text(encoding="utf-8")
    if WINDOW_LINE.findall(text) != ["yes"]:
        raise ToolkitError(f"the x86class plugin did not see the runner's count marks for {variant}: the bundle's "
                           "runner.py predates them; rebuild the bundle")
    counts = parse_plugin_log(text, X86_CLASSES)
    total = counts.pop("total")
    return InstructionCounts(
        variant=variant, workload=workload, qemu_cpu=f"x86-64 {HOST_QEMU_CPU}", repeat=repeat, total=total / repeat,
        by_class={key: value / repeat for key, value in counts.items()}, uncertainty={},
        raw={f"repeat_{repeat}": {"total": total, **counts}}, method=HOST_METHOD,
    )


def profile_emulated(target: Target, bundle_dir: Path, result: Path, *, quick: bool = True, repeat: int = 50,
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
        count_instructions(guest, bundle_dir, variant["name"], workload["name"], repeat=repeat).to_json()
        for variant in bundle["variants"] for workload in bundle["workloads"]
        if not workloads or workload["name"] in workloads
    ]
    write_json_atomic(result, record)
    return record
