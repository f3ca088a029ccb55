"""Target files: host detection from this machine, and one-line errors that name the key and its line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from toolkit.errors import ToolkitError
from toolkit.targets import CHUNK_MS, FLOP_RULES, TARGETS_DIR, known_targets, load_target

HOST_TEXT = (TARGETS_DIR / "x86-host.toml").read_text()

BOARD = """\
name = "board"
description = "a board with every fact written"
kind = "board"

[cpu]
model = "Broadcom BCM2711"
core = "Cortex-A72"
cores = 4
clock_ghz = 1.8
isa_flags = ["fp", "asimd"]
l1d_kib = 32
l2_kib = 1024
l3_kib = 0
fp32_flops_per_cycle_per_core = 16
sources = {cores = "datasheet"}

[core]
issue = 3
simd_vector = 1
fp_scalar = 2
load_store = 2
integer = 2
branch = 1
source = "the core's optimization guide"

[emulation]
qemu_cpu = "cortex-a72"
cpuinfo = "processor : 0"

[matrix]
providers = ["CPUExecutionProvider"]
intra_op_threads = [1, 4]
graph_optimization = ["all"]

[litert]
threads = [1, 4]
xnnpack = true

[policy]
max_abs_db_error = 0.5
p99_abs_db_error = 0.1
max_rel_mel_error = 0.025
realtime_budget = 0.25
max_model_bytes = 2000000

[peak]
method = "cores x clock x flops / 2"
"""


def write(tmp_path: Path, text: str, name: str = "board") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('name = "board"', f'name = "{name}"'))
    return path


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


def proc_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    return set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())


def test_x86_host_detects_this_machine() -> None:
    target = load_target("x86-host")
    assert target.kind == "host"
    assert target.cpu.cores == os.cpu_count()
    assert set(target.cpu.isa_flags) <= proc_flags()
    assert "sse2" in target.cpu.isa_flags
    assert target.cpu.clock_ghz > 0.5
    assert target.cpu.l1d_kib > 0
    assert target.cpu.fp32_flops_per_cycle_per_core in {flops for _, flops, _ in FLOP_RULES}
    assert target.cpu.sources["cores"] == "detected: os.cpu_count()"
    assert "cores" in target.detected and target.emulation is None
    assert "CPUExecutionProvider" in target.matrix.providers


def test_peak_is_cores_times_clock_times_mults_per_cycle() -> None:
    target = load_target("x86-host")
    cpu = target.cpu
    expected = cpu.cores * cpu.clock_ghz * 1e9 * cpu.fp32_flops_per_cycle_per_core / 2
    assert target.peak_mults_per_s() == pytest.approx(expected)
    assert target.peak_mults_per_s(threads=1) == pytest.approx(target.peak_mults_per_s() / cpu.cores)


def test_avx512_rule_follows_the_flags() -> None:
    flops = next(f for test, f, _ in FLOP_RULES if test({"vendor_id": "GenuineIntel"}, {"avx512f", "avx2", "fma"}))
    zen4 = next(f for test, f, _ in FLOP_RULES
                if test({"vendor_id": "AuthenticAMD", "cpu family": "25"}, {"avx512f", "avx2", "fma"}))
    avx2 = next(f for test, f, _ in FLOP_RULES if test({}, {"avx2", "fma", "sse"}))
    assert (flops, zen4, avx2) == (64, 32, 32)


def test_board_file_loads_every_fact(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, BOARD))
    assert target.cpu.cores == 4 and target.cpu.isa_flags == ("fp", "asimd")
    assert target.emulation.qemu_cpu == "cortex-a72"
    assert target.policy.budget_ms(CHUNK_MS) == pytest.approx(20.0)  # 0.25 of the 80 ms step
    assert target.policy.budget_ms(30000.0) == pytest.approx(7500.0)  # of a 30 s window
    assert target.policy.max_model_bytes == 2_000_000
    assert target.peak_mults_per_s() == pytest.approx(4 * 1.8e9 * 8)
    assert target.detected == ()


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    text = BOARD.replace("l3_kib = 0\n", "l3_kib = 0\nl4_kib = 8\n")
    path = write(tmp_path, text)
    with pytest.raises(ToolkitError) as error:
        load_target(path)
    message = str(error.value)
    assert f"{path}:{line_of(text, 'l4_kib = 8')}:" in message
    assert "'[cpu] l4_kib'" in message and "\n" not in message


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    text = BOARD.replace("cores = 4", 'cores = "four"')
    line = line_of(text, 'cores = "four"')
    with pytest.raises(ToolkitError, match=rf":{line}: \[cpu\] cores must be an integer"):
        load_target(write(tmp_path, text))


def test_detect_is_refused_on_a_board(tmp_path: Path) -> None:
    text = BOARD.replace("clock_ghz = 1.8", 'clock_ghz = "detect"')
    line = line_of(text, 'clock_ghz = "detect"')
    with pytest.raises(ToolkitError, match=rf':{line}: .*kind = "host" only'):
        load_target(write(tmp_path, text))


def test_bad_values_name_their_line(tmp_path: Path) -> None:
    text = BOARD.replace('graph_optimization = ["all"]', 'graph_optimization = ["fast"]')
    line = line_of(text, 'graph_optimization = ["fast"]')
    with pytest.raises(ToolkitError, match=rf":{line}: \[matrix\] graph_optimization must be a non-empty list of"):
        load_target(write(tmp_path, text))
    text = BOARD.replace("realtime_budget = 0.25", "realtime_budget = 2")
    with pytest.raises(ToolkitError, match=rf":{line_of(text, 'realtime_budget = 2')}: .* in \(0, 1\]"):
        load_target(write(tmp_path, text))


def test_tables_a_kind_needs_or_forbids(tmp_path: Path) -> None:
    no_emulation = BOARD.replace('[emulation]\nqemu_cpu = "cortex-a72"\ncpuinfo = "processor : 0"\n', "")
    with pytest.raises(ToolkitError, match=r"missing table \[emulation\]"):
        load_target(write(tmp_path, no_emulation))
    with pytest.raises(ToolkitError, match=r"unknown table \[gpu\]"):
        load_target(write(tmp_path, BOARD + "\n[gpu]\ncores = 1\n"))
    missing = BOARD.replace("l2_kib = 1024\n", "")
    with pytest.raises(ToolkitError, match=rf":{line_of(missing, '[cpu]')}: missing key \[cpu\] l2_kib"):
        load_target(write(tmp_path, missing))


def test_the_core_table_becomes_typed_rates(tmp_path: Path) -> None:
    core = load_target(write(tmp_path, BOARD)).core
    assert (core.name, core.issue, core.simd_vector, core.load_store) == ("Cortex-A72", 3, 1, 2)
    assert core.source == "the core's optimization guide"


@pytest.mark.parametrize(("old", "new", "error"), [
    ("issue = 3", 'issue = "three"', r"\[core\] issue must be a number, got 'three'"),
    ("branch = 1", "branch = 0", r"\[core\] branch must be positive, got 0"),
    ("branch = 1", "branch = 1\nfma = 2", r"unknown key '\[core\] fma'; known keys there: issue, simd_vector"),
])
def test_a_bad_core_table_names_key_and_line(tmp_path: Path, old: str, new: str, error: str) -> None:
    text = BOARD.replace(old, new)
    line = line_of(text, new.splitlines()[-1])
    with pytest.raises(ToolkitError, match=rf"^{re.escape(str(tmp_path))}/board.toml:{line}: {error}"):
        load_target(write(tmp_path, text))


def test_a_core_table_missing_a_rate_names_it(tmp_path: Path) -> None:
    text = BOARD.replace("load_store = 2\n", "")
    with pytest.raises(ToolkitError, match=rf":{line_of(text, '[core]')}: missing key \[core\] load_store; add it"):
        load_target(write(tmp_path, text))


HOST_CORE = """
[[host_core]]
name = "A"
vendor_id = "GenuineIntel"
cpu_family = 6
flags = ["amx_tile"]
issue = 6
simd_vector = 2
fp_scalar = 2
load_store = 3
integer = 5
branch = 2
source = "manual"
"""


def test_host_core_entries_load_in_order_with_their_rules(tmp_path: Path) -> None:
    second = HOST_CORE.replace('name = "A"', 'name = "B"').replace('flags = ["amx_tile"]', "models = [106, 108]")
    target = load_target(write(tmp_path, HOST_TEXT + HOST_CORE + second, "x86-host"))
    [a, b] = target.host_cores[-2:]
    assert (a.rates.name, a.flags, a.models, a.rates.integer) == ("A", ("amx_tile",), (), 5)
    assert (b.rates.name, b.flags, b.models) == ("B", (), (106, 108))
    assert a.matches({"vendor_id": "GenuineIntel", "cpu family": "6", "model": "1", "flags": "avx2 amx_tile"})
    assert not b.matches({"vendor_id": "GenuineIntel", "cpu family": "6", "model": "107", "flags": ""})


def test_a_bad_host_core_entry_names_its_entry_and_line(tmp_path: Path) -> None:
    second = HOST_CORE.replace("cpu_family = 6", 'cpu_family = "6"')
    text = HOST_TEXT + HOST_CORE + second
    entry = text.count("[[host_core]]")
    line = len(text.splitlines()) - second.splitlines()[::-1].index('cpu_family = "6"')
    with pytest.raises(ToolkitError, match=rf":{line}: \[\[host_core\]\] #{entry} cpu_family must be an integer"):
        load_target(write(tmp_path, text, "x86-host"))
    empty = HOST_TEXT + HOST_CORE.replace('flags = ["amx_tile"]', "flags = []")
    with pytest.raises(ToolkitError, match=r"flags must be a non-empty list \(leave it out"):
        load_target(write(tmp_path, empty, "x86-host"))


def test_rates_tables_belong_to_their_kind(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"table \[\[host_core\]\] is only for kind = 'host'; remove it"):
        load_target(write(tmp_path, BOARD + HOST_CORE))
    host_with_core = HOST_TEXT + BOARD[BOARD.index("[core]"):BOARD.index("[emulation]")]
    with pytest.raises(ToolkitError, match=r"table \[core\] is only for kind = 'board'; remove it"):
        load_target(write(tmp_path, host_with_core, "x86-host"))
    single = BOARD + HOST_CORE.replace("[[host_core]]", "[host_core]")
    line = line_of(single, "[host_core]")
    with pytest.raises(ToolkitError, match=rf":{line}: host_core must be written as \[\[host_core\]\]"):
        load_target(write(tmp_path, single))


def test_name_must_match_the_file_and_toml_must_parse(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(BOARD)
    with pytest.raises(ToolkitError, match="must equal the file name 'other'"):
        load_target(path)
    with pytest.raises(ToolkitError, match=r"not valid TOML: .*line 2"):
        load_target(write(tmp_path, 'name = "board"\ncores = = 4\n'))


def test_unknown_target_lists_the_known_ones() -> None:
    assert "x86-host" in known_targets()
    with pytest.raises(ToolkitError, match=r"unknown target 'pi9'; known targets: .*x86-host"):
        load_target("pi9")


def test_the_host_file_documents_its_keys() -> None:
    assert 'fp32_flops_per_cycle_per_core = "detect"' in HOST_TEXT
    assert load_target(TARGETS_DIR / "x86-host.toml").name == "x86-host"
