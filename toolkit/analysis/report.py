"""The analysis as JSON (the contract later stages and outside checks read) and as terminal tables."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

import sympy as sp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from toolkit.analysis.counts import BASIC_KINDS, Counts
from toolkit.analysis.dims import pretty, render_dim, render_shape
from toolkit.analysis.frames import Frames, one_second, per_frame
from toolkit.analysis.ops.base import Branches

if TYPE_CHECKING:
    from toolkit.analysis import Analysis, NodeReport

CONVENTIONS = ("dense", "effective")
# the JSON contract as `--json` prints it and the terminal view reads it back: JSON, so its values are Any
Json = dict[str, Any]


def counts_json(counts: dict[str, int]) -> Json:
    out: dict[str, object] = {k: counts.get(k, 0) for k in BASIC_KINDS}
    out["special"] = {k: v for k, v in sorted(counts.items()) if k not in BASIC_KINDS}
    return out


def formula_json(counts: Counts) -> Json:
    out: dict[str, object] = {k: pretty(counts[k]) for k in BASIC_KINDS}
    out["special"] = {k: pretty(v) for k, v in counts.items() if k not in BASIC_KINDS}
    return out


def node_json(analysis: Analysis, node: NodeReport) -> Json:
    entry: Json = {
        "name": node.name, "op_type": node.op_type, "counted": node.counted,
        "output_shapes": [None if s is None else [analysis.value(d) for d in s] for s in node.output_shapes],
        "output_shape_formulas": [render_shape(s) for s in node.output_shapes],
        "math": node.math,
    }
    if node.branches is not None:
        entry["branches"] = branches_json(analysis, node, node.branches)
    if not node.counted:
        entry["problem"] = node.problem
        return entry
    for convention in CONVENTIONS:
        counts: Counts = getattr(node, convention)
        entry[convention] = counts_json(counts.subs(analysis.bindings).as_ints())
    entry["formulas"] = {c: formula_json(getattr(node, c)) for c in CONVENTIONS}
    entry["bytes_moved"] = analysis.value(node.bytes_moved)
    if node.unknown_constants:
        entry["effective_upper_bound"] = f"values of constant input(s) {', '.join(node.unknown_constants)} unknown"
    return entry


def branches_json(analysis: Analysis, node: NodeReport, branches: Branches) -> Json:
    """An If: the condition, the branch it takes (by the dims, or fixed with --branch; None: decided by data at
    run time, so the totals are bounds), both costs."""
    taken, by = node.chosen, "--branch" if node.chosen else None
    if branches.condition is not None:
        taken, by = "then" if bool(sp.sympify(branches.condition).subs(analysis.bindings)) else "else", "dims"
    costs: dict[str, Json] = {label: {c: counts_json(counts.subs(analysis.bindings).as_ints()) for c, counts in
                     zip(CONVENTIONS, pair, strict=True)} for label, pair in branches.costs.items()}
    costs.update({label: {"not_counted": why} for label, why in branches.not_counted.items()})
    return {"condition": branches.condition_text, "taken": taken, "taken_by": by, **costs}


def exact(value: Fraction) -> int | str:
    return int(value) if value.denominator == 1 else str(value)


def frames_json(analysis: Analysis, frames: Frames) -> Json:
    fps = Fraction(analysis.sample_rate, frames.hop)
    per = {c: per_frame(analysis, frames, c) for c in CONVENTIONS}
    return {
        "per_frame": {**{c: counts_json(per[c]) for c in CONVENTIONS}, "frames": analysis.value(frames.expr),
                      "frames_formula": pretty(frames.expr), "hop": frames.hop, "frame_input": frames.first,
                      "method": "counts(T + 1 frames) - counts(T frames) at the given batch"},
        "per_second": {
            "sample_rate": analysis.sample_rate, "frames_per_second": exact(fps),
            "streaming": {c: {k: exact(v * fps) for k, v in per[c].items()} for c in CONVENTIONS},
            "one_second_input": {"samples": analysis.sample_rate,
                                 "frames": int(sp.sympify(frames.expr).subs(frames.symbol, analysis.sample_rate)),
                                 **{c: counts_json(one_second(analysis, frames, c)) for c in CONVENTIONS}},
        },
    }


def analysis_json(analysis: Analysis) -> Json:
    from toolkit.analysis import tensor_contract
    from toolkit.load import unread_weights

    outputs = []
    for declared, inferred in zip(analysis.model.graph.output, analysis.propagation.outputs, strict=True):
        entry = tensor_contract(declared)
        entry["declared_shape"] = entry["shape"]
        if inferred is not None and inferred.shape is not None:
            entry["shape"] = render_shape(inferred.shape)
            entry["value_shape"] = [analysis.value(d) for d in inferred.shape]
        outputs.append(entry)
    declared_inputs = {v.name: v for v in analysis.model.graph.input}
    result: Json = {
        "dims": analysis.dims,
        "input_values": {name: {"value": render_dim(v.value), "at_dims": analysis.value(v.value)
                                if v.value.is_integer else float(v.value), "why": v.why}
                         for name, v in analysis.input_values.items()},
        "inputs": [tensor_contract(declared_inputs[t.name]) for t in analysis.propagation.inputs],
        "outputs": outputs,
        "constraints": [c.text for c in analysis.constraints],
        "constraint_reasons": {c.text: c.why for c in analysis.constraints},
        "smallest_input": analysis.smallest_input(),
        "nodes": [node_json(analysis, n) for n in analysis.nodes],
        "totals": {c: counts_json(analysis.totals(c)) for c in CONVENTIONS},
        "formulas": {c: formula_json(analysis.formula(c)) for c in CONVENTIONS},
        "not_counted": [n.name for n in analysis.not_counted],
        "depends_on_condition": [n.name for n in analysis.bounded],
        "exact": not analysis.bounded,
        "weights_not_read": unread_weights(analysis.model),
        "effective_upper_bound": [n.name for n in analysis.nodes if n.unknown_constants],
        "complete": not analysis.not_counted and not any(n.unknown_constants for n in analysis.nodes),
        "convention": "README.md#counting-convention",
    }
    if analysis.bounded:
        result["totals_at_least"] = {c: counts_json(analysis.totals_at_least(c)) for c in CONVENTIONS}
    if analysis.frames is not None:
        result.update(frames_json(analysis, analysis.frames))
    return result


def kinds_text(counts: Json) -> str:
    """'mul 271,938, add 270,880, log 32': numbers with thousands separators, formulas as they are."""
    def show(v: object) -> str:
        return f"{v:,}" if isinstance(v, int) else str(v)

    parts = [f"{k} {show(v)}" for k, v in counts.items() if k != "special" and v not in (0, "0")]
    parts += [f"{k} {show(v)}" for k, v in counts.get("special", {}).items()]
    return ", ".join(parts) or "-"


def flatten(counts: Json) -> Json:
    """{mul, add, div, cmp, special: {log: n}} as one flat {kind: value}."""
    flat = {k: v for k, v in counts.items() if k != "special"}
    flat.update(counts.get("special", {}))
    return flat


def totals_table(data: Json) -> Table:
    """Totals by kind: dense and effective at these dims, and the dense formula in the input dims."""
    dense, effective = flatten(data["totals"]["dense"]), flatten(data["totals"]["effective"])
    formulas = flatten(data["formulas"]["dense"])
    excluded = f" excluding {len(data['not_counted'])} node(s) not counted" if data["not_counted"] else ""
    bound = ", at most (each If the data decides at its dearer side)" if data["depends_on_condition"] else ""
    table = Table(title=escape(f"totals at {data['dims']}{excluded}{bound}"))
    for column in ("kind", "dense", "effective", "dense formula"):
        table.add_column(column, overflow="fold")
    for kind, value in dense.items():
        if value or effective.get(kind):
            table.add_row(kind, f"{value:,}", f"{effective.get(kind, 0):,}", escape(str(formulas.get(kind, ""))))
    return table


def print_branches(node: Json, console: Console) -> None:
    """What each branch of an If costs, and whether the totals include one (the branch the dims take) or none."""
    branches = node["branches"]
    costs = "; ".join(f"{label} branch: " + (kinds_text(branches[label]["dense"]) if "dense" in branches[label]
                                                else f"not counted ({branches[label]['not_counted']})")
                      for label in ("then", "else"))
    if branches["taken"] is None:
        verdict = (f"the data decides it at run time: the totals are bounds, each kind at its dearer or cheaper "
                   f"side; --branch {node['name']}=then (or else) gives one path's exact total")
    elif branches["taken_by"] == "--branch":
        verdict = f"the {branches['taken']} branch is fixed with --branch, and the totals include it"
    else:
        verdict = f"at these dims it takes the {branches['taken']} branch, which the totals include"
    console.print(f"[bold]If[/] {escape(node['name'])}, condition {escape(branches['condition'])}: {escape(costs)}; "
                  f"{verdict}", highlight=False)


def print_crosscheck(check: Json, console: Console) -> None:
    """analyze's heavy-op multiplications beside those from onnxruntime's real shapes, and the verdict."""
    table = Table(title="heavy ops: multiplications, analyze vs onnxruntime's real shapes")
    for column in ("node", "op", "analyze", "onnxruntime", ""):
        table.add_column(column, overflow="fold")
    for row in check["nodes"]:
        theirs = "-" if row["onnxruntime"] is None else f"{row['onnxruntime']:,}"
        verdict = "equal" if row["equal"] else row.get("note") or "DIFFERENT"
        table.add_row(escape(row["name"]), row["op_type"], f"{row['analyze']:,}", theirs, escape(verdict))
    console.print(table)
    verdict = "all equal" if check["equal"] else "[red]they differ[/]"
    console.print(f"[bold]against onnxruntime[/]: {check['compared']} node(s) compared, {verdict}")


def print_analysis(data: Json, console: Console) -> None:
    """Terminal view: contract, per-node table, totals, per frame and per second."""
    for tensor in data["inputs"]:
        console.print("[bold]input[/] " + escape(f"{tensor['name']}: {tensor['dtype']} {tensor['shape']}"))
    for tensor in data["outputs"]:
        console.print("[bold]output[/] " + escape(f"{tensor['name']}: {tensor['dtype']} {tensor['shape']} "
                                                  f"= {tensor.get('value_shape')} at {data['dims']}"))
    for name, entry in data["input_values"].items():
        console.print("[bold]input value[/] " + escape(f"{name} = {entry['value']} = {entry['at_dims']} "
                                                       f"({entry['why']})"))
    console.print("[bold]valid inputs[/]: " + escape(f"{', '.join(data['constraints']) or 'any size'}; "
                                                     f"smallest: {data['smallest_input']}"))
    table = Table(title="per node at these dims (effective shown where it differs from dense)")
    for column in ("#", "op", "output", "dense", "effective"):
        table.add_column(column, overflow="fold")
    for i, node in enumerate(data["nodes"]):
        if not node["counted"]:
            table.add_row(str(i), escape(node["op_type"]), "?", "not counted", escape(node["problem"]))
            continue
        dense, effective = kinds_text(node["dense"]), kinds_text(node["effective"])
        table.add_row(str(i), escape(node["op_type"]), escape(str(node["output_shapes"][0])), escape(dense),
                      "" if effective == dense else escape(effective))
    console.print(table)
    console.print("[bold]math[/]")
    for i, node in enumerate(data["nodes"]):
        console.print(f"  {i:>2} {node['math'] or node.get('problem', '')}", highlight=False, markup=False)
    console.print(totals_table(data))
    if "per_frame" in data:
        frames = data["per_frame"]
        console.print(f"[bold]frames[/]: {frames['frames']} = {escape(frames['frames_formula'])} "
                      f"(hop {frames['hop']})")
        for convention in CONVENTIONS:
            console.print(f"  per frame {convention}: {escape(kinds_text(frames[convention]))}")
        second = data["per_second"]["one_second_input"]
        console.print(f"[bold]one second[/] ({second['samples']} samples, {second['frames']} frames): "
                      f"dense {kinds_text(second['dense'])}")
    for node in data["nodes"]:
        if "branches" in node:
            print_branches(node, console)
    if "against_onnxruntime" in data:
        print_crosscheck(data["against_onnxruntime"], console)
    if data["depends_on_condition"]:
        console.print(f"[yellow]totals at least[/] (each If the data decides at its cheaper side): "
                      f"dense {escape(kinds_text(data['totals_at_least']['dense']))}", highlight=False)
    if data["not_counted"]:
        console.print(f"[yellow]not counted[/]: {escape(', '.join(data['not_counted']))}")
    if data["weights_not_read"]:
        unread = ", ".join(f"{name} ({size:,} bytes)" for name, size in data["weights_not_read"].items())
        console.print(f"[yellow]weights left on disk[/] (counted from their shapes): {escape(unread)}")
    if data["effective_upper_bound"]:
        readers = escape(", ".join(data["effective_upper_bound"]))
        console.print(f"[yellow]effective counts are upper bounds[/] for {readers}: a constant input's value is "
                      "unknown, so its 0s and 1s are not skipped")
