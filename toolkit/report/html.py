"""One self-contained HTML report for one or more targets: inline CSS, inline SVG plots, no script, no network.

A person opening it sees, per target, the choice and why first, then the runners-up, the accuracy by input
level, the plots, and the analytic model. Every number sits next to its evidence label (the labels of
toolkit.evidence: counted, measured-on-host, emulated-..., predicted, target-file-estimate).
render_html(views) takes TargetView records (built by toolkit.report.command.collect) and returns the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape, unescape
from typing import Any

import numpy as np

from toolkit.configs import config_text, engine_words, placement_words, same
from toolkit.evidence import COUNTED, EMULATED_TIME, ESTIMATED
from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS, now_utc
from toolkit.records import ContradictionSummary, RunRecord, Verdict, measured
from toolkit.report import Facts, Gathered, could_not_run, plots

CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330;line-height:1.4}
main{max-width:1040px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:12px 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #4e79a7}
h3{font-size:16px;margin:20px 0 6px}
.card{background:#fff;border:1px solid #d8dbe2;border-radius:8px;padding:12px 16px;margin:10px 0}
.choice{border-left:6px solid #59a14f}.choice .big{font-size:20px;font-weight:600}
.none{border-left:6px solid #e15759}
table{border-collapse:collapse;font-size:13px;margin:6px 0;background:#fff}
th,td{border:1px solid #d8dbe2;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef0f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ev{display:inline-block;font-size:10px;padding:0 5px;border-radius:8px;margin-left:4px;white-space:nowrap;
background:#e8eef7;color:#2b4a75;border:1px solid #b9c8df}
.ev-counted{background:#eef6ec;color:#2f5f27;border-color:#bcd8b5}
.ev-predicted,.ev-target-file-estimate{background:#fff4e5;color:#7a4a00;border-color:#f0cf9c}
.ev-emulated-instructions,.ev-emulated-wall-time{background:#f5ecf7;color:#5d2c6b;border-color:#d9bfe0}
.fail{color:#b00020}.pass{color:#2f6b2f}
figure{background:#fff;border:1px solid #d8dbe2;border-radius:8px;margin:12px 0;padding:8px;overflow-x:auto}
figcaption{font-size:12px;color:#4a5263;margin-top:4px}
pre{background:#fff;border:1px solid #d8dbe2;padding:8px;overflow-x:auto;font-size:12px}
.small{font-size:12px;color:#4a5263}
"""


def plain(html_text: str) -> str:
    """Text of an HTML fragment (tags dropped, entities decoded), for Markdown captions."""
    return unescape(re.sub(r"<[^>]+>", "", html_text))


def badge(label: str | None) -> str:
    """The evidence label as a small coloured tag."""
    if not label:
        return ""
    return f'<span class="ev ev-{escape(label)}">{escape(label)}</span>'


def num(value: Any) -> str:
    """A number as text: integers with thousands separators, floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


@dataclass
class ModelView:
    """The analytic model of the input graph: counts, formulas, equation, recovered window and filterbank."""

    analysis: Json  # toolkit.analysis Analysis.to_json() at the reference input
    equation: str | None = None
    blocks: list[Json] = field(default_factory=list)
    window: np.ndarray | None = None  # taps over the frame, as the graph holds them
    filterbank: np.ndarray | None = None  # [bins, bands]
    sample_rate: int = 16000
    notes: list[str] = field(default_factory=list)


@dataclass
class TargetView:
    """Everything one target's section shows, already gathered from the result files."""

    name: str
    description: str
    cpu: str
    peak: dict[int, float]  # threads -> peak multiplications per second (target file estimate)
    peak_method: str
    latency_evidence: str
    output_evidence: str
    choice: Json | None  # the chosen candidate's JSON with its headline numbers ("numbers"), or None
    facts: Facts  # what report.md states too (toolkit.report.Facts)
    manifest: Json
    accuracy: dict[str, Verdict]  # accuracy.json's verdict per variant
    runs: list[RunRecord]  # profile.json's runs
    counts: dict[str, dict[str, Json]]  # variant -> workload -> {"dense": mul, "effective": mul, "nodes": {}}
    model: ModelView
    spectrogram: Json | None  # {"signal", "variant", "original": [T, bands], "chosen": [T, bands]}
    data: Gathered  # the build folder's records (toolkit.report.gather)
    contradictions: list[ContradictionSummary] = field(default_factory=list)  # compare.json contradiction_summary
    node_rows: list[Json] = field(default_factory=list)  # compare.json nodes: per-run per-node tables
    sources: dict[str, str] = field(default_factory=dict)  # file role -> path it was read from


# ---------------------------------------------------------------- pieces


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    """An HTML table; cells are already-escaped HTML; numeric columns align right."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{c}</td>' if i < len(numeric) and numeric[i] else f"<td>{c}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(name: str, svg: str, caption: str) -> str:
    """A plot with its caption; data-plot names it for the browser test."""
    return f'<figure data-plot="{escape(name)}">{svg}<figcaption>{caption}</figcaption></figure>'


def flatten(document: Any, prefix: str = "", evidence: str | None = None) -> list[tuple[str, Any, str | None]]:
    """(path, number, evidence) for every number in a JSON tree; evidence is the nearest enclosing "evidence"."""
    if isinstance(document, dict):
        evidence = document.get("evidence", evidence) if isinstance(document.get("evidence"), str) else evidence
        return [item for key, value in document.items()
                for item in flatten(value, f"{prefix}.{key}" if prefix else str(key), evidence)]
    if isinstance(document, list):
        return [item for i, value in enumerate(document) for item in flatten(value, f"{prefix}[{i}]", evidence)]
    if isinstance(document, (int, float)) and not isinstance(document, bool):
        return [(prefix, document, evidence)]
    return []


# ---------------------------------------------------------------- sections


def choice_section(view: TargetView) -> str:
    """The decision first: what to ship, on which provider and threads, and why."""
    facts = view.facts
    reasons = "".join(f"<li>{escape(r)}</li>" for r in facts.reasons)
    if facts.chosen is None or view.choice is None:
        return f'<div class="card none"><div class="big">No variant chosen for {escape(view.name)}</div>' \
               f"<ul>{reasons or '<li>no selection result found</li>'}</ul></div>"
    numbers = "".join(
        f"<li>{escape(label)}: <b>{num(value)}</b>{escape(unit)} {badge(evidence)}</li>"
        for label, value, unit, evidence in view.choice.get("numbers", [])
    )
    return (f'<div class="card choice"><div class="small">chosen for {escape(view.name)}</div>'
            f'<div class="big" data-role="chosen-variant">{escape(facts.chosen.variant)}</div>'
            f"<div>{escape(facts.configuration or '')}</div><ul>{numbers}</ul>"
            f"<h3>Why</h3><ul>{reasons}</ul></div>")


def runners_up_section(view: TargetView) -> str:
    """Runners-up with their numbers, then the excluded variants, each with select's reason (the rows report.md
    shows: toolkit.report.Facts)."""
    if not view.facts.runners_up:
        return "<p>No runners-up recorded.</p>"
    rows = [(escape(r.variant), escape(r.configuration or "-"),
             "-" if r.median_ms is None else f"{num(r.median_ms)} {badge(r.evidence)}",
             escape(r.why)) for r in view.facts.runners_up]
    return table(("variant", "configuration", "median ms (stream chunk)", "why not chosen"), rows,
                 (False, False, True, False))


def accuracy_section(view: TargetView) -> str:
    """Max |dB error| against the original by input level, the overall figures and the gate, per variant."""
    if not view.accuracy:
        return "<p>No accuracy results found.</p>"
    levels = list(dict.fromkeys(level for a in view.accuracy.values() for level in a.by_level))
    header = ["variant", "gate", "max |dB|", "p99 |dB|", "max rel mel", *[f"max |dB| {escape(lv)}" for lv in levels]]
    rows = []
    for variant, acc in view.accuracy.items():
        overall = acc.overall
        gate = '<span class="pass">pass</span>' if acc.passed else '<span class="fail">fail</span>'
        by_level = acc.by_level
        rows.append((escape(variant), gate, num(overall.get("max_abs_db")), num(overall.get("p99_abs_db")),
                     num(overall.get("max_rel_mel")),
                     *[num(by_level.get(lv, {}).get("max_abs_db")) for lv in levels]))
    note = f"<p class='small'>Errors of each variant's output against the original on the generated signal set, " \
           f"by nominal input level {badge(view.output_evidence)}.</p>"
    return note + table(header, rows, (False, False, *([True] * (3 + len(levels))))) + settings_list(view)


def settings_list(view: TargetView) -> str:
    """The engine settings gated on their own outputs where the runs ran (an OpenVINO precision), each verdict with
    its error: a precision can fail while its variant passes."""
    if not view.facts.settings:
        return ""
    items = "".join(f"<li><span class='{'pass' if s.passed else 'fail'}'>{escape(s.outputs)}: {escape(s.text)}</span>"
                    "</li>" for s in view.facts.settings)
    return (f"<p class='small'>Engine settings with numerics of their own, gated like a variant on their outputs "
            f"where the runs ran {badge(view.output_evidence)}:</p><ul>{items}</ul>")


Plot = tuple[str, str, str]  # (name, svg, caption html)



def latency_plots(view: TargetView) -> list[Plot]:
    """Median latency per variant x provider x threads, one plot per workload, the budget marked; none for runs
    under emulation, whose wall time is not a board latency (their predictions are in the choice)."""
    if view.latency_evidence == EMULATED_TIME:
        return []
    plots_out = []
    budget = view.data.choice.policy.get("max_chunk_ms")
    for workload in dict.fromkeys(r.workload for r in view.runs if r.ok):
        dots = [plots.Dot(r.variant, config_text(r.config()), measured(r).median,
                          f"{r.variant} | {config_text(r.config())} | {workload}: median {measured(r).median:.4g} ms"
                          f" over {measured(r).n} runs ({view.latency_evidence})"
                          + (f"; {placement_words(r.to_json())}" if r.placement else ""))
                for r in view.runs if r.ok and r.workload == workload]
        marker = budget if workload == "stream" and isinstance(budget, (int, float)) else None
        svg = plots.dot_plot(dots, f"median latency, workload {workload} ({view.latency_evidence})",
                             "median latency (ms, log scale)", marker=marker,
                             marker_label=f"real-time budget {marker} ms" if marker else "")
        budget_text = f" Red: the real-time budget, {num(marker)} ms." if marker else ""
        plots_out.append((f"latency-{workload}", svg,
                          f"One dot per run: variant (row) x provider and threads (colour). Median of the timed "
                          f"runs {badge(view.latency_evidence)}.{budget_text}"))
    return plots_out


def unavailable_list(view: TargetView) -> str:
    """Runs that could not run (a missing provider, a crash, a provider that placed none of the nodes), with the
    runner's reason (never silently dropped)."""
    missing = could_not_run(view.runs)
    if not missing:
        return ""
    return ("<p class='small'>Could not run here (recorded with the reason, not dropped):</p><ul>"
            + "".join(f"<li class='small'>{escape(what)}: {escape(why)}</li>" for what, why in missing.items())
            + "</ul>")


def placement_list(view: TargetView) -> str:
    """Where each engine placed the graph's nodes, per variant and setting, when any run placed part of them
    elsewhere (onnxruntime falls back to its CPU provider for nodes the labelled one cannot run)."""
    seen: dict[str, str] = {}
    for run in view.runs:
        placement = run.placement
        if run.ok and placement and placement["labelled"] < placement["nodes"]:
            seen.setdefault(f"{run.variant}, {config_text(run.config())}", placement_words(run.to_json()) or "")
    if not seen:
        return ""
    return ("<p class='small'>Partial placement (the labelled engine ran only part of the graph):</p><ul>"
            + "".join(f"<li class='small'>{escape(what)}: {escape(words)}</li>" for what, words in seen.items())
            + "</ul>")


def rate_plots(view: TargetView) -> list[Plot]:
    """Measured latency against analytic multiplications, one point per run, ideal lines at the peak (none for
    runs under emulation: emulation wall time is not a board latency)."""
    if view.latency_evidence == EMULATED_TIME:
        return []
    points = []
    for r in view.runs:
        mults = view.counts.get(r.variant, {}).get(r.workload, {}).get("dense")
        if not r.ok or not mults:
            continue
        ms = measured(r).median
        achieved = mults / (ms / 1000.0)
        points.append(plots.Point(
            float(mults), ms, f"{engine_words(r.config(), short=True)}, {r.threads} thr",
            f"{r.variant} | {config_text(r.config())} | {r.workload}: {mults:,} mul ({COUNTED}) in {ms:.4g} ms "
            f"({view.latency_evidence}) = {achieved:.3g} mul/s, {achieved / view.peak.get(r.threads, math.inf):.2%}"
            f" of peak", "square" if r.workload == "second" else "circle"))
    if not points:
        return []
    lines = [plots.Line(rate / 1000.0, f"peak {t} thr {plots.number(rate)} mul/s", "" if i == 0 else "5 4")
             for i, (t, rate) in enumerate(sorted(view.peak.items(), reverse=True))]
    svg = plots.rate_scatter(points, lines, "median latency against analytic multiplications",
                             "dense multiplications per inference (analytic, log)", "median latency (ms, log)")
    return [("latency-vs-mults", svg,
             f"One point per run. Circles: 1760-sample chunk; squares: 16000 samples. x {badge(COUNTED)}, y "
             f"{badge(view.latency_evidence)}; red lines: the time at the target's peak {badge(ESTIMATED)} "
             f"({escape(view.peak_method)}). The farther a point sits above its line, the smaller the share of "
             f"the peak that run achieved.")]


def _node_label(row: Json) -> str:
    """A per-node row's name: the node, or the kernel with the nodes it absorbed."""
    names = row["nodes"] or [k["name"] for k in row["kernels"]]
    head = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
    return head if row["kind"] == "kernel" else f"{head} ({row['kind']})"


def node_table(view: TargetView) -> Json | None:
    """compare.json's per-node table for the chosen configuration (the original's when the chosen variant has
    no per-node profile, as LiteRT has none), one second of audio preferred."""
    chosen = view.facts.chosen
    for variant in (chosen.variant if chosen else None, "original"):
        tables = [t for t in view.node_rows if t["variant"] == variant]
        matching = [t for t in tables if chosen and same(t, chosen.config(), CONFIG_FIELDS)]
        found = next(iter(sorted(matching or tables, key=lambda t: t["workload"] != "second")), None)
        if found is not None:
            return found
    return None


def share_plots(view: TargetView) -> list[Plot]:
    """Each node's share of time against its share of multiplications, for the chosen (or original) variant;
    nodes folded into constants at session creation (no kernel time, no multiplications) are counted, not drawn."""
    found = node_table(view)
    if found is None:
        return []
    shares = []
    folded = [row for row in found["rows"] if row["kind"] == "folded" and not (row.get("mul") or {}).get("dense")]
    for row in (r for r in found["rows"] if r not in folded):
        mul_share = (row.get("mul_share") or {}).get("dense")
        time_share = row.get("time_share") or 0.0
        tip = (f"{', '.join(row['nodes']) or 'no model node'} [{row['kind']}; kernels "
               f"{', '.join(k['name'] for k in row['kernels']) or 'none'}]: {time_share:.1%} of kernel time "
               f"({view.latency_evidence})"
               + (f", {mul_share:.1%} of multiplications ({COUNTED})" if mul_share is not None else ""))
        shares.append(plots.Share(_node_label(row), time_share, mul_share, tip))
    svg = plots.share_bars(shares, f"{found['variant']}: node time share vs multiplication share",
                           "share of kernel time")
    return [("node-shares", svg,
             f"{escape(found['variant'])}, {escape(config_text(found))}, workload {escape(found['workload'])}: "
             f"onnxruntime's per-node profile {badge(view.latency_evidence)} against the analyzer's per-node "
             f"multiplications {badge(COUNTED)}. fused: a kernel that ran several model nodes; absorbed: no kernel "
             f"of its own; created: a kernel with no model node; {len(folded)} constant nodes folded at session "
             f"creation are not drawn.")]


def spectrogram_plots(view: TargetView) -> list[Plot]:
    """One test signal through the original and the chosen variant, and their difference."""
    spec = view.spectrogram
    if spec is None:
        return []
    original, chosen = spec["original"], spec["chosen"]
    lo, hi = float(min(original.min(), chosen.min())), float(max(original.max(), chosen.max()))
    diff = chosen.astype(np.float64) - original.astype(np.float64)
    bound = float(np.abs(diff).max())
    panels = [plots.Panel(original, "original", lo, hi), plots.Panel(chosen, spec["variant"], lo, hi),
              plots.Panel(diff, f"{spec['variant']} - original", -(bound or 1e-9), bound or 1e-9, diverging=True)]
    svg = plots.heatmaps(panels, f"log-mel output of signal {spec['signal']}")
    return [("spectrogram", svg,
             f"Signal {escape(spec['signal'])} through the original and through {escape(spec['variant'])}, "
             f"as computed where the runs ran {badge(view.output_evidence)}; largest |difference| "
             f"{bound:.3g} dB.")]


def model_plots(model: ModelView) -> list[Plot]:
    """The window and the mel filterbank as the graph holds them."""
    out = []
    if model.window is not None:
        taps = np.arange(len(model.window))
        nonzero = np.flatnonzero(model.window)
        svg = plots.curves(taps, model.window, "analysis window recovered from the graph", "tap", "weight",
                           ["window"])
        out.append(("window", svg, f"{len(model.window)} taps, nonzero {int(nonzero[0])}..{int(nonzero[-1])}: the "
                                   f"taps explain fitted out of the DFT kernels (or the STFT op's window input)."))
    if model.filterbank is not None:
        bins = model.filterbank.shape[0]
        hz = np.arange(bins) * model.sample_rate / (2 * (bins - 1))
        svg = plots.curves(hz, model.filterbank, "mel filterbank recovered from the graph",
                           f"frequency (Hz, at {model.sample_rate} Hz sampling)", "weight",
                           [f"band {m}" for m in range(model.filterbank.shape[1])], color_each=True)
        out.append(("filterbank", svg, f"{model.filterbank.shape[1]} bands over {bins} FFT bins, "
                                       f"{int(np.count_nonzero(model.filterbank))} nonzero weights: the constant "
                                       f"of the MatMul explain recognized as the mel filterbank."))
    return out


def all_plots(view: TargetView) -> dict[str, list[Plot]]:
    """Every plot of a target, by report section."""
    return {"latency": latency_plots(view), "analytic": rate_plots(view) + share_plots(view),
            "model": model_plots(view.model) + spectrogram_plots(view)}


def contradictions_table(view: TargetView) -> str:
    """Where fewer multiplications was not faster, with the numbers (compare.json)."""
    if not view.contradictions:
        return "<p>No pair of counted variants ranks differently by multiplications and by measured median.</p>"
    rows = [(escape(c.fewer_mults), num(c.fewer_mults_count), escape(c.more_mults), num(c.more_mults_count),
             escape(c.workload), escape(c.convention), f"{c.configurations} of {c.measured_together}",
             f"{c.time_ratio_min:.3g}..{c.time_ratio_max:.3g}x")
            for c in view.contradictions]
    return (f"<p>Pairs where the variant with fewer multiplications {badge(COUNTED)} was slower at the median "
            f"{badge(view.latency_evidence)}:</p>"
            + table(("fewer mults", "mul", "more mults", "mul", "workload", "convention", "configurations",
                     "time ratio"), rows, (False, True, False, True, False, False, True, True)))


def kinds(counts: Json) -> str:
    """'mul 1,234; add 1,000; log 32' from a counts dict."""
    parts = [f"{k} {num(v)}" for k, v in counts.items() if k != "special" and v not in (0, "0")]
    parts += [f"{k} {num(v)}" for k, v in counts.get("special", {}).items()]
    return escape("; ".join(parts) or "-")


def analytic_section(model: ModelView) -> str:
    """Per-node counts, the formulas in the input dims and the model's equation."""
    data = model.analysis
    if not data:
        return "<p>The original model file was not found in the build folder: no analytic model to show.</p>"
    rows = [(str(i), escape(n["op_type"]), escape(n["name"]), escape(str(n["output_shapes"][0])),
             kinds(n["dense"]) if n["counted"] else "not counted", kinds(n["effective"]) if n["counted"] else "",
             escape(n["math"]))
            for i, n in enumerate(data["nodes"])]
    dims = ", ".join(f"{k} = {v}" for k, v in data["dims"].items())
    parts = []
    if model.equation:
        parts.append(f"<h3>The model's equation</h3><pre>{escape(model.equation)}</pre>")
    if model.blocks:
        parts.append(table(("block", "what it is"), [(escape(b["kind"]), escape(b["summary"])) for b in model.blocks]))
    parts += [f"<h3>Counts per node</h3><p>At {escape(dims)} {badge(COUNTED)} (README counting convention).</p>",
              table(("#", "op", "node", "output", "dense", "effective", "math"), rows)]
    totals = [(c, kinds(data["totals"][c]), kinds(data["formulas"][c])) for c in ("dense", "effective")]
    parts.append(table(("convention", f"total at {escape(dims)}", "formula in the input dims"), totals))
    if "per_frame" in data:
        frame = data["per_frame"]
        parts.append(f"<p>Frames: {num(frame['frames'])} = {escape(frame['frames_formula'])}; per frame dense "
                     f"{kinds(frame['dense'])} {badge(COUNTED)}.</p>")
    if data.get("constraints"):
        parts.append(f"<p>Valid inputs: {escape(', '.join(data['constraints']))}.</p>")
    parts += [f"<p class='small'>{escape(note)}</p>" for note in model.notes]
    return "".join(parts)


def manifest_section(view: TargetView) -> str:
    """Every number of manifest.json with its evidence label, so nothing in the export goes unseen."""
    items = flatten(view.manifest)
    if not items:
        return "<p>No manifest.json found.</p>"
    rows = [(escape(path), str(value), badge(evidence)) for path, value, evidence in items]
    return table(("manifest.json field", "value", "evidence"), rows, (False, True, False))


def figures(found: list[Plot], missing: str) -> str:
    """The plots of one section, or a sentence saying why there are none."""
    return "".join(figure(*plot) for plot in found) or f"<p>{escape(missing)}</p>"


def target_section(view: TargetView) -> str:
    """One target, in the order a reader asks: choice, runners-up, accuracy, plots, model, provenance."""
    peak = "; ".join(f"{t} thr {plots.number(p)} mul/s" for t, p in sorted(view.peak.items()))
    meanings = "".join(f"<li>{badge(k)} {escape(v)}</li>" for k, v in view.facts.evidence_labels.items())
    sources = "".join(f"<li>{escape(k)}: <code>{escape(v)}</code></li>" for k, v in view.sources.items())
    found = all_plots(view)
    return "".join([
        f'<section id="target-{escape(view.name)}"><h2>{escape(view.name)}</h2>',
        f"<p>{escape(view.description)}<br>CPU: {escape(view.cpu)}; peak {escape(peak)} {badge(ESTIMATED)}</p>",
        choice_section(view),
        "<h3>Runners-up and excluded variants</h3>", runners_up_section(view),
        "<h3>Accuracy against the original, by input level</h3>", accuracy_section(view),
        "<h3>Latency</h3>", figures(found["latency"], "No latency measured: emulation wall time (not a board "
                                    "latency) is not shown; the choice holds the predicted latency."
                                    if view.latency_evidence == EMULATED_TIME else "No finished run."),
        placement_list(view), unavailable_list(view),
        "<h3>Measured against analytic</h3>",
        figures(found["analytic"], "No run has analytic counts to set against its time."),
        contradictions_table(view),
        "<h3>What the graph computes</h3>", figures(found["model"], "Nothing recognized to draw."),
        "<h3>Analytic model</h3>", analytic_section(view.model),
        "<h3>Every number in manifest.json</h3>", manifest_section(view),
        f"<h3>Evidence labels</h3><ul class='small'>{meanings}</ul>" if meanings else "",
        f"<h3>Read from</h3><ul class='small'>{sources}</ul>" if sources else "",
        "</section>",
    ])


def summary_row(view: TargetView) -> tuple[str, str, str, str]:
    """A target's line of the summary table."""
    chosen, link = view.facts.chosen, f'<a href="#target-{escape(view.name)}">{escape(view.name)}</a>'
    if chosen is None:
        return link, '<span class="fail">none</span>', "", ""
    return (link, escape(chosen.variant), escape(view.facts.configuration or ""),
            f"{num(chosen.median_ms)} {badge(chosen.evidence)}")


def summary_table(views: Sequence[TargetView]) -> str:
    """One line per target: the choice and its streaming-chunk latency."""
    rows = [summary_row(v) for v in views]
    return table(("target", "chosen variant", "configuration", "ms (stream chunk; measured or predicted)"), rows,
                 (False, False, False, True))


def render_html(views: Sequence[TargetView], title: str = "meltoolkit report") -> str:
    """The whole page."""
    stamp = now_utc()
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{escape(title)}</h1><p class='small'>Generated {stamp} by python -m toolkit report.</p>"
            f"{summary_table(views)}{''.join(target_section(v) for v in views)}</main></body></html>")
