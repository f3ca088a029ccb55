"""explain: what a log-mel graph computes, mathematically, recovered from its structure and weights alone.

`explain(model)` walks the signal path from the graph input, asking each block recognizer in turn (framing,
transform, spectrum, mel filterbank, log, top-dB clamp, affine) whether the next nodes are its block; nodes no
recognizer claims are reported as unrecognized, never forced into a block. Time-domain blocks are named only on
the samples (Signal.on_samples); an If the known inputs decide is walked through the branch it takes. The result
carries the blocks with their parameters, the whole model as one equation, deployment findings and cheaper
equivalents with counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import onnx

from toolkit.explain import decibel, framing, kernel_dft, loop_framing, masks, melbank, normalize, spectrum, stft
from toolkit.explain.block import Block, Recognizer, Signal
from toolkit.explain.branches import BranchChoice, KnownInput, known_inputs, resolve_branches
from toolkit.explain.dimflow import holds_samples, propagate
from toolkit.explain.equation import compose
from toolkit.explain.equivalents import Equivalent, cheaper_equivalents
from toolkit.explain.findings import Finding, find_all
from toolkit.explain.graph import GraphView, build_view
from toolkit.explain.walk import walk

# The blocks that make a log-mel front end, by the kinds that can stand for each.
_FRONT_END = (("transform", ("stft", "dft")), ("spectrum", ("power spectrum", "magnitude spectrum")),
              ("mel filterbank", ("mel filterbank",)), ("log", ("log",)))

# Asked in this order at every step; the first that recognizes the next nodes wins.
RECOGNIZERS: tuple[Recognizer, ...] = (
    *kernel_dft.RECOGNIZERS,
    *stft.RECOGNIZERS,
    *framing.RECOGNIZERS,
    *loop_framing.RECOGNIZERS,
    *spectrum.RECOGNIZERS,
    *melbank.RECOGNIZERS,
    *decibel.RECOGNIZERS,
    *masks.RECOGNIZERS,
    *normalize.RECOGNIZERS,
)


@dataclass
class Explanation:
    """Everything explain found about one model."""

    blocks: list[Block]
    equation: dict[str, Any]
    findings: list[Finding]
    equivalents: list[Equivalent]
    unrecognized: list[str]
    branches: list[BranchChoice] = field(default_factory=list)

    @property
    def front_end(self) -> bool:
        """True when the chain holds a transform, a spectrum, a mel filterbank and a log."""
        return not self.missing()

    def missing(self) -> list[str]:
        """The parts of a log-mel front end no block stands for."""
        kinds = {block.kind for block in self.blocks}
        return [part for part, names in _FRONT_END if not kinds.intersection(names)]

    def verdict(self) -> str:
        """One plain sentence: whether this graph is a log-mel front end, and if not, what is missing."""
        spans = sum(block.kind == "unrecognized" for block in self.blocks)
        branches = self._branches_text()
        if self.front_end:
            return f"a log-mel front end was recognized ({spans} unrecognized span(s) in its chain){branches}"
        found = [block.kind for block in self.blocks if block.kind != "unrecognized"]
        return (f"no log-mel front end was recognized: no {', no '.join(self.missing())}; "
                f"recognized blocks: {', '.join(found) or 'none'}; {spans} unrecognized span(s) kept as they are"
                f"{branches}")

    def _branches_text(self) -> str:
        """The verdict's note on Ifs: each branch explained, and how many Ifs are left with neither."""
        taken = [f"; {choice.sentence()}" for choice in self.branches if choice.taken is not None]
        open_ifs = sum(choice.taken is None for choice in self.branches)
        left = f"; {open_ifs} If(s) the known inputs do not decide: their branches are not explained" \
            if open_ifs else ""
        return "".join(taken) + left

    def block(self, kind: str) -> Block | None:
        """The first block of a kind ("stft", "power spectrum", "mel filterbank", "log", ...), if any."""
        return next((block for block in self.blocks if block.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "front_end": {"recognized": self.front_end, "missing": self.missing(), "verdict": self.verdict()},
            "blocks": [block.to_json() for block in self.blocks],
            "equation": self.equation,
            "findings": [finding.to_json() for finding in self.findings],
            "equivalents": [equivalent.to_json() for equivalent in self.equivalents],
            "unrecognized": self.unrecognized,
            "branches": [choice.to_json() for choice in self.branches],
        }


def recognize(model: onnx.ModelProto, known: Mapping[str, KnownInput] | None = None
              ) -> tuple[GraphView, list[Block], list[BranchChoice]]:
    """The graph view and the blocks along the signal path: the one description of the chain that explain and
    the variants (toolkit.variants.anatomy) both read, without findings or equivalents.

    With `known` input values, an If they decide is walked through the branch it takes (its blocks then name
    the branch's nodes); without, the main graph's nodes only, as the rewrites need them.
    """
    view, branches = (build_view(model), []) if known is None else resolve_branches(model, known)
    view.axes = propagate(view)
    if not view.inputs:
        return view, [], branches
    audio = view.inputs[0]
    signal = Signal((audio.name,), domain="time" if holds_samples(audio) else "unknown")
    return view, walk(view, signal, RECOGNIZERS), branches


def explain(model: onnx.ModelProto, inputs: Mapping[str, float] | None = None,
            sample_rate: int = 16000) -> Explanation:
    """Recognize the blocks of `model`, recover their parameters, and collect findings and cheaper equivalents.

    An If whose condition the known inputs decide (`inputs` given like analyze's --input, a sample rate input
    `sample_rate` by default) is explained through the branch it takes; see toolkit.explain.branches.
    """
    view, blocks, branches = recognize(model, known_inputs(model, inputs or {}, sample_rate))
    claimed = {name for block in blocks if block.kind != "unrecognized" for name in block.nodes}
    unrecognized = [view.name(node) for node in view.nodes
                    if view.name(node) not in claimed and node.op_type != "Constant"
                    and not all(name in view.constants for name in node.output)]
    return Explanation(
        blocks=blocks,
        equation=compose(blocks, "x"),
        findings=find_all(view),
        equivalents=cheaper_equivalents(blocks),
        unrecognized=unrecognized,
        branches=branches,
    )
