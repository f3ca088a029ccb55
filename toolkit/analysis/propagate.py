"""Walk the graph once: symbolic shapes, known values and each node's rule result, in graph order."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import onnx
import sympy as sp
from onnx import numpy_helper
from onnx.external_data_helper import uses_external_data
from onnx.reference import ReferenceEvaluator

from toolkit.analysis.attributes import STANDARD_DOMAINS
from toolkit.analysis.counts import Counts, total
from toolkit.analysis.dims import dim_symbol
from toolkit.analysis.ops import RULES
from toolkit.analysis.ops.base import Bindings, NodeContext, NodeResult, Subgraph, Tensor
from toolkit.analysis.values import symbolic_values
from toolkit.errors import ToolkitError
from toolkit.graphs import check_inputs_provided, graph_order

FOLD_LIMIT = 1 << 24  # elements: constants are folded up to this size, bigger ones keep only their shape


@dataclass
class NodeOutcome:
    index: int
    node: onnx.NodeProto
    result: NodeResult | None  # None: no rule for this op, or the rule could not run
    problem: str | None = None
    # constant inputs whose values are unknown (weights left on disk, constants too big or impossible to fold):
    # the effective count cannot skip their 0s and 1s, so it is an upper bound
    unknown_constants: list[str] = field(default_factory=list)


@dataclass
class Propagation:
    inputs: list[Tensor]
    outputs: list[Tensor | None]
    nodes: list[NodeOutcome]
    tensors: dict[str, Tensor]
    symbols: dict[str, sp.Symbol] = field(default_factory=dict)


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), 1)


def input_tensor(value_info: onnx.ValueInfoProto, symbols: dict[str, sp.Symbol]) -> Tensor:
    """A graph input with its declared dims: numbers stay numbers, names become symbols."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise ToolkitError(f"input '{value_info.name}' has no declared rank; give the model a shaped input")
    dims = []
    for i, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(sp.Integer(dim.dim_value))
        else:
            name = dim.dim_param or f"{value_info.name}_dim{i}"
            dims.append(symbols.setdefault(name, dim_symbol(name)))
    return Tensor(value_info.name, tensor_type.elem_type, tuple(dims))


def initializer_tensor(init: onnx.TensorProto) -> Tensor:
    """A constant with its value; shape only when toolkit.load left its data on disk (never read from here)."""
    if uses_external_data(init):
        return Tensor(init.name, init.data_type, tuple(sp.Integer(d) for d in init.dims), None, constant=True)
    value = numpy_helper.to_array(init)
    return Tensor(init.name, init.data_type, tuple(sp.Integer(d) for d in value.shape), value, constant=True)


def fold_values(node: onnx.NodeProto, inputs: list[Tensor | None], opset: int) -> list[np.ndarray] | None:
    """Outputs of a node whose input values are all known numbers, computed by onnx's reference evaluator."""
    if any(t is not None and (t.value is None or t.value.dtype == object) for t in inputs):
        return None
    feeds = {name: t.value for name, t in zip(node.input, inputs, strict=False) if name and t is not None}
    try:
        evaluator = ReferenceEvaluator(node, opsets={"": opset})
        return list(evaluator.run(None, feeds))
    except Exception:  # an op the reference evaluator lacks: the value stays unknown, the count does not
        return None


def foldable(result: NodeResult) -> bool:
    """Outputs small enough to compute: a model could ask ConstantOfShape or Expand for terabytes."""
    sizes = [t.numel if t.shape is not None else None for t in result.outputs]
    return all(size is not None and size.is_Integer and int(size) <= FOLD_LIMIT for size in sizes)


def run_rule(index: int, node: onnx.NodeProto, inputs: list[Tensor | None], opset: int,
             scope: dict[str, Tensor], bindings: Bindings) -> NodeOutcome:
    if node.domain not in STANDARD_DOMAINS:
        return NodeOutcome(index, node, None, f"custom-domain op {node.domain}.{node.op_type}: not counted")
    rule = RULES.get(node.op_type)
    if rule is None:
        return NodeOutcome(index, node, None, f"no rule for {node.op_type}: not counted")
    try:
        context = NodeContext(node, inputs, opset, partial(run_subgraph, scope=scope, opset=opset,
                                                           bindings=bindings), bindings)
        return NodeOutcome(index, node, rule(context))
    except ToolkitError as error:
        return NodeOutcome(index, node, None, str(error))
    except Exception as error:  # a rule that meets a case it does not handle: say so, count nothing
        return NodeOutcome(index, node, None, f"the {node.op_type} rule could not handle this node "
                                              f"({type(error).__name__}: {error}): not counted")


def has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def output_values(node: onnx.NodeProto, inputs: list[Tensor | None], result: NodeResult,
                  opset: int) -> list[np.ndarray] | None:
    """The one place output values come from: numeric folding, else the formulas of shape arithmetic."""
    folded = fold_values(node, inputs, opset) if foldable(result) else None
    return folded if folded is not None else symbolic_values(NodeContext(node, inputs, opset), result)


def walk(graph: onnx.GraphProto, tensors: dict[str, Tensor], opset: int, bindings: Bindings) -> list[NodeOutcome]:
    """Every node of `graph` in dependency order; `tensors` (the scope) gains each node's outputs."""
    check_inputs_provided(graph, set(tensors))
    outcomes = []
    for index in graph_order(graph, set(tensors)):
        node = graph.node[index]
        node_inputs = [tensors.get(name) if name else None for name in node.input]
        if any(name and t is None for name, t in zip(node.input, node_inputs, strict=True)):
            outcome = NodeOutcome(index, node, None, "an input comes from a node that could not be analyzed")
        else:
            outcome = run_rule(index, node, node_inputs, opset, tensors, bindings)
        outcomes.append(outcome)
        outcome.unknown_constants = [t.name for t in node_inputs if t is not None and t.constant and t.value is None]
        if outcome.result is None:
            continue
        values = output_values(node, node_inputs, outcome.result, opset)
        # a control-flow node reads its scope too: its outputs are never taken as constant
        constant = all(t is None or t.constant for t in node_inputs) and not has_subgraph(node)
        for i, out in enumerate(outcome.result.outputs):
            if values is not None and i < len(values):
                out.value, out.constant = np.asarray(values[i]), constant
            elif constant:  # constant, value not computed: readers must not count it as free of 0s and 1s
                out.value, out.constant = None, True
            tensors[out.name] = out
    outcomes.sort(key=lambda o: o.index)
    return outcomes


def run_subgraph(graph: onnx.GraphProto, inputs: list[Tensor], scope: dict[str, Tensor], opset: int,
                 bindings: Bindings) -> Subgraph:
    """A control-flow body with its inputs bound, seeing the enclosing scope; any node it cannot count is an error
    naming that node, since a body counted in part would be a silent undercount."""
    tensors = dict(scope)
    tensors.update({init.name: initializer_tensor(init) for init in graph.initializer})
    for declared, given in zip(graph.input, inputs, strict=True):
        tensors[declared.name] = Tensor(declared.name, given.dtype, given.shape, given.value)
    dense: list[Counts] = []
    effective: list[Counts] = []
    constraints: list[tuple[sp.Expr, str]] = []
    for outcome in walk(graph, tensors, opset, bindings):
        result = outcome.result
        if result is None or result.dense is None:
            node = outcome.node
            why = outcome.problem or "its cost depends on a condition known only at run time"
            raise ToolkitError(f"node '{node.name or node.op_type}' ({node.op_type}) in subgraph '{graph.name}': "
                               f"{why}")
        dense.append(result.dense)
        effective.append(result.effective if result.effective is not None else result.dense)
        constraints += result.constraints
    return Subgraph([tensors[o.name] for o in graph.output], total(dense), total(effective), constraints)


def declared_inputs(model: onnx.ModelProto) -> tuple[list[Tensor], dict[str, sp.Symbol]]:
    """The graph inputs that are not initializers, with their declared dims, and the symbols of those dims."""
    symbols: dict[str, sp.Symbol] = {}
    constants = {init.name for init in model.graph.initializer}
    return [input_tensor(v, symbols) for v in model.graph.input if v.name not in constants], symbols


def propagate(model: onnx.ModelProto, known_inputs: dict[str, np.ndarray] | None = None,
              bindings: Bindings | None = None) -> Propagation:
    """Shapes and rule results for every node; a node that cannot be analyzed is recorded, not fatal.

    `bindings` (the dims' values) decide only what no formula can carry (see toolkit.analysis.ops.control).
    `known_inputs` gives the values of inputs that carry shapes (a Reshape target fed as a graph input): they
    are known, not constant, so they shape the graph without making any arithmetic free.
    """
    graph = model.graph
    opset = opset_of(model)
    tensors = {init.name: initializer_tensor(init) for init in graph.initializer}
    inputs, symbols = declared_inputs(model)
    for tensor in inputs:
        if known_inputs and tensor.name in known_inputs:  # a value fixes the shape: the value's own
            tensor.value = np.asarray(known_inputs[tensor.name])
            tensor.shape = tuple(sp.Integer(d) for d in tensor.value.shape)
    tensors.update({t.name: t for t in inputs})
    outcomes = walk(graph, tensors, opset, bindings or {})
    outputs = [tensors.get(v.name) for v in graph.output]
    return Propagation(inputs, outputs, outcomes, tensors, symbols)
