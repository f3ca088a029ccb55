"""Recognize what happens to the samples around the transform: an FIR prefilter (pre-emphasis), padding of
the signal (torch's center=True reflect padding), and slices that crop frames or bins.
"""

from __future__ import annotations

import numpy as np
import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.dimflow import along_samples
from toolkit.explain.graph import GraphView, attribute
from toolkit.explain.walk import ancestors

_MAX_FIR_TAPS = 8  # longer stride-1 Convs are not called a prefilter


def recognize_fir(view: GraphView, signal: Signal) -> Match | None:
    """A stride-1, one-channel Conv with a short kernel: an FIR filter; [-a, 1] is pre-emphasis by a."""
    if not signal.on_samples:
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Conv" else None
    weight = view.const(node.input[1]) if node is not None else None
    if node is None or weight is None:
        return None
    if weight.shape[:2] != (1, 1) or weight.ndim != 3 or weight.shape[2] > _MAX_FIR_TAPS:
        return None
    if any(s != 1 for s in attribute(node, "strides", [1])) or (len(node.input) > 2 and node.input[2]):
        return None
    taps = weight.reshape(-1).astype(np.float64)
    emphasis = taps.size == 2 and taps[1] == 1 and taps[0] < 0
    coefficient = float(f"{-taps[0]:.7g}")
    terms = " + ".join(f"{fmt(float(f'{h:.7g}'))} {{s}}[b, n + {i}]" for i, h in enumerate(taps) if h)
    text = f"{{s}}[b, n + 1] - {fmt(coefficient)} {{s}}[b, n]" if emphasis else terms
    block = Block(
        kind="pre-emphasis" if emphasis else "fir filter",
        nodes=node_names(view, [*path, node]),
        summary=(f"Pre-emphasis: y[n] = x[n + 1] - {fmt(coefficient)} x[n], a first-order high-pass that lifts "
                 "high frequencies before the transform." if emphasis
                 else f"FIR filter of {taps.size} taps on the samples before the transform."),
        params=[Param("coefficient", coefficient)] if emphasis else [Param("taps", [float(f"{h:.7g}") for h in taps])],
        formula=Formula(text=text, latex=text.replace("{s}[b, n + 1]", "{s}_{b,n+1}").replace("{s}[b, n]", "{s}_{b,n}"),
                        name="e", index="b,n"),
    )
    return Match(block, signal.then((node.output[0],)))


def recognize_pad(view: GraphView, signal: Signal) -> Match | None:
    """Pad on the samples axis only: its mode and amounts (n_fft/2 reflect is torch's center=True)."""
    if not signal.on_samples:
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Pad" and users[0].input[0] == start else None
    pads = view.const(node.input[1]) if node is not None and len(node.input) > 1 else None
    if node is None or pads is None or (len(node.input) > 3 and node.input[3]):
        return None
    rank = pads.size // 2
    touched = [i for i in range(rank) if pads[i] or pads[i + rank]]
    if touched != [rank - 1] or not along_samples(view, start, -1):
        return None
    before, after = int(pads[rank - 1]), int(pads[-1])
    mode = attribute(node, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    block = Block(
        kind="padding",
        nodes=node_names(view, [*path, node]),
        summary=f"{mode.capitalize()} padding of the samples: {before} before, {after} after"
                + (" (as torch's center=True pads n_fft/2 each side, so frame t is centred on sample hop x t)."
                   if before == after and before else "."),
        params=[Param("mode", mode), Param("before", before, "samples"), Param("after", after, "samples")],
        formula=Formula(text=f"pad_{mode}({{s}}, {before}, {after})[b, n]",
                        latex=rf"\mathrm{{pad}}_{{\mathrm{{{mode}}}}}({{s}}, {before}, {after})_{{b,n}}",
                        name="xp", index="b,n"),
    )
    return Match(block, signal.then((node.output[0],), samples=f"samples + {before + after}"))


def _fixed_length(view: GraphView, node: onnx.NodeProto, start: str) -> int | None:
    """C when a Pad's amounts are (C - Shape(x)[k]) times a constant one-hot: zero padding up to C samples."""
    product = view.producer.get(node.input[1]) if len(node.input) > 1 else None
    if product is None or product.op_type != "Mul":
        return None
    unit = next((view.const(name) for name in product.input if view.const(name) is not None), None)
    difference = next((view.producer.get(name) for name in product.input if view.const(name) is None), None)
    if unit is None or difference is None or difference.op_type != "Sub":
        return None
    one_hot = sorted(int(v) for v in unit.reshape(-1)) == [0] * (unit.size - 1) + [1]
    total, shape = view.scalar(difference.input[0]), view.producer.get(difference.input[1])
    if not one_hot or total is None or shape is None or shape.op_type != "Shape" or shape.input[0] != start:
        return None
    return int(total)


def recognize_pad_to_length(view: GraphView, signal: Signal) -> Match | None:
    """Pad(x, (C - samples) x one-hot): zero padding of every input up to C samples (Whisper's 30 s)."""
    if not signal.on_samples:
        return None
    start, path = view.forward(signal.tensors[0])
    node = next((n for n in view.data_consumers(start) if n.op_type == "Pad" and n.input[0] == start), None)
    length = _fixed_length(view, node, start) if node is not None else None
    if node is None or length is None:
        return None
    block = Block(
        kind="padding",
        nodes=node_names(view, [*path, *_pad_amount_nodes(view, node, start), node]),
        summary=f"Zero padding of the samples up to a fixed length of {length} (shorter inputs are extended; a "
                "longer one makes the pad amounts negative, which crops it).",
        params=[Param("mode", "constant"), Param("to length", length, "samples")],
        formula=Formula(text=f"pad_to({{s}}, {length})[b, n]", latex=rf"\mathrm{{pad}}_{{{length}}}({{s}})_{{b,n}}",
                        name="xp", index="b,n"),
    )
    return Match(block, signal.then((node.output[0],), samples=str(length)))


def _pad_amount_nodes(view: GraphView, node: onnx.NodeProto, start: str) -> list[onnx.NodeProto]:
    """The Shape, Sub and Mul that compute a Pad's amounts from the signal's length."""
    upstream = ancestors(view, start)
    return [n for n in view.nodes if id(n) in ancestors(view, node.input[1]) and id(n) not in upstream
            and not all(name in view.constants for name in n.output)]


def recognize_slice(view: GraphView, signal: Signal) -> Match | None:
    """A Slice with constant bounds: which range of which axis is kept (Whisper drops the last frame); a
    stacked complex value stays stacked."""
    if signal.form not in ("real", "stacked"):
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Slice" and users[0].input[0] == start else None
    values = [view.const(name) for name in node.input[1:]] if node is not None else [None]
    known = [v for v in values if v is not None]
    if node is None or len(values) < 2 or len(known) < len(values):
        return None
    starts, ends, axes = known[0], known[1], known[2] if len(known) > 2 else np.arange(known[0].size)
    kept = [f"axis {int(a)}: [{int(s)}:{int(e) if abs(int(e)) < 2**62 else ''}]"
            for s, e, a in zip(starts, ends, axes, strict=False)]
    block = Block(
        kind="slice",
        nodes=node_names(view, [*path, node]),
        summary=f"Crop: keeps {', '.join(kept)} (an end of -1 drops the last element, as Whisper drops the "
                "last frame).",
        params=[Param("kept", kept)],
        formula=Formula(text="{x}", latex="{x}", where=(f"cropped to {', '.join(kept)}",),
                        where_latex=(rf"\text{{cropped to {', '.join(kept)}}}",)),
    )
    return Match(block, signal.then((node.output[0],), signal.form))




def _last_axis(view: GraphView, tensor: str, axes: np.ndarray | None) -> bool:
    """True when `axes` (None: the op's default) name only the last axis of `tensor`."""
    rank = view.rank(tensor)
    values = [int(a) for a in axes.reshape(-1)] if axes is not None else None
    return values is not None and len(values) == 1 and (values[0] == -1 or (rank is not None and values[0] == rank - 1))


def _shifted(view: GraphView, node: onnx.NodeProto, source: str) -> tuple[int, str] | None:
    """(k, edge) when `node` reads source[..., n + k] along the last axis: a Slice starting at k (edge "cut"),
    or a Pad of p before and -p after (k = -p; edge = the Pad's mode)."""
    if node.input[0] != source:
        return None
    if node.op_type == "Slice":
        values = [view.const(name) for name in node.input[1:5]]
        first = values[0] if values else None
        steps = values[3] if len(values) > 3 else None
        if first is None or any(v is None for v in values[1:2]) or (steps is not None and np.any(steps != 1)):
            return None
        axes = values[2] if len(values) > 2 else np.array([-1])
        return (int(first.reshape(-1)[0]), "cut") if _last_axis(view, source, axes) else None
    pads = view.const(node.input[1]) if node.op_type == "Pad" and len(node.input) > 1 else None
    if pads is None or pads.size < 2:
        return None
    rank = pads.size // 2
    before, after = int(pads[rank - 1]), int(pads[-1])
    others = [int(p) for i, p in enumerate(pads) if i not in (rank - 1, pads.size - 1)]
    if any(others) or before != -after or before <= 0:
        return None
    mode = attribute(node, "mode", b"constant")
    return -before, mode.decode() if isinstance(mode, bytes) else str(mode)


# tensor -> (k, edge, nodes): the tensor reads source[..., n + k], through these nodes (see _shifted)
Views = dict[str, tuple[int, str | None, list[onnx.NodeProto]]]


def _views(view: GraphView, start: str) -> Views:
    """Every tensor that is `start` itself or a one-node shift of it: tensor -> (k, edge, nodes)."""
    found: Views = {start: (0, None, [])}
    for node in view.data_consumers(start):
        shift = _shifted(view, node, start) if node.op_type in ("Slice", "Pad") else None
        if shift is not None:
            found[node.output[0]] = (*shift, [node])
    return found


def _scaled(view: GraphView, views: Views) -> list[tuple[str, float, str, onnx.NodeProto]]:
    """(product, a, shifted tensor, Mul) for every Mul of a shifted view by a scalar constant a."""
    products = []
    for tensor in views:
        for node in view.data_consumers(tensor):
            other = view.other_input(node, tensor) if node.op_type == "Mul" else None
            value = view.scalar(other) if other else None
            if value is not None:
                products.append((node.output[0], value, tensor, node))
    return products


def _first_kept(view: GraphView, node: onnx.NodeProto, views: Views) -> onnx.NodeProto | None:
    """Concat(x[..., 0:1], x[..., 1:] - a x[..., :-1]) on the last axis: the first sample is kept as it is."""
    concat = next((n for n in view.data_consumers(node.output[0]) if n.op_type == "Concat"), None)
    if concat is None or list(concat.input[1:]) != [node.output[0]] or concat.input[0] not in views:
        return None
    head = views[concat.input[0]][2]
    ends = view.const(head[0].input[2]) if head and head[0].op_type == "Slice" else None
    return concat if ends is not None and int(ends.reshape(-1)[0]) == 1 and attribute(concat, "axis") in (
        -1, (view.rank(node.output[0]) or 0) - 1) else None


_EDGES = {"edge": "x[-1] = x[0] (edge padding)", "constant": "x[-1] = 0 (zero padding)",
          "kept": "the first sample is kept unchanged"}


def recognize_shift_emphasis(view: GraphView, signal: Signal) -> Match | None:
    """y[n] = x[n] - a x[n - 1] written with shifted views (Slice or a Pad of 1 before and -1 after), a Mul and
    a Sub: pre-emphasis by a, whatever axis layout (whole signal, or per frame when framed first)."""
    if not signal.on_samples:
        return None
    start, path = view.forward(signal.tensors[0])
    if not along_samples(view, start, -1):
        return None
    views = _views(view, start)
    for product, coefficient, scaled, mul in _scaled(view, views):
        for node in view.data_consumers(product):
            if node.op_type != "Sub" or node.input[1] != product or node.input[0] not in views:
                continue
            lead, lag = views[node.input[0]], views[scaled]
            if lead[0] - lag[0] != 1:
                continue
            concat = _first_kept(view, node, views)
            edge = "kept" if concat is not None else lag[1] if lag[1] != "cut" else None
            if edge is None:
                continue
            head = views[concat.input[0]][2] if concat is not None else []
            nodes = [*path, *lead[2], *lag[2], mul, node, *head, *([concat] if concat is not None else [])]
            output = (concat or node).output[0]
            return Match(_emphasis_block(view, nodes, coefficient, edge), signal.then((output,)))
    return None


def _emphasis_block(view: GraphView, nodes: list[onnx.NodeProto], coefficient: float, edge: str) -> Block:
    a = fmt(float(f"{coefficient:.7g}"))
    return Block(
        kind="pre-emphasis",
        nodes=node_names(view, nodes),
        summary=f"Pre-emphasis: y[n] = x[n] - {a} x[n - 1] along the last axis, a first-order high-pass; at n = 0 "
                f"{_EDGES[edge]}.",
        params=[Param("coefficient", float(f"{coefficient:.7g}")), Param("first sample", _EDGES[edge])],
        formula=Formula(text=f"{{s}}[b, n] - {a} {{s}}[b, n - 1]", latex=f"{{s}}_{{b,n}} - {a}\\, {{s}}_{{b,n-1}}",
                        name="e", index="b,n", where=(f"e at n = 0: {_EDGES[edge]}",),
                        where_latex=(rf"\text{{e at n = 0: {_EDGES[edge]}}}",)),
    )


def recognize_dc_removal(view: GraphView, signal: Signal) -> Match | None:
    """x - mean(x) over the last axis (ReduceMean then Sub): the DC offset of each row removed; rank 2 rows
    are whole signals, rank 3 rows are frames (Kaldi's remove_dc_offset)."""
    if not signal.on_samples:
        return None
    start, path = view.forward(signal.tensors[0])
    for mean in (n for n in view.data_consumers(start) if n.op_type == "ReduceMean" and n.input[0] == start):
        axes = view.const(mean.input[1]) if len(mean.input) > 1 and mean.input[1] else attribute(mean, "axes")
        sub = next((n for n in view.data_consumers(start)
                    if n.op_type == "Sub" and list(n.input) == [start, mean.output[0]]), None)
        if sub is None or axes is None or not _last_axis(view, start, np.asarray(axes)) \
                or not along_samples(view, start, -1):
            continue
        rank = view.rank(start)
        scopes: dict[int | None, str] = {2: "each whole signal (per batch item)", 3: "each frame"}
        scope = scopes.get(rank, "each row of the last axis")
        block = Block(
            kind="dc removal",
            nodes=node_names(view, [*path, mean, sub]),
            summary=f"DC-offset removal: the mean over the last axis is subtracted from {scope}.",
            params=[Param("scope", scope, note=f"mean over the last axis of a rank-{rank or '?'} tensor")],
            formula=Formula(text="{s}[b, n] - mean_n {s}[b, n]", latex=r"{s}_{b,n} - \overline{{s}_{b,\cdot}}",
                            name="d", index="b,n"),
        )
        return Match(block, signal.then((sub.output[0],)))
    return None


RECOGNIZERS = (recognize_fir, recognize_dc_removal, recognize_shift_emphasis, recognize_pad, recognize_pad_to_length,
               recognize_slice)
