"""Recognize masks computed from a lengths input: Where(position < length, x, fill), which zeroes the padding
of shorter batch items, and read the length as an expression of that input (e.g. (lens + 80) / 160).
"""

from __future__ import annotations

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.graph import GraphView, attribute
from toolkit.explain.walk import ancestors

# op -> how it writes the expression when its other input is a constant c
_ARITHMETIC = {"Add": "{e} + {c}", "Sub": "{e} - {c}", "Mul": "{e} * {c}", "Div": "{e} / {c}"}


def length_expression(view: GraphView, tensor: str) -> str | None:
    """`tensor` as arithmetic by constants on a graph input, through layout ops and Casts; None otherwise.
    Division of integers is floor division, as ONNX's Div on int64."""
    inputs = {value.name for value in view.inputs}
    node = view.producer.get(tensor)
    if tensor in inputs:
        return tensor
    if node is None:
        return None
    if view.is_layout(node) or node.op_type == "Cast":
        return length_expression(view, node.input[0])
    for operand, other in ((node.input[0], node.input[-1]), (node.input[-1], node.input[0])):
        constant = view.scalar(other) if node.op_type in _ARITHMETIC and len(node.input) == 2 else None
        inner = length_expression(view, operand) if constant is not None else None
        if constant is not None and inner is not None and (operand == node.input[0] or node.op_type in ("Add", "Mul")):
            text = _ARITHMETIC[node.op_type].format(e=inner, c=fmt(constant))
            return f"({text})" if node.op_type in ("Add", "Sub") else text
    return None


def _positions(view: GraphView, tensor: str) -> int | None:
    """The axis whose positions a Range(0, Shape(x)[k]) counts, read from the Shape's start attribute."""
    node = view.producer.get(tensor)
    while node is not None and node.op_type in ("Unsqueeze", "Squeeze", "Cast", "Reshape"):
        node = view.producer.get(node.input[0])
    if node is None or node.op_type != "Range":
        return None
    shape = view.producer.get(node.input[1])
    while shape is not None and shape.op_type in ("Squeeze", "Cast", "Reshape", "Gather"):
        shape = view.producer.get(shape.input[0])
    return int(attribute(shape, "start", 0)) if shape is not None and shape.op_type == "Shape" else None


def mask_condition(view: GraphView, tensor: str) -> tuple[int | None, str] | None:
    """(masked axis, length expression) for Less(positions, length) computed from a lengths input."""
    node = view.producer.get(tensor)
    if node is None or node.op_type != "Less":
        return None
    length = length_expression(view, node.input[1])
    return None if length is None else (_positions(view, node.input[0]), length)


def recognize_mask(view: GraphView, signal: Signal) -> Match | None:
    """Where(position < length, x, fill): values at or past each item's length are set to the fill."""
    if signal.form != "real":
        return None
    start, path = view.forward(signal.tensors[0])
    for node in view.data_consumers(start):
        fill = view.scalar(node.input[2]) if node.op_type == "Where" and node.input[1] == start else None
        condition = mask_condition(view, node.input[0]) if fill is not None else None
        if fill is None or condition is None:
            continue
        axis, length = condition
        upstream = ancestors(view, start)
        mask_nodes = [n for n in view.nodes if id(n) in ancestors(view, node.input[0]) and id(n) not in upstream
                      and not all(name in view.constants for name in n.output)]
        where = f"axis {axis}" if axis is not None else "the counted axis"
        block = Block(
            kind="length mask",
            nodes=node_names(view, [*path, *mask_nodes, node]),
            summary=f"Mask from the lengths input: positions along {where} at or past {length} are set to "
                    f"{fmt(fill)} (the padding of shorter batch items).",
            params=[Param("axis", axis), Param("length", length), Param("fill", fill)],
            formula=Formula(text=f"({{x}} if i < {length} else {fmt(fill)})",
                            latex=rf"[i < {length}]\, {{x}}" if fill == 0 else r"\mathrm{mask}({x})"),
        )
        return Match(block, signal.then((node.output[0],), mask=(axis, length)))
    return None


RECOGNIZERS = (recognize_mask,)
