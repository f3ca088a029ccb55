"""report.md: the choice and why, runners-up, accuracy by input level, latency, streaming, measured vs analytic,
per-node shares, rank contradictions, and the evidence behind every kind of number.

Every table is a list of Columns (header + a function of one row) applied to a list of rows; every section is a
function of the gathered records (toolkit.report.Gathered) returning its lines, listed once in SECTIONS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from toolkit.configs import engine_words, placement_words, same
from toolkit.evidence import EMULATED_TIME, PREDICTED
from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS, output_name
from toolkit.records import ComparedRun, PredictionErrors, Rows, RunRecord, VariantRecord, measured
from toolkit.report import Gathered, could_not_run

NONE = "-"
NOT_BUILT = {"skipped": "skipped", "failed": "not built"}  # variant status -> the gate column's word


@dataclass(frozen=True)
class Column:
    """One table column: its header and how a row shows in it."""

    header: str
    cell: Callable[[Any], object]


def table(columns: list[Column], rows: Iterable[Any]) -> list[str]:
    """A Markdown table; cells are str() of the column functions' results (pipes escaped)."""
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (str(c.cell(row)).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------- number formats


def ms(value: float | None) -> str:
    """Milliseconds with 4 significant figures."""
    return NONE if value is None else f"{value:.4g}"


def num(value: object) -> str:
    """A float with 4 significant figures, an int with separators; strings (inf) as they are."""
    if value is None:
        return NONE
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def pct(value: float | None) -> str:
    """A share as a percentage."""
    return NONE if value is None else f"{value:.1%}"


def rate(value: float | None) -> str:
    """Multiplications per second in G/s."""
    return NONE if value is None else f"{value / 1e9:.3g} G/s"


def spin(value: bool | None) -> str:
    """on / off / - (one thread or LiteRT: no intra-op workers to spin)."""
    return {True: "on", False: "off", None: NONE}[value]


def config(row: Json) -> str:
    """[engine] provider [precision], threads, spinning, optimization in one cell."""
    parts = [engine_words(row), f"{row['threads']} thr"]
    if row.get("spinning") is not None and row["threads"] > 1:
        parts.append(f"spin {spin(row['spinning'])}")
    if row.get("optimization"):
        parts.append(f"opt {row['optimization']}")
    return ", ".join(parts)


WALL_TIME_NOTE = "emulation wall time (not a board latency)"


def emulated(data: Gathered) -> bool:
    """Whether the runs ran under emulation, so their times are no latency of the target."""
    return data.platform.latency_evidence == EMULATED_TIME


def _rows_by_variant(group: Rows | PredictionErrors, workload: str, lowest: str | None = None) -> dict[str, Json]:
    """A platform.json group's rows (instructions, predictions, prediction_error) of one workload, one per
    variant: of a variant's rows (one per engine setting) the one lowest in field `lowest`, else the first."""
    rows = [r for r in group.rows if r["workload"] == workload]
    found: dict[str, Json] = {}
    for row in sorted(rows, key=lambda r: r[lowest]) if lowest else rows:
        found.setdefault(row["variant"], row)
    return found


# ---------------------------------------------------------------- sections


def title(data: Gathered) -> list[str]:
    """Headline: which file to ship for this target, and how the numbers were made."""
    inputs = data.ledger.inputs
    facts = data.facts
    model = inputs["model"]["path"] or "the built-in openWakeWord-style mel graph"
    head = f"{facts.chosen.variant} ({facts.configuration})" if facts.chosen else "no variant meets the policy"
    settings = data.profile.settings
    if emulated(data):
        how = (f"Runs: {data.platform.description}, {data.profile.updated_utc}: outputs "
               f"`{data.platform.output_evidence}`, instructions per inference counted there "
               "(`emulated-instructions`), latencies `predicted` from them; no latency was measured, and "
               f"{WALL_TIME_NOTE} is not reported.")
    else:
        how = (f"Measurements: {data.platform.description} (latency evidence "
               f"`{data.platform.latency_evidence}`), {data.profile.updated_utc}; "
               f"{settings['warmup']} warm-up and {settings['runs']} timed runs per configuration, streams of "
               f"{settings['streaming_seconds']:g} s{' (quick settings)' if settings.get('quick') else ''}.")
    return [
        f"# {inputs['target']['name']}: {head}",
        "",
        f"Input model: {model}. {how} "
        f"Pipeline wall time: {data.ledger.stage_seconds_total:.0f} s over its stages.",
    ]


def choice(data: Gathered) -> list[str]:
    """The choice, its reasons and rule, then the runners-up and excluded variants."""
    doc, facts = data.choice, data.facts
    lines = ["## Choice", ""]
    chosen = facts.chosen
    if chosen is None:
        return [*lines, *(f"- {r}" for r in facts.reasons), "", *runners_up(data)]
    what = PREDICTED if chosen.evidence == PREDICTED else "median"
    lines += [f"**{chosen.variant}** on {facts.configuration}: {ms(chosen.median_ms)} ms {what} on the 1760-sample "
              f"chunk (evidence `{chosen.evidence}`; {doc.eligible} of {doc.candidates} candidate configurations "
              "were eligible).", ""]
    lines += [f"- {r}" for r in facts.reasons]
    return [*lines, "", f"Rule: {doc.rule}. Checks: {', '.join(doc.checks)}.", "", *runners_up(data)]


def runners_up(data: Gathered) -> list[str]:
    """The rows the HTML report shows too (toolkit.report.Facts), each with select's own reason; an excluded
    variant has no numbers."""
    lines = ["### Runners-up and excluded variants", ""]
    rows = data.facts.runners_up
    if not rows:
        return [*lines, "(no other eligible configuration, no variant excluded)"]
    return lines + table([
        Column("variant", lambda r: r.variant), Column("configuration", lambda r: r.configuration or NONE),
        Column("chunk ms", lambda r: ms(r.median_ms)),
        Column("evidence", lambda r: f"`{r.evidence}`" if r.evidence else NONE),
        Column("x chosen", lambda r: NONE if r.slower_than_chosen is None else f"{r.slower_than_chosen:.2f}"),
        Column("1 s ms", lambda r: ms(r.second_median_ms)), Column("stream CPU", lambda r: pct(r.cpu_share)),
        Column("bytes", lambda r: num(r.bytes)), Column("why not chosen", lambda r: r.why),
    ], rows)


def _accuracy_row(data: Gathered, variant: VariantRecord) -> Json:
    """One variant's build, gate and where-measured verdicts."""
    verdict = data.accuracy.variants.get(variant.name)
    where = data.where_run.get(variant.name)
    reasons = verdict.reasons if verdict else []
    status = (f"{NOT_BUILT[variant.status]}: {variant.reason}" if not variant.built
              else "passes" if verdict and verdict.passed else "fails: " + "; ".join(reasons))
    profiled = "profiled" if where is not None else "not profiled: failed the gate" if variant.built else NONE
    return {"name": variant.name, "exact": variant.exact, "bytes": variant.bytes, "status": status,
            "overall": verdict.overall if verdict else {}, "where": where.overall if where else {},
            "profiled": profiled}


def inputs(data: Gathered) -> list[str]:
    """What each graph input was fed on every run, and why (the feed plan in variants.json)."""
    return ["## Inputs fed", "", *table([
        Column("input", lambda r: r["name"]), Column("fed", lambda r: r["role"]),
        Column("dtype", lambda r: r["dtype"] or NONE),
        Column("shape", lambda r: f"[{', '.join(map(str, r['shape']))}]"),
        Column("why", lambda r: r["why"]),
    ], data.inputs)]


def accuracy(data: Gathered) -> list[str]:
    """Every variant against the original: errors, the gate, and whether it was profiled."""
    policy = data.accuracy.policy
    rows = [_accuracy_row(data, v) for v in data.variants]
    settings = [f"- {s.outputs}: {s.text}" for s in data.facts.settings]
    if settings:
        settings = ["", "Engine settings with numerics of their own (an OpenVINO precision), gated like a variant "
                        f"on their outputs where the runs ran (`{data.platform.output_evidence}`):", *settings]
    return ["## Variants and the accuracy gate", "",
            f"Tolerances from the target file: max |dB error| {policy['max_abs_db_error']}, p99 "
            f"{policy['p99_abs_db_error']}, relative mel-energy error {policy['max_rel_mel_error']}. Errors against "
            f"the original on {len(data.accuracy.signals['levels'])} signals of "
            f"{data.accuracy.signals['samples']} samples (evidence `{data.accuracy.evidence}`); the "
            f"last column repeats the dB error on the outputs made where the runs ran "
            f"(`{data.platform.output_evidence}`).", "",
            *table([
                Column("variant", lambda r: r["name"]), Column("exact", lambda r: "yes" if r["exact"] else "no"),
                Column("bytes", lambda r: num(r["bytes"])),
                Column("max abs dB", lambda r: num(r["overall"].get("max_abs_db"))),
                Column("p99 abs dB", lambda r: num(r["overall"].get("p99_abs_db"))),
                Column("max rel mel", lambda r: num(r["overall"].get("max_rel_mel"))),
                Column("gate", lambda r: r["status"]), Column("profile", lambda r: r["profiled"]),
                Column("max abs dB where run", lambda r: num(r["where"].get("max_abs_db"))),
            ], rows), *settings]


def _level_db(level: str) -> Callable[[Json], str]:
    """A by-level row's max |dB error| at `level`."""
    return lambda r: num(r["levels"].get(level, {}).get("max_abs_db"))


def by_level(data: Gathered) -> list[str]:
    """Max |dB error| per input level per variant: where reduced precision breaks."""
    measured = {n: v.by_level for n, v in data.accuracy.variants.items() if v.measured}
    levels = list(next(iter(measured.values()))) if measured else []
    columns = [Column("variant", lambda r: r["name"])] + [
        Column(level, _level_db(level)) for level in levels]
    return ["## Accuracy by input level (max |dB error|)", "",
            *table(columns, ({"name": n, "levels": lv} for n, lv in measured.items()))]


def latency(data: Gathered) -> list[str]:
    """Every finished configuration: chunk and one-second latencies, session creation, first inference."""
    if emulated(data):
        return ["## Latency", "", f"Not measured: the runs ran under emulation, and {WALL_TIME_NOTE} says nothing "
                "about a board's speed (it stays in profile.json only). See the predicted latency below, or "
                "measure the board with HOST=user@board."]
    runs = data.profile.runs
    by_config: dict[tuple[Any, ...], dict[str, RunRecord]] = {}  # a configuration's first run: its workloads
    for run in (r for r in runs if r.ok):
        by_config.setdefault((run.variant, *run.config().values()), {})[run.workload] = run

    def stat(workload: str, field: str) -> Callable[[dict[str, RunRecord]], str]:
        return lambda r: ms(getattr(r[workload].latency_ms, field)) if workload in r else NONE

    def first(field: str) -> Callable[[dict[str, RunRecord]], str]:
        return lambda r: ms(getattr(r["stream"], field)) if "stream" in r else NONE

    def head(r: dict[str, RunRecord]) -> RunRecord:
        return next(iter(r.values()))

    timer = runs[0].timer if runs and runs[0].timer is not None else NONE
    lines = ["## Latency (ms) per variant x provider x threads", "",
             f"Timer: {timer}; evidence `{data.platform.latency_evidence}`.", "",
             *table([Column("variant", lambda r: head(r).variant),
                     Column("configuration", lambda r: config(head(r).config())),
                     Column("chunk median", stat("stream", "median")), Column("chunk p90", stat("stream", "p90")),
                     Column("chunk min", stat("stream", "min")), Column("1 s median", stat("second", "median")),
                     Column("1 s p90", stat("second", "p90")), Column("session ms", first("session_create_ms")),
                     Column("first run ms", first("first_inference_ms")),
                     Column("placement", lambda r: placement_words(head(r).to_json()) or NONE)],
                    by_config.values())]
    missing = [f"- {what}: {reason}" for what, reason in could_not_run(runs).items()]
    return lines + (["", "Not measured:", *missing] if missing else [])


def streaming(data: Gathered) -> list[str]:
    """The 12.5 chunks/s streams: CPU share of one core, streams per core, p99, and which streams were run."""
    if emulated(data):
        return ["## Streaming at the real rate", "", "Not measured: CPU share under emulation is not a board's. "
                "The choice takes 1 intra-op thread with spinning off for that reason."]
    plan = data.platform.streaming_plan
    rows = [s for s in data.profile.streaming if s.ok]
    method = rows[0].method if rows else NONE
    return ["## Streaming at the real rate (1760-sample chunks, 12.5 per second)", "",
            f"Streams run: {plan['rule']}: {len(plan['runs'])} streams. Method: {method}.", "",
            *table([Column("variant", lambda r: r.variant), Column("configuration", lambda r: config(r.config())),
                    Column("seconds", lambda r: f"{r.wall_s:.1f}"),
                    Column("CPU of one core", lambda r: pct(r.cpu_share)),
                    Column("streams per core", lambda r: num(r.streams_per_core)),
                    Column("p99 ms", lambda r: ms(r.latency_ms.p99)),
                    Column("deadline misses", lambda r: num(r.deadline_misses))], rows)]


def counted_key(row: Json) -> tuple[str, str]:
    """An instruction count's or a prediction's identity: its variant's outputs in its engine setting, its
    workload (each OpenVINO precision is counted on its own)."""
    return output_name(row["variant"], row.get("config") or {}), row["workload"]


def counts_by_key(data: Gathered) -> dict[tuple[str, str], Json]:
    """The instruction counts of platform.json by counted_key."""
    return {counted_key(r): r for r in data.platform.instructions.rows}


def _bound_ms(bound: str) -> Callable[[Json], str]:
    """A prediction row's latency under `bound`."""
    return lambda r: ms(r["bounds_ms"].get(bound))


def predicted(data: Gathered) -> list[str]:
    """Predicted single-thread latencies, each with the bound that set it, and the counts they come from."""
    predictions = data.platform.predictions
    rows = predictions.rows
    if not rows:
        return [] if not predictions.reason else ["## Predicted latency", "", predictions.reason]
    counted = counts_by_key(data)

    def instructions(r: Json) -> str:
        found = counted.get(counted_key(r))
        return num(round(found["total"])) if found else NONE

    return ["## Predicted latency (evidence `predicted`)", "",
            f"Method: {rows[0]['method']}; core {rows[0]['core']} at {rows[0]['clock_ghz']:g} GHz; instructions per "
            f"inference `emulated-instructions` ({data.platform.instructions.method or NONE}). "
            "A bound, not a measurement: the real latency is higher.", "",
            *table([Column("variant", lambda r: r["variant"]), Column("workload", lambda r: r["workload"]),
                    Column("configuration", lambda r: config(r["config"])),
                    Column("instructions", instructions),
                    Column("predicted ms", lambda r: ms(r["latency_ms"])), Column("bound", lambda r: r["bound"]),
                    *(Column(f"{b} ms", _bound_ms(b)) for b in rows[0]["bounds_ms"])],
                   rows), "", *prediction_error(data)]


def prediction_error(data: Gathered) -> list[str]:
    """measured / predicted where the same configuration was measured on the target."""
    error = data.platform.prediction_error
    rows = error.rows
    if not rows:
        return [f"Prediction error: not known: {error.reason}."]
    ratio: Json = error.ratio or {}
    return [f"### Prediction error (`{error.evidence}`)", "",
            f"measured / predicted over {len(rows)} configurations: min {ratio['min']:.3g}, median "
            f"{ratio['median']:.3g}, max {ratio['max']:.3g} (above 1: the run was slower than the bound, which "
            "is what a bound without stalls expects; below 1: the bound missed something, see README "
            "'Predictions and their error').", "",
            *table([Column("variant", lambda r: r["variant"]), Column("workload", lambda r: r["workload"]),
                    Column("configuration", lambda r: config(r["config"])),
                    Column("predicted ms", lambda r: ms(r["predicted_ms"])),
                    Column("measured ms", lambda r: ms(r["measured_ms"])),
                    Column("measured / predicted", lambda r: f"{r['measured_over_predicted']:.3g}")], rows)]


def measured_vs_analytic(data: Gathered) -> list[str]:
    """Achieved mults/s per run against the target's peak; variants without counts say so."""
    doc = data.compare
    if doc.not_timed:
        return ["## Measured vs analytic", "", doc.not_timed]
    peak = doc.peak
    rows = [r for r in doc.runs if r.status == "ok"]

    def achieved(convention: str, field: str, show: Callable[[Any], str]) -> Callable[[ComparedRun], str]:
        def cell(r: ComparedRun) -> str:
            found = r.achieved(convention)
            if found is None:
                return r.counts or NONE
            # nodes without a rule: the numbers are lower bounds; an If the data decides: upper bounds
            bound = {"partial": ">= ", "bounded": "<= "}.get(r.counts or "", "")
            return bound + show(getattr(found, field))
        return cell

    peaks = ", ".join(f"{t} thread(s) {rate(v)}" for t, v in peak["mults_per_s"].items())
    not_ranked = [f"- {name}: {note}" for name, note in doc.not_ranked.items()]
    above = [r for r in rows if r.dense is not None and r.dense.of_peak > 1]
    warning = [] if not above else ["", f"{len(above)} run(s) exceed the estimated peak, so the estimate is low for "
                                        f"this machine: clock {peak['cpu']['clock_ghz']:g} GHz "
                                        f"({peak['sources']['clock_ghz']}), "
                                        f"{peak['cpu']['fp32_flops_per_cycle_per_core']:g} FP32 FLOPs/cycle/core "
                                        f"({peak['sources']['fp32_flops_per_cycle_per_core']})."]
    return ["## Measured vs analytic", "",
            f"Achieved = exact analytic mults of the variant at the workload / median latency. Peak (the target "
            f"file's estimate, `{peak['evidence']}`, not a measurement): {peaks}; method: {peak['method']}.", "",
            *table([Column("variant", lambda r: r.variant), Column("configuration", lambda r: config(r.config())),
                    Column("workload", lambda r: r.workload), Column("median ms", lambda r: ms(r.median_ms)),
                    Column("dense mults", achieved("dense", "mults", num)),
                    Column("dense mults/s", achieved("dense", "mults_per_s", rate)),
                    Column("of peak", achieved("dense", "of_peak", pct)),
                    Column("effective mults", achieved("effective", "mults", num)),
                    Column("effective mults/s", achieved("effective", "mults_per_s", rate))], rows),
            *warning, *(["", "Without full counts:", *not_ranked] if not_ranked else [])]


def _node_label(row: Json) -> str:
    """The model nodes of a per-node row, with the kernels that ran them when they differ."""
    kernels = ", ".join(f"{k['name']} ({k['op_type']})" for k in row["kernels"])
    nodes = ", ".join(f"{n} ({op})" for n, op in zip(row["nodes"], row["op_types"], strict=True))
    labels = {
        "kernel": nodes,
        "fused": f"{kernels} = fused by onnxruntime from {nodes}",
        "absorbed": f"{nodes}: no kernel of its own (fused into a neighbour or removed by onnxruntime)",
        "folded": f"{nodes}: constant inputs only, folded by onnxruntime at session creation",
        "created": f"{kernels}: kernel created by onnxruntime, no model node of this name",
    }
    return labels[row["kind"]]


def _node_mults(row: Json) -> str:
    """Dense mults of a per-node row: '-' for a kernel with no model node, 'not counted' for a node without."""
    if row["mul"] is None:
        return NONE
    return "not counted" if row["mul"]["dense"] is None else num(row["mul"]["dense"])


def _reference_tables(data: Gathered) -> list[Json]:
    """Per-node tables of the chosen configuration on the one-second input, one per variant."""
    chosen = data.choice.chosen
    tables = [t for t in data.compare.nodes if t["workload"] == "second"]
    matching = [t for t in tables if chosen and same(t, chosen.config(), CONFIG_FIELDS)]
    if matching:
        return matching
    first: dict[str, Json] = {}
    for t in tables:
        first.setdefault(t["variant"], t)
    return list(first.values())


def nodes(data: Gathered) -> list[str]:
    """Each variant's time share against its mult share, node by node."""
    lines = ["## Where the time goes: per-node time share vs multiplication share", ""]
    if data.compare.not_timed:
        return [*lines, data.compare.not_timed]
    for t in _reference_tables(data):
        rows = sorted(t["rows"], key=lambda r: -(r["time_share"] or 0.0))
        lines += [f"### {t['variant']} ({config(t)}, one second)", "",
                  *table([Column("node(s)", _node_label), Column("time share", lambda r: pct(r["time_share"])),
                          Column("dense mult share", lambda r: pct((r["mul_share"] or {}).get("dense"))),
                          Column("dense mults", _node_mults)], rows), ""]
    return lines


def contradictions(data: Gathered) -> list[str]:
    """Pairs where fewer analytic mults did not mean a lower measured median."""
    summary = data.compare.contradiction_summary
    if data.compare.not_timed:
        return ["## Rank contradictions", "", data.compare.not_timed]
    if not summary:
        return ["## Rank contradictions", "", "None: wherever two fully counted variants were measured in the same "
                "configuration, the one with fewer mults had the lower median."]
    return ["## Rank contradictions", "",
            "A pair whose analytic order (fewer mults) and measured order (lower median) disagree in the same "
            "configuration and workload; `clear` counts the configurations where even the fewer-mults variant's "
            "fastest run was slower than the other's median.", "",
            *table([Column("fewer mults", lambda r: f"{r.fewer_mults} ({num(r.fewer_mults_count)})"),
                    Column("but slower than", lambda r: f"{r.more_mults} ({num(r.more_mults_count)})"),
                    Column("convention", lambda r: r.convention), Column("workload", lambda r: r.workload),
                    Column("configurations", lambda r: f"{r.configurations} of {r.measured_together}"),
                    Column("clear", lambda r: r.clear),
                    Column("time ratio", lambda r: f"{r.time_ratio_min:.2f}-{r.time_ratio_max:.2f}x")],
                   summary)]


def bench(data: Gathered) -> list[str]:
    """The pytest-benchmark suite's results (make bench), when its JSON was given."""
    if not data.bench:
        return []
    return ["## pytest-benchmark (make bench)", "", f"Run {data.bench.get('datetime', NONE)}; "
            "pytest-benchmark's own timer and rounds, evidence `measured-on-host`.", "", *bench_table(data.bench)]


def evidence(data: Gathered) -> list[str]:
    """What each evidence label means."""
    return ["## Evidence labels", "", *(f"- `{k}`: {v}" for k, v in data.facts.evidence_labels.items())]


SECTIONS: list[Callable[[Gathered], list[str]]] = [
    title, choice, inputs, accuracy, by_level, latency, streaming, predicted, measured_vs_analytic, nodes,
    contradictions, bench, evidence,
]


def render(data: Gathered) -> str:
    """report.md from a build folder's gathered records."""
    lines: list[str] = []
    for section in SECTIONS:
        part = section(data)
        if part:
            lines += [*part, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- summaries


def _best_runs(data: Gathered) -> dict[str, RunRecord]:
    """Each variant's lowest-median finished run on the chunk."""
    best: dict[str, RunRecord] = {}
    for run in sorted((r for r in data.profile.runs if r.ok and r.workload == "stream"),
                      key=lambda r: measured(r).median):
        best.setdefault(run.variant, run)
    return best


def summary(data: Gathered) -> str:
    """One line per variant: gate, best configuration, its chunk latency with its evidence; the chosen one marked.

    Under emulation the latency is the prediction (`predicted`) beside the instructions it comes from
    (`emulated-instructions`); where a measurement exists, the prediction and measured / predicted are added.
    """
    chosen = data.facts.chosen.variant if data.facts.chosen else None
    predictions = _rows_by_variant(data.platform.predictions, "stream", lowest="latency_ms")
    rows = [_accuracy_row(data, v) for v in data.variants]
    head = [Column("variant", lambda r: r["name"]), Column("gate", lambda r: r["status"].split(":")[0]),
            Column("max abs dB", lambda r: num(r["overall"].get("max_abs_db")))]
    tail = [Column("chosen", lambda r: "**chosen**" if r["name"] == chosen else "")]
    if emulated(data):
        counted = counts_by_key(data)

        def instructions(r: Json) -> str:
            found = counted.get(counted_key(predictions[r["name"]])) if r["name"] in predictions else None
            return num(round(found["total"])) if found else NONE

        middle = [
            Column("configuration", lambda r: config(predictions[r["name"]]["config"])
                   if r["name"] in predictions else r["profiled"]),
            Column("chunk ms `predicted`", lambda r: ms(predictions.get(r["name"], {}).get("latency_ms"))),
            Column("bound", lambda r: predictions.get(r["name"], {}).get("bound", NONE)),
            Column("instructions per chunk `emulated-instructions`", instructions),
        ]
        return "\n".join(table([*head, *middle, *tail], rows))
    best = _best_runs(data)
    label = data.platform.latency_evidence

    def cell(field: str) -> Callable[[Json], str]:
        return lambda r: ms(getattr(best[r["name"]].latency_ms, field)) if r["name"] in best else NONE

    middle = [
        Column("best configuration", lambda r: config(best[r["name"]].config()) if r["name"] in best
               else r["profiled"]),
        Column(f"chunk median ms `{label}`", cell("median")), Column("chunk p90 ms", cell("p90")),
    ]
    errors = _rows_by_variant(data.platform.prediction_error, "stream")
    if errors:
        middle += [
            Column("1-thread chunk ms `predicted`", lambda r: ms(errors.get(r["name"], {}).get("predicted_ms"))),
            Column("1-thread measured / predicted", lambda r: num(errors.get(r["name"], {}).get(
                "measured_over_predicted"))),
        ]
    return "\n".join(table([*head, *middle, *tail], rows))


def bench_table(document: Json) -> list[str]:
    """pytest-benchmark JSON as a table: one row per benchmark, its parameters (extra_info) and timings in ms."""
    rows = document.get("benchmarks", [])

    def info(key: str) -> Callable[[Json], object]:
        return lambda r: r.get("extra_info", {}).get(key, NONE)

    return table([
        Column("variant", info("variant")), Column("provider", info("provider")), Column("threads", info("threads")),
        Column("workload", info("workload")),
        Column("median ms", lambda r: ms(r["stats"]["median"] * 1e3)),
        Column("min ms", lambda r: ms(r["stats"]["min"] * 1e3)),
        Column("mean ms", lambda r: ms(r["stats"]["mean"] * 1e3)),
        Column("rounds", lambda r: num(r["stats"]["rounds"])),
    ], rows)
