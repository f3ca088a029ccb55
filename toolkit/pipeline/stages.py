"""The pipeline's stages: each reads the files of the stages before it and writes its own under build/<target>/.

    variants.json    every variant: status, reason, file, bytes, sha256; "inputs": what each graph input is fed
                     and why (toolkit.load.feed_plan, the plan every stage and the runner feed by)
    accuracy.json    every built variant against the original on the signal set (this host, in process): errors
                     overall / by input level / by signal, the gate's verdict and reasons
    counts.json      analytic counts of every built variant at each workload, per node, with the graph's edges
                     (to map onnxruntime's fused kernels back to model nodes); "inference_audio": the audio one
                     inference of the original covers, which the budget is a fraction of (workload.py)
    bundle/, profile.json, profile.outputs.npz    the bench bundle of the variants that passed, the runner's result
    platform.json    the source and its evidence labels; the dB errors of the outputs made where the runs ran;
                     instruction counts (emulated-instructions), predicted latencies (predicted) and, where the
                     same configuration was measured on the target, measured / predicted
    compare.json, choice.json    (toolkit.compare, toolkit.select)

Each file is written as its record (toolkit.records) through BuildFolder, and read back the same way; profile.json
is the bench runner's own file (its source writes it), read as its record once the source is done.

build_folder and gate_folder take what they need, not a Run: `python -m toolkit variants` writes its variants.json
and accuracy.json with them, so every reader of a build folder reads the command's too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from toolkit import accuracy
from toolkit.analysis import Analysis, analyze
from toolkit.compare import compare as compare_runs
from toolkit.configs import WITHOUT_SPINNING, same
from toolkit.errors import ToolkitError
from toolkit.evidence import BOARD, COUNTED, EMULATED, HOST, PREDICTED
from toolkit.export import export_folder
from toolkit.files import Json, read_json, sha256_file
from toolkit.folder import BuildFolder
from toolkit.load import FeedPlan
from toolkit.pipeline.sources import SOURCES, Request, evidence_of
from toolkit.profiling import emulate, runner
from toolkit.profiling.bundle import STREAMING, WORKLOADS, Workload, make_bundle
from toolkit.profiling.emulate import InstructionCounts
from toolkit.profiling.predict import Prediction, predict_latency, prediction_error
from toolkit.profiling.workload import inference_audio
from toolkit.records import (
    AccuracyFile,
    CountsFile,
    PlatformFile,
    PredictionErrors,
    ProfileFile,
    Rows,
    RunRecord,
    VariantCounts,
    VariantRecord,
    VariantsFile,
    Verdict,
    WorkloadCounts,
    measured,
)
from toolkit.select import choice_lines, select_folder
from toolkit.targets import Policy, Target
from toolkit.terminal import progress as _say
from toolkit.variants import build_variants

if TYPE_CHECKING:
    from toolkit.pipeline.orchestrate import Run

SIGNAL_SAMPLES = 16000
TFLITE_NOT_COUNTED = (
    "not counted: the analyzer reads ONNX only, and this TFLite graph is not op-for-op equal to any ONNX variant "
    "(it squares re and im in one MUL and multiplies both halves by a stacked filterbank in one BATCH_MATMUL)"
)
# This host's instructions: on the chunk only, 20 inferences, one qemu-x86_64 run per variant (about 20 s each,
# most of it Python starting under emulation)
HOST_COUNT_WORKLOADS = ("stream",)
COUNT_TIMEOUT_S = 900
PLATFORM_POLICY_KEYS = accuracy.REQUIRED_POLICY  # the runner's outputs hold the dB output only, no mel energies


# ---------------------------------------------------------------- variants


def build_folder(model: onnx.ModelProto, folder: Path, files: Path, names: Sequence[str], plan: FeedPlan,
                 full_scale: float) -> VariantsFile:
    """Build `names` (the original first) into `files` and write folder/variants.json; the original must be
    written, the others may fail with their reason. Takes no Run, so `python -m toolkit variants` builds the same
    records as the pipeline."""
    built = build_variants(model, files, names=names, plan=plan, full_scale=full_scale)
    if built[0].status != "built":
        raise ToolkitError(f"could not write the input model to {files}: {built[0].reason}")
    records = [VariantRecord.from_json({**variant.to_dict(), **_file_facts(variant.path)}) for variant in built]
    document = VariantsFile([entry.to_json() for entry in plan], records)
    BuildFolder(folder).write("variants", document)
    return document


def _file_facts(path: str | None) -> Json:
    """bytes and sha256 of a variant's file, when one was written."""
    return {"bytes": Path(path).stat().st_size, "sha256": sha256_file(Path(path))} if path else {}


def build(run: Run) -> None:
    """The variants stage: build_folder with the run's model, names, feed plan and audio units."""
    build_folder(run.model, run.folder, run.path("variants"), run.variant_names, run.plan, run.full_scale)


def built_variants(folder: Path) -> list[VariantRecord]:
    """The records of the folder's variants.json whose file was written."""
    return [v for v in BuildFolder(folder).variants().variants if v.built]


# ---------------------------------------------------------------- accuracy


def gated(report: accuracy.AccuracyReport, policy: Policy | Json) -> Verdict:
    """The gate's verdict on a measured report."""
    passed, reasons = accuracy.gate(report, policy)
    return Verdict(measured=True, passed=passed, reasons=reasons, report=report.to_dict())


def unmeasured(reason: str) -> Verdict:
    """The verdict on outputs that could not be measured: failed, with why."""
    return Verdict(measured=False, passed=False, reasons=[reason])


def _measure(reference: accuracy.SignalOutputs, variant: VariantRecord, signals: dict[str, np.ndarray],
             plan: FeedPlan, policy: Policy) -> Verdict:
    """One variant's verdict; a variant that cannot run fails the gate with the reason."""
    try:
        report = accuracy.measure(reference, str(variant.path), variant.format, signals, plan)
    except Exception as error:  # a variant that crashes on a signal is reported, not fatal
        return unmeasured(f"could not run: {type(error).__name__}: {error}")
    return gated(report, policy)


def gate_folder(folder: Path, plan: FeedPlan, full_scale: float, policy: Policy, samples: int) -> AccuracyFile:
    """Every built variant of folder/variants.json against the original on the signal set of `samples`, in this
    process; the gate's verdict by `policy` into folder/accuracy.json. Takes no Run (see build_folder)."""
    variants = built_variants(folder)
    signals = accuracy.signal_set(samples, full_scale)
    reference = accuracy.run_signals(str(variants[0].path), "onnx", signals, plan)
    results = {}
    for index, variant in enumerate(variants, 1):
        results[variant.name] = _measure(reference, variant, signals, plan, policy)
        verdict = "passes" if results[variant.name].passed else "fails"
        _say(f"[accuracy {index}/{len(variants)}] {variant.name}: {verdict} the gate")
    document = AccuracyFile(
        evidence=HOST,
        method="accuracy.measure: each signal alone (batch 1) through onnxruntime (ONNX) or LiteRT (TFLite) "
               "in this process; errors against the original's outputs",
        signals={"samples": samples, "levels": accuracy.signal_levels()},
        policy={k: v for k, v in vars(policy).items() if v is not None},
        variants=results,
    )
    BuildFolder(folder).write("accuracy", document)
    return document


def gate(run: Run) -> None:
    """The accuracy stage: gate_folder on the fixed signal set by the target's policy."""
    gate_folder(run.folder, run.plan, run.full_scale, run.target.policy, SIGNAL_SAMPLES)


def passing(run: Run) -> list[VariantRecord]:
    """Built variants that passed the gate, the original first."""
    verdicts = run.files.accuracy().variants
    return [v for v in built_variants(run.folder) if verdicts[v.name].passed]


# ---------------------------------------------------------------- counts


def node_table(analysis: Analysis) -> list[Json]:
    """Per node: name, op, counts, the tensors it reads and writes, and whether all its inputs are constant."""
    model = analysis.model
    constant = {init.name for init in model.graph.initializer} - {i.name for i in model.graph.input}
    rows = []
    outcomes = {o.index: o for o in analysis.propagation.nodes}
    for report in analysis.nodes:  # in propagation order, which is topological: constants flow forward
        node = outcomes[report.index].node
        is_constant = all(name in constant for name in node.input if name)
        if is_constant:
            constant.update(node.output)
        counts = {c: getattr(report, c).subs(analysis.bindings).as_ints() if report.counted else None
                  for c in ("dense", "effective")}
        rows.append({"name": report.name, "op_type": report.op_type, "counted": report.counted,
                     "mul": {c: None if v is None else v.get("mul", 0) for c, v in counts.items()},
                     "inputs": [n for n in node.input if n], "outputs": list(node.output), "constant": is_constant})
    return rows


def workload_counts(path: str, workload: Workload) -> WorkloadCounts:
    """analyze(variant, batch, samples) at one bundle workload: totals, not-counted nodes, per node."""
    analysis = analyze(path, batch=int(workload["batch"]), samples=int(workload["samples"]))
    return WorkloadCounts(
        batch=workload["batch"], samples=workload["samples"],
        dense=analysis.totals("dense"), effective=analysis.totals("effective"),
        not_counted=[n.name for n in analysis.not_counted], nodes=node_table(analysis),
        bounded_by=[n.name for n in analysis.bounded],
    )


def onnx_counts(path: str) -> VariantCounts:
    """The variant's counts at every bundle workload, with whether they are exact, upper or lower bounds."""
    workloads = {str(workload["name"]): workload_counts(path, workload) for workload in WORKLOADS}
    partial = any(w.not_counted for w in workloads.values())
    bounded = any(w.bounded_by for w in workloads.values())
    status = "partial" if partial else "bounded" if bounded else "counted"
    note = ("partial: the nodes in not_counted have no cost rule yet; totals are lower bounds" if partial else
            "bounded: the If nodes in bounded_by are decided by data; totals are upper bounds (each kind at the "
            "dearer branch)" if bounded else "")
    return VariantCounts(status, note, workloads)


def _variant_counts(variant: VariantRecord) -> VariantCounts:
    """Counts of one built variant, or why it has none."""
    if variant.format != "onnx":
        return VariantCounts("not counted", TFLITE_NOT_COUNTED, {})
    try:
        return onnx_counts(str(variant.path))
    except ToolkitError as error:
        return VariantCounts("not counted", f"not counted: the analyzer refused it: {error}", {})


def count(run: Run) -> None:
    """Analytic counts of every built variant (ONNX) at each workload; TFLite is stated as not counted."""
    variants, results = built_variants(run.folder), {}
    for variant in variants:
        results[variant.name] = _variant_counts(variant)
        _say(f"[counts] {variant.name}: {results[variant.name].status}")
    audio = inference_audio(onnx.load(str(variants[0].path)))
    _say(f"[counts] one inference covers {audio.audio_ms:g} ms of audio ({audio.kind}): {audio.reason}")
    run.files.write("counts", CountsFile(evidence=COUNTED, convention="README.md#counting-convention",
                                         workloads=[dict(w) for w in WORKLOADS], variants=results,
                                         inference_audio=audio.to_json()))


# ---------------------------------------------------------------- profile


def streaming_plan(bundle_dir: Path) -> Json:
    """Which streaming runs the runner will make (each runs `seconds` of real time) and their total wall time."""
    document = read_json(bundle_dir / "bundle.json", "the bundle")
    runs = [
        {"variant": v["name"], **config}
        for v in document["variants"] for config in runner.streaming_configs(document, v)
        if runner.provider_missing(config) is None
    ]
    return {"runs": runs, "seconds_each": STREAMING["seconds"], "seconds_total": len(runs) * STREAMING["seconds"],
            "rule": "every variant that passed the gate x every provider x intra-op threads x spinning of the "
                    "target's matrix, at its first graph optimization level (runner.streaming_configs)"}


def _platform_accuracy(result_path: Path, document: ProfileFile, chosen: list[VariantRecord],
                       levels: dict[str, float], policy: Json) -> dict[str, Verdict]:
    """dB errors (and integer outputs' equality) of each variant's outputs, and of each engine setting with
    numerics of its own (an OpenVINO precision: runner.output_name), against the original's, all as computed
    where the runs ran: a setting is gated like a variant."""
    with np.load(runner.outputs_path(result_path)) as npz:
        arrays = {key: npz[key] for key in npz.files}
    reference = accuracy.runner_outputs(arrays, "original")
    outputs = [output.name for output in onnx.load(str(chosen[0].path)).graph.output]
    results: dict[str, Verdict] = {}
    for name, record in document.outputs["variants"].items():
        if record["status"] == "unavailable" and runner.setting_label(record["config"]):
            continue  # that engine or precision does not exist where the runs ran: nothing to gate
        try:
            report = accuracy.compare(reference, accuracy.runner_outputs(arrays, name), levels, names=outputs)
        except ToolkitError as error:
            results[name] = unmeasured(str(error))
            continue
        results[name] = gated(report, policy)
    return results


def predictions(instructions: list[Json], target: Target, counts: CountsFile, bundle: Json) -> Rows:
    """Predicted single-thread latency of every counted variant x workload, from its instruction counts and
    exact analytic mults (toolkit.profiling.predict), with the configuration the counts were made in."""
    configs = {v["name"]: runner.run_configs(bundle, v)[0] for v in bundle["variants"]}
    try:
        rows = []
        for record in instructions:
            fields = {k: v for k, v in record.items() if k != "evidence"}
            counted = counts.of(fields["variant"]).at(fields["workload"])
            dense = counted.mults()["dense"] if counted else None
            prediction = predict_latency(InstructionCounts(**fields), target, dense)
            rows.append({**prediction.to_json(), "config": fields.get("config") or configs[fields["variant"]]})
    except ToolkitError as error:
        return Rows(PREDICTED, [], str(error))
    return Rows(PREDICTED, rows, "" if rows else "no instruction counts")


def _count_all(bundle: Json, workloads: tuple[str, ...], configs_of: Callable[[Json], list[tuple[int, Json]]],
               count: Callable[[str, str, int], InstructionCounts]) -> tuple[list[Json], str]:
    """Instruction counts of every bundle variant in its counted configurations (index, config) at `workloads`,
    and why counting stopped: the first failure ends it."""
    rows = []
    for variant in bundle["variants"]:
        for index, config in configs_of(variant):
            for workload in workloads:
                try:
                    rows.append({**count(variant["name"], workload, index).to_json(), "config": config})
                except (ToolkitError, subprocess.TimeoutExpired) as error:
                    where = runner.output_name(variant["name"], config)
                    return rows, f"counting stopped at {where} on {workload}: {error}"
    return rows, ""


def host_instructions(run: Run, bundle_dir: Path, bundle: Json) -> Rows:
    """This x86-64 host's own instructions per inference, counted under qemu-x86_64 (emulate.count_host_
    instructions) on the chunk, in the configuration predictions assume (the variant's first: one thread)."""
    missing = emulate.host_counting_missing()
    if missing:
        return Rows(EMULATED, [], missing)
    try:
        plugins = emulate.ensure_plugins()
    except ToolkitError as error:
        return Rows(EMULATED, [], f"no x86class plugin: {error}")
    rows, reason = _count_all(bundle, HOST_COUNT_WORKLOADS, lambda v: [(0, runner.run_configs(bundle, v)[0])],
                              lambda name, workload, index: emulate.count_host_instructions(
                                  bundle_dir, name, workload, plugins=plugins, timeout=COUNT_TIMEOUT_S,
                                  config=index))
    return Rows(EMULATED, rows, reason, emulate.host_method())


def board_instructions(run: Run, document: ProfileFile, bundle_dir: Path, bundle: Json) -> Rows:
    """A measured board's instructions per inference, counted under emulation with its CPU model in the first
    configuration of each engine setting that ran on the board, so its predictions can be held against the
    measurement; needs root, `make ci-deps` and the cached rootfs."""
    missing = emulate.emulation_missing()
    if missing:
        return Rows(EMULATED, [], f"no emulated counts to predict from: {missing}")
    guest = emulate.Guest.for_target(run.target)
    ran = [r.config() for r in document.ok_runs()]
    rows, reason = _count_all(bundle, tuple(w["name"] for w in bundle["workloads"]),
                              lambda v: emulate.counted_configs(bundle, v, ran),
                              lambda name, workload, index: emulate.count_instructions(
                                  guest, bundle_dir, name, workload, timeout=COUNT_TIMEOUT_S, config=index))
    return Rows(EMULATED, rows, reason, emulate.guest_method(guest.qemu_cpu))


def instructions_of(run: Run, document: ProfileFile, bundle_dir: Path, bundle: Json) -> Rows:
    """Instruction counts per variant and workload from where this source makes them, labelled; `reason` says
    why there are none (the host's are counted only with count_host)."""
    if run.source == "emulate":
        emulation = document.emulation or {}
        return Rows(EMULATED, document.instructions or [], "",
                    emulate.guest_method(emulation.get("qemu_cpu", "<the target's core>")))
    if run.source == "host":
        return (host_instructions(run, bundle_dir, bundle) if run.settings.count_host else
                Rows(EMULATED, [], "this host's instructions were not counted (profile --count-host)"))
    if run.target.kind == "board":
        return board_instructions(run, document, bundle_dir, bundle)
    return Rows(EMULATED, [], "a host result imported from elsewhere: its instructions were not counted")


def _measured_median(runs: list[RunRecord], prediction: Json) -> float | None:
    """The measured median of the run a prediction describes (same variant, workload and configuration)."""
    config = prediction["config"]
    return next((measured(r).median for r in runs if r.ok and r.variant == prediction["variant"]
                 and r.workload == prediction["workload"] and same(r, config, WITHOUT_SPINNING)), None)


def prediction_errors(runs: list[RunRecord], rows: list[Json], latency_label: str) -> PredictionErrors:
    """measured / predicted for every prediction whose run was measured on the target itself."""
    if latency_label not in (HOST, BOARD):
        return PredictionErrors(f"derived: {latency_label} / {PREDICTED}", [], None,
                                f"no measurement of the target to hold the predictions against ({latency_label})")
    found = []
    for row in rows:
        measured = _measured_median(runs, row)
        if measured is not None:
            found.append({**error_of(row, measured, latency_label), "config": row["config"]})
    ratios = sorted(r["measured_over_predicted"] for r in found)
    summary = {"min": ratios[0], "median": float(np.median(ratios)), "max": ratios[-1]} if ratios else None
    return PredictionErrors(f"derived: {latency_label} median / {PREDICTED}", found, summary,
                            "" if found else "no prediction has a measured run of the same configuration")


def error_of(row: Json, measured_ms: float, measured_on: str) -> Json:
    """One prediction row against its measured median (toolkit.profiling.predict.prediction_error)."""
    fields = {k: row[k] for k in ("target", "variant", "workload", "latency_ms", "bound", "bounds_ms", "clock_ghz",
                                  "core")}
    return prediction_error(Prediction(**fields), measured_ms, measured_on)


def profile(run: Run) -> None:
    """Bundle the variants that passed the gate, measure them where the source says, check their outputs there,
    count instructions where the source allows and predict from them; prediction error where both exist."""
    chosen = passing(run)
    bundle_dir = run.path("bundle")
    signals = accuracy.signal_set(SIGNAL_SAMPLES, run.full_scale)
    make_bundle([(v.name, str(v.path), v.format) for v in chosen], run.target, signals, bundle_dir,
                inputs=[entry.to_json() for entry in run.plan])
    plan = streaming_plan(bundle_dir)
    seconds = len(plan["runs"]) * (runner.QUICK["streaming_seconds"] if run.settings.quick else plan["seconds_each"])
    _say(f"[profile] {len(chosen)} variants passed the gate and are measured; streaming runs: {len(plan['runs'])}, "
         f"about {seconds:.0f} s of real-time feeding")
    result = run.files.path("profile")
    request = Request(run.target, bundle_dir, result, run.settings.quick,
                      resume=run.settings.resume and result.is_file(), board=run.settings.board,
                      imported=Path(run.settings.imported) if run.settings.imported else None)
    SOURCES[run.source].profile(request)  # the runner's result, written to profile.json by the source
    document = run.files.profile()
    latency_label, output_label = evidence_of(run.source, document)
    bundle = read_json(bundle_dir / "bundle.json", "the bundle")
    policy = {k: getattr(run.target.policy, k) for k in PLATFORM_POLICY_KEYS}
    instructions = instructions_of(run, document, bundle_dir, bundle)
    predicted = predictions(instructions.rows, run.target, run.files.counts(), bundle)
    run.files.write("platform", PlatformFile(
        source=run.source, description=SOURCES[run.source].description,
        latency_evidence=latency_label, output_evidence=output_label,
        streaming_plan=plan, quick=run.settings.quick,
        instructions=instructions,
        predictions=predicted,
        prediction_error=prediction_errors(document.runs, predicted.rows, latency_label),
        accuracy=_platform_accuracy(result, document, chosen, accuracy.signal_levels(), policy),
    ))


# ---------------------------------------------------------------- compare, select, export


def compare(run: Run) -> None:
    """Measured against analytic (toolkit.compare) into compare.json."""
    comparison = compare_runs(run.target, run.files.counts(), run.files.profile(),
                              run.files.platform().latency_evidence)
    run.files.write("compare", comparison)
    _say(f"[compare] {len(comparison.runs)} runs, {len(comparison.contradictions)} rank contradictions "
         f"in {len(comparison.contradiction_summary)} variant pairs")


def select(run: Run) -> None:
    """The target's policy picks one (toolkit.select) into choice.json."""
    for line in choice_lines(select_folder(run.folder, run.target)):
        _say(f"[select] {line}")


def export(run: Run) -> None:
    """artifacts/<target>/ from the build folder (toolkit.export); a pytest-benchmark JSON is added if present."""
    bench = run.settings.build_root / "bench" / "benchmark.json"
    out = export_folder(run.folder, run.artifacts, run.target, bench if run.target.kind == "host" else None)
    _say(f"[export] {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
