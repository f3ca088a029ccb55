"""explain recovers the parameters each test graph was built with, and refuses to name what it cannot.

Every front end here is built in the test (toolkit.melgraph or onnx.helper) from known parameters, run once
in onnxruntime to prove it is a valid graph, and then explained from its structure and weights alone.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.cli import main
from toolkit.explain import Explanation, explain
from toolkit.explain.fft_counts import real_fft, split_radix_complex, split_radix_recurrence
from toolkit.melgraph import MelParams, build_mel_model, default_model, mel_filterbank, save_model


def _run(model: onnx.ModelProto, samples: int = 1760) -> np.ndarray:
    """One real onnxruntime run: the graph is valid and produces finite values."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    audio = np.random.default_rng(0).normal(0, 1000, (2, samples)).astype(np.float32)
    (output,) = session.run(None, {session.get_inputs()[0].name: audio})
    assert np.all(np.isfinite(output))
    return output


def _params(explanation: Explanation, kind: str) -> dict[str, object]:
    block = explanation.block(kind)
    assert block is not None, f"no {kind} block in {[b.kind for b in explanation.blocks]}"
    return {p.name: p.value for p in block.params}


def _explain_json_safe(model: onnx.ModelProto) -> Explanation:
    """Explain, and check the JSON form serializes (no numpy scalars leak into the report)."""
    explanation = explain(model)
    json.dumps(explanation.to_json())
    return explanation


def _finding_kinds(explanation: Explanation) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for finding in explanation.findings:
        kinds.setdefault(finding.kind, []).append(finding.message)
    return kinds


# ---------------------------------------------------------------- the default (openWakeWord) graph


@pytest.fixture(scope="module")
def default_explanation() -> Explanation:
    return explain(default_model())


def test_default_graph_blocks_in_order(default_explanation: Explanation) -> None:
    kinds = [block.kind for block in default_explanation.blocks]
    assert kinds == ["stft", "power spectrum", "mel filterbank", "log", "top-db clamp"]
    assert default_explanation.unrecognized == []


def test_default_stft_parameters(default_explanation: Explanation) -> None:
    stft = _params(default_explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["bins"]) == (512, 160, 257)
    assert (stft["window"], stft["window length"], stft["window offset"]) == ("hann", 400, 56)
    assert stft["window symmetry"] == "periodic"
    assert stft["sign"].startswith("e^{-i")
    assert stft["frames"] == "floor((samples - 512) / 160) + 1"


def test_default_mel_log_and_clamp(default_explanation: Explanation) -> None:
    mel = _params(default_explanation, "mel filterbank")
    assert (mel["bands"], mel["sample rate"], mel["scale"], mel["norm"]) == (32, 16000, "slaney", "slaney")
    assert abs(mel["fmin"] - 60) < 0.1 and abs(mel["fmax"] - 3800) < 0.1
    assert mel["fit error"] < 1e-5 and mel["nonzero weights"] == 229 and mel["bins used"] == [2, 121]
    log = _params(default_explanation, "log")
    assert (log["function"], log["amin"], log["ref"]) == ("10 log10", 1e-10, 1.0)
    clamp = _params(default_explanation, "top-db clamp")
    assert clamp["top"] == 80 and clamp["scope"] == "the whole tensor"
    assert clamp["couples"] == "batch items and frames"


def test_default_findings(default_explanation: Explanation) -> None:
    kinds = _finding_kinds(default_explanation)
    (dim,) = kinds["declared dim"]
    assert "declared 'time'" in dim and "'batch_size'" in dim and "as the batch" in dim
    noops = " ".join(kinds["no-op"])
    assert "Sub_23 (Sub) subtracts 0" in noops and "Cast_27 (Cast)" in noops
    assert len(kinds["global reduction"]) == 1 and "batch" in kinds["global reduction"][0]
    zero = [f for f in default_explanation.findings if f.kind == "zero taps"]
    # periodic Hann of 400 at 56: taps 0..56 (w[0] = 0) and 456..511 are zero in all 257 rows
    assert [f.data["zero_taps"] for f in zero] == [113, 113] and zero[0].data["wasted_mul"] == 113 * 257
    mel = next(f for f in default_explanation.findings if f.data.get("tensor") == "1.melW")
    assert mel.data["nonzero"] == 229 and "sparse" in mel.message


def test_default_equivalents(default_explanation: Explanation) -> None:
    fft, mel = default_explanation.equivalents
    assert fft.dense == {"mul": 263_168, "add": 2 * 257 * 511}
    assert fft.cheaper == {"mul": 399 + 2416, "add": 6280}
    assert mel.dense["mul"] == 257 * 32 and mel.cheaper == {"mul": 229, "add": 229 - 32}


def test_default_equation(default_explanation: Explanation) -> None:
    text = default_explanation.equation["text"]
    assert text.startswith("y[b,t,m] = max(D[b,t,m], max_{b,t,m} D[b,t,m] - 80)")
    assert "10 log10(max(sum_{k=2}^{121} F[k,m] |X[b,t,k]|^2, 1e-10))" in text
    assert "x[b, 160t + j] e^(-2 pi i jk/512)" in text
    assert r"\max\left(D_{b,t,m}" in default_explanation.equation["latex"]


def test_declared_dims_that_agree_give_no_finding() -> None:
    model = default_model()
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch_size"
    assert "declared dim" not in _finding_kinds(explain(model))


# ---------------------------------------------------------------- torchlibrosa-style graphs, other settings


VARIANTS = [
    MelParams(sample_rate=22050, n_fft=1024, hop=256, win_length=1024, n_mels=64, fmin=0.0, fmax=11025.0,
              mel_scale="htk", mel_norm=None, top_db=None),
    MelParams(n_fft=256, hop=80, win_length=200, window="hamming", periodic=False, n_mels=24, fmin=100.0,
              fmax=3000.0, amin=1e-5, ref=2.0, top_db=60.0),
    # NeMo's window: torch.hann_window(400, periodic=False) centred in n_fft 512, the same taps as a periodic
    # Hann of 399 (its last tap is 0): named as built, symmetric 400
    MelParams(n_fft=512, hop=160, win_length=400, window="hann", periodic=False, n_mels=40),
]


@pytest.mark.parametrize("params", VARIANTS, ids=["htk-1024", "hamming-256", "symmetric-hann-400-in-512"])
def test_torchlibrosa_variants(params: MelParams) -> None:
    model = build_mel_model(params)
    _run(model)
    explanation = _explain_json_safe(model)
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["bins"]) == (params.n_fft, params.hop, params.n_fft // 2 + 1)
    assert (stft["window"], stft["window length"]) == (params.window, params.win_length)
    assert stft["window offset"] == (params.n_fft - params.win_length) // 2
    assert stft["window symmetry"] == ("periodic" if params.periodic else "symmetric")
    mel = _params(explanation, "mel filterbank")
    bin_hz = params.sample_rate / params.n_fft
    assert (mel["bands"], mel["sample rate"], mel["scale"]) == (params.n_mels, params.sample_rate, params.mel_scale)
    assert mel["norm"] == (params.mel_norm or "none")
    assert abs(mel["fmin"] - params.fmin) < bin_hz and abs(mel["fmax"] - params.fmax) < bin_hz
    log = _params(explanation, "log")
    assert log["amin"] == pytest.approx(params.amin, rel=1e-6)
    assert log["ref"] == pytest.approx(params.ref, rel=1e-5)
    clamp = explanation.block("top-db clamp")
    assert (clamp is None) == (params.top_db is None)
    if clamp is not None:
        assert clamp.param("top") == params.top_db


# ---------------------------------------------------------------- ONNX STFT + MelWeightMatrix (opset 17)


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _graph(nodes: list[onnx.NodeProto], initializers: list[np.ndarray | tuple], opset: int,
           input_shape: list[object] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, input_shape or ["batch", "samples"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None, None])],
        initializer=[numpy_helper.from_array(value, name) for name, value in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _stft_melweight_model() -> onnx.ModelProto:
    i64, f32 = np.int64, np.float32
    nodes = [
        _const("axis", np.array([2], i64)),
        helper.make_node("Unsqueeze", ["audio", "axis"], ["signal"]),
        helper.make_node("STFT", ["signal", "step", "window", "length"], ["spec"], onesided=1),
        helper.make_node("ReduceSumSquare", ["spec"], ["power"], axes=[-1], keepdims=0),
        helper.make_node("MelWeightMatrix", ["bands", "dft", "rate", "low", "high"], ["melw"]),
        helper.make_node("MatMul", ["power", "melw"], ["mel"]),
        helper.make_node("Add", ["mel", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    initializers = [("step", np.array(160, i64)), ("window", _periodic_hann(400).astype(f32)),
                    ("length", np.array(400, i64)), ("bands", np.array(64, i64)), ("dft", np.array(400, i64)),
                    ("rate", np.array(16000, i64)), ("low", np.array(125.0, f32)), ("high", np.array(7600.0, f32)),
                    ("eps", np.array(1e-6, f32))]
    return _graph(nodes, initializers, 17)


def test_stft_op_and_mel_weight_matrix() -> None:
    model = _stft_melweight_model()
    assert _run(model).shape == (2, 9, 64)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["stft", "power spectrum", "mel filterbank", "log"]
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["bins"], stft["window"]) == (400, 160, 201, "hann")
    assert (stft["window length"], stft["window offset"], stft["window symmetry"]) == (400, 0, "periodic")
    assert _params(explanation, "power spectrum")["layout"] == "re, im stacked on axis -1 (of size 2)"
    mel = _params(explanation, "mel filterbank")
    assert (mel["bands"], mel["sample rate"], mel["fmin"], mel["fmax"]) == (64, 16000, 125.0, 7600.0)
    block = explanation.block("mel filterbank")
    assert next(p.note for p in block.params if p.name == "fmin") == "read from the MelWeightMatrix op"
    assert mel["scale"] == "htk" and mel["norm"] == "none" and mel["fit error"] == 0.0
    log = _params(explanation, "log")
    assert (log["function"], log["epsilon"]) == ("ln", 1e-6)
    (fft,) = [e for e in explanation.equivalents if e.replaces.startswith("the STFT op")]
    assert fft.cheaper is None and "not a power of two" in fft.note


# ---------------------------------------------------------------- Whisper-style


def _conv_pair_nodes(source: str, n_fft: int, hop: int) -> list[onnx.NodeProto]:
    conv = {"kernel_shape": [n_fft], "strides": [hop], "pads": [0, 0]}
    return [
        helper.make_node("Conv", [source, "cos_w"], ["re"], **conv),
        helper.make_node("Conv", [source, "sin_w"], ["im"], **conv),
    ]


def _dft_weights(window: np.ndarray, n_fft: int) -> list[tuple[str, np.ndarray]]:
    bins = n_fft // 2 + 1
    phase = 2 * np.pi * (np.outer(np.arange(bins), np.arange(n_fft)) % n_fft) / n_fft
    return [("cos_w", (window * np.cos(phase)).astype(np.float32)[:, None, :]),
            ("sin_w", (-window * np.sin(phase)).astype(np.float32)[:, None, :])]


def _whisper_model() -> onnx.ModelProto:
    i64, f32 = np.int64, np.float32
    nodes = [
        helper.make_node("Pad", ["audio", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Unsqueeze", ["padded", "axis1"], ["mono"]),
        *_conv_pair_nodes("mono", 400, 160),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power_bk"]),
        helper.make_node("Slice", ["power_bk", "start", "end", "axis2"], ["cropped"]),
        helper.make_node("Transpose", ["cropped"], ["power"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["power", "mel_w"], ["mel"]),
        helper.make_node("Clip", ["mel", "amin"], ["floored"]),
        helper.make_node("Log", ["floored"], ["ln"]),
        helper.make_node("Div", ["ln", "ln10"], ["log10"]),
        helper.make_node("ReduceMax", ["log10"], ["peak"], keepdims=0),
        helper.make_node("Sub", ["peak", "eight"], ["floor"]),
        helper.make_node("Max", ["log10", "floor"], ["clamped"]),
        helper.make_node("Add", ["clamped", "four"], ["shifted"]),
        helper.make_node("Div", ["shifted", "four"], ["features"]),
    ]
    mel = mel_filterbank(MelParams(n_fft=400, win_length=400, n_mels=80, fmin=0.0, fmax=8000.0))
    initializers = [("pads", np.array([0, 200, 0, 200], i64)), ("axis1", np.array([1], i64)),
                    *_dft_weights(_periodic_hann(400), 400), ("start", np.array([0], i64)),
                    ("end", np.array([-1], i64)), ("axis2", np.array([2], i64)), ("mel_w", mel),
                    ("amin", np.array(1e-10, f32)), ("ln10", np.array(math.log(10), f32)),
                    ("eight", np.array(8.0, f32)), ("four", np.array(4.0, f32))]
    return _graph(nodes, initializers, 13)


def test_whisper_style() -> None:
    model = _whisper_model()
    assert _run(model, 16000).shape == (2, 100, 80)
    explanation = _explain_json_safe(model)
    kinds = [b.kind for b in explanation.blocks]
    assert kinds == ["padding", "stft", "power spectrum", "slice", "mel filterbank", "log", "top-db clamp",
                     "affine"]
    pad = _params(explanation, "padding")
    assert (pad["mode"], pad["before"], pad["after"]) == ("reflect", 200, 200)
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["window"], stft["window length"]) == (400, 160, "hann", 400)
    assert stft["frames"] == "floor((samples + 400 - 400) / 160) + 1"
    mel = _params(explanation, "mel filterbank")
    assert (mel["bands"], mel["sample rate"], mel["scale"], mel["norm"]) == (80, 16000, "slaney", "slaney")
    assert abs(mel["fmin"]) < 1 and abs(mel["fmax"] - 8000) < 1
    log = _params(explanation, "log")
    assert (log["function"], log["amin"]) == ("log10", 1e-10) and "ref" not in log
    clamp = explanation.block("top-db clamp")
    assert clamp.param("top") == 8.0 and "= 80 dB" in next(p.note for p in clamp.params if p.name == "top")
    assert _params(explanation, "affine")["as written"] == "(x + 4) / 4"
    assert _params(explanation, "affine")["folded"] == "0.25 x + 1"
    assert explanation.equation["text"].startswith("y[b,t,m] = (max(D[b,t,m], max_{b,t,m} D[b,t,m] - 8) + 4) / 4")


# ---------------------------------------------------------------- Kaldi-style fbank


def _kaldi_mel_banks(bands: int, n_fft: int, sample_rate: int, low: float, high: float) -> np.ndarray:
    """Kaldi's MelBanks as torchaudio.compliance.kaldi builds them, [n_fft/2 + 1, bands] with a zero Nyquist row."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    delta = (mel(high) - mel(low)) / (bands + 1)
    freqs = mel(sample_rate / n_fft * np.arange(n_fft // 2))
    banks = np.zeros((n_fft // 2 + 1, bands))
    for m in range(bands):
        left, centre, right = mel(low) + m * delta, mel(low) + (m + 1) * delta, mel(low) + (m + 2) * delta
        up, down = (freqs - left) / (centre - left), (right - freqs) / (right - centre)
        banks[:-1, m] = np.maximum(0.0, np.minimum(up, down))
    return banks.astype(np.float32)


def _kaldi_model() -> onnx.ModelProto:
    f32 = np.float32
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85
    window = np.concatenate([povey, np.zeros(112)])
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["mono"]),
        helper.make_node("Conv", ["mono", "emphasis"], ["emphasized"], kernel_shape=[2]),
        *_conv_pair_nodes("emphasized", 512, 160),
        helper.make_node("Pow", ["re", "two"], ["re2"]),
        helper.make_node("Pow", ["im", "two"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power_bk"]),
        helper.make_node("Transpose", ["power_bk"], ["power"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["power", "banks"], ["mel"]),
        helper.make_node("Max", ["mel", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    initializers = [("axis1", np.array([1], np.int64)), ("emphasis", np.array([[[-0.97, 1.0]]], f32)),
                    *_dft_weights(window, 512), ("two", np.array(2.0, f32)),
                    ("banks", _kaldi_mel_banks(23, 512, 16000, 20.0, 8000.0)),
                    ("eps", np.array(np.finfo(np.float32).eps, f32))]
    return _graph(nodes, initializers, 13)


def test_kaldi_style_fbank() -> None:
    model = _kaldi_model()
    _run(model)
    explanation = _explain_json_safe(model)
    kinds = [b.kind for b in explanation.blocks]
    assert kinds == ["pre-emphasis", "stft", "power spectrum", "mel filterbank", "log"]
    assert _params(explanation, "pre-emphasis")["coefficient"] == pytest.approx(0.97, abs=1e-6)
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["window"], stft["window length"], stft["window offset"]) == (512, "povey", 400, 0)
    assert stft["window symmetry"] == "symmetric"
    mel = _params(explanation, "mel filterbank")
    assert (mel["bands"], mel["sample rate"], mel["scale"], mel["norm"]) == (23, 16000, "kaldi", "none")
    assert abs(mel["fmin"] - 20) < 31.25 and abs(mel["fmax"] - 8000) < 31.25
    log = _params(explanation, "log")
    assert log["function"] == "ln" and log["amin"] == pytest.approx(1.1920929e-07)
    assert "e[b,n] = x[b, n + 1] - 0.97 x[b, n]" in explanation.equation["text"]


# ---------------------------------------------------------------- what is not a known block stays unnamed


def test_unrecognizable_graph_is_reported_as_such() -> None:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["mono"]),
        *_conv_pair_nodes("mono", 64, 32),
        helper.make_node("Mul", ["re", "im"], ["product"]),
        helper.make_node("Transpose", ["product"], ["rows"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["rows", "dense"], ["hidden"]),
        helper.make_node("Tanh", ["hidden"], ["features"]),
    ]
    initializers = [("axis1", np.array([1], np.int64)),
                    ("cos_w", rng.normal(size=(33, 1, 64)).astype(np.float32)),
                    ("sin_w", rng.normal(size=(33, 1, 64)).astype(np.float32)),
                    ("dense", np.abs(rng.normal(size=(33, 8))).astype(np.float32))]
    model = _graph(nodes, initializers, 13)
    _run(model)
    explanation = _explain_json_safe(model)
    assert all(block.kind == "unrecognized" for block in explanation.blocks)
    assert {"Conv#1", "Conv#2"} <= set(explanation.unrecognized)
    assert "MatMul#5" in explanation.unrecognized and explanation.equivalents == []


def test_nonnegative_matrix_that_is_not_a_filterbank_is_not_called_mel() -> None:
    model = default_model()
    weights = next(t for t in model.graph.initializer if t.name == "1.melW")
    scrambled = np.random.default_rng(2).permutation(numpy_helper.to_array(weights).reshape(-1)).reshape(257, 32)
    weights.CopyFrom(numpy_helper.from_array(scrambled, "1.melW"))
    explanation = explain(model)
    assert explanation.block("mel filterbank") is None
    assert "MatMul_15" in explanation.unrecognized
    assert explanation.block("stft") is not None and explanation.block("power spectrum") is not None


# ---------------------------------------------------------------- FFT counts, verified by running the algorithm


class _Counter:
    """Counts the real operations of the FFT below as it runs."""

    def __init__(self) -> None:
        self.mul = 0
        self.add = 0

    def cadd(self, a: complex, b: complex) -> complex:
        self.add += 2
        return a + b

    def csub(self, a: complex, b: complex) -> complex:
        self.add += 2
        return a - b

    def twiddle(self, z: complex, k: int, n: int) -> complex:
        """z * exp(-2 pi i k / n): free for k = 0, 2 mul + 2 add for the (+-1 - i)/sqrt2 cases, else 4 + 2."""
        if k == 0:
            return z
        if 8 * k in (n, 3 * n):
            self.mul, self.add = self.mul + 2, self.add + 2
        else:
            self.mul, self.add = self.mul + 4, self.add + 2
        return z * np.exp(-2j * np.pi * k / n)


def _split_radix(x: list[complex], c: _Counter) -> list[complex]:
    n = len(x)
    if n == 1:
        return list(x)
    if n == 2:
        return [c.cadd(x[0], x[1]), c.csub(x[0], x[1])]
    even, odd1, odd3 = _split_radix(x[0::2], c), _split_radix(x[1::4], c), _split_radix(x[3::4], c)
    out = [0j] * n
    for k in range(n // 4):
        u, v = c.twiddle(odd1[k], k, n), c.twiddle(odd3[k], 3 * k, n)
        s, d = c.cadd(u, v), c.csub(u, v)
        minus_i_d = complex(d.imag, -d.real)  # a sign change and a swap: free
        out[k], out[k + n // 2] = c.cadd(even[k], s), c.csub(even[k], s)
        out[k + n // 4], out[k + 3 * n // 4] = c.cadd(even[k + n // 4], minus_i_d), c.csub(even[k + n // 4], minus_i_d)
    return out


def _real_fft(x: np.ndarray, c: _Counter) -> np.ndarray:
    n = x.size
    half = n // 2
    z = _split_radix([complex(x[2 * j], x[2 * j + 1]) for j in range(half)], c)
    out = np.zeros(half + 1, dtype=complex)
    c.add += 2
    out[0], out[half] = z[0].real + z[0].imag, z[0].real - z[0].imag
    out[n // 4] = z[n // 4].conjugate()
    for k in range(1, n // 4):
        a, b = c.cadd(z[k], z[half - k].conjugate()), c.csub(z[k], z[half - k].conjugate())
        t = np.exp(-2j * np.pi * k / n) / 2j
        c.mul += 2 if 8 * k == n else 4
        c.add += 2
        tb = t * b
        c.mul += 2
        a_half = a / 2
        out[k], out[half - k] = c.cadd(a_half, tb), c.csub(a_half, tb).conjugate()
    return out


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
def test_split_radix_counts_match_the_running_algorithm(n: int) -> None:
    counter = _Counter()
    x = np.random.default_rng(n).normal(size=n) + 1j * np.random.default_rng(n + 1).normal(size=n)
    np.testing.assert_allclose(_split_radix(list(x), counter), np.fft.fft(x), atol=1e-9)
    assert (counter.mul, counter.add) == (split_radix_complex(n).mul, split_radix_complex(n).add)
    assert split_radix_recurrence(n) == split_radix_complex(n)


@pytest.mark.parametrize("n", [4, 8, 16, 64, 256, 512, 1024])
def test_real_fft_counts_match_the_running_algorithm(n: int) -> None:
    counter = _Counter()
    x = np.random.default_rng(n).normal(size=n)
    np.testing.assert_allclose(_real_fft(x, counter), np.fft.rfft(x), atol=1e-9)
    assert (counter.mul, counter.add) == (real_fft(n).mul, real_fft(n).add)


def test_real_fft_512_count() -> None:
    assert (real_fft(512).mul, real_fft(512).add) == (2416, 6280)


# ---------------------------------------------------------------- CLI


def test_cli_json_on_a_model_file(tmp_path, capsys) -> None:
    path = tmp_path / "mel.onnx"
    save_model(default_model(), path)
    assert main(["explain", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [b["kind"] for b in report["blocks"]][:3] == ["stft", "power spectrum", "mel filterbank"]
    assert report["equivalents"][0]["per_frame_graph"]["mul"] == 263_168


def test_cli_text_default_and_bad_file(tmp_path, capsys) -> None:
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "periodic hann of 400 taps at offset 56" in out and "2,815 mul + 6,280 add" in out
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["explain", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- precision variants and the DFT op


def test_fp16_graph_is_still_recognized_and_shows_rounded_constants() -> None:
    """onnxruntime's fp16 converter: weights fit at fp16 precision; amin 1e-10 underflows to fp16's 2^-24."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(default_model(), keep_io_types=True)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["stft", "power spectrum", "mel filterbank", "log", "top-db clamp"]
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["window"], stft["window length"], stft["window offset"]) == (512, "hann", 400, 56)
    mel = _params(explanation, "mel filterbank")
    assert (mel["bands"], mel["sample rate"], mel["scale"]) == (32, 16000, "slaney") and mel["fit error"] > 1e-5
    assert _params(explanation, "log")["amin"] == pytest.approx(2.0**-24, rel=1e-5)
    assert explanation.unrecognized == []


def test_dft_op_on_framed_input() -> None:
    nodes = [
        helper.make_node("Mul", ["audio", "window"], ["windowed"]),
        helper.make_node("Unsqueeze", ["windowed", "last"], ["real"]),
        helper.make_node("DFT", ["real"], ["spec"], axis=2, onesided=1),
        helper.make_node("Pow", ["spec", "two"], ["squares"]),
        helper.make_node("ReduceSum", ["squares", "last"], ["features"], keepdims=0),
    ]
    initializers = [("window", _periodic_hann(64).astype(np.float32)), ("last", np.array([-1], np.int64)),
                    ("two", np.array(2.0, np.float32))]
    model = _graph(nodes, initializers, 17, ["batch", "frames", 64])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = np.random.default_rng(3).normal(size=(1, 5, 64)).astype(np.float32)
    (power,) = session.run(None, {"audio": frames})
    np.testing.assert_allclose(power, np.abs(np.fft.rfft(frames * _periodic_hann(64), axis=-1)) ** 2, rtol=1e-3)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["window", "dft", "power spectrum"]
    window = _params(explanation, "window")
    assert (window["window"], window["window length"], window["window symmetry"]) == ("hann", 64, "periodic")
    dft = _params(explanation, "dft")
    assert (dft["axis"], dft["onesided"], dft["inverse"]) == (2, True, False)


def test_sample_rate_pinned_by_slaney_norm_or_reported_ambiguous() -> None:
    """Below 1 kHz the Slaney scale is linear, so the triangles alone fit any rate; the Slaney norm (1/Hz) does not."""
    from toolkit.explain.melbank import fit_filterbank

    normalized = fit_filterbank(mel_filterbank(MelParams(n_mels=10, fmin=100.0, fmax=900.0)), 512)
    assert (normalized.sample_rate, normalized.norm, normalized.others) == (16000, "slaney", ())
    assert abs(normalized.fmin - 100) < 0.01 and abs(normalized.fmax - 900) < 0.01
    plain = fit_filterbank(mel_filterbank(MelParams(n_mels=10, fmin=100.0, fmax=900.0, mel_norm=None)), 512)
    assert {plain.sample_rate, *(rate for rate, _, _ in plain.others)} >= {8000, 16000}


# ---------------------------------------------------------------- truthful: what is not recognized is named


def test_unrecognized_chain_in_the_middle_is_kept_and_named() -> None:
    """STFT, power, then a GatherElements -> ScatterElements permutation of bins, then a log."""
    bins, frames = 33, 49
    index = np.tile(np.arange(bins)[::-1, None], (1, 1, frames)).reshape(1, bins, frames).astype(np.int64)
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["mono"]),
        *_conv_pair_nodes("mono", 64, 32),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("GatherElements", ["power", "index"], ["gathered"], axis=1),
        helper.make_node("ScatterElements", ["gathered", "index", "gathered"], ["scattered"], axis=1),
        helper.make_node("Add", ["scattered", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    initializers = [("axis1", np.array([1], np.int64)), *_dft_weights(_periodic_hann(64), 64), ("index", index),
                    ("eps", np.array(1e-6, np.float32))]
    model = _graph(nodes, initializers, 13, input_shape=[1, 1600])
    _run_one(model)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["stft", "power spectrum", "unrecognized", "log"]
    middle = explanation.blocks[2]
    assert middle.data["ops"] == ["GatherElements", "ScatterElements"]
    assert middle.summary.startswith("unrecognized: GatherElements -> ScatterElements")
    assert "ln(unrecognized[GatherElements -> ScatterElements](|X[b,t,k]|^2) + 1e-06)" in explanation.equation["text"]
    assert _params(explanation, "log")["epsilon"] == 1e-6


def _run_one(model: onnx.ModelProto, samples: int = 1600) -> np.ndarray:
    """One onnxruntime run with a batch of one (graphs whose constants fix the batch)."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    audio = np.random.default_rng(0).normal(0, 1, (1, samples)).astype(np.float32)
    (output,) = session.run(None, {session.get_inputs()[0].name: audio})
    return output


def test_nothing_recognized_names_the_ops_not_the_identity() -> None:
    model = _graph([helper.make_node("Sin", ["audio"], ["wave"]), helper.make_node("Cos", ["wave"], ["features"])],
                   [], 13)
    explanation = _explain_json_safe(model)
    assert explanation.equation["text"] == "y[b,n] = unrecognized[Sin -> Cos](x[b,n])"
    assert [b.kind for b in explanation.blocks] == ["unrecognized"]
    assert explanation.unrecognized == ["Sin#0", "Cos#1"]


def test_log_scaled_by_non_scalar_constants() -> None:
    """A torch legacy export divides by ln 10 stored as shape [1] and multiplies by 10 stored as [1, 1]."""
    nodes = [helper.make_node("Add", ["audio", "eps"], ["floored"]),
             helper.make_node("Log", ["floored"], ["ln"]),
             helper.make_node("Div", ["ln", "ln10"], ["log10"]),
             helper.make_node("Mul", ["log10", "ten"], ["features"])]
    initializers = [("eps", np.array(1e-10, np.float32)), ("ln10", np.array([math.log(10)], np.float32)),
                    ("ten", np.array([[10.0]], np.float32))]
    explanation = _explain_json_safe(_graph(nodes, initializers, 13))
    assert _params(explanation, "log")["function"] == "10 log10"


def test_a_recognizer_that_raises_leaves_its_span_unrecognized(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.explain as explain_module

    def broken(view: object, signal: object) -> None:
        raise ValueError("cannot read this node")

    others = tuple(r for r in explain_module.RECOGNIZERS if r.__name__ != "recognize_log")
    monkeypatch.setattr(explain_module, "RECOGNIZERS", (broken, *others))
    nodes = [helper.make_node("Clip", ["audio", "eps"], ["floored"]),
             helper.make_node("Log", ["floored"], ["features"])]
    explanation = explain(_graph(nodes, [("eps", np.array(1e-6, np.float32))], 13))
    (block,) = explanation.blocks
    assert block.kind == "unrecognized" and block.data["ops"] == ["Clip", "Log"]
    assert "broken: ValueError: cannot read this node" in block.summary


# ---------------------------------------------------------------- general recognizers


def _bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (as a weight made in bfloat16 and cast up)."""
    bits = np.asarray(values, np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)


def test_single_conv_dft_with_sqrt_hann_window() -> None:
    """One Conv of 2 x bins channels (cos rows, then sin rows), reshaped to [b, 2, bins, t], then |X|^2."""
    n_fft, hop, bins = 64, 16, 33
    (_, cos_w), (_, sin_w) = _dft_weights(np.sqrt(_periodic_hann(n_fft)), n_fft)
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["mono"]),
        helper.make_node("Conv", ["mono", "kernel"], ["image"], strides=[hop]),
        helper.make_node("Reshape", ["image", "shape"], ["complex"]),
        helper.make_node("ReduceSumSquare", ["complex"], ["power"], axes=[1], keepdims=0),
        helper.make_node("Add", ["power", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    initializers = [("axis1", np.array([1], np.int64)), ("kernel", np.concatenate([cos_w, sin_w])),
                    ("shape", np.array([0, 2, bins, -1], np.int64)), ("eps", np.array(1e-6, np.float32))]
    model = _graph(nodes, initializers, 13)
    assert _run(model).shape == (2, bins, 107)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["stft", "power spectrum", "log"]
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["bins"], stft["window"]) == (64, 16, 33, "sqrt-hann")
    assert stft["window symmetry"] == "periodic"
    assert _params(explanation, "power spectrum")["layout"] == "re, im stacked on axis 1 (of size 2)"


def test_bfloat16_window_and_filterbank_are_named_with_their_rounding() -> None:
    """GigaAM v3 stores a Hann window and an HTK filterbank as bfloat16 values cast to float32."""
    params = MelParams(sample_rate=16000, n_fft=320, win_length=320, n_mels=64, fmin=0.0, fmax=8000.0,
                       mel_scale="htk", mel_norm=None)
    nodes = [
        helper.make_node("STFT", ["audio", "step", "window"], ["spec"], onesided=1),
        helper.make_node("ReduceSumSquare", ["spec"], ["power"], axes=[-1], keepdims=0),
        helper.make_node("MatMul", ["power", "bank"], ["mel"]),
        helper.make_node("Clip", ["mel", "low"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    initializers = [("step", np.array(160, np.int64)), ("window", _bfloat16(_periodic_hann(320))),
                    ("bank", _bfloat16(mel_filterbank(params))), ("low", np.array(1e-9, np.float32))]
    model = _graph(nodes, initializers, 17)
    assert _run(model).shape == (2, 10, 64)
    explanation = _explain_json_safe(model)
    stft = explanation.block("stft")
    assert (stft.param("window"), stft.param("window length"), stft.param("window symmetry")) == (
        "hann", 320, "periodic")
    assert "bfloat16" in next(p.note for p in stft.params if p.name == "window")
    mel = _params(explanation, "mel filterbank")
    assert (mel["scale"], mel["norm"], mel["fmin"], mel["fmax"]) == ("htk", "none", 0.0, 8000.0)
    assert 0 < mel["fit error"] < 2.0**-7


def test_dc_removal_and_edge_padded_pre_emphasis() -> None:
    """Kaldi's order on the whole signal: x - mean(x), then x[n] - a x[n - 1] with a Pad of 1 / -1 (edge)."""
    nodes = [
        helper.make_node("ReduceMean", ["audio"], ["mean"], axes=[-1]),
        helper.make_node("Sub", ["audio", "mean"], ["centred"]),
        helper.make_node("Pad", ["centred", "shift"], ["delayed"], mode="edge"),
        helper.make_node("Mul", ["coefficient", "delayed"], ["scaled"]),
        helper.make_node("Sub", ["centred", "scaled"], ["features"]),
    ]
    initializers = [("shift", np.array([0, 1, 0, -1], np.int64)), ("coefficient", np.array(0.9, np.float32))]
    model = _graph(nodes, initializers, 13)
    audio = np.random.default_rng(4).normal(size=(1, 50)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    centred = audio - audio.mean(axis=-1, keepdims=True)
    expected = centred - 0.9 * np.concatenate([centred[:, :1], centred[:, :-1]], axis=-1)
    np.testing.assert_allclose(session.run(None, {"audio": audio})[0], expected, atol=1e-5)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["dc removal", "pre-emphasis"]
    assert _params(explanation, "dc removal")["scope"] == "each whole signal (per batch item)"
    emphasis = _params(explanation, "pre-emphasis")
    assert emphasis["coefficient"] == 0.9 and emphasis["first sample"].endswith("(edge padding)")


def _lengths_model(nodes: list[onnx.NodeProto], initializers: list[tuple[str, np.ndarray]]) -> onnx.ModelProto:
    """A graph with a second input, lens [batch] int64, as ASR front ends take."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"]),
         helper.make_tensor_value_info("lens", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "samples"])],
        initializer=[numpy_helper.from_array(value, name) for name, value in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def _mask_nodes(lengths: str, mask: str) -> list[onnx.NodeProto]:
    """mask[b, i] = i < lengths[b], positions counted along the samples axis of audio."""
    return [
        helper.make_node("Shape", ["audio"], [f"{mask}_shape"], start=1, end=2),
        helper.make_node("Squeeze", [f"{mask}_shape"], [f"{mask}_n"]),
        helper.make_node("Range", ["zero", f"{mask}_n", "one"], [f"{mask}_positions"]),
        helper.make_node("Unsqueeze", [lengths, "axis1"], [f"{mask}_lengths"]),
        helper.make_node("Less", [f"{mask}_positions", f"{mask}_lengths"], [mask]),
    ]


def test_sliced_pre_emphasis_length_mask_and_masked_standardization() -> None:
    """NeMo's order: x[1:] - a x[:-1] after the kept first sample, masked by lens, then (x - mean) / (std + eps)
    with the statistics over positions < (lens + 8) / 2 and the variance divided by n - 1."""
    big = np.iinfo(np.int64).max
    nodes = [
        helper.make_node("Slice", ["audio", "i0", "i1", "axis1"], ["head"]),
        helper.make_node("Slice", ["audio", "i1", "end", "axis1"], ["lead"]),
        helper.make_node("Slice", ["audio", "i0", "m1", "axis1"], ["lag"]),
        helper.make_node("Mul", ["coefficient", "lag"], ["scaled"]),
        helper.make_node("Sub", ["lead", "scaled"], ["emphasized"]),
        helper.make_node("Concat", ["head", "emphasized"], ["e"], axis=-1),
        *_mask_nodes("lens", "wave_mask"),
        helper.make_node("Where", ["wave_mask", "e", "zero_f"], ["x"]),
        helper.make_node("Add", ["lens", "eight"], ["lens8"]),
        helper.make_node("Div", ["lens8", "two"], ["frames"]),
        *_mask_nodes("frames", "mask"),
        helper.make_node("Cast", ["mask_lengths"], ["count"], to=TensorProto.FLOAT),
        helper.make_node("Where", ["mask", "x", "zero_f"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "axis_last"], ["total"], keepdims=1),
        helper.make_node("Div", ["total", "count"], ["mean"]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Where", ["mask", "d", "zero_f"], ["kept_d"]),
        helper.make_node("ReduceSumSquare", ["kept_d"], ["squares"], axes=[-1], keepdims=1),
        helper.make_node("Sub", ["count", "one_f"], ["dof"]),
        helper.make_node("Div", ["squares", "dof"], ["var"]),
        helper.make_node("Sqrt", ["var"], ["std"]),
        helper.make_node("Add", ["std", "eps"], ["scale"]),
        helper.make_node("Div", ["d", "scale"], ["z"]),
        helper.make_node("Where", ["mask", "z", "zero_f"], ["features"]),
    ]
    i64, f32 = np.int64, np.float32
    initializers = [("i0", np.array([0], i64)), ("i1", np.array([1], i64)), ("end", np.array([big], i64)),
                    ("m1", np.array([-1], i64)), ("axis1", np.array([1], i64)), ("axis_last", np.array([-1], i64)),
                    ("zero", np.array(0, i64)), ("one", np.array(1, i64)), ("eight", np.array(8, i64)),
                    ("two", np.array(2, i64)), ("coefficient", np.array(0.95, f32)), ("zero_f", np.array(0, f32)),
                    ("one_f", np.array(1, f32)), ("eps", np.array(1e-5, f32))]
    model = _lengths_model(nodes, initializers)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    audio = np.random.default_rng(5).normal(size=(2, 40)).astype(np.float32)
    (features,) = session.run(None, {"audio": audio, "lens": np.array([40, 30], np.int64)})
    assert np.all(features[1, 19:] == 0) and np.all(np.isfinite(features))
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["pre-emphasis", "length mask", "normalization"]
    emphasis = _params(explanation, "pre-emphasis")
    assert emphasis["coefficient"] == 0.95 and emphasis["first sample"] == "the first sample is kept unchanged"
    assert _params(explanation, "length mask")["length"] == "lens"
    norm = _params(explanation, "normalization")
    assert norm["variance"] == "unbiased: / (n - 1)" and norm["epsilon"] == 1e-5
    assert norm["masked"] == "(lens + 8) / 2" and norm["scope"] == "global (every non-batch axis)"


def test_standardization_over_axes_computed_at_run_time_is_named_with_its_axes_unknown() -> None:
    """The statistics' axes come from the input's shape (not constants): still a standardization, over axes it
    cannot name (it used to fail on them, which left the whole graph unrecognized)."""
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"]),
        helper.make_node("Shape", ["shape"], ["rank"]),
        helper.make_node("Div", ["rank", "two"], ["last"]),
        helper.make_node("ReduceMean", ["audio", "last"], ["mean"]),
        helper.make_node("Sub", ["audio", "mean"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["squares"]),
        helper.make_node("ReduceMean", ["squares", "last"], ["var"]),
        helper.make_node("Sqrt", ["var"], ["std"]),
        helper.make_node("Add", ["std", "eps"], ["scale"]),
        helper.make_node("Div", ["d", "scale"], ["features"]),
    ]
    model = _graph(nodes, [("two", np.array([2], np.int64)), ("eps", np.array(1e-5, np.float32))], 18)
    assert np.allclose(_run(model).std(axis=-1), 1, atol=1e-3)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["normalization"]
    norm = _params(explanation, "normalization")
    assert norm["scope"] == "per feature (statistics over axis ?)" and norm["variance"] == "/ n"


def test_pad_to_fixed_length_and_a_slice_of_the_stacked_stft() -> None:
    """Whisper's head: zero padding up to C samples (amounts (C - samples) x one-hot), an STFT op, the last
    frame dropped from the stacked output, then the power."""
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"], start=1, end=2),
        helper.make_node("Sub", ["total", "shape"], ["missing"]),
        helper.make_node("Mul", ["missing", "one_hot"], ["amounts"]),
        helper.make_node("Pad", ["audio", "amounts"], ["padded"]),
        helper.make_node("STFT", ["padded", "step", "window"], ["spec"], onesided=1),
        helper.make_node("Slice", ["spec", "i0", "m1", "axis1"], ["kept"]),
        helper.make_node("ReduceSumSquare", ["kept"], ["features"], axes=[-1], keepdims=0),
    ]
    i64 = np.int64
    initializers = [("total", np.array([1600], i64)), ("one_hot", np.array([0, 0, 0, 1], i64)),
                    ("step", np.array(160, i64)), ("window", _periodic_hann(400).astype(np.float32)),
                    ("i0", np.array([0], i64)), ("m1", np.array([-1], i64)), ("axis1", np.array([1], i64))]
    model = _graph(nodes, initializers, 17)
    assert _run(model, samples=1000).shape == (2, 7, 201)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["padding", "stft", "slice", "power spectrum"]
    assert _params(explanation, "padding")["to length"] == 1600
    assert _params(explanation, "slice")["kept"] == ["axis 1: [0:-1]"]


# ---------------------------------------------------------------- framing by a loop, DFT by MatMul


def _scan_framing_nodes(frame: int, hop: int) -> tuple[list[onnx.NodeProto], list[tuple[str, np.ndarray]]]:
    """WeSpeaker-style sliding buffer: a Scan whose state is the last frame - hop samples, joined to the next
    hop of samples each iteration; only whole frames (snip edges). Output "frames" [batch, T, frame]."""
    i64 = np.int64
    body = helper.make_graph(
        [helper.make_node("Concat", ["previous", "current"], ["frame"], axis=-1),
         helper.make_node("Slice", ["frame", "hop_start", "end", "last"], ["next"])],
        "sliding_buffer",
        [helper.make_tensor_value_info("previous", TensorProto.FLOAT, [None, frame - hop]),
         helper.make_tensor_value_info("current", TensorProto.FLOAT, [None, hop])],
        [helper.make_tensor_value_info("next", TensorProto.FLOAT, [None, frame - hop]),
         helper.make_tensor_value_info("frame", TensorProto.FLOAT, [None, frame])],
    )
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"], start=1),
        helper.make_node("Sub", ["shape", "frame_length"], ["beyond"]),
        helper.make_node("Mod", ["beyond", "hop"], ["tail"]),
        helper.make_node("Sub", ["shape", "tail"], ["used"]),
        helper.make_node("Slice", ["audio", "zero", "buffered", "one"], ["first"]),
        helper.make_node("Slice", ["audio", "buffered", "used", "one"], ["rest"]),
        helper.make_node("Reshape", ["rest", "chunks"], ["chunked"]),
        helper.make_node("Scan", ["first", "chunked"], ["last_state", "frames"], body=body, num_scan_inputs=1,
                         scan_input_axes=[1], scan_output_axes=[1]),
    ]
    initializers = [("frame_length", np.array([frame], i64)), ("hop", np.array([hop], i64)),
                    ("zero", np.array([0], i64)), ("one", np.array([1], i64)),
                    ("buffered", np.array([frame - hop], i64)), ("chunks", np.array([0, -1, hop], i64)),
                    ("hop_start", np.array([hop], i64)), ("end", np.array([2**62], i64)),
                    ("last", np.array([-1], i64))]
    return nodes, initializers


def _loop_framing_nodes(frame: int, hop: int) -> tuple[list[onnx.NodeProto], list[tuple[str, np.ndarray]]]:
    """A Loop over frame indices that slices x[i hop : i hop + frame] from its counter (reading the audio from
    the outer scope); its stacked output [T, batch, frame] is transposed to "frames" [batch, T, frame]."""
    i64 = np.int64
    body = helper.make_graph(
        [helper.make_node("Mul", ["i", "hop_scalar"], ["begin_scalar"]),
         helper.make_node("Unsqueeze", ["begin_scalar", "zero"], ["begin"]),
         helper.make_node("Add", ["begin", "frame_length"], ["stop"]),
         helper.make_node("Slice", ["audio", "begin", "stop", "one"], ["frame"]),
         helper.make_node("Identity", ["condition"], ["again"])],
        "slicer",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("condition", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("again", TensorProto.BOOL, []),
         helper.make_tensor_value_info("frame", TensorProto.FLOAT, [None, frame])],
    )
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"], start=1),
        helper.make_node("Sub", ["shape", "frame_length"], ["beyond"]),
        helper.make_node("Div", ["beyond", "hop"], ["steps"]),
        helper.make_node("Add", ["steps", "one"], ["count"]),
        helper.make_node("Squeeze", ["count", "zero"], ["trips"]),
        helper.make_node("Loop", ["trips", "true"], ["stacked"], body=body),
        helper.make_node("Transpose", ["stacked"], ["frames"], perm=[1, 0, 2]),
    ]
    initializers = [("frame_length", np.array([frame], i64)), ("hop", np.array([hop], i64)),
                    ("hop_scalar", np.array(hop, i64)), ("zero", np.array([0], i64)), ("one", np.array([1], i64)),
                    ("true", np.array(True))]
    return nodes, initializers


def _reference_frames(audio: np.ndarray, frame: int, hop: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(audio, frame, axis=1)[:, ::hop]


@pytest.mark.parametrize("framing", [_scan_framing_nodes, _loop_framing_nodes])
def test_framing_by_a_loop_recovers_hop_and_frame_length(framing) -> None:
    nodes, initializers = framing(64, 16)
    model = _graph([*nodes, helper.make_node("Mul", ["frames", "window"], ["features"])],
                   [*initializers, ("window", _periodic_hann(64).astype(np.float32))], 17)
    audio = np.random.default_rng(4).normal(size=(2, 300)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (windowed,) = session.run(None, {"audio": audio})
    np.testing.assert_allclose(windowed, _reference_frames(audio, 64, 16) * _periodic_hann(64), rtol=1e-6)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["framing", "window"]
    framed = _params(explanation, "framing")
    assert (framed["frame length"], framed["hop"], framed["first sample"]) == (64, 16, 0)
    assert framed["frames"] == "floor((samples - 64) / 16) + 1"
    assert framed["operator"] == {"_scan_framing_nodes": "Scan", "_loop_framing_nodes": "Loop"}[framing.__name__]
    assert explanation.unrecognized == []


def _dft_matrices(window: np.ndarray, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_fft, bins] window x cos and -window x sin, as a MatMul of frames by them computes the rfft."""
    cos_w, sin_w = (w[:, 0, :].T for _, w in _dft_weights(window, n_fft))
    return cos_w, sin_w


def _matmul_dft_nodes(form: str, bins: int) -> list[onnx.NodeProto]:
    """The DFT of "frames" into "re" and "im": two MatMuls, or one by [n, 2 x bins] split in halves."""
    if form == "two matmuls":
        return [helper.make_node("MatMul", ["frames", "cos_m"], ["re"]),
                helper.make_node("MatMul", ["frames", "sin_m"], ["im"])]
    split = (helper.make_node("Split", ["both", "halves"], ["re", "im"], axis=-1) if form == "one matmul, split"
             else helper.make_node("Slice", ["both", "zero", "bins", "last"], ["re"]))
    nodes = [helper.make_node("MatMul", ["frames", "both_m"], ["both"]), split]
    if form == "one matmul, sliced":
        nodes.append(helper.make_node("Slice", ["both", "bins", "end", "last"], ["im"]))
    return nodes


@pytest.mark.parametrize("form", ["two matmuls", "one matmul, split", "one matmul, sliced"])
def test_matmul_dft_after_loop_framing(form: str) -> None:
    n_fft, hop, bands = 256, 64, 16
    bins = n_fft // 2 + 1
    cos_m, sin_m = _dft_matrices(_periodic_hann(n_fft), n_fft)
    filters = mel_filterbank(MelParams(sample_rate=16000, n_fft=n_fft, win_length=n_fft, n_mels=bands,
                                       fmin=0.0, fmax=8000.0, mel_scale="htk", mel_norm=None)).astype(np.float32)
    framing, framing_initializers = _scan_framing_nodes(n_fft, hop)
    nodes = [
        *framing,
        *_matmul_dft_nodes(form, bins),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("MatMul", ["power", "filters"], ["mel"]),
        helper.make_node("Add", ["mel", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["features"]),
    ]
    i64 = np.int64
    initializers = [*framing_initializers, ("cos_m", cos_m), ("sin_m", sin_m),
                    ("both_m", np.concatenate([cos_m, sin_m], axis=1)), ("halves", np.array([bins, bins], i64)),
                    ("bins", np.array([bins], i64)), ("filters", filters), ("eps", np.array(1e-6, np.float32))]
    model = _graph(nodes, initializers, 17)
    audio = np.random.default_rng(5).normal(size=(2, 1000)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (features,) = session.run(None, {"audio": audio})
    spectrum = np.abs(np.fft.rfft(_reference_frames(audio, n_fft, hop) * _periodic_hann(n_fft), axis=-1)) ** 2
    np.testing.assert_allclose(features, np.log(spectrum @ filters + 1e-6), atol=2e-3)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["framing", "stft", "power spectrum", "mel filterbank", "log"]
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["bins"], stft["hop"]) == (n_fft, bins, hop)
    assert (stft["window"], stft["window length"], stft["window symmetry"]) == ("hann", n_fft, "periodic")
    assert stft["sign"].startswith("e^{-i")
    assert explanation.block("stft").data["form"] == "matmul"
    assert _params(explanation, "mel filterbank")["bands"] == bands
    assert explanation.front_end and explanation.unrecognized == []


def test_single_conv_dft_split_by_slices_and_its_magnitude() -> None:
    """Silero VAD's form: one Conv of 2 x bins channels, the real and imaginary halves cut by Slices (one of
    them a no-op on another axis), then sqrt(re^2 + im^2); no mel filterbank, so not a log-mel front end."""
    n_fft, hop = 64, 32
    bins = n_fft // 2 + 1
    (_, cos_w), (_, sin_w) = _dft_weights(_periodic_hann(n_fft), n_fft)
    i64 = np.int64
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "one"], ["mono"]),
        helper.make_node("Conv", ["mono", "basis"], ["both"], kernel_shape=[n_fft], strides=[hop]),
        helper.make_node("Slice", ["both", "zero", "bins", "one"], ["re_cut"]),
        helper.make_node("Slice", ["re_cut", "zero", "end", "two"], ["re"]),
        helper.make_node("Slice", ["both", "bins", "end", "one"], ["im"]),
        helper.make_node("Pow", ["re", "two_f"], ["re2"]),
        helper.make_node("Pow", ["im", "two_f"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("Sqrt", ["power"], ["features"]),
    ]
    initializers = [("one", np.array([1], i64)), ("two", np.array([2], i64)), ("zero", np.array([0], i64)),
                    ("bins", np.array([bins], i64)), ("end", np.array([2**63 - 1], i64)),
                    ("basis", np.concatenate([cos_w, sin_w])), ("two_f", np.array(2.0, np.float32))]
    model = _graph(nodes, initializers, 15)
    assert _run(model).shape == (2, bins, (1760 - n_fft) // hop + 1)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["stft", "magnitude spectrum"]
    stft = _params(explanation, "stft")
    assert (stft["n_fft"], stft["hop"], stft["bins"], stft["window"]) == (n_fft, hop, bins, "hann")
    assert not explanation.front_end and explanation.missing() == ["mel filterbank", "log"]
    assert explanation.verdict().startswith("no log-mel front end was recognized: no mel filterbank, no log")


def test_a_model_wrapped_in_an_if_is_an_unrecognized_span_not_the_identity() -> None:
    """Silero VAD's whole graph sits in the branches of an If: the If reads the audio from inside them."""
    branch = helper.make_graph([helper.make_node("Relu", ["audio"], ["out"])], "branch", [],
                               [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "samples"])])
    model = _graph([helper.make_node("ReduceMax", ["audio"], ["peak"], keepdims=0),
                    helper.make_node("Greater", ["peak", "zero"], ["positive"]),
                    helper.make_node("If", ["positive"], ["features"], then_branch=branch, else_branch=branch)],
                   [("zero", np.array(0.0, np.float32))], 13)
    explanation = _explain_json_safe(model)
    assert [b.kind for b in explanation.blocks] == ["unrecognized"]
    assert not explanation.equation["text"].startswith("y[b,n] = x[b,n]")
    assert "If" in explanation.blocks[0].data["ops"]
    assert explanation.verdict().startswith("no log-mel front end was recognized")


def test_every_transform_form_carries_its_window_taps() -> None:
    """Later stages (the report's window plot) read the recovered window from the block, not the graph."""
    for model in (default_model(), _stft_melweight_model()):
        block = explain(model).block("stft")
        assert block is not None and block.data["window"].shape == (block.data["n_fft"],)
    np.testing.assert_allclose(explain(_stft_melweight_model()).block("stft").data["window"], _periodic_hann(400),
                               atol=1e-7)
