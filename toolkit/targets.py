"""Deployment targets: one TOML file per target in targets/, data not code, checked against SCHEMA on load.

Every key a target file may hold (any other key is an error naming the key and its line):

    name          str   the file's stem: targets/rpi4.toml has name = "rpi4"
    description   str   one line for reports
    kind          str   "host" (the machine running the toolkit; "detect" values allowed) or "board"
                        (measured over SSH or under emulation; needs [emulation] and [core]; "detect" not
                        allowed)

    [cpu]
    model         str        CPU / SoC as a person names it, e.g. "Broadcom BCM2711 (4x Cortex-A72)"
    core          str        core type, e.g. "Cortex-A72"
    cores         int        cores the toolkit may use
    clock_ghz     float      maximum sustained clock of one core
    isa_flags     list[str]  ISA flags exactly as /proc/cpuinfo spells them ("Features" on ARM, "flags" on x86;
                             on a detected host only the SIMD ones: sse*, ssse3, avx*, fma, f16c, amx*)
    l1d_kib       int        L1 data cache per core
    l2_kib        int        L2 cache (per core or per cluster, as the source states)
    l3_kib        int        L3 cache, 0 when there is none
    memory_bandwidth_gbs  float, optional   sustained DRAM bandwidth in GB/s
    fp32_flops_per_cycle_per_core  float    peak FP32 FLOPs per cycle of one core, an FMA counting 2
    sources       table      fact (a key of [cpu]) -> where it comes from; detected facts get their source added

    [core]        required for kind = "board", not allowed for kind = "host": the core's pipe rates, sustained
                  instructions per cycle, that toolkit.profiling.predict bounds a prediction with (each > 0)
    issue         float  instructions issued (dispatched, allocated) per cycle
    simd_vector   float  vector SIMD instructions per cycle (AdvSIMD Q-form; x86 packed at the width counted)
    fp_scalar     float  scalar FP and AdvSIMD-scalar instructions per cycle
    load_store    float  loads and stores per cycle, counted together
    integer       float  integer data-processing instructions per cycle (ALUs)
    branch        float  branches per cycle
    source        str    where each rate comes from: the core's optimization guide and what in it

    [[host_core]] kind = "host" only, optional, any number: the pipe rates of a detected host core, the first
                  entry matching /proc/cpuinfo wins (a host matching none gets no predictions: one line says why
                  and the profile goes on)
    name          str        the core, e.g. "Intel Golden Cove (Sapphire Rapids)"
    vendor_id     str        /proc/cpuinfo "vendor_id" to match, e.g. "GenuineIntel"
    cpu_family    int        /proc/cpuinfo "cpu family" to match
    models        list[int], optional   /proc/cpuinfo "model" values to match (non-empty); absent: any model
    flags         list[str], optional   /proc/cpuinfo flags that must all be present (non-empty)
    issue, simd_vector, fp_scalar, load_store, integer, branch, source   as in [core]

    [emulation]   required for kind = "board", not allowed for kind = "host"
    qemu_cpu      str   the `qemu-aarch64 -cpu` model matching the core, e.g. "cortex-a72"
    cpuinfo       str   the board's /proc/cpuinfo text, bind-mounted over the emulated rootfs's

    [matrix]      what the runner measures with onnxruntime
    providers           list[str]  execution providers, preference order; ones this onnxruntime build lacks
                                   are measured as "unavailable" with the reason, so list what the board could have
    intra_op_threads    list[int]  each >= 1
    graph_optimization  list[str]  each one of "disable", "basic", "extended", "all"
    allow_spinning      list[bool], optional (default [true], onnxruntime's own default): whether intra-op
                                   workers busy-wait between runs; measured for thread counts > 1 only

    [litert]
    threads       list[int]  interpreter num_threads values, each >= 1
    xnnpack       bool       true: default delegates (XNNPACK); false: builtin kernels only

    [openvino]    optional: what the runner measures with OpenVINO (each form whose package is missing where the
                  runner runs is measured as "unavailable" with the reason)
    engines       list[str]  "native" (the openvino runtime: Core().compile_model(graph, "CPU")) and/or "plugin"
                             (onnxruntime with Intel's OpenVINO plugin EP, onnxruntime-ep-openvino; x86-64 only)
    threads       list[int]  INFERENCE_NUM_THREADS values, each >= 1
    precision     list[str]  INFERENCE_PRECISION_HINT values, each one of "f32", "bf16", "f16": every setting is
                             gated on its own outputs like a variant, so only a setting that passes can be chosen

    [policy]      what the chosen variant must meet
    max_abs_db_error    float  max |dB error| against the original over the signal set
    p99_abs_db_error    float  99th percentile of |dB error|
    max_rel_mel_error   float  max relative error of the mel energies before the log
    realtime_budget     float  in (0, 1]: median latency / the audio one inference covers: the 80 ms streaming
                        step of the 1760-sample chunk, or the whole window of a graph that pads every input to
                        a fixed length (Whisper's 30 s; toolkit/profiling/workload.py)
    max_model_bytes     int, optional   model file size limit
    max_stream_cpu_share  float, optional, in (0, 1] (default 0.25): a configuration whose measured CPU share
                        of one core while streaming 1760-sample chunks at 12.5 per second exceeds this is never
                        chosen (a 2-thread spinning pool can burn ~45 % of a core between chunks); where the
                        share cannot be measured (emulation) the choice says so and takes 1 thread, no spinning

    [peak]
    method        str   one line saying how the peak was estimated, for the report

Peak multiplications per second: cores x clock_ghz x 1e9 x fp32_flops_per_cycle_per_core / 2, since one FMA is
2 FLOPs and one multiplication: every lane of every core multiplying every cycle, an upper bound.

"detect" (kind = "host" only) is allowed for model, core, cores, clock_ghz, isa_flags, l1d_kib, l2_kib, l3_kib
and fp32_flops_per_cycle_per_core, filled at load from /proc/cpuinfo, os.cpu_count() and
/sys/devices/system/cpu/cpu0/cache; FP32 FLOPs follow FLOP_RULES below.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.files import named_file, names_in

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"
DETECT = "detect"
OPT_LEVELS = ("disable", "basic", "extended", "all")
OPENVINO_ENGINES = ("native", "plugin")
OPENVINO_PRECISIONS = ("f32", "bf16", "f16")
KINDS = ("host", "board")
CHUNK_MS = 80.0
DEFAULT_MAX_STREAM_CPU_SHARE = 0.25


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Kind:
    """A value type: what the error message calls it, and the test."""

    description: str
    check: Callable[[Any], bool]


STR = Kind("a string", lambda v: isinstance(v, str))
INT = Kind("an integer", _is_int)
NUMBER = Kind("a number", _is_number)
BOOL = Kind("true or false", lambda v: isinstance(v, bool))
STR_LIST = Kind("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
BOOL_LIST = Kind("a list of true/false", lambda v: isinstance(v, list) and all(isinstance(x, bool) for x in v))
INT_LIST = Kind("a list of integers", lambda v: isinstance(v, list) and all(_is_int(x) for x in v))
STR_TABLE = Kind("a table of strings", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))


@dataclass(frozen=True)
class Key:
    """One allowed key: its type, whether it must be present, whether a host may write "detect"."""

    kind: Kind
    required: bool = True
    detect: bool = False


RATES = ("issue", "simd_vector", "fp_scalar", "load_store", "integer", "branch")
CORE_KEYS = {**{rate: Key(NUMBER) for rate in RATES}, "source": Key(STR)}

SCHEMA: dict[str, dict[str, Key]] = {
    "": {"name": Key(STR), "description": Key(STR), "kind": Key(STR)},
    "cpu": {
        "model": Key(STR, detect=True),
        "core": Key(STR, detect=True),
        "cores": Key(INT, detect=True),
        "clock_ghz": Key(NUMBER, detect=True),
        "isa_flags": Key(STR_LIST, detect=True),
        "l1d_kib": Key(INT, detect=True),
        "l2_kib": Key(INT, detect=True),
        "l3_kib": Key(INT, detect=True),
        "memory_bandwidth_gbs": Key(NUMBER, required=False),
        "fp32_flops_per_cycle_per_core": Key(NUMBER, detect=True),
        "sources": Key(STR_TABLE),
    },
    "emulation": {"qemu_cpu": Key(STR), "cpuinfo": Key(STR)},
    "matrix": {
        "providers": Key(STR_LIST),
        "intra_op_threads": Key(INT_LIST),
        "graph_optimization": Key(STR_LIST),
        "allow_spinning": Key(BOOL_LIST, required=False),
    },
    "litert": {"threads": Key(INT_LIST), "xnnpack": Key(BOOL)},
    "openvino": {"engines": Key(STR_LIST), "threads": Key(INT_LIST), "precision": Key(STR_LIST)},
    "policy": {
        "max_abs_db_error": Key(NUMBER),
        "p99_abs_db_error": Key(NUMBER),
        "max_rel_mel_error": Key(NUMBER),
        "realtime_budget": Key(NUMBER),
        "max_model_bytes": Key(INT, required=False),
        "max_stream_cpu_share": Key(NUMBER, required=False),
    },
    "peak": {"method": Key(STR)},
    "core": CORE_KEYS,
    "host_core": {
        "name": Key(STR),
        "vendor_id": Key(STR),
        "cpu_family": Key(INT),
        "models": Key(INT_LIST, required=False),
        "flags": Key(STR_LIST, required=False),
        **CORE_KEYS,
    },
}
ARRAYS = ("host_core",)  # tables written [[name]]: a list of tables, each checked against SCHEMA[name]
# table -> the kinds that need it; any other kind may not have it
SECTION_NEEDED = {"cpu": KINDS, "matrix": KINDS, "litert": KINDS, "policy": KINDS, "peak": KINDS,
                  "emulation": ("board",), "core": ("board",)}
# table -> the kinds that may have it without needing it
SECTION_OPTIONAL = {"host_core": ("host",), "openvino": KINDS}

# (section, key, test of a present value, what it must be); checked after the types.
VALUE_RULES: list[tuple[str, str, Callable[[Any], bool], str]] = [
    ("", "kind", lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
    ("cpu", "cores", lambda v: v >= 1, "at least 1"),
    ("cpu", "clock_ghz", lambda v: v > 0, "positive"),
    ("cpu", "fp32_flops_per_cycle_per_core", lambda v: v > 0, "positive"),
    ("matrix", "providers", lambda v: len(v) > 0, "a non-empty list"),
    ("matrix", "intra_op_threads", lambda v: len(v) > 0 and min(v) >= 1, "a non-empty list of integers >= 1"),
    ("matrix", "graph_optimization", lambda v: len(v) > 0 and set(v) <= set(OPT_LEVELS),
     f"a non-empty list of {', '.join(OPT_LEVELS)}"),
    ("matrix", "allow_spinning", lambda v: len(v) > 0, "a non-empty list"),
    ("litert", "threads", lambda v: len(v) > 0 and min(v) >= 1, "a non-empty list of integers >= 1"),
    ("openvino", "engines", lambda v: len(v) > 0 and set(v) <= set(OPENVINO_ENGINES),
     f"a non-empty list of {', '.join(OPENVINO_ENGINES)}"),
    ("openvino", "threads", lambda v: len(v) > 0 and min(v) >= 1, "a non-empty list of integers >= 1"),
    ("openvino", "precision", lambda v: len(v) > 0 and set(v) <= set(OPENVINO_PRECISIONS),
     f"a non-empty list of {', '.join(OPENVINO_PRECISIONS)}"),
    ("policy", "max_abs_db_error", lambda v: v > 0, "positive"),
    ("policy", "p99_abs_db_error", lambda v: v > 0, "positive"),
    ("policy", "max_rel_mel_error", lambda v: v > 0, "positive"),
    ("policy", "realtime_budget", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("policy", "max_model_bytes", lambda v: v > 0, "positive"),
    ("policy", "max_stream_cpu_share", lambda v: 0 < v <= 1, "in (0, 1]"),
    *((section, rate, lambda v: v > 0, "positive") for section in ("core", "host_core") for rate in RATES),
    ("host_core", "models", lambda v: len(v) > 0, "a non-empty list (leave it out to match any model)"),
    ("host_core", "flags", lambda v: len(v) > 0, "a non-empty list (leave it out to require no flag)"),
]

# x86 FP32 peak by SIMD width and FMA pipes, first match wins: (test on cpuinfo, FLOPs/cycle/core, source).
FLOP_RULES: list[tuple[Callable[[dict[str, str], set[str]], bool], int, str]] = [
    (
        lambda info, flags: "avx512f" in flags and info.get("vendor_id") == "AuthenticAMD"
        and info.get("cpu family") == "25",
        32,
        "AMD family 19h (Zen 4) runs AVX-512 on two 256-bit FMA pipes: 8 lanes x 2 pipes x 2 FLOPs "
        "(AMD Software Optimization Guide for Family 19h, pub. 57647)",
    ),
    (
        lambda info, flags: "avx512f" in flags,
        64,
        "AVX-512: 16 fp32 lanes x 2 FMA ports x 2 FLOPs (Intel 64 and IA-32 Architectures Optimization "
        "Reference Manual, Skylake server core)",
    ),
    (
        lambda info, flags: {"avx2", "fma"} <= flags,
        32,
        "AVX2 + FMA: 8 fp32 lanes x 2 FMA ports x 2 FLOPs (Intel optimization manual, Haswell and later)",
    ),
    (
        lambda info, flags: "sse" in flags,
        8,
        "SSE: 4 fp32 lanes x (1 multiply + 1 add port), i.e. 4 multiplications per cycle",
    ),
]
SIMD_FLAG = re.compile(r"^(sse|ssse3|avx|fma|f16c|amx)")


@dataclass(frozen=True)
class Cpu:
    """The [cpu] table with every "detect" resolved."""

    model: str
    core: str
    cores: int
    clock_ghz: float
    isa_flags: tuple[str, ...]
    l1d_kib: int
    l2_kib: int
    l3_kib: int
    fp32_flops_per_cycle_per_core: float
    sources: dict[str, str]
    memory_bandwidth_gbs: float | None = None


@dataclass(frozen=True)
class Emulation:
    """How a board is emulated with qemu-aarch64."""

    qemu_cpu: str
    cpuinfo: str


@dataclass(frozen=True)
class Matrix:
    """The onnxruntime configurations to measure."""

    providers: tuple[str, ...]
    intra_op_threads: tuple[int, ...]
    graph_optimization: tuple[str, ...]
    allow_spinning: tuple[bool, ...] = (True,)


@dataclass(frozen=True)
class LiteRt:
    """The LiteRT configurations to measure."""

    threads: tuple[int, ...]
    xnnpack: bool


@dataclass(frozen=True)
class OpenVino:
    """The OpenVINO configurations to measure: which engine forms, thread counts and precisions."""

    engines: tuple[str, ...]
    threads: tuple[int, ...]
    precision: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """What the chosen variant must meet on this target."""

    max_abs_db_error: float
    p99_abs_db_error: float
    max_rel_mel_error: float
    realtime_budget: float
    max_model_bytes: int | None = None
    max_stream_cpu_share: float = DEFAULT_MAX_STREAM_CPU_SHARE

    def budget_ms(self, audio_ms: float) -> float:
        """The median latency limit of one inference that covers `audio_ms` of audio."""
        return self.realtime_budget * audio_ms


@dataclass(frozen=True)
class CoreRates:
    """Sustained instructions per cycle of one core, per pipe group ([core] or a [[host_core]] entry), with
    where each number comes from; `name` is the core they describe."""

    name: str
    issue: float
    simd_vector: float
    fp_scalar: float
    load_store: float
    integer: float
    branch: float
    source: str


@dataclass(frozen=True)
class HostCore:
    """One [[host_core]] entry: which /proc/cpuinfo it describes and that core's rates."""

    vendor_id: str
    cpu_family: int
    models: tuple[int, ...]
    flags: tuple[str, ...]
    rates: CoreRates

    def matches(self, info: dict[str, str]) -> bool:
        """Same vendor and family, a listed model (any when none is listed), every listed flag present."""
        return (info.get("vendor_id") == self.vendor_id and info.get("cpu family") == str(self.cpu_family)
                and (not self.models or info.get("model") in {str(m) for m in self.models})
                and set(self.flags) <= set(info.get("flags", "").split()))


@dataclass(frozen=True)
class Target:
    """A validated target file; `detected` names the [cpu] keys filled from this machine; a board has `core`,
    a host may have `host_cores` to match against its /proc/cpuinfo."""

    name: str
    description: str
    kind: str
    path: Path
    cpu: Cpu
    matrix: Matrix
    litert: LiteRt
    policy: Policy
    peak_method: str
    emulation: Emulation | None = None
    detected: tuple[str, ...] = field(default=())
    core: CoreRates | None = None
    host_cores: tuple[HostCore, ...] = ()
    openvino: OpenVino | None = None

    def peak_mults_per_s(self, threads: int | None = None) -> float:
        """cores (or min(threads, cores)) x clock x FLOPs per cycle / 2: one FMA = 2 FLOPs = 1 multiplication."""
        cores = self.cpu.cores if threads is None else min(threads, self.cpu.cores)
        return cores * self.cpu.clock_ghz * 1e9 * self.cpu.fp32_flops_per_cycle_per_core / 2


# ---------------------------------------------------------------- finding lines

HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _line_of(text: str, section: str, key: str | None = None, entry: int = 0) -> int:
    """1-based line of `key` in table `section` (in its `entry`-th [[section]] for an array of tables) or of the
    table header, 1 when it cannot be found."""
    current, seen = "", {"": 0}
    for number, line in enumerate(text.splitlines(), 1):
        match = HEADER.match(line)
        if match:
            current = match.group(1).replace('"', "").replace(" ", "")
            seen[current] = seen.get(current, -1) + 1
            if key is None and current == section and seen[current] == entry:
                return number
            continue
        if (key is not None and current == section and seen[current] == entry
                and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line)):
            return number
    parent, _, child = section.rpartition(".")
    if key is not None and parent:
        return _line_of(text, parent, child)
    return 1


def _where(path: Path, text: str, section: str, key: str | None = None, entry: int | None = None) -> str:
    """'path:line' for an error message."""
    return f"{path}:{_line_of(text, section, key, entry or 0)}"


def _header(section: str) -> str:
    """How a table is written: [cpu], or [[host_core]] for an array of tables."""
    return f"[[{section}]]" if section in ARRAYS else f"[{section}]"


def _label(section: str, key: str, entry: int | None = None) -> str:
    """How the messages name a key: [cpu] cores, [[host_core]] #2 issue, or name at top level."""
    if not section:
        return key
    return f"{_header(section)} #{entry + 1} {key}" if entry is not None else f"[{section}] {key}"


# ---------------------------------------------------------------- validation

Table = tuple[str, int | None, dict[str, Any]]  # section, entry of an array of tables (else None), its keys


def _present(data: dict[str, Any]) -> list[str]:
    """The known tables the file has, in SCHEMA order."""
    return [section for section in SCHEMA if section and section in data]


def _tables(data: dict[str, Any]) -> list[Table]:
    """The top level, every known table and every entry of an array of tables, in SCHEMA order."""
    found: list[Table] = [("", None, {k: v for k, v in data.items() if k not in SCHEMA})]
    for section in _present(data):
        if section in ARRAYS:
            found += [(section, entry, values) for entry, values in enumerate(data[section])]
        else:
            found.append((section, None, data[section]))
    return found


def _check_shapes(data: dict[str, Any], path: Path, text: str) -> None:
    """Unknown tables; each known table written as one table, each array of tables as [[name]] entries."""
    for section in data.keys() - SCHEMA.keys() - {""}:
        if isinstance(data[section], dict):
            raise ToolkitError(f"{_where(path, text, section)}: unknown table [{section}]; "
                               f"known tables: {', '.join(sorted(s for s in SCHEMA if s))}")
    for section in _present(data):
        value = data[section]
        fits = (isinstance(value, list) and all(isinstance(v, dict) for v in value) if section in ARRAYS
                else isinstance(value, dict))
        if not fits:
            where = _where(path, text, section) if isinstance(value, dict | list) else _where(path, text, "", section)
            raise ToolkitError(f"{where}: {section} must be written as {_header(section)} "
                               f"({'an array of tables' if section in ARRAYS else 'a table'})")


def _check_types(data: dict[str, Any], path: Path, text: str, kind: str) -> None:
    """Unknown tables and keys, missing keys, wrong types, "detect" where it is not allowed."""
    _check_shapes(data, path, text)
    for section, entry, values in _tables(data):
        schema = SCHEMA[section]
        for key, value in values.items():
            if key not in schema:
                raise ToolkitError(f"{_where(path, text, section, key, entry)}: unknown key "
                                   f"{_label(section, key, entry)!r}; known keys there: {', '.join(schema)}")
            spec = schema[key]
            if value == DETECT and spec.detect and kind == "host":
                continue
            if not spec.kind.check(value):
                detect = ' or "detect" (kind = "host" only)' if spec.detect else ""
                raise ToolkitError(f"{_where(path, text, section, key, entry)}: {_label(section, key, entry)} "
                                   f"must be {spec.kind.description}{detect}, got {value!r}")
        for key, spec in schema.items():
            if spec.required and key not in values:
                where = _where(path, text, section, entry=entry) if section else str(path)
                raise ToolkitError(f"{where}: missing key {_label(section, key, entry)}; add it (keys are "
                                   "described in toolkit/targets.py)")


def _check_sections(data: dict[str, Any], path: Path, text: str, kind: str) -> None:
    """Tables each kind needs, may have, or may not have."""
    for section in {**SECTION_NEEDED, **SECTION_OPTIONAL}:
        needed = SECTION_NEEDED.get(section, ())
        allowed = needed + SECTION_OPTIONAL.get(section, ())
        if kind in needed and section not in data:
            raise ToolkitError(f"{path}: missing table [{section}] (needed when kind = {kind!r})")
        if kind not in allowed and section in data:
            raise ToolkitError(f"{_where(path, text, section)}: table {_header(section)} is only for kind = "
                               f"{' or '.join(repr(k) for k in allowed)}; remove it")


def _check_values(data: dict[str, Any], path: Path, text: str) -> None:
    """Ranges and enumerations, after the types are known to be right."""
    for section, entry, values in _tables(data):
        for rule_section, key, test, expected in VALUE_RULES:
            value = values.get(key)
            if rule_section != section or value is None or value == DETECT:
                continue
            if not test(value):
                raise ToolkitError(f"{_where(path, text, section, key, entry)}: {_label(section, key, entry)} "
                                   f"must be {expected}, got {value!r}")
    if data["name"] != path.stem:
        raise ToolkitError(f"{_where(path, text, '', 'name')}: name {data['name']!r} must equal the file name "
                           f"{path.stem!r}")


# ---------------------------------------------------------------- detection


def cpuinfo() -> dict[str, str]:
    """First processor's fields of /proc/cpuinfo, plus the highest 'cpu MHz' over all processors."""
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    info: dict[str, str] = {}
    mhz = [float(v) for k, v in re.findall(r"^(cpu MHz)\s*:\s*([\d.]+)", text, re.M)]
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    if mhz:
        info["max cpu MHz"] = str(max(mhz))
    return info


def _cache_kib(level: int, kinds: tuple[str, ...]) -> tuple[int, str]:
    """Size of cpu0's cache at `level` from sysfs, 0 when it has none."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        if int((index / "level").read_text()) == level and (index / "type").read_text().strip() in kinds:
            size = (index / "size").read_text().strip()
            scale = {"K": 1, "M": 1024}[size[-1]]
            return int(size[:-1]) * scale, f"detected: {index}/size = {size}"
    return 0, f"detected: no level-{level} cache under {base}"


def _clock_ghz(info: dict[str, str]) -> tuple[float, str]:
    """cpufreq's maximum when the kernel exposes it, else the highest 'cpu MHz' in /proc/cpuinfo."""
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if cpufreq.is_file():
        return int(cpufreq.read_text()) / 1e6, f"detected: {cpufreq}"
    if "max cpu MHz" not in info:
        raise ToolkitError('cannot detect clock_ghz: no cpufreq and no "cpu MHz" in /proc/cpuinfo; write it')
    return float(info["max cpu MHz"]) / 1000, "detected: highest 'cpu MHz' in /proc/cpuinfo (nominal clock)"


def _flops(info: dict[str, str], flags: set[str]) -> tuple[float, str]:
    """FP32 FLOPs per cycle per core from FLOP_RULES."""
    for test, flops, source in FLOP_RULES:
        if test(info, flags):
            return float(flops), f"detected rule: {source}"
    raise ToolkitError("cannot detect fp32_flops_per_cycle_per_core on a CPU without x86 SSE flags; write it")


def _model(info: dict[str, str]) -> tuple[str, str]:
    """CPU model name from /proc/cpuinfo."""
    for key in ("model name", "Model", "Hardware"):
        if info.get(key):
            return info[key], f"detected: /proc/cpuinfo {key!r}"
    raise ToolkitError("cannot detect the CPU model from /proc/cpuinfo; write it")


def detect_host() -> dict[str, tuple[Any, str]]:
    """Every detectable [cpu] fact of this machine with its source."""
    info = cpuinfo()
    all_flags = (info.get("flags") or info.get("Features") or "").split()
    simd = [f for f in all_flags if SIMD_FLAG.match(f)] if "flags" in info else all_flags
    model = _model(info)
    return {
        "model": model,
        "core": model,
        "cores": (os.cpu_count() or 1, "detected: os.cpu_count()"),
        "clock_ghz": _clock_ghz(info),
        "isa_flags": (simd, "detected: /proc/cpuinfo flags, SIMD ones only"),
        "l1d_kib": _cache_kib(1, ("Data", "Unified")),
        "l2_kib": _cache_kib(2, ("Unified",)),
        "l3_kib": _cache_kib(3, ("Unified",)),
        "fp32_flops_per_cycle_per_core": _flops(info, set(all_flags)),
    }


def _resolve_cpu(cpu: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The [cpu] table with "detect" values replaced and their sources added."""
    wanted = [k for k, v in cpu.items() if v == DETECT]
    if not wanted:
        return cpu, ()
    found = detect_host()
    sources = dict(cpu["sources"])
    resolved = dict(cpu)
    for key in wanted:
        resolved[key], sources[key] = found[key]
    resolved["sources"] = sources
    return resolved, tuple(wanted)


# ---------------------------------------------------------------- loading


def known_targets() -> list[str]:
    """Target names, one per targets/*.toml."""
    return names_in(TARGETS_DIR)


def _host_core(entry: dict[str, Any]) -> HostCore:
    """A validated [[host_core]] entry as its match rule and its rates."""
    rates = CoreRates(**{k: entry[k] for k in ("name", *RATES, "source")})
    return HostCore(vendor_id=entry["vendor_id"], cpu_family=entry["cpu_family"],
                    models=tuple(entry.get("models", ())), flags=tuple(entry.get("flags", ())), rates=rates)


def load_target(name_or_path: str | os.PathLike[str]) -> Target:
    """Load, validate and (on a host) detect a target; every problem is one line naming the key and line."""
    path = named_file("target", name_or_path, TARGETS_DIR)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ToolkitError(f"{path}: not valid TOML: {error}") from None
    kind: str = data.get("kind", "")
    _check_types(data, path, text, kind if kind in KINDS else "board")
    _check_values(data, path, text)
    _check_sections(data, path, text, kind)
    cpu, detected = _resolve_cpu(data["cpu"])
    cpu["isa_flags"] = tuple(cpu["isa_flags"])
    emulation = data.get("emulation")
    return Target(
        name=data["name"],
        description=data["description"],
        kind=kind,
        path=path,
        cpu=Cpu(**cpu),
        matrix=Matrix(**{k: tuple(v) for k, v in data["matrix"].items()}),
        litert=LiteRt(threads=tuple(data["litert"]["threads"]), xnnpack=data["litert"]["xnnpack"]),
        policy=Policy(**data["policy"]),
        peak_method=data["peak"]["method"],
        emulation=Emulation(**emulation) if emulation else None,
        detected=detected,
        core=CoreRates(name=cpu["core"], **data["core"]) if "core" in data else None,
        host_cores=tuple(_host_core(entry) for entry in data.get("host_core", [])),
        openvino=OpenVino(**{k: tuple(v) for k, v in data["openvino"].items()}) if "openvino" in data else None,
    )
