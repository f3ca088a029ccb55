#!/usr/bin/env python3
"""The one bench runner: the same file measures the variants on this host, on a board over SSH, and under QEMU.

It imports only the standard library, numpy, onnxruntime, LiteRT (`ai_edge_litert`, else `tflite_runtime`) and,
where the bundle asks for them, OpenVINO (`openvino`; `onnxruntime_ep_openvino`, the plugin EP), never the toolkit,
so a bundle folder copied with scp runs with `python3 runner.py BUNDLE_DIR --out RESULT.json`. A missing engine
makes its runs `unavailable` with the import error, not a crash.

Placement is verified, never assumed: every onnxruntime session records which provider each node was assigned to
(session.record_ep_graph_assignment_info), every OpenVINO model which device and precision its execution graph
runs in; a run whose labelled provider ran none of the nodes is `failed` ("placement: ..."), and a precision that
OpenVINO does not apply on this CPU is `unavailable`, so no number is labelled with an engine that did not make it.

bundle.json (written by toolkit.profiling.bundle.make_bundle):
    format_version  3
    target          name of the target file the matrix came from (informational)
    variants        [{"name", "file" (relative to the bundle), "format": "onnx" | "tflite", "sha256"}]
    inputs          what each graph input is fed, and why (toolkit.load.feed_plan): [{"name", "role": "audio" |
                    "lengths" (the number of samples fed) | "initializer" (not fed) | "rate" | "zeros" | "given",
                    "dtype", "shape" (ints, "batch" and "samples": the audio's dims), "value" (rate, zeros, given),
                    "why"}];
                    LiteRT is fed the audio only
    matrix          {"providers": [onnxruntime EP names], "intra_op_threads": [int],
                     "graph_optimization": ["disable" | "basic" | "extended" | "all"],
                     "allow_spinning": [bool] (optional, default [true] as onnxruntime; intra-op workers
                     busy-wait between runs when true; measured only for threads > 1)}
    litert          {"threads": [int], "xnnpack": bool}   (false: BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    openvino        optional {"engines": ["native" | "plugin"], "threads": [int], "precision": ["f32" | "bf16" |
                     "f16"], "optimization": onnxruntime level of the plugin's sessions}: native = openvino
                     Core().compile_model(graph, "CPU"); plugin = onnxruntime with the OpenVINO plugin EP; threads
                     and precision are OpenVINO's INFERENCE_NUM_THREADS and INFERENCE_PRECISION_HINT
    workloads       [{"name", "batch", "samples"}]        the audio's shape [batch, samples]
    warmup, runs    untimed warm-up inferences, then timed inferences per run
    streaming       {"seconds", "chunk_samples", "rate_hz"}
    signals         npz file of float32 [1, N] arrays, one per named signal
    seed            seed of the int16-scale Gaussian noise fed to timed runs

RESULT.json (rewritten atomically after every finished run, so an interrupted run keeps what finished):
    format_version, complete, started_utc, updated_utc, bundle {sha256, target}, settings {warmup, runs,
    streaming_seconds, quick}, platform {...}, outputs {file, variants: {name: {status, config, signals}}},
    runs [...], streaming [...]; every run has a "key" and a "status": ok | unavailable | failed, with "reason";
    an ok run has "placement": {"nodes", "by_provider", "labelled", "method"} (OpenVINO: "precisions" too).
    A run's configuration is CONFIG_FIELDS; one with a precision has its own signal pass (output_name).
    "running" holds the key of the unit in progress: a process that died inside it (a crash in an engine) leaves
    it there, and --resume records that unit as failed (CRASHED) instead of running it again.
    Latency: time.perf_counter_ns around one session.run / interpreter set_tensor+invoke+get_tensor, in ms.
    Per-node times come from a second onnxruntime session with enable_profiling doing the same warm-up and runs;
    the warm-up runs are dropped from the trace, so the timed session's numbers carry no profiling overhead.
Outputs of the signal pass go to RESULT.outputs.npz beside RESULT.json, keys "<output>/<signal>" (first output)
and "<output>/<signal>/<k>" (output k >= 1, in graph order), <output> being output_name(variant, config): the
variant's name, or "<variant>@<engine>.<provider>.<precision>" for an engine setting with its own numerics.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 3
QUICK = {"warmup": 2, "runs": 5, "streaming_seconds": 1.0}
CRASHED = "the runner process died during this run (a crash in the engine or provider); recorded on --resume"
OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
CPUINFO_FIELDS = ("model name", "Model", "Hardware", "CPU implementer", "CPU part", "CPU revision", "cpu MHz")
LITERT_IMPORTS = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"))
NOISE_STD = 3000.0
OPENVINO_PLUGIN = "OpenVINOExecutionProvider"
OPENVINO_DEVICE = "CPU"
# Execution-graph nodes that move no data through a kernel: the graph's inputs, outputs and constants.
OPENVINO_NOT_KERNELS = {"Input", "Output", "Const", "Parameter", "Result", "Constant"}
CONFIG_FIELDS = ("engine", "provider", "threads", "spinning", "optimization", "precision")

Json = dict[str, Any]


class BundleError(Exception):
    """A bundle or command line the runner cannot use; printed as one line, exit 2."""


# ---------------------------------------------------------------- engines


def _import_onnxruntime() -> tuple[Any, str | None]:
    """onnxruntime or the reason it is missing (a board may lack a wheel for its Python)."""
    try:
        return importlib.import_module("onnxruntime"), None
    except ImportError as error:
        return None, f"onnxruntime is not importable here: {error}"


def _import_litert() -> tuple[Any, str | None, str | None]:
    """(interpreter module, distribution name, reason if missing): ai-edge-litert first, tflite-runtime after."""
    reasons = []
    for module_name, dist in LITERT_IMPORTS:
        try:
            return importlib.import_module(module_name), dist, None
        except ImportError as error:
            reasons.append(f"{module_name}: {error}")
    return None, None, "LiteRT is not importable here: " + "; ".join(reasons)


ORT, ORT_MISSING = _import_onnxruntime()
LITERT, LITERT_DIST, LITERT_MISSING = _import_litert()


@functools.cache
def openvino_runtime() -> tuple[Any, str | None]:
    """The openvino module or why it is missing; imported on first use, since only OpenVINO runs need it."""
    try:
        return importlib.import_module("openvino"), None
    except ImportError as error:
        return None, f"openvino is not importable here: {error} (pip install openvino)"


@functools.cache
def openvino_plugin_devices() -> tuple[list[Any], str | None]:
    """onnxruntime's OpenVINO plugin EP devices for the CPU, registered once per process, or why there are none."""
    if ORT is None:
        return [], ORT_MISSING
    try:
        plugin = importlib.import_module("onnxruntime_ep_openvino")
    except ImportError as error:
        return [], (f"the OpenVINO plugin EP is not importable here: {error} (onnxruntime-ep-openvino, wheels for "
                    "x86-64 only)")
    try:
        ORT.register_execution_provider_library(OPENVINO_PLUGIN, plugin.get_library_path())
    except Exception as error:
        return [], f"onnxruntime {ORT.__version__} could not register the OpenVINO plugin EP: {error}"
    found = ORT.get_ep_devices()
    devices = [d for d in found if d.ep_name == OPENVINO_PLUGIN and d.ep_metadata.get("ov_device") == OPENVINO_DEVICE]
    if devices:
        return devices, None
    return [], f"the OpenVINO plugin EP offers no {OPENVINO_DEVICE} device here{_why_no_device(found)}"


def _why_no_device(devices: list[Any]) -> str:
    """Why the plugin lists no CPU when it is not Intel's: its device discovery skips every other vendor's
    hardware (onnxruntime-ep-openvino 1.8; lifting that for CPUs is onnxruntime pull request 31981)."""
    vendors = {d.device.vendor for d in devices if d.device.type == ORT.OrtHardwareDeviceType.CPU}
    other = sorted(v for v in vendors if "intel" not in str(v).lower())
    return f" (it lists Intel devices only, and onnxruntime sees this CPU as {other[0]}'s)" if other else ""


def openvino_properties(config: Json) -> dict[str, str]:
    """OpenVINO's CPU properties of a run: its thread count, precision and the latency hint."""
    return {"INFERENCE_NUM_THREADS": str(config["threads"]), "INFERENCE_PRECISION_HINT": config["precision"],
            "PERFORMANCE_HINT": "LATENCY"}


class PlacementError(Exception):
    """The engine a run is labelled with executed none of its nodes."""


def feed_arrays(plan: list[Json], audio: np.ndarray, names: set[str]) -> dict[str, np.ndarray]:
    """The inputs in `names` (the session's) one inference is fed, by bundle.json's "inputs": the audio, the number
    of samples, or a constant broadcast to the shape ("batch" and "samples" are the audio's dims); initializers
    are not fed (the engine uses them)."""
    sizes = {"batch": audio.shape[0], "samples": audio.shape[1]}
    feeds = {}
    for entry in (e for e in plan if e["name"] in names):
        if entry["role"] == "audio":
            feeds[entry["name"]] = audio.astype(entry["dtype"], copy=False)
        elif entry["role"] != "initializer":
            shape = tuple(sizes.get(dim, dim) for dim in entry["shape"])
            value = audio.shape[1] if entry["role"] == "lengths" else entry["value"]
            feeds[entry["name"]] = np.array(np.broadcast_to(np.asarray(value, dtype=entry["dtype"]), shape))
    return feeds


class FedSession:
    """The feed of a session fed by the bundle's plan, made once per audio array, so a timed run times the
    inference only."""

    def __init__(self, plan: list[Json], input_names: set[str]) -> None:
        self.plan = plan
        self.input_names = input_names
        self.audio: np.ndarray | None = None
        self.feed: dict[str, np.ndarray] = {}

    def feed_for(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every input of one inference on audio `x` (the last one's feed again when `x` is the same array)."""
        if self.audio is not x:
            self.audio = x
            self.feed = feed_arrays(self.plan, x, self.input_names)
        return self.feed


class OrtSession(FedSession):
    """One onnxruntime session with a fixed provider, thread count and optimization level, fed every input."""

    def __init__(self, path: Path, config: Json, plan: list[Json], profile_dir: str | None = None) -> None:
        options = ORT.SessionOptions()
        options.intra_op_num_threads = config["threads"]
        options.inter_op_num_threads = 1
        options.execution_mode = ORT.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ORT.GraphOptimizationLevel, OPT_LEVELS[config["optimization"]])
        options.log_severity_level = 4  # errors reach the result as exceptions
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if config["spinning"] else "0")
        options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
        if profile_dir:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(profile_dir, "ort")
        self.provider = config["provider"]
        if config.get("precision"):  # the plugin EP: its devices, with OpenVINO's own properties
            options.add_provider_for_devices(openvino_plugin_devices()[0], {
                "load_config": json.dumps({OPENVINO_DEVICE: openvino_properties(config)})})
            self.session = ORT.InferenceSession(str(path), options)
        else:
            self.session = ORT.InferenceSession(str(path), options, providers=[config["provider"]])
        super().__init__(plan, {i.name for i in self.session.get_inputs()})
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of one inference on audio `x`."""
        return self.session.run(None, self.feed_for(x))

    def in_session(self) -> list[str]:
        """Providers the session really holds (onnxruntime may append CPU as fallback)."""
        return list(self.session.get_providers())

    def placement(self) -> Json:
        """How many of the session's nodes each provider was assigned (after onnxruntime's graph optimizations)."""
        by_provider: dict[str, int] = {}
        for subgraph in self.session.get_provider_graph_assignment_info():
            by_provider[subgraph.ep_name] = by_provider.get(subgraph.ep_name, 0) + len(subgraph.get_nodes())
        return {"nodes": sum(by_provider.values()), "by_provider": by_provider,
                "labelled": by_provider.get(self.provider, 0),
                "method": "onnxruntime get_provider_graph_assignment_info: the nodes of the optimized graph each "
                          "provider was assigned"}


class OpenVinoSession(FedSession):
    """One model compiled by native OpenVINO for the CPU with a thread count and a precision hint."""

    def __init__(self, path: Path, config: Json, plan: list[Json], perf_count: bool = False) -> None:
        openvino, _ = openvino_runtime()
        properties: dict[str, Any] = openvino_properties(config)
        if perf_count:
            properties["PERF_COUNT"] = "YES"
        self.compiled = openvino.Core().compile_model(str(path), OPENVINO_DEVICE, properties)
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.requested = config["precision"]
        self.request = self.compiled.create_infer_request()
        super().__init__(plan, {name for port in self.compiled.inputs for name in port.get_names()})
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of one inference on audio `x`, in graph order."""
        results = self.request.infer(self.feed_for(x))
        return [np.array(results[port]) for port in self.compiled.outputs]

    def in_session(self) -> list[str]:
        """The devices the compiled model executes on, as OpenVINO reports them."""
        return [f"openvino-{device}" for device in self.compiled.get_property("EXECUTION_DEVICES")]

    def placement(self) -> Json:
        """The execution graph's kernels, by device and by the precision each runs in."""
        precisions: dict[str, int] = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if info["layerType"].astype(str) not in OPENVINO_NOT_KERNELS:
                precision = info["runtimePrecision"].astype(str)
                precisions[precision] = precisions.get(precision, 0) + 1
        kernels = sum(precisions.values())
        devices = list(self.compiled.get_property("EXECUTION_DEVICES"))
        return {"nodes": kernels, "by_provider": {device: kernels for device in devices},
                "labelled": kernels if OPENVINO_DEVICE in devices else 0, "precisions": precisions,
                "precision_in_effect": self.precision,
                "method": "openvino CompiledModel.get_runtime_model(): the execution graph's kernels (inputs, "
                          "outputs and constants left out) with their runtimePrecision; EXECUTION_DEVICES"}

    def node_profile(self, x: np.ndarray, runs: int) -> Json:
        """Per-node times over `runs` inferences (PERF_COUNT, read after each), executed nodes only."""
        per_node: dict[str, Json] = {}
        for _ in range(runs):
            self.run(x)
            for index, info in enumerate(self.request.profiling_info):
                if info.status.name != "EXECUTED":
                    continue
                node = per_node.setdefault(info.node_name, {
                    "name": info.node_name, "op_type": info.node_type, "provider": f"openvino-{info.exec_type}",
                    "node_index": index, "durations_us": []})
                node["durations_us"].append(info.real_time.total_seconds() * 1e6)
        nodes = []
        for node in per_node.values():
            durations = node.pop("durations_us")
            nodes.append({**node, "calls": len(durations), "total_us": float(sum(durations)),
                          "median_us": float(np.median(durations))})
        return {"runs_profiled": runs, "nodes": nodes,
                "method": "openvino PERF_COUNT: real time of each executed node of the execution graph, read after "
                          "each of the runs that follow the warm-up, in microseconds; the execution graph's nodes "
                          "are OpenVINO's (fused), not the model's"}


class LiteRtSession:
    """One LiteRT interpreter resized to the workload shape; XNNPACK on or off."""

    def __init__(self, path: Path, config: Json, shape: tuple[int, ...]) -> None:
        resolver = LITERT.OpResolverType
        kind = resolver.AUTO if config["provider"] == "xnnpack" else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.kernels = config["provider"]
        self.interpreter = LITERT.Interpreter(
            model_path=str(path), num_threads=config["threads"], experimental_op_resolver_type=kind
        )
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"the runner feeds one input, the model has {len(inputs)}")
        self.input_index = inputs[0]["index"]
        if tuple(inputs[0]["shape"]) != shape:
            self.interpreter.resize_tensor_input(self.input_index, list(shape), strict=False)
        self.interpreter.allocate_tensors()
        outputs = self.interpreter.get_output_details()
        self.output_indices = [output["index"] for output in outputs]
        self.output_names = [output["name"] for output in outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of one inference on audio `x` (copied: the interpreter reuses its buffers)."""
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(index) for index in self.output_indices]

    def in_session(self) -> list[str]:
        """The kernel set this interpreter runs with."""
        return [f"litert-{self.kernels}"]

    def placement(self) -> None:
        """LiteRT's Python interpreter does not say which ops its delegate took."""
        return None


Session = OrtSession | OpenVinoSession | LiteRtSession
ENGINE_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "litert"}
SPIN_LABEL = {True: "spin", False: "nospin", None: "-"}


def engine_missing(engine: str) -> str | None:
    """Why an engine cannot run here, or None."""
    if engine == "openvino":
        return openvino_runtime()[1]
    return {"onnxruntime": ORT_MISSING, "litert": LITERT_MISSING}[engine]


def provider_missing(config: Json) -> str | None:
    """Why this run's engine or provider is unavailable on this machine, or None."""
    missing = engine_missing(config["engine"])
    if missing or config["engine"] != "onnxruntime":
        return missing
    provider = config["provider"]
    if config.get("precision"):
        return openvino_plugin_devices()[1]
    available = ORT.get_available_providers()
    if provider in available:
        return None
    if provider not in ORT.get_all_providers():
        return f"{provider} is not a provider name onnxruntime {ORT.__version__} knows"
    return (
        f"{provider} is not in onnxruntime.get_available_providers() = {available}: "
        f"this onnxruntime {ORT.__version__} build does not include it"
    )


def open_session(
    bundle_dir: Path, variant: Json, config: Json, shape: tuple[int, ...], profile_dir: str | None = None
) -> Session:
    """A ready session for this variant and run configuration, fed by the plan load_bundle gave the variant."""
    path = bundle_dir / variant["file"]
    if config["engine"] == "onnxruntime":
        return OrtSession(path, config, variant["inputs"], profile_dir)
    if config["engine"] == "openvino":
        return OpenVinoSession(path, config, variant["inputs"], perf_count=profile_dir is not None)
    return LiteRtSession(path, config, shape)


class PrecisionUnavailable(Exception):
    """OpenVINO does not apply the asked precision on this CPU: the setting does not exist here."""


def verified_session(bundle_dir: Path, variant: Json, config: Json, shape: tuple[int, ...],
                     profile_dir: str | None = None) -> tuple[Session, Json | None]:
    """A session whose placement was checked, and the placement: the labelled engine must run some node, and
    OpenVINO must run the precision asked."""
    session = open_session(bundle_dir, variant, config, shape, profile_dir)
    placement = session.placement()
    if isinstance(session, OpenVinoSession) and session.precision != session.requested:
        raise PrecisionUnavailable(f"OpenVINO runs {session.precision} on this CPU when asked for "
                                   f"{session.requested}: that precision does not exist here")
    if placement is not None and placement["labelled"] == 0:
        others = ", ".join(f"{n} on {name}" for name, n in placement["by_provider"].items()) or "none"
        raise PlacementError(f"placement: {config['provider']} executed none of the {placement['nodes']} nodes "
                             f"({others}); these numbers would not be {config['provider']}'s")
    return session, placement


# ---------------------------------------------------------------- measurements


def noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Deterministic int16-scale Gaussian noise, the audio every timed run sees."""
    audio = np.random.default_rng(seed).normal(0.0, NOISE_STD, size=shape)
    return np.clip(audio, -32768, 32767).astype(np.float32)


def timed_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call in milliseconds (perf_counter_ns)."""
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def latency_stats(samples: list[float]) -> Json:
    """Median, p90, p99 (numpy linear percentiles), min, mean, max and stdev of latencies in ms."""
    a = np.asarray(samples, dtype=np.float64)
    return {
        "n": int(a.size),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "min": float(a.min()),
        "mean": float(a.mean()),
        "max": float(a.max()),
        "stdev": float(a.std(ddof=1)) if a.size > 1 else 0.0,
    }


def parse_ort_profile(trace: list[Json], skip_runs: int) -> Json:
    """Per-node kernel times from an onnxruntime trace, dropping the first `skip_runs` model runs (warm-up)."""
    model_runs = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
                        key=lambda e: e["ts"])
    kept = model_runs[skip_runs:]
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in kept]
    per_node: dict[str, Json] = {}
    for event in trace:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        if not any(lo <= event["ts"] <= hi for lo, hi in windows):
            continue
        args = event.get("args", {})
        name = event["name"][: -len("_kernel_time")]
        node = per_node.setdefault(name, {
            "name": name, "op_type": args.get("op_name"), "provider": args.get("provider"),
            "node_index": int(args.get("node_index", -1)), "durations_us": [],
        })
        node["durations_us"].append(event["dur"])
    nodes = []
    for node in sorted(per_node.values(), key=lambda n: n["node_index"]):
        durations = node.pop("durations_us")
        node.update(calls=len(durations), total_us=int(sum(durations)), median_us=float(np.median(durations)))
        nodes.append(node)
    run_us = [e["dur"] for e in kept]
    return {
        "runs_profiled": len(kept),
        "model_run_median_us": float(np.median(run_us)) if run_us else None,
        "method": "onnxruntime enable_profiling trace, *_kernel_time events inside model_run events "
                  "after the warm-up; time per node in microseconds",
        "nodes": nodes,
    }


def node_profile(bundle_dir: Path, variant: Json, config: Json, x: np.ndarray, warmup: int, runs: int) -> Json:
    """Per-node profile from a separate profiling session doing the same warm-up and runs: onnxruntime's trace
    or OpenVINO's PERF_COUNT; LiteRT's Python interpreter has none."""
    if config["engine"] == "litert":
        return LITERT_NO_PROFILE
    with tempfile.TemporaryDirectory(prefix="ortprof") as folder:
        session = open_session(bundle_dir, variant, config, x.shape, profile_dir=folder)
        if isinstance(session, OpenVinoSession):
            for _ in range(warmup):
                session.run(x)
            return session.node_profile(x, runs)
        assert isinstance(session, OrtSession)  # LiteRT returned above
        for _ in range(warmup + runs):
            session.run(x)
        trace_path = session.session.end_profiling()
        with open(trace_path, encoding="utf-8") as handle:
            trace = json.load(handle)
    return parse_ort_profile(trace, skip_runs=warmup)


LITERT_NO_PROFILE = {"nodes": None, "reason": "LiteRT's Python Interpreter exposes no per-op profiler"}


def measure_run(bundle_dir: Path, variant: Json, config: Json, workload: Json, settings: Json, seed: int) -> Json:
    """Session creation, first inference, warm-up, timed runs and the per-node profile of one configuration."""
    shape = (int(workload["batch"]), int(workload["samples"]))
    x = noise(shape, seed)
    created = time.perf_counter_ns()
    session, placement = verified_session(bundle_dir, variant, config, shape)
    create_ms = (time.perf_counter_ns() - created) / 1e6
    first_ms = timed_ms(lambda: session.run(x))
    output_shape = list(np.shape(session.run(x)[0]))
    for _ in range(settings["warmup"]):
        session.run(x)
    latencies = [timed_ms(lambda: session.run(x)) for _ in range(settings["runs"])]
    profile = node_profile(bundle_dir, variant, config, x, settings["warmup"], settings["runs"])
    return {
        "status": "ok",
        "input_shape": list(shape),
        "output_shape": output_shape,
        "session_providers": session.in_session(),
        "placement": placement,
        "session_create_ms": create_ms,
        "first_inference_ms": first_ms,
        "warmup": settings["warmup"],
        "latency_ms": latency_stats(latencies),
        "timer": "time.perf_counter_ns around one inference",
        "profile": profile,
    }


def paced(step: Callable[[int], object], rate_hz: float, chunks: int) -> Json:
    """Call step(i) for chunk i on a fixed schedule at rate_hz (sleeping to each chunk's slot, never catching up
    by skipping): wall and process CPU time over the stream, wall ending at the last chunk's slot, and each
    call's latency; the one streaming measurement, used by the runner and by toolkit.wakeword."""
    period = 1.0 / rate_hz
    latencies = []
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for i in range(chunks):
        delay = wall_start + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        latencies.append(timed_ms(functools.partial(step, i)))
    tail = wall_start + chunks * period - time.perf_counter()
    if tail > 0:
        time.sleep(tail)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    return {"wall_s": wall, "cpu_s": cpu, "cpu_share": cpu / wall, "latencies_ms": latencies,
            "deadline_misses": sum(1 for ms in latencies if ms > period * 1000.0)}


STREAMING_METHOD = ("chunks fed on a fixed schedule at rate_hz; cpu_share = time.process_time() (all threads of "
                    "the process) / wall time over the stream, wall ending at the last chunk's slot")


def measure_streaming(bundle_dir: Path, variant: Json, config: Json, streaming: Json, settings: Json,
                      seed: int) -> Json:
    """Feed chunks at the real rate; CPU share of one core = process CPU time / wall time over the whole stream."""
    shape = (1, int(streaming["chunk_samples"]))
    x = noise(shape, seed)
    session, placement = verified_session(bundle_dir, variant, config, shape)
    for _ in range(settings["warmup"]):
        session.run(x)
    rate = float(streaming["rate_hz"])
    chunks = max(1, round(settings["streaming_seconds"] * rate))
    stream = paced(lambda _: session.run(x), rate, chunks)
    share = stream["cpu_share"]
    return {
        "status": "ok",
        "chunks": chunks,
        "chunk_samples": shape[1],
        "rate_hz": rate,
        "wall_s": stream["wall_s"],
        "cpu_s": stream["cpu_s"],
        "cpu_share": share,
        "latency_ms": latency_stats(stream["latencies_ms"]),
        "deadline_misses": stream["deadline_misses"],
        "streams_per_core": math.floor(1.0 / share) if share > 0 else None,
        "placement": placement,
        "method": STREAMING_METHOD + "; streams_per_core = floor(1 / cpu_share), ignoring contention between "
                  "streams",
    }


# ---------------------------------------------------------------- the plan


def _spinning(matrix: Json, threads: int) -> list[bool]:
    """Spin settings worth measuring: one thread has no intra-op workers to spin, so only the first value."""
    values = [bool(v) for v in matrix.get("allow_spinning", [True])]
    return values if threads > 1 else values[:1]


def _config(engine: str, provider: str, threads: int, spinning: bool | None = None, optimization: str | None = None,
            precision: str | None = None) -> Json:
    """One run configuration, its fields in CONFIG_FIELDS order."""
    return dict(zip(CONFIG_FIELDS, (engine, provider, int(threads), spinning, optimization, precision), strict=True))


def openvino_configs(bundle: Json) -> list[Json]:
    """The bundle's OpenVINO settings: each engine form x threads x precision (none when it asks for none)."""
    openvino = bundle.get("openvino")
    if not openvino:
        return []
    forms = {"native": ("openvino", OPENVINO_DEVICE, None),
             "plugin": ("onnxruntime", OPENVINO_PLUGIN, openvino.get("optimization", "all"))}
    return [_config(forms[form][0], forms[form][1], t, None, forms[form][2], precision)
            for form in openvino["engines"] for t in openvino["threads"] for precision in openvino["precision"]]


def run_configs(bundle: Json, variant: Json) -> list[Json]:
    """Every configuration this variant is measured with: onnxruntime's matrix first (its first entry is the
    one-thread CPU provider that predictions assume), then OpenVINO's settings; LiteRT's kernel sets for TFLite."""
    engine = ENGINE_OF_FORMAT[variant["format"]]
    if engine == "onnxruntime":
        matrix = bundle["matrix"]
        return [
            _config(engine, p, t, s, o)
            for p in matrix["providers"] for t in matrix["intra_op_threads"] for s in _spinning(matrix, int(t))
            for o in matrix["graph_optimization"]
        ] + openvino_configs(bundle)
    litert = bundle["litert"]
    provider = "xnnpack" if litert.get("xnnpack", True) else "builtin"
    return [_config(engine, provider, t) for t in litert["threads"]]


def setting(config: Json) -> tuple[str, str, str | None]:
    """The engine setting of a configuration: what it runs on and in which precision, whatever its threads."""
    return config["engine"], config["provider"], config["precision"]


def first_of_each(indexed: list[tuple[int, Json]], identity: Callable[[Json], object]) -> list[tuple[int, Json]]:
    """Of (index, configuration) pairs, the first of each identity, in order."""
    seen: set[object] = set()
    found = []
    for index, config in indexed:
        if identity(config) not in seen:
            seen.add(identity(config))
            found.append((index, config))
    return found


def streaming_configs(bundle: Json, variant: Json) -> list[Json]:
    """Streaming runs once per engine setting, thread count and spinning, at the first listed optimization level."""
    indexed = list(enumerate(run_configs(bundle, variant)))
    return [config for _, config in first_of_each(indexed, lambda c: (*setting(c), c["threads"], c["spinning"]))]


def setting_label(config: Json) -> str | None:
    """The engine setting whose numerics differ from the variant's own (an OpenVINO precision), or None."""
    precision = config.get("precision")
    return None if precision is None else f"{config['engine']}.{config['provider']}.{precision}"


def output_name(variant: str, config: Json) -> str:
    """Which signal-pass outputs a run's numbers belong to: the variant's, or the variant's under that setting."""
    label = setting_label(config)
    return variant if label is None else f"{variant}@{label}"


def counted_configs(bundle: Json, variant: Json, ran: Callable[[Json], bool]) -> list[tuple[int, Json]]:
    """(index, configuration) that instructions are counted in for a variant: the first (fewest threads) of each
    engine setting, among those that `ran` (an ok run where the runs were made)."""
    return first_of_each([(i, c) for i, c in enumerate(run_configs(bundle, variant)) if ran(c)], setting)


def run_key(kind: str, variant: str, config: Json, workload: str | None = None) -> str:
    """Stable identity of one run, used by --resume."""
    parts = [kind, variant, config["engine"], config["provider"], f"t{config['threads']}",
             SPIN_LABEL[config["spinning"]], config["optimization"] or "-"]
    if config.get("precision"):
        parts.append(config["precision"])
    return "|".join([*parts, workload] if workload else parts)


def describe(variant: Json, config: Json) -> Json:
    """The fields every run record starts with."""
    return {"variant": variant["name"], "format": variant["format"], **config}


# ---------------------------------------------------------------- platform


def read_cpuinfo() -> Json:
    """CPU model, flags and identifying fields of the first processor in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": platform.processor() or None, "flags": [], "fields": {}}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    model = next((fields[k] for k in ("model name", "Model", "Hardware", "CPU part") if fields.get(k)), None)
    return {"model": model, "flags": flags, "fields": {k: fields[k] for k in CPUINFO_FIELDS if k in fields}}


def dist_version(name: str | None) -> str | None:
    """Installed version of a distribution, or None."""
    if not name:
        return None
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def platform_info() -> Json:
    """Where the numbers were measured: machine, Python, libc, library versions and the CPU."""
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "glibc": " ".join(part for part in platform.libc_ver() if part) or None,
        "numpy": np.__version__,
        "onnxruntime": ORT.__version__ if ORT else None,
        "onnxruntime_available_providers": ORT.get_available_providers() if ORT else [],
        "litert": dist_version(LITERT_DIST),
        "litert_package": LITERT_DIST,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": read_cpuinfo(),
    }


# ---------------------------------------------------------------- files


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write through a temp file in the same folder, then os.replace: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def outputs_path(result_path: Path) -> Path:
    """RESULT.json -> RESULT.outputs.npz in the same folder."""
    return result_path.with_name(result_path.stem + ".outputs.npz")


def output_key(variant: str, signal: str, index: int) -> str:
    """The outputs npz key of one output of one variant on one signal."""
    return f"{variant}/{signal}" + (f"/{index}" if index else "")


def load_bundle(bundle_dir: Path, only: list[str] | None) -> tuple[Json, list[Json]]:
    """bundle.json and the selected variants, each with the bundle's feed plan and its file checked against its
    sha256 (an scp can be cut short)."""
    path = bundle_dir / "bundle.json"
    if not path.is_file():
        raise BundleError(f"{path} not found; pass the folder make_bundle wrote")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    if bundle.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format_version {bundle.get('format_version')!r}, this runner reads "
                          f"{FORMAT_VERSION}; rebuild the bundle with this toolkit")
    names = [v["name"] for v in bundle["variants"]]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise BundleError(f"--only {', '.join(unknown)}: not in the bundle; its variants are {', '.join(names)}")
    variants = [{**v, "inputs": bundle["inputs"]} for v in bundle["variants"] if not only or v["name"] in only]
    for variant in variants:
        file = bundle_dir / variant["file"]
        if not file.is_file() or sha256(file) != variant["sha256"]:
            raise BundleError(f"{file} is missing or differs from its sha256 in bundle.json; copy the bundle again")
    return bundle, variants


def now_utc() -> str:
    """ISO 8601 UTC timestamp."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Recorder:
    """The result document: rewritten atomically after each finished run, resumable by run key."""

    def __init__(self, out: Path, bundle_dir: Path, settings: Json, resume: bool) -> None:
        self.out = out
        self.outputs_file = outputs_path(out)
        bundle_sha = sha256(bundle_dir / "bundle.json")
        bundle = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
        self.arrays: dict[str, np.ndarray] = {}
        if resume and out.is_file():
            self.doc = json.loads(out.read_text(encoding="utf-8"))
            if self.doc["bundle"]["sha256"] != bundle_sha or self.doc["settings"] != settings:
                raise BundleError(f"{out} was made from another bundle or other settings; drop --resume or "
                                  "write to another --out")
            if self.outputs_file.is_file():
                with np.load(self.outputs_file) as npz:
                    self.arrays = {k: npz[k] for k in npz.files}
            else:  # the arrays are gone: their signal pass must run again
                self.doc["outputs"]["variants"] = {}
        else:
            self.doc = {
                "format_version": FORMAT_VERSION, "complete": False, "started_utc": now_utc(),
                "bundle": {"sha256": bundle_sha, "target": bundle.get("target"),
                           "variants": [{k: v[k] for k in ("name", "format", "sha256")} for v in bundle["variants"]]},
                "settings": settings,
                "outputs": {"file": self.outputs_file.name, "variants": {}},
                "runs": [], "streaming": [],
            }
        self.doc["platform"] = platform_info()
        self.crashed = self.doc.pop("running", None)  # a key here: the last process died inside that unit
        self.done = {r["key"] for r in self.doc["runs"] + self.doc["streaming"]}
        self.done |= {f"outputs|{name}" for name in self.doc["outputs"]["variants"]}

    def begin(self, key: str) -> None:
        """Mark the unit about to run, so that a resumed runner knows which one a dead process was in."""
        self.doc["running"] = key
        self.save()

    def add(self, section: str, record: Json) -> None:
        """Append one finished run and save."""
        self.doc.pop("running", None)
        self.doc[section].append(record)
        self.done.add(record["key"])
        self.save()

    def add_outputs(self, name: str, record: Json, arrays: dict[str, np.ndarray]) -> None:
        """Store one variant's outputs on the signal set and save both files."""
        self.doc.pop("running", None)
        self.arrays.update(arrays)
        # mypy matches **arrays to allow_pickle, a keyword NumPy < 2.1 lacks
        write_atomic(self.outputs_file, lambda h: np.savez(h, **self.arrays), binary=True)  # type: ignore[arg-type]
        self.doc["outputs"]["variants"][name] = record
        self.done.add(f"outputs|{name}")
        self.save()

    def save(self, complete: bool = False) -> None:
        """Rewrite RESULT.json atomically."""
        self.doc["complete"] = complete
        self.doc["updated_utc"] = now_utc()
        write_atomic(self.out, lambda h: json.dump(self.doc, h, indent=1))


# ---------------------------------------------------------------- phases


def refusal(error: Exception) -> Json:
    """A run that could not be measured: unavailable (the setting does not exist here) or failed, with why."""
    if isinstance(error, PrecisionUnavailable):
        return {"status": "unavailable", "reason": str(error)}
    if isinstance(error, PlacementError):
        return {"status": "failed", "reason": str(error)}
    return {"status": "failed", "reason": f"{type(error).__name__}: {error}"[:2000]}


def guarded(measure: Callable[[], Json], config: Json) -> Json:
    """The measurement, or `unavailable` / `failed` with the reason; one bad run never stops the others."""
    missing = provider_missing(config)
    if missing:
        return {"status": "unavailable", "reason": missing}
    try:
        return measure()
    except Exception as error:
        return refusal(error)


def outputs_configs(bundle: Json, variant: Json) -> list[Json]:
    """The configurations the signal pass uses: the variant's own numerics (the first configuration with no
    precision whose provider is available here) and the first (fewest threads) of each engine setting that has
    its own, so every setting is gated on its own outputs."""
    configs = run_configs(bundle, variant)
    plain = [c for c in configs if setting_label(c) is None]
    labelled = [(i, c) for i, c in enumerate(configs) if setting_label(c) is not None]
    return [next((c for c in plain if not provider_missing(c)), plain[0]),
            *(config for _, config in first_of_each(labelled, setting_label))]


def signal_outputs(
    bundle_dir: Path, variant: Json, config: Json, signals: dict[str, np.ndarray]
) -> tuple[Json, dict[str, np.ndarray]]:
    """Run the variant in `config` once on every signal; per-signal status, and the arrays keyed
    output_name/signal.

    One onnxruntime or OpenVINO session serves every shape; LiteRT gets one interpreter per shape (it is resized).
    """
    name_out = output_name(variant["name"], config)
    record: Json = {"variant": variant["name"], "config": config, "signals": {}}
    arrays: dict[str, np.ndarray] = {}
    missing = provider_missing(config)
    if missing:
        record.update(status="unavailable", reason=missing)
        return record, arrays
    sessions: dict[tuple[int, ...] | None, Any] = {}
    for name, audio in signals.items():
        try:
            shape = audio.shape if config["engine"] == "litert" else None
            if shape not in sessions:
                sessions[shape] = verified_session(bundle_dir, variant, config, audio.shape)[0]
            session = sessions[shape]
            results = [np.array(r) for r in session.run(audio.astype(np.float32, copy=False))]
            arrays.update({output_key(name_out, name, k): r for k, r in enumerate(results)})
            record["signals"][name] = {"status": "ok", "shape": list(results[0].shape),
                                       "outputs": session.output_names}
        except Exception as error:
            record["signals"][name] = refusal(error)
    statuses = [s["status"] for s in record["signals"].values()]
    ok = statuses.count("ok")
    record["status"] = "ok" if ok == len(signals) else "partial" if ok else (
        "unavailable" if "unavailable" in statuses else "failed")
    if ok == 0:
        record["reason"] = next(s["reason"] for s in record["signals"].values())
    return record, arrays


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def plan(bundle: Json, variants: list[Json]) -> list[tuple[str, str, Json, Json, Json | None]]:
    """Every unit of work in order: signal outputs first (the accuracy gate needs them most), runs, streaming."""
    work: list[tuple[str, str, Json, Json, Json | None]] = []
    for v in variants:
        for config in outputs_configs(bundle, v):
            work.append(("outputs", f"outputs|{output_name(v['name'], config)}", v, config, None))
    for v in variants:
        for config in run_configs(bundle, v):
            for w in bundle["workloads"]:
                work.append(("runs", run_key("run", v["name"], config, w["name"]), v, config, w))
    for v in variants:
        for config in streaming_configs(bundle, v):
            work.append(("streaming", run_key("stream", v["name"], config), v, config, None))
    return work


class TimeLeft:
    """What the rest of a plan takes: a stream whose engine is here runs its full seconds in real time, so it
    costs those plus the average of the other units; every other unit costs that average."""

    def __init__(self, work: list[tuple[str, str, Json, Json, Json | None]], stream_seconds: float) -> None:
        self.streams = sum(1 for section, _, _, config, _ in work if section == "streaming" and
                           not provider_missing(config))
        self.others = len(work) - self.streams
        self.stream_seconds = stream_seconds
        self.spent, self.timed = 0.0, 0

    def finished(self, section: str, config: Json, seconds: float) -> None:
        """One unit done in `seconds` (a stream's real-time part is not part of the average)."""
        if section == "streaming" and not provider_missing(config):
            self.streams -= 1
            seconds = max(0.0, seconds - self.stream_seconds)
        else:
            self.others -= 1
        self.spent, self.timed = self.spent + seconds, self.timed + 1

    def words(self) -> str:
        """' (about N s left)', or nothing before any unit was timed."""
        if not self.timed:
            return ""
        average = self.spent / self.timed
        return f" (about {self.streams * (self.stream_seconds + average) + self.others * average:.0f} s left)"


def execute(bundle_dir: Path, out: Path, quick: bool, only: list[str] | None, resume: bool) -> Json:
    """Run the whole plan, recording after each unit; returns the result document."""
    bundle, variants = load_bundle(bundle_dir, only)
    settings = {
        "warmup": QUICK["warmup"] if quick else int(bundle["warmup"]),
        "runs": QUICK["runs"] if quick else int(bundle["runs"]),
        "streaming_seconds": QUICK["streaming_seconds"] if quick else float(bundle["streaming"]["seconds"]),
        "quick": quick,
    }
    recorder = Recorder(out, bundle_dir, settings, resume)
    with np.load(bundle_dir / bundle["signals"]) as npz:
        signals = {k: npz[k] for k in npz.files}
    seed = int(bundle.get("seed", 0))
    work = plan(bundle, variants)
    told: set[str] = set()  # reasons already printed in full
    left = TimeLeft([w for w in work if w[1] not in recorder.done], settings["streaming_seconds"])
    try:
        for index, (section, key, variant, config, workload) in enumerate(work, 1):
            started = time.monotonic()
            if key in recorder.done:
                progress(f"[{index}/{len(work)}] {key}: already in {out.name}, skipped")
                continue
            if key == recorder.crashed:  # it killed the last process: record that and go on, never rerun it
                record_crash(recorder, section, key, variant, config, workload)
                progress(f"[{index}/{len(work)}] {key}: failed: {CRASHED}")
                continue
            recorder.begin(key)
            if section == "outputs":
                record, arrays = signal_outputs(bundle_dir, variant, config, signals)
                recorder.add_outputs(output_name(variant["name"], config), record, arrays)
                left.finished(section, config, time.monotonic() - started)
                progress(f"[{index}/{len(work)}] {key}: {record['status']}{left.words()}")
                continue
            if section == "runs":
                assert workload is not None  # plan gives every run its workload
                measure = functools.partial(measure_run, bundle_dir, variant, config, workload, settings, seed)
                record = {"key": key, **describe(variant, config), "workload": workload["name"]}
            else:
                measure = functools.partial(
                    measure_streaming, bundle_dir, variant, config, bundle["streaming"], settings, seed
                )
                record = {"key": key, **describe(variant, config)}
            record.update(guarded(measure, config))
            recorder.add(section, record)
            left.finished(section, config, time.monotonic() - started)
            progress(f"[{index}/{len(work)}] {key}: {summary(record, told)}{left.words()}")
    except KeyboardInterrupt:  # Ctrl-C is not a crash: the unit it stopped runs again on --resume
        recorder.doc.pop("running", None)
        recorder.save()
        raise
    recorder.save(complete=True)
    return recorder.doc


def record_crash(recorder: Recorder, section: str, key: str, variant: Json, config: Json,
                 workload: Json | None) -> None:
    """The unit a dead runner was in, recorded as failed like any other failed run."""
    if section == "outputs":
        recorder.add_outputs(output_name(variant["name"], config), {
            "variant": variant["name"], "config": config, "signals": {}, "status": "failed", "reason": CRASHED}, {})
        return
    where = {"workload": workload["name"]} if workload else {}
    recorder.add(section, {"key": key, **describe(variant, config), **where, "status": "failed", "reason": CRASHED})


def summary(record: Json, told: set[str]) -> str:
    """Short human line for progress output; a reason already printed once is not repeated."""
    if record["status"] != "ok":
        reason = record["reason"]
        if reason in told:
            return f"{record['status']} (as above)"
        told.add(reason)
        return f"{record['status']}: {reason[:160]}"
    text = f"median {record['latency_ms']['median']:.3f} ms"
    return text + (f", cpu share {record['cpu_share']:.3f}" if "cpu_share" in record else "")


# Offset of the lseek(-1, ...) calls that mark count_only's segments: "melstart".
COUNT_MARK = 0x6D656C7374617274


def count_mark() -> None:
    """A system call that fails (EBADF) and does nothing else: the instruction-counting QEMU plugin
    (plugins/insnclass.c) snapshots its counters at each one, so the counts between two marks are exactly the
    inferences run between them."""
    with contextlib.suppress(OSError):
        os.lseek(-1, COUNT_MARK, os.SEEK_SET)


def count_only(bundle_dir: Path, name: str, workload_name: str, repeat: int, segments: int, warmup: int,
               config_index: int) -> None:
    """Open the session, `warmup` untimed inferences, then two marks with nothing between them, then `segments`
    segments of `repeat` inferences, each followed by a mark; nothing measured or written.

    Imports, session creation and the warm-up fall before the first mark (the first inferences execute up to
    0.5 % more instructions than later ones). The empty segment is what one mark itself costs (the call before
    its system call, the failed call's exception after it), to be taken off every segment, so each segment less
    it is exactly `repeat` steady-state inferences.
    """
    bundle, variants = load_bundle(bundle_dir, [name])
    workloads = {w["name"]: w for w in bundle["workloads"]}
    if workload_name not in workloads:
        raise BundleError(f"--workload {workload_name}: not in the bundle; use one of {', '.join(workloads)}")
    configs = run_configs(bundle, variants[0])
    if not 0 <= config_index < len(configs):
        raise BundleError(f"--config {config_index}: use 0..{len(configs) - 1}")
    config = configs[config_index]
    missing = provider_missing(config)
    if missing:
        raise BundleError(missing)
    workload = workloads[workload_name]
    shape = (int(workload["batch"]), int(workload["samples"]))
    x = noise(shape, int(bundle.get("seed", 0)))
    session = open_session(bundle_dir, variants[0], config, shape)
    for _ in range(warmup):
        session.run(x)
    count_mark()
    count_mark()
    for _ in range(segments):
        for _ in range(repeat):
            session.run(x)
        count_mark()
    progress(f"count-only {name} {run_key('run', name, config, workload_name)}: {segments} x {repeat} "
             f"inferences after {warmup} warm-up")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the runner."""
    parser = argparse.ArgumentParser(description="Measure a bench bundle's variants; see the module docstring.")
    parser.add_argument("bundle_dir", type=Path)
    parser.add_argument("--out", type=Path, help="RESULT.json to write (outputs npz goes beside it)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['warmup']} warm-up, {QUICK['runs']} runs, {QUICK['streaming_seconds']} s streams")
    parser.add_argument("--only", action="append", metavar="VARIANT", help="measure only this variant (repeatable)")
    parser.add_argument("--resume", action="store_true", help="keep runs already in --out and skip them")
    parser.add_argument("--count-only", metavar="VARIANT", help="run --repeat inferences and nothing else")
    parser.add_argument("--workload", help="workload name for --count-only")
    parser.add_argument("--repeat", type=int, default=0, help="inferences per segment for --count-only")
    parser.add_argument("--segments", type=int, default=1, help="segments of --repeat inferences for --count-only")
    parser.add_argument("--warmup", type=int, default=1, help="inferences before the first mark, for --count-only")
    parser.add_argument("--config", type=int, default=0,
                        help="index into the variant's run configurations for --count-only (default: the first)")
    args = parser.parse_args(argv)
    if args.count_only and not args.workload:
        parser.error("--count-only needs --workload")
    if not args.count_only and not args.out:
        parser.error("--out is required")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad bundles and arguments are one line on stderr and exit 2."""
    args = parse_args(argv)
    try:
        if args.count_only:
            count_only(args.bundle_dir, args.count_only, args.workload, args.repeat, args.segments, args.warmup,
                       args.config)
        else:
            execute(args.bundle_dir, args.out, args.quick, args.only, args.resume)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept in the result file; rerun with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
