"""Predicted latency on a board that was not measured: always labelled `predicted`, never shown as measured.

Method (a throughput bound, i.e. the time if every pipe of one core were busy every cycle, with no stalls,
no cache misses and no branch mispredictions):

    inputs   executed aarch64 instructions per inference by class, counted under emulation with the target's
             core model (toolkit.profiling.emulate, one thread); the target's clock and core type; optionally
             the exact analytic multiplication count of the same inference (toolkit.analysis).
    cycles   the largest of
               issue:      all instructions / the core's issue (dispatch) width
               fp pipes:   AdvSIMD vector / vector rate + (AdvSIMD scalar + scalar FP) / scalar FP rate
               load/store: all loads and stores (integer and FP/SIMD) / load-store rate
               integer:    integer data processing / integer ALU rate
               branch:     branches / branch rate
             where each rate is instructions per cycle from the core's Software Optimization Guide (CORES).
    mults    when the analytic count is given: mults / (clock x fp32 FLOPs per cycle per core / 2), the one-core
             peak of the target file (one FMA = 2 FLOPs = 1 multiplication).
    latency  max(cycles / clock, mults bound); the bound that wins is reported as `bound`.

Each class charges the pipe groups in CHARGES; x86 instructions with a memory operand (*_mem classes of
plugins/x86class.c) charge their compute pipe and the load/store pipe, as their micro-ops do.

Real code stalls on dependencies and memory, so the measured latency is expected above the prediction; where a
measurement of the same variant exists (this x86-64 host, counted under qemu-x86_64; or a board result imported
or measured over SSH), `prediction_error` reports measured / predicted, the factor by which this bound was
optimistic there.
The core rates live here, keyed by core name (boards) or matched from /proc/cpuinfo (HOST_CORES, for a host
target whose core is detected), because the target file schema has no table for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.profiling.emulate import InstructionCounts
from toolkit.targets import Target, cpuinfo

LABEL = "predicted"


@dataclass(frozen=True)
class CoreRates:
    """Sustained instructions per cycle of one core, per pipe group, with where each number comes from."""

    issue: float
    simd_vector: float
    fp_scalar: float
    load_store: float
    integer: float
    branch: float
    source: str


CORES: dict[str, CoreRates] = {
    "Cortex-A72": CoreRates(
        issue=3, simd_vector=1, fp_scalar=2, load_store=2, integer=2, branch=1,
        source="Arm Cortex-A72 Software Optimization Guide (UAN 0016A): 3-wide decode/dispatch; two integer ALU "
               "pipes, one branch pipe, one load and one store pipe; two 64-bit FP/ASIMD pipes F0/F1, so a "
               "128-bit (Q-form) AdvSIMD instruction takes both: 1 per cycle, scalar FP 2 per cycle",
    ),
    "Cortex-A76": CoreRates(
        issue=4, simd_vector=2, fp_scalar=2, load_store=2, integer=3, branch=1,
        source="Arm Cortex-A76 Software Optimization Guide: 4-wide decode; three integer ALU pipes, one branch "
               "pipe, two load/store pipes; two 128-bit FP/ASIMD pipes V0/V1, Q-form FMLA 2 per cycle",
    ),
    "Cortex-A53": CoreRates(
        issue=2, simd_vector=1, fp_scalar=1, load_store=1, integer=2, branch=1,
        source="Arm Cortex-A53 TRM: in-order, dual issue; one load/store pipe; one NEON/FP issue per cycle "
               "(ncnn's A53 scheduling notes: one fmla v.4s per cycle); two integer ALUs, one branch unit",
    ),
}


@dataclass(frozen=True)
class Prediction:
    """One variant's predicted single-thread latency on a board, with every bound that went into it."""

    target: str
    variant: str
    workload: str
    latency_ms: float
    bound: str
    bounds_ms: dict[str, float]
    clock_ghz: float
    core: str
    label: str = LABEL
    method: str = "throughput bound: max over pipe groups of instructions / rate, and analytic mults / peak"

    def to_json(self) -> dict[str, Any]:
        """The record a report keeps; `label` and `evidence` say it is a prediction."""
        return {"evidence": LABEL, **self.__dict__}


# x86-64 hosts by /proc/cpuinfo, first match wins: (test, core name, rates)
HOST_CORES: list[tuple[Callable[[dict[str, str]], bool], str, CoreRates]] = [
    (
        lambda info: info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "25",
        "AMD Zen 3 / Zen 4 (family 19h)",
        CoreRates(
            issue=6, simd_vector=2, fp_scalar=2, load_store=3, integer=4, branch=2,
            source="AMD Software Optimization Guide for AMD Family 19h Processors (pub. 56665, Zen 3; pub. 57647, "
                   "Zen 4): 6 macro-ops dispatched per cycle; four integer ALUs, two of them taking branches; "
                   "three memory operations per cycle (at most two stores); two 256-bit FMA/multiply pipes "
                   "(FP0, FP1) beside two FP add pipes: 2 vector FMAs per cycle (AVX-512 ops take both halves "
                   "of a pipe pair on Zen 4, so counting the AVX2 path at 2 per cycle bounds the same work)",
        ),
    ),
]


def core_rates(target: Target) -> CoreRates:
    """The pipe rates of the target's core, or one line naming the cores that have them."""
    if target.kind == "host" and target.cpu.core not in CORES:
        info = cpuinfo()
        rates = next((rates for test, _, rates in HOST_CORES if test(info)), None)
        if rates is None:
            raise ToolkitError(f"no pipe rates for this host's CPU ({info.get('vendor_id')}, family "
                               f"{info.get('cpu family')}); known: {', '.join(n for _, n, _ in HOST_CORES)} (add "
                               "one to HOST_CORES in toolkit/profiling/predict.py)")
        return rates
    if target.cpu.core not in CORES:
        raise ToolkitError(f"no pipe rates for core {target.cpu.core!r} of target {target.name!r}; known cores: "
                           f"{', '.join(CORES)} (add one to CORES in toolkit/profiling/predict.py)")
    return CORES[target.cpu.core]


# instruction class -> the CoreRates pipes it occupies (simd_vector and fp_scalar share the FP pipes)
CHARGES: dict[str, tuple[str, ...]] = {
    "simd_vector": ("simd_vector",),
    "simd_vector_mem": ("simd_vector", "load_store"),
    "simd_scalar": ("fp_scalar",),
    "fp_scalar": ("fp_scalar",),
    "fp_scalar_mem": ("fp_scalar", "load_store"),
    "load_store_simd": ("load_store",),
    "load_store": ("load_store",),
    "integer": ("integer",),
    "integer_mem": ("integer", "load_store"),
    "branch": ("branch",),
}


def pipe_cycles(by_class: dict[str, float], rates: CoreRates) -> dict[str, float]:
    """Cycles per inference each pipe group needs at its full rate; `issue` bounds them all together."""
    busy = dict.fromkeys(("simd_vector", "fp_scalar", "load_store", "integer", "branch"), 0.0)
    for name, count in by_class.items():
        for pipe in CHARGES.get(name, ()):
            busy[pipe] += count / getattr(rates, pipe)
    return {
        "issue": sum(by_class.values()) / rates.issue,
        "fp_pipes": busy["simd_vector"] + busy["fp_scalar"],
        "load_store": busy["load_store"],
        "integer": busy["integer"],
        "branch": busy["branch"],
    }


def predict_latency(counts: InstructionCounts, target: Target, analytic_mults: int | None = None) -> Prediction:
    """Single-thread latency of one inference on the target's core; see the module docstring for the method."""
    if counts.by_class.get("sve", 0.0) > 0:
        raise ToolkitError(f"{counts.variant} executed SVE instructions under -cpu {counts.qemu_cpu}: no Pi has "
                           "SVE, so these counts do not describe a Pi; check the target's [emulation] qemu_cpu")
    cycles_per_ms = target.cpu.clock_ghz * 1e6
    bounds = {name: cycles / cycles_per_ms for name, cycles in pipe_cycles(counts.by_class, core_rates(target)).items()}
    if analytic_mults is not None:
        bounds["peak_mults"] = analytic_mults / target.peak_mults_per_s(threads=1) * 1e3
    bound = max(bounds, key=bounds.__getitem__)
    return Prediction(target=target.name, variant=counts.variant, workload=counts.workload,
                      latency_ms=bounds[bound], bound=bound, bounds_ms=bounds, clock_ghz=target.cpu.clock_ghz,
                      core=target.cpu.core)


def prediction_error(prediction: Prediction, measured_ms: float, measured_on: str) -> dict[str, Any]:
    """How far the bound was from a measurement of the same variant and workload: measured / predicted."""
    if measured_ms <= 0:
        raise ToolkitError(f"a measured latency must be positive, got {measured_ms} ms from {measured_on}")
    return {
        "variant": prediction.variant,
        "workload": prediction.workload,
        "predicted_ms": prediction.latency_ms,
        "measured_ms": measured_ms,
        "measured_on": measured_on,
        "measured_over_predicted": measured_ms / prediction.latency_ms,
    }
