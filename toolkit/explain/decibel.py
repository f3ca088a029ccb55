"""Recognize the log stage (floor, log, multiplier, reference) and a top-dB clamp with the scope of its maximum.

The log stage is y = a ln(max(x, amin)) + b, however the graph spells it (Clip or Max floor, or x + eps; any
chain of Mul and Div by constants; one Add or Sub): a names the base (10 log10 is decibels of power) and
b = -a ln(ref) gives the reference. The clamp is max(y, max(y over some axes) - top); the axes of that
maximum decide whether one output depends on other frames or other batch items.
"""

from __future__ import annotations

import math

import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.dimflow import axes_input, reduced_axes
from toolkit.explain.graph import GraphView, attribute, tolerance
from toolkit.explain.normalize import affine_step

# multiplier a of ln(x) -> (plain text, LaTeX, what it means)
LOG_FORMS: tuple[tuple[float, str, str, str], ...] = (
    (10 / math.log(10), "10 log10", r"10\log_{10}", "decibels: power in, dB out"),
    (20 / math.log(10), "20 log10", r"20\log_{10}", "decibels of an amplitude"),
    (1 / math.log(10), "log10", r"\log_{10}", "base-10 logarithm"),
    (1.0, "ln", r"\ln", "natural logarithm"),
    (1 / math.log(2), "log2", r"\log_{2}", "base-2 logarithm"),
)


def _single_user(view: GraphView, tensor: str) -> tuple[list[onnx.NodeProto], onnx.NodeProto | None]:
    """Layout path from `tensor` and the one node reading its end (None if zero or several read it)."""
    end, path = view.forward(tensor)
    users = view.data_consumers(end)
    return path, users[0] if len(users) == 1 else None


def _floor(view: GraphView, node: onnx.NodeProto, tensor: str) -> tuple[str, float, float | None] | None:
    """("max" or "add", amin, upper bound or None) for Clip(x, amin[, max]), Max(x, amin) or Add(x, eps)."""
    if node.op_type == "Clip" and node.input[0] == tensor and len(node.input) > 1:
        low = view.scalar(node.input[1])
        high = view.scalar(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return None if low is None else ("max", low, None if high == math.inf else high)
    other = view.other_input(node, tensor)
    value = view.scalar(other) if other else None
    if value is None:
        return None
    return {"Max": ("max", value, None), "Add": ("add", value, None)}.get(node.op_type)


def _scale_chain(view: GraphView, tensor: str) -> tuple[list[onnx.NodeProto], str, float, float | None]:
    """Fold Mul/Div by constants, then at most one Add/Sub of a constant: (nodes, end, a, b or None)."""
    nodes: list[onnx.NodeProto] = []
    multiplier, offset = 1.0, None
    while offset is None:
        path, node = _single_user(view, tensor)
        step = affine_step(view, node, view.forward(tensor)[0]) if node else None
        if node is None or step is None or step[1].size != 1:
            break
        kind, value = step[0], float(step[1].reshape(-1)[0])
        multiplier, offset = (multiplier * value, None) if kind == "mul" else (multiplier, value)
        nodes += [*path, node]
        tensor = node.output[0]
    return nodes, tensor, multiplier, offset


def _log_form(multiplier: float, rel_tol: float) -> tuple[str, str, str]:
    """The named form of a ln multiplier, within the precision its constants were stored at."""
    for value, text, latex, meaning in LOG_FORMS:
        if math.isclose(multiplier, value, rel_tol=rel_tol):
            return text, latex, meaning
    return f"{multiplier:.6g} ln", rf"{multiplier:.6g}\ln", "scaled natural logarithm"


def recognize_log(view: GraphView, signal: Signal) -> Match | None:
    """floor -> Log -> multiplier -> reference offset."""
    if signal.form != "real":
        return None
    path, first = _single_user(view, signal.tensors[0])
    if first is None:
        return None
    start = view.forward(signal.tensors[0])[0]
    floor = _floor(view, first, start)
    nodes = [*path] + ([first] if floor else [])
    log_path, log = _single_user(view, first.output[0]) if floor else ([], first)
    if log is None or log.op_type != "Log":
        return None
    chain, end, multiplier, offset = _scale_chain(view, log.output[0])
    values = [view.const(name) for node in chain for name in node.input]
    constants = [value for value in values if value is not None]
    text, latex, meaning = _log_form(multiplier, max([tolerance(c, 1e-5) for c in constants], default=1e-5))
    ref = math.exp(-(offset or 0.0) / multiplier)
    block = Block(
        kind="log",
        nodes=node_names(view, [*nodes, *log_path, log, *chain]),
        summary=f"Log stage: {text} of the {'floored ' if floor else ''}input ({meaning})"
        + (f", floor {'max(x, ' if floor[0] == 'max' else 'x + '}{fmt(floor[1])}{')' if floor[0] == 'max' else ''}"
           if floor else "")
        + (f", reference {fmt(ref)}" if offset is not None else "")
        + ".",
        params=_log_params(floor, text, multiplier, offset, ref),
        formula=_log_formula(floor, text, latex, offset, ref),
        data={"floor": floor[0] if floor else None, "amin": floor[1] if floor else 0.0,
              "upper": floor[2] if floor else None, "multiplier": multiplier, "offset": offset or 0.0},
    )
    return Match(block, signal.then((end,), log_multiplier=multiplier, log_text=text))


def _log_params(floor: tuple[str, float, float | None] | None, text: str, multiplier: float,
                offset: float | None, ref: float) -> list[Param]:
    params = [Param("function", text, note=f"multiplier of ln: {multiplier:.9g}")]
    if floor:
        kind, amin, high = floor
        params.append(Param("amin" if kind == "max" else "epsilon", float(f"{amin:.6g}"), "input units",
                            "max(x, amin)" if kind == "max" else "x + epsilon"))
        if high is not None:
            params.append(Param("upper clip", high, "input units"))
    if offset is not None:
        params.append(Param("ref", float(f"{ref:.6g}"), "input units", f"offset {offset:.6g} = -{text}(ref)"))
    return params


def _log_formula(floor: tuple[str, float, float | None] | None, text: str, latex: str, offset: float | None,
                 ref: float) -> Formula:
    inner_text, inner_latex = "{x}", "{x}"
    if floor:
        kind, amin = floor[0], fmt(floor[1])
        inner_text = f"max({{x}}, {amin})" if kind == "max" else f"{{x}} + {amin}"
        inner_latex = rf"\max\left({{x}}, {amin}\right)" if kind == "max" else f"{{x}} + {amin}"
    tail_text = f" - {text}({fmt(ref)})" if offset is not None else ""
    tail_latex = f" - {latex}({fmt(ref)})" if offset is not None else ""
    return Formula(text=f"{text}({inner_text}){tail_text}", latex=rf"{latex}\left({inner_latex}\right){tail_latex}")


def _threshold(view: GraphView, reduce: onnx.NodeProto) -> tuple[list[onnx.NodeProto], str, float] | None:
    """max - top, spelled Sub(max, top) or Add(max, -top), with layout and same-type Casts around it."""
    path, node = _single_user(view, reduce.output[0])
    end = view.forward(reduce.output[0])[0]
    other = view.other_input(node, end) if node else None
    value = view.scalar(other) if other else None
    top = {"Sub": value, "Add": None if value is None else -value}.get(node.op_type) if node else None
    if node is None or top is None or node.input[0] != end:
        return None
    bound, after = view.forward(node.output[0])
    return [*path, node, *after], bound, top


def _bound_node(view: GraphView, start: str, bound: str) -> onnx.NodeProto | None:
    """Max(x, bound) or Clip(x, bound[, +inf]) reading both the signal and the threshold."""
    for node in view.data_consumers(start):
        if node.op_type == "Max" and set(node.input) == {start, bound} and len(node.input) == 2:
            return node
        upper = view.scalar(node.input[2]) if node.op_type == "Clip" and len(node.input) > 2 and node.input[2] else None
        if node.op_type == "Clip" and list(node.input[:2]) == [start, bound] and upper in (None, math.inf):
            return node
    return None


ROLE_TEXT: dict[str | None, str] = {"batch": "batch items", "frames": "frames", "features": "MatMul output features",
             "channels": "channels"}


def _reduces_everything(view: GraphView, reduce: onnx.NodeProto) -> bool:
    """A Reduce* with no axes (and noop_with_empty_axes unset) reduces every axis, whatever the rank."""
    return axes_input(view, reduce) is None and not (len(reduce.input) > 1 and reduce.input[1]) and not attribute(
        reduce, "noop_with_empty_axes", 0)


def _scope(view: GraphView, tensor: str, reduce: onnx.NodeProto) -> tuple[str, list[str], bool]:
    """(short scope, reduced axes described, whether outputs depend on other frames or batch items)."""
    axes = view.axes.get(tensor)
    rank = len(axes) if axes is not None else view.rank(tensor)
    reduced = reduced_axes(view, reduce, rank) if rank is not None else None
    if reduced is None and rank is None and _reduces_everything(view, reduce):
        return "the whole tensor", ["every axis (no axes given)"], True
    if reduced is None:
        return "unknown axes", [], True
    described = [
        f"axis {i} ({ROLE_TEXT.get(axes[i].role, 'no role')}{f', by {axes[i].role_by}' if axes[i].role_by else ''})"
        if axes else f"axis {i}"
        for i in sorted(reduced)
    ]
    coupling = any(axes[i].role in ("batch", "frames") for i in reduced) if axes else False
    scope = "the whole tensor" if len(reduced) == rank else "axes " + ", ".join(map(str, sorted(reduced)))
    return scope, described, coupling


def recognize_clamp(view: GraphView, signal: Signal) -> Match | None:
    """max(y, max(y) - top): the top-dB floor, with the axes its maximum runs over."""
    if signal.form != "real":
        return None
    start, path = view.forward(signal.tensors[0])
    for reduce in (n for n in view.data_consumers(start) if n.op_type == "ReduceMax" and n.input[0] == start):
        threshold = _threshold(view, reduce)
        bound = _bound_node(view, start, threshold[1]) if threshold else None
        if threshold is not None and bound is not None:
            return Match(_clamp_block(view, signal, [*path, reduce, *threshold[0], bound], start, reduce,
                                      threshold[2]), signal.then((bound.output[0],)))
    return None


def _clamp_block(view: GraphView, signal: Signal, nodes: list[onnx.NodeProto], start: str,
                 reduce: onnx.NodeProto, top: float) -> Block:
    scope, described, coupling = _scope(view, start, reduce)
    multiplier = signal.context.get("log_multiplier")
    exponent = signal.context.get("exponent", 2)
    top_db = top * (10 / math.log(10)) * (2 / exponent) / multiplier if multiplier else None
    log_text = signal.context.get("log_text")
    units = {None: "input units", "10 log10": "dB", "20 log10": "dB"}.get(log_text, f"{log_text} units")
    params = [
        Param("top", float(top), units,
              f"= {fmt(round(top_db, 6))} dB of power" if top_db is not None else ""),
        Param("scope", scope, "", "; ".join(described)),
        Param("couples", "batch items and frames" if coupling else "nothing across frames or batch items",
              "", "each output depends on every value the maximum reads" if coupling else ""),
    ]
    consequence = (" One maximum is shared by every frame and batch item it reads: a chunk's output depends on "
                   "the rest of the chunk and on the other items of the batch, so streaming chunk by chunk or "
                   "batching changes results.") if coupling else ""
    over = "b,t,m" if scope == "the whole tensor" else scope
    return Block(
        kind="top-db clamp",
        nodes=node_names(view, nodes),
        summary=f"Dynamic-range floor: values below (maximum over {scope}) - {fmt(top)} are raised to it"
        + (f" ({fmt(round(top_db, 6))} dB)" if top_db is not None else "") + f".{consequence}",
        params=params,
        formula=Formula(
            text=f"max({{x}}, max_{{{over}}} {{x}} - {fmt(top)})",
            latex=rf"\max\left({{x}},\ \max_{{{over}}} {{x}} - {fmt(top)}\right)",
            reuses=True,
        ),
    )


RECOGNIZERS = (recognize_log, recognize_clamp)
