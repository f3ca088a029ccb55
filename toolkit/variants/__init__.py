"""Deployment variants of a mel graph: one file each, built from the input model, each with its status.

VARIANTS is the table from variant name to how it is built; build_variants runs every builder, and a
builder that fails is recorded as failed with its reason (skipped when the graph lacks what it transforms)
while the others still run.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from toolkit.engines import Feed, plan_feed
from toolkit.errors import ToolkitError
from toolkit.load import FULL_SCALE, FeedPlan, feed_plan
from toolkit.terminal import progress
from toolkit.variants import fp16, quantize, rewrites, simplify, tflite
from toolkit.variants.anatomy import NotApplicable

Builder = Callable[[onnx.ModelProto, Path, Sequence[Feed]], None]  # model, file to write, calibration feeds


@dataclass(frozen=True)
class VariantSpec:
    """How one variant is made: its file format, whether it is exact (float rounding only), and its builder."""

    format: str
    exact: bool
    description: str
    build: Builder


@dataclass(frozen=True)
class Variant:
    """One built (or failed) variant; analytic counts are attached later by the pipeline's analyzer."""

    name: str
    path: str | None
    format: str
    status: str  # "built" | "skipped" (the graph lacks what it transforms) | "failed"
    reason: str
    description: str
    exact: bool
    build_seconds: float

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields."""
        return asdict(self)


def _rewrite_spec(name: str) -> VariantSpec:
    """The table entry of one exact rewrite from rewrites.REWRITES."""
    return VariantSpec("onnx", True, rewrites.REWRITES[name][1], functools.partial(rewrites.build_rewrite, name))


VARIANTS: dict[str, VariantSpec] = {
    "original": VariantSpec("onnx", True, "the input model unchanged", simplify.build_original),
    "simplified": VariantSpec("onnx", True, "onnxsim.simplify, kept when its check passes", simplify.build_simplified),
    **{name: _rewrite_spec(name) for name in rewrites.REWRITES},
    "int8-dynamic": VariantSpec(
        "onnx", False, "quantize_dynamic: int8 weights, activations scaled per run", quantize.build_dynamic
    ),
    "int8-static-qdq": VariantSpec(
        "onnx", False, "quantize_static QDQ int8, MinMax-calibrated on generated audio", quantize.build_static_qdq
    ),
    "int8-conv-only": VariantSpec(
        "onnx", False, "static QDQ int8 on the Convs only; MatMul and dB stage float32", quantize.build_conv_only
    ),
    "int8-matmul-only": VariantSpec(
        "onnx", False, "static QDQ int8 on the mel MatMul only; DFT Convs float32", quantize.build_matmul_only
    ),
    "fp16": VariantSpec("onnx", False, "all ops fp16 (onnxruntime float16 converter), float32 I/O", fp16.build_fp16),
    "fp16-dft": VariantSpec(
        "onnx", False, "DFT Convs fp16 on audio prescaled by an exact power of two; rest float32", fp16.build_fp16_dft
    ),
    "tflite": VariantSpec(
        "tflite",
        True,
        "TFLite flatbuffer from the model's weights (fused DFT, folded power), LiteRT",
        tflite.build_tflite,
    ),
}

EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite"}


def _reason(error: Exception) -> str:
    """One line saying why a builder failed (with the error's type) or was skipped."""
    text = str(error).strip().splitlines()
    kind = "" if isinstance(error, NotApplicable) else f"{type(error).__name__}: "
    return f"{kind}{text[0] if text else 'no message'}"


def build_one(name: str, model: onnx.ModelProto, out_dir: Path, calibration: Sequence[Feed]) -> Variant:
    """Build variant `name` into out_dir; a graph without what it transforms makes it "skipped", any other
    failure "failed", each with its reason."""
    spec = VARIANTS[name]
    path = out_dir / f"{name}{EXTENSIONS[spec.format]}"
    started = time.perf_counter()
    try:
        spec.build(model, path, calibration)
    except Exception as error:  # one builder's failure must never stop the others
        seconds = time.perf_counter() - started
        status = "skipped" if isinstance(error, NotApplicable) else "failed"
        return Variant(name, None, spec.format, status, _reason(error), spec.description, spec.exact, seconds)
    seconds = time.perf_counter() - started
    return Variant(name, str(path), spec.format, "built", "", spec.description, spec.exact, seconds)


def build_variants(
    model: onnx.ModelProto,
    out_dir: str | Path,
    calibration: Sequence[np.ndarray] | None = None,
    names: Sequence[str] | None = None,
    plan: FeedPlan | None = None,
    full_scale: float = FULL_SCALE,
) -> list[Variant]:
    """Build `names` (default: every variant) of `model` into out_dir, reporting progress on stderr.

    `calibration` is the audio static quantization calibrates on (default: quantize.calibration_set() at
    `full_scale`, the units the audio input takes), fed
    with the other inputs as `plan` says (default: the model's feed plan, no --input values).
    """
    chosen = list(names) if names is not None else list(VARIANTS)
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        raise ToolkitError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = quantize.calibration_set(full_scale=full_scale) if calibration is None else calibration
    plan = feed_plan(model) if plan is None else plan
    feeds = [plan_feed(plan, clip) for clip in clips]
    variants = []
    for index, name in enumerate(chosen, 1):
        variant = build_one(name, model, out, feeds)
        built = variant.status == "built"
        note = f"built in {variant.build_seconds:.2f} s" if built else f"{variant.status}: {variant.reason}"
        progress(f"[variants {index}/{len(chosen)}] {name}: {note}")
        variants.append(variant)
    return variants
