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
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from rich.console import Console

from tests.test_pipeline import write_target
from tests.test_select import run, stream
from toolkit import cli, melgraph, terminal
from toolkit.configs import config_text
from toolkit.folder import BuildFolder
from toolkit.pipeline.orchestrate import Settings, run_pipeline
from toolkit.records import PlatformFile, PredictionErrors, Rows, RunRecord, StreamRecord
from toolkit.report import Gathered, command, html, plots
from toolkit.report.markdown import predicted
from toolkit.select import choose
from toolkit.targets import load_target

Json = dict[str, Any]
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
    assert view.accuracy["int8-dynamic"].passed is False


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
    counted = [r for r in view.runs if r.ok and r.format == "onnx"]
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
TIE_RUNS = [RunRecord.from_json(r) for r in (run("original", 0.50), run("original", 0.48, threads=2, spinning=False),
                                              run("original", 0.20, threads=2, spinning=True), run("dft-fused", 0.60))]
TIE_STREAMS = [StreamRecord.from_json(s) for s in (stream("original", 0.05),
                                                   stream("original", 0.08, threads=2, spinning=False),
                                                   stream("original", 0.45, threads=2, spinning=True),
                                                   stream("dft-fused", 0.05))]
TIE_REASONS = ["1.20x the chosen's latency",
               "a near-tie of the chosen that uses more CPU or threads while streaming",
               "excluded: streaming CPU share 45.0% > max_stream_cpu_share"]


@pytest.fixture(scope="module")
def tie_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(build root, artifacts root) of a real quick run (the original, dft-fused, int8-dynamic failing the gate)
    whose choice.json select's choose() remade from its stage files with TIE_RUNS and TIE_STREAMS as the profile's
    runs."""
    root = tmp_path_factory.mktemp("tie")
    target = load_target(write_target(root, TIE_HOST))
    folder = run_pipeline(Settings(target=str(root / f"{TIE_HOST}.toml"), variants=("dft-fused", "int8-dynamic"),
                                   quick=True, build_root=root / "build", artifacts_root=root / "artifacts")).folder
    files = BuildFolder(folder)
    profile = replace(files.profile(), runs=TIE_RUNS, streaming=TIE_STREAMS)
    doc = choose(files.variants().variants, files.accuracy().variants, files.platform(), profile, target.policy,
                 files.counts().inference_audio)
    files.write("choice", doc)
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
    gate = next(e.reason for e in view.data.choice.excluded if e.variant == "int8-dynamic")
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


# ---------------------------------------------------------------- OpenVINO engines (runner format 3)


NATIVE = {"engine": "openvino", "provider": "CPU", "spinning": None, "optimization": None}
PLUGIN = {"engine": "onnxruntime", "provider": "OpenVINOExecutionProvider", "spinning": None}
F16_ERROR = "max |dB error| 324 > 0.5 (max_abs_db_error); worst at 0 dBFS"


def openvino_runs(base: Json) -> list[Json]:
    """The original's chunk run again as the runner records OpenVINO runs: natively at f32 and f16 (all 14 nodes
    on the device, the exec graph's runtime precisions) and through the plugin EP at f32 with 12 of 14 nodes
    placed; and a run whose plugin EP placed none of the nodes."""
    def on(engine: Json, precision: str, median: float, placement: Json) -> Json:
        return {**base, **engine, "precision": precision, "key": f"{base['key']}|{engine['engine']}|{precision}",
                "latency_ms": {**base["latency_ms"], "median": median}, "placement": placement}

    native = {"nodes": 14, "labelled": 14, "method": "exec graph", "by_provider": {"CPU": 14}}
    plugin = {"nodes": 14, "labelled": 12, "method": "session profile",
              "by_provider": {"OpenVINOExecutionProvider": 12, "CPUExecutionProvider": 2}}
    failed = {k: v for k, v in on(PLUGIN, "bf16", 0.0, {}).items() if k not in ("latency_ms", "placement")}
    return [on(NATIVE, "f32", 0.04321, {**native, "precisions": {"f32": 14}}),
            on(NATIVE, "f16", 0.01234, {**native, "precisions": {"f16": 12, "f32": 2}}),
            on(PLUGIN, "f32", 0.05678, plugin),
            {**failed, "status": "failed",
             "reason": "placement: OpenVINOExecutionProvider ran none of the 14 nodes"}]


@pytest.fixture(scope="session")
def with_openvino(profiled: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """report.md and report.html of the profiled results with OpenVINO runs and their verdicts where the runs
    ran added: f16's outputs fail (324 dB), f32's pass."""
    root = tmp_path_factory.mktemp("openvino")
    for part in ("build", "artifacts"):
        shutil.copytree(profiled[part] / TARGET, root / part / TARGET)
    folder = root / "build" / TARGET
    profile = json.loads((folder / "profile.json").read_text(encoding="utf-8"))
    base = next(r for r in profile["runs"] if r["status"] == "ok" and r["variant"] == "original"
                and r["workload"] == "stream" and r["provider"] == "CPUExecutionProvider" and r["threads"] == 1)
    profile["runs"] = [r for r in profile["runs"] if r.get("precision") is None]  # this host's own, if any
    profile["runs"] += openvino_runs(base)
    (folder / "profile.json").write_text(json.dumps(profile), encoding="utf-8")
    platform = json.loads((folder / "platform.json").read_text(encoding="utf-8"))
    platform["accuracy"].update({
        "original@openvino.CPU.f16": {"measured": True, "passed": False, "reasons": [F16_ERROR],
                                      "report": {"overall": {"max_abs_db": 324.0}}},
        "original@openvino.CPU.f32": {"measured": True, "passed": True, "reasons": [],
                                      "report": {"overall": {"max_abs_db": 0.0012}}},
    })
    (folder / "platform.json").write_text(json.dumps(platform), encoding="utf-8")
    out = root / "out"
    assert cli.main(["report", "--build", str(root / "build"), "--artifacts", str(root / "artifacts"),
                     "--out", str(out), "--quiet"]) == 0
    return {f: (out / f"report.{f}").read_text(encoding="utf-8") for f in ("md", "html")}


def section(text: str, heading: str) -> str:
    """One '## ' section of a Markdown report."""
    return text.split(f"\n{heading}", 1)[1].split("\n## ", 1)[0]


def test_markdown_latency_rows_are_distinct_per_precision_with_their_placement(
        with_openvino: dict[str, str]) -> None:
    rows = {line.split(" | ")[1]: line for line in section(with_openvino["md"], "## Latency").splitlines()
            if line.startswith("| original | ")}
    assert "| 0.04321 |" in rows["openvino CPU f32, 1 thr"] and "| 0.01234 |" in rows["openvino CPU f16, 1 thr"]
    assert rows["openvino CPU f16, 1 thr"].endswith(
        "| 14 of 14 nodes on openvino CPU; runtime precision f16 12, f32 2 |")
    assert rows["OpenVINOExecutionProvider f32, 1 thr, opt all"].endswith(
        "| 12 of 14 nodes on OpenVINOExecutionProvider (2 on CPUExecutionProvider) |")
    # this host's own CPU-provider run, its placement read from onnxruntime: every node on the CPU provider
    assert re.search(r"\| (\d+) of \1 nodes on CPUExecutionProvider \|$", rows["CPUExecutionProvider, 1 thr, opt all"])


def test_markdown_lists_a_failed_placement_and_each_settings_verdict_where_it_ran(
        with_openvino: dict[str, str]) -> None:
    text = with_openvino["md"]
    assert ("- original on OpenVINOExecutionProvider bf16 (failed): placement: OpenVINOExecutionProvider ran none "
            "of the 14 nodes") in section(text, "## Latency")
    accuracy = section(text, "## Variants and the accuracy gate")
    assert f"- original@openvino.CPU.f16: fails: {F16_ERROR}" in accuracy
    assert "- original@openvino.CPU.f32: passes: max |dB error| 0.0012" in accuracy


def test_html_shows_precision_placement_and_the_failed_setting(with_openvino: dict[str, str]) -> None:
    text = html.plain(with_openvino["html"])
    assert "original | openvino CPU f16, 1 thr | stream: median 0.01234 ms" in text
    assert ("original, OpenVINO f32, 1 thr, opt all: 12 of 14 nodes on OpenVINOExecutionProvider (2 on "
            "CPUExecutionProvider)") in text
    assert ("original on OpenVINOExecutionProvider bf16 (failed): placement: OpenVINOExecutionProvider ran none of "
            "the 14 nodes") in text
    assert f"original@openvino.CPU.f16: fails: {F16_ERROR}" in text


def test_each_engine_settings_prediction_shows_its_own_instruction_count() -> None:
    """Two OpenVINO precisions of one variant are counted apart: each predicted row carries its own count."""
    def config(precision: str) -> dict[str, Any]:
        return {"engine": "openvino", "provider": "CPU", "threads": 1, "spinning": None, "optimization": None,
                "precision": precision}

    rows = [{"variant": "original", "workload": "stream", "config": config(p), "latency_ms": ms, "bound": "issue",
             "bounds_ms": {"issue": ms}, "method": "pipe rates", "core": "Cortex-A76", "clock_ghz": 2.4}
            for p, ms in (("f32", 0.4993), ("f16", 0.3209))]
    counts = [{"variant": "original", "workload": "stream", "config": config(p), "total": total}
              for p, total in (("f32", 4793670), ("f16", 3080502))]
    platform = PlatformFile("emulate", "", "emulated-wall-time", "emulated-instructions", {}, False,
                            instructions=Rows("emulated-instructions", counts, ""),
                            predictions=Rows("predicted", rows, ""),
                            prediction_error=PredictionErrors("derived", [], None, "no board measurement"),
                            accuracy={})
    text = "\n".join(predicted(cast(Gathered, SimpleNamespace(platform=platform))))  # predicted reads platform only
    assert "| openvino CPU f32, 1 thr | 4,793,670 | 0.4993 |" in text
    assert "| openvino CPU f16, 1 thr | 3,080,502 | 0.3209 |" in text


# ---------------------------------------------------------------- both reports state the same facts


def markdown_facts(text: str) -> Json:
    """The chosen variant and configuration (headline and choice line), select's reasons, the runners-up table's
    (variant, configuration, why) and the engine settings' verdicts, as report.md states them."""
    chosen = re.search(r"^\*\*(.+?)\*\* on (.+?): ", text, re.M)
    title = re.search(rf"^# {TARGET}: (\S+) \((.+)\)$", text, re.M)
    assert chosen is not None and title is not None
    choice = section(text, "## Choice").split("\n\nRule: ", 1)[0]
    rows = section(text, "## Choice").split("### Runners-up and excluded variants\n\n", 1)[1].splitlines()[2:]
    cells = [row.strip("| ").split(" | ") for row in rows if row.startswith("| ")]
    settings = section(text, "## Variants and the accuracy gate").split("numerics of their own", 1)[1]
    return {"chosen": (chosen[1], chosen[2]), "title": (title[1], title[2]),
            "reasons": [line[2:] for line in choice.splitlines() if line.startswith("- ")],
            "rows": [(c[0], c[1], c[-1].replace("\\|", "|")) for c in cells],
            "settings": [line[2:] for line in settings.splitlines() if line.startswith("- ")]}


def html_facts(page: str) -> Json:
    """The same facts as report.html states them (as text)."""
    chosen = re.search(r'data-role="chosen-variant">(.*?)</div><div>(.*?)</div>', page)
    assert chosen is not None
    why = page.split("<h3>Why</h3><ul>", 1)[1].split("</ul>", 1)[0]
    table = page.split("<h3>Runners-up and excluded variants</h3>", 1)[1].split("</tbody>", 1)[0]
    cells = [[html.plain(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in table.split("</tr>")[1:-1]]
    return {"chosen": (html.plain(chosen[1]), html.plain(chosen[2])),
            "reasons": [html.plain(r) for r in re.findall(r"<li>(.*?)</li>", why)],
            "rows": [(c[0], c[1], c[-1]) for c in cells],
            "settings": [html.plain(s) for s in re.findall(r"<li><span class='(?:pass|fail)'>(.*?)</span></li>", page)]}


@pytest.mark.slow
def test_both_reports_state_the_same_choice_reasons_exclusions_and_setting_verdicts(
        profiled: dict[str, Path], with_openvino: dict[str, str]) -> None:
    """report.md and report.html of one real run (with two OpenVINO settings' verdicts added) agree on every fact
    they both state, and each is select's or the gate's own."""
    choice = BuildFolder(profiled["build"] / TARGET).choice()
    assert choice.chosen is not None
    md, page = markdown_facts(with_openvino["md"]), html_facts(with_openvino["html"])
    assert md["chosen"] == md["title"] == page["chosen"] == (choice.chosen.variant, config_text(choice.chosen.config()))
    assert md["reasons"] == page["reasons"] == choice.reasons
    assert md["rows"] == page["rows"]
    excluded = {variant: why for variant, configuration, why in md["rows"] if configuration == "-"}
    assert excluded == {e.variant: e.reason for e in choice.excluded} and "int8-dynamic" in excluded
    assert md["settings"] == page["settings"]  # this host's own OpenVINO settings too, when it has OpenVINO
    assert {f"original@openvino.CPU.f16: fails: {F16_ERROR}",
            "original@openvino.CPU.f32: passes: max |dB error| 0.0012"} <= set(md["settings"])
