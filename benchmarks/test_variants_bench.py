"""Latency of each variant x provider x threads x workload on this host, timed by pytest-benchmark.

Sessions are the bench runner's own (toolkit.profiling.runner.open_session), so these numbers are made by the
same session options as `make profile`. A provider of the x86-host target that this onnxruntime build lacks is
skipped with the runner's reason, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import QUICK, ROUNDS, VARIANTS, WARMUP_ROUNDS
from toolkit.load import feed_plan
from toolkit.melgraph import default_model
from toolkit.profiling import runner
from toolkit.profiling.bundle import WORKLOADS
from toolkit.targets import load_target

TARGET = load_target("x86-host")
THREADS = (1,) if QUICK else TARGET.matrix.intra_op_threads
INPUTS = [entry.to_json() for entry in feed_plan(default_model())]  # the variants are the default model's


def configs() -> list[Any]:
    """(variant, config) pairs: every ONNX variant on every target provider, TFLite on LiteRT with XNNPACK."""
    pairs = []
    for name in VARIANTS:
        engine = "litert" if name == "tflite" else "onnxruntime"
        providers = ("xnnpack",) if engine == "litert" else TARGET.matrix.providers
        for provider in providers:
            for threads in THREADS:
                config = {"engine": engine, "provider": provider, "threads": threads, "spinning": False,
                          "optimization": None if engine == "litert" else "all", "precision": None}
                pairs.append(pytest.param(name, config, id=f"{name}-{provider}-t{threads}"))
    return pairs


@pytest.mark.parametrize("workload", WORKLOADS, ids=[str(w["name"]) for w in WORKLOADS])
@pytest.mark.parametrize(("name", "config"), configs())
def test_latency(benchmark: Any, variants_dir: Path, name: str, config: dict[str, Any],
                 workload: dict[str, Any]) -> None:
    missing = runner.provider_missing(config)
    if missing:
        pytest.skip(f"unavailable: {missing}")
    shape = (int(workload["batch"]), int(workload["samples"]))
    variant = {"name": name, "file": f"{name}{'.tflite' if name == 'tflite' else '.onnx'}", "inputs": INPUTS}
    session = runner.open_session(variants_dir, variant, config, shape)
    x = runner.noise(shape, seed=0)
    benchmark.extra_info.update(variant=name, provider=config["provider"], threads=config["threads"],
                                workload=workload["name"], samples=shape[1])
    output = benchmark.pedantic(session.run, args=(x,), rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)
    frames = (shape[1] - 512) // 160 + 1
    assert output[0].shape[-2:] == (frames, 32)
