"""Recognize affine normalizations y = a x + b by constants, before the transform or after it (Whisper's
(x + 4) / 4), keeping the graph's own spelling for the formula and giving the folded a and b beside it.
"""

from __future__ import annotations

import numpy as np
import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.graph import GraphView

# op -> (kind of step, whether the signal must be the first input, how the constant enters)
_STEPS = {
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
    tensor, nodes, steps = signal.tensors[0], [], []
    text = "{x}"
    while True:
        end, path = view.forward(tensor)
        users = view.data_consumers(end)
        step = affine_step(view, users[0], end) if len(users) == 1 else None
        if step is None:
            break
        node = users[0]
        constant = view.const(view.other_input(node, end))
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
    scale, offset = np.float64(1.0), np.float64(0.0)
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


RECOGNIZERS = (recognize_affine,)
