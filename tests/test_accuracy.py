"""The accuracy gate on real variants: exact ones agree with the original to float rounding, int8 errs by tens
of dB on quiet input and is rejected, fp16's overflow is measured, and compare() takes saved npz outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from toolkit import accuracy
from toolkit.errors import ToolkitError
from toolkit.melgraph import default_model, reference_logmel
from toolkit.targets import load_target
from toolkit.variants import VARIANTS, Variant, build_variants

SAMPLES = 16000
POLICY = {"max_abs_db_error": 0.5, "p99_abs_db_error": 0.1, "max_rel_mel_error": 0.025}  # targets/*.toml


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    return accuracy.signal_set(SAMPLES)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    return {v.name: v for v in build_variants(default_model(), tmp_path_factory.mktemp("variants"))}


@pytest.fixture(scope="module")
def reference(variants: dict[str, Variant], signals: dict[str, np.ndarray]) -> accuracy.SignalOutputs:
    return accuracy.run_signals(variants["original"].path, "onnx", signals)


@pytest.fixture(scope="module")
def reports(
    variants: dict[str, Variant], signals: dict[str, np.ndarray], reference: accuracy.SignalOutputs
) -> dict[str, accuracy.AccuracyReport]:
    return {name: accuracy.measure(reference, v.path, v.format, signals) for name, v in variants.items()}


def test_signal_set_is_fixed_int16_audio_at_its_levels(signals: dict[str, np.ndarray]) -> None:
    again = accuracy.signal_set(SAMPLES)
    assert list(signals) == list(accuracy.SIGNALS)
    levels = accuracy.signal_levels()
    for name, audio in signals.items():
        assert audio.dtype == np.float32 and audio.shape == (1, SAMPLES)
        np.testing.assert_array_equal(audio, again[name])
        np.testing.assert_array_equal(audio, np.round(audio))
        assert audio.min() >= -32768 and audio.max() <= 32767
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        measured = 20 * math.log10(rms / 32768) if rms else -math.inf
        assert measured == pytest.approx(levels[name], abs=0.6), name  # int16 rounding moves -90 dBFS a little
    assert set(np.unique(signals["square-clipped-0dBFS"])) == {-32768.0, 32767.0}


def test_too_short_signal_set_is_refused() -> None:
    with pytest.raises(ToolkitError, match="at least 512"):
        accuracy.signal_set(400)


def test_exact_variants_agree_with_the_original_to_float_rounding(
    reports: dict[str, accuracy.AccuracyReport],
) -> None:
    exact = [name for name, spec in VARIANTS.items() if spec.exact]
    assert "tflite" in exact and "stft-op" in exact
    for name in exact:
        overall = reports[name].overall
        assert overall.p99_abs_db < 1e-3, name
        # max: the bands of the -10 dBFS sweep 70+ dB below its peak sum cancelling Conv products, where float32
        # itself is ~1e-3 dB off (see the next test); the STFT op's own FFT rounds about 3x more
        assert overall.max_abs_db < 5e-3, name


def test_the_original_itself_is_1e3_db_off_float64_where_sums_cancel(
    signals: dict[str, np.ndarray], reference: accuracy.SignalOutputs
) -> None:
    own_error = float(np.abs(reference.outputs["sweep-10dBFS"][0] - reference_logmel(signals["sweep-10dBFS"])).max())
    assert 5e-4 < own_error < 3e-3


def test_full_static_int8_errs_by_tens_of_db_on_quiet_input_and_is_rejected(
    reports: dict[str, accuracy.AccuracyReport],
) -> None:
    report = reports["int8-static-qdq"]
    assert report.by_level["-90 dBFS"].max_abs_db > 10
    assert report.by_level["-60 dBFS"].max_abs_db > 10
    passed, reasons = accuracy.gate(report, POLICY)
    assert not passed
    assert any(r.startswith(f"max |dB error| {report.overall.max_abs_db:.4g} > 0.5") for r in reasons)


def test_dynamic_and_partial_schemes_report_numbers_by_level(reports: dict[str, accuracy.AccuracyReport]) -> None:
    for name in ("int8-dynamic", "int8-conv-only", "int8-matmul-only"):
        report = reports[name]
        assert set(report.by_level) == {"silence", "-90 dBFS", "-60 dBFS", "-30 dBFS", "-10 dBFS", "0 dBFS"}
        assert 0 < report.overall.max_abs_db < math.inf, name
        assert report.overall.p99_abs_db <= report.overall.max_abs_db
        assert not accuracy.gate(report, POLICY)[0]


def test_fp16_overflow_on_loud_input_is_measured(reports: dict[str, accuracy.AccuracyReport]) -> None:
    full = reports["fp16"]
    assert full.by_level["-90 dBFS"].max_abs_db < 0.1
    assert full.by_level["0 dBFS"].max_abs_db == math.inf  # |X|^2 of loud audio exceeds fp16's 65504
    passed, reasons = accuracy.gate(full, POLICY)
    assert not passed and "max |dB error| inf > 0.5" in reasons[0]
    prescaled = reports["fp16-dft"]
    assert prescaled.by_level["0 dBFS"].max_abs_db < 0.1
    assert 0 < prescaled.overall.max_abs_db < 5


def test_over_tolerance_is_reported_with_its_numbers(reports: dict[str, accuracy.AccuracyReport]) -> None:
    report = reports["stft-op"]
    tight = {"max_abs_db_error": 1e-4, "p99_abs_db_error": 1e-6}
    passed, reasons = accuracy.gate(report, tight)
    assert not passed
    assert reasons[0] == (
        f"max |dB error| {report.overall.max_abs_db:.4g} > 0.0001 (max_abs_db_error); worst at -10 dBFS"
    )
    assert reasons[1].startswith(f"p99 |dB error| {report.overall.p99_abs_db:.4g} > 1e-06")


def test_original_passes_the_gate(reports: dict[str, accuracy.AccuracyReport]) -> None:
    assert accuracy.gate(reports["original"], POLICY) == (True, [])
    assert reports["original"].overall.max_rel_mel == 0.0


def test_gate_needs_the_db_tolerances() -> None:
    report = accuracy.compare({"a": np.zeros(3)}, {"a": np.zeros(3)}, {"a": -30.0})
    with pytest.raises(ToolkitError, match="p99_abs_db_error"):
        accuracy.gate(report, {"max_abs_db_error": 1.0})
    passed, reasons = accuracy.gate(report, POLICY)
    assert not passed and reasons == [
        "max relative mel-energy error not measured (no mel energies) but the policy bounds it by 0.025"
    ]


def test_compare_takes_outputs_saved_in_an_npz(
    tmp_path: Path,
    variants: dict[str, Variant],
    signals: dict[str, np.ndarray],
    reference: accuracy.SignalOutputs,
    reports: dict[str, accuracy.AccuracyReport],
) -> None:
    outputs = accuracy.run_signals(variants["int8-dynamic"].path, "onnx", signals)
    # the profiling runner's layout: one npz, keys "<variant>/<signal>"
    np.savez(tmp_path / "outputs.npz", **{f"int8-dynamic/{name}": array for name, (array,) in outputs.outputs.items()})
    with np.load(tmp_path / "outputs.npz") as saved:
        saved_outputs = accuracy.runner_outputs(dict(saved), "int8-dynamic")
    report = accuracy.compare(reference.outputs, saved_outputs, accuracy.signal_levels())
    assert report.overall.max_abs_db == reports["int8-dynamic"].overall.max_abs_db
    assert report.overall.max_rel_mel is None


def test_compare_refuses_mismatched_outputs() -> None:
    with pytest.raises(ToolkitError, match="shape"):
        accuracy.compare({"a": np.zeros((1, 1, 8, 32))}, {"a": np.zeros((1, 1, 7, 32))}, {"a": -30.0})
    with pytest.raises(ToolkitError, match="lack signal"):
        accuracy.compare({"a": np.zeros(3)}, {}, {"a": -30.0})


def test_mel_probe_outputs_the_tensor_where_the_mel_block_ends() -> None:
    model = default_model()
    assert accuracy.mel_tensor(model) == "mel_spectrogram"
    assert accuracy.mel_taps(model) == ("mel_spectrogram", "onnx::Log_24")  # the MatMul's, the Clip's output
    assert accuracy.mel_tensor(model, ("no-such-tensor",)) == "mel_spectrogram"
    probe = accuracy.with_mel_output(model, accuracy.mel_tensor(model))
    assert [output.name for output in probe.graph.output] == ["output", "mel_spectrogram"]


def test_gate_takes_the_target_files_policy(reports: dict[str, accuracy.AccuracyReport]) -> None:
    policy = load_target("x86-host").policy
    assert accuracy.gate(reports["dft-400tap-fused-mel-sparse"], policy) == (True, [])
    assert accuracy.gate(reports["tflite"], policy) == (True, [])
    passed, reasons = accuracy.gate(reports["fp16-dft"], policy)
    assert not passed and any("max relative mel-energy error" in reason for reason in reasons)


def test_mel_energies_far_below_the_peak_are_compared_at_float32_resolution() -> None:
    """A loud band at 1e6 and a far band at 1e-3 (below 2^-23 x 1e6): float32 rounding noise of 50 % in the far
    band is not an error; 10 % in the loud band is, and so is a far band raised above the resolution."""
    from toolkit.accuracy import compare

    reference = np.array([[1e6, 1e-3, 10.0]])
    features = {"s": np.zeros((1, 3), np.float32)}
    levels = {"s": -10.0}

    def mel_error(variant: np.ndarray) -> float:
        return compare(features, features, levels, {"s": reference}, {"s": variant}).overall.max_rel_mel

    assert mel_error(np.array([[1e6, 1.5e-3, 10.0]])) == 0.0  # both sides floored at 2^-23 x 1e6 = 0.119
    assert mel_error(np.array([[1.1e6, 1e-3, 10.0]])) == pytest.approx(0.1)
    assert mel_error(np.array([[1e6, 1e-3, 11.0]])) == pytest.approx(0.1)
    assert mel_error(np.array([[1e6, 1.0, 10.0]])) == pytest.approx((1.0 - 2**-23 * 1e6) / (2**-23 * 1e6))


def test_signals_and_calibration_audio_are_the_same_samples_at_the_graph_s_full_scale() -> None:
    """--audio-scale unit feeds the same int16 samples divided by 32768: levels stay dBFS of the graph's full
    scale, and a -30 dBFS noise clip has an RMS of 0.0316 in [-1, 1] units."""
    from toolkit.load import AUDIO_SCALES
    from toolkit.variants import quantize

    int16, unit = accuracy.signal_set(2048), accuracy.signal_set(2048, AUDIO_SCALES["unit"])
    assert all(np.array_equal(unit[name] * 32768.0, int16[name]) for name in int16)
    assert float(np.abs(unit["square-clipped-0dBFS"]).max()) == 1.0
    assert float(np.sqrt(np.mean(unit["noise-30dBFS"] ** 2))) == pytest.approx(10 ** -1.5, rel=0.01)
    clips, unit_clips = quantize.calibration_set(), quantize.calibration_set(full_scale=1.0)
    assert all(np.array_equal(u * 32768.0, c) for u, c in zip(unit_clips, clips, strict=True))
