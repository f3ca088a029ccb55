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
             where each rate is instructions per cycle from the core's Software Optimization Guide.
    mults    when the analytic count is given: mults / (clock x fp32 FLOPs per cycle per core / 2), the one-core
             peak of the target file (one FMA = 2 FLOPs = 1 multiplication).
    latency  max(cycles / clock, mults bound); the bound that wins is reported as `bound`.

Each class charges the pipe groups in CHARGES; x86 instructions with a memory operand (*_mem classes of
plugins/x86class.c) charge their compute pipe and the load/store pipe, as their micro-ops do.

Real code stalls on dependencies and memory, so the measured latency is expected above the prediction; where a
measurement of the same variant exists (this x86-64 host, counted under qemu-x86_64; or a board result imported
or measured over SSH), `prediction_error` reports measured / predicted, the factor by which this bound was
optimistic there.
The rates are target data, each with its source: a board's [core] table, or for a host whose core is detected
the first [[host_core]] entry of its target file matching /proc/cpuinfo (toolkit/targets.py describes both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.evidence import PREDICTED
from toolkit.profiling.emulate import InstructionCounts
from toolkit.targets import CoreRates, Target, cpuinfo


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
    label: str = PREDICTED
    method: str = "throughput bound: max over pipe groups of instructions / rate, and analytic mults / peak"

    def to_json(self) -> dict[str, Any]:
        """The record a report keeps; `label` and `evidence` say it is a prediction."""
        return {"evidence": PREDICTED, **self.__dict__}


def host_core(target: Target, info: dict[str, str]) -> CoreRates:
    """The rates of the target's first [[host_core]] entry matching this /proc/cpuinfo (a dict as
    toolkit.targets.cpuinfo returns it), or one line naming the CPU and the file to add an entry to."""
    found = next((entry.rates for entry in target.host_cores if entry.matches(info)), None)
    if found is None:
        known = ", ".join(entry.rates.name for entry in target.host_cores) or "none"
        raise ToolkitError(f"no pipe rates for this host's CPU ({info.get('vendor_id')}, cpu family "
                           f"{info.get('cpu family')}, model {info.get('model')}: {info.get('model name')}); "
                           f"known cores: {known}; add a [[host_core]] entry for it to {target.path}")
    return found


def core_rates(target: Target) -> CoreRates:
    """The pipe rates of the target's core: a board's [core], or the host's matching [[host_core]] entry."""
    return target.core if target.core is not None else host_core(target, cpuinfo())


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
    rates = core_rates(target)
    bounds = {name: cycles / cycles_per_ms for name, cycles in pipe_cycles(counts.by_class, rates).items()}
    if analytic_mults is not None:
        bounds["peak_mults"] = analytic_mults / target.peak_mults_per_s(threads=1) * 1e3
    bound = max(bounds, key=bounds.__getitem__)
    return Prediction(target=target.name, variant=counts.variant, workload=counts.workload,
                      latency_ms=bounds[bound], bound=bound, bounds_ms=bounds, clock_ghz=target.cpu.clock_ghz,
                      core=rates.name)


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
