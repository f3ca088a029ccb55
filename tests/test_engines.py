"""OpenVINO beside onnxruntime's CPU provider: real native OpenVINO and real plugin-EP sessions in the bundle's
runner, their placement read from the engines, each precision gated on its own outputs, and the trap of naming
the plugin EP as a plain provider (onnxruntime then runs every node on the CPU provider) refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import TEST_HOST_TARGET
from toolkit import accuracy
from toolkit.files import read_json
from toolkit.melgraph import default_model, save_model
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.profiling import runner
from toolkit.profiling.bundle import make_bundle

pytest.importorskip("openvino", reason="the OpenVINO extra is not installed: pip install -e '.[openvino]'")
pytest.importorskip("onnxruntime_ep_openvino", reason="the OpenVINO plugin EP has x86-64 wheels only")

# The plugin EP named as a plain onnxruntime provider, beside the OpenVINO table the toolkit drives it through.
OPENVINO_TARGET = TEST_HOST_TARGET.replace(
    'providers = ["CPUExecutionProvider", "XnnpackExecutionProvider"]',
    'providers = ["CPUExecutionProvider", "OpenVINOExecutionProvider"]',
).replace("[policy]", '[openvino]\nengines = ["native", "plugin"]\nthreads = [1]\nprecision = ["f32", "f16"]\n\n'
                      "[policy]")
Json = dict[str, Any]


def write_target(folder: Path, name: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(OPENVINO_TARGET.format(name=name), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Json]:
    """The default mel graph through every engine of the target, quick settings, in the runner subprocess."""
    work = tmp_path_factory.mktemp("engines")
    mel = work / "mel.onnx"
    save_model(default_model(), mel)
    bundle = make_bundle([("original", mel, "onnx")], str(write_target(work, "ovhost")),
                         accuracy.signal_set(16000), work / "bundle")
    out = work / "result.json"
    done = subprocess.run([sys.executable, str(bundle / "runner.py"), str(bundle), "--out", str(out), "--quick"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, read_json(out, "result")


def stream_runs(document: Json) -> dict[tuple[str, str, str | None], Json]:
    return {(r["engine"], r["provider"], r["precision"]): r for r in document["runs"] if r["workload"] == "stream"}


def test_native_openvino_runs_every_kernel_on_the_cpu_in_the_precision_asked(measured: tuple[Path, Json]) -> None:
    run = stream_runs(measured[1])[("openvino", "CPU", "f32")]
    assert run["status"] == "ok", run.get("reason")
    placement = run["placement"]
    assert placement["nodes"] > 0 and placement["labelled"] == placement["nodes"]
    assert placement["by_provider"] == {"CPU": placement["nodes"]}
    assert placement["precision_in_effect"] == "f32" and set(placement["precisions"]) <= {"f32", "i32", "i64"}
    assert run["session_providers"] == ["openvino-CPU"]
    assert run["profile"]["nodes"] and all(node["total_us"] >= 0 for node in run["profile"]["nodes"])


PLUGIN_CPU_PROBE = """
import onnxruntime as ort, onnxruntime_ep_openvino as plugin
ort.register_execution_provider_library("OpenVINOExecutionProvider", plugin.get_library_path())
cpus = [d for d in ort.get_ep_devices() if d.device.type == ort.OrtHardwareDeviceType.CPU]
print(any(d.ep_name == "OpenVINOExecutionProvider" for d in cpus), cpus[0].device.vendor)
"""


@pytest.fixture(scope="module")
def plugin_cpu() -> tuple[bool, str]:
    """(whether the plugin EP lists this CPU, onnxruntime's name for the CPU's vendor), asked of onnxruntime in a
    process of its own: the plugin's discovery lists Intel hardware only, so on an AMD host it has no device."""
    done = subprocess.run([sys.executable, "-c", PLUGIN_CPU_PROBE], capture_output=True, text=True, check=True)
    listed, vendor = done.stdout.split()
    return listed == "True", vendor


def assert_unavailable_for_want_of_a_device(run: Json, vendor: str) -> None:
    assert run["status"] == "unavailable"
    assert run["reason"] == ("the OpenVINO plugin EP offers no CPU device here (it lists Intel devices only, and "
                             f"onnxruntime sees this CPU as {vendor}'s)")


def test_the_plugin_ep_is_driven_through_its_devices_and_its_placement_counted(
        measured: tuple[Path, Json], plugin_cpu: tuple[bool, str]) -> None:
    """Where the plugin lists the CPU it runs and every labelled node is its own; where it does not (a CPU not
    Intel's), the run is unavailable and says why, never a run on another provider under its name."""
    run = stream_runs(measured[1])[("onnxruntime", runner.OPENVINO_PLUGIN, "f32")]
    listed, vendor = plugin_cpu
    if not listed:
        assert_unavailable_for_want_of_a_device(run, vendor)
        return
    assert run["status"] == "ok", run.get("reason")
    assert run["placement"]["labelled"] > 0
    assert run["placement"]["by_provider"][runner.OPENVINO_PLUGIN] == run["placement"]["labelled"]


def test_naming_the_plugin_as_a_plain_provider_is_refused_for_its_placement(
        measured: tuple[Path, Json], plugin_cpu: tuple[bool, str]) -> None:
    """providers=["OpenVINOExecutionProvider"] silently runs every node on the CPU provider: never labelled so
    (and where the plugin lists no CPU, onnxruntime does not offer the name at all: unavailable, saying so)."""
    run = stream_runs(measured[1])[("onnxruntime", runner.OPENVINO_PLUGIN, None)]
    if not plugin_cpu[0]:
        assert run["status"] == "unavailable"
        assert run["reason"].startswith("OpenVINOExecutionProvider is not in onnxruntime.get_available_providers()")
        return
    assert run["status"] == "failed"
    assert run["reason"].startswith("placement: OpenVINOExecutionProvider executed none of the")
    assert "on CPUExecutionProvider" in run["reason"]


def test_each_precision_has_its_own_signal_pass(measured: tuple[Path, Json]) -> None:
    out, document = measured
    outputs = document["outputs"]["variants"]
    assert {"original", "original@openvino.CPU.f32", "original@openvino.CPU.f16",
            "original@onnxruntime.OpenVINOExecutionProvider.f32"} <= set(outputs)
    with np.load(runner.outputs_path(out)) as npz:
        reference = npz["original/sweep-10dBFS"]
        f32 = npz["original@openvino.CPU.f32/sweep-10dBFS"]
    assert f32.shape == reference.shape and np.max(np.abs(f32 - reference)) < 0.01  # dB


def test_a_precision_openvino_does_not_apply_here_is_unavailable_not_relabelled(
        measured: tuple[Path, Json]) -> None:
    """Whatever this CPU is: f16 either ran in f16 or is unavailable with the precision OpenVINO ran instead."""
    run = stream_runs(measured[1])[("openvino", "CPU", "f16")]
    if run["status"] == "ok":
        assert run["placement"]["precision_in_effect"] == "f16" and run["placement"]["precisions"].get("f16", 0) > 0
    else:
        assert run["status"] == "unavailable" and "when asked for f16" in run["reason"]


def test_a_missing_openvino_package_makes_its_runs_unavailable(measured: tuple[Path, Json], tmp_path: Path) -> None:
    bundle = measured[0].parent / "bundle"
    block = ("import sys; sys.modules['openvino'] = None; sys.modules['onnxruntime_ep_openvino'] = None; "
             f"sys.path.insert(0, {str(bundle)!r}); import runner; "
             f"sys.exit(runner.main([{str(bundle)!r}, '--out', {str(tmp_path / 'r.json')!r}, '--quick']))")
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = stream_runs(read_json(tmp_path / "r.json", "result"))
    assert runs[("onnxruntime", "CPUExecutionProvider", None)]["status"] == "ok"
    assert runs[("openvino", "CPU", "f32")]["status"] == "unavailable"
    assert runs[("openvino", "CPU", "f32")]["reason"].startswith("openvino is not importable here")
    assert runs[("onnxruntime", runner.OPENVINO_PLUGIN, "f32")]["reason"].startswith(
        "the OpenVINO plugin EP is not importable here")


@pytest.mark.slow
def test_the_pipeline_gates_each_precision_and_never_chooses_a_failing_one(tmp_path: Path) -> None:
    """int16-scale audio squared overflows f16 (65504): OpenVINO's f16 setting fails the gate where it ran, with
    its error shown, while f32 passes; the choice rejects every f16 configuration for it."""
    settings = Settings(target=str(write_target(tmp_path, "ovpipe")), variants=("original",), quick=True,
                        build_root=tmp_path / "build", artifacts_root=tmp_path / "artifacts")
    folder = run_pipeline(settings).folder
    verdicts = read_json(folder / "platform.json", "platform")["accuracy"]
    assert verdicts["original@openvino.CPU.f32"]["passed"] is True
    if "original@openvino.CPU.f16" in verdicts:  # present where this CPU runs f16
        f16 = verdicts["original@openvino.CPU.f16"]
        assert f16["passed"] is False and float(f16["report"]["overall"]["max_abs_db"]) > 0.5  # "inf" in JSON
        assert f16["reasons"][0].startswith("max |dB error|")
        rejected = [r for r in read_json(folder / "choice.json", "choice")["rejected"] if r["precision"] == "f16"]
        assert rejected and all(any(runner.output_name("original", r) in f for f in r["fails"]) for r in rejected)
