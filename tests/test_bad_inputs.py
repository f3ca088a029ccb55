"""Bad models, dims and settings: each ends in one error line (exit 2, no traceback) or in a partial analysis
that marks exactly what it could not do. README's "Bad input: what the toolkit does" points at these tests.

Every CLI case is a real `python -m toolkit` subprocess; they start together (a thread per case) because each
one pays the toolkit's ~1 s import, and the suite must stay short.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.analysis import analyze
from toolkit.errors import ToolkitError
from toolkit.load import PROTOBUF_LIMIT, load_model, unread_weights
from toolkit.melgraph import default_model
from toolkit.targets import known_targets, load_target

ROOT = Path(__file__).resolve().parent.parent
BIG_ELEMENTS = 2**29 + 16  # float32: 2 GiB + 64 bytes of weights


# ---------------------------------------------------------------- small models


def graph_model(nodes: list[onnx.NodeProto], initializers: list[TensorProto] = (), *,
                in_type: int = TensorProto.FLOAT, shape: tuple[object, ...] = ("batch", "samples"),
                opset: int = 17, ir_version: int = 8, domains: tuple[str, ...] = ()) -> onnx.ModelProto:
    """One input x, one output y: the smallest model each bad case needs."""
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", in_type, list(shape))],
                              [helper.make_tensor_value_info("y", in_type, None)], initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version)


def weight(value: float = 2.0, name: str = "w") -> TensorProto:
    return numpy_helper.from_array(np.float32([value]), name)


SCALE = helper.make_node("Mul", ["x", "w"], ["y"], name="scale")


def external(location: str, name: str = "w", dims: tuple[int, ...] = (1,)) -> TensorProto:
    """A float32 tensor whose data the model says lies in `location`."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def write(folder: Path, name: str, content: onnx.ModelProto | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.SerializeToString())
    return path


def big_model(folder: Path) -> Path:
    """MatMul by a 2 GiB+ weight kept in a sparse file: no disk blocks, no memory, unless someone reads it."""
    folder.mkdir(exist_ok=True)
    data = folder / "weights.bin"
    data.touch()
    os.truncate(data, 4 * BIG_ELEMENTS)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["p"], name="project"),
             helper.make_node("Mul", ["p", "half"], ["y"], name="halve")]
    model = graph_model(nodes, [external("weights.bin", "W", (BIG_ELEMENTS, 1)), weight(0.5, "half")])
    return write(folder, "big.onnx", model)


# ---------------------------------------------------------------- CLI cases


@dataclass(frozen=True)
class CliCase:
    """Arguments of `python -m toolkit` (made in a scratch folder) and what the one error line must say."""

    make: Callable[[Path], list[str]]
    says: tuple[str, ...]
    progress: bool = False  # a pipeline run: its progress lines on stderr come before the one error line


def model_case(name: str, content: onnx.ModelProto | bytes, *says: str, command: str = "analyze",
               extra: tuple[str, ...] | list[str] = ()) -> CliCase:
    return CliCase(lambda folder: [command, str(write(folder, name, content)), *extra], says)


def with_lengths(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with a second input, int64 lengths per batch element, as ASR front ends take."""
    model.graph.input.append(helper.make_tensor_value_info("lens", TensorProto.INT64, ["batch"]))
    return model


def with_external(location: str, data: bytes | None = None, *says: str) -> CliCase:
    def make(folder: Path) -> list[str]:
        if data is not None:
            (folder / location).write_bytes(data)
        return ["analyze", str(write(folder, "ext.onnx", graph_model([SCALE], [external(location)])))]
    return CliCase(make, says)


def escaping_symlink(folder: Path) -> list[str]:
    (folder / "outside").mkdir()
    (folder / "outside" / "secret.bin").write_bytes(np.float32([1]).tobytes())
    (folder / "model").mkdir()
    (folder / "model" / "w.bin").symlink_to(folder / "outside" / "secret.bin")
    return ["analyze", str(write(folder / "model", "m.onnx", graph_model([SCALE], [external("w.bin")])))]


def escaping_to_a_fifo(folder: Path) -> list[str]:
    """The data 'file' outside is a FIFO with no writer: reading it would hang, so refusal must come first."""
    os.mkfifo(folder / "outside.fifo")
    (folder / "model").mkdir()
    return ["analyze", str(write(folder / "model", "m.onnx", graph_model([SCALE], [external("../outside.fifo")])))]


def a_pipe(folder: Path) -> list[str]:
    """A FIFO with no writer: opening it to read would hang, so it must be refused unopened."""
    os.mkfifo(folder / "model.onnx")
    return ["analyze", str(folder / "model.onnx")]


def over_the_size_limit(folder: Path) -> list[str]:
    path = folder / "huge.onnx"
    path.write_bytes(default_model().SerializeToString()[:64])
    os.truncate(path, PROTOBUF_LIMIT + 1)
    return ["analyze", str(path)]


def target_with(old: str, new: str) -> Callable[[Path], list[str]]:
    """`profile` with a copy of targets/rpi4.toml where `old` is replaced by `new`."""
    def make(folder: Path) -> list[str]:
        text = (ROOT / "targets" / "rpi4.toml").read_text()
        assert old in text
        (folder / "rpi4.toml").write_text(text.replace(old, new, 1))
        return ["profile", "--target", str(folder / "rpi4.toml")]
    return make


def rpi4_line(text: str) -> int:
    """The line of targets/rpi4.toml that starts with `text`."""
    lines = (ROOT / "targets" / "rpi4.toml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(text))


def broken_import(folder: Path, text: str = "not json") -> list[str]:
    """A runner result to import that holds `text` (an outputs npz beside it, as the import needs)."""
    (folder / "result.json").write_text(text)
    (folder / "result.outputs.npz").write_bytes(b"")
    return ["profile", "--target", "rpi4", "--import", str(folder / "result.json"), "--only", "dft-400tap",
            "--build", str(folder / "build"), "--artifacts", str(folder / "artifacts")]


def broken_ledger(folder: Path) -> list[str]:
    """--resume over a pipeline.json cut short."""
    (folder / "build" / "rpi4").mkdir(parents=True)
    (folder / "build" / "rpi4" / "pipeline.json").write_text('{"run_id": "')
    return ["profile", "--target", "rpi4", "--resume", "--build", str(folder / "build")]


MEL_BYTES = default_model().SerializeToString()
# audio x and a second float input: y = x * gain
GAIN = graph_model([helper.make_node("Mul", ["x", "gain"], ["y"], name="gain")])
GAIN.graph.input.append(helper.make_tensor_value_info("gain", TensorProto.FLOAT, [1]))
CYCLE = [helper.make_node("Add", ["x", "b"], ["a"], name="A"), helper.make_node("Mul", ["a", "x"], ["b"], name="B"),
         helper.make_node("Identity", ["b"], ["y"], name="out")]
MISSING_DATA = weight()
MISSING_DATA.dims[:] = [1000]

CLI_CASES: dict[str, CliCase] = {
    "not a file": CliCase(lambda folder: ["analyze", str(folder / "nowhere.onnx")], ("does not exist",)),
    "a folder": CliCase(lambda folder: ["analyze", str(folder)], ("not a regular file",)),
    "a pipe": CliCase(a_pipe, ("not a regular file",)),
    "empty": model_case("empty.onnx", b"", "is empty (0 bytes)"),
    "truncated": model_case("half.onnx", MEL_BYTES[: len(MEL_BYTES) // 2], "is truncated: field 'graph'",
                            f"needs {default_model().graph.ByteSize():,} bytes"),
    "TFLite file": model_case("m.onnx", b"\x1c\x00\x00\x00TFL3" + bytes(40), "not an ONNX model",
                              "TFLite flatbuffer"),
    "JSON file": model_case("m.onnx", b'{"model": 1}', "not an ONNX model", "JSON text"),
    "random bytes": model_case("m.onnx", np.random.default_rng(7).bytes(4096), "not an ONNX model"),
    "over the size limit": CliCase(over_the_size_limit, ("2,147,483,648 bytes", "external data")),
    "cycle": model_case("cycle.onnx", graph_model(CYCLE), "cycle through node 'A'"),
    "missing initializer": model_case("m.onnx", graph_model([SCALE]), "reads 'w'", "no input, initializer"),
    "control characters in a name": model_case("m.onnx", graph_model([helper.make_node("Mul", ["x", "w\n\x1b[2J"],
                                                                                      ["y"])]), r"reads 'w\n\x1b[2J'"),
    "data shorter than its shape": model_case("m.onnx", graph_model([SCALE], [MISSING_DATA]),
                                              "tensor 'w'", "shape [1000]"),
    "input of rank 1": model_case("m.onnx", graph_model([SCALE], [weight()], shape=("samples",)), "rank 1",
                                  "[batch, samples]", command="variants"),
    "input of rank 3": model_case("m.onnx", graph_model([SCALE], [weight()], shape=(1, 1, "samples")), "rank 3",
                                  command="variants"),
    "int16 input": model_case("m.onnx", graph_model([SCALE], [numpy_helper.from_array(np.int16([2]), "w")],
                                                    in_type=TensorProto.INT16), "is INT16", "must be float",
                              command="variants"),
    "fixed batch 0": model_case("m.onnx", graph_model([SCALE], [weight()], shape=(0, "samples")), "batch = 0",
                               command="variants"),
    "opset newer than onnx knows": model_case("m.onnx", graph_model([SCALE], [weight()], opset=99), "opset 99",
                                              f"knows 1 to {onnx.defs.onnx_opset_version()}"),
    "IR version newer than onnx knows": model_case("m.onnx", graph_model([SCALE], [weight()], ir_version=99),
                                                   "IR version 99"),
    "external data ../": with_external("../secret.bin", None, "'../secret.bin'", "outside the model's folder"),
    "external data absolute": with_external("/etc/hostname", None, "'/etc/hostname'", "outside the model's folder"),
    "external data symlink out": CliCase(escaping_symlink, ("resolves to", "outside the model's folder")),
    "external data escaping to a FIFO": CliCase(escaping_to_a_fifo, ("'../outside.fifo'", "refused")),
    "external data missing": with_external("w.bin", None, "not a file beside the model"),
    "external data truncated": with_external("w.bin", b"\0\0", "needs 4 bytes", "has 2 bytes"),
    "2 GB+ weights where a command needs them": CliCase(
        lambda folder: ["explain", str(big_model(folder))], ("2,147,483,712 bytes", "`analyze` counts")),
    "input value not a number": CliCase(lambda folder: ["variants", str(write(folder, "m.onnx", GAIN)), "--input",
                                                        "gain=loud"], ("--input gain=loud: 'loud' is not a number",
                                                                       "comma-separated numbers")),
    "input name unknown": CliCase(lambda folder: ["variants", str(write(folder, "m.onnx", GAIN)), "--input",
                                                  "volume=2"], ("the graph has no input 'volume'", "x, gain")),
    "input is the audio": CliCase(lambda folder: ["variants", str(write(folder, "m.onnx", GAIN)), "--input", "x=0"],
                                  ("'x' is the audio input, fed from the signal set",)),
    "samples below the minimum": CliCase(lambda _: ["analyze", "--samples", "511"],
                                         ("samples=511 is too small", "--samples 512")),
    "accuracy signals too long": CliCase(lambda _: ["variants", "--samples", str(10**11)],
                                         ("--samples 100000000000 is more than 9,600,000",)),
    "zero batch": CliCase(lambda _: ["analyze", "--batch", "0"], ("--batch 0 must be at least 1",)),
    "negative batch": CliCase(lambda _: ["analyze", "--batch", "-3"], ("--batch -3 must be at least 1",)),
    "samples not a number": CliCase(lambda _: ["analyze", "--samples", "1e3"], ("invalid int value: '1e3'",)),
    "unknown dim": CliCase(lambda _: ["analyze", "--dim", "channels=3"], ("dim 'channels' is not an input dim",)),
    "unknown input": CliCase(lambda _: ["analyze", "--input", "lens=3"],
                             ("input 'lens' is not an input of this model (its inputs: input)",)),
    "input value for the audio": CliCase(lambda _: ["analyze", "--input", "input=0"],
                                         ("input 'input' is the audio input", "--samples")),
    "analyze input value not a number": CliCase(lambda _: ["analyze", "--input", "lens=all"],
                                        ("'lens=all' is not NAME=NUMBER",)),
    "fractional value for an integer input": model_case(
        "m.onnx", with_lengths(graph_model([SCALE], [weight()])), "input 'lens' is INT64: 2.5 is not a whole number",
        extra=["--input", "lens=2.5"]),
    "unknown command": CliCase(lambda _: ["optimize"], ("invalid choice: 'optimize'",)),
    "imported result not JSON": CliCase(broken_import, ("result.json is not valid JSON",
                                                         "it should hold an imported runner result"), True),
    "imported JSON not a runner result": CliCase(lambda folder: broken_import(folder, '{"complete": true}'), (
        "result.json does not hold what the bench runner writes (no 'runs' field); make it again",),
        True),
    "resume over a cut ledger": CliCase(broken_ledger, ("pipeline.json is not valid JSON",
                                                        "it should hold the pipeline's ledger")),
    "unknown target name": CliCase(lambda _: ["profile", "--target", "rpi9"],
                                   ("unknown target 'rpi9'; known targets: ", "rpi4", "x86-host")),
    "target file with an unknown key": CliCase(target_with("[litert]\n", "[litert]\nturbo = true\n"), (
        f"rpi4.toml:{rpi4_line('[litert]') + 1}: unknown key '[litert] turbo'", "known keys there: threads")),
    "target file with a wrong type": CliCase(target_with("cores = 4", 'cores = "four"'), (
        f"rpi4.toml:{rpi4_line('cores = 4')}: [cpu] cores must be an integer", "got 'four'")),
}


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every CLI case run once, side by side."""
    arguments = {name: case.make(tmp_path_factory.mktemp("case")) for name, case in CLI_CASES.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(arguments, pool.map(run_cli, arguments.values()), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_refuses_with_one_line(name: str, cli_results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = cli_results[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 or CLI_CASES[name].progress, result.stderr
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr
    for fragment in CLI_CASES[name].says:
        assert fragment in lines[-1], lines[-1]


# ---------------------------------------------------------------- loading, in process


def test_external_data_inside_the_folder_is_read_and_inlined(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.float32([3.5]).tobytes())
    model = load_model(write(tmp_path, "m.onnx", graph_model([SCALE], [external("w.bin")])))
    (tensor,) = model.graph.initializer
    assert numpy_helper.to_array(tensor).tolist() == [3.5]
    assert tensor.data_location == TensorProto.DEFAULT and not tensor.external_data
    assert unread_weights(model) == {}


def test_truncation_at_a_field_boundary_is_still_caught(tmp_path: Path) -> None:
    """Cut right after the graph: every top-level field is whole, but the opsets are gone."""
    model = default_model()
    cut = model.SerializeToString()[: -len(model.opset_import[0].SerializeToString()) - 2]
    with pytest.raises(ToolkitError, match="declares no opset"):
        load_model(write(tmp_path, "cut.onnx", cut))


def test_a_custom_domain_opset_is_not_refused(tmp_path: Path) -> None:
    custom = helper.make_node("Denoise", ["x"], ["y"], domain="com.example", name="denoise")
    model = load_model(write(tmp_path, "m.onnx", graph_model([custom], domains=("com.example",))))
    assert [o.domain for o in model.opset_import] == ["", "com.example"]


# ---------------------------------------------------------------- partial analysis


def partial_model() -> onnx.ModelProto:
    """Counted Mul, then a custom op, then a Mul that depends on it, then an unknown standard op."""
    nodes = [helper.make_node("Mul", ["x", "w"], ["scaled"], name="scale"),
             helper.make_node("Denoise", ["scaled"], ["clean"], domain="com.example", name="denoise"),
             helper.make_node("Mul", ["clean", "w"], ["twice"], name="after"),
             helper.make_node("FancyOp", ["x"], ["fancy"], name="fancy"),
             helper.make_node("Add", ["twice", "fancy"], ["y"], name="join")]
    return graph_model(nodes, [weight()], domains=("com.example",))


def test_partial_analysis_marks_exactly_what_it_could_not_count() -> None:
    data = analyze(partial_model(), batch=2, samples=100).to_json()
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["scale"]["counted"] and nodes["scale"]["dense"]["mul"] == 200
    assert nodes["denoise"]["problem"] == "custom-domain op com.example.Denoise: not counted"
    assert nodes["fancy"]["problem"] == "no rule for FancyOp: not counted"
    assert "could not be analyzed" in nodes["after"]["problem"]
    assert data["not_counted"] == ["denoise", "after", "fancy", "join"]
    assert data["totals"]["dense"]["mul"] == 200 and data["complete"] is False


def test_partial_analysis_through_the_cli_says_what_the_totals_exclude(tmp_path: Path) -> None:
    path = write(tmp_path, "partial.onnx", partial_model())
    text, as_json = run_cli(["analyze", str(path)]), run_cli(["analyze", str(path), "--json"])
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert "excluding 4 node(s) not counted" in text.stdout
    assert "not counted: denoise, after, fancy, join" in text.stdout
    assert "custom-domain op com.example.Denoise: not counted" in " ".join(text.stdout.split())
    assert json.loads(as_json.stdout)["complete"] is False


# ---------------------------------------------------------------- big and absurd sizes


def test_two_gigabyte_model_is_counted_from_shapes_without_reading_its_weights(tmp_path: Path) -> None:
    path = big_model(tmp_path)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = analyze(path, batch=2, samples=BIG_ELEMENTS).to_json()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib) / 1024
    assert grown_mib < 256, f"peak memory grew by {grown_mib:.0f} MiB: the weights were read"
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["project"]["dense"]["mul"] == 2 * BIG_ELEMENTS
    assert nodes["project"]["dense"]["add"] == 2 * (BIG_ELEMENTS - 1)
    assert data["weights_not_read"] == {"W": 4 * BIG_ELEMENTS}
    assert data["effective_upper_bound"] == ["project"] and data["complete"] is False
    assert "effective_upper_bound" not in nodes["halve"]  # the 0.5 was read: halve's effective count is exact


def test_a_constant_of_terabytes_is_never_computed() -> None:
    """ConstantOfShape asked for 10^5 x 10^5 floats (40 GB): counted from its shape, value left unknown."""
    shape = numpy_helper.from_array(np.array([10**5, 10**5], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["zeros"], name="zeros"),
             helper.make_node("Mul", ["x", "zeros"], ["y"], name="times")]
    data = analyze(graph_model(nodes, [shape]), batch=1, samples=10**5).to_json()
    times = next(n for n in data["nodes"] if n["name"] == "times")
    assert times["dense"]["mul"] == 10**10
    assert times["effective_upper_bound"] == "values of constant input(s) zeros unknown"


def test_counts_at_10_to_the_30_samples_are_exact_integers() -> None:
    samples = 10**30
    frames = (samples - 512) // 160 + 1
    data = analyze(samples=samples).to_json()
    assert data["per_frame"]["frames"] == frames
    assert data["totals"]["dense"]["mul"] == 271_938 * frames > 2**64
    cli = run_cli(["analyze", "--samples", str(samples), "--json"])
    assert json.loads(cli.stdout)["totals"]["dense"]["mul"] == 271_938 * frames


# ---------------------------------------------------------------- targets


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(ToolkitError) as error:
        load_target("rpi9")
    message = str(error.value)
    assert message.startswith("unknown target 'rpi9'")
    assert all(name in message for name in known_targets()) and {"rpi4", "x86-host"} <= set(known_targets())


# ---------------------------------------------------------------- the docs table


def test_the_readme_table_names_only_tests_that_exist_and_every_cli_case() -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Bad input: what the toolkit does")[1]
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    named = set(re.findall(r"`(test_\w+)`", section))
    assert named and all(f"def {name}(" in sources for name in named), named
    assert set(re.findall(r"`\[([^\]]+)\]`", section)) == set(CLI_CASES)


def test_names_that_look_like_terminal_markup_are_printed_literally(tmp_path: Path) -> None:
    """Rich markup in op types, node and dim names ([/x] would raise a MarkupError): printed as written."""
    node = helper.make_node("Denoise[/x]", ["x"], ["y"], name="n[bold red]", domain="com.example")
    model = graph_model([node], shape=("b[/b]", "samples"), domains=("com.example",))
    result = run_cli(["analyze", str(write(tmp_path, "m.onnx", model))])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = " ".join(result.stdout.split())
    assert "not counted: n[bold red]" in text and "Denoise[/x]" in text and "'b[/b]'" in text
