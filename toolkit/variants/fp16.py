"""Half-precision variants: the whole graph in fp16, and the DFT alone in fp16 behind an exact prescale.

`fp16` is onnxruntime.transformers.float16.convert_float_to_float16 (float32 input and output kept): every
op runs in fp16, so loud input overflows the power spectrum (|X|^2 of full-scale audio is ~1e13, fp16
stops at 65504). `fp16-dft` is written here with onnx: the audio is multiplied by a power of two (exact in
float) so the largest possible DFT output of int16 audio fits fp16, the DFT Convs (the pair, or one stacked Conv,
as the anatomy locates them) run in fp16, and the result is cast back and unscaled; power, mel, log and clamp
stay float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.transformers.float16 import convert_float_to_float16

from toolkit.engines import Feed
from toolkit.melgraph import save_model
from toolkit.variants.anatomy import NotApplicable, anatomy, prune

INT16_PEAK = 32768.0
FP16_MAX = 65504.0
HEADROOM = 2.0  # keep the largest possible Conv output at most half of fp16's largest finite value


def build_fp16(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Every initializer and op in fp16, float32 I/O kept (onnxruntime's converter)."""
    del calibration  # a precision change needs no data
    save_model(convert_float_to_float16(model, keep_io_types=True), path)


def dft_prescale(*kernels: np.ndarray) -> float:
    """The power of two s such that int16 audio times s cannot push any DFT output past FP16_MAX / HEADROOM.

    A Conv output is bounded by peak * sum_j |W[k, j]|; the worst row of any kernel sets the scale.
    """
    worst = INT16_PEAK * max(float(np.abs(kernel).sum(axis=(1, 2)).max()) for kernel in kernels)
    return 2.0 ** -math.ceil(math.log2(worst * HEADROOM / FP16_MAX))


def _scalar(name: str, value: float) -> TensorProto:
    """A float32 scalar initializer."""
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


def to_fp16_dft(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of `model` whose DFT Convs run in fp16 on prescaled audio, everything else float32."""
    half = onnx.ModelProto()
    half.CopyFrom(model)
    dft = anatomy(half).require_dft()
    if dft.form == "op":
        raise NotApplicable("the DFT is ONNX's STFT op, not Convs: fp16-dft halves DFT Convs (dft-fused writes "
                            "the STFT op as one)")
    scale = dft_prescale(*(weight for _, weight in dft.convs))
    graph = half.graph
    graph.initializer.extend([_scalar("fp16/prescale", scale), _scalar("fp16/unscale", 1.0 / scale)])
    front = [
        helper.make_node("Mul", [dft.source, "fp16/prescale"], ["fp16/audio_scaled"], name="fp16/prescale"),
        helper.make_node("Cast", ["fp16/audio_scaled"], ["fp16/audio"], name="fp16/to_half", to=TensorProto.FLOAT16),
    ]
    back: dict[str, list[onnx.NodeProto]] = {}
    tags = ("real", "imag") if dft.form == "pair" else ("fused",)
    for (node, weight), tag in zip(dft.convs, tags, strict=True):
        graph.initializer.append(numpy_helper.from_array(weight.astype(np.float16), f"fp16/dft_{tag}"))
        final = node.output[0]
        node.input[0], node.input[1], node.output[0] = "fp16/audio", f"fp16/dft_{tag}", f"fp16/{tag}_half"
        back[node.output[0]] = [
            helper.make_node(
                "Cast", [f"fp16/{tag}_half"], [f"fp16/{tag}_scaled"], name=f"fp16/{tag}_to_float", to=TensorProto.FLOAT
            ),
            helper.make_node("Mul", [f"fp16/{tag}_scaled", "fp16/unscale"], [final], name=f"fp16/{tag}_unscale"),
        ]
    _splice(graph, front, back)
    return prune(half)


def _splice(graph: onnx.GraphProto, front: list[onnx.NodeProto], back: dict[str, list[onnx.NodeProto]]) -> None:
    """Put `front` before the first fp16 Conv and each Conv's cast-back nodes right after it."""
    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)  # detached: the graph's own list is cleared below
        is_conv = copy.output[0] in back
        nodes += (front if is_conv and front else []) + [copy] + (back[copy.output[0]] if is_conv else [])
        front = front if not is_conv else []
    del graph.node[:]
    graph.node.extend(nodes)


def build_fp16_dft(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Write the fp16-DFT variant of `model` to `path`."""
    del calibration  # a precision change needs no data
    half = to_fp16_dft(model)
    onnx.checker.check_model(half)
    save_model(half, path)
