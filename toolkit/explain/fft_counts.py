"""Exact real operation counts of the FFT that can replace a DFT written as a dense matrix (or Conv).

The algorithm, stated so the counts can be checked by running it (tests/test_explain.py does, with counters):
- complex FFT of N = 2^m points by split radix: X = E + W^k O1 + W^3k O3 with one N/2 and two N/4 sub-FFTs;
  twiddle multiplications skip W^0, cost 2 mul + 2 add for W^(N/8) and W^(3N/8) (a (+-1 - i)/sqrt 2 factor)
  and 4 mul + 2 add otherwise; each k has 12 real additions of butterflies; sign changes are free;
- real FFT of n = 2^m points (m >= 2): the complex FFT of z[j] = x[2j] + i x[2j+1] (N = n/2 points), then for
  k = 1..n/4-1 the pair X[k] = A/2 + T B, X[n/2-k] = conj(A/2 - T B) with A = Z[k] + conj Z[N-k],
  B = Z[k] - conj Z[N-k] and the precomputed T = W_n^k / 2i (2 mul + 2 add when k = n/8, else 4 mul + 2 add);
  X[0] and X[n/2] take one addition each; X[n/4] = conj Z[n/4] is free.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealOps:
    """Real multiplications and additions (subtractions counted as additions)."""

    mul: int
    add: int


def _log2(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{n} is not a power of two")
    return n.bit_length() - 1


def split_radix_complex(n: int) -> RealOps:
    """Complex split-radix FFT of n = 2^m >= 2 points, closed form:
    mul = (12 n m - 38 n + 54 + 2 (-1)^m) / 9, add = (24 n m - 16 n + 18 - 2 (-1)^m) / 9."""
    m = _log2(n)
    if n < 2:
        return RealOps(0, 0)
    sign = (-1) ** m
    return RealOps((12 * n * m - 38 * n + 54 + 2 * sign) // 9, (24 * n * m - 16 * n + 18 - 2 * sign) // 9)


def split_radix_recurrence(n: int) -> RealOps:
    """The same counts by the recurrence T(n) = T(n/2) + 2 T(n/4) + twiddles + butterflies (a second derivation)."""
    if n <= 2:
        return RealOps(0, 2 * n if n == 2 else 0)
    half, quarter = split_radix_recurrence(n // 2), split_radix_recurrence(n // 4)
    twiddle_mul = 2 * n - 12 if n >= 8 else 0
    twiddle_add = n - 4
    return RealOps(half.mul + 2 * quarter.mul + twiddle_mul, half.add + 2 * quarter.add + twiddle_add + 3 * n)


def real_fft(n: int) -> RealOps:
    """Real-input FFT of n = 2^m >= 4 points via a complex split-radix FFT of n/2 points (see module doc)."""
    _log2(n)
    if n < 4:
        raise ValueError("the real FFT by a half-length complex FFT needs n >= 4")
    inner = split_radix_complex(n // 2)
    pairs = n // 4 - 1
    special = 1 if n >= 8 else 0  # the k = n/8 pair has the cheaper twiddle
    return RealOps(inner.mul + 6 * pairs - 2 * special, inner.add + 2 + 10 * pairs)


ALGORITHM = ("real-input FFT: one complex split-radix FFT of n/2 points plus an O(n) split step "
             "(trivial twiddles skipped, (1-i)/sqrt2 twiddles at 2 mul + 2 add, others 4 mul + 2 add)")


def is_power_of_two(n: int) -> bool:
    return n >= 1 and not n & (n - 1)
