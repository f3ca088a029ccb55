"""Build the log-mel ONNX front end (openWakeWord's `melspectrogram.onnx` layout) from parameters.

The graph reproduces the exported torchlibrosa model node for node, so the toolkit can vary one
parameter at a time and know that every other difference from the reference file is zero. A numpy
reference computed another way (rFFT of windowed frames) lets tests check the graph's arithmetic.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from toolkit.errors import ToolkitError
from toolkit.files import write_bytes_atomic

WINDOWS = ("hann", "hamming", "povey")  # the windows the builder makes; WINDOW_SHAPES also serves explain's fit


def _cosine_sum(*coefficients: float) -> Callable[[np.ndarray], np.ndarray]:
    """Generalized cosine window sum_i (-1)^i a_i cos(i phase)."""
    return lambda phase: sum((-1) ** i * a * np.cos(i * phase) for i, a in enumerate(coefficients))


# Window formulas as functions of the phase 2 pi n / denominator, in one place.
WINDOW_SHAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hann": _cosine_sum(0.5, 0.5),
    "hamming": _cosine_sum(0.54, 0.46),
    "blackman": _cosine_sum(0.42, 0.5, 0.08),
    # Kaldi's "povey" window is a Hann raised to 0.85 (Kaldi itself uses the symmetric form).
    "povey": lambda phase: _cosine_sum(0.5, 0.5)(phase) ** 0.85,
    "rectangular": np.ones_like,
}
MEL_SCALES = ("slaney", "htk")
MEL_NORMS = ("slaney", None)

OPSET = 13
IR_VERSION = 7

# Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above (as librosa).
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_LOG_HZ = 1000.0
_SLANEY_LOG_MEL = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


@dataclass(frozen=True)
class MelParams:
    """Every knob of the front end; the defaults are openWakeWord's, so MelParams() builds its graph."""

    sample_rate: int = 16000
    n_fft: int = 512
    window: str = "hann"
    periodic: bool = True
    win_length: int = 400
    hop: int = 160
    n_mels: int = 32
    fmin: float = 60.0
    fmax: float = 3800.0
    mel_scale: str = "slaney"
    mel_norm: str | None = "slaney"
    amin: float = 1e-10
    ref: float = 1.0
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        problem = _first_problem(self)
        if problem:
            raise ToolkitError(f"invalid mel parameters: {problem}")

    @property
    def n_bins(self) -> int:
        """Number of one-sided DFT bins the graph computes."""
        return self.n_fft // 2 + 1


def _first_problem(p: MelParams) -> str | None:
    """The first invalid setting with its fix, or None; checked in order so messages stay one line."""
    for name in ("sample_rate", "n_fft", "win_length", "hop", "n_mels"):
        value = getattr(p, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{name}={value!r}; use a positive integer"
    checks = [
        (p.window not in WINDOWS, f"window={p.window!r}; use one of {', '.join(WINDOWS)}"),
        (not isinstance(p.periodic, bool), f"periodic={p.periodic!r}; use True or False"),
        (p.win_length > p.n_fft, f"win_length={p.win_length} > n_fft={p.n_fft}; use win_length <= n_fft"),
        (p.mel_scale not in MEL_SCALES, f"mel_scale={p.mel_scale!r}; use 'slaney' or 'htk'"),
        (p.mel_norm not in MEL_NORMS, f"mel_norm={p.mel_norm!r}; use 'slaney' or None"),
        (not 0 <= p.fmin < p.fmax, f"fmin={p.fmin}, fmax={p.fmax}; use 0 <= fmin < fmax"),
        (
            p.fmax > p.sample_rate / 2,
            f"fmax={p.fmax} > sample_rate/2={p.sample_rate / 2}; lower fmax or raise sample_rate",
        ),
        (not p.amin > 0, f"amin={p.amin}; use a positive floor such as 1e-10"),
        (not p.ref > 0, f"ref={p.ref}; use a positive reference power such as 1.0"),
        (
            p.top_db is not None and not p.top_db >= 0,
            f"top_db={p.top_db}; use a non-negative dB range or None for no clamp",
        ),
    ]
    return next((message for failed, message in checks if failed), None)


def window_values(kind: str, length: int, periodic: bool) -> np.ndarray:
    """The window of `length` taps, float64; periodic divides the phase by length, symmetric by length - 1."""
    denominator = length if periodic else max(length - 1, 1)
    return WINDOW_SHAPES[kind](2 * np.pi * np.arange(length) / denominator)


def window(params: MelParams) -> np.ndarray:
    """The analysis window, float64 [win_length]; periodic=True matches torch/librosa STFT windows."""
    return window_values(params.window, params.win_length, params.periodic)


def padded_window(params: MelParams) -> np.ndarray:
    """The window centred in n_fft taps, as torch.stft and torchlibrosa place it; float64 [n_fft]."""
    taps = np.zeros(params.n_fft)
    offset = (params.n_fft - params.win_length) // 2
    taps[offset : offset + params.win_length] = window(params)
    return taps


def dft_kernels(params: MelParams) -> tuple[np.ndarray, np.ndarray]:
    """Conv weights (real, imag), float32 [n_bins, 1, n_fft]: the windowed one-sided DFT as two Convs."""
    n = params.n_fft
    # Reduce k*j modulo n in integers so large products lose no phase accuracy.
    phase = 2 * np.pi * (np.outer(np.arange(params.n_bins), np.arange(n)) % n) / n
    taps = padded_window(params)
    real = taps * np.cos(phase)
    imag = -taps * np.sin(phase) + 0.0  # + 0.0 turns -0.0 into 0.0: imaginary row 0 is exactly zero
    return real.astype(np.float32)[:, None, :], imag.astype(np.float32)[:, None, :]


def _hz_to_mel(hz: np.ndarray | float, scale: str) -> np.ndarray:
    """Hertz to mels on the HTK or Slaney scale, with librosa's formulas so filterbanks match it."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_LOG_MEL + np.log(np.maximum(hz, _SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_LOG_HZ, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    """Mels back to hertz: the inverse of _hz_to_mel."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_LOG_HZ * np.exp(
        _SLANEY_LOG_STEP * (np.maximum(mel, _SLANEY_LOG_MEL) - _SLANEY_LOG_MEL)
    )
    return np.where(mel >= _SLANEY_LOG_MEL, logarithmic, linear)


def mel_filterbank(params: MelParams) -> np.ndarray:
    """Triangular mel filters, float32 [n_bins, n_mels]: librosa.filters.mel transposed, without librosa.

    The float32 rounding happens where librosa's does (ramps stored, then scaled in place), which is
    what makes the default bit-identical to the `1.melW` initializer of openWakeWord's file.
    """
    fft_hz = np.fft.rfftfreq(params.n_fft, d=1.0 / params.sample_rate)
    mel_edges = np.linspace(
        _hz_to_mel(params.fmin, params.mel_scale),
        _hz_to_mel(params.fmax, params.mel_scale),
        params.n_mels + 2,
    )
    edges_hz = _mel_to_hz(mel_edges, params.mel_scale)
    widths = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, fft_hz)
    weights = np.zeros((params.n_mels, params.n_bins), dtype=np.float32)
    for i in range(params.n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    if params.mel_norm == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return np.ascontiguousarray(weights.T)


def _scalar(name: str, value: float) -> TensorProto:
    """A float32 rank-0 tensor, the form the exporter used for every scalar constant."""
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


def _constant(index: int, output: str, tensor: np.ndarray) -> onnx.NodeProto:
    """A Constant node named as the exporter named it (Constant_<index>)."""
    return helper.make_node(
        "Constant", [], [output], name=f"Constant_{index}", value=numpy_helper.from_array(tensor)
    )


def _stft_nodes(params: MelParams) -> list[onnx.NodeProto]:
    """Nodes 0-9: audio -> [B, 1, T, n_bins] real and imaginary parts via two strided Convs."""
    axis_one = np.array([1], dtype=np.int64)
    conv: dict[str, Any] = {
        "dilations": [1],
        "group": 1,
        "kernel_shape": [params.n_fft],
        "pads": [0, 0],
        "strides": [params.hop],
    }
    return [
        _constant(0, "onnx::Unsqueeze_4", axis_one),
        helper.make_node("Unsqueeze", ["input", "onnx::Unsqueeze_4"], ["onnx::Conv_5"], name="Unsqueeze_1"),
        helper.make_node(
            "Conv", ["onnx::Conv_5", "0.stft.conv_real.weight"], ["onnx::Unsqueeze_6"], name="Conv_2", **conv
        ),
        helper.make_node(
            "Conv", ["onnx::Conv_5", "0.stft.conv_imag.weight"], ["onnx::Unsqueeze_7"], name="Conv_3", **conv
        ),
        _constant(4, "onnx::Unsqueeze_8", axis_one),
        helper.make_node(
            "Unsqueeze", ["onnx::Unsqueeze_6", "onnx::Unsqueeze_8"], ["onnx::Transpose_9"], name="Unsqueeze_5"
        ),
        helper.make_node("Transpose", ["onnx::Transpose_9"], ["real"], name="Transpose_6", perm=[0, 1, 3, 2]),
        _constant(7, "onnx::Unsqueeze_11", axis_one),
        helper.make_node(
            "Unsqueeze",
            ["onnx::Unsqueeze_7", "onnx::Unsqueeze_11"],
            ["onnx::Transpose_12"],
            name="Unsqueeze_8",
        ),
        helper.make_node(
            "Transpose", ["onnx::Transpose_12"], ["imag"], name="Transpose_9", perm=[0, 1, 3, 2]
        ),
    ]


def _power_db_nodes(params: MelParams, db_output: str) -> list[onnx.NodeProto]:
    """Nodes 10-23: power, mel MatMul, then 10*log10(max(x, amin)) - 10*log10(max(ref, amin))."""
    two = np.array(2.0, dtype=np.float32)
    ref_db = 10.0 * np.log10(max(params.ref, params.amin))
    return [
        _constant(10, "onnx::Pow_14", two),
        helper.make_node("Pow", ["real", "onnx::Pow_14"], ["onnx::Add_15"], name="Pow_11"),
        _constant(12, "onnx::Pow_16", two),
        helper.make_node("Pow", ["imag", "onnx::Pow_16"], ["onnx::Add_17"], name="Pow_13"),
        helper.make_node("Add", ["onnx::Add_15", "onnx::Add_17"], ["onnx::MatMul_18"], name="Add_14"),
        helper.make_node("MatMul", ["onnx::MatMul_18", "1.melW"], ["mel_spectrogram"], name="MatMul_15"),
        helper.make_node(
            "Clip", ["mel_spectrogram", "onnx::Clip_39", "onnx::Clip_40"], ["onnx::Log_24"], name="Clip_16"
        ),
        helper.make_node("Log", ["onnx::Log_24"], ["onnx::Mul_25"], name="Log_17"),
        _constant(18, "onnx::Mul_26", np.array(10.0, dtype=np.float32)),
        helper.make_node("Mul", ["onnx::Mul_25", "onnx::Mul_26"], ["onnx::Div_27"], name="Mul_19"),
        _constant(20, "onnx::Div_28", np.array(np.log(10.0), dtype=np.float32)),
        helper.make_node("Div", ["onnx::Div_27", "onnx::Div_28"], ["onnx::Sub_29"], name="Div_21"),
        _constant(22, "onnx::Sub_30", np.array(ref_db, dtype=np.float32)),
        helper.make_node("Sub", ["onnx::Sub_29", "onnx::Sub_30"], [db_output], name="Sub_23"),
    ]


def _top_db_nodes(top_db: float) -> list[onnx.NodeProto]:
    """Nodes 24-28: floor everything at (one max over the whole tensor) - top_db, as torchlibrosa does."""
    return [
        helper.make_node(
            "ReduceMax", ["onnx::ReduceMax_31"], ["onnx::Sub_32"], name="ReduceMax_24", keepdims=0
        ),
        _constant(25, "onnx::Sub_33", np.array(top_db, dtype=np.float32)),
        helper.make_node("Sub", ["onnx::Sub_32", "onnx::Sub_33"], ["onnx::Cast_34"], name="Sub_26"),
        helper.make_node("Cast", ["onnx::Cast_34"], ["onnx::Clip_36"], name="Cast_27", to=TensorProto.FLOAT),
        helper.make_node(
            "Clip", ["onnx::ReduceMax_31", "onnx::Clip_36", "onnx::Clip_41"], ["output"], name="Clip_28"
        ),
    ]


def _initializers(params: MelParams) -> list[TensorProto]:
    """Weights and Clip bounds under the exporter's names, in the exporter's order."""
    real, imag = dft_kernels(params)
    tensors = [
        numpy_helper.from_array(real, "0.stft.conv_real.weight"),
        numpy_helper.from_array(imag, "0.stft.conv_imag.weight"),
        numpy_helper.from_array(mel_filterbank(params), "1.melW"),
        _scalar("onnx::Clip_39", params.amin),
        _scalar("onnx::Clip_40", np.inf),
    ]
    if params.top_db is not None:
        tensors.append(_scalar("onnx::Clip_41", np.inf))
    return tensors


def build_mel_model(params: MelParams = MelParams()) -> onnx.ModelProto:
    """The log-mel graph for `params`, laid out exactly like openWakeWord's exported file.

    The output keeps the file's declared dims, including the misnamed first dim "time" (it is the
    batch), so analyses of built variants report the same finding as for the original.
    """
    with_clamp = params.top_db is not None
    nodes = _stft_nodes(params) + _power_db_nodes(params, "onnx::ReduceMax_31" if with_clamp else "output")
    if params.top_db is not None:
        nodes += _top_db_nodes(params.top_db)
    graph = helper.make_graph(
        nodes,
        "meltoolkit-melspectrogram",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", "samples"])],
        [
            helper.make_tensor_value_info(
                "output", TensorProto.FLOAT, ["time", 1, "Clipoutput_dim_2", params.n_mels]
            )
        ],
        initializer=_initializers(params),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="meltoolkit",
        producer_version=version("meltoolkit"),
    )
    onnx.checker.check_model(model)
    return model


@functools.lru_cache(maxsize=1)
def _default_model_cached() -> onnx.ModelProto:
    """Built once per process: the default build is the most used and takes tens of milliseconds."""
    return build_mel_model()


def default_model() -> onnx.ModelProto:
    """openWakeWord's front end as built from MelParams(); a fresh copy each call, safe to mutate."""
    model = onnx.ModelProto()
    model.CopyFrom(_default_model_cached())
    return model


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write `model` so readers never see a half-written file."""
    write_bytes_atomic(path, model.SerializeToString())


def _frames(audio: np.ndarray, params: MelParams) -> np.ndarray:
    """Frames [B, T, n_fft] with no centering padding, as the graph's stride-hop Conv sees them."""
    if audio.ndim != 2 or audio.shape[1] < params.n_fft:
        raise ToolkitError(
            f"audio of shape {audio.shape} gives no frame; pass [batch, samples], samples >= {params.n_fft}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(audio, params.n_fft, axis=1)
    return windows[:, :: params.hop, :]


def reference_logmel(audio: np.ndarray, params: MelParams = MelParams()) -> np.ndarray:
    """What the graph should output, float64 [B, 1, T, n_mels], via np.fft.rfft instead of DFT matrices."""
    frames = _frames(np.asarray(audio, dtype=np.float64), params) * padded_window(params)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = power @ mel_filterbank(params).astype(np.float64)
    db = 10.0 * np.log10(np.maximum(mel, params.amin)) - 10.0 * np.log10(max(params.ref, params.amin))
    if params.top_db is not None:
        db = np.maximum(db, db.max() - params.top_db)
    return db[:, None, :, :]
