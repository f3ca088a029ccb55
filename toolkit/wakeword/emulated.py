"""A board with no host to stream on: every stage's CPU share predicted from instructions counted under QEMU.

Each gated variant of each stage model is bundled alone and counted by the runner's --count-only mode under
qemu-aarch64 with the board's CPU model (toolkit.profiling.emulate.count_instructions, one thread, no spinning);
toolkit.profiling.predict turns the counts into a single-thread latency on the board's core. Since one thread
at 12.5 chunks/s is busy for exactly its inference time, a stage's predicted CPU share of one core is predicted
ms x rate / 1000, and a chunk's predicted latency the sum over its stages. Every such number is labelled
`predicted`: emulated wall time says nothing about a board. The gates run on this host's onnxruntime; the
embedding and classifier stages are counted on a constant input (their kernels do the same work on any data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from toolkit.evidence import PREDICTED
from toolkit.profiling import emulate
from toolkit.profiling.bundle import Workload, make_bundle
from toolkit.profiling.predict import predict_latency
from toolkit.targets import Target
from toolkit.wakeword.spec import Pipeline, Stage
from toolkit.wakeword.stream import DEFAULT_CONFIG, classifier_files
from toolkit.wakeword.variants import StageVariant

WORKLOAD: Workload = {"name": "chunk", "batch": 1, "samples": 1760}
COUNT_TIMEOUT_S = 1800.0
METHOD = ("predicted, not measured: instructions of one inference counted under qemu-aarch64 -cpu {cpu} "
          "(toolkit.profiling.emulate), latency = toolkit.profiling.predict's throughput bound on the board's core "
          "at one thread; a stage's CPU share = predicted ms x rate / 1000; a chunk's latency = the sum over its "
          "stages; a throughput bound: real code stalls, so the board is expected above it (measured / predicted was "
          "1.6 median on this host's Conv and MatMul graphs, README 'Predictions and their error')")


def _plan(stage: Stage, first: bool, path: Path) -> list[dict[str, Any]] | None:
    """The first stage is fed audio by its own feed plan; later stages a constant of their input shape."""
    if first:
        return None
    name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    return [{"name": name, "role": "given", "dtype": "float32", "shape": list(stage.input_shape), "value": 0.5,
             "why": "a constant: the stage's kernels do the same work on any input"}]


def predict_file(path: Path, label: str, stage: Stage, first: bool, target: Target, guest: emulate.Guest,
                 folder: Path, mults: int | None) -> dict[str, Any]:
    """One model file's counted instructions and predicted single-thread latency on the board (bounded by its
    exact multiplications at the core's peak too, when counted)."""
    bundle = make_bundle([(label, path, "onnx")], target, {"silence": np.zeros((1, 1760), np.float32)}, folder,
                         inputs=_plan(stage, first, path), workloads=[WORKLOAD])
    counts = emulate.count_instructions(guest, bundle, label, WORKLOAD["name"], timeout=COUNT_TIMEOUT_S)
    prediction = predict_latency(counts, target, mults)
    return {"file": str(path), "instructions": counts.total, "predicted_ms": prediction.latency_ms,
            "bound": prediction.bound, "label": PREDICTED}


def predict_variant(variant: StageVariant, stage: Stage, first: bool, pipeline: Pipeline, target: Target,
                    guest: emulate.Guest, folder: Path) -> list[dict[str, Any]]:
    """The variant's one 'measured' entry: every model of the stage once per chunk, predicted."""
    # the least a run multiplies: the peak bound must not exceed what the cheaper branch of an If costs
    mults = [c.get("mul_at_least") for c in variant.counts] if variant.counts else [None] * len(variant.files)
    files = [predict_file(path, f"{variant.name}-{index}", stage, first, target, guest,
                          folder / stage.name / variant.name / str(index), mul)
             for index, (path, mul) in enumerate(zip(variant.files, mults, strict=True))]
    total_ms = sum(f["predicted_ms"] for f in files)
    return [{"config": DEFAULT_CONFIG, "status": "ok", "label": PREDICTED,
             "cpu_share": total_ms * pipeline.rate_hz / 1e3, "median_ms": total_ms, "files": files}]


def predicted_sweep(pipeline: Pipeline, combo: dict[str, StageVariant], counts: tuple[int, ...],
                    qemu_cpu: str) -> list[dict[str, Any]]:
    """CPU share by stage and whole, and a chunk's latency, for each N, from the per-file predictions."""
    rows = []
    for n in counts:
        ms = {}
        for stage in pipeline.stages:
            measured = combo[stage.name].measured
            assert measured is not None  # predict_variant gave every variant of a combination its entry
            files = measured[0]["files"]
            chosen = classifier_files(files, n) if stage.fanout else files
            ms[stage.name] = sum(f["predicted_ms"] for f in chosen)
        chunk_ms = sum(ms.values())
        share = chunk_ms * pipeline.rate_hz / 1e3
        rows.append({"wake_words": n, "label": PREDICTED, "chunks": 0, "rate_hz": pipeline.rate_hz,
                     "cpu_share": share, "stage_cpu_share": {s: v * pipeline.rate_hz / 1e3 for s, v in ms.items()},
                     "between_cpu_share": None, "latency_ms": {"p99": chunk_ms, "median": chunk_ms},
                     "deadline_misses": None, "method": METHOD.format(cpu=qemu_cpu)})
    return rows
