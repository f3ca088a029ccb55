"""explain names time-domain blocks only on the samples, and explains the branch an If takes when its condition
is known from the inputs. Every graph is built here with onnx.helper and run once in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from toolkit.explain import Explanation, explain


def _model(nodes: list[onnx.NodeProto], initializers: dict[str, np.ndarray], input_shape: list[object],
           extra_inputs: tuple[onnx.ValueInfoProto, ...] = ()) -> onnx.ModelProto:
    """A checked opset-13 model from input `x` to output `y`."""
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape), *extra_inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
        initializer=[numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _kinds(explanation: Explanation) -> list[str]:
    return [block.kind for block in explanation.blocks]


def _centre(source: str, output: str) -> list[onnx.NodeProto]:
    """source - mean(source) over the last axis."""
    return [helper.make_node("ReduceMean", [source], [f"{output}_mean"], axes=[-1]),
            helper.make_node("Sub", [source, f"{output}_mean"], [output])]


def _layer_norm(source: str) -> list[onnx.NodeProto]:
    """(x - mean) / sqrt(var + eps) over the last axis, then a per-feature scale and shift, as torch exports it."""
    return [*_centre(source, "centred"),
            helper.make_node("Pow", ["centred", "two"], ["squared"]),
            helper.make_node("ReduceMean", ["squared"], ["variance"], axes=[-1]),
            helper.make_node("Add", ["variance", "eps"], ["guarded"]),
            helper.make_node("Sqrt", ["guarded"], ["std"]),
            helper.make_node("Div", ["centred", "std"], ["normed"]),
            helper.make_node("Mul", ["normed", "gamma"], ["scaled"]),
            helper.make_node("Add", ["scaled", "beta"], ["y"])]


_NORM_CONSTANTS = {"two": np.array(2, np.float32), "eps": np.array(1e-5, np.float32),
                   "gamma": np.linspace(0.5, 1.5, 8, dtype=np.float32), "beta": np.linspace(-1, 1, 8, dtype=np.float32)}


def test_layer_norm_after_a_gemm_is_not_dc_removal() -> None:
    """A classifier's layer norm (features out of a Gemm) is a normalization, never DC removal of samples."""
    nodes = [helper.make_node("Gemm", ["x", "weight", "bias"], ["hidden"], transB=1), *_layer_norm("hidden")]
    rng = np.random.default_rng(0)
    constants = {"weight": rng.normal(size=(8, 16)).astype(np.float32), "bias": np.zeros(8, np.float32),
                 **_NORM_CONSTANTS}
    model = _model(nodes, constants, [1, 16])
    assert _run(model, {"x": rng.normal(size=(1, 16)).astype(np.float32)}).shape == (1, 8)
    kinds = _kinds(explain(model))
    assert "dc removal" not in kinds
    assert kinds == ["unrecognized", "normalization", "affine"]


def test_layer_norm_on_a_feature_input_is_not_dc_removal() -> None:
    """An input of [1, 16, 96] holds features (openWakeWord's classifiers), not samples."""
    model = _model(_centre("x", "y"), {}, [1, 16, 96])
    assert _run(model, {"x": np.ones((1, 16, 96), np.float32)}).shape == (1, 16, 96)
    assert "dc removal" not in _kinds(explain(model))


def test_mean_over_the_batch_is_not_dc_removal() -> None:
    """Samples transposed to [samples, batch]: a mean over the last axis is over the batch, not over time."""
    nodes = [helper.make_node("Transpose", ["x"], ["swapped"], perm=[1, 0]), *_centre("swapped", "y")]
    model = _model(nodes, {}, ["batch", "samples"])
    assert _run(model, {"x": np.ones((2, 40), np.float32)}).shape == (40, 2)
    assert "dc removal" not in _kinds(explain(model))


def test_dc_removal_on_the_samples_past_data_movement_still_is() -> None:
    """Samples cropped and re-joined (Slice, Concat: data movement no recognizer names) are still samples."""
    nodes = [helper.make_node("Slice", ["x", "start", "end", "axis"], ["head"]),
             helper.make_node("Concat", ["head", "x"], ["joined"], axis=-1),
             *_centre("joined", "y")]
    constants = {"start": np.array([0], np.int64), "end": np.array([3], np.int64), "axis": np.array([-1], np.int64)}
    model = _model(nodes, constants, ["batch", "samples"])
    audio = np.random.default_rng(1).normal(size=(2, 40)).astype(np.float32)
    joined = np.concatenate([audio[:, :3], audio], axis=-1)
    np.testing.assert_allclose(_run(model, {"x": audio}), joined - joined.mean(-1, keepdims=True), atol=1e-5)
    explanation = explain(model)
    assert _kinds(explanation) == ["unrecognized", "dc removal"]


def _branch(name: str, nodes: list[onnx.NodeProto], output: str) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)])


def _rate_switch(condition: list[onnx.NodeProto]) -> onnx.ModelProto:
    """A whole model inside an If on `cond` (Silero VAD's layout): reflect padding in the then branch, DC
    removal in the else branch."""
    then = _branch("then", [helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect")], "padded")
    other = _branch("else", _centre("x", "centred"), "centred")
    nodes = [*condition, helper.make_node("If", ["cond"], ["y"], name="rate_if", then_branch=then, else_branch=other)]
    rate = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    constants = {"pads": np.array([0, 4, 0, 4], np.int64), "rate": np.array(16000, np.int64),
                 "one": np.array(1, np.int64)}
    return _model(nodes, constants,
                  ["batch", "samples"], (rate,))


_EQUAL_RATE = [helper.make_node("Equal", ["sr", "rate"], ["cond"])]


def test_an_if_on_the_sample_rate_is_explained_through_the_branch_taken() -> None:
    """The default sample rate (16000) takes the then branch; --input sr=8000 the else branch."""
    model = _rate_switch(_EQUAL_RATE)
    audio = np.random.default_rng(2).normal(size=(1, 32)).astype(np.float32)
    assert _run(model, {"x": audio, "sr": np.array(16000, np.int64)}).shape == (1, 40)
    default = explain(model)
    assert _kinds(default) == ["padding"]
    assert [(c.node, c.taken) for c in default.branches] == [("rate_if", "then")]
    assert "then branch of the If rate_if: Equal(sr, 16000) is true with sr = 16000" in default.verdict()
    given = explain(model, {"sr": 8000})
    assert _kinds(given) == ["dc removal"]
    assert given.branches[0].taken == "else" and "sr = 8000 (given with --input)" in given.verdict()


def test_an_if_the_audio_decides_is_not_explained_and_never_raises() -> None:
    """A condition on the audio's length is unknown before a run: the If stays one unrecognized span and
    the verdict says neither branch is explained."""
    length = [helper.make_node("Shape", ["x"], ["shape"]),
              helper.make_node("Gather", ["shape", "one"], ["count"]),
              helper.make_node("Greater", ["count", "rate"], ["cond"])]
    explanation = explain(_rate_switch(length))
    assert [b.kind for b in explanation.blocks] == ["unrecognized"]
    assert "If" in explanation.blocks[0].data["ops"]
    assert explanation.branches[0].taken is None
    assert "their branches are not explained" in explanation.verdict()
    assert "neither of its branches is explained" in explanation.branches[0].sentence()
