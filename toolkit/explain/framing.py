"""Recognize what happens to the samples around the transform: an FIR prefilter (pre-emphasis), padding of
the signal (torch's center=True reflect padding), and slices that crop frames or bins.
"""

from __future__ import annotations

import numpy as np

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.graph import GraphView, attribute

_MAX_FIR_TAPS = 8  # longer stride-1 Convs are not called a prefilter


def recognize_fir(view: GraphView, signal: Signal) -> Match | None:
    """A stride-1, one-channel Conv with a short kernel: an FIR filter; [-a, 1] is pre-emphasis by a."""
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Conv" else None
    weight = view.const(node.input[1]) if node is not None else None
    if weight is None or weight.shape[:2] != (1, 1) or weight.ndim != 3 or weight.shape[2] > _MAX_FIR_TAPS:
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
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Pad" and users[0].input[0] == start else None
    pads = view.const(node.input[1]) if node is not None and len(node.input) > 1 else None
    if pads is None or (len(node.input) > 3 and node.input[3]):
        return None
    rank = pads.size // 2
    touched = [i for i in range(rank) if pads[i] or pads[i + rank]]
    if touched != [rank - 1]:
        return None
    before, after = int(pads[rank - 1]), int(pads[-1])
    mode = attribute(node, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    block = Block(
        kind="padding",
        nodes=node_names(view, [*path, node]),
        summary=f"{mode.capitalize()} padding of the samples: {before} before, {after} after (torch's "
                f"center=True pads n_fft/2 each side so frame t is centred on sample hop x t).",
        params=[Param("mode", mode), Param("before", before, "samples"), Param("after", after, "samples")],
        formula=Formula(text=f"pad_{mode}({{s}}, {before}, {after})[b, n]",
                        latex=rf"\mathrm{{pad}}_{{\mathrm{{{mode}}}}}({{s}}, {before}, {after})_{{b,n}}",
                        name="xp", index="b,n"),
    )
    return Match(block, signal.then((node.output[0],), samples=f"samples + {before + after}"))


def recognize_slice(view: GraphView, signal: Signal) -> Match | None:
    """A Slice with constant bounds: which range of which axis is kept (Whisper drops the last frame)."""
    if signal.form != "real":
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    node = users[0] if len(users) == 1 and users[0].op_type == "Slice" and users[0].input[0] == start else None
    values = [view.const(name) for name in node.input[1:]] if node is not None else [None]
    if node is None or len(values) < 2 or any(v is None for v in values):
        return None
    starts, ends, axes = values[0], values[1], values[2] if len(values) > 2 else np.arange(values[0].size)
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
    return Match(block, signal.then((node.output[0],)))


RECOGNIZERS = (recognize_fir, recognize_pad, recognize_slice)
