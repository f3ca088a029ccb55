"""Predicted latency: the throughput bound computed by hand for the real target files, the host core matched
from /proc/cpuinfo fields, and the refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.errors import ToolkitError
from toolkit.pipeline.stages import prediction_errors, predictions
from toolkit.profiling import predict
from toolkit.profiling.emulate import CLASSES, InstructionCounts
from toolkit.profiling.predict import host_core, pipe_cycles, predict_latency, prediction_error
from toolkit.records import CountsFile, Latency, RunRecord
from toolkit.targets import TARGETS_DIR, load_target

# The mix counted under -cpu cortex-a72 for one 1760-sample inference of the default mel graph (rounded).
STREAM_MIX = {"simd_vector": 556_163, "simd_scalar": 27, "fp_scalar": 4_398, "load_store_simd": 169_512,
              "load_store": 110_000, "integer": 110_000, "branch": 75_000, "sve": 0, "other": 5_000}
STREAM_MULTS = 2_175_504  # 8 frames x 271,938 (reference facts, dense convention)


def counts(by_class: dict[str, float], variant: str = "original") -> InstructionCounts:
    """A counts record as emulate.count_instructions returns it."""
    return InstructionCounts(variant=variant, workload="stream", qemu_cpu="cortex-a72", repeat=50,
                             total=sum(by_class.values()), by_class={k: by_class.get(k, 0.0) for k in CLASSES},
                             uncertainty={})


def test_rpi4_stream_is_bound_by_the_fp_pipes() -> None:
    """On the A72, 556k 128-bit SIMD instructions at 1 per cycle outweigh 1.03M instructions at 3 per cycle."""
    prediction = predict_latency(counts(STREAM_MIX), load_target("rpi4"))
    fp_cycles = 556_163 / 1 + (27 + 4_398) / 2
    assert prediction.bound == "fp_pipes"
    assert prediction.latency_ms == pytest.approx(fp_cycles / 1.8e6, rel=1e-12)
    assert prediction.bounds_ms["issue"] == pytest.approx(sum(STREAM_MIX.values()) / 3 / 1.8e6, rel=1e-12)
    assert prediction.label == "predicted"
    assert prediction.to_json()["evidence"] == "predicted"


def test_analytic_mults_bound_uses_the_one_core_peak() -> None:
    """2,175,504 mults at 1.8 GHz x 8 FLOPs / 2 = 7.2 G mults/s take 0.30215 ms; with few instructions it wins."""
    few = {"simd_vector": 1_000, "integer": 1_000}
    prediction = predict_latency(counts(few), load_target("rpi4"), analytic_mults=STREAM_MULTS)
    assert prediction.bound == "peak_mults"
    assert prediction.latency_ms == pytest.approx(STREAM_MULTS / 7.2e9 * 1e3, rel=1e-12)


def test_rpi5_doubles_the_vector_rate_and_raises_the_clock() -> None:
    """Same mix on the A76: 2 vector instructions per cycle at 2.4 GHz, so well under half the A72's time."""
    rpi4 = predict_latency(counts(STREAM_MIX), load_target("rpi4"))
    rpi5 = predict_latency(counts(STREAM_MIX), load_target("rpi5"))
    cycles = pipe_cycles(STREAM_MIX, load_target("rpi5").core)
    assert cycles["fp_pipes"] == pytest.approx(556_163 / 2 + (27 + 4_398) / 2)
    assert rpi5.latency_ms == pytest.approx(max(cycles.values()) / 2.4e6)
    assert rpi5.latency_ms < rpi4.latency_ms / 2


def test_zero2w_issue_width_of_an_in_order_core() -> None:
    """The A53 dual-issues: 1.03M instructions take at least 515k cycles at 1 GHz."""
    prediction = predict_latency(counts(STREAM_MIX), load_target("zero2w"))
    assert prediction.bounds_ms["issue"] == pytest.approx(sum(STREAM_MIX.values()) / 2 / 1e6)
    assert prediction.bounds_ms["load_store"] == pytest.approx((110_000 + 169_512) / 1 / 1e6)


def test_every_arm_target_has_its_own_cores_rates() -> None:
    """Each board's [core] table describes the core its [cpu] names, with that core's guide as the source."""
    for name in ("rpi4", "rpi5", "zero2w"):
        target = load_target(name)
        assert target.core.name == target.cpu.core
        assert target.cpu.core in target.core.source


def test_sve_counts_are_refused() -> None:
    """SVE instructions mean QEMU ran its default CPU, which no Pi is: the prediction would be about nothing."""
    with pytest.raises(ToolkitError, match="SVE"):
        predict_latency(counts({**STREAM_MIX, "sve": 12}), load_target("rpi4"))


def test_a_board_without_rates_does_not_load(tmp_path: Path) -> None:
    """A board file with no [core] table could not be predicted: loading it names the missing table."""
    text = (TARGETS_DIR / "rpi4.toml").read_text(encoding="utf-8")
    start = text.index("[core]\n")
    (tmp_path / "rpi4.toml").write_text(text[:start] + text[text.index("[emulation]\n"):], encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"missing table \[core\] \(needed when kind = 'board'\)"):
        load_target(tmp_path / "rpi4.toml")


def test_an_x86_memory_operand_charges_its_compute_pipe_and_the_load_store_pipe() -> None:
    """x86class's *_mem classes: a vector FMA reading memory occupies an FP pipe and a load port."""
    rates = load_target("rpi4").core
    cycles = pipe_cycles({"simd_vector_mem": 600.0, "integer_mem": 400.0}, rates)
    assert cycles["fp_pipes"] == 600.0 / rates.simd_vector
    assert cycles["load_store"] == 1000.0 / rates.load_store
    assert cycles["integer"] == 400.0 / rates.integer
    assert cycles["issue"] == 1000.0 / rates.issue


def test_prediction_error_is_measured_over_predicted() -> None:
    """A board measuring 0.62 ms against a 0.31 ms bound reports the factor 2.0 with where it was measured."""
    prediction = predict_latency(counts(STREAM_MIX), load_target("rpi4"))
    error = prediction_error(prediction, 2 * prediction.latency_ms, "board rpi4 via ssh")
    assert error["measured_over_predicted"] == pytest.approx(2.0)
    assert error["measured_on"] == "board rpi4 via ssh"
    with pytest.raises(ToolkitError, match="positive"):
        prediction_error(prediction, 0.0, "nowhere")


def test_an_imported_board_result_is_the_measurement_a_prediction_is_held_against() -> None:
    """stages.prediction_errors pairs each prediction with the measured run of the same configuration."""
    target = load_target("rpi4")
    config = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": False,
              "optimization": "all"}
    row = {**predict_latency(counts(STREAM_MIX), target).to_json(), "config": config}
    measured = RunRecord(key="run|original|t1", variant="original", format="onnx", **{**config, "spinning": True},
                         precision=None, workload="stream", status="ok", latency_ms=latency(3 * row["latency_ms"]))
    other = replace(measured, threads=4, latency_ms=latency(0.01))
    error = prediction_errors([other, measured], [row], "measured-on-board")
    assert [r["measured_over_predicted"] for r in error.rows] == [pytest.approx(3.0)]
    assert error.ratio is not None and error.ratio["median"] == pytest.approx(3.0)
    assert error.evidence == "derived: measured-on-board median / predicted"
    emulated = prediction_errors([measured], [row], "emulated-wall-time")
    assert emulated.rows == [] and "no measurement of the target" in emulated.reason


def latency(median: float) -> Latency:
    """Latency statistics with this median (the others do not decide a prediction's error)."""
    return Latency(n=5, median=median, p90=median, p99=median, min=median, mean=median, max=median, stdev=0.0)


# /proc/cpuinfo fields (toolkit.targets.cpuinfo's dict) of the machines this runs on, flags shortened to the
# SIMD and AMX ones.
CPUINFO = {
    "AMD Zen 3 / Zen 4 (family 19h)": [
        {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "1", "model name": "AMD EPYC 7B13",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni vaes vpclmulqdq"},
        {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "model name": "AMD EPYC 9B14",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512_bf16"},
    ],
    "Intel Golden Cove (Sapphire Rapids / Emerald Rapids)": [
        {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "143",
         "model name": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512_fp16 amx_bf16 amx_tile amx_int8"},
        # the VM quirk: Rocket Lake's model number with the AMX flags only a Sapphire Rapids core has
        {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "167",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512bw amx_bf16 amx_tile amx_int8"},
    ],
    "Intel Sunny Cove server (Ice Lake SP)": [
        {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "106",
         "model name": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512_vbmi2 avx512_vnni"},
    ],
    "Intel Skylake server (Skylake-SP / Cascade Lake / Cooper Lake)": [
        {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "85",
         "model name": "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz",
         "flags": "sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw"},
    ],
}
HASWELL = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "63",
           "model name": "Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz", "flags": "sse sse2 ssse3 fma avx f16c avx2"}


@pytest.mark.parametrize(("core", "info"), [(core, info) for core, infos in CPUINFO.items() for info in infos])
def test_the_host_core_is_matched_from_cpuinfo(core: str, info: dict[str, str]) -> None:
    """The first [[host_core]] entry of targets/x86-host.toml whose vendor, family, model and flags fit wins."""
    assert host_core(load_target("x86-host"), info).name == core


def test_amx_outranks_the_model_number() -> None:
    """A model number of another entry does not win over the AMX flags: Golden Cove comes first."""
    ice_lake_numbered = {**CPUINFO["Intel Golden Cove (Sapphire Rapids / Emerald Rapids)"][0], "model": "106"}
    assert host_core(load_target("x86-host"), ice_lake_numbered).name.startswith("Intel Golden Cove")
    without_amx = {**ice_lake_numbered, "flags": "sse sse2 avx2 fma avx512f"}
    assert host_core(load_target("x86-host"), without_amx).name == "Intel Sunny Cove server (Ice Lake SP)"


def test_intel_rates_are_the_256_bit_ones_with_their_manual() -> None:
    """Counting runs under qemu-x86_64 -cpu max (AVX2, no AVX-512): each Intel entry's vector rate is its two
    256-bit FMA ports, and its source says which manual the rates come from."""
    intel = [e.rates for e in load_target("x86-host").host_cores if e.vendor_id == "GenuineIntel"]
    assert [r.simd_vector for r in intel] == [2, 2, 2]
    assert [(r.issue, r.integer, r.load_store) for r in intel] == [(6, 5, 3), (5, 4, 2), (4, 4, 2)]
    assert all("Optimization Reference Manual" in r.source and "256-bit" in r.source for r in intel)


def test_an_unknown_host_cpu_is_one_line_naming_it() -> None:
    """A CPU no entry matches: the line names vendor, family and model, and where to add an entry."""
    with pytest.raises(ToolkitError) as error:
        host_core(load_target("x86-host"), HASWELL)
    message = str(error.value)
    assert "GenuineIntel, cpu family 6, model 63" in message and "E5-2676 v3" in message
    assert "add a [[host_core]] entry" in message and message.endswith("targets/x86-host.toml")
    assert "\n" not in message


def host_predictions(monkeypatch: pytest.MonkeyPatch, info: dict[str, str]) -> dict:
    """stages.predictions for one counted host variant, on a host whose /proc/cpuinfo reads `info`."""
    monkeypatch.setattr(predict, "cpuinfo", lambda: info)
    record = InstructionCounts(variant="original", workload="stream", qemu_cpu="max", repeat=20, total=1_200.0,
                               by_class={**dict.fromkeys(CLASSES, 0.0), "integer": 1_200.0},
                               uncertainty={}).to_json()
    bundle = {"variants": [{"name": "original", "format": "onnx"}],
              "matrix": {"providers": ["CPUExecutionProvider"], "intra_op_threads": [1], "graph_optimization": ["all"]}}
    return predictions([record], load_target("x86-host"), CountsFile("counted", "", [], {}, {}), bundle).to_json()


def test_an_intel_host_is_predicted_with_its_cores_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Sapphire Rapids host the prediction names Golden Cove and divides by its 5 integer ALUs."""
    target = load_target("x86-host")
    found = host_predictions(monkeypatch, CPUINFO["Intel Golden Cove (Sapphire Rapids / Emerald Rapids)"][1])
    [row] = found["rows"]
    assert row["core"] == "Intel Golden Cove (Sapphire Rapids / Emerald Rapids)"
    assert row["bounds_ms"]["integer"] == pytest.approx(1_200 / 5 / (target.cpu.clock_ghz * 1e6))
    assert found["reason"] == ""


def test_an_unknown_host_still_profiles_and_records_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """No entry for the host's CPU: the profile stage gets no prediction rows and the one-line reason, no error."""
    found = host_predictions(monkeypatch, HASWELL)
    assert found["rows"] == []
    assert found["reason"].startswith("no pipe rates for this host's CPU (GenuineIntel, cpu family 6, model 63")
