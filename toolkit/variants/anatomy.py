"""Locate the parts of a log-mel graph (DFT Convs, power, mel MatMul, dB tail) in any model laid out like it.

Rewrites and the TFLite writer need the weights, not the parameters: they read them from the model itself,
so a user's file with other windows or filterbanks is rewritten faithfully, and a file that is not laid
out like the mel graph raises NotApplicable with a sentence saying which part is missing (its variant is
skipped). Sessions made here feed every graph input by the model's feed plan (toolkit.load.feed_plan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from toolkit.errors import ToolkitError
from toolkit.load import FeedPlan, feed_plan

# the one feed maker lives in the bench runner, which carries it to boards; it imports nothing from the toolkit,
# so this lower layer may use it
from toolkit.profiling.runner import feed_arrays

Feed = dict[str, np.ndarray]  # input name -> the array one inference is fed


class NotApplicable(ToolkitError):
    """The graph lacks what a variant transforms (a block, an op, a single input): the variant is skipped."""


@dataclass(frozen=True)
class DftPair:
    """The two Convs computing the real and imaginary DFT of each frame: weights [bins, 1, taps]."""

    real: onnx.NodeProto
    imag: onnx.NodeProto
    real_weight: np.ndarray
    imag_weight: np.ndarray
    hop: int

    @property
    def signal(self) -> str:
        """The tensor both Convs read: the audio as [batch, 1, samples]."""
        return self.real.input[0]


@dataclass(frozen=True)
class MelStage:
    """The MatMul from the power spectrum [B, 1, T, bins] to mel energies [B, 1, T, n_mels]."""

    node: onnx.NodeProto
    weight: np.ndarray

    @property
    def power(self) -> str:
        """The power-spectrum tensor the MatMul reads."""
        return self.node.input[0]


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every initializer and Constant-node value by tensor name, as numpy arrays."""
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    """One attribute's value, or `default` when the node does not set it."""
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _is_dft_conv(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> bool:
    """A bias-free, ungrouped 1-D Conv with a constant [bins, 1, taps] weight and no padding."""
    if node.op_type != "Conv" or len(node.input) != 2 or node.input[1] not in constants:
        return False
    weight = constants[node.input[1]]
    plain = _attribute(node, "group", 1) == 1 and not any(_attribute(node, "pads", []))
    return plain and weight.ndim == 3 and weight.shape[1] == 1


def find_dft_pair(model: onnx.ModelProto) -> DftPair:
    """The real/imag DFT Convs: two such Convs on one input; the imaginary one has an all-zero row 0."""
    constants = initializers(model)
    convs = [node for node in model.graph.node if _is_dft_conv(node, constants)]
    if len(convs) != 2 or convs[0].input[0] != convs[1].input[0]:
        raise NotApplicable(
            f"found {len(convs)} DFT-like Convs ([bins, 1, taps] weights); the rewrite needs exactly two on "
            "the same input (real and imaginary DFT), as in openWakeWord's melspectrogram.onnx"
        )
    first, second = convs
    imag_first = not constants[first.input[1]][0].any()
    real, imag = (second, first) if imag_first else (first, second)
    strides = list(_attribute(real, "strides", [1]))
    return DftPair(real, imag, constants[real.input[1]], constants[imag.input[1]], int(strides[0]))


def find_mel_stage(model: onnx.ModelProto) -> MelStage:
    """The MatMul whose constant right operand maps the DFT bins to mel bands."""
    constants = initializers(model)
    matmuls = [
        node
        for node in model.graph.node
        if node.op_type == "MatMul" and node.input[1] in constants and constants[node.input[1]].ndim == 2
    ]
    if len(matmuls) != 1:
        raise NotApplicable(
            f"found {len(matmuls)} MatMuls with a constant 2-D weight; the rewrite needs exactly one mel MatMul"
        )
    return MelStage(matmuls[0], constants[matmuls[0].input[1]])


def nonzero_range(weight: np.ndarray, axis: int) -> tuple[int, int]:
    """[lo, hi): the smallest index range along `axis` outside which `weight` is exactly zero."""
    other_axes = tuple(i for i in range(weight.ndim) if i != axis % weight.ndim)
    used = np.flatnonzero(np.any(weight != 0, axis=other_axes))
    if used.size == 0:
        raise NotApplicable("the weight is all zeros: there is no nonzero range to keep")
    return int(used[0]), int(used[-1]) + 1


def prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes and initializers no graph output depends on, and stale value_info shapes."""
    graph = model.graph
    needed = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
    del graph.value_info[:]
    return model


def replace_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    """Swap the initializer `name` for `value` (added when absent)."""
    graph = model.graph
    kept = [tensor for tensor in graph.initializer if tensor.name != name]
    del graph.initializer[:]
    graph.initializer.extend([*kept, numpy_helper.from_array(value, name)])


def plan_feed(plan: FeedPlan, audio: np.ndarray, names: set[str] | None = None) -> Feed:
    """The arrays one inference on `audio` is fed by `plan`: the inputs in `names` (default: every one)."""
    return feed_arrays([entry.to_json() for entry in plan], audio, {e.name for e in plan} if names is None else names)


@dataclass(frozen=True)
class FedSession:
    """A CPU onnxruntime session and the feed plan that feeds every one of its inputs."""

    session: ort.InferenceSession
    plan: FeedPlan

    def feed(self, audio: np.ndarray) -> Feed:
        """The arrays one inference on `audio` is fed: every input the session takes."""
        return plan_feed(self.plan, audio, {i.name for i in self.session.get_inputs()})


def session(model: onnx.ModelProto | str, plan: FeedPlan | None = None) -> FedSession:
    """A CPU onnxruntime session with the default optimizations, from a model or a path, fed by `plan`
    (default: the model's own feed plan, no --input values)."""
    proto = onnx.load(model) if isinstance(model, str) else model
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return FedSession(sess, feed_plan(proto) if plan is None else plan)


def run_session(fed: FedSession, audio: np.ndarray) -> list[np.ndarray]:
    """Every graph output for one [batch, samples] clip, on a session made once by the caller."""
    return fed.session.run(None, fed.feed(audio.astype(np.float32)))


def run_onnx(model: onnx.ModelProto | str, audio: np.ndarray) -> list[np.ndarray]:
    """Every graph output for one [batch, samples] clip (a fresh session: one-off runs only)."""
    return run_session(session(model), audio)


@dataclass(frozen=True)
class DbTail:
    """What follows the mel MatMul: db = scale * ln(max(mel, amin)) + offset, then max(db, max(db) - top_db)."""

    amin: float
    scale: float
    offset: float
    top_db: float | None


def _consumers(model: onnx.ModelProto, tensor: str) -> list[onnx.NodeProto]:
    """The nodes that read `tensor`, in graph order."""
    return [node for node in model.graph.node if tensor in node.input]


def _operand(node: onnx.NodeProto, tensor: str, constants: dict[str, np.ndarray]) -> float:
    """The constant scalar `node` combines `tensor` with (as its second input, so Sub and Div keep their order)."""
    if node.input[0] != tensor or len(node.input) < 2 or node.input[1] not in constants:
        raise NotApplicable(f"{node.op_type} node {node.name!r} in the dB stage has no constant second operand")
    return float(constants[node.input[1]])


# op -> (scale, offset, amin) -> new state, for the ops between the mel MatMul and the top_db clamp
_TAIL_STEPS = {
    "Clip": lambda s, o, a, c: (s, o, c),
    "Max": lambda s, o, a, c: (s, o, c),
    "Mul": lambda s, o, a, c: (s * c, o * c, a),
    "Div": lambda s, o, a, c: (s / c, o / c, a),
    "Sub": lambda s, o, a, c: (s, o - c, a),
    "Add": lambda s, o, a, c: (s, o + c, a),
}


def find_db_tail(model: onnx.ModelProto) -> DbTail:
    """Read the floor, dB scale and offset, and top_db clamp from the nodes after the mel MatMul."""
    constants = initializers(model)
    tensor = find_mel_stage(model).node.output[0]
    scale, offset, amin = 1.0, 0.0, 0.0
    while True:
        readers = _consumers(model, tensor)
        if len(readers) != 1 or readers[0].op_type not in (*_TAIL_STEPS, "Log"):
            break
        node = readers[0]
        if node.op_type != "Log":
            scale, offset, amin = _TAIL_STEPS[node.op_type](scale, offset, amin, _operand(node, tensor, constants))
        tensor = node.output[0]
    reduce = [node for node in _consumers(model, tensor) if node.op_type == "ReduceMax"]
    top_db = None
    if reduce:
        subtract = [node for node in _consumers(model, reduce[0].output[0]) if node.op_type == "Sub"]
        if len(subtract) != 1:
            raise NotApplicable("the ReduceMax of the dB values is not followed by one Sub of top_db")
        top_db = _operand(subtract[0], reduce[0].output[0], constants)
    if not amin > 0:
        raise NotApplicable("no positive floor (Clip min) found before the Log of the mel energies")
    return DbTail(amin, scale, offset, top_db)
