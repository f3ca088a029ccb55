"""The counting interpreter: outputs equal onnxruntime's for every supported op, and counts equal hand counts.

Matching outputs prove the counted loops are the real computation; the hand-derived counts prove the loops count
what the README's convention says. Shapes stay tiny: every scalar operation is a Python call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.analysis.counts import Counts
from toolkit.analysis.interpreter import SUPPORTED_OPS, Interpretation, interpret, total_counts
from toolkit.errors import ToolkitError
from toolkit.melgraph import MelParams, build_mel_model, dft_kernels, mel_filterbank

RNG = np.random.default_rng(1234)
INF = np.float32(np.inf)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def positive(*shape: int) -> np.ndarray:
    return (np.abs(rand(*shape)) + 0.1).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f32(value: object) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def node(op: str, inputs: list[str], outputs: tuple[str, ...] = ("y",), **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, list(outputs), name=f"{op}_node", **attrs)


@dataclass
class Case:
    """A graph: `inputs` become graph inputs (fed at run time), `consts` become initializers (constants)."""

    nodes: list[onnx.NodeProto]
    inputs: dict[str, np.ndarray]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 17
    outputs: tuple[str, ...] = ("y",)


def build(case: Case, output_types: dict[str, int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        case.nodes,
        "case",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in case.inputs.items()
        ],
        [helper.make_tensor_value_info(n, output_types.get(n, TensorProto.FLOAT), None) for n in case.outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in case.consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)], ir_version=10)


def run_ort(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def check(case: Case, rtol: float = 1e-4, atol: float = 1e-5) -> Interpretation:
    """Interpret `case` and assert every output equals onnxruntime's (dtype, shape and values)."""
    result = interpret(build(case, {}), case.inputs)
    types = {n: helper.np_dtype_to_tensor_dtype(v.dtype) for n, v in result.outputs.items()}
    model = build(case, types)
    expected = run_ort(model, case.inputs)
    for name, want in zip(case.outputs, expected, strict=True):
        got = result.outputs[name]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
    return result


def only(result: Interpretation, op: str) -> tuple[dict[str, int], dict[str, int]]:
    """Dense and effective counts, as ints, of the single node of type `op`."""
    (tally,) = [t for t in result.nodes if t.op_type == op]
    return tally.dense.as_ints(), tally.effective.as_ints()


def unary(op: str, x: np.ndarray, opset: int = 17, **attrs: object) -> Case:
    return Case([node(op, ["x"], **attrs)], {"x": x}, opset=opset)


def binary(op: str, a: np.ndarray, b: np.ndarray, const_b: bool = False) -> Case:
    inputs, consts = ({"a": a}, {"b": b}) if const_b else ({"a": a, "b": b}, {})
    return Case([node(op, ["a", "b"])], inputs, consts)


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, op: str = "Conv", **attrs: object) -> Case:
    consts = {"w": w} if b is None else {"w": w, "b": b}
    return Case([node(op, ["x", *consts], **attrs)], {"x": x}, consts)


def reduce(op: str, x: np.ndarray, axes: list[int] | None, attr_axes: bool = False, **attrs: object) -> Case:
    """Axes as input (ReduceSum 13+, all reductions 18+) or as attribute (opset 13)."""
    if attr_axes:
        return Case([node(op, ["x"], axes=axes, **attrs)], {"x": x}, opset=13)
    names = ["x"] if axes is None else ["x", "axes"]
    consts = {} if axes is None else {"axes": i64(*axes)}
    return Case([node(op, names, **attrs)], {"x": x}, consts, opset=18)


def dft(x: np.ndarray, opset: int, length: int | None = None, axis: int | None = None, **attrs: object) -> Case:
    consts: dict[str, np.ndarray] = {}
    names = ["x", ""]
    if length is not None:
        consts["n"], names[1] = i64(length).reshape(()), "n"
    if axis is not None and opset >= 20:
        consts["axis"] = i64(axis).reshape(())
        names.append("axis")
    elif axis is not None:
        attrs["axis"] = axis
    return Case([node("DFT", names, **attrs)], {"x": x}, consts, opset=opset)


def stft(signal: np.ndarray, hop: int, window: np.ndarray | None, length: int | None, **attrs: object) -> Case:
    consts = {"hop": i64(hop).reshape(())}
    names = ["signal", "hop", "", ""]
    if window is not None:
        consts["window"], names[2] = window, "window"
    if length is not None:
        consts["length"], names[3] = i64(length).reshape(()), "length"
    return Case([node("STFT", names, **attrs)], {"signal": signal}, consts)


def split(x: np.ndarray, parts: int, sizes: list[int] | None = None, opset: int = 17, **attrs: object) -> Case:
    outs = tuple(f"y{i}" for i in range(parts))
    names, consts = (["x"], {}) if sizes is None else (["x", "split"], {"split": i64(*sizes)})
    return Case([node("Split", names, outs, **attrs)], {"x": x}, consts, opset=opset, outputs=outs)


def pad(x: np.ndarray, pads: list[int], mode: str, value: float | None = None) -> Case:
    consts = {"pads": i64(*pads)} if value is None else {"pads": i64(*pads), "value": f32(value)}
    return Case([node("Pad", ["x", *consts], mode=mode)], {"x": x}, consts)


def scatter(op: str, data: np.ndarray, indices: np.ndarray, updates: np.ndarray, **attrs: object) -> Case:
    """Data and updates fed at run time, the indices a constant; opset 18 has every reduction."""
    return Case([node(op, ["x", "c_i", "u"], **attrs)], {"x": data, "u": updates}, {"c_i": indices}, opset=18)


def generator(op: str, **scalars: np.ndarray) -> Case:
    """An op whose inputs are all constant scalars (Range): its output shape depends on their values."""
    return Case([node(op, list(scalars))], {}, {n: v.reshape(()) for n, v in scalars.items()})


def with_consts(op: str, x: np.ndarray, consts: dict[str, np.ndarray], opset: int = 17, **attrs: object) -> Case:
    """Op on graph input x plus constant inputs, in `consts` order ('' keeps an optional slot empty)."""
    names = ["x", *(n if n.startswith("c") else "" for n in consts)]
    real = {n: v for n, v in consts.items() if n.startswith("c")}
    return Case([node(op, names, **attrs)], {"x": x}, real, opset=opset)


def body(name: str, nodes: list[onnx.NodeProto], inputs: list[str], outputs: list[str],
         scalars: dict[str, int] | None = None) -> onnx.GraphProto:
    """A control-flow body: floats of unknown shape, except the scalars of the types in `scalars`."""
    types = scalars or {}

    def info(n: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), [] if n in types else None)

    return helper.make_graph(nodes, name, [info(i) for i in inputs], [info(o) for o in outputs])


def if_case(condition: list[onnx.NodeProto], consts: dict[str, np.ndarray], x: np.ndarray) -> Case:
    """then: x * x; else: sigmoid(x); both read x from the enclosing graph."""
    then = body("then", [node("Mul", ["x", "x"], ("t",))], [], ["t"])
    other = body("else", [node("Sigmoid", ["x"], ("e",))], [], ["e"])
    return Case([*condition, node("If", ["cond"], then_branch=then, else_branch=other)], {"x": x}, consts)


SCAN_BODY = body("scan_body", [node("Add", ["s_in", "x_t"], ("s_out",)), node("Mul", ["s_out", "x_t"], ("y_t",))],
                 ["s_in", "x_t"], ["s_out", "y_t"])
LOOP_BODY = body("loop_body", [node("Identity", ["cond_in"], ("cond_out",)), node("Mul", ["v_in", "w"], ("v_out",)),
                               node("Add", ["v_out", "v_out"], ("scan",))],
                 ["i", "cond_in", "v_in"], ["cond_out", "v_out", "scan"],
                 {"i": TensorProto.INT64, "cond_in": TensorProto.BOOL, "cond_out": TensorProto.BOOL})


def sparse(*shape: int) -> np.ndarray:
    """Random weights with exact 0s and 1s in them, for the effective counts."""
    w = rand(*shape).reshape(-1)
    w[::3], w[1::5] = 0.0, 1.0
    return w.reshape(shape)


def rnn(op: str, x: np.ndarray, hidden: int, directions: int = 1, bias: bool = True, peephole: bool = False,
        states: bool = False, weights=rand, **attrs: object) -> Case:
    """LSTM (4 gates) or GRU (3): X [seq, batch, in] fed at run time, weights as constants."""
    gates = 4 if op == "LSTM" else 3
    batch = x.shape[1]
    consts = {"c_w": weights(directions, gates * hidden, x.shape[-1]), "c_r": weights(directions, gates * hidden,
                                                                                       hidden)}
    names = ["x", "c_w", "c_r", "c_b" if bias else "", ""]
    if bias:
        consts["c_b"] = weights(directions, 2 * gates * hidden)
    inputs = {"x": x}
    if states:
        shape = (directions, batch, hidden)
        inputs.update({"h0": rand(*shape)} | ({"c0": rand(*shape)} if op == "LSTM" else {}))
        names += ["h0", "c0"] if op == "LSTM" else ["h0"]
    if peephole:
        names += [""] * (7 - len(names)) + ["c_p"]
        consts["c_p"] = weights(directions, 3 * hidden)
    outs = ("y", "y_h", "y_c") if op == "LSTM" else ("y", "y_h")
    return Case([node(op, names, outs, hidden_size=hidden, **attrs)], inputs, consts, outputs=outs)


REDUCE_OPS = [
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2",
    "ReduceLogSumExp",
]  # fmt: skip

CASES = {
    # Sums of products.
    "conv1d-stride": conv(rand(1, 1, 10), rand(2, 1, 3), strides=[2]),
    "conv2d-group-dilation-pads-bias": conv(
        rand(2, 4, 5, 6), rand(4, 2, 2, 3), rand(4), group=2, dilations=[1, 2], pads=[1, 0, 0, 1]
    ),
    "conv2d-same-upper": conv(rand(1, 2, 5, 5), rand(3, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER"),
    "conv1d-same-lower": conv(rand(1, 2, 7), rand(2, 2, 4), rand(2), strides=[2], auto_pad="SAME_LOWER"),
    "conv1d-valid-depthwise": conv(rand(1, 3, 9), rand(3, 1, 3), group=3, auto_pad="VALID", strides=[3]),
    "conv3d-pads": conv(rand(1, 2, 3, 4, 3), rand(2, 2, 2, 3, 2), rand(2), pads=[1, 0, 1, 0, 1, 1]),
    "convT1d-stride-bias": conv(rand(1, 2, 4), rand(2, 3, 3), rand(3), op="ConvTranspose", strides=[2]),
    "convT2d-group-pads-outpad-dilation": conv(
        rand(1, 2, 3, 3),
        rand(2, 1, 3, 2),
        op="ConvTranspose",
        strides=[2, 1],
        pads=[1, 0, 0, 1],
        output_padding=[1, 0],
        group=2,
        dilations=[1, 2],
    ),
    "convT1d-same-upper": conv(rand(1, 1, 4), rand(1, 2, 3), op="ConvTranspose", strides=[2], auto_pad="SAME_UPPER"),
    "convT1d-same-lower": conv(rand(1, 1, 4), rand(1, 2, 4), op="ConvTranspose", strides=[2], auto_pad="SAME_LOWER"),
    "convT1d-output-shape": conv(rand(1, 1, 3), rand(1, 1, 3), op="ConvTranspose", strides=[2], output_shape=[6]),
    "matmul-2d": binary("MatMul", rand(3, 4), rand(4, 2)),
    "matmul-batch-broadcast": binary("MatMul", rand(2, 1, 3, 4), rand(3, 4, 2), const_b=True),
    "matmul-1d-left": binary("MatMul", rand(4), rand(2, 4, 3)),
    "matmul-1d-right": binary("MatMul", rand(2, 3, 4), rand(4)),
    "gemm-trans-alpha-beta": Case(
        [node("Gemm", ["a", "b", "c"], transA=1, transB=1, alpha=0.5, beta=2.0)],
        {"a": rand(4, 3), "b": rand(2, 4)},
        {"c": rand(2)},
    ),
    "gemm-no-c": Case([node("Gemm", ["a", "b"])], {"a": rand(3, 4), "b": rand(4, 2)}),
    "gemm-c-scalar": Case(
        [node("Gemm", ["a", "b", "c"], beta=0.5)], {"a": rand(2, 3), "b": rand(3, 2), "c": rand(1, 1)}
    ),
    # Elementwise, broadcasting, variadic.
    "add": binary("Add", rand(2, 3, 4), rand(3, 1)),
    "sub": binary("Sub", rand(4), rand(2, 1, 4), const_b=True),
    "mul": binary("Mul", rand(2, 3), rand(1)),
    "div": binary("Div", rand(3, 4), positive(4)),
    "pow-int-exponent": binary("Pow", rand(2, 3), f32([3.0]), const_b=True),
    "pow-float-exponent": binary("Pow", positive(2, 3), f32(0.5), const_b=True),
    "pow-input-exponent": binary("Pow", positive(2, 3), rand(3)),
    "add-int64": binary("Add", i64(1, 2, 3), i64(10)),
    "div-int64": binary("Div", i64(7, -7, 9), i64(2)),
    "sum": Case([node("Sum", ["a", "b", "c"])], {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}),
    "mean": Case([node("Mean", ["a", "b", "c"])], {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}),
    "max": Case([node("Max", ["a", "b", "c"])], {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}),
    "min": Case([node("Min", ["a", "b"])], {"a": rand(2, 3), "b": rand(3)}),
    "relu": unary("Relu", rand(2, 5)),
    "sigmoid": unary("Sigmoid", rand(3, 4)),
    "tanh": unary("Tanh", rand(3, 4)),
    "leaky-relu": unary("LeakyRelu", rand(3, 4), alpha=0.1),
    "leaky-relu-alpha-2": unary("LeakyRelu", rand(3, 4), alpha=2.0),
    "log": unary("Log", positive(3, 4)),
    "exp": unary("Exp", rand(3, 4)),
    "sqrt": unary("Sqrt", positive(3, 4)),
    "abs": unary("Abs", rand(3, 4)),
    "neg": unary("Neg", rand(3, 4)),
    "not": unary("Not", rand(3, 4) > 0),
    "reciprocal": unary("Reciprocal", positive(3, 4)),
    "erf": unary("Erf", rand(3, 4)),
    "floor": unary("Floor", rand(3, 4) * 3),
    "ceil": unary("Ceil", rand(3, 4) * 3),
    "round-half-even": unary("Round", f32([[0.5, 1.5, 2.5, -0.5], [-1.5, 2.4, -2.6, 3.0]])),
    "softplus": unary("Softplus", rand(3, 4) * 3),
    "equal-int64": binary("Equal", i64(1, 2, 3, 2), i64(2)),
    "less": binary("Less", rand(2, 3), rand(3)),
    "less-or-equal-ties": binary("LessOrEqual", f32([[1, 2, 3], [3, 2, 1]]), f32([2, 2, 2])),
    "greater": binary("Greater", rand(2, 3, 1), rand(4), const_b=True),
    "greater-or-equal-ties": binary("GreaterOrEqual", i64(1, 2, 3), i64(2)),
    "where": Case([node("Where", ["c", "a", "b"])], {"c": RNG.random((2, 3)) > 0.5, "a": rand(2, 3), "b": rand(3)}),
    "mod-int64": binary("Mod", i64(7, -7, 7, -7, 6), i64(3, 3, -3, -3, 3)),
    "mod-int32-fmod": Case([node("Mod", ["a", "b"], fmod=1)],
                           {"a": np.array([7, -7, 7, -7], np.int32), "b": np.array([3, 3, -3, -3], np.int32)}),
    "mod-float-fmod": Case([node("Mod", ["a", "b"], fmod=1)], {"a": rand(2, 3) * 5, "b": positive(3)}),
    "mod-float-floor-opset28": Case([node("Mod", ["a", "b"])],
                                    {"a": f32([5.5, -5.5, 5.5, -5.5]), "b": f32([2, 2, -2, -2])}, opset=28),
    "clip-opset6": unary("Clip", rand(3, 4), opset=6, min=-0.5, max=0.5),
    "clip-min-only": with_consts("Clip", rand(3, 4), {"c_min": f32(-0.2)}),
    "clip-both": with_consts("Clip", rand(3, 4), {"c_min": f32(-0.2), "c_max": f32(0.3)}),
    "clip-max-only": with_consts("Clip", rand(3, 4), {"": f32(0), "c_max": f32(0.3)}),
    # Rows.
    "softmax-axis1": unary("Softmax", rand(2, 3, 4), axis=1),
    "softmax-last": unary("Softmax", rand(3, 5)),
    "softmax-opset11-coerced": unary("Softmax", rand(2, 3, 4), opset=11, axis=1),
    "log-softmax-axis1": unary("LogSoftmax", rand(2, 3, 4), axis=1),
    "log-softmax-opset11-coerced": unary("LogSoftmax", rand(2, 3, 4) * 10, opset=11, axis=1),
    "batchnorm-3d": with_consts(
        "BatchNormalization",
        rand(2, 3, 4),
        {"c_scale": rand(3), "c_b": rand(3), "c_mean": rand(3), "c_var": positive(3)},
        epsilon=1e-3,
    ),
    "batchnorm-4d": with_consts(
        "BatchNormalization",
        rand(1, 2, 3, 3),
        {"c_scale": rand(2), "c_b": rand(2), "c_mean": rand(2), "c_var": positive(2)},
    ),
    "layernorm-last-bias": with_consts("LayerNormalization", rand(2, 3, 5), {"c_s": rand(5), "c_b": rand(5)}),
    "layernorm-axis1-no-bias": with_consts("LayerNormalization", rand(2, 3, 4), {"c_s": rand(3, 4)}, axis=1),
    # Pools.
    "maxpool-pads-strides": unary("MaxPool", rand(1, 2, 5, 6), kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1]),
    "maxpool-ceil-dilation": unary(
        "MaxPool", rand(1, 1, 7, 7), kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 1], ceil_mode=1
    ),
    "maxpool-1d-same": unary("MaxPool", rand(1, 2, 7), kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER"),
    "avgpool-pads-exclude": unary("AveragePool", rand(1, 2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "avgpool-pads-include": unary(
        "AveragePool", rand(1, 2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1
    ),
    "avgpool-ceil-include": unary(
        "AveragePool", rand(1, 1, 6), kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1, count_include_pad=1
    ),
    "avgpool-ceil-exclude": unary("AveragePool", rand(1, 1, 6, 5), kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1),
    "avgpool-dilations-opset19": unary(
        "AveragePool", rand(1, 1, 7, 6), opset=19, kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 0, 0]
    ),
    "maxpool-same-lower": unary("MaxPool", rand(1, 1, 6, 5), kernel_shape=[2, 3], auto_pad="SAME_LOWER"),
    "global-avgpool": unary("GlobalAveragePool", rand(2, 3, 4, 5)),
    "global-maxpool": unary("GlobalMaxPool", rand(2, 3, 4, 5)),
    # Reductions.
    **{f"{op}-axes-input": reduce(op, rand(2, 3, 4), [0, -1], keepdims=0) for op in REDUCE_OPS},
    **{f"{op}-all": reduce(op, rand(2, 3, 4), None) for op in REDUCE_OPS},
    **{f"{op}-attr": reduce(op, rand(2, 3, 4), [1], attr_axes=op != "ReduceSum") for op in REDUCE_OPS},
    "reducesum-noop": reduce("ReduceSum", rand(2, 3), [], noop_with_empty_axes=1),
    "ReduceLogSum-axes-input": reduce("ReduceLogSum", positive(2, 3, 4), [0, -1], keepdims=0),
    "ReduceLogSum-all": reduce("ReduceLogSum", positive(2, 3, 4), None),
    "ReduceLogSum-attr": reduce("ReduceLogSum", positive(2, 3, 4), [1], attr_axes=True),
    # DFT and STFT.
    "dft17-real-onesided": dft(rand(2, 8, 1), 17, onesided=1),
    "dft17-complex-inverse-axis2": dft(rand(1, 3, 6, 2), 17, axis=2, inverse=1),
    "dft17-real-padded": dft(rand(1, 5, 1), 17, length=8),
    "dft20-complex-axis1-truncated": dft(rand(2, 7, 3, 2), 20, length=5, axis=1),
    "dft20-real-default-axis": dft(rand(2, 3, 6, 1), 20),
    "dft20-negative-axis-onesided": dft(rand(2, 5, 3, 1), 20, axis=-3, onesided=1),
    "stft-window": stft(rand(2, 20, 1), 4, positive(8), None),
    "stft-no-window-twosided": stft(rand(1, 16, 1), 5, None, 6, onesided=0),
    "stft-complex": stft(rand(1, 14, 2), 3, positive(6), 6, onesided=0),
    # Data movement.
    "reshape": with_consts("Reshape", rand(2, 3, 4), {"c": i64(0, -1, 2)}),
    "reshape-allowzero": with_consts("Reshape", rand(2, 0, 3), {"c": i64(3, 0, 2)}, opset=14, allowzero=1),
    "flatten": unary("Flatten", rand(2, 3, 4), axis=-1),
    "flatten-0": unary("Flatten", rand(2, 3), axis=0),
    "squeeze-axes": with_consts("Squeeze", rand(2, 1, 3, 1), {"c": i64(-1)}),
    "squeeze-all": unary("Squeeze", rand(1, 3, 1)),
    "squeeze-opset11": unary("Squeeze", rand(1, 3, 1), opset=11, axes=[0]),
    "unsqueeze": with_consts("Unsqueeze", rand(2, 3), {"c": i64(0, -1)}),
    "unsqueeze-opset11": unary("Unsqueeze", rand(2, 3), opset=11, axes=[1]),
    "transpose": unary("Transpose", rand(2, 3, 4), perm=[1, 2, 0]),
    "transpose-default": unary("Transpose", rand(2, 3, 4)),
    "concat": Case([node("Concat", ["a", "b"], axis=-1)], {"a": rand(2, 3), "b": rand(2, 2)}),
    "slice": with_consts(
        "Slice", rand(5, 6), {"c_s": i64(1, -1), "c_e": i64(4, -100), "c_a": i64(0, 1), "c_t": i64(2, -2)}
    ),
    "slice-clamped": with_consts("Slice", rand(5, 6), {"c_s": i64(-100), "c_e": i64(100)}),
    "gather": with_consts("Gather", rand(4, 3), {"c": np.array([[0, -1], [2, 1]], dtype=np.int64)}, axis=0),
    "gather-axis1": with_consts("Gather", rand(4, 3), {"c": i64(2, 0)}, axis=1),
    "split-sizes": split(rand(2, 7), 2, [3, 4], axis=1),
    "split-equal": split(rand(6, 2), 3),
    "split-num-outputs": split(rand(7, 2), 3, opset=18, num_outputs=3),
    "pad-constant": pad(rand(2, 3), [1, 0, 2, 1], "constant", 1.5),
    "pad-reflect": pad(rand(3, 4), [1, 2, 1, 1], "reflect"),
    "pad-edge-negative": pad(rand(3, 4), [2, -1, 0, 1], "edge"),
    "pad-default-value-axes": with_consts(
        "Pad", rand(2, 3, 2), {"c_p": i64(1, 2), "": f32(0), "c_a": i64(-2)}, opset=18
    ),
    "cast": unary("Cast", rand(2, 3) * 4, to=TensorProto.INT32),
    "identity": unary("Identity", rand(2, 3)),
    "constant": Case(
        [node("Constant", [], ("k",), value=numpy_helper.from_array(rand(2, 3))), node("Add", ["x", "k"])],
        {"x": rand(2, 3)},
    ),
    "constant-floats": Case(
        [node("Constant", [], ("k",), value_floats=[1.0, 2.0]), node("Mul", ["x", "k"])], {"x": rand(2)}
    ),
    "constant-of-shape": Case(
        [node("ConstantOfShape", ["s"], ("k",), value=numpy_helper.from_array(f32([2.5]))), node("Add", ["x", "k"])],
        {"x": rand(2, 3)},
        {"s": i64(2, 3)},
    ),
    "shape-start-end": Case([node("Shape", ["x"], start=1, end=-1)], {"x": rand(2, 3, 4, 5)}),
    "expand": with_consts("Expand", rand(3, 1), {"c": i64(2, 1, 4)}),
    "tile": with_consts("Tile", rand(2, 3), {"c": i64(2, 3)}),
    "size": unary("Size", rand(2, 3, 4)),
    "dropout-inference-mask": Case([node("Dropout", ["x"], ("y", "mask"))], {"x": rand(2, 3)}, opset=13,
                                   outputs=("y", "mask")),
    "dropout-ratio": with_consts("Dropout", rand(2, 3), {"c_ratio": f32(0.3)}, opset=13),
    "range-int64-negative-delta": generator("Range", s=i64(10), l=i64(-4), d=i64(-3)),
    "range-float": generator("Range", s=f32(0.5), l=f32(3.0), d=f32(0.75)),
    "range-empty": generator("Range", s=i64(3), l=i64(1), d=i64(1)),
    # Gathers and scatters by index tensors.
    "gather-elements-axis0": with_consts("GatherElements", rand(3, 4),
                                         {"c": np.array([[0, 2, -1, 1], [2, 0, 0, 1]], np.int64)}),
    "gather-elements-axis-last": with_consts("GatherElements", rand(3, 4),
                                             {"c": np.array([[3, 0], [1, 1], [-4, 2]], np.int64)}, axis=-1),
    "gather-nd": with_consts("GatherND", rand(2, 3, 4), {"c": np.array([[0, 1], [1, -1]], np.int64)}),
    "gather-nd-batch-dims": with_consts("GatherND", rand(2, 3, 4), {"c": np.array([[[2], [0]], [[1], [1]]], np.int64)},
                                        batch_dims=1),
    "scatter-elements-none": scatter("ScatterElements", rand(3, 4), np.array([[1, 3], [0, 2], [2, -1]], np.int64),
                                     rand(3, 2), axis=1),
    **{f"scatter-elements-{r}": scatter("ScatterElements", rand(3, 4), np.array([[1, 1], [0, 0], [2, 1]], np.int64),
                                        rand(3, 2), reduction=r) for r in ("add", "mul", "max", "min")},
    "scatter-nd-slices": scatter("ScatterND", rand(4, 3), np.array([[2], [0]], np.int64), rand(2, 3)),
    **{f"scatter-nd-{r}": scatter("ScatterND", rand(2, 3), np.array([[1, 2], [0, 0], [1, 2]], np.int64), rand(3),
                                  reduction=r) for r in ("add", "mul", "max", "min")},
    # Quantization, as onnxruntime.quantization writes it.
    "quantize-linear-uint8": with_consts("QuantizeLinear", rand(2, 5) * 3, {"c_scale": f32(0.05),
                                                                              "c_zp": np.array(128, np.uint8)}),
    "quantize-linear-int8-per-axis": with_consts(
        "QuantizeLinear", rand(2, 3, 4), {"c_scale": f32([0.02, 1.0, 0.1]), "c_zp": np.array([0, 3, -2], np.int8)},
        axis=1),
    "dequantize-linear": Case([node("DequantizeLinear", ["q", "c_scale", "c_zp"])],
                              {"q": RNG.integers(0, 255, (3, 4)).astype(np.uint8)},
                              {"c_scale": f32(0.1), "c_zp": np.array(0, np.uint8)}),
    "dequantize-linear-per-axis": Case([node("DequantizeLinear", ["q", "c_scale", "c_zp"], axis=0)],
                                       {"q": RNG.integers(-100, 100, (3, 4)).astype(np.int8)},
                                       {"c_scale": f32([0.1, 1.0, 0.0]), "c_zp": np.array([1, 0, -3], np.int8)}),
    "dynamic-quantize-linear": Case([node("DynamicQuantizeLinear", ["x"], ("y", "s", "z"))], {"x": rand(3, 4) + 0.5},
                                    outputs=("y", "s", "z")),
    "conv-integer": Case([node("ConvInteger", ["q", "c_w", "q_zp", "c_wzp"])],
                         {"q": RNG.integers(0, 255, (1, 2, 9)).astype(np.uint8), "q_zp": np.array(7, np.uint8)},
                         {"c_w": np.array([[[1, 0, 3], [0, 0, 2]], [[5, 5, 0], [1, 2, 3]]], np.uint8),
                          "c_wzp": np.array(0, np.uint8)}, opset=13),
    "matmul-integer": Case([node("MatMulInteger", ["q", "c_w", "q_zp", "c_wzp"])],
                           {"q": RNG.integers(0, 255, (3, 4)).astype(np.uint8), "q_zp": np.array(120, np.uint8)},
                           {"c_w": RNG.integers(-3, 3, (4, 2)).astype(np.int8),
                            "c_wzp": np.array([0, 1], np.int8)}),
    # Control flow: bodies see the enclosing scope; their counts are the node's.
    "if-constant-condition": if_case([], {"cond": np.array(True)}, rand(2, 3)),
    "if-condition-from-shape": if_case([node("Size", ["x"], ("n",)), node("Greater", ["n", "ten"], ("cond",))],
                                       {"ten": i64(10).reshape(())}, rand(2, 3)),
    "scan-running-sum": Case([node("Scan", ["s0", "xs"], ("s", "ys"), num_scan_inputs=1, body=SCAN_BODY)],
                             {"s0": rand(2), "xs": rand(4, 2)}, outputs=("s", "ys")),
    "scan-axis1-reversed": Case([node("Scan", ["s0", "xs"], ("s", "ys"), num_scan_inputs=1, body=SCAN_BODY,
                                      scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[1])],
                                {"s0": rand(2), "xs": rand(2, 3)}, outputs=("s", "ys")),
    # Recurrences: the ONNX formulas unit by unit.
    "lstm-forward-defaults": rnn("LSTM", rand(3, 2, 4), 2),
    "lstm-sparse-bidirectional-peephole-clip-states": rnn(
        "LSTM", rand(2, 1, 3), 3, 2, peephole=True, states=True, weights=sparse, clip=0.7, direction="bidirectional"),
    "lstm-reverse-relu-no-bias": rnn("LSTM", rand(2, 3, 3), 2, bias=False, states=True, direction="reverse",
                                     activations=["Relu", "Tanh", "Tanh"]),
    "gru-forward-defaults": rnn("GRU", rand(3, 2, 4), 2),
    "gru-sparse-reverse-linear-before-reset": rnn("GRU", rand(3, 1, 2), 3, weights=sparse, states=True,
                                                  direction="reverse", linear_before_reset=1),
    "gru-bidirectional-clip": rnn("GRU", rand(2, 3, 2), 2, 2, weights=sparse, clip=0.5, direction="bidirectional"),
    "loop-fixed-trips": Case([node("Loop", ["m", "keep", "v0"], ("v", "scans"), body=LOOP_BODY)], {"v0": rand(2)},
                             {"m": i64(3).reshape(()), "keep": np.array(True), "w": f32([0.5, 2.0])},
                             outputs=("v", "scans")),
}


def test_every_op_of_the_brief_is_supported() -> None:
    ops = {n.op_type for case in CASES.values() for n in case.nodes}
    assert ops == SUPPORTED_OPS - {"Sin", "Cos"}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_outputs_match_onnxruntime(case: Case) -> None:
    check(case)


def test_sin_cos_match_onnxruntime() -> None:
    check(Case([node("Sin", ["x"], ("s",)), node("Cos", ["s"])], {"x": rand(3, 4)}))


# --- exact counts, derived by hand ----------------------------------------------------------------------------


def test_conv_counts_per_output_element() -> None:
    # out [1, 2, 4]: 8 elements x K = 3 taps -> 24 mul and 8 x 2 = 16 add.
    dense, effective = only(check(CASES["conv1d-stride"]), "Conv")
    assert dense == effective == {"mul": 24, "add": 16}


def test_conv_bias_adds_one_per_element_unless_zero() -> None:
    w = rand(2, 1, 3)
    dense, effective = only(check(conv(rand(1, 1, 10), w, rand(2), strides=[2])), "Conv")
    assert dense == effective == {"mul": 24, "add": 24}
    dense, effective = only(check(conv(rand(1, 1, 10), w, f32([0.0, 0.0]), strides=[2])), "Conv")
    assert dense == {"mul": 24, "add": 24} and effective == {"mul": 24, "add": 16}


def test_conv_with_half_its_weights_zero_halves_effective_mul() -> None:
    w = rand(2, 1, 4)
    w[:, :, 1::2] = 0.0  # 2 of 4 taps per filter; out [1, 2, 4] = 8 elements
    dense, effective = only(check(conv(rand(1, 1, 10), w, strides=[2])), "Conv")
    assert dense == {"mul": 32, "add": 24}
    assert effective == {"mul": 16, "add": 8}  # 2 terms per element: 2 mul, 1 add


def test_conv_unit_weights_keep_adds_drop_muls() -> None:
    dense, effective = only(check(conv(rand(1, 1, 6), np.ones((1, 1, 3), np.float32))), "Conv")
    assert dense == {"mul": 12, "add": 8} and effective == {"add": 8}


def test_conv_padding_taps_are_counted() -> None:
    # out [1, 1, 5] with pads 1+1: 5 x 3 taps, the two edge padding taps included.
    dense, _ = only(check(conv(rand(1, 1, 5), rand(1, 1, 3), pads=[1, 1])), "Conv")
    assert dense == {"mul": 15, "add": 10}


def test_conv_transpose_scatter_counts() -> None:
    # 3 input elements x 2 filters x 2 taps = 12 products, one add each; bias adds one per output: 2 x 6.
    dense, effective = only(
        check(conv(rand(1, 1, 3), rand(1, 2, 2), rand(2), op="ConvTranspose", strides=[2])), "ConvTranspose"
    )
    assert dense == effective == {"mul": 12, "add": 24}
    w = np.array([[[0.0, 1.0], [2.0, 3.0]]], dtype=np.float32)
    _, effective = only(check(conv(rand(1, 1, 3), w, op="ConvTranspose", strides=[2])), "ConvTranspose")
    assert effective == {"mul": 6, "add": 9}  # zero tap: 3 products gone; unit tap: 3 muls gone


def test_conv_transpose_counts_cropped_products() -> None:
    # Full output 2*(4-1)+3 = 9, pads 1+1 crop it to 7; the 4 x 3 products all count.
    dense, _ = only(
        check(conv(rand(1, 1, 4), rand(1, 1, 3), op="ConvTranspose", strides=[2], pads=[1, 1])), "ConvTranspose"
    )
    assert dense == {"mul": 12, "add": 12}


def test_matmul_and_gemm_counts() -> None:
    dense, _ = only(check(binary("MatMul", rand(2, 3), rand(3, 4))), "MatMul")
    assert dense == {"mul": 24, "add": 16}
    # A' [3, 4] x B' [4, 2]: 6 outputs of K = 4 mul, + alpha, + beta; K - 1 adds, + 1 for C.
    dense, effective = only(check(CASES["gemm-trans-alpha-beta"]), "Gemm")
    assert dense == effective == {"mul": 6 * (4 + 2), "add": 6 * 4}
    zero_c = Case([node("Gemm", ["a", "b", "c"], beta=2.0)], {"a": rand(2, 3), "b": rand(3, 2)}, {"c": f32([0, 0])})
    dense, effective = only(check(zero_c), "Gemm")
    assert dense == {"mul": 4 * 4, "add": 4 * 3} and effective == {"mul": 4 * 3, "add": 4 * 2}


def test_matmul_zero_and_unit_constant_factors() -> None:
    w = np.array([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0]], dtype=np.float32)  # per output column: 1 or 2 zeros
    dense, effective = only(check(binary("MatMul", rand(2, 3), w, const_b=True)), "MatMul")
    assert dense == {"mul": 12, "add": 8}
    # column 0: terms {1.0 (unit)} -> 0 mul, 0 add; column 1: {1.0, 2.0, 3.0} -> 2 mul, 2 add; two rows.
    assert effective == {"mul": 4, "add": 4}


def test_elementwise_constant_identities_are_skipped() -> None:
    cases = {
        "Add": f32([0.0, 2.0, 0.0]),  # 2 of 3 columns skipped, over 2 rows
        "Sub": f32([0.0, 2.0, 0.0]),
        "Mul": f32([1.0, 2.0, 0.0]),
        "Div": f32([1.0, 2.0, 1.0]),
    }
    kind = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "div"}
    for op, b in cases.items():
        dense, effective = only(check(binary(op, rand(2, 3), b, const_b=True)), op)
        assert dense == {kind[op]: 6} and effective == {kind[op]: 2}, op


def test_zero_minus_x_is_not_skipped() -> None:
    case = Case([node("Sub", ["z", "x"])], {"x": rand(4)}, {"z": f32([0.0])})
    assert only(check(case), "Sub") == ({"add": 4}, {"add": 4})


def test_constness_propagates_through_nodes() -> None:
    # w - w is computed from constants only, so it is a constant: every product with it is pointless.
    case = Case([node("Sub", ["w", "w"], ("z",)), node("Mul", ["x", "z"])], {"x": rand(2, 3)}, {"w": rand(3)})
    result = check(case)
    assert only(result, "Sub") == ({"add": 3}, {"add": 3})
    assert only(result, "Mul") == ({"mul": 6}, {})


def test_graph_input_with_initializer_is_not_constant() -> None:
    graph = helper.make_graph(
        [node("Mul", ["x", "w"])],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "w")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[numpy_helper.from_array(f32([1.0, 1.0]), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    result = interpret(model, {"x": f32([3.0, 4.0])})
    np.testing.assert_array_equal(result.outputs["y"], [3.0, 4.0])
    assert only(result, "Mul") == ({"mul": 2}, {"mul": 2})


def test_variadic_counts() -> None:
    # Sum/Mean of 3 over [2, 3]: 2 adds per element; Mean adds 1 div; Max: 2 cmp.
    assert only(check(CASES["sum"]), "Sum")[0] == {"add": 12}
    assert only(check(CASES["mean"]), "Mean")[0] == {"add": 12, "div": 6}
    assert only(check(CASES["max"]), "Max")[0] == {"cmp": 12}
    with_zero = Case([node("Sum", ["a", "b", "z"])], {"a": rand(2, 3), "b": rand(3)}, {"z": f32([0.0])})
    assert only(check(with_zero), "Sum") == ({"add": 12}, {"add": 6})


def test_infinite_constant_compares_are_skipped() -> None:
    case = Case([node("Max", ["x", "m"])], {"x": rand(2, 3)}, {"m": f32([-np.inf])})
    assert only(check(case), "Max") == ({"cmp": 6}, {})
    clip = with_consts("Clip", rand(2, 3), {"c_lo": f32(0.0), "c_hi": f32(INF)})
    assert only(check(clip), "Clip") == ({"cmp": 12}, {"cmp": 6})
    assert only(check(CASES["clip-opset6"]), "Clip")[0] == {"cmp": 24}


def test_pow_counts() -> None:
    assert only(check(CASES["pow-int-exponent"]), "Pow") == ({"mul": 12}, {"mul": 12})  # x^3: 2 mul, x 6
    assert only(check(CASES["pow-float-exponent"]), "Pow")[0] == {"pow": 6}
    assert only(check(CASES["pow-input-exponent"]), "Pow")[0] == {"pow": 6}  # not constant: no shortcut


def test_activation_counts() -> None:
    assert only(check(CASES["sigmoid"]), "Sigmoid")[0] == {"add": 12, "div": 12, "exp": 12}
    assert only(check(CASES["tanh"]), "Tanh")[0] == {"tanh": 12}
    assert only(check(CASES["leaky-relu"]), "LeakyRelu")[0] == {"mul": 12, "cmp": 12}
    assert only(check(CASES["relu"]), "Relu")[0] == {"cmp": 10}
    assert only(check(CASES["abs"]), "Abs")[0] == {}
    assert only(check(CASES["reciprocal"]), "Reciprocal")[0] == {"div": 12}
    assert only(check(CASES["softplus"]), "Softplus")[0] == {"add": 12, "exp": 12, "log": 12}  # ln(1 + exp x)


def test_rounding_compare_and_mod_count_one_operation_per_element() -> None:
    assert only(check(CASES["floor"]), "Floor")[0] == {"floor": 12}
    assert only(check(CASES["round-half-even"]), "Round")[0] == {"round": 8}
    assert only(check(CASES["greater"]), "Greater") == ({"cmp": 24}, {"cmp": 24})  # [2, 3, 1] vs [4]
    result = check(CASES["mod-int64"])  # fmod 0: the sign of the divisor, as Python's %
    np.testing.assert_array_equal(result.outputs["y"], [1, 2, -2, -1, 0])
    assert only(result, "Mod")[0] == {"mod": 5}
    np.testing.assert_array_equal(check(CASES["mod-int32-fmod"]).outputs["y"], [1, -1, 1, -1])  # the dividend's


def test_scatter_counts_one_operation_per_update_element() -> None:
    # 6 (ScatterElements) and 3 (ScatterND) updates, duplicate targets included: add, mul, or cmp for max/min.
    for reduction, kind in {"add": "add", "mul": "mul", "max": "cmp", "min": "cmp"}.items():
        assert only(check(CASES[f"scatter-elements-{reduction}"]), "ScatterElements") == ({kind: 6}, {kind: 6})
        assert only(check(CASES[f"scatter-nd-{reduction}"]), "ScatterND")[0] == {kind: 3}
    assert only(check(CASES["scatter-elements-none"]), "ScatterElements")[0] == {}


def test_control_flow_counts_its_bodies() -> None:
    # If: the then branch (x * x, 6 mul) with a constant condition; 6 > 10 is false: sigmoid of 6 (and 1 cmp before).
    assert only(check(CASES["if-constant-condition"]), "If")[0] == {"mul": 6}
    result = check(CASES["if-condition-from-shape"])
    assert only(result, "If")[0] == {"add": 6, "div": 6, "exp": 6}
    assert only(result, "Greater")[0] == {"cmp": 1}
    # Scan: 4 iterations of 2 add + 2 mul; reversed along axis 1: 3 iterations.
    assert only(check(CASES["scan-running-sum"]), "Scan")[0] == {"add": 8, "mul": 8}
    assert only(check(CASES["scan-axis1-reversed"]), "Scan")[0] == {"add": 6, "mul": 6}
    # Loop: M = 3 trips of 2 mul (by w) and 2 add.
    result = check(CASES["loop-fixed-trips"])
    assert only(result, "Loop")[0] == {"add": 6, "mul": 6}
    np.testing.assert_allclose(result.outputs["v"], CASES["loop-fixed-trips"].inputs["v0"] * f32([0.125, 8.0]))


def test_recurrence_counts_follow_the_onnx_formulas() -> None:
    # LSTM, H 2, I 4, bias, 3 steps x 2 batch: per step 8 gate units of 4 + 2 products and 8 terms (7 adds); sigmoid
    # on 6, tanh on 2 + 2; C = f C + i c and H = o tanh(C): 3H mul, H add.
    assert only(check(CASES["lstm-forward-defaults"]), "LSTM")[0] == {
        "mul": 6 * (48 + 6), "add": 6 * (56 + 6 + 2), "div": 6 * 6, "exp": 6 * 6, "tanh": 6 * 4}
    # GRU, H 2, I 4: z, r: 4 units x (6 mul, 7 add); h: 2 x (6, 7) + r H (2 mul); sigmoid on 4, tanh on 2;
    # H = (1 - z) h + z H: 2H mul, 2H add.
    assert only(check(CASES["gru-forward-defaults"]), "GRU")[0] == {
        "mul": 6 * (24 + 12 + 2 + 4), "add": 6 * (28 + 14 + 4 + 4), "div": 6 * 4, "exp": 6 * 4, "tanh": 6 * 2}
    dense, effective = only(check(CASES["gru-sparse-reverse-linear-before-reset"]), "GRU")
    assert effective["mul"] < dense["mul"] and effective["add"] < dense["add"]


def test_range_adds_delta_to_the_previous_element() -> None:
    result = check(CASES["range-int64-negative-delta"])
    np.testing.assert_array_equal(result.outputs["y"], [10, 7, 4, 1, -2])
    assert only(result, "Range")[0] == {"add": 4}
    assert only(check(CASES["range-empty"]), "Range")[0] == {}


def test_softmax_and_normalization_counts() -> None:
    # Softmax over n = 5, 3 rows: 5 exp, 4 add, 5 div per row.
    assert only(check(CASES["softmax-last"]), "Softmax")[0] == {"add": 12, "div": 15, "exp": 15}
    # LayerNorm over n = 5, 6 rows: 2n mul, 4n - 1 add, n + 2 div, 1 sqrt per row.
    counts = only(check(CASES["layernorm-last-bias"]), "LayerNormalization")[0]
    assert counts == {"mul": 60, "add": 114, "div": 42, "sqrt": 6}
    # BatchNorm on [2, 3, 4]: per element 1 mul, 2 add, 1 div; per channel 1 add, 1 sqrt.
    counts = only(check(CASES["batchnorm-3d"]), "BatchNormalization")[0]
    assert counts == {"mul": 24, "add": 48 + 3, "div": 24, "sqrt": 3}
    # LogSoftmax over n = 3, 8 rows: n exp, n - 1 add for the sum and n sub, 1 log per row.
    assert only(check(CASES["log-softmax-axis1"]), "LogSoftmax")[0] == {"add": 8 * 5, "exp": 24, "log": 8}


def test_reduce_counts() -> None:
    # [2, 3, 4] over axes 0 and 2: 3 outputs of m = 8.
    expected = {
        "ReduceSum": {"add": 21},
        "ReduceMean": {"add": 21, "div": 3},
        "ReduceMax": {"cmp": 21},
        "ReduceProd": {"mul": 21},
        "ReduceSumSquare": {"mul": 24, "add": 21},
        "ReduceL1": {"add": 21},
        "ReduceL2": {"mul": 24, "add": 21, "sqrt": 3},
        "ReduceLogSum": {"add": 21, "log": 3},
        "ReduceLogSumExp": {"add": 21, "exp": 24, "log": 3},
    }
    for op, counts in expected.items():
        assert only(check(CASES[f"{op}-axes-input"]), op)[0] == counts, op
    assert only(check(CASES["reducesum-noop"]), "ReduceSum")[0] == {}


def test_pool_counts_include_padding_taps() -> None:
    # 3x3 window, pads 1, stride 1 over 4x4: 16 windows of 9 taps, every tap counted.
    assert only(check(unary("MaxPool", rand(1, 1, 4, 4), kernel_shape=[3, 3], pads=[1, 1, 1, 1])), "MaxPool")[0] == {
        "cmp": 16 * 8
    }
    counts = only(check(CASES["avgpool-pads-exclude"]), "AveragePool")[0]
    assert counts == {"add": 2 * 25 * 8, "div": 2 * 25}
    assert only(check(CASES["global-avgpool"]), "GlobalAveragePool")[0] == {"add": 6 * 19, "div": 6}
    assert only(check(CASES["global-maxpool"]), "GlobalMaxPool")[0] == {"cmp": 6 * 19}


def test_dft_counts() -> None:
    # Real N = 8, onesided: 5 bins x 2 rows, each 2N = 16 mul and 2(N - 1) = 14 add.
    assert only(check(CASES["dft17-real-onesided"]), "DFT")[0] == {"mul": 10 * 16, "add": 10 * 14}
    # Complex N = 6, full: 6 bins x 3 rows, each 4N = 24 mul and 4N - 2 = 22 add; inverse: 2 div for 1/N.
    counts = only(check(CASES["dft17-complex-inverse-axis2"]), "DFT")[0]
    assert counts == {"mul": 18 * 24, "add": 18 * 22, "div": 18 * 2}
    # Zero padding to N = 8 is visited: same as a length-8 signal.
    assert only(check(CASES["dft17-real-padded"]), "DFT")[0] == {"mul": 8 * 16, "add": 8 * 14}


def test_stft_counts() -> None:
    # 20 samples, frame 8, hop 4: 4 frames x 2 batch; per frame 8 window muls + 5 bins x (16 mul, 14 add).
    assert only(check(CASES["stft-window"]), "STFT")[0] == {"mul": 8 * (8 + 80), "add": 8 * 70}
    # No window: DFT only; frame 6, hop 5 over 16: 3 frames x 6 bins x (12 mul, 10 add).
    assert only(check(CASES["stft-no-window-twosided"]), "STFT")[0] == {"mul": 3 * 72, "add": 3 * 60}


def test_data_movement_costs_nothing() -> None:
    for key in ("reshape", "transpose", "slice", "gather", "pad-reflect", "cast", "expand", "split-sizes", "tile",
                "size", "where", "dropout-inference-mask", "gather-elements-axis0", "gather-nd-batch-dims",
                "scatter-nd-slices"):
        result = check(CASES[key])
        assert all(t.dense == Counts() and t.effective == Counts() and t.counted for t in result.nodes), key


def test_unsupported_op_names_the_op() -> None:
    case = unary("HardSwish", rand(2, 3))
    with pytest.raises(ToolkitError, match="HardSwish"):
        interpret(build(case, {}), case.inputs)


def test_missing_input_is_a_toolkit_error() -> None:
    with pytest.raises(ToolkitError, match="not given"):
        interpret(build(unary("Relu", rand(2)), {}), {})


def test_tallies_follow_graph_order() -> None:
    result = check(Case([node("Relu", ["x"], ("r",)), node("Exp", ["r"])], {"x": rand(2)}))
    assert [(t.index, t.op_type) for t in result.nodes] == [(0, "Relu"), (1, "Exp")]


# --- the log-mel graph end to end ------------------------------------------------------------------------------

MEL = MelParams(n_fft=32, win_length=24, hop=8, n_mels=4, sample_rate=1600, fmin=0.0, fmax=800.0)
FRAMES = 5


def test_mel_graph_matches_onnxruntime_and_counts() -> None:
    model = build_mel_model(MEL)
    audio = (RNG.standard_normal((1, MEL.n_fft + MEL.hop * (FRAMES - 1))) * 3000).astype(np.float32)
    result = interpret(model, {"input": audio})
    (expected,) = run_ort(model, {"input": audio})
    np.testing.assert_allclose(result.outputs["output"], expected, rtol=1e-4, atol=1e-3)

    bins, n_fft, n_mels = MEL.n_bins, MEL.n_fft, MEL.n_mels
    per_frame = 2 * bins * n_fft + 2 * bins + bins * n_mels + n_mels
    dense, effective = total_counts(result.nodes)
    assert dense["mul"] == FRAMES * per_frame

    # Effective: window zero-padding, exact zeros and exact ones of the DFT kernels and the mel filters.
    kernels = np.concatenate(dft_kernels(MEL))
    mel = mel_filterbank(MEL)
    conv_mul = FRAMES * np.count_nonzero((kernels != 0) & (kernels != 1))
    mel_mul = FRAMES * np.count_nonzero((mel != 0) & (mel != 1))
    assert np.count_nonzero(kernels == 0) > 0 and np.count_nonzero(mel == 0) > 0
    assert effective["mul"] == conv_mul + FRAMES * 2 * bins + mel_mul + FRAMES * n_mels
    # Clip bounds of +inf are constants: their compares drop out of the effective count.
    clips = [t for t in result.nodes if t.op_type == "Clip"]
    assert [c.dense["cmp"] - c.effective["cmp"] for c in clips] == [FRAMES * n_mels] * 2
