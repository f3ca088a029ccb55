"""The analyzer on the mel graph: the input contract, exact counts, the refusal of too-short input, the JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolkit.analysis import analyze
from toolkit.analysis.coverage import measure
from toolkit.errors import ToolkitError
from toolkit.melgraph import MelParams, build_mel_model


@pytest.fixture(scope="module")
def one_second() -> dict:
    return analyze(batch=1, samples=16000).to_json()


def node_of(data: dict, op_type: str) -> list[dict]:
    return [n for n in data["nodes"] if n["op_type"] == op_type]


def test_one_second_costs_the_known_dense_counts(one_second: dict) -> None:
    dense = one_second["totals"]["dense"]
    assert dense["mul"] == 26_377_986
    assert dense["div"] == 3_104
    assert dense["special"] == {"log": 3_104}
    assert [c["dense"]["mul"] for c in node_of(one_second, "Conv")] == [12_763_648, 12_763_648]
    assert node_of(one_second, "MatMul")[0]["dense"]["mul"] == 797_728


def test_per_frame_and_per_second(one_second: dict) -> None:
    assert one_second["per_frame"]["frames"] == 97
    assert one_second["per_frame"]["hop"] == 160
    assert one_second["per_frame"]["dense"]["mul"] == 271_938
    assert one_second["per_frame"]["dense"]["div"] == 32
    assert one_second["per_second"]["frames_per_second"] == 100
    assert one_second["per_second"]["streaming"]["dense"]["mul"] == 27_193_800
    assert one_second["per_second"]["one_second_input"]["dense"]["mul"] == 26_377_986


def test_output_dims_are_formulas_found_by_propagation(one_second: dict) -> None:
    (out,) = one_second["outputs"]
    assert out["shape"] == ["batch_size", 1, "floor((samples - 512)/160) + 1", 32]
    assert out["declared_shape"] == ["time", 1, "Clipoutput_dim_2", 32]
    assert out["value_shape"] == [1, 1, 97, 32]
    assert one_second["inputs"] == [{"name": "input", "dtype": "FLOAT", "shape": ["batch_size", "samples"]}]
    assert one_second["constraints"] == ["samples >= 512"]
    assert one_second["smallest_input"] == {"batch_size": 1, "samples": 512}


def test_formulas_follow_the_parameters() -> None:
    params = MelParams(n_fft=256, win_length=200, hop=80, n_mels=40, fmax=7600.0)
    data = analyze(build_mel_model(params), batch=2, samples=8000).to_json()
    assert data["outputs"][0]["shape"] == ["batch_size", 1, "floor((samples - 256)/80) + 1", 40]
    assert data["constraints"] == ["samples >= 256"]
    frames = (8000 - 256) // 80 + 1
    bins = 129
    assert data["totals"]["dense"]["mul"] == 2 * frames * (2 * bins * 256 + 2 * bins + bins * 40 + 40)
    assert data["formulas"]["dense"]["mul"].endswith("*batch_size*(floor((samples - 256)/80) + 1)")


def test_effective_counts_skip_zero_taps_and_no_ops(one_second: dict) -> None:
    conv = node_of(one_second, "Conv")[0]
    assert conv["effective"]["mul"] < conv["dense"]["mul"]
    sub_zero = node_of(one_second, "Sub")[0]
    assert sub_zero["dense"]["add"] == 3_104 and sub_zero["effective"]["add"] == 0
    clip = node_of(one_second, "Clip")[0]
    assert (clip["dense"]["cmp"], clip["effective"]["cmp"]) == (6_208, 3_104)
    assert node_of(one_second, "MatMul")[0]["effective"]["mul"] == 229 * 97


def test_every_node_has_math_and_shapes(one_second: dict) -> None:
    assert all(n["counted"] and n["math"] for n in one_second["nodes"])
    conv = node_of(one_second, "Conv")[0]
    assert "sum_{j=0..511}" in conv["math"] and "160 t + j" in conv["math"]
    assert conv["output_shapes"] == [[1, 257, 97]]
    transposes = node_of(one_second, "Transpose")
    assert transposes[0]["bytes_moved"] == 257 * 97 * 4


def test_too_short_input_is_refused_by_the_api() -> None:
    with pytest.raises(ToolkitError, match="samples >= 512 for one frame"):
        analyze(samples=400)
    with pytest.raises(ToolkitError, match="must be a whole number >= 1"):
        analyze(batch=0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", "analyze", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_refuses_400_samples_with_one_line_and_exit_2() -> None:
    result = run_cli("--samples", "400")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "needs samples >= 512 for one frame" in result.stderr and "--samples 512" in result.stderr


def test_cli_json_matches_the_contract() -> None:
    result = run_cli("--samples", "1760", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("inputs", "outputs", "constraints", "nodes", "totals", "per_frame", "formulas"):
        assert key in data
    assert data["totals"]["dense"]["mul"] == 8 * 271_938
    node = data["nodes"][2]
    assert set(node) >= {"name", "op_type", "output_shapes", "math", "dense", "effective"}
    assert set(node["dense"]) == {"mul", "add", "div", "cmp", "special"}


def test_unknown_op_is_listed_as_not_counted() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Hardmax", ["r"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = analyze(model, batch=3, samples=None).to_json()
    assert data["not_counted"] == ["Hardmax_1"]
    assert data["totals"]["dense"]["cmp"] == 12


def test_shape_rules_pass_onnx_node_test_cases() -> None:
    coverage = measure()
    assert len(coverage.passed) >= 866, sorted(coverage.failed.items())[:5]
    mel_ops = ("conv", "matmul", "pow", "clip", "log", "reduce_max", "unsqueeze", "transpose", "cast", "sub", "div")
    failing = [name for name in coverage.failed if any(name.startswith(f"test_{op}") for op in mel_ops)
               and "reduce_max_bool" not in name]
    assert failing == []


@pytest.mark.parametrize("name", ["int8-dynamic", "int8-conv-only", "dft-fused", "stft-op"])
def test_every_node_of_built_variants_is_counted(tmp_path, name: str) -> None:
    from toolkit.melgraph import default_model
    from toolkit.variants import build_variants

    (variant,) = build_variants(default_model(), tmp_path, names=[name])
    assert variant.status == "built", variant.reason
    data = analyze(variant.path, batch=1, samples=1760).to_json()
    assert data["not_counted"] == []
    assert data["totals"]["dense"]["mul"] > 0


def test_analyze_takes_a_vision_model_file(tmp_path) -> None:
    """The audio input rule belongs to the stages that feed audio; analyze counts any graph."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["y"], pads=[1, 1, 1, 1])], "vision",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights])
    path = tmp_path / "vision.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = run_cli(str(path), "--dim", "n=2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["outputs"][0]["value_shape"] == [2, 4, 16, 16]
    assert data["totals"]["dense"]["mul"] == 2 * 4 * 16 * 16 * 27
    assert data["totals"]["effective"]["mul"] == 0  # every weight is exactly 1: adds remain, muls do not
