"""The report command on the result files of a real quick profiling run (the pipeline, once per session).

The run uses a copy of targets/x86-host.toml with a smaller matrix (CPU and XNNPACK providers, 1 and 2 threads,
one optimization level) and four variants besides the original, so it takes about ten seconds on this host: the
tests that read it are marked slow. The runners-up test makes a smaller run of its own (about 3 s).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tests.test_pipeline import write_target
from tests.test_select import run, stream
from toolkit import cli, melgraph
from toolkit.pipeline.ledger import read_json, write_json
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.report import command, html, plots, terminal
from toolkit.select import choose
from toolkit.targets import load_target

TARGET = "mini-host"
VARIANTS = ("simplified", "dft-400tap-fused-mel-sparse", "int8-dynamic", "tflite")
MATRIX = {
    "name": f'"{TARGET}"',
    "providers": '["CPUExecutionProvider", "XnnpackExecutionProvider"]',
    "intra_op_threads": "[1, 2]",
    "graph_optimization": '["all"]',
    "allow_spinning": "[false]",
}
PLOTS = ("latency-stream", "latency-second", "latency-vs-mults", "node-shares", "window", "filterbank",
         "spectrogram")


def small_target(folder: Path) -> Path:
    """targets/x86-host.toml with MATRIX's values, under the name mini-host."""
    text = (Path(__file__).resolve().parent.parent / "targets" / "x86-host.toml").read_text(encoding="utf-8")
    for key, value in MATRIX.items():
        text, replaced = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert replaced == 1, key
    path = folder / f"{TARGET}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """build/ and artifacts/ of one real quick pipeline run, and the report folder written from them."""
    root = tmp_path_factory.mktemp("report")
    target = small_target(root)
    run_pipeline(Settings(target=str(target), variants=VARIANTS, quick=True, build_root=root / "build",
                          artifacts_root=root / "artifacts"))
    out = root / "out"
    code = cli.main(["report", "--build", str(root / "build"), "--artifacts", str(root / "artifacts"),
                     "--out", str(out), "--quiet"])
    assert code == 0
    return {"build": root / "build", "artifacts": root / "artifacts", "out": out}


@pytest.fixture(scope="session")
def view(profiled: dict[str, Path]) -> html.TargetView:
    return command.collect(TARGET, profiled["build"], profiled["artifacts"])


# ---------------------------------------------------------------- plots


def test_log_ticks_are_powers_of_ten_inside_the_range() -> None:
    scale = plots.Scale(0.003, 40.0, 0, 100, log=True)
    assert scale.ticks() == [0.01, 0.1, 1.0, 10.0]
    assert scale(0.003) == pytest.approx(0) and scale(40.0) == pytest.approx(100)


def test_linear_ticks_step_by_one_two_five() -> None:
    assert plots.Scale(0.0, 0.93, 0, 1).ticks() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])


def test_png_is_a_valid_image_of_the_given_pixels() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = plots.png(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (3, 2)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4:idat], "big")
    raw = zlib.decompress(data[idat + 4: idat + 4 + length])
    assert raw == b"\x00" + rgb[0].tobytes() + b"\x00" + rgb[1].tobytes()


def test_dot_plot_draws_one_mark_per_value_with_its_tooltip() -> None:
    dots = [plots.Dot(f"v{i}", f"s{i % 2}", 0.1 * (i + 1), f"tip {i}") for i in range(5)]
    svg = plots.dot_plot(dots, "t", "ms", marker=0.35, marker_label="budget")
    assert svg.count('class="data"') == 5
    assert all(f"<title>tip {i}</title>" in svg for i in range(5))
    assert 'class="marker"' in svg


# ---------------------------------------------------------------- gathering


@pytest.mark.slow
def test_collect_reads_the_choice_the_select_stage_made(profiled: dict[str, Path], view: html.TargetView) -> None:
    choice = json.loads((profiled["build"] / TARGET / "choice.json").read_text())
    assert view.choice["variant"] == choice["chosen"]["variant"]
    assert view.choice["median_ms"] == choice["chosen"]["median_ms"]
    assert view.latency_evidence == "measured-on-host"
    assert view.accuracy["int8-dynamic"]["passed"] is False


@pytest.mark.slow
def test_window_and_filterbank_are_recovered_from_the_graph(view: html.TargetView) -> None:
    params = melgraph.MelParams()
    np.testing.assert_allclose(view.model.window, melgraph.padded_window(params), atol=1e-6)
    np.testing.assert_allclose(view.model.filterbank, melgraph.mel_filterbank(params), atol=1e-7)


@pytest.mark.slow
def test_spectrogram_is_the_runner_output_of_both_variants(profiled: dict[str, Path], view: html.TargetView) -> None:
    spec = view.spectrogram
    with np.load(profiled["build"] / TARGET / "profile.outputs.npz") as npz:
        original = npz[f"original/{spec['signal']}"]
    assert spec["original"].shape == (97, 32)
    np.testing.assert_array_equal(spec["original"], original.reshape(97, 32))
    assert spec["variant"] == view.choice["variant"]


# ---------------------------------------------------------------- the HTML


def page(profiled: dict[str, Path]) -> str:
    return (profiled["out"] / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_html_is_self_contained(profiled: dict[str, Path]) -> None:
    text = page(profiled)
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(?:src|href)=["'](?!data:|#)""", text)


@pytest.mark.slow
def test_html_has_every_plot_with_data(profiled: dict[str, Path]) -> None:
    text = page(profiled)
    for name in PLOTS:
        match = re.search(rf'<figure data-plot="{name}">(.*?)</figure>', text, re.S)
        assert match is not None, name
        assert match[1].count('class="data"') > 0, name


@pytest.mark.slow
def test_rate_plot_has_one_point_per_counted_run(view: html.TargetView) -> None:
    counted = [r for r in view.runs if r["status"] == "ok" and r["format"] == "onnx"]
    (_, svg, _), = html.rate_plots(view)
    assert svg.count('class="data"') == len(counted) > 0


@pytest.mark.slow
def test_every_manifest_number_is_in_the_page(profiled: dict[str, Path]) -> None:
    manifest = json.loads((profiled["artifacts"] / TARGET / "manifest.json").read_text())
    numbers = html.flatten(manifest)
    text = html.plain(page(profiled))
    assert len(numbers) > 50
    missing = [path for path, value, _ in numbers if str(value) not in text]
    assert missing == []
    assert any(evidence == "measured-on-host" for _, _, evidence in numbers)


@pytest.mark.slow
def test_markdown_links_plots_that_exist(profiled: dict[str, Path], view: html.TargetView) -> None:
    text = (profiled["out"] / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.svg)\)", text)
    assert len(links) == len(PLOTS)
    assert all((profiled["out"] / link).read_text().startswith("<svg") for link in links)
    assert view.choice["variant"] in text


# ---------------------------------------------------------------- runners-up: select's reasons, in both reports

TIE_HOST = "tie-host"
# original on 1 thread is chosen over the 0.02 ms faster 2-thread run (within its 0.048 ms spread, thriftier);
# 2 threads with spinning is fastest but over max_stream_cpu_share 25%; dft-fused is plainly slower
TIE_RUNS = [run("original", 0.50), run("original", 0.48, threads=2, spinning=False),
            run("original", 0.20, threads=2, spinning=True), run("dft-fused", 0.60)]
TIE_STREAMS = [stream("original", 0.05), stream("original", 0.08, threads=2, spinning=False),
               stream("original", 0.45, threads=2, spinning=True), stream("dft-fused", 0.05)]
TIE_REASONS = ["1.20x the chosen's latency",
               "a near-tie of the chosen that uses more CPU or threads while streaming",
               "excluded: streaming CPU share 45.0% > max_stream_cpu_share"]


@pytest.fixture(scope="module")
def tie_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(build root, artifacts root) of a real quick run (the original, dft-fused, int8-dynamic failing the gate)
    whose choice.json select's choose() remade from its stage files with TIE_RUNS and TIE_STREAMS as the profile."""
    root = tmp_path_factory.mktemp("tie")
    target = load_target(write_target(root, TIE_HOST))
    folder = run_pipeline(Settings(target=str(root / f"{TIE_HOST}.toml"), variants=("dft-fused", "int8-dynamic"),
                                   quick=True, build_root=root / "build", artifacts_root=root / "artifacts")).folder
    doc = choose(read_json(folder / "variants.json", "variants")["variants"],
                 read_json(folder / "accuracy.json", "accuracy")["variants"],
                 read_json(folder / "platform.json", "platform"), {"runs": TIE_RUNS, "streaming": TIE_STREAMS},
                 target.policy, read_json(folder / "counts.json", "counts")["inference_audio"])
    write_json(folder / "choice.json", doc)
    return root / "build", root / "artifacts"


def markdown_reasons(text: str) -> list[str]:
    """The last cell of each row of report.md's runners-up table, as a reader sees it (pipes unescaped)."""
    section = text.split("### Runners-up and excluded variants\n\n", 1)[1].split("\n\n", 1)[0]
    return [row.rstrip(" |").rsplit(" | ", 1)[1].replace("\\|", "|") for row in section.splitlines()[2:]]


def html_reasons(page: str) -> list[str]:
    """The last cell of each row of report.html's runners-up table, as text."""
    section = page.split("<h3>Runners-up and excluded variants</h3>", 1)[1].split("</table>", 1)[0]
    return [html.plain(row.rsplit("<td>", 1)[1]) for row in section.split("<tbody>", 1)[1].split("</tr>")[:-1]]


def test_both_reports_give_select_s_reasons_for_the_runners_up(tie_folder: tuple[Path, Path]) -> None:
    view = command.collect(TIE_HOST, *tie_folder)
    assert (view.choice["variant"], view.choice["threads"]) == ("original", 1)
    text, _ = command.markdown_report([view], "plots")
    page = html.render_html([view])
    gate = next(e["reason"] for e in view.data["choice"]["excluded"] if e["variant"] == "int8-dynamic")
    assert gate.startswith("not profiled: failed the gate: max |dB error|")
    assert markdown_reasons(text) == html_reasons(page) == [*TIE_REASONS, gate]
    assert "x the chosen median" not in text and "x the chosen median" not in html.plain(page)


# ---------------------------------------------------------------- command and terminal


@pytest.mark.slow
def test_json_mode_prints_only_json(profiled: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["report", "--build", str(profiled["build"]), "--artifacts", str(profiled["artifacts"]),
                     "--out", str(tmp_path), "--format", "html", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["files"] == [str(tmp_path / "report.html")]
    assert document["targets"][0]["target"] == TARGET
    assert not (tmp_path / "report.md").exists()


def test_no_results_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--build", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make profile" in err


def test_runner_lines_get_an_eta_in_logs_and_vanish_when_quiet() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with terminal.runner_progress("profile", console=console) as feed:
        feed("[1/4] run|original|x: median 0.1 ms\n")
        feed("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        feed("[2/4] run|original|y: median 0.1 ms\n")
    lines = buffer.getvalue().splitlines()
    assert re.fullmatch(r"\[1/4\] run\|original\|x: median 0\.1 ms \(eta \d+ s\)", lines[0])
    assert lines[1] == "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    quiet = io.StringIO()
    with terminal.runner_progress("profile", quiet=True, console=Console(file=quiet)) as feed:
        feed("[1/4] run|original|x: median 0.1 ms\n")
    assert quiet.getvalue() == ""


def test_eta_is_the_average_rate_so_far() -> None:
    assert terminal.eta_seconds(0, 10, 5.0) is None
    assert terminal.eta_seconds(4, 10, 8.0) == pytest.approx(12.0)


@pytest.mark.slow
def test_several_targets_in_one_report(profiled: dict[str, Path], tmp_path: Path) -> None:
    for root in ("build", "artifacts"):
        shutil.copytree(profiled[root] / TARGET, tmp_path / root / "second-host")
        shutil.copytree(profiled[root] / TARGET, tmp_path / root / TARGET)
    args = ["report", "--build", str(tmp_path / "build"), "--artifacts", str(tmp_path / "artifacts"),
            "--format", "html", "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "all")]) == 0
    both = (tmp_path / "all" / "report.html").read_text(encoding="utf-8")
    assert both.count('<section id="target-') == 2
    assert 'id="target-second-host"' in both and f'id="target-{TARGET}"' in both
    assert cli.main([*args, "--target", "second-host", "--out", str(tmp_path / "one")]) == 0
    one = (tmp_path / "one" / "report.html").read_text(encoding="utf-8")
    assert one.count('<section id="target-') == 1 and 'id="target-second-host"' in one


def test_runner_lines_stay_above_the_bar_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200)
    with terminal.runner_progress("profile", console=console) as feed:
        assert feed.bar is not None
        feed("[1/2] run|original|x: median 0.1 ms\n")
        feed("[2/2] run|tflite|y: unavailable: no LiteRT\n")
        assert feed.bar.tasks[0].completed == 2 and feed.bar.tasks[0].total == 2
    assert "run|original|x: median 0.1 ms" in buffer.getvalue()
    assert "run|tflite|y: unavailable: no LiteRT" in buffer.getvalue()
