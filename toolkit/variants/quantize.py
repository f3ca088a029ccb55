"""Integer variants made by onnxruntime.quantization: dynamic, static QDQ, and partial static schemes.

The power spectrum before the log spans well over 100 dB, so one int8 scale per tensor cannot hold quiet
and loud input at once: full int8 is expected to err by tens of dB on quiet signals. These variants exist
to be measured; the accuracy gate decides whether any of them may ship.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

from toolkit.engines import Feed
from toolkit.errors import ToolkitError
from toolkit.files import atomic_path
from toolkit.load import FULL_SCALE, int16_clip
from toolkit.variants.anatomy import NotApplicable

CALIBRATION_SAMPLES = 1760
CALIBRATION_LEVELS_DBFS = (-80.0, -60.0, -40.0, -20.0, -6.0)


def calibration_set(samples: int = CALIBRATION_SAMPLES, seed: int = 7, full_scale: float = FULL_SCALE
                    ) -> list[np.ndarray]:
    """Generated audio (int16 samples fed at `full_scale`) at several levels (noise and tone pairs), disjoint
    from the accuracy set.

    Each level gives white noise and a 2-tone chord at that RMS level, so calibration sees the spread of
    power the graph meets in use; the seed differs from the accuracy signal set's.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    chord = np.sin(2 * np.pi * 440.0 * t) + np.sin(2 * np.pi * 1250.0 * t)
    chord /= np.sqrt(np.mean(chord**2))
    clips = []
    for level in CALIBRATION_LEVELS_DBFS:
        rms = FULL_SCALE * 10.0 ** (level / 20.0)
        for shape in (rng.standard_normal(samples), chord):
            clips.append(int16_clip(rms * shape, full_scale))
    return clips


class _FeedReader(CalibrationDataReader):
    """Feeds each calibration clip once, with every other input as the feed plan says."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds: Iterator[Feed] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _named(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose nodes all have names (nodes_to_quantize selects by name)."""
    named = onnx.ModelProto()
    named.CopyFrom(model)
    for index, node in enumerate(named.graph.node):
        node.name = node.name or f"{node.op_type}_{index}"
    return named


def _node_names(model: onnx.ModelProto, op_type: str) -> list[str]:
    """Names of the nodes of `op_type`; raises when there are none, since the scheme would quantize nothing."""
    names = [node.name for node in model.graph.node if node.op_type == op_type]
    if not names:
        raise NotApplicable(f"the model has no {op_type} node: this partial quantization scheme does not apply")
    return names


def build_dynamic(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """int8 weights, activations quantized at run time per tensor (ConvInteger / MatMulInteger)."""
    del calibration  # dynamic quantization picks activation ranges at run time
    with atomic_path(path) as temp:
        quantize_dynamic(_named(model), temp, weight_type=QuantType.QInt8)


def _static(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed], nodes: list[str] | None) -> None:
    """Static QDQ int8 (activations and weights), calibrated by MinMax over the `calibration` feeds."""
    if not calibration:
        raise ToolkitError("static quantization needs calibration audio; pass at least one clip")
    reader = _FeedReader(calibration)
    with atomic_path(path) as temp:
        quantize_static(
            model,
            temp,
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )


def build_static_qdq(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Every quantizable node in int8 QDQ form."""
    _static(_named(model), path, calibration, None)


def build_conv_only(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Only the Convs in int8 QDQ; the mel MatMul and the dB tail stay float32."""
    named = _named(model)
    _static(named, path, calibration, _node_names(named, "Conv"))


def build_matmul_only(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Only the MatMuls in int8 QDQ; the DFT Convs stay float32."""
    named = _named(model)
    _static(named, path, calibration, _node_names(named, "MatMul"))
