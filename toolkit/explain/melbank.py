"""Recognize a mel filterbank: a MatMul by a constant [bins, bands] of triangles, and recover its parameters.

Parameters are fitted by rebuilding: for each candidate sample rate and filter family (librosa's Slaney and HTK
scales via toolkit.melgraph.mel_filterbank, and Kaldi's triangles-in-mel), fmin and fmax are searched inside the
one-bin boxes that the first and last nonzero weights allow, with per-band gains free (so the normalization is
decided afterwards). The best rebuild names the parameters; its error is reported beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import onnx

from toolkit.explain.block import Block, Formula, Match, Param, Signal, fmt, node_names
from toolkit.explain.graph import GraphView, tolerance
from toolkit.melgraph import MelParams, mel_filterbank

SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
FAMILIES = ("slaney", "htk", "kaldi")
FAMILY_TEXT = {
    "slaney": "Slaney mel scale (linear below 1 kHz, logarithmic above), triangles linear in Hz (librosa default)",
    "htk": "HTK mel scale 2595 log10(1 + f/700), triangles linear in Hz",
    "kaldi": "HTK mel scale 1127 ln(1 + f/700), triangles linear in mel (Kaldi, torchaudio.compliance.kaldi)",
}
TOLERANCE = 1e-3  # relative max error for a fit to count as this filterbank
_REFINED = 3  # candidates refined after the coarse grid


@dataclass(frozen=True)
class MelFit:
    """Recovered filterbank parameters and the relative max error of rebuilding the weights from them."""

    sample_rate: int
    family: str
    norm: str | None
    fmin: float
    fmax: float
    error: float
    others: tuple[tuple[int, str, float], ...] = ()


def _kaldi_bank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Kaldi's mel banks [bins, bands]: triangles linear in mel = 1127 ln(1 + f/700), no normalization."""
    def mel(hz: object) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bin_mels = mel(np.arange(n_fft // 2 + 1) * sample_rate / n_fft)[:, None]
    edges = np.linspace(mel(fmin), mel(fmax), n_mels + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    return cast(np.ndarray, np.maximum(0.0, np.minimum((bin_mels - left) / (centre - left),
                                                       (right - bin_mels) / (right - centre))))


def rebuild(family: str, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
            norm: str | None = None) -> np.ndarray:
    """The [bins, bands] filterbank of a family at these parameters."""
    if family == "kaldi":
        return _kaldi_bank(sample_rate, n_fft, n_mels, fmin, fmax)
    params = MelParams(sample_rate=sample_rate, n_fft=n_fft, win_length=n_fft, n_mels=n_mels, fmin=fmin,
                       fmax=fmax, mel_scale=family, mel_norm=norm)
    return mel_filterbank(params).astype(np.float64)


def _gain_error(weights: np.ndarray, candidate: np.ndarray, peak: float) -> tuple[float, float]:
    """(mean squared, max) error with the best gain per band, relative to the largest weight."""
    power = np.sum(candidate * candidate, axis=0)
    gains = np.divide(np.sum(weights * candidate, axis=0), power, out=np.zeros_like(power), where=power > 0)
    residual = (weights - candidate * gains) / peak
    return float(np.mean(residual**2)), float(np.max(np.abs(residual)))


def _box(weights: np.ndarray, sample_rate: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the (fmin, fmax) box in Hz that the outermost nonzero weights allow."""
    bin_hz, nyquist = sample_rate / n_fft, sample_rate / 2
    rows = np.flatnonzero(np.any(weights > 0, axis=1))
    first, last = int(rows[0]), int(rows[-1])
    fmin_low = max(first - 1, 0) * bin_hz if np.any(weights[:, 0] > 0) else 0.0
    fmax_high = min((last + 1) * bin_hz, nyquist) if np.any(weights[:, -1] > 0) else nyquist
    return np.array([fmin_low, last * bin_hz]), np.array([first * bin_hz, fmax_high])


def _pattern_search(objective: Callable[[np.ndarray], float], low: np.ndarray, high: np.ndarray,
                    start: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimize over a box by compass search: try +-step on each coordinate, halve the step when none helps."""
    point, value = start, objective(start)
    step = (high - low) / 4
    directions = [np.array(d, dtype=float) for d in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    while np.max(step / np.maximum(high - low, 1e-12)) > 1e-6:
        for direction in directions:
            trial = np.clip(point + direction * step, low, high)
            trial_value = objective(trial)
            if trial_value < value:
                point, value = trial, trial_value
                break
        else:
            step = step / 2
    return point, value


def _objective(weights: np.ndarray, family: str, sample_rate: int, n_fft: int) -> Callable[[np.ndarray], float]:
    peak = float(np.max(weights))

    def mean_squared(edges: np.ndarray) -> float:
        fmin, fmax = float(edges[0]), float(edges[1])
        if not 0 <= fmin < fmax <= sample_rate / 2:
            return np.inf
        return _gain_error(weights, rebuild(family, sample_rate, n_fft, weights.shape[1], fmin, fmax), peak)[0]

    return mean_squared


def _coarse(weights: np.ndarray, n_fft: int) -> list[tuple[float, int, str, np.ndarray, np.ndarray, np.ndarray]]:
    """Every (sample rate, family) scored on a 3 x 3 grid over its box, best first."""
    scored = []
    for sample_rate in SAMPLE_RATES:
        low, high = _box(weights, sample_rate, n_fft)
        if low[1] > sample_rate / 2:
            continue
        for family in FAMILIES:
            objective = _objective(weights, family, sample_rate, n_fft)
            grid = [low + (high - low) * np.array([a, b]) for a in (0.2, 0.5, 0.8) for b in (0.2, 0.5, 0.8)]
            value, start = min(((objective(p), p) for p in grid), key=lambda pair: pair[0])
            scored.append((value, sample_rate, family, low, high, start))
    return sorted(scored, key=lambda entry: entry[0])


def _norm(weights: np.ndarray, family: str, sample_rate: int, n_fft: int,
          edges: np.ndarray) -> tuple[str | None, float]:
    """The normalization whose plain rebuild (no free gains) fits best, with that relative max error."""
    peak = float(np.max(weights))
    norms = (None, "slaney") if family != "kaldi" else (None,)
    errors = {
        norm: float(np.max(np.abs(
            weights - rebuild(family, sample_rate, n_fft, weights.shape[1], float(edges[0]), float(edges[1]), norm)
        )) / peak)
        for norm in norms
    }
    best = min(errors, key=errors.__getitem__)
    return best, errors[best]


def fit_filterbank(weights: np.ndarray, n_fft: int) -> MelFit | None:
    """Parameters of a [bins, bands] filterbank, or None if no family fits within TOLERANCE (looser for fp16)."""
    limit = tolerance(weights, TOLERANCE)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != n_fft // 2 + 1 or np.any(weights < 0) or not np.any(weights):
        return None
    peak = float(np.max(weights))
    refined = []
    for _, sample_rate, family, low, high, start in _coarse(weights, n_fft)[:_REFINED]:
        edges, _ = _pattern_search(_objective(weights, family, sample_rate, n_fft), low, high, start)
        candidate = rebuild(family, sample_rate, n_fft, weights.shape[1], float(edges[0]), float(edges[1]))
        refined.append((_gain_error(weights, candidate, peak)[1], sample_rate, family, edges))
    # A shape that fits at several rates can still be pinned by its normalization (Slaney's is in 1/Hz).
    ranked = sorted(
        (plain >= limit, plain, shape_error, sample_rate, family, edges, norm)
        for shape_error, sample_rate, family, edges in refined if shape_error < limit
        for norm, plain in [_norm(weights, family, sample_rate, n_fft, edges)]
    )
    if not ranked:
        return None
    unnamed_norm, plain, shape_error, sample_rate, family, edges, norm = ranked[0]
    others = tuple((entry[3], entry[4], entry[1]) for entry in ranked[1:] if entry[0] == unnamed_norm)
    return MelFit(sample_rate, family, "per-band gains" if unnamed_norm else norm, float(edges[0]),
                  float(edges[1]), shape_error if unnamed_norm else plain, others)


def _source(view: GraphView, tensor: str) -> onnx.NodeProto | None:
    """The first non-layout node producing `tensor`, looking back through Transpose, Cast and the like."""
    node = view.producer.get(tensor)
    while node is not None and (view.is_layout(node) or node.op_type == "Cast"):
        node = view.producer.get(node.input[0])
    return node


def _weights(view: GraphView, node: onnx.NodeProto, tensor: str, bins: int | None) -> np.ndarray | None:
    """The constant operand as [bins, bands]: B of x @ B, or A transposed for A @ x."""
    other = view.other_input(node, tensor)
    value = view.const(other) if other else None
    if value is None or value.ndim != 2:
        return None
    weights = value if node.input[1] == other else value.T
    return weights if bins is None or weights.shape[0] == bins else None


def _op_params(view: GraphView, source: onnx.NodeProto) -> MelFit | None:
    """Exact parameters of ONNX's MelWeightMatrix, read from its constant inputs."""
    found = [view.scalar(name) for name in source.input]
    values = [v for v in found if v is not None]
    if source.op_type != "MelWeightMatrix" or len(values) < len(found):
        return None
    _, _, sample_rate, fmin, fmax = values
    return MelFit(int(sample_rate), "onnx", None, fmin, fmax, 0.0)


def _params(fit: MelFit, bands: int, bin_hz: float) -> list[Param]:
    from_op = fit.family == "onnx"
    how = "read from the MelWeightMatrix op" if from_op else f"fit; one FFT bin is {bin_hz:.6g} Hz"
    params = [
        Param("bands", bands),
        Param("sample rate", fit.sample_rate, "Hz", how),
        Param("fmin", round(fit.fmin, 3), "Hz", how),
        Param("fmax", round(fit.fmax, 3), "Hz", how),
        Param("scale", "htk" if from_op else fit.family, "",
              "ONNX MelWeightMatrix: HTK mel scale, band edges rounded down to whole FFT bins" if from_op
              else FAMILY_TEXT[fit.family]),
        Param("norm", fit.norm or "none", note={"slaney": "each triangle scaled to unit area: 2 / (f_hi - f_lo)",
                                                 None: "triangles peak at 1"}.get(fit.norm, "")),
        Param("fit error", float(f"{fit.error:.2g}"), "", "relative max |weights - rebuilt|"),
    ]
    if fit.others:
        alternatives = [f"{family} at {rate} Hz (error {error:.1e})" for rate, family, error in fit.others]
        params.append(Param("also fits", alternatives, note="the weights cannot tell these apart"))
    return params


def recognize_melbank(view: GraphView, signal: Signal) -> Match | None:
    """A MatMul of the spectrum by a constant triangular filterbank (fitted) or a MelWeightMatrix (read)."""
    if signal.form != "real" or signal.domain == "time":
        return None
    start, path = view.forward(signal.tensors[0])
    bins = signal.context.get("bins")
    for node in view.data_consumers(start):
        weights = _weights(view, node, start, bins) if node.op_type == "MatMul" else None
        if weights is None:
            continue
        n_fft = signal.context.get("n_fft", 2 * (weights.shape[0] - 1))
        source = _source(view, view.other_input(node, start) or "")
        fit = (_op_params(view, source) if source is not None else None) or fit_filterbank(weights, n_fft)
        if fit is not None:
            return Match(_block(view, [*path, node], weights, fit, n_fft), signal.then((node.output[0],)))
    return None


def _block(view: GraphView, nodes: list[onnx.NodeProto], weights: np.ndarray, fit: MelFit, n_fft: int) -> Block:
    rows = np.flatnonzero(np.any(weights != 0, axis=1))
    first, last = int(rows[0]), int(rows[-1])
    bands = weights.shape[1]
    scale = next(p.value for p in _params(fit, bands, 1.0) if p.name == "scale")
    described = (f"{bands} triangular mel filters ({scale} scale, norm {fit.norm or 'none'}) for "
                 f"{fit.sample_rate} Hz audio, {fmt(round(fit.fmin, 2))}..{fmt(round(fit.fmax, 2))} Hz")
    ambiguity = "; the weights fit other sample rates equally (see 'also fits')" if fit.others else ""
    return Block(
        kind="mel filterbank",
        nodes=node_names(view, nodes),
        summary=f"Mel filterbank: {described}; only FFT bins {first}..{last} carry weight{ambiguity}.",
        params=[*_params(fit, bands, fit.sample_rate / n_fft), Param("bins used", [first, last]),
                Param("nonzero weights", int(np.count_nonzero(weights)), "", f"of {weights.size}")],
        formula=Formula(
            text=f"sum_{{k={first}}}^{{{last}}} F[k,m] {{x}}",
            latex=rf"\sum_{{k={first}}}^{{{last}}} F_{{k,m}}\, {{x}}",
            index="b,t,m",
            where=(f"F = {described}",),
            where_latex=(rf"F = \text{{{described}}}",),
        ),
        data={"nonzeros": int(np.count_nonzero(weights)),
              "bands_used": int(np.count_nonzero(np.any(weights != 0, axis=0))),
              "bins": weights.shape[0], "bands": bands, "bins_used": (first, last)},
    )


RECOGNIZERS = (recognize_melbank,)
