"""The real aarch64 onnxruntime and LiteRT under qemu-aarch64 in the cached arm64 rootfs (built when missing).

Needs root and `make ci-deps`; the first run on a machine also builds the rootfs (about 5 minutes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from toolkit import melgraph
from toolkit.errors import ToolkitError
from toolkit.profiling import emulate
from toolkit.profiling.bundle import make_bundle
from toolkit.targets import load_target
from toolkit.variants import build_one

STREAM = {"name": "stream", "batch": 1, "samples": 1760}
STREAM_MULTS = 2_175_504  # 8 frames x 271,938: the default graph's dense multiplications for 1760 samples
HWCAP_ASIMDDP = 1 << 20  # Linux arm64 hwcap bits
HWCAP_SVE = 1 << 22
HWCAP_PROBE = "import ctypes; print(ctypes.CDLL(None).getauxval(16))"  # AT_HWCAP


@pytest.fixture(scope="module")
def rootfs() -> Path:
    """The cached rootfs, built now if this machine has none."""
    return emulate.ensure_rootfs()


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """A 1 kHz tone with noise at int16 scale, as openWakeWord feeds the graph."""
    t = np.arange(1760) / 16000
    rng = np.random.default_rng(3)
    return (8000 * np.sin(2 * np.pi * 1000 * t) + rng.normal(0, 300, t.size)).astype(np.float32)[None, :]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, signal: np.ndarray) -> Path:
    """The default graph as ONNX and as TFLite, one streaming workload, for rpi4's matrix."""
    work = tmp_path_factory.mktemp("emulate")
    model = melgraph.default_model()
    melgraph.save_model(model, work / "original.onnx")
    tflite = build_one("tflite", model, work, [])
    assert tflite.status == "built", tflite.reason
    return make_bundle([("original", work / "original.onnx", "onnx"), ("tflite", tflite.path, "tflite")],
                       "rpi4", {"tone": signal}, work / "bundle", workloads=[STREAM], warmup=1, runs=2,
                       streaming={"seconds": 0.5, "chunk_samples": 1760, "rate_hz": 12.5})


def hwcap(rootfs: Path, target: str) -> int:
    """AT_HWCAP the guest sees under the target's QEMU CPU model."""
    guest = emulate.Guest.for_target(load_target(target), rootfs)
    return int(emulate.run_in_guest(guest, [emulate.GUEST_PYTHON, "-c", HWCAP_PROBE]).stdout)


def test_cpu_models_advertise_what_the_boards_have(rootfs: Path) -> None:
    """-cpu cortex-a72 has no dot product and no SVE (QEMU's default CPU has both); cortex-a76 has asimddp."""
    rpi4 = hwcap(rootfs, "rpi4")
    assert rpi4 & HWCAP_SVE == 0
    assert rpi4 & HWCAP_ASIMDDP == 0
    assert hwcap(rootfs, "rpi5") & HWCAP_ASIMDDP


def test_guest_sees_the_pi_cpuinfo_and_the_aarch64_wheels(rootfs: Path) -> None:
    """onnxruntime 1.32 and LiteRT import inside the rootfs, on aarch64, reading the Pi 4's CPU part 0xd08."""
    guest = emulate.Guest.for_target(load_target("rpi4"), rootfs)
    code = ("import platform, onnxruntime, ai_edge_litert.interpreter; "
            "print(platform.machine(), onnxruntime.__version__, open('/proc/cpuinfo').read().count('0xd08'))")
    assert emulate.run_in_guest(guest, [emulate.GUEST_PYTHON, "-c", code]).stdout.split() == ["aarch64", "1.32.0", "4"]


def test_host_cpuinfo_crashes_onnxruntime(rootfs: Path) -> None:
    """The trap the Pi cpuinfo avoids: with the host's x86 /proc/cpuinfo, importing onnxruntime segfaults."""
    command = [str(emulate.ENTER_SCRIPT), str(rootfs), "-", "--", emulate.GUEST_PYTHON, "-c", "import onnxruntime"]
    done = subprocess.run(command, capture_output=True, text=True, env=emulate.guest_env(
        emulate.Guest(rootfs, "cortex-a72", "")), check=False)
    assert done.returncode != 0
    assert "Segmentation fault" in done.stderr


@pytest.fixture(scope="module")
def emulated(bundle: Path, rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The bundle profiled on the emulated Pi 4: the runner's record plus instruction counts, and its path."""
    result = tmp_path_factory.mktemp("emulated") / "result.json"
    return emulate.profile_emulated(load_target("rpi4"), bundle, result, repeat=20, rootfs=rootfs), result


def test_runner_outputs_under_emulation_match_the_host(emulated: tuple[dict, Path], bundle: Path,
                                                       signal: np.ndarray) -> None:
    """The aarch64 builds compute the same log-mel as the host's onnxruntime, for ONNX and TFLite alike."""
    record, result = emulated
    outputs = np.load(result.with_name("result.outputs.npz"))
    host = ort.InferenceSession(str(bundle / "models" / "original.onnx")).run(None, {"input": signal})[0]
    for variant in ("original", "tflite"):
        assert np.abs(outputs[f"{variant}/tone"].reshape(host.shape) - host).max() < 0.01
    assert record["complete"] is True
    assert record["platform"]["machine"] == "aarch64"
    assert record["emulation"]["qemu_cpu"] == "cortex-a72"
    ok = [run for run in record["runs"] if run["status"] == "ok"]
    assert {run["variant"] for run in ok} == {"original", "tflite"}


def test_instruction_count_of_one_inference(emulated: tuple[dict, Path]) -> None:
    """Counted 4-lane AdvSIMD instructions x 4 cover the graph's 2,175,504 multiplications (plus a few %)."""
    counts = {entry["variant"]: entry for entry in emulated[0]["instructions"]}
    original = counts["original"]
    assert original["evidence"] == "emulated-instructions"
    assert 1.0 <= 4 * original["by_class"]["simd_vector"] / STREAM_MULTS <= 1.1
    assert original["by_class"]["sve"] == 0
    assert original["uncertainty"]["simd_vector"] < 0.001 * original["by_class"]["simd_vector"]
    assert original["total"] > original["by_class"]["simd_vector"] + original["by_class"]["load_store_simd"]
    assert counts["tflite"]["by_class"]["simd_vector"] > 100_000  # LiteRT's XNNPACK kernels run NEON too


def test_plugin_log_without_a_total_is_refused() -> None:
    """A guest that died before QEMU's atexit hooks leaves no 'insns:' line: counting it would be wrong."""
    with pytest.raises(ToolkitError, match="did not exit normally"):
        emulate.parse_plugin_log("Instruction Classes:\nClass: AdvSIMD vector   \t(12 hits)\n")


def test_plugin_log_classes_are_summed_into_predictor_classes() -> None:
    """howvec's load/store subclasses add up in one class; unknown class names land in 'other'."""
    log = ("insns: 100\nClass:   ldst pair             \t(30 hits)\nClass:   ldst reg (imm)        \t(20 hits)\n"
           "Class:   FP/SIMD ldst          \t(7 hits)\nClass:   Barriers              \t(3 hits)\n")
    counts = emulate.parse_plugin_log(log)
    assert (counts["total"], counts["load_store"], counts["load_store_simd"], counts["other"]) == (100, 50, 7, 3)


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory: pytest.TempPathFactory, signal: np.ndarray) -> Path:
    """The default graph for x86-host's matrix, one streaming workload."""
    work = tmp_path_factory.mktemp("host-count")
    melgraph.save_model(melgraph.default_model(), work / "original.onnx")
    return make_bundle([("original", work / "original.onnx", "onnx")], "x86-host", {"tone": signal},
                       work / "bundle", workloads=[STREAM], warmup=1, runs=2,
                       streaming={"seconds": 0.5, "chunk_samples": 1760, "rate_hz": 12.5})


def test_this_host_counted_between_the_runner_marks(host_bundle: Path) -> None:
    """x86class counts only the runner's loop: 10 and 20 inferences give the same count per inference, and
    8-lane AVX2 multiply instructions cover the graph's 2,175,504 multiplications at most a few times over."""
    ten, twenty = (emulate.count_host_instructions(host_bundle, "original", "stream", repeat=n) for n in (10, 20))
    assert abs(ten.total - twenty.total) < 0.005 * twenty.total
    assert twenty.total == pytest.approx(sum(twenty.by_class.values()))
    assert twenty.by_class["other"] == 0  # every x86 instruction lands in one of the plugin's classes
    vector = twenty.by_class["simd_vector"] + twenty.by_class["simd_vector_mem"]
    assert STREAM_MULTS / 8 < vector < 3 * STREAM_MULTS / 8
    assert twenty.raw["repeat_20"]["total"] == round(20 * twenty.total)


def test_x86_plugin_log_classes_are_the_predictor_classes() -> None:
    """x86class prints the predictor's class names; a log without the runner's marks is whole-process."""
    log = "window: yes\ninsns: 10\nClass: simd_vector_mem (4 hits)\nClass: branch (6 hits)\n"
    counts = emulate.parse_plugin_log(log, emulate.X86_CLASSES)
    assert (counts["total"], counts["simd_vector_mem"], counts["branch"], counts["integer"]) == (10, 4, 6, 0)
