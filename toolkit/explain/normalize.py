"""Recognize affine normalizations y = a x + b by constants, before the transform or after it (Whisper's
(x + 4) / 4), keeping the graph's own spelling for the formula and giving the folded a and b beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.dimflow import axes_input, reduced_axes
from toolkit.explain.graph import GraphView
from toolkit.explain.masks import mask_condition
from toolkit.explain.walk import ancestors

# op -> (kind of step, whether the signal must be the first input, how the constant enters)
_STEPS: dict[str, tuple[str, bool, Callable[[np.ndarray], np.ndarray]]] = {
    "Mul": ("mul", False, lambda v: v),
    "Div": ("mul", True, lambda v: 1 / v),
    "Add": ("add", False, lambda v: v),
    "Sub": ("add", True, lambda v: -v),
}
_SYMBOLS = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-"}


def affine_step(view: GraphView, node: onnx.NodeProto, tensor: str) -> tuple[str, np.ndarray] | None:
    """("mul", factor) or ("add", term) if `node` is tensor * c, tensor / c, tensor +- c or c + tensor."""
    rule = _STEPS.get(node.op_type)
    other = view.other_input(node, tensor)
    value = view.const(other) if other else None
    if rule is None or value is None or (rule[1] and node.input[0] != tensor):
        return None
    kind, _, convert = rule
    with np.errstate(divide="ignore"):
        return kind, np.asarray(convert(value.astype(np.float64)))


def _constant_text(value: np.ndarray, index: int) -> str:
    return fmt(float(value.reshape(-1)[0])) if value.size == 1 else f"c{index}"


def recognize_affine(view: GraphView, signal: Signal) -> Match | None:
    """A chain of Add/Sub/Mul/Div by constants on the signal path."""
    if signal.form != "real":
        return None
    tensor, text = signal.tensors[0], "{x}"
    nodes: list[onnx.NodeProto] = []
    steps: list[tuple[tuple[str, np.ndarray], str, np.ndarray]] = []
    while True:
        end, path = view.forward(tensor)
        users = view.data_consumers(end)
        step = affine_step(view, users[0], end) if len(users) == 1 else None
        other = view.other_input(users[0], end) if step is not None else None
        constant = view.const(other) if other else None
        if step is None or constant is None:  # a step always has its constant
            break
        node = users[0]
        label = _constant_text(constant, len(steps) + 1)
        wrapped = f"({text})" if node.op_type in ("Mul", "Div") and any(op in text for op in " + - ") else text
        text = f"{wrapped} {_SYMBOLS[node.op_type]} {label}"
        steps.append((step, label, constant))
        nodes += [*path, node]
        tensor = node.output[0]
    if not steps:
        return None
    return Match(_block(view, signal, nodes, steps, text), signal.then((tensor,)))


def _block(view: GraphView, signal: Signal, nodes: list[onnx.NodeProto],
           steps: list[tuple[tuple[str, np.ndarray], str, np.ndarray]], text: str) -> Block:
    scale: np.float64 | np.ndarray = np.float64(1.0)
    offset: np.float64 | np.ndarray = np.float64(0.0)
    for (kind, value), _, _ in steps:
        scale, offset = (scale * value, offset * value) if kind == "mul" else (scale, offset + value)
    scalar = np.size(scale) == 1 and np.size(offset) == 1
    folded = f"{fmt(float(scale))} x + {fmt(float(offset))}" if scalar else "a x + b with per-element constants"
    where = {"time": "on the samples, before the transform", "spectral": "on the features"}.get(
        signal.domain, "on the signal")
    vectors = [Param(label, list(np.shape(constant)), "", "constant of this shape")
               for _, label, constant in steps if constant.size != 1]
    return Block(
        kind="affine",
        nodes=node_names(view, nodes),
        summary=f"Affine normalization {where}: {text.format(x='x')} = {folded}.",
        params=[Param("as written", text.format(x="x")), Param("folded", folded), *vectors],
        formula=Formula(text=text, latex=text.replace("*", r"\cdot")),
    )




_REDUCE = ("ReduceSum", "ReduceMean", "ReduceSumSquare")


def _source_reduction(view: GraphView, tensor: str, data: str) -> onnx.NodeProto | None:
    """The Reduce* that `tensor` is computed from and that reads `data` itself, a Where(mask, data, 0) of it,
    or its square."""
    nodes = [node for node in view.nodes if id(node) in ancestors(view, tensor)]
    readers = {data} | {node.output[0] for node in nodes if node.op_type in ("Where", "Pow", "Mul")
                        and data in node.input}
    return next((node for node in nodes if node.op_type in _REDUCE and node.input[0] in readers), None)


def _epsilon(view: GraphView, nodes: list[onnx.NodeProto]) -> tuple[float, str] | None:
    """The constant added around the square root: (eps, "outside" sqrt(var) + eps or "inside" sqrt(var + eps))."""
    producers = {node.output[0]: node for node in nodes}
    for node in nodes:
        other = view.other_input(node, node.input[0]) if node.op_type == "Add" else None
        for operand in (node.input[0], node.input[1]) if other else ():
            value = view.scalar(operand)
            source = producers.get(node.input[1] if operand == node.input[0] else node.input[0])
            if value is not None and source is not None:
                return value, "outside" if source.op_type == "Sqrt" else "inside"
    return None


def _standardize_parts(view: GraphView, x: str) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
    """(mean reduction, Div (x - mean) / std) when x is standardized: the deviation's divisor comes from a
    square root of a reduction over x - mean."""
    for sub in (n for n in view.data_consumers(x) if n.op_type == "Sub" and n.input[0] == x):
        mean = _source_reduction(view, sub.input[1], x)
        centred = sub.output[0]
        for div in (n for n in view.data_consumers(centred) if n.op_type == "Div" and n.input[0] == centred):
            deviation = [n for n in view.nodes if id(n) in ancestors(view, div.input[1])]
            variance = _source_reduction(view, div.input[1], centred)
            if mean is not None and variance is not None and any(n.op_type == "Sqrt" for n in deviation):
                return mean, div
    return None


def recognize_standardize(view: GraphView, signal: Signal) -> Match | None:
    """(x - mean) / (std + eps) with the mean and variance over some axes (masked by lengths or not): NeMo's
    per-feature normalization, or a global one when every non-batch axis is reduced."""
    if signal.form != "real":
        return None
    start, path = view.forward(signal.tensors[0])
    parts = _standardize_parts(view, start)
    if parts is None:
        return None
    mean, div = parts
    output = div.output[0]
    mask = next((n for n in view.data_consumers(output) if n.op_type == "Where" and n.input[1] == output
                 and mask_condition(view, n.input[0])), None)
    output = mask.output[0] if mask is not None else output
    upstream = ancestors(view, start)
    nodes = [n for n in view.nodes if id(n) in ancestors(view, output) and id(n) not in upstream
             and not all(name in view.constants for name in n.output)]
    return Match(_standardize_block(view, start, [*path, *nodes], mean, mask), signal.then((output,)))


def _standardize_block(view: GraphView, x: str, nodes: list[onnx.NodeProto], mean: onnx.NodeProto,
                       mask: onnx.NodeProto | None) -> Block:
    rank = view.rank(x)
    reduced = reduced_axes(view, mean, rank) if rank is not None else None
    axes = sorted(reduced) if reduced is not None else axes_input(view, mean)
    scope = "global (every non-batch axis)" if axes and rank and len(axes) == rank - 1 and 0 not in axes else \
        f"per feature (statistics over axis {', '.join(map(str, axes)) if axes else '?'})"
    # NeMo divides the summed squares by (count - 1): a Sub of 1 among the statistics' nodes
    unbiased = any(n.op_type == "Sub" and view.scalar(n.input[1]) == 1 for n in nodes)
    epsilon = _epsilon(view, nodes)
    epsilon = None if epsilon is None else (float(f"{epsilon[0]:.6g}"), epsilon[1])
    eps_text = "" if epsilon is None else (f" + {fmt(epsilon[0])}" if epsilon[1] == "outside" else "")
    std = f"sqrt(var{' + ' + fmt(epsilon[0]) if epsilon and epsilon[1] == 'inside' else ''}){eps_text}"
    condition = mask_condition(view, mask.input[0]) if mask is not None else None
    length = condition[1] if condition is not None else None
    params = [Param("scope", scope), Param("variance", "unbiased: / (n - 1)" if unbiased else "/ n"),
              Param("epsilon", None if epsilon is None else epsilon[0], note="" if epsilon is None
                    else f"{epsilon[1]} the square root"),
              Param("masked", length or "no", note="statistics and output only over positions < length" if length
                    else "")]
    return Block(
        kind="normalization",
        nodes=node_names(view, nodes),
        summary=f"Standardization {scope}: (x - mean) / ({std}), variance "
                f"{'unbiased (n - 1)' if unbiased else 'over n'}" + (f", over positions < {length}" if length
                                                                     else "") + ".",
        params=params,
        formula=Formula(text=f"({{s}} - mean({{s}})) / ({std.replace('var', 'var({s})')})"
                        + (f" for i < {length}, else 0" if length else ""),
                        latex=rf"\frac{{{{s}} - \mu}}{{\sigma{eps_text}}}", reuses=True),
    )


RECOGNIZERS = (recognize_standardize, recognize_affine)
