"""Recognize framing done by a loop (Scan or Loop) over the samples, by evaluating what each frame reads.

Exporters write sliding frames in several ways: a Scan whose state is a buffer (the previous tail joined to the
next hop of samples), a Loop that slices x[i hop : i hop + L] from its counter, a Scan over frame indices. The op
sequences differ; what each iteration reads does not. So the nodes from the signal to the loop's outputs are run
on a probe whose samples are their own indices: frame t then shows exactly which samples it holds, and frame t
holding x[first + hop t + j] for j = 0..L-1 is framing with that hop and frame length, whatever ops did it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from toolkit.explain.block import Block, Formula, Match, Param, Signal, node_names
from toolkit.explain.graph import FLOAT_TYPES, GraphView, evaluate
from toolkit.explain.walk import ancestors, descendants

LOOPS = frozenset({"Scan", "Loop"})
# Ops that move or pick samples without computing on them: the only float ops allowed between the signal and
# the loop (the loop's body is checked by the probe itself). Index arithmetic on shapes may be anything.
_MOVES = frozenset({"Slice", "Reshape", "Concat", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Flatten",
                    "Gather", "Split", "Expand", "Pad", "Cast"})
# Two probe lengths: the frame count at both tells the rule; index values stay exact in float32.
PROBES = (4000, 4321)
_MAX_SPAN = 64  # nodes between the signal and the loop; a longer span is not a framing preamble


@dataclass(frozen=True)
class Frames:
    """What a probe's frames show: frame t holds x[first + hop t + j] for j < length; `count` frames."""

    length: int
    hop: int
    first: int
    count: int


def read_frames(value: np.ndarray) -> Frames | None:
    """Frames when `value` (its size-1 axes dropped) is [T, L] with value[t, j] = first + hop t + j, T >= 2."""
    frames = np.squeeze(value)
    if frames.ndim != 2 or frames.shape[0] < 2:
        return None
    count, length = frames.shape
    first, hop = int(frames[0, 0]), int(frames[1, 0] - frames[0, 0])
    expected = first + hop * np.arange(count)[:, None] + np.arange(length)[None, :]
    if hop <= 0 or not np.array_equal(frames, expected):
        return None
    return Frames(int(length), hop, first, int(count))


def _loop_span(view: GraphView, tensor: str) -> tuple[onnx.NodeProto, list[onnx.NodeProto]] | None:
    """The first Scan or Loop that depends on `tensor`, and the non-constant nodes from `tensor` to it
    (itself included), when all float values on the way only move samples."""
    downstream = descendants(view, [tensor])
    loop = next((node for node in downstream if node.op_type in LOOPS), None)
    if loop is None:
        return None
    upstream = set().union(*(ancestors(view, name) for name in loop.output if name))
    span = [node for node in downstream if id(node) in upstream]
    moves_only = all(node.op_type in _MOVES or view.elem_types.get(node.output[0]) not in FLOAT_TYPES
                     for node in span if node is not loop)
    return (loop, span) if moves_only and len(span) <= _MAX_SPAN else None


def _probe(view: GraphView, tensor: str, length: int) -> np.ndarray:
    """A signal of `length` samples whose values are their indices, in the signal's shape (other axes 1)."""
    rank = view.rank(tensor) or 2
    dtype = helper.tensor_dtype_to_np_dtype(view.elem_types.get(tensor, onnx.TensorProto.FLOAT))
    return np.arange(length, dtype=dtype).reshape([1] * (rank - 1) + [length])


def _framed_output(view: GraphView, tensor: str, span: list[onnx.NodeProto],
                   loop: onnx.NodeProto) -> tuple[str, list[Frames]] | None:
    """The loop output holding the frames, and what the probes of both lengths show in it."""
    outputs = [name for name in loop.output if name]
    try:
        runs = [evaluate(view, span, {tensor: _probe(view, tensor, n)}, outputs) for n in PROBES]
    except Exception:  # a loop that reads other inputs, or that the probe cannot run, is not framing read here
        return None
    for index, name in enumerate(outputs):
        read = [read_frames(run[index]) for run in runs]
        seen = [frames for frames in read if frames is not None]
        if len(seen) == len(read) and len({(f.length, f.hop, f.first) for f in seen}) == 1:
            return name, seen
    return None


def _count_rule(seen: list[Frames], samples: str) -> tuple[str, str]:
    """The frame count as a formula of the samples when it fits both probes (the last frame ends inside the
    signal: snip_edges), else the counts observed."""
    frames = seen[0]
    reach = frames.first + frames.length
    if all(f.count == (n - reach) // frames.hop + 1 for f, n in zip(seen, PROBES, strict=True)):
        return f"floor(({samples} - {reach}) / {frames.hop}) + 1", "only whole frames inside the signal"
    observed = ", ".join(f"{f.count} at {n}" for f, n in zip(seen, PROBES, strict=True))
    return f"{observed} samples", "counted on the probes; no snip-edges rule fits"


def recognize_loop_framing(view: GraphView, signal: Signal) -> Match | None:
    """Frames of L samples every hop made by a Scan or Loop, read from what the loop outputs on an index probe."""
    if signal.form != "real" or signal.domain == "spectral" or len(signal.tensors) != 1:
        return None
    tensor = signal.tensors[0]
    found = _loop_span(view, tensor)
    framed = _framed_output(view, tensor, found[1], found[0]) if found is not None else None
    if found is None or framed is None:
        return None
    loop, span = found
    output, seen = framed
    frames = seen[0]
    rule, rule_note = _count_rule(seen, signal.context.get("samples", "samples"))
    start = f"{frames.first} + " if frames.first else ""
    block = Block(
        kind="framing",
        nodes=node_names(view, span),
        summary=(f"Framing by a {loop.op_type} over the samples: frames of {frames.length} samples every "
                 f"{frames.hop} samples (frame t holds x[{start}{frames.hop} t + j], j = 0..{frames.length - 1}); "
                 f"{rule} frames. Read by running the loop on a probe whose samples are their own indices."),
        params=[
            Param("frame length", frames.length, "samples", "samples each frame holds"),
            Param("hop", frames.hop, "samples", "start of frame 1 minus start of frame 0"),
            Param("first sample", frames.first, "samples", "where frame 0 starts"),
            Param("frames", rule, note=rule_note),
            Param("operator", loop.op_type),
        ],
        formula=Formula(text=f"{{s}}[b, {start}{frames.hop}t + j]", latex=rf"{{s}}_{{b,{start}{frames.hop}t+j}}",
                        name="f", index="b,t,j"),
    )
    return Match(block, signal.then((output,), hop=frames.hop, frame_length=frames.length))


RECOGNIZERS = (recognize_loop_framing,)
