"""The audio one inference covers, which the real-time budget is a fraction of: the streaming step for a graph
whose output follows its input, the whole window for one that pads every input to a fixed length."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.melgraph import default_model
from toolkit.profiling.workload import STEP, WINDOW, inference_audio


def pad_to(total: int) -> onnx.ModelProto:
    """Whisper's head at a small size: zero padding up to `total` samples, an STFT op of 400, the power."""
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"], start=1, end=2),
        helper.make_node("Sub", ["total", "shape"], ["missing"]),
        helper.make_node("Mul", ["missing", "one_hot"], ["amounts"]),
        helper.make_node("Pad", ["audio", "amounts"], ["padded"]),
        helper.make_node("STFT", ["padded", "step", "window"], ["spec"], onesided=1),
        helper.make_node("ReduceSumSquare", ["spec"], ["features"], axes=[-1], keepdims=0),
    ]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    initializers = {"total": np.array([total], np.int64), "one_hot": np.array([0, 0, 0, 1], np.int64),
                    "step": np.array(160, np.int64), "window": window.astype(np.float32)}
    graph = helper.make_graph(
        nodes, "pad_to", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None, None])],
        initializer=[numpy_helper.from_array(value, name) for name, value in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_the_default_graph_is_run_once_per_streaming_step() -> None:
    audio = inference_audio(default_model())
    assert (audio.audio_ms, audio.kind) == (80.0, STEP)
    assert audio.reason.startswith("no padding to a fixed length longer than the chunk: one inference per 80 ms")


def test_a_graph_padding_to_a_fixed_length_is_run_once_per_window() -> None:
    audio = inference_audio(pad_to(48000))
    assert audio.kind == WINDOW
    assert audio.audio_ms == pytest.approx(3000.0)  # 48000 samples at 16 kHz (no mel block: the signal set's rate)
    assert audio.reason.startswith("the graph pads every input to 48000 samples (3 s at 16000 Hz")


def test_a_fixed_length_no_longer_than_the_chunk_keeps_the_step() -> None:
    assert inference_audio(pad_to(1600)).kind == STEP  # 1760-sample chunks are cropped, not padded
