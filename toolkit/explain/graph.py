"""A read-only view of an ONNX graph for recognizers: who produces and consumes each tensor, and its constants.

Constants are folded once (initializers, Constant nodes, and nodes whose inputs are all constant, evaluated by
onnx's reference evaluator) so a recognizer can read a MelWeightMatrix output or an in-graph log(10) as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from toolkit.analysis.attributes import AttributeValue

if TYPE_CHECKING:
    from toolkit.explain.dimflow import Axis

# Ops that only move data; a path through them is the same signal in another layout.
LAYOUT_OPS = frozenset({"Unsqueeze", "Squeeze", "Transpose", "Reshape", "Identity", "Flatten"})
FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                          onnx.TensorProto.BFLOAT16})
# Folding evaluates these constant subgraphs; larger tensors are left alone so folding stays cheap.
_FOLD_LIMIT = 1 << 22


@dataclass
class GraphView:
    """Producers, consumers, folded constants and inferred element types of one model's main graph."""

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    elem_types: dict[str, int] = field(default_factory=dict)
    inputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    outputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)
    # Filled by explain() from dimflow.propagate: which input dim each axis carries, and its role.
    axes: dict[str, list[Axis]] = field(default_factory=dict)
    # Outer-scope names each node's subgraphs read (If, Loop, Scan bodies), by id(node).
    implicit: dict[int, list[str]] = field(default_factory=dict)

    def reads(self, node: onnx.NodeProto) -> list[str]:
        """Every tensor the node reads: its inputs and the outer-scope names its subgraphs use, so a model
        wrapped in an If still depends on its input."""
        return [*node.input, *self.implicit.get(id(node), [])]

    def name(self, node: onnx.NodeProto) -> str:
        """The node's name, or `Op#index` for unnamed nodes, so every report line points at one node."""
        return node.name or f"{node.op_type}#{self.nodes.index(node)}"

    def const(self, tensor: str) -> np.ndarray | None:
        """The tensor's value if it is known before any input is given."""
        return self.constants.get(tensor) if tensor else None

    def data_consumers(self, tensor: str) -> list[onnx.NodeProto]:
        """Nodes reading `tensor`, in graph order."""
        return self.consumers.get(tensor, [])

    def forward(self, tensor: str) -> tuple[str, list[onnx.NodeProto]]:
        """Follow `tensor` through single-consumer layout ops (and same-type Casts); return the end and the path."""
        path: list[onnx.NodeProto] = []
        while True:
            users = self.data_consumers(tensor)
            if len(users) != 1 or not self.is_layout(users[0]) or users[0].input[0] != tensor:
                return tensor, path
            path.append(users[0])
            tensor = users[0].output[0]

    def is_layout(self, node: onnx.NodeProto) -> bool:
        """True for data movement whose other inputs (axes, shapes) are constants, and float-to-float Casts
        (a precision change, not a new operation on the signal)."""
        if node.op_type == "Cast":
            return self.elem_types.get(node.input[0]) in FLOAT_TYPES and attribute(node, "to") in FLOAT_TYPES
        return node.op_type in LAYOUT_OPS and all(self.const(name) is not None for name in node.input[1:] if name)

    def is_same_type_cast(self, node: onnx.NodeProto) -> bool:
        """A Cast whose target type is the type it already has: a no-op."""
        source = self.elem_types.get(node.input[0])
        return source is not None and source == attribute(node, "to")

    def scalar(self, tensor: str) -> float | None:
        """The value of a constant with one element, else None."""
        value = self.const(tensor)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def other_input(self, node: onnx.NodeProto, tensor: str) -> str | None:
        """For a two-input node fed by `tensor`, the other input (None if `tensor` feeds both or neither)."""
        names: list[str] = list(node.input)
        if len(names) != 2 or names.count(tensor) != 1:
            return None
        return names[1 - names.index(tensor)]

    def rank(self, tensor: str) -> int | None:
        """Rank from the constant's value, shape inference or the followed axes, if known."""
        value = self.const(tensor)
        if value is not None:
            return value.ndim
        axes = self.axes.get(tensor)
        return self.ranks.get(tensor, len(axes) if axes is not None else None)


BFLOAT16_EPS = 2.0**-7


def stored_as_bfloat16(array: np.ndarray) -> bool:
    """True for float32 values that are all exactly bfloat16 (low 16 bits zero): weights made in bfloat16 and
    cast up, whose rounding a fit must allow for."""
    array = np.asarray(array)
    return array.dtype == np.float32 and array.size > 1 and not np.any(array.view(np.uint32) & 0xFFFF)


def tolerance(array: np.ndarray, floor: float) -> float:
    """A relative fit tolerance for weights stored as `array`: `floor`, or looser for low-precision floats
    (float16, or bfloat16 values cast to float32)."""
    dtype = np.asarray(array).dtype
    if not np.issubdtype(dtype, np.floating):
        return floor
    if stored_as_bfloat16(array):
        return max(floor, BFLOAT16_EPS)
    return max(floor, 8 * float(np.finfo(dtype).eps))


def attribute(node: onnx.NodeProto, name: str, default: AttributeValue = None) -> AttributeValue:
    """An attribute's Python value (its schema's type: see AttributeValue), or `default`."""
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def build_view(model: onnx.ModelProto) -> GraphView:
    """Index the model's main graph; shape inference failures leave types unknown rather than stopping."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    graph = inferred.graph
    initializer_names = {tensor.name for tensor in graph.initializer}
    view = GraphView(
        model=model,
        nodes=list(graph.node),
        inputs=[value for value in graph.input if value.name not in initializer_names],
        outputs=list(graph.output),
    )
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type:
            view.elem_types[value.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            view.ranks[value.name] = len(tensor_type.shape.dim)
    for tensor in graph.initializer:
        view.constants[tensor.name] = numpy_helper.to_array(tensor)
        view.elem_types[tensor.name] = tensor.data_type
    for node in view.nodes:
        view.implicit[id(node)] = implicit_inputs(node)
        for name in node.output:
            view.producer[name] = node
        for name in dict.fromkeys(view.reads(node)):
            if name:
                view.consumers.setdefault(name, []).append(node)
    _fold_constants(view, _opset(model))
    return view


def implicit_inputs(node: onnx.NodeProto) -> list[str]:
    """Outer-scope names that a node's subgraph attributes read without listing them as inputs."""
    found: list[str] = []
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for graph in graphs:
            found += _free_names(graph)
    return list(dict.fromkeys(found))


def _free_names(graph: onnx.GraphProto) -> list[str]:
    """Names a (sub)graph reads that it does not define itself."""
    defined = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer}
    free: list[str] = []
    for node in graph.node:
        free += [name for name in [*node.input, *implicit_inputs(node)] if name and name not in defined]
        defined.update(node.output)
    return free


def evaluate(view: GraphView, nodes: list[onnx.NodeProto], feeds: dict[str, np.ndarray],
             outputs: list[str]) -> list[np.ndarray]:
    """Run `nodes` (in graph order) on `feeds` with onnxruntime (it runs any Scan, where the reference
    evaluator scans axis 0 only), every other tensor they read taken from the folded constants; raises when
    one is neither fed nor constant."""
    produced = {name for node in nodes for name in node.output}
    needed = dict.fromkeys(name for node in nodes for name in view.reads(node)
                           if name and name not in produced and name not in feeds)
    missing = [name for name in needed if name not in view.constants]
    if missing:
        raise ValueError(f"not constant: {', '.join(missing)}")
    graph = helper.make_graph(
        nodes, "probe",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
         for name, value in feeds.items()],
        [helper.make_empty_tensor_value_info(name) for name in outputs],
        [numpy_helper.from_array(view.constants[name], name) for name in needed],
    )
    model = helper.make_model(graph, opset_imports=view.model.opset_import, ir_version=view.model.ir_version)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(value) for value in session.run(outputs, feeds)]


def _opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 13)


def _fold_constants(view: GraphView, opset: int) -> None:
    """Evaluate every node whose inputs are all constant, in graph order; unevaluable nodes stay non-constant."""
    for node in view.nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type in ("RandomNormal", "RandomUniform"):
            continue
        inputs = [name for name in node.input if name]
        if not all(name in view.constants for name in view.reads(node) if name):
            continue
        if sum(view.constants[name].size for name in inputs) > _FOLD_LIMIT:
            continue
        try:
            evaluator = ReferenceEvaluator(node, opsets={"": opset})
            results = evaluator.run(None, {name: view.constants[name] for name in inputs})
        except Exception:
            continue
        for name, value in zip(node.output, results, strict=False):
            view.constants[name] = np.asarray(value)
            view.elem_types.setdefault(name, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype))
