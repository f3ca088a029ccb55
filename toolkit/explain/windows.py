"""Name an analysis window from its taps: kind, length, offset inside the kernel, periodic or symmetric, gain.

Candidates are rebuilt from their textbook formulas and compared tap by tap; the window is named only if one
fits to float32 precision. Some fits are exactly equal (a periodic Hann of L is a symmetric Hann of L + 1 with
its last zero tap), so the convention a known library uses wins the tie and the others are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from toolkit.melgraph import WINDOW_SHAPES, window_values

# The builder's shapes plus one only recognized here: sqrt-Hann, the square root of a Hann, used by
# analysis-synthesis STFTs whose inverse applies it a second time.
KINDS = (*WINDOW_SHAPES, "sqrt-hann")

TOLERANCE = 1e-5  # relative to the largest tap: float32 storage errors are ~1e-7


@dataclass(frozen=True)
class WindowFit:
    """A named window inside an n-tap kernel, with the relative max error of the fit."""

    kind: str
    length: int
    offset: int
    periodic: bool | None
    gain: float
    error: float
    alternatives: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """E.g. "periodic hann of 400 taps at offset 56"."""
        symmetry = "" if self.periodic is None else ("periodic " if self.periodic else "symmetric ")
        gain = "" if abs(self.gain - 1) < 1e-6 else f" x {self.gain:.6g}"
        return f"{symmetry}{self.kind} of {self.length} taps at offset {self.offset}{gain}"


def _preference(fit: WindowFit, n: int) -> tuple[int, int]:
    """Taps that fit several windows exactly (a symmetric window of N is a periodic one of N - 1 and a zero tap)
    are named the way exporters build frames: a window centred exactly in the frame first (torch pads win_length
    to n_fft by (n_fft - win_length) / 2 each side; periodic before symmetric), then one centred to a tap
    (periodic), then Kaldi's (symmetric, left-aligned), then the shortest."""
    exact = 2 * fit.offset + fit.length == n
    centred = fit.offset == (n - fit.length) // 2
    if centred and exact:
        rank = 0 if fit.periodic is not False else 1
    elif centred and fit.periodic is not False:
        rank = 2
    else:
        rank = 3 if fit.offset == 0 and fit.periodic is not True else 4
    return rank, fit.length


def _candidates(n: int, first: int, last: int) -> list[tuple[int, int]]:
    """(length, offset) pairs whose span covers the nonzero taps, allowing zero-valued end taps of the window."""
    span = last - first + 1
    pairs = []
    for length in range(span, span + 3):
        for offset in range(first - 2, first + 1):
            if offset >= 0 and offset + length <= n and offset + length - 1 >= last:
                pairs.append((length, offset))
    return pairs


def _gain_and_error(taps: np.ndarray, candidate: np.ndarray, peak: float, limit: float) -> tuple[float, float]:
    """Gain 1 if the window fits as is, else the least-squares gain; with the relative max error."""
    error = float(np.max(np.abs(taps - candidate)) / peak)
    if error < limit:
        return 1.0, error
    gain = float(taps @ candidate / (candidate @ candidate))
    return gain, float(np.max(np.abs(taps - gain * candidate)) / peak)


def _values(kind: str, length: int, periodic: bool) -> np.ndarray:
    """The window of `length` taps, as melgraph builds it, or the square root of its Hann."""
    if kind == "sqrt-hann":
        return cast(np.ndarray, np.sqrt(np.maximum(window_values("hann", length, periodic), 0.0)))
    return window_values(kind, length, periodic)


def fit_window(taps: np.ndarray, limit: float = TOLERANCE) -> WindowFit | None:
    """The best-fitting named window for `taps` (float [n]) within relative error `limit`, or None."""
    taps = np.asarray(taps, dtype=np.float64)
    peak = np.max(np.abs(taps))
    nonzero = np.flatnonzero(np.abs(taps) > peak * 1e-9) if peak > 0 else np.array([], dtype=int)
    if nonzero.size == 0:
        return None
    n = taps.size
    fits = []
    for length, offset in _candidates(n, int(nonzero[0]), int(nonzero[-1])):
        for kind in KINDS:
            for periodic in (True, False) if kind != "rectangular" else (None,):
                candidate = np.zeros(n)
                candidate[offset : offset + length] = _values(kind, length, bool(periodic))
                gain, error = _gain_and_error(taps, candidate, peak, limit)
                if error < limit:
                    fits.append(WindowFit(kind, length, offset, periodic, gain, error))
    if not fits:
        return None
    fits.sort(key=lambda fit: _preference(fit, n))
    best, closest = fits[0], min(fit.error for fit in fits)
    others = tuple(fit.describe() for fit in fits[1:] if fit.error <= 2 * closest + 1e-9)
    return WindowFit(best.kind, best.length, best.offset, best.periodic, best.gain, best.error, others)


# Each kind's formula over phase phi = 2 pi (j - offset) / D, as (plain text, LaTeX).
_FORMULAS: dict[str, tuple[str, str]] = {
    "hann": ("0.5 - 0.5 cos(phi)", r"0.5 - 0.5\cos\varphi"),
    "hamming": ("0.54 - 0.46 cos(phi)", r"0.54 - 0.46\cos\varphi"),
    "blackman": ("0.42 - 0.5 cos(phi) + 0.08 cos(2 phi)", r"0.42 - 0.5\cos\varphi + 0.08\cos 2\varphi"),
    "povey": ("(0.5 - 0.5 cos(phi))^0.85", r"(0.5 - 0.5\cos\varphi)^{0.85}"),
    "sqrt-hann": ("sqrt(0.5 - 0.5 cos(phi))", r"\sqrt{0.5 - 0.5\cos\varphi}"),
    "rectangular": ("1", "1"),
}


def window_formula(fit: WindowFit) -> tuple[str, str]:
    """The window as w[j] over the kernel's taps, in plain text and LaTeX."""
    text, latex = _FORMULAS[fit.kind]
    denominator = fit.length if fit.periodic is not False else fit.length - 1
    first, last = fit.offset, fit.offset + fit.length - 1
    gain = "" if abs(fit.gain - 1) < 1e-6 else f"{fit.gain:.6g} "
    return (
        f"w[j] = {gain}({text}), phi = 2 pi (j - {first}) / {denominator}, for {first} <= j <= {last}, else 0",
        rf"w_j = {gain}\left({latex}\right),\ \varphi = \frac{{2\pi (j - {first})}}"
        rf"{{{denominator}}},\ {first} \le j \le {last}",
    )
