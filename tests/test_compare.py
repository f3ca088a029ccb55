"""Measured against analytic: achieved mults/s from the analyzer's exact counts, per-node shares on real
onnxruntime profiles (a fused quantized MatMul mapped back to its model nodes, nothing dropped), and rank
contradictions found with their numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from toolkit.compare import contradiction_summary, contradictions, node_shares, run_row
from toolkit.load import feed_plan
from toolkit.melgraph import default_model
from toolkit.pipeline.stages import onnx_counts
from toolkit.profiling.runner import node_profile, noise
from toolkit.records import Achieved, ComparedRun, Latency, RunRecord, VariantCounts
from toolkit.targets import load_target
from toolkit.variants import build_variants

Json = dict[str, Any]
CONFIG = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": True,
          "optimization": "all"}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("variants")
    built = build_variants(default_model(), folder, names=["original", "int8-dynamic"])
    assert [v.status for v in built] == ["built", "built"]
    return folder


def profile_of(folder: Path, name: str, samples: int) -> list[Json]:
    """A real onnxruntime per-node profile (the runner's own function) at graph optimization 'all'."""
    x = noise((1, samples), seed=0)
    plan = [feed.to_json() for feed in feed_plan(default_model())]
    variant = {"file": f"{name}.onnx", "format": "onnx", "inputs": plan}
    return node_profile(folder, variant, CONFIG, x, warmup=1, runs=3)["nodes"]


def timed_run(median: float) -> RunRecord:
    """An ok run of the original on the streaming chunk with this median (one thread)."""
    stats = Latency(n=5, median=median, p90=median, p99=median, min=median, mean=median, max=median, stdev=0.0)
    return RunRecord(key="run|original", variant="original", format="onnx", **CONFIG, precision=None,
                     workload="stream", status="ok", latency_ms=stats)


def test_achieved_mults_per_second_from_exact_counts(variants: Path) -> None:
    counts = onnx_counts(str(variants / "original.onnx"))
    target = load_target("x86-host")
    row = run_row(timed_run(0.5), counts, target)
    assert row.dense is not None and row.effective is not None
    assert row.dense.mults == 2_175_504  # 8 frames x 271,938 (reference facts)
    assert row.dense.mults_per_s == pytest.approx(2_175_504 / 0.5e-3)
    assert row.effective.mults < row.dense.mults
    assert row.dense.of_peak == pytest.approx(row.dense.mults_per_s / target.peak_mults_per_s(1))


def test_not_counted_variant_has_no_numbers() -> None:
    note = "not counted: TFLite"
    row = run_row(timed_run(0.1), VariantCounts("not counted", note, {}), load_target("x86-host"))
    assert (row.counts, row.note, row.peak_mults_per_s, row.dense, row.effective) == ("not counted", note, None,
                                                                                      None, None)


def test_original_nodes_map_one_to_one(variants: Path) -> None:
    nodes = onnx_counts(str(variants / "original.onnx")).workloads["second"].nodes
    rows = node_shares(nodes, profile_of(variants, "original", 16000))
    kernels = {r["nodes"][0]: r for r in rows if r["kind"] == "kernel"}
    assert kernels["Conv_2"]["mul"]["dense"] == 257 * 512 * 97
    assert kernels["Conv_2"]["mul_share"]["dense"] == pytest.approx(257 * 512 * 97 / 26_377_986)
    assert sum(r["time_share"] or 0 for r in rows) == pytest.approx(1.0)
    folded = next(r for r in rows if r["kind"] == "folded")
    assert "Constant_0" in folded["nodes"]
    assert sorted(n for r in rows for n in r["nodes"]) == sorted(n["name"] for n in nodes)


def test_fused_quantized_matmul_keeps_its_model_nodes(variants: Path) -> None:
    nodes = onnx_counts(str(variants / "int8-dynamic.onnx")).workloads["second"].nodes
    rows = node_shares(nodes, profile_of(variants, "int8-dynamic", 16000))
    fused = [r for r in rows if r["kind"] == "fused"]
    matmul = next(r for r in fused if any(k["op_type"] == "DynamicQuantizeMatMul" for k in r["kernels"]))
    assert "MatMul_15_quant" in matmul["nodes"] and "MatMulInteger" in matmul["op_types"]
    assert len(matmul["nodes"]) > 1  # the quantize, scale and cast nodes onnxruntime folded into the kernel
    assert matmul["time_us"] > 0 and matmul["mul"]["dense"] > 0
    assert sorted(n for r in rows for n in r["nodes"]) == sorted(n["name"] for n in nodes)


def row(variant: str, median: float, dense: int, effective: int, workload: str = "stream",
        minimum: float | None = None, counts: str = "counted") -> ComparedRun:
    """A compared run with these mults and latencies (its rates do not decide a contradiction)."""
    return ComparedRun(key=f"run|{variant}", variant=variant, format="onnx", **CONFIG, precision=None,
                       workload=workload, status="ok", counts=counts, median_ms=median, p90_ms=median,
                       min_ms=median if minimum is None else minimum,
                       dense=Achieved(dense, 0.0, 0.0), effective=Achieved(effective, 0.0, 0.0))


def test_contradictions_with_numbers() -> None:
    rows = [row("original", 0.10, 2_175_504, 1_635_688), row("stft-op", 0.08, 2_179_600, 2_114_728),
            row("mel-sparse", 0.09, 1_015_936, 767_352, minimum=0.075),
            row("partial", 0.01, 5, 5, counts="partial")]
    found = [f.to_json() for f in contradictions(rows)]
    pairs = {(f["fewer_mults"], f["more_mults"], f["convention"]) for f in found}
    assert pairs == {("original", "stft-op", "dense"), ("original", "stft-op", "effective"),
                     ("mel-sparse", "stft-op", "dense"), ("mel-sparse", "stft-op", "effective")}
    first = next(f for f in found if f["fewer_mults"] == "original" and f["convention"] == "dense")
    assert first["time_ratio"] == pytest.approx(0.10 / 0.08)
    assert first["clear"] is True  # original's fastest run (0.10) is slower than stft-op's median
    sparse = next(f for f in found if f["fewer_mults"] == "mel-sparse")
    assert sparse["clear"] is False  # its fastest run (0.075) beat stft-op's median: within run-to-run spread
    summary = [s.to_json() for s in contradiction_summary(contradictions(rows), rows)]
    assert {(s["configurations"], s["measured_together"]) for s in summary} == {(1, 1)}


def test_equal_counts_are_no_contradiction() -> None:
    rows = [row("original", 0.10, 100, 80), row("dft-fused", 0.09, 100, 80)]
    assert contradictions(rows) == []


def test_a_node_without_count_is_not_counted_never_zero() -> None:
    def node(name: str, op: str, mul: int | None, inputs: list[str], outputs: list[str]) -> Json:
        return {"name": name, "op_type": op, "mul": {"dense": mul, "effective": mul}, "inputs": inputs,
                "outputs": outputs, "constant": False}

    nodes = [node("conv", "Conv", 1000, ["x"], ["a"]), node("odd", "CustomOp", None, ["a"], ["y"])]
    kernels = [{"name": "conv", "op_type": "Conv", "total_us": 30}, {"name": "odd", "op_type": "CustomOp",
                                                                     "total_us": 10}]
    rows = {r["nodes"][0]: r for r in node_shares(nodes, kernels)}
    assert rows["odd"]["mul"] == {"dense": None, "effective": None}
    assert rows["odd"]["mul_share"] == {"dense": None, "effective": None}
    assert rows["conv"]["mul_share"]["dense"] == 1.0 and rows["odd"]["time_share"] == 0.25
