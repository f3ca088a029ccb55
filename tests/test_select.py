"""The policy's choice on measured-run records: tolerance is absolute, the budget and size limit hold, the fastest
eligible configuration wins, the original is chosen when nothing beats it, emulated time never decides.

The records have the runner's RESULT.json layout (read as toolkit.records); their numbers are set so each rule is
the only thing deciding.
"""

from __future__ import annotations

from typing import Any

import pytest

from toolkit.profiling.emulate import InstructionCounts
from toolkit.profiling.predict import predict_latency
from toolkit.profiling.runner import FORMAT_VERSION
from toolkit.records import (
    Choice,
    PlatformFile,
    PredictionErrors,
    ProfileFile,
    Rows,
    RunRecord,
    StreamRecord,
    VariantRecord,
    Verdict,
    verdicts,
)
from toolkit.select import CHECKS, choice_lines, choose
from toolkit.targets import Policy, load_target

POLICY = Policy(max_abs_db_error=0.5, p99_abs_db_error=0.1, max_rel_mel_error=0.025, realtime_budget=0.1)
Json = dict[str, Any]


def variant(name: str, size: int = 1000) -> VariantRecord:
    return VariantRecord(name=name, path=f"{name}.onnx", format="onnx", status="built", reason="", description="",
                         exact=True, build_seconds=0.0, bytes=size)


def verdict(passed: bool, max_db: float = 0.0) -> Json:
    reasons = [] if passed else [f"max |dB error| {max_db} > 0.5 (max_abs_db_error); worst at -60 dBFS"]
    report = {"overall": {"max_abs_db": max_db, "p99_abs_db": max_db / 10, "max_rel_mel": 0.001}}
    return {"measured": True, "passed": passed, "reasons": reasons, "report": report}


def latency(median: float, p99: float | None = None) -> Json:
    """The runner's latency statistics around a median: p90 10% above it, min 10% below."""
    return {"n": 5, "median": median, "p90": median * 1.1, "p99": median * 1.2 if p99 is None else p99,
            "min": median * 0.9, "mean": median, "max": median * 1.3, "stdev": median * 0.05}


def run(name: str, median: float, workload: str = "stream", threads: int = 1, spinning: bool = True) -> Json:
    return {"key": f"run|{name}|t{threads}|{spinning}|{workload}", "variant": name, "format": "onnx",
            "engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": threads, "spinning": spinning,
            "optimization": "all", "precision": None, "workload": workload, "status": "ok",
            "latency_ms": latency(median)}


def stream(name: str, share: float, threads: int = 1, spinning: bool = True) -> Json:
    return {"key": f"stream|{name}|t{threads}|{spinning}", "variant": name, "format": "onnx",
            "engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": threads, "spinning": spinning,
            "optimization": "all", "precision": None, "status": "ok", "chunks": 12, "cpu_s": share * 12 * 0.08,
            "cpu_share": share, "streams_per_core": int(1 / share), "latency_ms": latency(0.5, p99=1.0)}


def platform_file(evidence: str, accuracy: Json, predictions: list[Json]) -> PlatformFile:
    """platform.json of a run whose latencies carry `evidence`, with these verdicts and predicted rows."""
    return PlatformFile(
        source="host", description="this machine", latency_evidence=evidence, output_evidence=evidence,
        streaming_plan={}, quick=True, instructions=Rows("emulated-instructions", [], "not counted"),
        predictions=Rows("predicted", predictions, ""),
        prediction_error=PredictionErrors("derived", [], None, "no prediction with a measured run"),
        accuracy=verdicts(accuracy))


def profile_file(runs: list[Json], streams: list[Json]) -> ProfileFile:
    """profile.json holding these runs and streaming runs."""
    return ProfileFile(
        format_version=FORMAT_VERSION, complete=True, started_utc="2026-01-01T00:00:00+00:00", bundle={}, settings={},
        outputs={}, runs=[RunRecord.from_json(r) for r in runs], streaming=[StreamRecord.from_json(s) for s in streams],
        platform={}, updated_utc="2026-01-01T00:00:01+00:00")


OPENVINO = {"engine": "openvino", "provider": "CPU", "spinning": None, "optimization": None}
PLUGIN = {"engine": "onnxruntime", "provider": "OpenVINOExecutionProvider", "spinning": None, "optimization": "all"}


def setting(base: Json, engine: Json, precision: str, threads: int = 1, share: float | None = None) -> Json:
    """A run (or, with `share`, a streaming run) of `base`'s variant on an OpenVINO engine at one precision, with
    the runner's placement record."""
    record = {**base, **engine, "precision": precision, "threads": threads,
              "placement": {"nodes": 14, "by_provider": {engine["provider"]: 14}, "labelled": 14, "method": "m",
                            "precisions": {precision: 14}}}
    if "key" in record:
        record["key"] += f"|{engine['engine']}|{precision}|t{threads}"
    if share is not None:
        record.update(cpu_share=share, streams_per_core=int(1 / share))
    return record


def decide(medians: dict[str, float], passed: dict[str, bool], policy: Policy = POLICY,
           evidence: str = "measured-on-host", sizes: dict[str, int] | None = None,
           streams: list[Json] | None = None, runs: list[Json] | None = None,
           predictions: list[Json] | None = None, audio: Json | None = None,
           settings: dict[str, Json] | None = None) -> Json:
    """`settings`: platform.json accuracy verdicts of engine settings (runner.output_name keys)."""
    names = list(medians)
    variants = [variant(n, (sizes or {}).get(n, 1000)) for n in names]
    accuracy = {n: Verdict.from_json(verdict(passed[n], 0.0 if passed[n] else 50.0)) for n in names}
    platform = platform_file(evidence, {**{n: {"measured": True, "passed": True, "reasons": []} for n in names},
                                        **(settings or {})}, predictions or [])
    profile = profile_file(runs if runs is not None else [run(n, m) for n, m in medians.items()], streams or [])
    return choose(variants, accuracy, platform, profile, policy, audio).to_json()


def test_fastest_eligible_wins_and_beats_original() -> None:
    doc = decide({"original": 1.0, "dft-fused": 0.8, "stft-op": 0.9}, dict.fromkeys(["original", "dft-fused",
                                                                                    "stft-op"], True))
    assert doc["chosen"]["variant"] == "dft-fused"
    assert doc["beats_original"] is True
    assert "1.25x faster than the original" in " ".join(doc["reasons"])
    assert [r["variant"] for r in doc["runners_up"]] == ["stft-op", "original"]
    assert doc["runners_up"][0]["slower_than_chosen"] == pytest.approx(0.9 / 0.8)


def test_over_tolerance_is_never_chosen_even_when_fastest() -> None:
    doc = decide({"original": 1.0, "int8-dynamic": 0.1}, {"original": True, "int8-dynamic": False})
    assert doc["chosen"]["variant"] == "original"
    rejected = {r["variant"]: r["fails"] for r in doc["rejected"]}
    assert rejected["int8-dynamic"][0].startswith("failed the accuracy gate: max |dB error| 50.0 > 0.5")


def test_original_chosen_when_nothing_beats_it() -> None:
    doc = decide({"original": 0.5, "stft-op": 0.9}, {"original": True, "stft-op": True})
    assert doc["chosen"]["variant"] == "original"
    assert doc["beats_original"] is False
    assert "no variant beats the original at the median: the original is chosen" in doc["reasons"]


def test_budget_rejects_and_nothing_left_means_no_choice() -> None:
    tight = Policy(0.5, 0.1, 0.025, realtime_budget=0.001)  # 0.08 ms
    doc = decide({"original": 1.0, "dft-fused": 0.5}, {"original": True, "dft-fused": True}, policy=tight)
    assert doc["chosen"] is None
    assert doc["eligible"] == 0
    assert all("> budget 0.080 ms" in r["fails"][0] for r in doc["rejected"])
    assert choice_lines(Choice.from_json(doc))[0].startswith("no variant chosen")


def test_size_limit() -> None:
    small = Policy(0.5, 0.1, 0.025, 0.1, max_model_bytes=5000)
    doc = decide({"original": 1.0, "dft-fused": 0.5}, {"original": True, "dft-fused": True}, policy=small,
                 sizes={"original": 4000, "dft-fused": 9000})
    assert doc["chosen"]["variant"] == "original"
    assert doc["rejected"][0]["fails"] == ["file 9,000 bytes > max_model_bytes 5,000"]


def test_emulated_time_never_decides() -> None:
    doc = decide({"original": 1.0}, {"original": True}, evidence="emulated-wall-time")
    assert doc["chosen"] is None
    assert (doc["candidates"], doc["rejected"]) == (0, [])  # emulated wall time is not even a candidate
    assert doc["reasons"] == ["no latency measured on the target or predicted for it (emulated wall time is not "
                              "a latency)"]


def test_a_configuration_over_the_streaming_cpu_share_is_never_chosen() -> None:
    runs = [run("original", 0.5, threads=1), run("original", 0.2, threads=2, spinning=True)]
    streams = [stream("original", 0.04, threads=1), stream("original", 0.45, threads=2, spinning=True)]
    doc = decide({"original": 0.5}, {"original": True}, runs=runs, streams=streams)
    assert (doc["chosen"]["threads"], doc["chosen"]["cpu_share"]) == (1, 0.04)
    assert doc["rejected"][0]["fails"] == ["streaming at 12.5 chunks/s it takes 45.0% of one core > "
                                           "max_stream_cpu_share 25%"]
    assert "1 configuration(s) excluded for their CPU share" in doc["reasons"][-1]
    assert doc["runners_up"][-1]["why"] == "excluded: streaming CPU share 45.0% > max_stream_cpu_share"
    loose = Policy(0.5, 0.1, 0.025, 0.1, max_stream_cpu_share=0.5)
    doc = decide({"original": 0.5}, {"original": True}, runs=runs, streams=streams, policy=loose)
    assert doc["chosen"]["threads"] == 2  # 2.5x faster, beyond any spread, and within this looser limit


def test_near_ties_go_to_lower_cpu_share_then_fewer_threads_but_a_clear_win_does_not() -> None:
    runs = [run("original", 0.50, threads=1), run("original", 0.48, threads=2, spinning=False)]
    streams = [stream("original", 0.05, threads=1), stream("original", 0.08, threads=2, spinning=False)]
    doc = decide({"original": 0.5}, {"original": True}, runs=runs, streams=streams)
    assert doc["chosen"]["threads"] == 1  # 0.02 ms slower, within p90 - median = 0.05 ms: a near-tie
    assert doc["reasons"][1].startswith("within the measurement spread of the fastest (original on "
                                        "CPUExecutionProvider, 2 threads, no spinning")
    clear = [run("original", 0.50, threads=1), run("original", 0.30, threads=2, spinning=False)]
    doc = decide({"original": 0.5}, {"original": True}, runs=clear, streams=streams)
    assert doc["chosen"]["threads"] == 2


def test_a_near_tie_slower_than_the_original_says_slower_never_a_fraction_faster() -> None:
    """The rewrite at 0.52 ms is within the original's spread (p90 - median = 0.05 ms) and takes less CPU: it is
    chosen, and the sentence against the original says 1.04x slower, not '0.96x faster'."""
    runs = [run("original", 0.50), run("stft-op", 0.52)]
    streams = [stream("original", 0.08), stream("stft-op", 0.05)]
    doc = decide({"original": 0.5, "stft-op": 0.52}, {"original": True, "stft-op": True}, runs=runs,
                 streams=streams)
    assert doc["chosen"]["variant"] == "stft-op"
    against = next(r for r in doc["reasons"] if "than the original's best configuration" in r)
    assert against.startswith("1.04x slower at the median than the original's best configuration")
    assert against.endswith("; chosen by the rule above, not by its median alone")
    assert "x faster" not in " ".join(doc["reasons"])


def test_ties_go_to_lower_streaming_cpu_then_fewer_threads() -> None:
    runs = [run("original", 0.5, threads=1), run("original", 0.5, threads=2, spinning=True),
            run("original", 0.5, threads=2, spinning=False)]
    streams = [stream("original", 0.02, threads=1), stream("original", 0.30, threads=2, spinning=True),
               stream("original", 0.01, threads=2, spinning=False)]
    doc = decide({"original": 0.5}, {"original": True}, runs=runs, streams=streams)
    chosen = doc["chosen"]
    assert (chosen["threads"], chosen["spinning"], chosen["cpu_share"]) == (2, False, 0.01)


def test_one_second_run_joined_to_its_chunk_candidate() -> None:
    runs = [run("original", 0.5), run("original", 4.0, workload="second")]
    doc = decide({"original": 0.5}, {"original": True}, runs=runs)
    assert doc["chosen"]["second_median_ms"] == 4.0
    assert doc["chosen"]["realtime_factor"] == pytest.approx(0.5 / 80)
    assert doc["checks"] == list(CHECKS)


WINDOW = {"audio_ms": 30000.0, "kind": "fixed window", "reason": "the graph pads every input to 480000 samples"}


def test_a_graph_padding_to_a_fixed_window_gets_the_budget_of_that_window() -> None:
    """Whisper's 180 ms per 30 s window is over 0.1 x 80 ms but within 0.1 x 30 s; its CPU share is its CPU time
    per inference over the window, not the back-to-back stream's."""
    streams = [{**stream("original", 0.97), "cpu_s": 2.4, "chunks": 12}]  # 200 ms of CPU per inference
    over = decide({"original": 180.0}, {"original": True}, streams=streams)
    assert over["chosen"] is None
    assert over["rejected"][0]["fails"][0] == "median 180.000 ms > budget 8.000 ms (realtime_budget 0.1 x 80 ms)"
    doc = decide({"original": 180.0}, {"original": True}, streams=streams, audio=WINDOW)
    chosen = doc["chosen"]
    assert chosen["realtime_factor"] == pytest.approx(180.0 / 30000.0)
    assert (chosen["cpu_share"], chosen["streams_per_core"]) == (pytest.approx(0.2 / 30), 150)
    assert doc["policy"]["max_chunk_ms"] == pytest.approx(3000.0) and doc["inference_audio"] == WINDOW
    assert "= 0.0060 of the 30000 ms window one inference covers (budget 0.1)" in doc["reasons"][1]
    assert "budget 3000 ms: the graph pads every input to 480000 samples" in doc["reasons"]
    assert doc["reasons"][-1].startswith("run once per 30000 ms window it takes 0.67% of one core")
    slow = decide({"original": 3500.0}, {"original": True}, streams=streams, audio=WINDOW)
    assert slow["rejected"][0]["fails"][0] == "median 3500.000 ms > budget 3000.000 ms (realtime_budget 0.1 x 30000 ms)"


def test_prediction_decides_when_nothing_was_measured_on_the_board() -> None:
    target = load_target("rpi4")
    config = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": True,
              "optimization": "all"}
    rows = []
    for name, instructions in (("original", 4e6), ("dft-fused", 3e6)):
        for workload, scale in (("stream", 1.0), ("second", 10.0)):
            total = instructions * scale
            counts = InstructionCounts(variant=name, workload=workload, qemu_cpu="cortex-a72", repeat=5, total=total,
                                       by_class={"simd_vector": total / 2, "integer": total / 2}, uncertainty={})
            rows.append({**predict_latency(counts, target).to_json(), "config": config})
    doc = decide({"original": 900.0, "dft-fused": 800.0}, {"original": True, "dft-fused": True},
                 evidence="emulated-wall-time", predictions=rows)
    chosen = doc["chosen"]
    assert (chosen["variant"], chosen["evidence"]) == ("dft-fused", "predicted")
    expected = next(r["latency_ms"] for r in rows if r["variant"] == "dft-fused" and r["workload"] == "stream")
    assert chosen["median_ms"] == expected
    assert any(reason.startswith("latency predicted, not measured") for reason in doc["reasons"])
    assert doc["rejected"] == [] and doc["candidates"] == 2  # the emulated runs are no candidates
    assert (chosen["threads"], chosen["spinning"]) == (1, False)
    assert any(r.startswith("predicted 1.") and "x faster than the original" in r for r in doc["reasons"])
    assert doc["reasons"][-1].startswith("streaming CPU share cannot be measured under emulation")


F16_FAILS = {"original@openvino.CPU.f16": verdict(False, 324.0), "original@openvino.CPU.f32": verdict(True, 0.001)}


def test_a_precision_failing_its_gate_where_it_ran_is_excluded_while_the_same_variant_at_f32_stays() -> None:
    base = run("original", 1.0)
    runs = [base, setting(run("original", 0.6), OPENVINO, "f32"), setting(run("original", 0.3), OPENVINO, "f16")]
    doc = decide({"original": 1.0}, {"original": True}, runs=runs, settings=F16_FAILS)
    chosen = doc["chosen"]
    assert (chosen["engine"], chosen["provider"], chosen["precision"], chosen["median_ms"]) == (
        "openvino", "CPU", "f32", 0.6)
    assert (doc["candidates"], doc["eligible"]) == (3, 2)
    (rejected,) = doc["rejected"]
    assert (rejected["precision"], rejected["median_ms"]) == ("f16", 0.3)
    assert rejected["fails"] == ["its outputs where it ran fail the dB tolerances: original@openvino.CPU.f16: "
                                 "max |dB error| 324.0 > 0.5 (max_abs_db_error); worst at -60 dBFS"]
    assert choice_lines(Choice.from_json(doc))[0] == "chosen: original on openvino CPU f32, 1 thread(s)"
    assert "its outputs as original@openvino.CPU.f32 where it ran: max |dB error| 0.001 <= 0.5" in doc["reasons"]
    assert doc["original_best"]["precision"] == "f32"  # the original's best configuration is that setting


def test_a_setting_with_no_verdict_where_it_ran_is_not_eligible() -> None:
    runs = [run("original", 1.0), setting(run("original", 0.3), OPENVINO, "bf16")]
    doc = decide({"original": 1.0}, {"original": True}, runs=runs, settings=F16_FAILS)
    assert doc["chosen"]["engine"] == "onnxruntime"
    assert doc["rejected"][0]["fails"] == ["its outputs where it ran fail the dB tolerances: "
                                           "original@openvino.CPU.bf16: no outputs"]


def test_two_precisions_of_one_variant_are_two_candidates_each_joined_to_its_own_runs() -> None:
    settings = {f"original@onnxruntime.OpenVINOExecutionProvider.{p}": verdict(True, 0.01) for p in ("f32", "bf16")}
    runs = [setting(run("original", median, workload=w), PLUGIN, p, threads=2)
            for p, median in (("f32", 0.31), ("bf16", 0.30)) for w in ("stream", "second")]
    runs[1]["latency_ms"] = latency(5.0)  # f32's one-second run
    streams = [setting(stream("original", 0.04), PLUGIN, "f32", threads=2, share=0.04),
               setting(stream("original", 0.09), PLUGIN, "bf16", threads=2, share=0.09)]
    doc = decide({"original": 1.0}, {"original": True}, runs=runs, streams=streams, settings=settings)
    assert doc["candidates"] == 2 and doc["eligible"] == 2
    chosen = doc["chosen"]  # 0.01 ms slower than bf16, within its spread, and thriftier
    assert (chosen["precision"], chosen["cpu_share"], chosen["second_median_ms"]) == ("f32", 0.04, 5.0)
    (other,) = doc["runners_up"]
    assert (other["precision"], other["cpu_share"], other["second_median_ms"]) == ("bf16", 0.09, 0.30)
    assert doc["reasons"][1] == ("its outputs as original@onnxruntime.OpenVINOExecutionProvider.f32 where it ran: "
                                 "max |dB error| 0.01 <= 0.5")
    assert doc["reasons"][2].startswith("within the measurement spread of the fastest (original on "
                                        "OpenVINOExecutionProvider bf16, 2 threads, optimization all: ")
    assert choice_lines(Choice.from_json(doc))[0] == ("chosen: original on OpenVINOExecutionProvider f32, 2 thread(s), "
                                    "optimization all")


def test_predictions_are_one_candidate_per_variant_and_engine_setting() -> None:
    target = load_target("rpi4")
    cpu = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1, "spinning": True,
           "optimization": "all", "precision": None}
    rows = []
    for config, instructions in ((cpu, 4e6), ({**OPENVINO, "threads": 1, "precision": "f16"}, 2e6),
                                 ({**OPENVINO, "threads": 1, "precision": "f32"}, 3e6)):
        for workload, scale in (("stream", 1.0), ("second", 10.0)):
            counts = InstructionCounts(variant="original", workload=workload, qemu_cpu="cortex-a72", repeat=5,
                                       total=instructions * scale, by_class={"integer": instructions * scale},
                                       uncertainty={})
            rows.append({**predict_latency(counts, target).to_json(), "config": config})
    doc = decide({"original": 900.0}, {"original": True}, evidence="emulated-wall-time", predictions=rows,
                 settings=F16_FAILS)
    assert doc["candidates"] == 3
    keys = sorted([doc["chosen"]["key"], *(r["key"] for r in doc["rejected"]), *(r["key"] for r in doc["runners_up"])])
    assert keys == ["predicted|original@openvino.CPU.f16|stream", "predicted|original@openvino.CPU.f32|stream",
                    "predicted|original|stream"]
    chosen = doc["chosen"]
    f32 = {r["workload"]: r["latency_ms"] for r in rows if r["config"].get("precision") == "f32"}
    assert (chosen["precision"], chosen["median_ms"], chosen["second_median_ms"]) == ("f32", f32["stream"],
                                                                                     f32["second"])
    assert doc["rejected"][0]["fails"][0].startswith("its outputs where it ran fail the dB tolerances: "
                                                     "original@openvino.CPU.f16: max |dB error| 324.0")
