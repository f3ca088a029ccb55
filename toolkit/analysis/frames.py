"""Frames: the output dim that grows by one every `hop` samples, and the cost of one more frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

if TYPE_CHECKING:
    from toolkit.analysis import Analysis


@dataclass(frozen=True)
class Frames:
    expr: sp.Expr  # frames as a formula of one input dim, e.g. floor((samples - 512)/160) + 1
    symbol: sp.Symbol
    hop: int
    first: int  # smallest input that gives one frame

    def samples_for(self, frames: int) -> int:
        """The smallest input length that gives this many frames."""
        return self.first + self.hop * (frames - 1)


def frame_dim(expr: sp.Expr) -> tuple[sp.Symbol, int] | None:
    """(symbol, hop) when expr is floor(symbol / hop + c) + d: a sliding window over one input dim."""
    floors = list(expr.atoms(sp.floor))
    if len(floors) != 1 or len(expr.free_symbols) != 1:
        return None
    symbol = next(iter(expr.free_symbols))
    argument = floors[0].args[0]
    if not argument.is_polynomial(symbol) or sp.degree(argument, symbol) != 1:
        return None
    step = 1 / sp.Poly(argument, symbol).LC()
    return (symbol, int(step)) if step.is_Integer and step > 0 else None


def find_frames(analysis: Analysis) -> Frames | None:
    """The first output dim that is a sliding window over an input dim, if any."""
    smallest = analysis.smallest_input()
    for out in analysis.propagation.outputs:
        for dim in (out.shape if out is not None and out.shape else ()):
            found = frame_dim(sp.sympify(dim))
            if found:
                symbol, hop = found
                return Frames(dim, symbol, hop, smallest[str(symbol)])
    return None


def counts_at(analysis: Analysis, convention: str, overrides: dict[sp.Symbol, int]) -> dict[str, int]:
    bindings = {**analysis.bindings, **overrides}
    return analysis.formula(convention).subs(bindings).as_ints()


def per_frame(analysis: Analysis, frames: Frames, convention: str) -> dict[str, int]:
    """Cost of one more frame at the current dims: counts(T + 1 frames) - counts(T frames), exact."""
    now = analysis.value(frames.expr)
    before = counts_at(analysis, convention, {frames.symbol: frames.samples_for(now)})
    after = counts_at(analysis, convention, {frames.symbol: frames.samples_for(now + 1)})
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))
            if after.get(k, 0) - before.get(k, 0)}


def one_second(analysis: Analysis, frames: Frames, convention: str) -> dict[str, int]:
    """Counts for a one-second input (sample_rate samples), other dims as given."""
    return counts_at(analysis, convention, {frames.symbol: analysis.sample_rate})
