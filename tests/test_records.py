"""The build folder and the stage records without a pipeline run: a missing file names the stage that makes it,
writes are strict JSON and atomic, and the records whose optional keys the stages leave out read back exactly
(tests/test_pipeline.py reads every record of a real run's files)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.test_select import POLICY, decide
from toolkit.errors import ToolkitError
from toolkit.folder import FILES, BuildFolder
from toolkit.records import Choice, PlatformFile, PredictionErrors, Rows, VariantRecord, Verdict
from toolkit.targets import Policy

Json = dict[str, Any]


def test_a_missing_stage_file_is_one_line_naming_its_stage(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"counts\.json is missing; run `python -m toolkit profile` for this "
                                           r"target first \(the counts stage\)$"):
        BuildFolder(tmp_path).counts()
    (tmp_path / "choice.json").write_text('{"chosen": ', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"choice\.json is not valid JSON .* it should hold the select stage"):
        BuildFolder(tmp_path).choice()


def test_a_stage_file_that_is_not_its_record_is_one_line_naming_its_stage(tmp_path: Path) -> None:
    (tmp_path / "counts.json").write_text('{"evidence": "counted", "variants": {}}', encoding="utf-8")
    with pytest.raises(ToolkitError, match=r"counts\.json does not hold what the counts stage writes "
                                           r"\(no 'convention' field\); make it again$"):
        BuildFolder(tmp_path).counts()


def test_writes_are_strict_json_take_only_the_stages_record_and_leave_no_temp_file(tmp_path: Path) -> None:
    folder = BuildFolder(tmp_path / "target")
    ratio = {"min": 1.0, "median": math.inf, "max": math.inf}
    rows = Rows("predicted", [], "no instruction counts")
    platform = PlatformFile("host", "here", "measured-on-host", "measured-on-host", {}, True, rows, rows,
                            PredictionErrors("derived", [], ratio, ""), {})
    folder.write("platform", platform)
    assert folder.has("platform") and not folder.has("choice")
    written = json.loads(folder.path("platform").read_text(encoding="utf-8"))
    assert written["prediction_error"]["ratio"] == {"min": 1.0, "median": "inf", "max": "inf"}
    assert [p.name for p in folder.root.iterdir()] == ["platform.json"]
    with pytest.raises(TypeError, match=r"compare\.json holds a Comparison, not a PlatformFile"):
        folder.write("compare", platform)
    assert folder.record("platform") == replace(platform, prediction_error=PredictionErrors(
        "derived", [], {"min": 1.0, "median": "inf", "max": "inf"}, ""))
    assert len({f.name for f in FILES.values()}) == len(FILES)


@pytest.mark.parametrize("document", [
    {"name": "int4", "path": None, "format": "onnx", "status": "failed", "reason": "no int4 kernels",
     "description": "int4 weights", "exact": False, "build_seconds": 0.5},
    {"name": "original", "path": "v/original.onnx", "format": "onnx", "status": "built", "reason": "",
     "description": "the input model unchanged", "exact": True, "build_seconds": 0.1, "bytes": 12, "sha256": "ab"},
])
def test_a_variant_record_keeps_bytes_and_sha256_only_for_a_written_file(document: Json) -> None:
    record = VariantRecord.from_json(document)
    assert record.to_json() == document and VariantRecord.from_json(record.to_json()) == record
    assert record.built is (document["status"] == "built")


def test_an_unmeasured_verdict_has_no_report() -> None:
    document = {"measured": False, "passed": False, "reasons": ["could not run: RuntimeError: x"]}
    verdict = Verdict.from_json(document)
    assert verdict.to_json() == document and (verdict.report, verdict.overall) == (None, {})


@pytest.mark.parametrize(("medians", "passed", "policy"), [
    ({"original": 1.0, "int8-dynamic": 0.1}, {"original": True, "int8-dynamic": False}, POLICY),  # rejected rows
    ({"original": 1.0}, {"original": True}, Policy(0.5, 0.1, 0.025, realtime_budget=0.001)),  # nothing chosen
])
def test_a_choice_reads_back_with_its_rejected_rows_or_without_a_chosen_one(medians: dict[str, float],
                                                                            passed: dict[str, bool],
                                                                            policy: Policy) -> None:
    document = decide(medians, passed, policy=policy)
    choice = Choice.from_json(document)
    assert json.dumps(choice.to_json()) == json.dumps(document)
    assert Choice.from_json(choice.to_json()) == choice
    assert choice.rejected and ("beats_original" in document) is (choice.chosen is not None)
