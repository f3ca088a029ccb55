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


@pytest.mark.qemu
def test_cpu_models_advertise_what_the_boards_have(rootfs: Path) -> None:
    """-cpu cortex-a72 has no dot product and no SVE (QEMU's default CPU has both); cortex-a76 has asimddp."""
    rpi4 = hwcap(rootfs, "rpi4")
    assert rpi4 & HWCAP_SVE == 0
    assert rpi4 & HWCAP_ASIMDDP == 0
    assert hwcap(rootfs, "rpi5") & HWCAP_ASIMDDP


@pytest.mark.qemu
def test_guest_sees_the_pi_cpuinfo_and_the_aarch64_wheels(rootfs: Path) -> None:
    """onnxruntime 1.32 and LiteRT import inside the rootfs, on aarch64, reading the Pi 4's CPU part 0xd08."""
    guest = emulate.Guest.for_target(load_target("rpi4"), rootfs)
    code = ("import platform, onnxruntime, ai_edge_litert.interpreter; "
            "print(platform.machine(), onnxruntime.__version__, open('/proc/cpuinfo').read().count('0xd08'))")
    assert emulate.run_in_guest(guest, [emulate.GUEST_PYTHON, "-c", code]).stdout.split() == ["aarch64", "1.32.0", "4"]


@pytest.mark.qemu
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
    return emulate.profile_emulated(load_target("rpi4"), bundle, result, rootfs=rootfs), result


@pytest.mark.slow
@pytest.mark.qemu
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


@pytest.mark.slow
@pytest.mark.qemu
def test_instruction_count_of_one_inference(emulated: tuple[dict, Path]) -> None:
    """Counted 4-lane AdvSIMD instructions x 4 cover the graph's 2,175,504 multiplications (plus a few %); the
    total is the sum of the classes, and the three segments agree to 0.1 %."""
    counts = {entry["variant"]: entry for entry in emulated[0]["instructions"]}
    original = counts["original"]
    assert original["evidence"] == "emulated-instructions"
    assert 1.0 <= 4 * original["by_class"]["simd_vector"] / STREAM_MULTS <= 1.1
    assert original["by_class"]["sve"] == 0
    assert original["total"] == pytest.approx(sum(original["by_class"].values()), rel=1e-12)
    assert original["segments"] == emulate.SEGMENTS == len(original["raw"]["segments"])
    assert original["uncertainty"]["total"] < 0.001 * original["total"]
    assert counts["tflite"]["by_class"]["simd_vector"] > 100_000  # LiteRT's XNNPACK kernels run NEON too


@pytest.mark.slow
@pytest.mark.qemu
def test_counts_do_not_depend_on_the_repetitions(emulated: tuple[dict, Path], bundle: Path, rootfs: Path) -> None:
    """Three counts of one workload, at 10 (the profile's), 5 and 20 inferences a segment, agree to 0.1 %."""
    guest = emulate.Guest.for_target(load_target("rpi4"), rootfs)
    profiled = next(e for e in emulated[0]["instructions"] if e["variant"] == "original")["total"]
    totals = [profiled] + [emulate.count_instructions(guest, bundle, "original", "stream", repeat=n).total
                           for n in (5, 20)]
    assert max(totals) - min(totals) < 0.001 * min(totals), totals


def plugin_log(*segments: str, process: str = "total=900 integer=900") -> str:
    """An insnclass log: marks, segment lines, the process line."""
    lines = [f"marks: {len(segments) + 1}", "lost marks: 0", *(f"segment: {s}" for s in segments)]
    return "\n".join([*lines, f"process: {process}", ""])


def test_plugin_log_without_the_exit_summary_is_refused() -> None:
    """A guest that died before QEMU's atexit hooks leaves no 'process:' line: counting it would be wrong."""
    with pytest.raises(ToolkitError, match="did not exit normally"):
        emulate.parse_plugin_log("marks: 3\nsegment: total=5 integer=5\n")


def test_a_child_forked_before_counting_is_left_out_and_one_after_is_refused() -> None:
    """OpenVINO forks while loading: the child's exit summary (no marks, its own process line) is not the runner's."""
    child = "marks: 0\nlost marks: 0\nprocess: total=77 integer=77\n"
    runner_log = plugin_log("total=10 integer=10", "total=110 integer=110")
    segments, process = emulate.parse_plugin_log(child + runner_log)
    assert segments == [{"total": 100, "integer": 100}] and process == {"total": 900, "integer": 900}
    assert emulate.parse_plugin_log(runner_log + child) == (segments, process)
    with pytest.raises(ToolkitError, match="2 guest processes carried the runner's count marks"):
        emulate.parse_plugin_log(runner_log + runner_log)


def test_plugin_log_without_the_runner_marks_is_refused() -> None:
    """An old runner.py makes no empty segment before the counted ones: its counts would include the marks."""
    with pytest.raises(ToolkitError, match="rebuild the bundle"):
        emulate.parse_plugin_log(plugin_log("total=50 integer=50"))


def test_plugin_log_with_dropped_marks_is_refused() -> None:
    """Past the plugin's 64 marks the segments would be misaligned: refused, not counted."""
    log = plugin_log("total=10 integer=10", "total=110 integer=110").replace("lost marks: 0", "lost marks: 2")
    with pytest.raises(ToolkitError, match="dropped 2 of the runner's count marks"):
        emulate.parse_plugin_log(log)


def test_the_empty_segment_is_taken_off_and_the_median_segment_chosen() -> None:
    """Segments less the marks' own cost (the first, empty segment); per inference the median segment, whole."""
    log = plugin_log("total=10 simd_vector=4 integer=6", "total=1010 simd_vector=404 integer=606",
                     "total=1030 simd_vector=424 integer=606", "total=1020 simd_vector=414 integer=606")
    counts = emulate.per_inference("original", "stream", "cortex-a72", 10, log, "test")
    assert (counts.total, counts.by_class) == (101.0, {"simd_vector": 41.0, "integer": 60.0})
    assert counts.uncertainty == {"total": 2.0, "simd_vector": 2.0, "integer": 0.0}
    assert counts.raw["process"] == {"total": 900, "integer": 900}


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory: pytest.TempPathFactory, signal: np.ndarray) -> Path:
    """The default graph for x86-host's matrix, one streaming workload."""
    work = tmp_path_factory.mktemp("host-count")
    melgraph.save_model(melgraph.default_model(), work / "original.onnx")
    return make_bundle([("original", work / "original.onnx", "onnx")], "x86-host", {"tone": signal},
                       work / "bundle", workloads=[STREAM], warmup=1, runs=2,
                       streaming={"seconds": 0.5, "chunk_samples": 1760, "rate_hz": 12.5})


@pytest.mark.slow
@pytest.mark.qemu
def test_this_host_counted_between_the_runner_marks(host_bundle: Path) -> None:
    """insnclass counts only the runner's loop: 5, 10 and 20 inferences a segment give the same count per
    inference to 0.1 %; 8-lane AVX2 multiply instructions cover the graph's 2,175,504 multiplications at most a
    few times over; the total is the sum of the classes."""
    counts = [emulate.count_host_instructions(host_bundle, "original", "stream", repeat=n) for n in (5, 10, 20)]
    totals = [c.total for c in counts]
    assert max(totals) - min(totals) < 0.001 * min(totals), totals
    twenty = counts[-1]
    assert twenty.total == pytest.approx(sum(twenty.by_class.values()), rel=1e-12)
    assert set(twenty.by_class) == {"simd_vector", "simd_vector_mem", "fp_scalar", "fp_scalar_mem",
                                    "load_store_simd", "load_store", "integer", "integer_mem", "branch"}
    vector = twenty.by_class["simd_vector"] + twenty.by_class["simd_vector_mem"]
    assert STREAM_MULTS / 8 < vector < 3 * STREAM_MULTS / 8
    assert len(twenty.raw["segments"]) == emulate.SEGMENTS


THREADS_PROGRAM = r"""
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static void *work(void *arg) { volatile unsigned long x = 0; for (unsigned long i = 0; i < 20000000UL; i++) x += i;
                               return arg; }
int main(int argc, char **argv) {
    int n = atoi(argv[1]); pthread_t t[8];
    lseek(-1, 0x6D656C7374617274LL, SEEK_SET); lseek(-1, 0x6D656C7374617274LL, SEEK_SET);
    for (int i = 0; i < n; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 0; i < n; i++) pthread_join(t[i], 0);
    lseek(-1, 0x6D656C7374617274LL, SEEK_SET);
    return 0;
}
"""


@pytest.mark.qemu
def test_concurrent_guest_threads_lose_no_counts(tmp_path: Path) -> None:
    """Four guest threads running the same loop at once count four times one thread's loop (to 0.01 %, the
    threads' creation and joining): per-thread counters lose no update, where one shared inline counter did."""
    source = tmp_path / "threads.c"
    source.write_text(THREADS_PROGRAM, encoding="utf-8")
    program = tmp_path / "threads"
    subprocess.run(["gcc", "-O1", "-pthread", str(source), "-o", str(program)], check=True)
    plugin = emulate.ensure_plugins() / emulate.PLUGIN

    def counted(threads: int) -> int:
        log = tmp_path / f"threads-{threads}.log"
        subprocess.run([emulate.HOST_QEMU, "-plugin", str(plugin), "-d", "plugin", "-D", str(log), str(program),
                        str(threads)], check=True)
        segments, _ = emulate.parse_plugin_log(log.read_text(encoding="utf-8"))
        return segments[0]["total"]

    one, four = counted(1), counted(4)
    assert one > 20_000_000 * 3
    assert abs(four - 4 * one) < 1e-4 * four, (one, four)
