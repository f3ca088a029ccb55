"""Node attributes decoded once (toolkit.analysis.attributes): defaults come from onnx's schemas, and a parameter
that moved between attribute and input reads the same on both sides of the move, by the analyzer's rules and by
the counting interpreter alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import onnx
import pytest
import sympy as sp
from onnx import TensorProto, defs, helper, numpy_helper

from toolkit.analysis import analyze
from toolkit.analysis.attributes import FromInput, decode, schema_defaults, softmax_axes
from toolkit.analysis.interpreter import _Step, _Tally, interpret
from toolkit.analysis.ops.base import NodeContext, Tensor


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def resolved(node: onnx.NodeProto, opset: int, values: dict[str, np.ndarray], name: str) -> tuple[list, list]:
    """Parameter `name` as the analyzer's NodeContext and the interpreter's _Step read it, as plain lists;
    `values` are the node's constant inputs by name (the others are absent)."""
    arrays = [values.get(n) for n in node.input]
    tensors = [None if a is None else Tensor(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                             tuple(sp.Integer(d) for d in a.shape), a, constant=True)
               for n, a in zip(node.input, arrays, strict=True)]
    by_rules = NodeContext(node, tensors, opset).param(name)
    by_interpreter = _Step(node, arrays, [a is not None for a in arrays], opset, _Tally()).param(name)
    return (None if by_rules is None else by_rules.value.reshape(-1).tolist(),
            None if by_interpreter is None else by_interpreter.reshape(-1).tolist())


class Move(NamedTuple):
    """One parameter before and after its move: (node, opset, constant inputs) each side, and what it means."""

    name: str
    before: tuple[onnx.NodeProto, int, dict[str, np.ndarray]]
    after: tuple[onnx.NodeProto, int, dict[str, np.ndarray]]
    meaning: list | None


MOVES = {
    "reducesum-axes-11-13": Move(
        "axes", (helper.make_node("ReduceSum", ["x"], ["y"], axes=[1, 2]), 11, {}),
        (helper.make_node("ReduceSum", ["x", "axes"], ["y"]), 13, {"axes": i64(1, 2)}), [1, 2]),
    "reducemean-axes-17-18": Move(
        "axes", (helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1]), 17, {}),
        (helper.make_node("ReduceMean", ["x", "axes"], ["y"]), 18, {"axes": i64(-1)}), [-1]),
    "reducemax-no-axes-17-18": Move(
        "axes", (helper.make_node("ReduceMax", ["x"], ["y"]), 17, {}),
        (helper.make_node("ReduceMax", ["x"], ["y"]), 18, {}), None),
    "clip-min-6-11": Move(
        "min", (helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5), 6, {}),
        (helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), 11, {"lo": f32(-0.5), "hi": f32(0.5)}), [-0.5]),
    "clip-max-6-11": Move(
        "max", (helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5), 6, {}),
        (helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), 11, {"lo": f32(-0.5), "hi": f32(0.5)}), [0.5]),
    # a bound left out is no bound on both sides, though Clip 6-10's schema states -+FLT_MAX as its default
    "clip-no-max-6-11": Move(
        "max", (helper.make_node("Clip", ["x"], ["y"], min=-0.5), 6, {}),
        (helper.make_node("Clip", ["x", "lo"], ["y"]), 11, {"lo": f32(-0.5)}), None),
    "dft-axis-17-20": Move(
        "axis", (helper.make_node("DFT", ["x"], ["y"], axis=2), 17, {}),
        (helper.make_node("DFT", ["x", "", "axis"], ["y"]), 20, {"axis": i64(2)}), [2]),
    "dft-length-17-20": Move(
        "dft_length", (helper.make_node("DFT", ["x", "n"], ["y"]), 17, {"n": i64(8)}),
        (helper.make_node("DFT", ["x", "n"], ["y"]), 20, {"n": i64(8)}), [8]),
    "pad-value-2-11": Move(
        "value", (helper.make_node("Pad", ["x"], ["y"], pads=[1, 1], value=2.5), 2, {}),
        (helper.make_node("Pad", ["x", "pads", "v"], ["y"]), 11, {"pads": i64(1, 1), "v": f32(2.5)}), [2.5]),
    "pad-no-value-2-11": Move(
        "value", (helper.make_node("Pad", ["x"], ["y"], pads=[1, 1]), 2, {}),
        (helper.make_node("Pad", ["x", "pads"], ["y"]), 11, {"pads": i64(1, 1)}), [0.0]),
    "slice-starts-9-10": Move(
        "starts", (helper.make_node("Slice", ["x"], ["y"], starts=[1], ends=[3]), 9, {}),
        (helper.make_node("Slice", ["x", "s", "e"], ["y"]), 10, {"s": i64(1), "e": i64(3)}), [1]),
    "split-sizes-11-13": Move(
        "split", (helper.make_node("Split", ["x"], ["a", "b"], split=[2, 3]), 11, {}),
        (helper.make_node("Split", ["x", "sizes"], ["a", "b"]), 13, {"sizes": i64(2, 3)}), [2, 3]),
}


@pytest.mark.parametrize("move", MOVES.values(), ids=MOVES.keys())
def test_a_moved_parameter_means_the_same_on_both_sides_of_its_move(move: Move) -> None:
    for node, opset, values in (move.before, move.after):
        assert resolved(node, opset, values, move.name) == (move.meaning, move.meaning), f"opset {opset}"


def test_before_the_move_an_attribute_after_it_the_input_that_carries_it() -> None:
    assert decode(helper.make_node("ReduceSum", ["x"], ["y"], axes=[1]), 12)["axes"] == [1]
    assert decode(helper.make_node("ReduceSum", ["x", "a"], ["y"]), 13)["axes"] == FromInput(1)
    assert decode(helper.make_node("ReduceL2", ["x"], ["y"], axes=[1]), 17)["axes"] == [1]
    assert decode(helper.make_node("ReduceL2", ["x", "a"], ["y"]), 18)["axes"] == FromInput(1)
    assert decode(helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), 11)["max"] == FromInput(2)


def test_dft_axis_defaults_to_the_schemas_1_before_opset_20_and_the_inputs_minus_2_from_it() -> None:
    """The spec changed the meaning of a DFT without an axis at 20; each side reads as its spec says."""
    x = {"x": np.zeros((1, 8, 4, 1), np.float32)}
    assert resolved(helper.make_node("DFT", ["x"], ["y"]), 17, x, "axis") == ([1], [1])
    assert resolved(helper.make_node("DFT", ["x"], ["y"]), 20, x, "axis") == ([-2], [-2])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_axis_default_is_1_before_opset_13_and_minus_1_from_it(op: str) -> None:
    node = helper.make_node(op, ["x"], ["y"])
    assert decode(node, 11)["axis"] == 1
    assert decode(node, 13)["axis"] == -1
    assert decode(helper.make_node(op, ["x"], ["y"], axis=0), 11)["axis"] == 0


def test_softmax_rows_span_axis_to_the_end_before_opset_13_and_one_axis_from_it() -> None:
    assert softmax_axes(1, 3, 11) == [1, 2]
    assert softmax_axes(1, 3, 13) == [1]


def softmax_model(opset: int) -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"])], "softmax",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


@pytest.mark.parametrize(("opset", "adds"), [(11, 2 * 11), (13, 6 * 3)])
def test_a_softmax_without_axis_is_counted_by_its_opsets_default(opset: int, adds: int) -> None:
    """Opset 11: axis 1, rows of 3 x 4 = 12, 2 of them; opset 13: axis -1, rows of 4, 6 of them."""
    model = softmax_model(opset)
    analyzed = analyze(model).nodes[0].dense.as_ints()
    (tally,) = interpret(model, {"x": np.zeros((2, 3, 4), np.float32)}).nodes
    assert analyzed == tally.dense.as_ints() == {"exp": 24, "add": adds, "div": 24}


def reduce_model(opset: int) -> onnx.ModelProto:
    """ReduceSum over axis 1 of a [2, 3, 4] input: the axes as attribute before opset 13, as input from it."""
    axes = [] if opset < 13 else [numpy_helper.from_array(i64(1), "axes")]
    node = helper.make_node("ReduceSum", ["x", "axes"] if axes else ["x"], ["y"], **({} if axes else {"axes": [1]}))
    graph = helper.make_graph([node], "reduce", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], axes)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


@pytest.mark.parametrize("opset", [11, 13])
def test_reduce_axes_from_attribute_or_input_count_the_same(opset: int) -> None:
    model = reduce_model(opset)
    report = analyze(model).nodes[0]
    (tally,) = interpret(model, {"x": np.ones((2, 3, 4), np.float32)}).nodes
    assert report.output_shapes == [(2, 1, 4)]
    assert report.dense.as_ints() == tally.dense.as_ints() == {"add": 8 * 2}


def test_defaults_are_the_schemas() -> None:
    """Conv's group 1 and LeakyRelu's alpha as onnx's schemas state them: alpha is the float32 the schema
    stores, not the 0.01 a constant in Python would be."""
    schema = defs.get_schema("LeakyRelu", 17, "")
    alpha = decode(helper.make_node("LeakyRelu", ["x"], ["y"]), 17)["alpha"]
    assert alpha == helper.get_attribute_value(schema.attributes["alpha"].default_value) == np.float32(0.01)
    assert alpha != 0.01
    conv = decode(helper.make_node("Conv", ["x", "w"], ["y"]), 17)
    assert conv["group"] == 1 and conv["auto_pad"] == "NOTSET"
    assert conv["strides"] is None  # the schema has no default: "1 along each spatial axis", per rank


class FakeAttribute(NamedTuple):
    default_value: onnx.AttributeProto


class FakeSchema(NamedTuple):
    since_version: int
    attributes: dict[str, FakeAttribute]


@pytest.fixture
def fresh_defaults() -> Iterator[None]:
    schema_defaults.cache_clear()
    yield
    schema_defaults.cache_clear()


def test_both_readers_follow_whatever_the_schema_says(monkeypatch: pytest.MonkeyPatch, fresh_defaults: None) -> None:
    """With onnx's schema for LeakyRelu replaced by one whose alpha is 0.25, the analyzer's math and the
    interpreter's values both use 0.25: no copy of the default is left in either."""
    real = defs.get_schema
    fake = FakeSchema(6, {"alpha": FakeAttribute(helper.make_attribute("alpha", 0.25))})
    monkeypatch.setattr(defs, "get_schema", lambda op, *args, **kwargs: fake if op == "LeakyRelu"
                        else real(op, *args, **kwargs))
    graph = helper.make_graph([helper.make_node("LeakyRelu", ["x"], ["y"])], "leaky",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    assert analyze(model).nodes[0].math == "y = max(x, 0.25 * x)"
    assert interpret(model, {"x": f32(-2.0, 4.0)}).outputs["y"].tolist() == [-0.5, 4.0]


def test_an_attribute_a_later_version_added_takes_the_default_it_was_added_with() -> None:
    """Shape's start and end came at opset 15: a Shape at 13 reads as the whole shape, start 0, no end."""
    shape = decode(helper.make_node("Shape", ["x"], ["y"]), 13)
    assert (shape["start"], shape["end"]) == (0, None)
    assert decode(helper.make_node("Reshape", ["x", "s"], ["y"]), 13)["allowzero"] == 0


def test_node_values_win_strings_are_str_and_unknown_names_fail() -> None:
    attrs = decode(helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=3,
                                    activations=["Relu", "Tanh", "Tanh"], direction="reverse"), 14)
    assert attrs["hidden_size"] == 3
    assert attrs["activations"] == ["Relu", "Tanh", "Tanh"]
    assert attrs["direction"] == "reverse"
    assert attrs.given == ("activations", "direction", "hidden_size")  # make_node sorts them
    with pytest.raises(KeyError):
        attrs["linear_before_reset"]  # GRU's, not LSTM's
