"""Walk the signal path block by block; what no recognizer claims stays in the chain as an `unrecognized` block.

At each step every recognizer is asked about the current signal. When none answers, the walk looks further
down the graph for the first tensor a recognizer does claim, and the nodes in between (those that depend on the
signal and lead to that tensor) become one unrecognized block naming their ops. A recognizer that raises is
treated as not recognizing, and its error is kept with the span, so no input ends in a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import onnx

from toolkit.analysis import MOVEMENT_OPS
from toolkit.explain.block import Block, Formula, Match, Recognizer, Signal
from toolkit.explain.graph import FLOAT_TYPES, GraphView


def descendants(view: GraphView, tensors: Iterable[str]) -> list[onnx.NodeProto]:
    """Nodes that read any of `tensors`, directly or through other nodes, in graph order."""
    reached, found = set(tensors), []
    for node in view.nodes:
        if any(name in reached for name in view.reads(node)):
            found.append(node)
            reached.update(node.output)
    return found


def ancestors(view: GraphView, tensor: str) -> set[int]:
    """ids of the nodes `tensor` is computed from (its producer included)."""
    found: set[int] = set()
    stack = [tensor]
    while stack:
        node = view.producer.get(stack.pop())
        if node is not None and id(node) not in found:
            found.add(id(node))
            stack.extend(name for name in view.reads(node) if name)
    return found


def _ask(recognizers: tuple[Recognizer, ...], view: GraphView, signal: Signal, errors: list[str],
         accept: Callable[[Match], bool]) -> Match | None:
    """The first recognizer's match that `accept` takes; a recognizer that raises counts as no match and its
    error is noted."""
    for recognize in recognizers:
        try:
            match = recognize(view, signal)
        except Exception as error:  # any failure inside a recognizer means "not recognized here"
            errors.append(f"{recognize.__name__}: {type(error).__name__}: {error}")
            continue
        if match is not None and accept(match):
            return match
    return None


def unrecognized_block(view: GraphView, nodes: list[onnx.NodeProto], errors: list[str]) -> Block:
    """The nodes as one block that names its ops, in order, in its summary and in the equation."""
    ops = " -> ".join(node.op_type for node in nodes)
    ops_latex = r" \to ".join(rf"\mathrm{{{node.op_type}}}" for node in nodes)
    failed = f"; recognizers that failed on it: {'; '.join(errors)}" if errors else ""
    return Block(
        kind="unrecognized",
        nodes=[view.name(node) for node in nodes],
        summary=f"unrecognized: {ops} (not recognized as a known signal-processing block){failed}",
        formula=Formula(text=f"unrecognized[{ops}]({{x}})",
                        latex=rf"\mathrm{{unrecognized}}[{ops_latex}]\left({{x}}\right)"),
        data={"ops": [node.op_type for node in nodes], "errors": list(errors)},
    )


def _is_cut(view: GraphView, earlier: set[str], after: list[onnx.NodeProto]) -> bool:
    """True when no node in `after` reads a signal value in `earlier`: what was recognized is on the signal
    path, not a side branch. Shapes, indices and masks (non-float tensors, Shape and Size) may be shared."""
    values = {name for name in earlier if view.elem_types.get(name, onnx.TensorProto.FLOAT) in FLOAT_TYPES}
    readers = [node for node in after if node.op_type not in ("Shape", "Size")]
    return not any(name in values for node in readers for name in view.reads(node))


def _on_path(view: GraphView, signal: Signal, match: Match, claimed: set[int]) -> bool:
    """A match at the signal is on its path when nothing else reads the signal or the match's inner values."""
    inside = set(match.block.nodes)
    nodes = [n for n in view.nodes if view.name(n) in inside]
    earlier = {*signal.tensors, *(name for node in nodes for name in node.output)} - set(match.signal.tensors)
    after = [n for n in descendants(view, signal.tensors) if id(n) not in claimed and view.name(n) not in inside]
    return _is_cut(view, earlier, after)


def _domain_after(view: GraphView, signal: Signal, skipped: list[onnx.NodeProto]) -> str:
    """The signal's domain past unrecognized nodes: kept when every one that makes a signal (float) value only
    moves data (slices, concatenations, gathers, pads: Kaldi's edge handling), else unknown, so what follows a
    Gemm is not taken for the samples. Shape and index arithmetic does not count."""
    values = [node for node in skipped
              if any(view.elem_types.get(name, onnx.TensorProto.FLOAT) in FLOAT_TYPES for name in node.output)]
    return signal.domain if all(node.op_type in MOVEMENT_OPS for node in values) else "unknown"


def _skip(view: GraphView, signal: Signal, recognizers: tuple[Recognizer, ...], claimed: set[int],
          errors: list[str]) -> tuple[list[onnx.NodeProto], Match | None]:
    """The unclaimed nodes up to the first later tensor a recognizer claims, and that match (None: no later
    match, and every remaining node that depends on the signal is returned). Past the skipped nodes the domain
    is the signal's only if they merely move data (see _domain_after)."""
    downstream = [node for node in descendants(view, signal.tensors) if id(node) not in claimed]
    for node in downstream:
        for tensor in node.output:
            if not tensor or tensor in view.constants:
                continue
            upstream = ancestors(view, tensor)
            before = [n for n in downstream if id(n) in upstream]
            after = [n for n in downstream if id(n) not in upstream]
            earlier = {*signal.tensors, *(name for n in before for name in n.output)} - {tensor}
            if not _is_cut(view, earlier, after):
                continue
            candidate = Signal((tensor,), "real", _domain_after(view, signal, before), signal.context)
            match = _ask(recognizers, view, candidate, [], partial(_on_path, view, candidate, claimed=claimed))
            if match is not None:
                return before, match
    return downstream, None


def walk(view: GraphView, signal: Signal, recognizers: tuple[Recognizer, ...]) -> list[Block]:
    """Blocks along the signal path, in order, unrecognized spans included."""
    blocks: list[Block] = []
    claimed: set[int] = set()
    by_name = {view.name(node): node for node in view.nodes}
    for _ in range(len(view.nodes) + 1):
        ends = [view.forward(tensor) for tensor in signal.tensors]
        if all(not view.data_consumers(end) for end, _ in ends):
            if blocks:  # trailing layout (an output Cast or Reshape) belongs to the last block
                blocks[-1].nodes += [view.name(node) for _, path in ends for node in path]
            break
        errors: list[str] = []
        match = _ask(recognizers, view, signal, errors, partial(_on_path, view, signal, claimed=claimed))
        if match is None:
            skipped, match = _skip(view, signal, recognizers, claimed, errors)
            if not skipped:
                break
            blocks.append(unrecognized_block(view, skipped, errors))
            claimed.update(id(node) for node in skipped)
        if match is None:
            break
        blocks.append(match.block)
        claimed.update(id(by_name[name]) for name in match.block.nodes if name in by_name)
        signal = match.signal
    return blocks
