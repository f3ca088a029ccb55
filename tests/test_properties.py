"""Property tests (hypothesis) over the analyzer and the target-file parser.

Graphs: random small graphs of supported ops (elementwise, constants full of 0s and 1s, reductions, MatMul,
Conv over framed audio, Softmax, Clip...) on a [batch, samples] input, symbolic or fixed. The analyzer's
formulas must equal the counting interpreter's counts node by node in both conventions, and onnxruntime must
compute what the interpreter computes. Target files: random edits of a valid file; load_target must return a
Target or raise a one-line ToolkitError naming the file, never anything else.

Each suite runs 200 examples (set below, not left to a profile) of a few nodes each, so it stays short;
HYPOTHESIS_EXAMPLES=5000 explores further with fresh random examples.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper, numpy_helper

from toolkit.analysis import analyze
from toolkit.analysis.interpreter import interpret
from toolkit.errors import ToolkitError
from toolkit.targets import TARGETS_DIR, Target, load_target

EXAMPLES = 200
# The same 200 examples on every run: CI must not pass or fail by luck. Explore more with HYPOTHESIS_EXAMPLES.
SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", EXAMPLES)), deadline=None,
                    derandomize="HYPOTHESIS_EXAMPLES" not in os.environ, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
OPSET = 18  # reductions take their axes as an input
Label = str | int  # "B", "W" (the input dims), or a fixed size

# ---------------------------------------------------------------- random graphs


@dataclass
class GraphBuilder:
    """Nodes and constants appended one step at a time; every tensor keeps its shape as labels."""

    symbolic: bool
    sizes: dict[str, int]
    tensors: list[tuple[str, tuple[Label, ...]]] = field(default_factory=lambda: [("x", ("B", "W"))])
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    consts: list[TensorProto] = field(default_factory=list)

    def size(self, label: Label) -> int:
        return self.sizes[label] if isinstance(label, str) else label

    def concrete(self, shape: tuple[Label, ...]) -> tuple[int, ...]:
        return tuple(self.size(label) for label in shape)

    def const(self, value: np.ndarray) -> str:
        name = f"c{len(self.consts)}"
        self.consts.append(numpy_helper.from_array(value, name))
        return name

    def add(self, op: str, inputs: list[str], shape: tuple[Label, ...], **attrs: object) -> None:
        name = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=f"{op}_{len(self.nodes)}", **attrs))
        self.tensors.append((name, shape))

    def model(self) -> onnx.ModelProto:
        dims = ["batch", "samples"] if self.symbolic else [self.sizes["B"], self.sizes["W"]]
        graph = helper.make_graph(self.nodes, "random", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                                  [helper.make_tensor_value_info(self.tensors[-1][0], TensorProto.FLOAT, None)],
                                  initializer=self.consts)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)


Draw = Callable[[st.SearchStrategy], object]
SPECIAL_VALUES = st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0])
VALUES = st.one_of(SPECIAL_VALUES, st.floats(-3, 3, width=32))


def constant_values(draw: Draw, shape: tuple[int, ...]) -> np.ndarray:
    """Values with many exact 0s and 1s: the effective convention skips those."""
    return draw(arrays(np.float32, shape, elements=VALUES))


def pick(draw: Draw, b: GraphBuilder, min_rank: int = 0) -> tuple[str, tuple[Label, ...]]:
    candidates = [t for t in b.tensors if len(t[1]) >= min_rank]
    return draw(st.sampled_from(candidates))


def unary(draw: Draw, b: GraphBuilder) -> None:
    op = draw(st.sampled_from(["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Sin", "Cos", "Erf",
                               "Reciprocal"]))
    name, shape = pick(draw, b)
    b.add(op, [name], shape)


def with_constant(draw: Draw, b: GraphBuilder) -> None:
    """x op c or c op x, c broadcast: one value, or (fixed dims only) one per last-axis element or per element."""
    op = draw(st.sampled_from(["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"]))
    name, shape = pick(draw, b)
    shapes = [(1,)] if b.symbolic or not shape else [(1,), (b.size(shape[-1]),), b.concrete(shape)]
    if op == "Pow":
        const = b.const(np.full(draw(st.sampled_from(shapes)), draw(st.sampled_from([1.0, 2.0, 3.0, 0.5])),
                                np.float32))
        b.add(op, [name, const], shape)
        return
    const = b.const(constant_values(draw, draw(st.sampled_from(shapes))))
    inputs = [const, name] if draw(st.booleans()) else [name, const]
    b.add(op, inputs, shape if shape else (1,))


def pair(draw: Draw, b: GraphBuilder) -> None:
    op = draw(st.sampled_from(["Add", "Sub", "Mul", "Max", "Min", "Sum", "Mean"]))
    first, shape = pick(draw, b)
    second = draw(st.sampled_from([n for n, s in b.tensors if s == shape]))
    b.add(op, [first, second], shape)


def clip(draw: Draw, b: GraphBuilder) -> None:
    name, shape = pick(draw, b)
    bounds = draw(st.sampled_from([(-1.0, 1.0), (0.0, np.inf), (-np.inf, 0.5), (None, 2.0), (-2.0, None)]))
    inputs = [name] + [b.const(np.float32(v)) if v is not None else "" for v in bounds]
    b.add("Clip", inputs[:3] if inputs[-1] else inputs[:2], shape)


def leaky_relu(draw: Draw, b: GraphBuilder) -> None:
    name, shape = pick(draw, b)
    b.add("LeakyRelu", [name], shape, alpha=draw(st.sampled_from([0.0, 0.01, 0.2, 1.0])))


def softmax(draw: Draw, b: GraphBuilder) -> None:
    name, shape = pick(draw, b, min_rank=1)
    b.add("Softmax", [name], shape, axis=-1)


def reduce(draw: Draw, b: GraphBuilder) -> None:
    op = draw(st.sampled_from(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
                               "ReduceL2"]))
    name, shape = pick(draw, b, min_rank=1)
    axis = draw(st.integers(0, len(shape) - 1))
    keep = draw(st.booleans()) or len(shape) == 1
    out = tuple(1 if i == axis else d for i, d in enumerate(shape)) if keep else shape[:axis] + shape[axis + 1:]
    b.add(op, [name, b.const(np.array([axis], np.int64))], out, keepdims=int(keep))


def matmul(draw: Draw, b: GraphBuilder) -> None:
    """By a constant [K, M] (fixed dims), or a tensor by its own transpose (any dims)."""
    name, shape = pick(draw, b, min_rank=2)
    if len(shape) == 2 and (b.symbolic or draw(st.booleans())):
        b.add("Transpose", [name], shape[::-1])
        b.add("MatMul", [name, b.tensors[-1][0]], (shape[0], shape[0]))
        return
    if b.symbolic:  # a constant [K, M] cannot match a symbolic K
        return
    columns = draw(st.integers(1, 3))
    const = b.const(constant_values(draw, (b.size(shape[-1]), columns)))
    b.add("MatMul", [name, const], (*shape[:-1], columns))


def conv(draw: Draw, b: GraphBuilder) -> None:
    """Frame the audio like the mel graph: [B, 1, W] Conv with C kernels of k taps, stride s."""
    b.add("Unsqueeze", ["x", b.const(np.array([1], np.int64))], ("B", 1, "W"))
    taps = draw(st.integers(1, b.sizes["W"]))
    stride, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    frames = f"F{len(b.nodes)}"  # its own label: two frame counts that happen to be equal are still different dims
    b.sizes[frames] = (b.sizes["W"] - taps) // stride + 1
    kernel = b.const(constant_values(draw, (channels, 1, taps)))
    b.add("Conv", [b.tensors[-1][0], kernel], ("B", channels, frames), strides=[stride])


STEPS = [unary, with_constant, pair, clip, leaky_relu, softmax, reduce, matmul, conv]


@st.composite
def graphs(draw: Draw) -> tuple[GraphBuilder, np.ndarray]:
    builder = GraphBuilder(draw(st.booleans()), {"B": draw(st.integers(1, 3)), "W": draw(st.integers(1, 8))})
    for _ in range(draw(st.integers(1, 6))):
        draw(st.sampled_from(STEPS))(draw, builder)
    audio = draw(arrays(np.float32, (builder.sizes["B"], builder.sizes["W"]), elements=st.floats(-4, 4, width=32)))
    return builder, audio


def run_ort(model: onnx.ModelProto, audio: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": audio})[0]


@SETTINGS
@given(graphs())
def test_formulas_equal_interpreted_counts_and_onnxruntime_equals_interpreter(case: tuple[GraphBuilder, np.ndarray]
                                                                              ) -> None:
    builder, audio = case
    model = builder.model()
    interpreted = interpret(model, {"x": audio})
    analysis = analyze(model, batch=builder.sizes["B"], samples=builder.sizes["W"])
    for report, tally in zip(analysis.nodes, interpreted.nodes, strict=True):
        assert report.counted, f"{report.name}: {report.problem}"
        for convention in ("dense", "effective"):
            formula = getattr(report, convention).subs(analysis.bindings).as_ints()
            assert formula == getattr(tally, convention).as_ints(), f"{report.name} {convention}"
    got = interpreted.outputs[builder.tensors[-1][0]]
    want = run_ort(model, audio)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4, equal_nan=True)


# ---------------------------------------------------------------- random target files

BASE = (TARGETS_DIR / "rpi4.toml").read_text()
LINES = BASE.splitlines()
ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_\"]+\s*=\s*)(.*)$")

SCALARS = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.floats().map(repr),
    st.booleans().map(lambda v: str(v).lower()), st.text(max_size=12).map(json.dumps),
    st.sampled_from(['"detect"', '"board"', '"host"', "[]", "{}", '"all"', '["all", "fast"]']),
)
VALUES_TOML = st.one_of(SCALARS, st.lists(SCALARS, max_size=3).map(lambda v: f"[{', '.join(v)}]"))
KEYS = st.one_of(st.sampled_from(["cores", "kind", "name", "qemu_cpu", "threads", "policy", "cpu"]),
                 st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True))


@st.composite
def edited_target(draw: Draw) -> str:
    """The rpi4 file with 1 to 3 edits: a value replaced, a line removed, a key or a line of junk inserted."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["value", "drop", "key", "junk", "table"]))
        match = ASSIGNMENT.match(lines[at])
        if edit == "value" and match:
            lines[at] = match.group(1) + draw(VALUES_TOML)
        elif edit == "drop":
            del lines[at]
        elif edit == "key":
            lines.insert(at, f"{draw(KEYS)} = {draw(VALUES_TOML)}")
        elif edit == "table":
            lines.insert(at, f"[{draw(KEYS)}]")
        else:
            lines.insert(at, draw(st.text(max_size=20).filter(lambda t: "\n" not in t and "\r" not in t)))
    return "\n".join(lines) + "\n"


@SETTINGS
@given(edited_target())
def test_target_parser_returns_a_target_or_one_line_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rpi4.toml"
    path.write_text(text, encoding="utf-8")
    try:
        target = load_target(path)
    except ToolkitError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(path)), message
        where = re.escape(str(path)) + r":\d+: |\(at line \d+, column \d+\)|\(at end of document\)" \
            r"|: missing (key|table) "
        assert re.search(where, message), f"names no line (and no missing key): {message}"
        return
    assert isinstance(target, Target) and target.name == "rpi4"
    assert target.cpu.cores >= 1 and min(target.matrix.intra_op_threads) >= 1
