"""Recognize the spectrum stage: power |X|^2 = re^2 + im^2, or magnitude |X| (a square root of it).

The complex value arrives as a (re, im) pair of tensors (the Conv form) or stacked on a last axis of 2 (ONNX's
STFT and DFT ops); both layouts and the usual spellings of a square (Pow 2, x*x, ReduceSumSquare) are accepted.
"""

from __future__ import annotations

import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, node_names
from toolkit.explain.dimflow import axes_input, reduced_axes
from toolkit.explain.graph import GraphView


def _is_power_of(view: GraphView, node: onnx.NodeProto, tensor: str, exponent: float) -> bool:
    """True for Pow(tensor, exponent) and, for exponent 2, Mul(tensor, tensor)."""
    if node.op_type == "Pow" and node.input[0] == tensor:
        return view.scalar(node.input[1]) == exponent
    return exponent == 2 and node.op_type == "Mul" and list(node.input) == [tensor, tensor]


def _square(view: GraphView, tensor: str) -> tuple[list[onnx.NodeProto], str] | None:
    """The nodes squaring `tensor` (after layout ops) and the squared tensor."""
    end, path = view.forward(tensor)
    node = next((n for n in view.data_consumers(end) if _is_power_of(view, n, end, 2)), None)
    return None if node is None else ([*path, node], node.output[0])


def _root(view: GraphView, tensor: str) -> tuple[list[onnx.NodeProto], str] | None:
    """A Sqrt (or Pow 0.5) as the only reader of `tensor`."""
    end, path = view.forward(tensor)
    users = view.data_consumers(end)
    if len(users) == 1 and (users[0].op_type == "Sqrt" or _is_power_of(view, users[0], end, 0.5)):
        return [*path, users[0]], users[0].output[0]
    return None


def _pair_power(view: GraphView, signal: Signal) -> tuple[list[onnx.NodeProto], str] | None:
    """re^2 + im^2 from a (re, im) pair."""
    found = [_square(view, tensor) for tensor in signal.tensors]
    squares = [square for square in found if square is not None]
    if len(squares) < len(found):
        return None
    (re_nodes, re_sq), (im_nodes, im_sq) = squares
    add = next((n for n in view.data_consumers(re_sq) if n.op_type == "Add" and set(n.input) == {re_sq, im_sq}), None)
    return None if add is None else ([*re_nodes, *im_nodes, add], add.output[0])


def _over_axis(view: GraphView, node: onnx.NodeProto, tensor: str, axis: int) -> bool:
    """True when the reduction runs over `axis` only (-1: the last axis, also when the rank is unknown)."""
    rank = view.rank(tensor)
    if rank is None:
        return axis == -1 and axes_input(view, node) == [-1]
    axes = reduced_axes(view, node, rank)
    return axes == {axis % rank}


def _stacked(view: GraphView, signal: Signal) -> tuple[list[onnx.NodeProto], str, int] | None:
    """Power (exponent 2) or magnitude (1) over the axis of 2 (re, im) of a stacked complex tensor: the last
    axis for the STFT and DFT ops, the one the transform names in its context (a Conv's [2, bins] channels)."""
    end, path = view.forward(signal.tensors[0])
    axis = signal.context.get("complex_axis", -1)
    for node in view.data_consumers(end):
        exponent = {"ReduceSumSquare": 2, "ReduceL2": 1}.get(node.op_type)
        if exponent and _over_axis(view, node, end, axis):
            return [*path, node], node.output[0], exponent
    square = _square(view, end)
    if square is None:
        return None
    nodes, squared = square
    summed = next((n for n in view.data_consumers(squared) if n.op_type == "ReduceSum"), None)
    if summed is None or not _over_axis(view, summed, squared, axis):
        return None
    return [*path, *nodes, summed], summed.output[0], 2


def recognize_spectrum(view: GraphView, signal: Signal) -> Match | None:
    """|X|^2 or |X| of the transform's output."""
    found: tuple[list[onnx.NodeProto], str, int] | None
    if signal.form == "pair":
        power = _pair_power(view, signal)
        found = None if power is None else (*power, 2)
    elif signal.form == "stacked":
        found = _stacked(view, signal)
    else:
        return None
    if found is None:
        return None
    nodes, output, exponent = found
    root = _root(view, output) if exponent == 2 else None
    if root is not None:
        nodes, output, exponent = [*nodes, *root[0]], root[1], 1
    kind = "power spectrum" if exponent == 2 else "magnitude spectrum"
    block = Block(
        kind=kind,
        nodes=node_names(view, nodes),
        summary=(
            "Power spectrum: squared magnitude re^2 + im^2 of every bin (the phase is discarded)."
            if exponent == 2
            else "Magnitude spectrum: |X| = sqrt(re^2 + im^2) of every bin (the phase is discarded)."
        ),
        params=[
            Param("exponent", exponent, "", "|X|^exponent"),
            Param("layout", "separate re and im tensors" if signal.form == "pair"
                  else f"re, im stacked on axis {signal.context.get('complex_axis', -1)} (of size 2)"),
        ],
        formula=Formula(
            text="|{x}|^2" if exponent == 2 else "|{x}|",
            latex=r"\left|{x}\right|^2" if exponent == 2 else r"\left|{x}\right|",
        ),
    )
    return Match(block, signal.then((output,), "real", exponent=exponent))


RECOGNIZERS = (recognize_spectrum,)
