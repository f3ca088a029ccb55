"""Recognize the Fourier transform stage by ONNX's STFT and DFT ops and the window before a DFT op; the helpers
every transform form shares (the kernel fit, the window's parameters, the formula) live here too.

Kernels are a DFT when, row by row, they are one window times cos and sin of 2 pi k j / n: row 0 of the cosine
kernel is the window itself (cos 0 = 1), and every other row must then match to float32 precision.
"""

from __future__ import annotations

import numpy as np

from toolkit.explain.block import Block, Formula, Match, Param, Signal, node_names
from toolkit.explain.graph import GraphView, attribute, stored_as_bfloat16, tolerance
from toolkit.explain.windows import TOLERANCE as WINDOW_TOLERANCE
from toolkit.explain.windows import WindowFit, fit_window, window_formula

TOLERANCE = 1e-4  # relative max error of a kernel against window x basis


def _basis(bins: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi k j / n, [bins, n], with k j reduced modulo n in integers for accuracy."""
    phase = 2 * np.pi * (np.outer(np.arange(bins), np.arange(n)) % n) / n
    return np.cos(phase), np.sin(phase)


def dft_fit(cos_kernel: np.ndarray, sin_kernel: np.ndarray) -> tuple[np.ndarray, int, float] | None:
    """(window taps, sign of the sine part, relative error) if the kernels are a windowed DFT, else None."""
    limit = tolerance(cos_kernel, TOLERANCE)
    cos_kernel, sin_kernel = cos_kernel.astype(np.float64), sin_kernel.astype(np.float64)
    bins, n = cos_kernel.shape
    window = cos_kernel[0]
    peak = np.max(np.abs(window))
    if peak == 0 or bins > n:
        return None
    cos_basis, sin_basis = _basis(bins, n)
    sine = window * sin_basis
    sign = 1 if float(np.sum(sin_kernel * sine)) >= 0 else -1
    error = max(
        float(np.max(np.abs(cos_kernel - window * cos_basis))), float(np.max(np.abs(sin_kernel - sign * sine)))
    )
    return (window, sign, error / peak) if error / peak < limit else None


def bins_text(bins: int, n: int) -> str:
    """Which bins a transform of `bins` outputs of an n-point DFT keeps."""
    return "one-sided (0..n_fft/2)" if bins == n // 2 + 1 else "full (0..n_fft-1)" if bins == n else "first bins"


def sign_text(sign: int) -> str:
    """The exponent's sign in words."""
    return "e^{-i 2 pi k j / n} (forward DFT, numpy/torch)" if sign < 0 else "e^{+i 2 pi k j / n} (inverse sign)"


def window_params(fit: WindowFit | None, taps: np.ndarray, stored: np.ndarray) -> list[Param]:
    """The window's parameters; `stored` is the taps as the graph stores them (their precision bounds the fit)."""
    if fit is None:
        nonzero = np.flatnonzero(taps)
        return [Param("window", "unnamed taps", note=f"nonzero taps {nonzero[0]}..{nonzero[-1]}; no formula fits")]
    params = [
        Param("window", fit.kind, note=f"fit error {fit.error:.1e}"
              + ("; the taps are bfloat16 values" if stored_as_bfloat16(stored) else "")),
        Param("window length", fit.length, "samples"),
        Param("window offset", fit.offset, "samples", "first tap of the window inside the kernel"),
    ]
    if fit.periodic is not None:
        params.append(Param("window symmetry", "periodic" if fit.periodic else "symmetric"))
    if abs(fit.gain - 1) > 1e-6:
        params.append(Param("window gain", round(fit.gain, 9)))
    if fit.alternatives:
        params.append(Param("window also fits", list(fit.alternatives), note="exactly equal taps"))
    return params


def dft_formula(n: int, reads: str, bins: int, sign: int, fit: WindowFit | None, gain: float = 1.0) -> Formula:
    """X[b,t,k] as a sum over the frame; `reads` is the input index frame t position j reads ("160t + j", or
    "t, j" for frames made before)."""
    minus, index = "-" if sign < 0 else "", reads.replace(" ", "")
    scale = "" if gain == 1 else f"{gain:.9g} "
    where = window_formula(fit) if fit else ("w[j] = the kernel's row-0 taps", "w_j = \\text{row-0 taps}")
    return Formula(
        text=f"{scale}sum_{{j=0}}^{{{n - 1}}} w[j] {{s}}[b, {reads}] e^({minus}2 pi i jk/{n}), k = 0..{bins - 1}",
        latex=rf"{scale}\sum_{{j=0}}^{{{n - 1}}} w_j\, {{s}}_{{b,{index}}}\, e^{{{minus}2\pi i jk/{n}}}",
        name="X",
        index="b,t,k",
        where=(where[0],),
        where_latex=(where[1],),
    )


def frames_text(samples: str, pads: list[int], n: int, hop: int) -> str:
    padded = f"{samples} + {sum(pads)}" if sum(pads) else samples
    return f"floor(({padded} - {n}) / {hop}) + 1"


def recognize_stft_op(view: GraphView, signal: Signal) -> Match | None:
    """ONNX's STFT op (opset 17): frame step, window and frame length read from its constant inputs."""
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    node = next((n for n in view.data_consumers(start) if n.op_type == "STFT" and n.input[0] == start), None)
    if node is None:
        return None
    inputs = [*node.input, "", ""]
    hop_value, window, length = view.const(inputs[1]), view.const(inputs[2]), view.const(inputs[3])
    if hop_value is None or (window is None and inputs[2]):
        return None
    if length is not None:
        n = int(length)
    elif window is not None:
        n = int(window.size)
    else:
        return None
    taps = np.ones(n) if window is None else window.astype(np.float64)
    hop, onesided = int(hop_value), bool(attribute(node, "onesided", 1))
    bins = n // 2 + 1 if onesided else n
    fit = fit_window(taps, tolerance(window if window is not None else taps, WINDOW_TOLERANCE))
    block = Block(
        kind="stft",
        nodes=node_names(view, [*path, node]),
        summary=(
            f"Short-time Fourier transform by ONNX's STFT op: frames of {n} samples every {hop} samples, "
            f"{bins} {bins_text(bins, n)} bins, window {fit.describe() if fit else 'unnamed'}."
        ),
        params=[
            Param("n_fft", n, "samples", "frame_length"),
            Param("hop", hop, "samples", "frame_step"),
            Param("bins", bins, "", bins_text(bins, n)),
            *window_params(fit, taps, window if window is not None else taps),
            Param("sign", sign_text(-1), note="fixed by the ONNX STFT definition"),
            Param("frames", frames_text(signal.context.get("samples", "samples"), [0, 0], n, hop)),
        ],
        formula=dft_formula(n, f"{hop}t + j", bins, -1, fit),
        data={
            "form": "op",
            "n_fft": n,
            "window": taps,
            "bins": bins,
            "window_taps": int(np.count_nonzero(taps)),
            "dense_mul": n + bins * 2 * n,
            "dense_add": bins * 2 * (n - 1),
            "operator": "the STFT op (window multiply + naive DFT)",
        },
    )
    out = signal.then((node.output[0],), "stacked", domain="spectral", n_fft=n, bins=bins, hop=hop,
                      complex_axis=-1)
    return Match(block, out)


def recognize_dft_op(view: GraphView, signal: Signal) -> Match | None:
    """ONNX's DFT op on already framed data: length, axis, one-sided and inverse read from the node."""
    start, path = view.forward(signal.tensors[0])
    node = next((n for n in view.data_consumers(start) if n.op_type == "DFT" and n.input[0] == start), None)
    if node is None or len(signal.tensors) != 1:
        return None
    inputs = [*node.input, "", ""]
    length = view.const(inputs[1])
    axis_value = view.const(inputs[2]) if inputs[2] else attribute(node, "axis", 1)
    if (inputs[1] and length is None) or axis_value is None:
        return None
    inverse, onesided = bool(attribute(node, "inverse", 0)), bool(attribute(node, "onesided", 0))
    n_text = str(int(length)) if length is not None else "the axis length"
    block = Block(
        kind="dft",
        nodes=node_names(view, [*path, node]),
        summary=(
            f"{'Inverse' if inverse else 'Forward'} DFT by ONNX's DFT op over axis {int(axis_value)} "
            f"(length {n_text}, {'one-sided' if onesided else 'full'} output); the framing and window come from "
            "the blocks before it."
        ),
        params=[
            Param("n_fft", int(length) if length is not None else n_text, "samples",
                  note="dft_length" if length is not None else "the framed axis's length"),
            Param("axis", int(axis_value)),
            Param("onesided", onesided),
            Param("inverse", inverse),
            Param("sign", sign_text(1 if inverse else -1), note="fixed by the ONNX DFT definition"),
        ],
        formula=Formula(
            text=f"{'I' if inverse else ''}DFT_{n_text}({{x}})",
            latex=rf"\mathrm{{{'I' if inverse else ''}DFT}}_{{{n_text}}}\left({{x}}\right)",
            name="X",
            index="b,t,k",
        ),
    )
    context = {"n_fft": int(length)} if length is not None else {}
    return Match(block, signal.then((node.output[0],), "stacked", domain="spectral", complex_axis=-1, **context))


def recognize_window(view: GraphView, signal: Signal) -> Match | None:
    """Framed samples times a constant vector along the last axis that fits a named window: the analysis
    window applied before a DFT op (when no STFT op or DFT kernel carries it)."""
    if signal.form != "real" or signal.domain == "spectral":
        return None
    start, path = view.forward(signal.tensors[0])
    users = view.data_consumers(start)
    other = view.other_input(users[0], start) if len(users) == 1 and users[0].op_type == "Mul" else None
    taps = view.const(other) if other else None
    if taps is None or taps.size < 8 or taps.size != taps.shape[-1] or (view.rank(start) or 3) < 3:
        return None
    fit = fit_window(taps.reshape(-1), tolerance(taps, WINDOW_TOLERANCE))
    if fit is None:
        return None
    where = window_formula(fit)
    block = Block(
        kind="window",
        nodes=node_names(view, [*path, users[0]]),
        summary=f"Analysis window on each frame: {fit.describe()}.",
        params=window_params(fit, taps.reshape(-1).astype(np.float64), taps),
        formula=Formula(text="w[j] {x}", latex=r"w_j\, {x}", where=(where[0],), where_latex=(where[1],)),
    )
    return Match(block, signal.then((users[0].output[0],), window=fit.describe()))


RECOGNIZERS = (recognize_stft_op, recognize_window, recognize_dft_op)
