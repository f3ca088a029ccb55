"""Plain-text report of an Explanation: blocks with parameters, the equation, findings, cheaper equivalents."""

from __future__ import annotations

from toolkit.explain import Explanation
from toolkit.explain.block import Block, Param


def _param(param: Param) -> str:
    value = ", ".join(map(str, param.value)) if isinstance(param.value, list) else str(param.value)
    unit = f" {param.unit}" if param.unit else ""
    note = f"  ({param.note})" if param.note else ""
    return f"      {param.name}: {value}{unit}{note}"


def _block(index: int, block: Block) -> list[str]:
    return [f"  {index}. {block.kind} [{', '.join(block.nodes)}]", f"     {block.summary}",
            *(_param(p) for p in block.params)]


def _counts(counts: dict[str, int] | None) -> str:
    return "no count" if counts is None else f"{counts['mul']:,} mul + {counts['add']:,} add"


def render_text(explanation: Explanation, source: str) -> str:
    """The report for a terminal, in the order a reader asks: what, as math, what to fix, what is cheaper."""
    lines = [f"explain {source}", "", f"Front end: {explanation.verdict()}.", "",
             "Blocks (signal path from the input):"]
    for index, block in enumerate(explanation.blocks, 1):
        lines += _block(index, block)
    if explanation.branches:
        lines += ["", "Ifs:", *(f"  - {choice.sentence()}" for choice in explanation.branches)]
    lines += ["", "Equation:", f"  {explanation.equation['text']}", "", "LaTeX:", f"  {explanation.equation['latex']}"]
    lines += ["", "Findings:", *(f"  - [{f.kind}] {f.message}" for f in explanation.findings or [])]
    lines += ["", "Cheaper equivalents (per frame):"]
    for eq in explanation.equivalents:
        lines += [f"  - {eq.replaces}: {_counts(eq.dense)} -> {_counts(eq.cheaper)}", f"      by {eq.algorithm}",
                  f"      {eq.note}"]
    if explanation.unrecognized:
        lines += ["", f"Unrecognized nodes: {', '.join(explanation.unrecognized)}"]
    return "\n".join(lines) + "\n"
