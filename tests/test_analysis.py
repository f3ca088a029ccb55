"""The analyzer on the mel graph: the input contract, exact counts, the refusal of too-short input, the JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from toolkit.analysis import analyze
from toolkit.analysis.coverage import measure
from toolkit.errors import ToolkitError
from toolkit.melgraph import MelParams, build_mel_model


@pytest.fixture(scope="module")
def one_second() -> dict:
    return analyze(batch=1, samples=16000).to_json()


def node_of(data: dict, op_type: str) -> list[dict]:
    return [n for n in data["nodes"] if n["op_type"] == op_type]


def test_one_second_costs_the_known_dense_counts(one_second: dict) -> None:
    dense = one_second["totals"]["dense"]
    assert dense["mul"] == 26_377_986
    assert dense["div"] == 3_104
    assert dense["special"] == {"log": 3_104}
    assert [c["dense"]["mul"] for c in node_of(one_second, "Conv")] == [12_763_648, 12_763_648]
    assert node_of(one_second, "MatMul")[0]["dense"]["mul"] == 797_728


def test_per_frame_and_per_second(one_second: dict) -> None:
    assert one_second["per_frame"]["frames"] == 97
    assert one_second["per_frame"]["hop"] == 160
    assert one_second["per_frame"]["dense"]["mul"] == 271_938
    assert one_second["per_frame"]["dense"]["div"] == 32
    assert one_second["per_second"]["frames_per_second"] == 100
    assert one_second["per_second"]["streaming"]["dense"]["mul"] == 27_193_800
    assert one_second["per_second"]["one_second_input"]["dense"]["mul"] == 26_377_986


def test_output_dims_are_formulas_found_by_propagation(one_second: dict) -> None:
    (out,) = one_second["outputs"]
    assert out["shape"] == ["batch_size", 1, "floor((samples - 512)/160) + 1", 32]
    assert out["declared_shape"] == ["time", 1, "Clipoutput_dim_2", 32]
    assert out["value_shape"] == [1, 1, 97, 32]
    assert one_second["inputs"] == [{"name": "input", "dtype": "FLOAT", "shape": ["batch_size", "samples"]}]
    assert one_second["constraints"] == ["samples >= 512"]
    assert one_second["smallest_input"] == {"batch_size": 1, "samples": 512}


def test_formulas_follow_the_parameters() -> None:
    params = MelParams(n_fft=256, win_length=200, hop=80, n_mels=40, fmax=7600.0)
    data = analyze(build_mel_model(params), batch=2, samples=8000).to_json()
    assert data["outputs"][0]["shape"] == ["batch_size", 1, "floor((samples - 256)/80) + 1", 40]
    assert data["constraints"] == ["samples >= 256"]
    frames = (8000 - 256) // 80 + 1
    bins = 129
    assert data["totals"]["dense"]["mul"] == 2 * frames * (2 * bins * 256 + 2 * bins + bins * 40 + 40)
    assert data["formulas"]["dense"]["mul"].endswith("*batch_size*(floor((samples - 256)/80) + 1)")


def test_effective_counts_skip_zero_taps_and_no_ops(one_second: dict) -> None:
    conv = node_of(one_second, "Conv")[0]
    assert conv["effective"]["mul"] < conv["dense"]["mul"]
    sub_zero = node_of(one_second, "Sub")[0]
    assert sub_zero["dense"]["add"] == 3_104 and sub_zero["effective"]["add"] == 0
    clip = node_of(one_second, "Clip")[0]
    assert (clip["dense"]["cmp"], clip["effective"]["cmp"]) == (6_208, 3_104)
    assert node_of(one_second, "MatMul")[0]["effective"]["mul"] == 229 * 97


def test_every_node_has_math_and_shapes(one_second: dict) -> None:
    assert all(n["counted"] and n["math"] for n in one_second["nodes"])
    conv = node_of(one_second, "Conv")[0]
    assert "sum_{j=0..511}" in conv["math"] and "160 t + j" in conv["math"]
    assert conv["output_shapes"] == [[1, 257, 97]]
    transposes = node_of(one_second, "Transpose")
    assert transposes[0]["bytes_moved"] == 257 * 97 * 4


def test_too_short_input_is_refused_by_the_api() -> None:
    with pytest.raises(ToolkitError, match="samples >= 512 for one frame"):
        analyze(samples=400)
    with pytest.raises(ToolkitError, match="must be a whole number >= 1"):
        analyze(batch=0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", "analyze", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_refuses_400_samples_with_one_line_and_exit_2() -> None:
    result = run_cli("--samples", "400")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "needs samples >= 512 for one frame" in result.stderr and "--samples 512" in result.stderr


def test_cli_json_matches_the_contract() -> None:
    result = run_cli("--samples", "1760", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("inputs", "outputs", "constraints", "nodes", "totals", "per_frame", "formulas"):
        assert key in data
    assert data["totals"]["dense"]["mul"] == 8 * 271_938
    node = data["nodes"][2]
    assert set(node) >= {"name", "op_type", "output_shapes", "math", "dense", "effective"}
    assert set(node["dense"]) == {"mul", "add", "div", "cmp", "special"}


def test_unknown_op_is_listed_as_not_counted() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Hardmax", ["r"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = analyze(model, batch=3, samples=None).to_json()
    assert data["not_counted"] == ["Hardmax_1"]
    assert data["totals"]["dense"]["cmp"] == 12


@pytest.mark.slow
def test_shape_rules_pass_onnx_node_test_cases() -> None:
    coverage = measure()
    assert len(coverage.passed) >= 881, sorted(coverage.failed.items())[:5]
    mel_ops = ("conv", "matmul", "pow", "clip", "log", "reduce_max", "unsqueeze", "transpose", "cast", "sub", "div")
    failing = [name for name in coverage.failed if any(name.startswith(f"test_{op}") for op in mel_ops)
               and "reduce_max_bool" not in name]
    assert failing == []


@pytest.mark.parametrize("name", ["int8-dynamic", "int8-conv-only", "dft-fused", "stft-op"])
def test_every_node_of_built_variants_is_counted(tmp_path, name: str) -> None:
    from toolkit.melgraph import default_model
    from toolkit.variants import build_variants

    (variant,) = build_variants(default_model(), tmp_path, names=[name])
    assert variant.status == "built", variant.reason
    data = analyze(variant.path, batch=1, samples=1760).to_json()
    assert data["not_counted"] == []
    assert data["totals"]["dense"]["mul"] > 0


def test_analyze_takes_a_vision_model_file(tmp_path) -> None:
    """The audio input rule belongs to the stages that feed audio; analyze counts any graph."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["y"], pads=[1, 1, 1, 1])], "vision",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights])
    path = tmp_path / "vision.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = run_cli(str(path), "--dim", "n=2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["outputs"][0]["value_shape"] == [2, 4, 16, 16]
    assert data["totals"]["dense"]["mul"] == 2 * 4 * 16 * 16 * 27
    assert data["totals"]["effective"]["mul"] == 0  # every weight is exactly 1: adds remain, muls do not


# --- shape arithmetic: sizes computed from the input's length --------------------------------------------------

def shape_graph(nodes: list, consts: dict, out_shape_of: str = "y", input_shape=("batch", "N")):
    """A [batch, N] float input 'x', integer constants, and the nodes; output `out_shape_of`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if isinstance(v, float) else np.int64), k)
             for k, v in consts.items()]
    graph = helper.make_graph(nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(out_shape_of, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def n(op: str, inputs: list[str], output: str, **attrs):
    from onnx import helper

    return helper.make_node(op, inputs, [output], name=output, **attrs)


def output_dims(analysis) -> list:
    import sympy as sp

    return [sp.sympify(d) for d in analysis.propagation.outputs[0].shape]


def test_pad_to_a_fixed_length_computed_from_shape_is_exact() -> None:
    """Whisper's 30 s pad: pads = (480 - N) * [0, 0, 0, 1]; the output is 480 long whatever N is."""
    model = shape_graph([n("Shape", ["x"], "s", start=1, end=2), n("Sub", ["full", "s"], "d"),
                         n("Mul", ["d", "unit"], "pads"), n("Pad", ["x", "pads"], "p"),
                         n("ReduceSumSquare", ["p"], "y", keepdims=0, axes=[-1])],
                        {"full": 480, "unit": [0, 0, 0, 1]})
    analysis = analyze(model, batch=2, samples=100)
    pad = next(r for r in analysis.nodes if r.op_type == "Pad")
    assert pad.counted and "480 - N" in pad.math
    assert [str(d) for d in pad.output_shapes[0]] == ["batch", "480"]
    # the shape arithmetic runs too: 1 sub, 4 mul
    assert analysis.totals("dense") == {"mul": 2 * 480 + 4, "add": 2 * 479 + 1}


def test_mod_slice_reshape_give_the_frame_count_as_a_formula() -> None:
    """WeSpeaker's framing: new_len = N - (N - 400) mod 160, x[:, 240:new_len] reshaped to [batch, -1, 160]."""
    import sympy as sp

    model = shape_graph([n("Shape", ["x"], "s", start=1, end=2), n("Squeeze", ["s"], "len"),
                         n("Sub", ["len", "win"], "over"), n("Mod", ["over", "hop"], "rest"),
                         n("Sub", ["len", "rest"], "new_len"), n("Unsqueeze", ["new_len", "zero"], "end"),
                         n("Slice", ["x", "start", "end", "one"], "cut"), n("Reshape", ["cut", "target"], "f"),
                         n("ReduceSum", ["f", "last"], "y", keepdims=0)],
                        {"win": 400, "hop": 160, "zero": [0], "start": [240], "one": [1], "target": [0, -1, 160],
                         "last": [-1]})
    analysis = analyze(model, batch=1, samples=16000)
    _, frames = output_dims(analysis)
    big_n = analysis.propagation.symbols["N"]
    assert sp.simplify(frames - (sp.floor((big_n - 400) / 160) + 1)) == 0
    assert analysis.value(frames) == 98
    assert analysis.frames is not None and analysis.frames.hop == 160
    assert analysis.totals("dense") == {"add": 98 * 159 + 2, "mod": 1}  # with the shape arithmetic
    slice_report = next(r for r in analysis.nodes if r.op_type == "Slice")
    assert slice_report.counted and "240:" in slice_report.math


def test_integer_division_of_a_length_truncates_and_records_its_assumption() -> None:
    """(N - 400) / 160 in int64: floor where the numerator is >= 0, which the analysis then requires."""
    model = shape_graph([n("Shape", ["x"], "s", start=1, end=2), n("Sub", ["s", "win"], "over"),
                         n("Div", ["over", "hop"], "q"), n("Concat", ["b", "q"], "shape", axis=0),
                         n("ConstantOfShape", ["shape"], "c"), n("Expand", ["x1", "shape"], "y")],
                        {"win": 400, "hop": 160, "b": [3], "x1": 1.5})
    analysis = analyze(model, samples=1000)
    assert [analysis.value(d) for d in output_dims(analysis)] == [3, 3]
    assert "N >= 400" in [c.text for c in analysis.constraints]
    with pytest.raises(ToolkitError, match="N=399 is too small"):
        analyze(model, samples=399)


def test_range_gather_where_max_on_shapes() -> None:
    """Range over a length, Gather of a dim, and a Where / Max choice between two sizes stay exact formulas."""
    model = shape_graph([n("Shape", ["x"], "s"), n("Gather", ["s", "one"], "len", axis=0),
                         n("Range", ["zero", "len", "step"], "r"), n("Greater", ["len", "limit"], "long"),
                         n("Where", ["long", "limit", "len"], "kept"), n("Max", ["kept", "eight"], "size"),
                         n("Unsqueeze", ["size", "zero1"], "shape"), n("Cast", ["r"], "rf", to=1),
                         n("Slice", ["x", "zero1", "shape", "one1"], "y")],
                        {"one": 1, "zero": 0, "step": 2, "limit": 100, "eight": 8, "zero1": [0], "one1": [1]})
    for samples, kept in ((50, 50), (300, 100), (9, 9)):
        analysis = analyze(model, batch=1, samples=samples)
        assert analysis.value(output_dims(analysis)[1]) == kept
        range_report = next(r for r in analysis.nodes if r.op_type == "Range")
        assert analysis.value(range_report.output_shapes[0][0]) == (samples + 1) // 2
    # x[:, :8] of 5 samples: sympy cannot compare max(..., 8) with N, so the in-range case was assumed: refused
    with pytest.raises(ToolkitError, match=r"Slice.*inside the axis"):
        analyze(model, batch=1, samples=5)


def if_model(condition_nodes: list, extra_inputs: list | None = None):
    """x [batch, N]; If(cond): then x * x, else sigmoid(x) then x[:, :8]; output y."""
    from onnx import TensorProto, helper

    def branch(name: str, nodes: list, out: str):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])

    then = branch("then", [n("Mul", ["x", "x"], "t")], "t")
    other = branch("else", [n("Sigmoid", ["x"], "s"), n("Slice", ["s", "zero", "eight", "one"], "e")], "e")
    model = shape_graph([*condition_nodes, n("If", ["cond"], "y", then_branch=then, else_branch=other)],
                        {"zero": [0], "eight": [8], "one": [1], "limit": 100})
    model.graph.input.extend(extra_inputs or [])
    return model


def test_if_on_a_length_is_decided_by_the_dims_and_reports_both_branches() -> None:
    import sympy as sp

    model = if_model([n("Shape", ["x"], "s", start=1, end=2), n("Squeeze", ["s"], "len"),
                      n("Greater", ["len", "limit"], "cond")])
    long, short = analyze(model, batch=2, samples=1000), analyze(model, batch=2, samples=50)
    (node,) = [r for r in long.nodes if r.op_type == "If"]
    assert node.counted and isinstance(node.dense["mul"], sp.Piecewise)
    assert long.totals("dense") == {"mul": 2000, "cmp": 1}
    assert short.totals("dense") == {"add": 100, "div": 100, "cmp": 1, "exp": 100}
    assert [long.value(d) for d in node.output_shapes[0]] == [2, 1000]
    assert [short.value(d) for d in node.output_shapes[0]] == [2, 8]
    data = long.to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["branches"]["condition"] == "cond = N > 100" and entry["branches"]["taken"] == "then"
    assert entry["branches"]["else"]["dense"]["special"] == {"exp": 2000}
    assert data["complete"] and data["depends_on_condition"] == []


def test_if_on_run_time_data_gives_bounds_and_a_fixed_branch_gives_that_path(capsys) -> None:
    from onnx import TensorProto, helper
    from rich.console import Console

    from toolkit.analysis.report import print_analysis

    model = if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    model.graph.input.remove(model.graph.input[-1])  # cond is computed from the audio: only data decides it
    model.graph.node.insert(0, n("ReduceMax", ["x"], "peak", keepdims=0))
    model.graph.node.insert(1, n("Greater", ["peak", "limit"], "cond"))
    analysis = analyze(model, batch=1, samples=20)
    data = analysis.to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["counted"] and entry["branches"]["taken"] is None
    assert entry["branches"]["then"]["dense"]["mul"] == 20
    assert entry["branches"]["else"]["dense"]["special"] == {"exp": 20}
    assert data["depends_on_condition"] == ["y"] and data["complete"] and not data["exact"]
    # at most: each kind at its dearer side (mul from then, add/div/exp from else); at least: the cheaper side
    assert entry["dense"]["mul"] == 20 and entry["dense"]["add"] == 20 and entry["dense"]["special"] == {"exp": 20}
    assert data["totals"]["dense"]["mul"] == 20 and data["totals_at_least"]["dense"]["mul"] == 0
    assert data["totals_at_least"]["dense"]["special"] == {}
    print_analysis(data, Console(width=200))
    out = capsys.readouterr().out
    assert "then branch: mul 20; else branch: add 20, div 20, exp 20" in out and "--branch y=then" in out
    fixed = analyze(model, batch=1, samples=20, branches={"y": "else"}).to_json()
    assert fixed["exact"] and "totals_at_least" not in fixed
    assert fixed["totals"]["dense"]["mul"] == 0 and fixed["totals"]["dense"]["special"] == {"exp": 20}
    assert next(e for e in fixed["nodes"] if e["op_type"] == "If")["branches"]["taken_by"] == "--branch"
    with pytest.raises(ToolkitError, match=r"'Mul_0' is not an If whose condition the data decides \(such nodes: y\)"):
        analyze(model, batch=1, samples=20, branches={"Mul_0": "then"})


def test_if_on_an_input_the_user_fixes_takes_that_branch() -> None:
    from onnx import TensorProto, helper

    model = if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    data = analyze(model, batch=1, samples=20, inputs={"cond": 1}).to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["branches"]["taken"] == "then" and data["exact"] and data["totals"]["dense"]["mul"] == 20


def test_scan_over_frames_counts_the_body_once_per_frame_as_a_formula() -> None:
    """x reshaped to [batch, N/160, 160], scanned along axis 1 with a running [batch, 160] sum as state."""
    import sympy as sp
    from onnx import TensorProto, helper

    step = helper.make_graph([n("Add", ["acc", "frame"], "next"), n("Mul", ["next", "frame"], "out")], "body",
                             [helper.make_tensor_value_info(v, TensorProto.FLOAT, None) for v in ("acc", "frame")],
                             [helper.make_tensor_value_info(v, TensorProto.FLOAT, None) for v in ("next", "out")])
    model = shape_graph([n("Reshape", ["x", "target"], "frames"), n("ReduceSum", ["frames", "one"], "acc0", keepdims=0),
                         helper.make_node("Scan", ["acc0", "frames"], ["last", "y"], name="scan", num_scan_inputs=1,
                                          body=step, scan_input_axes=[1], scan_output_axes=[1])],
                        {"target": [0, -1, 160], "one": [1]})
    analysis = analyze(model, batch=2, samples=1600)
    scan = next(r for r in analysis.nodes if r.op_type == "Scan")
    big_n, batch = analysis.propagation.symbols["N"], analysis.propagation.symbols["batch"]
    assert sp.simplify(scan.dense["mul"] - 160 * batch * big_n / 160) == 0
    assert [analysis.value(d) for d in scan.output_shapes[1]] == [2, 10, 160]
    assert analysis.value(scan.dense["add"]) == 2 * 160 * 10


def test_loop_whose_condition_the_body_computes_is_not_counted() -> None:
    from onnx import TensorProto, helper

    scalar = {"i": TensorProto.INT64, "go": TensorProto.BOOL, "more": TensorProto.BOOL}
    step = helper.make_graph([n("Less", ["i", "three"], "more"), n("Mul", ["v", "v"], "v2")], "body",
                             [helper.make_tensor_value_info(v, scalar.get(v, TensorProto.FLOAT), [] if v in scalar
                                                            else None) for v in ("i", "go", "v")],
                             [helper.make_tensor_value_info(v, scalar.get(v, TensorProto.FLOAT), [] if v in scalar
                                                            else None) for v in ("more", "v2")])
    model = shape_graph([helper.make_node("Loop", ["m", "", "x"], ["y"], name="loop", body=step)],
                        {"m": 10, "three": 3})
    data = analyze(model, batch=1, samples=4).to_json()
    (entry,) = data["nodes"]
    assert not entry["counted"] and "trip count is unknown before the run" in entry["problem"]


def test_lstm_over_a_symbolic_sequence_costs_per_step_times_steps() -> None:
    """Bidirectional LSTM, H 3, I 4, no bias: per step and direction 12 units x 7 products (6 adds), sigmoid on 9,
    tanh on 6, 9 mul + 3 add for the state; T x batch steps, two directions."""
    import numpy as np
    import sympy as sp
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.full(s, 0.5, np.float32), k) for k, s in (("w", (2, 12, 4)),
                                                                                    ("r", (2, 12, 3)))]
    graph = helper.make_graph([helper.make_node("LSTM", ["x", "w", "r"], ["y", "y_h"], name="lstm", hidden_size=3,
                                                direction="bidirectional")], "rnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    analysis = analyze(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), batch=None,
                       dims={"T": 5, "batch": 2})
    steps, batch = (analysis.propagation.symbols[k] for k in ("T", "batch"))
    (lstm,) = analysis.nodes
    expected = {"mul": 12 * 7 + 9, "add": 12 * 6 + 9 + 3, "div": 9, "exp": 9, "tanh": 6}
    assert {k: sp.simplify(v / (2 * steps * batch)) for k, v in lstm.dense.items()} == expected
    assert [str(d) for d in lstm.output_shapes[0]] == ["T", "2", "batch", "3"]


def lengths_and_rate_model():
    """x [batch, N], lens [batch] and sr [] (int64): y = x[:, :lens[0]] scaled, doubled if sr == 16000."""
    from onnx import TensorProto, helper

    def branch(name: str, op: str):
        return helper.make_graph([n(op, ["cut", "cut"], f"{name}_out")], name, [],
                                 [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)])

    model = shape_graph([n("Slice", ["x", "zero", "lens", "one"], "cut"), n("Equal", ["sr", "rate"], "cond"),
                         n("If", ["cond"], "y", then_branch=branch("then", "Mul"), else_branch=branch("else", "Add"))],
                        {"zero": [0], "one": [1], "rate": 16000})
    model.graph.input.extend([helper.make_tensor_value_info("lens", TensorProto.INT64, ["batch"]),
                              helper.make_tensor_value_info("sr", TensorProto.INT64, [])])
    return model


def test_lengths_default_to_the_samples_and_the_rate_to_the_sample_rate() -> None:
    analysis = analyze(lengths_and_rate_model(), batch=1, samples=300)
    data = analysis.to_json()
    lens = data["input_values"]["lens"]
    assert lens == {"value": "N", "at_dims": 300, "why": "default: lengths are the samples given"}
    assert data["input_values"]["sr"]["at_dims"] == 16000
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["branches"]["taken"] == "then" and entry["dense"]["mul"] == 300
    assert data["complete"]


def test_input_values_given_override_the_defaults() -> None:
    data = analyze(lengths_and_rate_model(), batch=1, samples=300, inputs={"lens": 120, "sr": 8000}).to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["branches"]["taken"] == "else" and entry["dense"]["add"] == 120
    assert data["input_values"]["sr"] == {"value": 8000, "at_dims": 8000, "why": "given with --input"}


@pytest.mark.parametrize(("given", "says"), [
    ({"rate": 1}, "input 'rate' is not an input of this model (its inputs: x, lens, sr)"),
    ({"x": 1}, "input 'x' is the audio input"),
    ({"sr": 1.5}, "input 'sr' is INT64: 1.5 is not a whole number"),
])
def test_bad_input_values_are_refused_in_one_line(given: dict, says: str) -> None:
    with pytest.raises(ToolkitError, match=re.escape(says)):
        analyze(lengths_and_rate_model(), samples=300, inputs=given)


def test_heavy_ops_agree_with_onnxruntime_s_real_shapes() -> None:
    """Conv, MatMul, Gemm (alpha, beta, C) and STFT on a [1, 64] signal: analyze's mul equals the products
    from the shapes onnxruntime ran (its trace leaves out the B it packs ahead), checked by hand."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from toolkit.analysis import crosscheck

    weights = {"w": np.ones((4, 1, 8)), "m": np.ones((4, 3)), "gw": np.ones((3, 4)), "gc": np.ones(4),
               "win": np.hanning(8), "axes": np.array([1]), "last": np.array([-1]), "step": np.array(4)}
    inits = [numpy_helper.from_array(v.astype(np.int64 if k in ("axes", "last", "step") else np.float32), k)
             for k, v in weights.items()]
    nodes = [n("Unsqueeze", ["x", "axes"], "x3"), n("Conv", ["x3", "w"], "c", strides=[4]),
             n("Transpose", ["c"], "ct", perm=[0, 2, 1]), n("MatMul", ["ct", "m"], "y"),
             n("Unsqueeze", ["x", "last"], "xs"), n("STFT", ["xs", "step", "win"], "s"),
             n("Gemm", ["g", "gw", "gc"], "z", alpha=2.0, beta=0.5)]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "s", "z")]
    graph = helper.make_graph(nodes, "heavy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "N"]),
                                              helper.make_tensor_value_info("g", TensorProto.FLOAT, [2, 3])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    analysis = analyze(model, samples=64)
    rows = {r.op_type: r for r in crosscheck.heavy_nodes(analysis)}
    # 15 frames: Conv 4 x 15 x 8; MatMul 15 x 3 x 4; STFT 15 x (8 window + 5 bins x 2 x 8); Gemm 2 x 4 x (3 + 2)
    assert {op: r.onnxruntime for op, r in rows.items()} == {"Conv": 480, "MatMul": 180, "STFT": 1320, "Gemm": 40}
    assert all(r.equal for r in rows.values())
    assert crosscheck.crosscheck_json(list(rows.values()))["equal"]
    matmul = next(node for node in model.graph.node if node.op_type == "MatMul")
    assert crosscheck.products(matmul, [(1, 16, 4), (4, 3)], [(1, 16, 3)]) == 192  # one frame more: 16 x 3 x 4
    assert not crosscheck.HeavyNode(3, "y", "MatMul", 180, 192).equal


def test_a_body_reading_the_enclosing_graph_waits_for_that_tensor() -> None:
    """The If is listed before the Mul whose output its branch reads (Silero VAD's nested Ifs read the
    outputs of earlier Ifs this way): the If must run after the Mul, and is then counted with its shape."""
    from onnx import TensorProto, helper

    def branch(name: str, op: str):
        return helper.make_graph([n(op, ["t", "t"], f"{name}_out")], name, [],
                                 [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)])

    model = shape_graph([n("If", ["cond"], "y", then_branch=branch("then", "Mul"), else_branch=branch("else", "Add")),
                         n("Mul", ["x", "x"], "t")], {})
    model.graph.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    data = analyze(model, batch=2, samples=10, inputs={"cond": 1}).to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert entry["counted"] and entry["output_shapes"] == [[2, 10]] and data["totals"]["dense"]["mul"] == 40


def test_an_if_on_the_dims_whose_branches_differ_in_rank_is_decided_at_those_dims() -> None:
    """Squeeze the batch axis when batch == 1, else keep it (Silero VAD's decoder): no formula spans a rank-1
    and a rank-2 output, so the dims decide, and the math says the formulas hold only where they do."""
    from onnx import TensorProto, helper

    def branch(name: str, nodes: list, out: str):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])

    then = branch("then", [n("Squeeze", ["x", "zero"], "sq"), n("Mul", ["sq", "sq"], "t")], "t")
    other = branch("else", [n("Add", ["x", "x"], "e")], "e")
    model = shape_graph([n("Shape", ["x"], "s", start=0, end=1), n("Squeeze", ["s"], "b"),
                         n("Equal", ["b", "one"], "cond"),
                         n("If", ["cond"], "y", then_branch=then, else_branch=other)], {"zero": [0], "one": 1})
    single, double = analyze(model, batch=1, samples=10).to_json(), analyze(model, batch=3, samples=10).to_json()
    (entry,) = [e for e in single["nodes"] if e["op_type"] == "If"]
    assert entry["counted"] and entry["output_shapes"] == [[10]] and "the formulas hold only where it is" in \
        entry["math"]
    assert single["totals"]["dense"]["mul"] == 10 and single["totals"]["dense"]["add"] == 0
    (entry,) = [e for e in double["nodes"] if e["op_type"] == "If"]
    assert entry["output_shapes"] == [[3, 10]] and double["totals"]["dense"]["add"] == 30


def test_a_branch_not_taken_that_cannot_be_propagated_is_reported_not_fatal() -> None:
    from onnx import TensorProto, helper

    def branch(name: str, nodes: list, out: str):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])

    then = branch("then", [n("Mul", ["x", "x"], "t")], "t")
    other = branch("else", [n("ReduceMean", ["x"], "e", axes=[5])], "e")  # axis 5 of a rank-2 tensor
    model = shape_graph([n("If", ["cond"], "y", then_branch=then, else_branch=other)], {})
    model.graph.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    data = analyze(model, batch=1, samples=10, inputs={"cond": 1}).to_json()
    (entry,) = [e for e in data["nodes"] if e["op_type"] == "If"]
    assert data["complete"] and entry["dense"]["mul"] == 10
    assert "out of range" in entry["branches"]["else"]["not_counted"]
    assert not analyze(model, batch=1, samples=10, inputs={"cond": 0}).nodes[0].counted
