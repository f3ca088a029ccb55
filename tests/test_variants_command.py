"""`python -m toolkit variants` builds and gates with the pipeline's own stage functions: a real run of the command
and of the pipeline's variants and accuracy stages on the built-in model writes the same variants.json and
accuracy.json records, and a variant that crashes on the signals fails the gate with its reason in both, and in the
command's table, not as a traceback."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest

from tests.helpers import TEST_HOST_TARGET
from toolkit.cli import main
from toolkit.engines import Feed
from toolkit.files import Json, read_json
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.pipeline.stages import SIGNAL_SAMPLES
from toolkit.variants import VARIANTS, VariantSpec

FIXED = 1760  # the crashing variant's audio input takes this many samples only; the signals have SIGNAL_SAMPLES
CHOSEN = ("simplified", "dft-400tap", "int8-dynamic", "fixed-length")


def build_fixed_length(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """The input model with its audio input fixed to FIXED samples: it builds, and onnxruntime refuses to run it
    on a signal of any other length."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fixed.graph.input[0].type.tensor_type.shape.dim[1].dim_value = FIXED
    onnx.save(fixed, path)


@dataclass(frozen=True)
class Both:
    """The pipeline's build folder, the command's --out folder, and what the command printed."""

    pipeline: Path
    command: Path
    code: int
    table: str


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Both:
    root = tmp_path_factory.mktemp("same-records")
    target = root / "records-host.toml"
    target.write_text(TEST_HOST_TARGET.format(name="records-host"), encoding="utf-8")
    spec = VariantSpec("onnx", True, f"the input model, audio input fixed to {FIXED} samples", build_fixed_length)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(VARIANTS, "fixed-length", spec)
        settings = Settings(target=str(target), variants=CHOSEN, build_root=root / "build",
                            artifacts_root=root / "artifacts")
        folder = run_pipeline(settings, only=("variants", "accuracy")).folder
        only = [arg for name in CHOSEN for arg in ("--only", name)]
        with contextlib.redirect_stdout(printed):
            code = main(["variants", *only, "--target", str(target), "--samples", str(SIGNAL_SAMPLES),
                         "--out", str(root / "command")])
    return Both(folder, root / "command", code, printed.getvalue())


def variant_records(folder: Path) -> Json:
    """variants.json with what differs between two builds of the same variants dropped: build time, folder."""
    document = read_json(folder / "variants.json", "variants")
    for record in document["variants"]:
        assert record.pop("build_seconds") > 0
        record["path"] = Path(record["path"]).name
    return document


def test_the_command_writes_the_pipelines_variant_records(both: Both) -> None:
    assert both.code == 0
    records = variant_records(both.command)
    assert records == variant_records(both.pipeline)
    assert [(r["name"], r["status"], r["path"]) for r in records["variants"]] == [
        ("original", "built", "original.onnx"), ("simplified", "built", "simplified.onnx"),
        ("dft-400tap", "built", "dft-400tap.onnx"), ("int8-dynamic", "built", "int8-dynamic.onnx"),
        ("fixed-length", "built", "fixed-length.onnx"),
    ]
    original = records["variants"][0]
    assert original["bytes"] == (both.command / "original.onnx").stat().st_size
    assert [(e["name"], e["role"]) for e in records["inputs"]] == [("input", "audio")]


def test_the_command_writes_the_pipelines_accuracy_records(both: Both) -> None:
    document = read_json(both.command / "accuracy.json", "accuracy")
    assert document == read_json(both.pipeline / "accuracy.json", "accuracy")
    assert document["signals"]["samples"] == SIGNAL_SAMPLES
    assert document["policy"]["max_abs_db_error"] == 0.5
    verdicts = document["variants"]
    assert {name: v["passed"] for name, v in verdicts.items()} == {
        "original": True, "simplified": True, "dft-400tap": True, "int8-dynamic": False, "fixed-length": False,
    }
    assert verdicts["dft-400tap"]["report"]["overall"]["max_abs_db"] < 0.01
    assert verdicts["int8-dynamic"]["report"]["overall"]["max_abs_db"] > 0.5


def test_a_variant_that_crashes_fails_the_gate_with_its_reason_in_the_table(both: Both) -> None:
    verdict = read_json(both.command / "accuracy.json", "accuracy")["variants"]["fixed-length"]
    assert (verdict["measured"], verdict["passed"], "report" in verdict) == (False, False, False)
    [reason] = verdict["reasons"]
    assert reason.startswith(f"could not run: ToolkitError: onnxruntime could not run the model on {SIGNAL_SAMPLES} "
                             "samples (fed input as audio): ")
    assert f"Got: {SIGNAL_SAMPLES} Expected: {FIXED}" in reason
    lines = both.table.splitlines()
    assert f"{'fixed-length':30} onnx   yes   fails the gate: {reason}" in lines
    assert "Traceback" not in both.table


def test_the_table_shows_each_verdict_and_the_policy(both: Both) -> None:
    verdicts = read_json(both.command / "accuracy.json", "accuracy")["variants"]
    rows = {line.split()[0]: line for line in both.table.splitlines()}
    assert rows["variant"] == (f"{'variant':30} format exact max |dB err| p99 |dB err|  max rel mel gate    "
                               "worst level; why it fails")
    assert rows["original"] == f"{'original':30} onnx   yes   {0:12g} {0:12g} {0:12g} passes  -"
    overall = verdicts["dft-400tap"]["report"]["overall"]
    assert rows["dft-400tap"].split()[1:7] == [
        "onnx", "yes", f"{overall['max_abs_db']:.4g}", f"{overall['p99_abs_db']:.4g}",
        f"{overall['max_rel_mel']:.4g}", "passes",
    ]
    int8 = verdicts["int8-dynamic"]
    assert rows["int8-dynamic"].split()[6] == "fails"
    assert rows["int8-dynamic"].endswith("; ".join(int8["reasons"]))
    assert rows["gate:"] == "gate: records-host's [policy]: max_abs_db_error 0.5, p99_abs_db_error 0.1, " \
                            "max_rel_mel_error 0.025"
    assert rows["signals:"].endswith(f"11 x {SIGNAL_SAMPLES} samples; files, variants.json and accuracy.json in "
                                     f"{both.command}")


def test_json_prints_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["variants", "--only", "simplified", "--samples", "1760", "--out", str(tmp_path), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {name: read_json(tmp_path / name, name) for name in ("variants.json", "accuracy.json")}
    assert [r["name"] for r in printed["variants.json"]["variants"]] == ["original", "simplified"]
    assert printed["accuracy.json"]["variants"]["simplified"]["passed"] is True
