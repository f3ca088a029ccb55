"""The analyzer's formulas against the counting interpreter: two independent derivations must agree exactly.

The interpreter runs every op with per-element loops and counts what it executes; the analyzer derives formulas
from shapes. Any disagreement, node by node and convention by convention, fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_interpreter import CASES, Case, build
from toolkit.analysis import analyze
from toolkit.analysis.interpreter import SUPPORTED_OPS, interpret
from toolkit.analysis.ops import RULES
from toolkit.melgraph import MelParams, build_mel_model

MEL = MelParams(n_fft=32, win_length=24, hop=8, n_mels=4, sample_rate=1600, fmin=0.0, fmax=800.0)


def assert_nodes_agree(model, inputs: dict[str, np.ndarray], **dims: int) -> None:
    interpreted = interpret(model, inputs)
    analysis = analyze(model, batch=dims.get("batch"), samples=dims.get("samples"))
    assert len(analysis.nodes) == len(interpreted.nodes)
    for report, tally in zip(analysis.nodes, interpreted.nodes, strict=True):
        assert report.counted, f"{report.op_type}: {report.problem}"
        for convention in ("dense", "effective"):
            formula = getattr(report, convention).subs(analysis.bindings).as_ints()
            counted = getattr(tally, convention).as_ints()
            assert formula == counted, f"{report.op_type} node {report.index} {convention}"


def test_every_op_with_a_cost_rule_has_an_interpreter_handler_and_back() -> None:
    """A formula nothing checks, or a handler no formula answers to, breaks the README's promise. With
    test_interpreter's guard that CASES use every handler, each rule is checked by the case test below."""
    assert sorted(set(RULES) - SUPPORTED_OPS) == [], "cost rules without an interpreter handler"
    assert sorted(SUPPORTED_OPS - set(RULES)) == [], "interpreter handlers without a cost rule"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_formulas_equal_interpreted_counts_for_every_op_case(case: Case) -> None:
    assert_nodes_agree(build(case, {}), case.inputs)


@pytest.mark.parametrize(("batch", "frames"), [(1, 1), (1, 4), (2, 3), (3, 2)])
def test_mel_graph_formulas_equal_interpreted_counts(batch: int, frames: int) -> None:
    samples = MEL.n_fft + MEL.hop * (frames - 1) + 3  # a few samples past the last frame: they cost nothing
    audio = (np.random.default_rng(frames).standard_normal((batch, samples)) * 3000).astype(np.float32)
    assert_nodes_agree(build_mel_model(MEL), {"input": audio}, batch=batch, samples=samples)


@pytest.mark.parametrize(("pads", "strides", "group", "bias"),
                         [([1, 2], [1], 1, True), ([0, 0], [2], 2, False), ([2, 1], [1], 1, False)])
def test_conv_on_a_constant_input_agrees(pads: list[int], strides: list[int], group: int, bias: bool) -> None:
    """A Conv whose input X is constant: zeros and ones in X drop products too, padding taps never do."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(len(pads) + strides[0] + group)
    x = rng.integers(-1, 3, (1, 2, 9)).astype(np.float32)
    w = rng.integers(-1, 3, (4, 2 // group, 3)).astype(np.float32)
    initializers = [numpy_helper.from_array(x, "x"), numpy_helper.from_array(w, "w")]
    if bias:
        initializers.append(numpy_helper.from_array(np.array([0, 1, 2, 0], np.float32), "b"))
    conv = helper.make_node("Conv", [i.name for i in initializers], ["c"], pads=pads, strides=strides, group=group)
    frames = (9 + sum(pads) - 3) // strides[0] + 1
    graph = helper.make_graph([conv, helper.make_node("Add", ["c", "z"], ["y"])], "const-input",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, frames])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert_nodes_agree(model, {"z": np.zeros((1, 4, frames), np.float32)})
