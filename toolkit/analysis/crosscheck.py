"""analyze's heavy-op multiplications against onnxruntime's own shapes: a check that uses no cost rule of ours.

Why: on a real graph, Conv, MatMul, Gemm and STFT carry nearly all the multiplications. onnxruntime, running the
graph unoptimized with profiling on, records every node's input and output shapes as it really ran; the products
follow from those shapes by the textbook formula (written here again, apart from the cost rules), so a shape that
analyze propagated wrongly, or a wrong rule, shows as a difference. Nodes inside an If, Loop or Scan body are
counted within their parent node by analyze and are not compared one by one.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from toolkit.analysis import Analysis
from toolkit.analysis.attributes import LATEST_OPSET, decode
from toolkit.analysis.propagate import declared_inputs, opset_of

HEAVY_OPS = ("Conv", "MatMul", "Gemm", "STFT")
Shape = tuple[int, ...]


@dataclass(frozen=True)
class HeavyNode:
    """One heavy node's multiplications: analyze's (dense, at its dims) and those from onnxruntime's shapes."""

    index: int
    name: str
    op_type: str
    ours: int
    onnxruntime: int | None  # None: onnxruntime's trace did not say (the reason is in `note`)
    note: str = ""

    @property
    def equal(self) -> bool:
        return self.ours == self.onnxruntime


def products(node: onnx.NodeProto, inputs: list[Shape], outputs: list[Shape], opset: int = LATEST_OPSET) -> int | None:
    """The multiplications of one heavy node from its real shapes (README's counting convention); `inputs` are
    by the node's input positions, `opset` the model's (it decides the attributes' defaults)."""
    out = math.prod(outputs[0])
    if node.op_type == "Conv":
        weight = inputs[1]
        return out * weight[1] * math.prod(weight[2:])  # Cin/group x kernel taps per output element
    if node.op_type == "MatMul":
        return out * inputs[0][-1]
    if node.op_type == "Gemm":
        attrs = decode(node, opset)
        k = inputs[0][0] if attrs["transA"] else inputs[0][1]
        has_c = len(node.input) > 2 and bool(node.input[2])
        extra = (float(attrs["alpha"]) != 1) + (has_c and float(attrs["beta"]) != 1)
        return out * (k + extra)
    if node.op_type == "STFT" and len(inputs) > 2 and inputs[2]:  # the window's length is the frame's
        batch, frames, bins = outputs[0][:3]
        signal = inputs[0]  # [batch, samples, 1 or 2], or [batch, samples] as onnxruntime also takes a real one
        length, parts = inputs[2][0], signal[-1] if len(signal) == 3 else 1  # parts: 2 for a complex signal
        return batch * frames * (parts * length + bins * (2 if parts == 1 else 4) * length)
    return None


def _shapes(entries: list[dict[str, list[int]]]) -> list[Shape]:
    return [tuple(next(iter(entry.values()))) for entry in entries]


def constant_shapes(model: onnx.ModelProto) -> dict[str, Shape]:
    """The file's own dims of its initializers and Constant nodes' values."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            shapes[node.output[0]] = tuple(node.attribute[0].t.dims)
    return shapes


def by_position(node: onnx.NodeProto, traced: list[Shape], constants: dict[str, Shape]) -> list[Shape]:
    """The trace's input shapes put back at the node's input positions. onnxruntime leaves out a constant input
    its kernel packed ahead (MatMul's or Gemm's B): such an input takes the file's dims of that constant."""
    if len(traced) == len(node.input):
        return traced
    shapes, rest = [], list(traced)
    for name in node.input:
        if name in constants and (not rest or rest[0] != constants[name]):
            shapes.append(constants[name])  # packed ahead, so not in the trace
        else:
            shapes.append(rest.pop(0) if rest else ())
    return shapes


MARK = "crosscheck_node_"


def marked(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose top-level nodes are named by their index: onnxruntime's trace then says which node each
    event is (its own node_index skips the Constant nodes it folds, and body nodes may share names)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for index, node in enumerate(copy.graph.node):
        node.name = f"{MARK}{index}"
    return copy


def onnxruntime_shapes(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[int, tuple[list[Shape],
                                                                                               list[Shape]]]:
    """Top-level node index -> (input shapes, output shapes) as onnxruntime ran them, from its profiling trace."""
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # nodes stay as written
        options.log_severity_level = 4
        session = ort.InferenceSession(marked(model).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        trace = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    shapes, constants = {}, constant_shapes(model)
    for event in trace:
        name, args = event.get("name", ""), event.get("args", {})
        if event.get("cat") == "Node" and name.startswith(MARK) and name.endswith("_kernel_time"):
            index = int(name.removeprefix(MARK).removesuffix("_kernel_time"))
            shapes[index] = (by_position(model.graph.node[index], _shapes(args["input_type_shape"]), constants),
                             _shapes(args["output_type_shape"]))
    return shapes


def feeds_for(analysis: Analysis, seed: int = 0) -> dict[str, np.ndarray]:
    """What onnxruntime is fed: every input analyze gave a value (lengths, rate, --input) that value, the audio
    and any other input noise / zeros at analyze's dims, so that both see the same sizes."""
    inputs, _ = declared_inputs(analysis.model)
    rng = np.random.default_rng(seed)
    feeds = {}
    for tensor in inputs:
        shape = tuple(analysis.value(d) for d in tensor.dims)
        dtype = helper.tensor_dtype_to_np_dtype(tensor.dtype)
        if tensor.name in analysis.input_values:
            value = analysis.input_values[tensor.name].value
            values = np.full(shape, analysis.value(value) if value.is_integer else float(value))
        else:
            values = rng.standard_normal(shape) * 0.1 if tensor is inputs[0] else np.zeros(shape)
        feeds[tensor.name] = values.astype(dtype)
    return feeds


def heavy_nodes(analysis: Analysis) -> list[HeavyNode]:
    """Every top-level heavy node: analyze's multiplications beside those from onnxruntime's shapes."""
    shapes = onnxruntime_shapes(analysis.model, feeds_for(analysis))
    rows = []
    for report in analysis.nodes:
        if report.op_type not in HEAVY_OPS or report.dense is None:  # not counted
            continue
        ours = report.dense.subs(analysis.bindings).as_ints().get("mul", 0)
        node = analysis.model.graph.node[report.index]
        if report.index not in shapes:
            rows.append(HeavyNode(report.index, report.name, report.op_type, ours, None,
                                  "onnxruntime's trace names no such node"))
            continue
        theirs = products(node, *shapes[report.index], opset_of(analysis.model))
        note = "" if theirs is not None else "the STFT's frame length is an input value, not a shape"
        rows.append(HeavyNode(report.index, report.name, report.op_type, ours, theirs, note))
    return rows


def crosscheck_json(rows: list[HeavyNode]) -> dict[str, object]:
    """The comparison as analyze's JSON carries it: per node, and whether every answered node is equal."""
    return {"method": "onnxruntime CPU, optimizations off, profiling trace's input/output shapes per node; "
                      "products by README's counting convention",
            "equal": all(r.equal for r in rows if r.onnxruntime is not None),
            "compared": sum(r.onnxruntime is not None for r in rows),
            "nodes": [{"name": r.name, "op_type": r.op_type, "analyze": r.ours, "onnxruntime": r.onnxruntime,
                       "equal": r.equal, **({"note": r.note} if r.note else {})} for r in rows]}
