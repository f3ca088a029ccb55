"""The built log-mel graph: same layout as openWakeWord's file, and the same numbers as a numpy rFFT path."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from toolkit.errors import ToolkitError
from toolkit.melgraph import (
    MelParams,
    build_mel_model,
    default_model,
    dft_kernels,
    mel_filterbank,
    padded_window,
    reference_logmel,
    save_model,
    window,
)

# Op types of openWakeWord's melspectrogram.onnx, read from the file by hand (tests never open it).
REAL_OPS = [
    "Constant", "Unsqueeze", "Conv", "Conv", "Constant", "Unsqueeze", "Transpose", "Constant", "Unsqueeze",
    "Transpose", "Constant", "Pow", "Constant", "Pow", "Add", "MatMul", "Clip", "Log", "Constant", "Mul",
    "Constant", "Div", "Constant", "Sub", "ReduceMax", "Constant", "Sub", "Cast", "Clip",
]  # fmt: skip
# Nonzero weights of the first mel filter (FFT bins 2..6) in the file's `1.melW`, copied by hand.
REAL_FIRST_FILTER = [0.0005452581099234521, 0.007360984105616808, 0.01417671050876379,
                     0.008544201031327248, 0.001728474977426231]  # fmt: skip
VARIANT = MelParams(
    n_fft=256, win_length=256, hop=128, n_mels=40, mel_scale="htk", mel_norm=None, window="hamming"
)
# float32 Conv sums carry rounding of about 1e-7 of a frame's peak power: invisible near the peak,
# visible in bands 60+ dB below it. The tolerance is tight where the float32 graph can be tight.
DB_TOL_NEAR_PEAK = 1e-3
DB_TOL_FAR_BELOW = 1e-2


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    """One-thread CPU session: the host is shared, and these inputs are tiny."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, audio: np.ndarray) -> np.ndarray:
    return sess.run(None, {"input": audio.astype(np.float32)})[0]


def audio_batch(batch: int, samples: int, seed: int = 0) -> np.ndarray:
    """int16-scale test audio: item 0 white noise, item 1 two sines over a mic-like noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    noise = rng.normal(0, 3000, samples)
    sines = 8000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1234.5 * t)
    sines += rng.normal(0, 100, samples)
    return np.stack([noise, sines][:batch]).astype(np.float32)


def assert_close_db(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    error = np.abs(got - want)
    near_peak = want >= want.max() - 60
    assert error[near_peak].max() < DB_TOL_NEAR_PEAK
    assert error.max() < DB_TOL_FAR_BELOW


@pytest.fixture(scope="module")
def default_session() -> ort.InferenceSession:
    return session(default_model())


def test_node_sequence_matches_the_real_graph() -> None:
    assert [node.op_type for node in default_model().graph.node] == REAL_OPS


def test_interface_opset_and_declared_dims() -> None:
    model = default_model()
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output]
    inputs = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input]
    assert (model.ir_version, model.opset_import[0].version) == (7, 13)
    assert inputs == [["batch_size", "samples"]]
    assert dims == [["time", 1, "Clipoutput_dim_2", 32]]


def test_initializer_names_shapes_and_scalars() -> None:
    tensors = {t.name: numpy_helper.to_array(t) for t in default_model().graph.initializer}
    shapes = {name: value.shape for name, value in tensors.items()}
    assert shapes == {
        "0.stft.conv_real.weight": (257, 1, 512),
        "0.stft.conv_imag.weight": (257, 1, 512),
        "1.melW": (257, 32),
        "onnx::Clip_39": (),
        "onnx::Clip_40": (),
        "onnx::Clip_41": (),
    }
    assert tensors["onnx::Clip_39"] == np.float32(1e-10)
    assert np.isinf(tensors["onnx::Clip_40"]) and np.isinf(tensors["onnx::Clip_41"])


def test_constants_are_10_ln10_ref_db_and_top_db() -> None:
    model = build_mel_model(MelParams(ref=100.0, top_db=60.0))
    constants = [
        numpy_helper.to_array(node.attribute[0].t) for node in model.graph.node if node.op_type == "Constant"
    ]
    scalars = [float(c) for c in constants if c.ndim == 0]
    assert scalars == [2.0, 2.0, 10.0, float(np.float32(np.log(10))), 20.0, 60.0]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("samples", [512, 1760, 16000])
def test_onnxruntime_matches_numpy_rfft_reference(default_session, batch: int, samples: int) -> None:
    audio = audio_batch(batch, samples)
    assert_close_db(run(default_session, audio), reference_logmel(audio, MelParams()))


@pytest.mark.parametrize(("samples", "frames"), [(512, 1), (671, 1), (672, 2), (1760, 8), (16000, 97)])
def test_frame_count(default_session, samples: int, frames: int) -> None:
    assert frames == (samples - 512) // 160 + 1
    assert run(default_session, audio_batch(1, samples)).shape == (1, 1, frames, 32)


def test_onnxruntime_refuses_fewer_samples_than_n_fft(default_session) -> None:
    with pytest.raises(InvalidArgument, match="Invalid input shape"):
        run(default_session, np.zeros((1, 400)))
    with pytest.raises(ToolkitError, match="samples >= 512"):
        reference_logmel(np.zeros((1, 400)))


def test_top_db_floor_uses_one_max_over_the_batch(default_session) -> None:
    rng = np.random.default_rng(3)
    loud, quiet = rng.normal(0, 3000, 1760), rng.normal(0, 0.01, 1760)
    batched = run(default_session, np.stack([loud, quiet]))
    alone = run(default_session, quiet[None])
    assert batched[1].min() == pytest.approx(batched.max() - 80, abs=1e-4)
    assert alone.min() < batched[1].min() - 20


def test_no_top_db_ends_after_the_ref_sub() -> None:
    model = build_mel_model(MelParams(top_db=None))
    assert [node.op_type for node in model.graph.node] == REAL_OPS[:24]
    assert "onnx::Clip_41" not in {t.name for t in model.graph.initializer}
    silence_and_noise = np.stack([np.zeros(1760), np.random.default_rng(4).normal(0, 3000, 1760)])
    out = run(session(model), silence_and_noise)
    assert out[0].max() == pytest.approx(-100.0)
    assert_close_db(out, reference_logmel(silence_and_noise, MelParams(top_db=None)))


def test_default_filterbank_is_the_files() -> None:
    weights = mel_filterbank(MelParams())
    used_bins = np.flatnonzero(weights.any(axis=1))
    assert weights.dtype == np.float32 and weights.shape == (257, 32)
    assert np.count_nonzero(weights) == 229
    assert (used_bins[0], used_bins[-1], len(used_bins)) == (2, 121, 120)
    np.testing.assert_allclose(weights[2:7, 0], REAL_FIRST_FILTER, rtol=1e-6)


def test_htk_unnormalized_filters_sum_to_one_between_first_and_last_centre() -> None:
    """Unnormalized triangles on shared edges partition unity, independent of where the bins fall."""
    weights = mel_filterbank(VARIANT)
    mels = np.linspace(2595 * np.log10(1 + 60 / 700), 2595 * np.log10(1 + 3800 / 700), 42)
    centres = 700 * (10 ** (mels / 2595) - 1)
    bin_hz = np.arange(129) * 16000 / 256
    inside = (bin_hz >= centres[1]) & (bin_hz <= centres[-2])
    assert weights.shape == (129, 40) and inside.sum() == 56
    np.testing.assert_allclose(weights[inside].sum(axis=1), 1.0, atol=1e-6)
    assert not weights[bin_hz < centres[0]].any() and not weights[bin_hz > centres[-1]].any()


def test_window_forms() -> None:
    np.testing.assert_allclose(window(MelParams()), np.hanning(401)[:-1], atol=1e-15)
    np.testing.assert_allclose(window(MelParams(periodic=False)), np.hanning(400), atol=1e-15)
    np.testing.assert_allclose(window(MelParams(window="hamming")), np.hamming(401)[:-1], atol=1e-15)


def test_padded_window_occupies_taps_56_to_455() -> None:
    taps = padded_window(MelParams())
    assert taps.shape == (512,)
    assert not taps[:56].any() and not taps[456:].any()
    np.testing.assert_array_equal(taps[56:456], window(MelParams()))


def test_dft_kernels_are_the_windowed_rfft() -> None:
    real, imag = dft_kernels(MelParams())
    expected = np.fft.rfft(np.diag(padded_window(MelParams())), axis=0)
    assert real.dtype == imag.dtype == np.float32 and real.shape == imag.shape == (257, 1, 512)
    np.testing.assert_allclose(real[:, 0, :], expected.real, atol=1e-7)
    np.testing.assert_allclose(imag[:, 0, :], expected.imag, atol=1e-7)
    assert not imag[0].any() and not np.signbit(imag[0]).any()


@pytest.mark.parametrize("samples", [256, 1760, 16000])
def test_variant_params_match_the_reference(samples: int) -> None:
    model = build_mel_model(VARIANT)
    audio = audio_batch(2, samples, seed=1)
    out = run(session(model), audio)
    assert out.shape == (2, 1, (samples - 256) // 128 + 1, 40)
    assert_close_db(out, reference_logmel(audio, VARIANT))


def test_default_model_is_a_fresh_copy() -> None:
    first = default_model()
    first.graph.node.pop()
    assert len(default_model().graph.node) == len(REAL_OPS)
    assert default_model() == build_mel_model()


def test_save_model_round_trips_and_leaves_no_temp_file(tmp_path) -> None:
    path = tmp_path / "mel.onnx"
    path.write_bytes(b"old")
    save_model(default_model(), path)
    assert onnx.load(path) == default_model()
    assert [p.name for p in tmp_path.iterdir()] == ["mel.onnx"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"win_length": 600}, "win_length=600 > n_fft=512"),
        ({"fmax": 9000.0}, "fmax=9000.0 > sample_rate/2"),
        ({"hop": 0}, "hop=0"),
        ({"n_fft": 512.0}, "n_fft=512.0"),
        ({"n_mels": True}, "n_mels=True"),
        ({"window": "blackman"}, "window='blackman'"),
        ({"periodic": 1}, "periodic=1"),
        ({"mel_scale": "mel"}, "mel_scale='mel'"),
        ({"mel_norm": "l2"}, "mel_norm='l2'"),
        ({"fmin": 4000.0}, "fmin=4000.0, fmax=3800.0"),
        ({"fmin": -1.0}, "fmin=-1.0"),
        ({"amin": 0.0}, "amin=0.0"),
        ({"ref": -1.0}, "ref=-1.0"),
        ({"top_db": -5.0}, "top_db=-5.0"),
    ],
)
def test_bad_params_raise_one_line_toolkit_error(changes: dict, named: str) -> None:
    with pytest.raises(ToolkitError, match=r"^invalid mel parameters: ") as caught:
        MelParams(**changes)
    message = str(caught.value)
    assert named in message and "; " in message and "\n" not in message
