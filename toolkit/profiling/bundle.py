"""Bench bundles: the variant files, the runner and its inputs in one folder that scp can carry to a board.

The folder needs only Python, numpy, onnxruntime and LiteRT where it runs (OpenVINO for its runs):
    python3 runner.py BUNDLE_DIR --out RESULT.json
bundle.json's fields are documented at the top of runner.py, which is the one reader of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import onnx

from toolkit.errors import ToolkitError
from toolkit.files import sha256_file, swap_in_dir
from toolkit.load import feed_plan
from toolkit.profiling import runner
from toolkit.targets import Target, load_target


class Workload(TypedDict):
    """One bundle workload: the audio's shape [batch, samples], named."""

    name: str
    batch: int
    samples: int


# openWakeWord's streaming step (1280 new + 480 context samples, 8 frames) and one second of 16 kHz audio.
WORKLOADS: tuple[Workload, ...] = (
    {"name": "stream", "batch": 1, "samples": 1760},
    {"name": "second", "batch": 1, "samples": 16000},
)
STREAMING = {"seconds": 10.0, "chunk_samples": 1760, "rate_hz": 12.5}
WARMUP = 10
RUNS = 50
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_variants(variants: Sequence[tuple[str, str | os.PathLike[str], str]]) -> None:
    """Unique safe names, known formats, existing files."""
    seen: set[str] = set()
    for name, path, fmt in variants:
        if not NAME.match(name) or name in seen:
            raise ToolkitError(f"variant name {name!r} is repeated or not of [A-Za-z0-9_.-]; give each variant "
                               "a unique plain name")
        if fmt not in SUFFIX:
            raise ToolkitError(f"variant {name}: format {fmt!r}; use one of {', '.join(SUFFIX)}")
        if not Path(path).is_file():
            raise ToolkitError(f"variant {name}: {path} is not a file; build the variant first")
        seen.add(name)
    if not seen:
        raise ToolkitError("no variants to bundle; pass at least one (name, path, format)")


def _default_plan(variants: Sequence[tuple[str, str | os.PathLike[str], str]]) -> list[dict[str, object]]:
    """The feed plan of the first ONNX variant, defaults only (no --input values); none for TFLite alone."""
    path = next((path for _, path, fmt in variants if fmt == "onnx"), None)
    return [] if path is None else [entry.to_json() for entry in feed_plan(onnx.load(str(path)))]


def _check_signals(signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Signals as float32 [1, N] arrays under plain names (the runner keys outputs variant/signal)."""
    checked = {}
    for name, audio in signals.items():
        array = np.asarray(audio)
        if not NAME.match(name) or array.ndim != 2 or array.shape[0] != 1:
            raise ToolkitError(f"signal {name!r}: needs a plain name and shape [1, N], got {array.shape}")
        checked[name] = array.astype(np.float32)
    return checked


def bundle_document(target: Target, files: list[dict[str, str]], *, inputs: Sequence[Mapping[str, object]],
                    workloads: Sequence[Mapping[str, object]], warmup: int, runs: int, streaming: Mapping[str, float],
                    seed: int) -> dict[str, object]:
    """bundle.json's content for a target's matrix, the given variant entries and the feed plan."""
    return {
        "format_version": runner.FORMAT_VERSION,
        "target": target.name,
        "variants": files,
        "inputs": [dict(entry) for entry in inputs],
        "matrix": {
            "providers": list(target.matrix.providers),
            "intra_op_threads": list(target.matrix.intra_op_threads),
            "graph_optimization": list(target.matrix.graph_optimization),
            "allow_spinning": list(target.matrix.allow_spinning),
        },
        "litert": {"threads": list(target.litert.threads), "xnnpack": target.litert.xnnpack},
        **({"openvino": {"engines": list(target.openvino.engines), "threads": list(target.openvino.threads),
                         "precision": list(target.openvino.precision),
                         "optimization": target.matrix.graph_optimization[0]}} if target.openvino else {}),
        "workloads": [dict(w) for w in workloads],
        "warmup": warmup,
        "runs": runs,
        "streaming": dict(streaming),
        "signals": "signals.npz",
        "seed": seed,
    }


def make_bundle(
    variants: Sequence[tuple[str, str | os.PathLike[str], str]],
    target: Target | str,
    signals: Mapping[str, np.ndarray],
    out_dir: str | os.PathLike[str],
    *,
    inputs: Sequence[Mapping[str, object]] | None = None,
    workloads: Sequence[Mapping[str, object]] = WORKLOADS,
    warmup: int = WARMUP,
    runs: int = RUNS,
    streaming: Mapping[str, float] = STREAMING,
    seed: int = 0,
) -> Path:
    """Copy (name, path, format) variants, runner.py, signals.npz and bundle.json into out_dir; returns it.

    `inputs` is what each graph input is fed (InputFeed.to_json entries; default: toolkit.load.feed_plan of the
    first ONNX variant).

    The folder is built beside out_dir and swapped in at the end, so a failure leaves any earlier bundle intact.
    """
    _check_variants(variants)
    checked_signals = _check_signals(signals)
    target = load_target(target) if isinstance(target, str) else target
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "models").mkdir()
        files = []
        for name, path, fmt in variants:
            relative = f"models/{name}{SUFFIX[fmt]}"
            shutil.copyfile(path, staging / relative)
            files.append({"name": name, "file": relative, "format": fmt, "sha256": sha256_file(staging / relative)})
        shutil.copyfile(runner.__file__, staging / "runner.py")
        np.savez(staging / "signals.npz", **checked_signals)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle, a keyword NumPy < 2.1 lacks
        plan = _default_plan(variants) if inputs is None else inputs
        document = bundle_document(target, files, inputs=plan, workloads=workloads, warmup=warmup, runs=runs,
                                   streaming=streaming, seed=seed)
        (staging / "bundle.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
        swap_in_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
