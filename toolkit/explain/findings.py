"""Findings that matter for deployment, each derived from the graph's structure and constants:
misdeclared output dims, no-op nodes, reductions that couple batch items or frames, kernel taps that are zero
in every channel (wasted multiplications), and sparse constant weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from toolkit.explain.dimflow import Axis, reduced_axes
from toolkit.explain.graph import GraphView, attribute

SPARSE_BELOW = 0.5  # nonzero fraction under which a weight is called sparse
_MIN_WEIGHT_SIZE = 64  # smaller constants are parameters, not weights
_REDUCTIONS = ("ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceL1",
               "ReduceProd", "ReduceLogSumExp")


@dataclass
class Finding:
    """One fact worth acting on, with the nodes it is about and its numbers."""

    kind: str
    message: str
    nodes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "nodes": self.nodes, "data": self.data}


def _dim_text(dim: onnx.TensorShapeProto.Dimension) -> str | int | None:
    return dim.dim_param or (dim.dim_value if dim.HasField("dim_value") else None)


def _input_dims(view: GraphView) -> dict[tuple[str, int], str | int | None]:
    return {(value.name, i): _dim_text(dim) for value in view.inputs
            for i, dim in enumerate(value.type.tensor_type.shape.dim)}


def _dim_finding(output: str, position: int, declared: str | int, axis: Axis,
                 inputs: dict[tuple[str, int], str | int | None]) -> Finding | None:
    """A declared output dim against where its axis really comes from."""
    if axis.origin is not None:
        source = inputs.get(axis.origin)
        if source is None or source == declared:
            return None
        role = f"; {axis.role_by} uses it as the {axis.role}" if axis.role else ""
        return Finding("declared dim", f"output '{output}' dim {position} is declared '{declared}' but it is input "
                       f"'{axis.origin[0]}' dim {axis.origin[1]} ('{source}') passed through unchanged{role}",
                       data={"output": output, "dim": position, "declared": declared, "inferred": source,
                             "role": axis.role})
    borrowed = [key for key, name in inputs.items() if isinstance(declared, str) and name == declared]
    if not borrowed:
        return None
    return Finding("declared dim", f"output '{output}' dim {position} is declared '{declared}', the name of input "
                   f"'{borrowed[0][0]}' dim {borrowed[0][1]}, but its size is derived, not copied "
                   f"({axis.role or 'no role'})", data={"output": output, "dim": position, "declared": declared})


def declared_dims(view: GraphView) -> list[Finding]:
    """Output dims whose declared name disagrees with the input dim that flows into them."""
    inputs, findings = _input_dims(view), []
    for value in view.outputs:
        axes = view.axes.get(value.name) or []
        dims = value.type.tensor_type.shape.dim
        for position, (dim, axis) in enumerate(zip(dims, axes, strict=False)):
            declared = _dim_text(dim)
            finding = _dim_finding(value.name, position, declared, axis, inputs) if declared is not None else None
            findings += [finding] if finding else []
    return findings


def _all(value: np.ndarray | None, target: float) -> bool:
    return value is not None and value.size == 1 and bool(np.all(value == target))


# op -> (test for a no-op given (view, node), what it does)
_NOOPS: dict[str, tuple[Callable[[GraphView, onnx.NodeProto], bool], str]] = {
    "Add": (lambda v, n: any(_all(v.const(i), 0) for i in n.input), "adds 0"),
    "Sub": (lambda v, n: _all(v.const(n.input[1]), 0), "subtracts 0"),
    "Mul": (lambda v, n: any(_all(v.const(i), 1) for i in n.input), "multiplies by 1"),
    "Div": (lambda v, n: _all(v.const(n.input[1]), 1), "divides by 1"),
    "Pow": (lambda v, n: _all(v.const(n.input[1]), 1), "raises to the power 1"),
    "Cast": (lambda v, n: v.is_same_type_cast(n), "casts to the type it already has"),
    "Identity": (lambda v, n: True, "copies its input"),
    "Transpose": (lambda v, n: list(attribute(n, "perm") or []) == sorted(attribute(n, "perm") or [0, 1]),
                  "applies the identity permutation"),
}


def _infinite_bounds(view: GraphView, node: onnx.NodeProto) -> list[str]:
    """Clip bounds that are constant +-inf: their compares never change a value."""
    names = {1: "lower", 2: "upper"}
    return [f"{names[i]} bound {view.scalar(node.input[i])}" for i in (1, 2)
            if len(node.input) > i and node.input[i] and view.scalar(node.input[i]) in (math.inf, -math.inf)]


def noop_nodes(view: GraphView) -> list[Finding]:
    """Nodes that return their input unchanged, and Clip bounds at infinity."""
    findings = []
    for node in view.nodes:
        if all(name in view.constants for name in node.output):
            continue
        test = _NOOPS.get(node.op_type)
        if test and test[0](view, node):
            findings.append(Finding("no-op", f"{view.name(node)} ({node.op_type}) {test[1]}: a no-op that can be "
                                    "removed", [view.name(node)], {"op": node.op_type}))
        if node.op_type == "Clip":
            bounds = _infinite_bounds(view, node)
            if bounds:
                findings.append(Finding("no-op compare", f"{view.name(node)} (Clip) has {', '.join(bounds)}: "
                                        "that compare is a no-op per element", [view.name(node)],
                                        {"op": "Clip", "bounds": bounds}))
    return findings


def global_reductions(view: GraphView) -> list[Finding]:
    """Reductions whose axes include the batch or the frames: outputs then depend on other items or frames."""
    findings = []
    for node in view.nodes:
        axes = view.axes.get(node.input[0]) if node.op_type in _REDUCTIONS else None
        if not axes:
            continue
        reduced = reduced_axes(view, node, len(axes))
        reduced_roles = (axes[i].role for i in reduced or ())
        roles = sorted({role for role in reduced_roles if role is not None and role in ("batch", "frames")})
        if reduced is None or not roles:
            continue
        scope = "every axis (one value for the whole tensor)" if len(reduced) == len(axes) else \
            f"axes {sorted(reduced)}"
        findings.append(Finding("global reduction", f"{view.name(node)} ({node.op_type}) reduces over {scope}, "
                                f"which includes the {' and the '.join(roles)}: each output depends on the other "
                                f"{' and '.join('batch items' if r == 'batch' else 'frames' for r in roles)}, so "
                                "batching and streaming in chunks change results",
                                [view.name(node)], {"axes": sorted(reduced), "couples": roles}))
    return findings


def _ranges(indices: np.ndarray) -> str:
    """[0, 1, 2, 7] -> "0..2, 7"."""
    parts, start = [], None
    for i, index in enumerate(indices):
        start = index if start is None else start
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            parts.append(f"{start}..{index}" if index != start else f"{start}")
            start = None
    return ", ".join(parts)


def zero_taps(view: GraphView) -> list[Finding]:
    """Conv kernel taps that are zero in every channel: multiplications that never change the output."""
    findings = []
    for node in view.nodes:
        weight = view.const(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weight is None or weight.ndim < 3:
            continue
        taps = weight.reshape(weight.shape[0] * weight.shape[1], -1)
        zero = np.flatnonzero(~np.any(taps != 0, axis=0))
        if zero.size == 0:
            continue
        wasted = int(zero.size * taps.shape[0])
        findings.append(Finding(
            "zero taps",
            f"{view.name(node)}: {zero.size} of {taps.shape[1]} kernel taps are zero in every channel (taps "
            f"{_ranges(zero)}): {wasted:,} wasted multiplications per output position (per frame)",
            [view.name(node)], {"zero_taps": int(zero.size), "taps": int(taps.shape[1]), "wasted_mul": wasted}))
    return findings


def _weights(view: GraphView) -> dict[str, list[str]]:
    """Constant weight tensors of Conv, MatMul and Gemm nodes, with the nodes using each."""
    used: dict[str, list[str]] = {}
    for node in view.nodes:
        if node.op_type in ("Conv", "MatMul", "Gemm", "ConvTranspose"):
            for name in node.input[:2]:
                value = view.const(name)
                if value is not None and value.size >= _MIN_WEIGHT_SIZE:
                    used.setdefault(name, []).append(view.name(node))
    return used


def sparse_weights(view: GraphView) -> list[Finding]:
    """Nonzero fraction of every constant weight that has zeros; under SPARSE_BELOW it is called sparse."""
    findings = []
    for name, users in _weights(view).items():
        value = view.constants[name]
        nonzero = int(np.count_nonzero(value))
        if nonzero == value.size:
            continue
        fraction = nonzero / value.size
        label = "sparse" if fraction < SPARSE_BELOW else "partly zero"
        findings.append(Finding(
            "sparse weight", f"{name} ({', '.join(users)}) is {label}: {nonzero:,} of {value.size:,} weights are "
            f"nonzero ({fraction:.1%}); {value.size - nonzero:,} multiplications by zero per use",
            users, {"tensor": name, "nonzero": nonzero, "size": int(value.size), "fraction": round(fraction, 6)}))
    return findings


FINDERS: tuple[Callable[[GraphView], list[Finding]], ...] = (
    declared_dims, noop_nodes, global_reductions, zero_taps, sparse_weights,
)


def find_all(view: GraphView) -> list[Finding]:
    return [finding for finder in FINDERS for finding in finder(view)]
