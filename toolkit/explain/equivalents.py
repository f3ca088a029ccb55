"""Cheaper computations of the same values, with exact counts per frame beside the graph's own:
the DFT by a real FFT (toolkit.explain.fft_counts), the mel stage by its nonzero weights only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.explain.block import Block
from toolkit.explain.fft_counts import ALGORITHM, is_power_of_two, real_fft


@dataclass
class Equivalent:
    """One replacement: what it replaces, how, and per-frame counts before and after (None if not derivable)."""

    replaces: str
    algorithm: str
    dense: dict[str, int]
    cheaper: dict[str, int] | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"replaces": self.replaces, "algorithm": self.algorithm, "per_frame_graph": self.dense,
                "per_frame_cheaper": self.cheaper, "note": self.note}


def _fft(block: Block) -> Equivalent:
    n, window_taps = block.data["n_fft"], block.data["window_taps"]
    dense = {"mul": block.data["dense_mul"], "add": block.data["dense_add"]}
    if not is_power_of_two(n) or n < 4:
        return Equivalent(block.data["operator"], "real FFT", dense, None,
                          f"n_fft {n} is not a power of two: no split-radix count (a mixed-radix FFT is needed)")
    fft = real_fft(n)
    cheaper = {"mul": window_taps + fft.mul, "add": fft.add}
    return Equivalent(
        block.data["operator"],
        f"window multiply ({window_taps} nonzero taps) + {ALGORITHM}",
        dense,
        cheaper,
        f"real FFT of {n}: {fft.mul:,} mul + {fft.add:,} add; with the window: {cheaper['mul']:,} mul against "
        f"{dense['mul']:,} ({dense['mul'] / cheaper['mul']:.1f}x fewer multiplications), all {n // 2 + 1} bins",
    )


def _sparse_mel(block: Block) -> Equivalent:
    data = block.data
    dense = {"mul": data["bins"] * data["bands"], "add": (data["bins"] - 1) * data["bands"]}
    cheaper = {"mul": data["nonzeros"], "add": data["nonzeros"] - data["bands_used"]}
    first, last = data["bins_used"]
    return Equivalent(
        "the mel MatMul",
        "sum only the nonzero filter weights (a sparse [bins, bands] product)",
        dense,
        cheaper,
        f"{data['nonzeros']:,} of {dense['mul']:,} weights are nonzero; the power spectrum is needed only for bins "
        f"{first}..{last} ({last - first + 1} of {data['bins']})",
    )


_BUILDERS = {"stft": _fft, "mel filterbank": _sparse_mel}


def cheaper_equivalents(blocks: list[Block]) -> list[Equivalent]:
    return [_BUILDERS[block.kind](block) for block in blocks if block.kind in _BUILDERS and block.data]
