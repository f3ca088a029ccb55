"""Measured against analytic: what the runs achieved, where their time went, and where fewer mults was not faster.

For every run of the profile:
- achieved multiplications per second = the variant's exact analytic mults at that workload (dense: the graph as
  written; effective: minus products by constant 0 and 1) / the median latency. The ratio to the target's peak
  (cores used x clock x FP32 FLOPs per cycle / 2) says how far the kernels are from every SIMD lane multiplying
  every cycle; that peak is the target file's estimate, not a measurement.
- per node: its share of the run's kernel time (onnxruntime's profile) against its share of the mults. onnxruntime
  names kernels after model nodes; a kernel whose op differs from its model node's is a fusion: it is reported
  with the model nodes absorbed next to it, a node computed from constants only is reported as folded (done
  once at session creation), a kernel with no model node of its name as created by onnxruntime. No node is
  dropped silently.
- rank contradictions: among the variants measured in the same configuration on the same workload, a pair whose
  analytic order (fewer mults) and measured order (lower median) disagree, with both numbers; `clear` when even
  the slower one's fastest run is slower than the other's median.
Variants without counts (TFLite) have none of these numbers: they say `not counted`; partial counts are lower
bounds and stay out of the ranking. Runs timed under emulation have none of them either (`not_timed` says why):
emulation wall time is not a board latency, and per-node shares of it are shares of QEMU's work.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from toolkit.evidence import EMULATED_TIME, ESTIMATED
from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS
from toolkit.records import (
    Achieved,
    ComparedRun,
    Comparison,
    Contradiction,
    ContradictionSummary,
    CountsFile,
    ProfileFile,
    RunRecord,
    VariantCounts,
    measured,
)
from toolkit.records.counts import CONVENTIONS
from toolkit.targets import Target

IDENTITY = ("key", "variant", "format", *CONFIG_FIELDS, "workload", "status")  # a compared run's, from its run


def config_of(row: ComparedRun) -> tuple[Any, ...]:
    """The runner's configuration fields of a compared run (engine, provider, threads, ..., precision), in order."""
    return tuple(row.config().values())


def peak_record(target: Target) -> Json:
    """The target's peak mults/s per thread count, with how it was estimated."""
    threads = sorted({*target.matrix.intra_op_threads, *target.litert.threads})
    return {
        "mults_per_s": {str(t): target.peak_mults_per_s(threads=t) for t in threads},
        "method": target.peak_method,
        "evidence": ESTIMATED,
        "cpu": {"model": target.cpu.model, "cores": target.cpu.cores, "clock_ghz": target.cpu.clock_ghz,
                "fp32_flops_per_cycle_per_core": target.cpu.fp32_flops_per_cycle_per_core},
        "sources": {k: target.cpu.sources.get(k, "target file")
                    for k in ("clock_ghz", "fp32_flops_per_cycle_per_core")},
    }


def achieved(mults: dict[str, int], median_ms: float, peak: float) -> dict[str, Achieved]:
    """Achieved mults/s in each convention of a run with this median, and their ratio to the peak."""
    rates = {c: mults[c] / (median_ms / 1e3) for c in CONVENTIONS}
    return {c: Achieved(mults=mults[c], mults_per_s=rates[c], of_peak=rates[c] / peak) for c in CONVENTIONS}


def run_row(run: RunRecord, counts: VariantCounts, target: Target) -> ComparedRun:
    """One run: its configuration, median latency, and achieved numbers (or why there are none)."""
    identity = {name: getattr(run, name) for name in IDENTITY}
    if not run.ok:
        return ComparedRun(**identity, reason=run.reason or "")
    stats = measured(run)
    timed = ComparedRun(**identity, median_ms=stats.median, p90_ms=stats.p90, min_ms=stats.min)
    workload = counts.at(run.workload)
    if workload is None:
        return replace(timed, counts="not counted", note=counts.note)
    peak = target.peak_mults_per_s(threads=int(run.threads))
    rates = achieved(workload.mults(), stats.median, peak)
    return replace(timed, counts=counts.status, note=counts.note, peak_mults_per_s=peak, dense=rates["dense"],
                   effective=rates["effective"])


# ---------------------------------------------------------------- per node


def _components(names: set[str], nodes: dict[str, Json]) -> list[list[str]]:
    """Connected groups of `names`: two nodes join when one reads a tensor the other writes."""
    producer = {out: n for n in names for out in nodes[n]["outputs"]}
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in names:
        for tensor in nodes[n]["inputs"]:
            if tensor in producer:
                parent[root(n)] = root(producer[tensor])
    groups: dict[str, list[str]] = {}
    order = list(nodes)
    for n in sorted(names, key=order.index):
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _share(part: float | None, whole: float) -> float | None:
    """part / whole, None when either is unknown or the whole is zero."""
    return None if part is None or not whole else part / whole


def _mul(names: list[str], nodes: dict[str, Json], convention: str) -> int | None:
    """Mults of a group of model nodes; None (not counted, never zero) when any of them has no count."""
    values = [nodes[n]["mul"][convention] for n in names]
    return None if any(v is None for v in values) else sum(values)


def _row(kind: str, names: list[str], kernels: list[Json], nodes: dict[str, Json], totals: Json) -> Json:
    """One line of the per-node table: the model nodes, the kernels that ran them, time and mult shares."""
    time_us = sum(k["total_us"] for k in kernels) if kernels else None
    mul = {c: _mul(names, nodes, c) for c in CONVENTIONS} if names else None
    return {
        "kind": kind,
        "nodes": names,
        "op_types": [nodes[n]["op_type"] for n in names],
        "kernels": [{"name": k["name"], "op_type": k["op_type"]} for k in kernels],
        "time_us": time_us,
        "time_share": _share(time_us, totals["time_us"]),
        "mul": mul,
        "mul_share": None if mul is None else {c: _share(mul[c], totals[c]) for c in CONVENTIONS},
    }


def node_shares(model_nodes: list[Json], kernels: list[Json]) -> list[Json]:
    """Per-node time share against mult share; fused, folded, absorbed and created nodes each reported as such.

    kinds: kernel (ran as itself), fused (a kernel of another op under the node's name + model nodes absorbed
    next to it), absorbed (no kernel of its own and no fused kernel beside it: its time is in a neighbour),
    folded (every node with constant inputs only, in one row: computed at session creation), created (a kernel
    with no model node).
    """
    nodes = {n["name"]: n for n in model_nodes}
    by_kernel = {k["name"]: k for k in kernels}
    totals = {"time_us": sum(k["total_us"] for k in kernels),  # mult shares are of the counted nodes' mults
              **{c: sum(n["mul"][c] or 0 for n in model_nodes) for c in CONVENTIONS}}
    same = [n for n in nodes if n in by_kernel and by_kernel[n]["op_type"] == nodes[n]["op_type"]]
    changed = {n for n in nodes if n in by_kernel and n not in same}
    missing = {n for n in nodes if n not in by_kernel}
    folded = [n for n in nodes if n in missing and nodes[n]["constant"]]
    rows = [_row("kernel", [n], [by_kernel[n]], nodes, totals) for n in same]
    for group in _components(changed | (missing - set(folded)), nodes):
        fused = [by_kernel[n] for n in group if n in changed]
        rows.append(_row("fused" if fused else "absorbed", group, fused, nodes, totals))
    rows += [_row("folded", folded, [], nodes, totals)] if folded else []
    rows += [_row("created", [], [k], nodes, totals) for k in kernels if k["name"] not in nodes]
    return rows


def run_nodes(run: RunRecord, counts: VariantCounts) -> Json | None:
    """The per-node table of one onnxruntime run, or None when it has no profile or no counts; OpenVINO's
    profile names the nodes of its own execution graph, which do not map onto the model's."""
    profile = run.profile or {}
    workload = counts.at(run.workload)
    if not run.ok or run.engine == "openvino" or not profile.get("nodes") or workload is None:
        return None
    return {"key": run.key, "variant": run.variant, "workload": run.workload, **run.config(),
            "method": profile.get("method"), "rows": node_shares(workload.nodes, profile["nodes"])}


# ---------------------------------------------------------------- rank contradictions


def _timed(row: ComparedRun) -> tuple[float, float]:
    """(median, fastest) of a ranked run, in ms: a ranked run was measured."""
    if row.median_ms is None or row.min_ms is None:
        raise ValueError(f"{row.key} is ranked but has no latency")
    return row.median_ms, row.min_ms


def _mults(row: ComparedRun, convention: str) -> int:
    """A ranked run's exact mults in a convention: a ranked run is counted."""
    found = row.achieved(convention)
    if found is None:
        raise ValueError(f"{row.key} is ranked but has no {convention} count")
    return found.mults


def _pair(faster: ComparedRun, slower: ComparedRun, convention: str) -> Contradiction | None:
    """A contradiction when `slower` has fewer mults than `faster` (so analytically it should be faster)."""
    fewer, more = _mults(slower, convention), _mults(faster, convention)
    if fewer >= more:
        return None
    (slow_median, slow_min), (fast_median, _) = _timed(slower), _timed(faster)
    return Contradiction(
        **slower.config(), workload=slower.workload, convention=convention,
        fewer_mults=slower.variant, fewer_mults_count=fewer, fewer_mults_median_ms=slow_median,
        more_mults=faster.variant, more_mults_count=more, more_mults_median_ms=fast_median,
        mults_ratio=more / fewer, time_ratio=slow_median / fast_median, clear=slow_min > fast_median,
    )


def contradictions(rows: Iterable[ComparedRun]) -> list[Contradiction]:
    """Every pair of fully counted variants in the same configuration and workload whose orders disagree."""
    groups: dict[tuple[Any, ...], list[ComparedRun]] = {}
    for row in rows:
        if row.ranked:
            groups.setdefault((*config_of(row), row.workload), []).append(row)
    found = []
    for group in groups.values():
        for a, b in itertools.combinations(sorted(group, key=lambda r: _timed(r)[0]), 2):
            found += [pair for convention in CONVENTIONS if (pair := _pair(a, b, convention))]
    return found


def contradiction_summary(found: list[Contradiction], rows: list[ComparedRun]) -> list[ContradictionSummary]:
    """Per (fewer-mults variant, more-mults variant, convention, workload): in how many configurations it holds."""
    configs: dict[str, set[tuple[Any, ...]]] = {}
    for row in rows:
        if row.ranked:
            configs.setdefault(row.variant, set()).add((*config_of(row), row.workload))
    pairs: dict[tuple[str, str, str, str], list[Contradiction]] = {}
    for item in found:
        pairs.setdefault((item.fewer_mults, item.more_mults, item.convention, item.workload), []).append(item)
    summary = []
    for (fewer, more, convention, workload), items in pairs.items():
        ratios = [item.time_ratio for item in items]
        summary.append(ContradictionSummary(
            fewer_mults=fewer, more_mults=more, convention=convention, workload=workload,
            fewer_mults_count=items[0].fewer_mults_count, more_mults_count=items[0].more_mults_count,
            configurations=len(items), clear=sum(int(item.clear) for item in items),
            measured_together=sum(1 for c in configs[fewer] & configs[more] if c[-1] == workload),
            time_ratio_min=min(ratios), time_ratio_max=max(ratios)))
    return sorted(summary, key=lambda e: (-e.clear, -e.time_ratio_max))


NOT_TIMED = ("not computed: the runs ran under emulation, and emulation wall time (not a board latency) gives no "
             "achieved rate, per-node time share or rank; see the predicted latencies")


def compare(target: Target, counts: CountsFile, profile: ProfileFile, latency_evidence: str) -> Comparison:
    """compare.json: the peak, every run's achieved numbers, per-node tables, rank contradictions."""
    not_ranked = {name: v.note for name, v in counts.variants.items() if not v.counted}
    if latency_evidence == EMULATED_TIME:
        return Comparison(latency_evidence, peak_record(target), runs=[], nodes=[], contradictions=[],
                          contradiction_summary=[], not_ranked=not_ranked, not_timed=NOT_TIMED)
    runs = [run_row(r, counts.of(r.variant), target) for r in profile.runs]
    found = contradictions(runs)
    return Comparison(
        latency_evidence=latency_evidence,
        peak=peak_record(target),
        runs=runs,
        nodes=[t for t in (run_nodes(r, counts.of(r.variant)) for r in profile.runs) if t],
        contradictions=found,
        contradiction_summary=contradiction_summary(found, runs),
        not_ranked=not_ranked,
    )
