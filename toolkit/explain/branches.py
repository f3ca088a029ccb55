"""Ifs whose condition the known inputs decide are explained through the branch they take.

Silero VAD v6 wraps its whole graph in an If on the sample rate: walked as it is, the model is one opaque
`If` span. The inputs whose values are known (a sample rate: 16000 unless --sample-rate or --input says
otherwise, the same defaults analyze uses, toolkit.analysis.default_values) decide such a condition, so the
If is replaced by the nodes of the branch taken and the walk reads that branch like any other graph. Each If
is kept as a BranchChoice that says which branch and why, or that neither branch is explained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import onnx
from onnx import helper

from toolkit.analysis import default_values, given_values, input_arrays, resolve_dims
from toolkit.analysis.propagate import declared_inputs
from toolkit.errors import ToolkitError
from toolkit.explain.block import fmt
from toolkit.explain.graph import GraphView, attribute, build_view, evaluate
from toolkit.explain.walk import ancestors
from toolkit.load import lengths_inputs


@dataclass(frozen=True)
class BranchChoice:
    """One If of the main graph: its condition, the branch explained (None: neither) and why."""

    node: str
    condition: str
    taken: str | None
    because: str

    def sentence(self) -> str:
        if self.taken is None:
            return f"the If {self.node} on {self.condition}: {self.because}, so neither of its branches is explained"
        return f"explained through the {self.taken} branch of the If {self.node}: {self.condition} is {self.because}"

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "condition": self.condition, "taken": self.taken, "because": self.because}


@dataclass(frozen=True)
class KnownInput:
    """An input's value for deciding conditions, and where it comes from."""

    value: np.ndarray
    why: str


def known_inputs(model: onnx.ModelProto, given: Mapping[str, float], sample_rate: int) -> dict[str, KnownInput]:
    """The inputs beside the audio whose value is known, by analyze's rule: given with --input, or a default
    (a sample rate). Values that stay formulas in the input dims (lengths) decide nothing and are left out."""
    declared, symbols = declared_inputs(model)
    values = default_values(declared, lengths_inputs(model), sample_rate) | given_values(declared, given)
    try:
        dims = resolve_dims(declared, symbols, None, None, None)
    except ToolkitError:  # a state dim with no default: the scalar inputs still have values
        dims = {}
    known = {}
    for tensor in declared:
        if tensor.name not in values:
            continue
        try:
            array = input_arrays([tensor], values, dims)[tensor.name]
        except Exception:  # a shape in unbound dims: this value is not known as numbers
            continue
        if array.dtype != object:
            known[tensor.name] = KnownInput(array, values[tensor.name].why)
    return known


def resolve_branches(model: onnx.ModelProto, known: Mapping[str, KnownInput]
                     ) -> tuple[GraphView, list[BranchChoice]]:
    """The view of `model` with every If the known inputs decide replaced by its taken branch (nested ones
    too, once they reach the main graph), and what was done with each If."""
    choices: list[BranchChoice] = []
    view = build_view(model)
    for _ in range(_count_ifs(model.graph) + 1):
        undecided = {choice.node for choice in choices if choice.taken is None}
        pending = [node for node in view.nodes if node.op_type == "If" and view.name(node) not in undecided]
        if not pending:
            break
        node = pending[0]
        choice = _choose(view, node, known)
        choices.append(choice)
        if choice.taken is None:
            continue
        try:
            view = build_view(_inline(view, node, choice.taken))
        except Exception as error:  # a branch that does not make a valid graph: the If stays as it is
            choices[-1] = BranchChoice(choice.node, choice.condition, None,
                                       f"its {choice.taken} branch could not be inlined ({_first_line(error)})")
    return view, choices


def _count_ifs(graph: onnx.GraphProto) -> int:
    """Ifs in a graph and its subgraphs: a bound on how many times a branch can be inlined."""
    count = 0
    for node in graph.node:
        count += node.op_type == "If"
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                count += _count_ifs(sub)
    return count


def _choose(view: GraphView, node: onnx.NodeProto, known: Mapping[str, KnownInput]) -> BranchChoice:
    """Which branch the known inputs take; never raises (a condition that cannot be evaluated is undecided)."""
    name, condition = view.name(node), _condition_text(view, node.input[0])
    upstream = [n for n in view.nodes if id(n) in ancestors(view, node.input[0])]
    used = {tensor for n in upstream for tensor in view.reads(n)} | {node.input[0]}
    feeds = {tensor: value for tensor, value in known.items() if tensor in used}
    try:
        value = view.const(node.input[0])
        if value is None:
            (value,) = evaluate(view, upstream, {tensor: k.value for tensor, k in feeds.items()}, [node.input[0]])
        taken = "then" if bool(np.asarray(value).reshape(-1)[0]) else "else"
    except Exception as error:  # an input without a known value, or a condition onnxruntime cannot run
        return BranchChoice(name, condition, None, f"the known inputs do not decide it ({_first_line(error)})")
    clash = _name_clash(view, node, taken)
    if clash:
        return BranchChoice(name, condition, None, f"its {taken} branch redefines '{clash}' of the main graph")
    because = "; ".join(f"{tensor} = {_value_text(k.value)} ({k.why})" for tensor, k in feeds.items())
    return BranchChoice(name, condition, taken, f"{'true' if taken == 'then' else 'false'}"
                        + (f" with {because}" if because else " (constant)"))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def _value_text(value: np.ndarray) -> str:
    flat = np.asarray(value).reshape(-1)
    return fmt(float(flat[0])) if flat.size == 1 else f"an array of shape {list(np.shape(value))}"


def _condition_text(view: GraphView, tensor: str) -> str:
    """The condition as its producer spells it, e.g. Equal(sr, 16000); constants by value."""
    producer = view.producer.get(tensor)
    if producer is None or producer.op_type == "Constant":
        return tensor
    operands = [name if (value := view.const(name)) is None else _value_text(value)
                for name in producer.input if name]
    return f"{producer.op_type}({', '.join(operands)})"


def _branch(node: onnx.NodeProto, taken: str) -> onnx.GraphProto:
    return cast(onnx.GraphProto, attribute(node, f"{taken}_branch"))


def _name_clash(view: GraphView, node: onnx.NodeProto, taken: str) -> str | None:
    """A tensor the branch defines that the main graph defines too: inlining would merge two values."""
    branch = _branch(node, taken)
    defined = {*view.producer, *(value.name for value in view.model.graph.input),
               *(tensor.name for tensor in view.model.graph.initializer)} - set(node.output)
    made = [*(tensor.name for tensor in branch.initializer), *(name for n in branch.node for name in n.output)]
    return next((name for name in made if name in defined), None)


def _inline(view: GraphView, node: onnx.NodeProto, taken: str) -> onnx.ModelProto:
    """The model with the If replaced by its `taken` branch's nodes, each branch output passed on by an Identity
    to the If's output; unnamed branch nodes are named after the If and branch so the report points at them."""
    branch = _branch(node, taken)
    prefix = f"{view.name(node)}.{taken}"
    body = [_named(inner, f"{prefix}/{inner.op_type}_{i}") for i, inner in enumerate(branch.node)]
    passed = [helper.make_node("Identity", [inner.name], [outer], name=f"{prefix}/output_{i}")
              for i, (inner, outer) in enumerate(zip(branch.output, node.output, strict=True))]
    model = onnx.ModelProto()
    model.CopyFrom(view.model)
    nodes = list(model.graph.node)
    index = view.nodes.index(node)  # the view's nodes are the model's, in the same order
    del model.graph.node[:]
    model.graph.node.extend([*nodes[:index], *body, *passed, *nodes[index + 1:]])
    model.graph.initializer.extend(branch.initializer)
    return model


def _named(node: onnx.NodeProto, name: str) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = copy.name or name
    return copy
