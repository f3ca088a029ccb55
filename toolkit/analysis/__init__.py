"""The analyzer: input contract, per-node math and exact operation counts, as formulas and as numbers.

    from toolkit.analysis import analyze
    result = analyze(samples=16000)          # the built-in default model
    result.totals("dense")["mul"]            # 26377986
    result.to_json()                         # the JSON contract of `python -m toolkit analyze --json`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import onnx
import sympy as sp
from onnx import helper

from toolkit.analysis.counts import Counts, per_kind, total
from toolkit.analysis.dims import Dim, dim_symbol, pretty
from toolkit.analysis.frames import Frames, find_frames
from toolkit.analysis.ops.base import Branches, Tensor, dtype_size
from toolkit.analysis.propagate import NodeOutcome, Propagation, declared_inputs, propagate
from toolkit.analysis.values import is_integer_dtype, settle
from toolkit.errors import ToolkitError
from toolkit.load import ANALYSIS_LIMITS, RATE_NAME, lengths_inputs, load_model

if TYPE_CHECKING:
    from toolkit.analysis.report import Json

CONVENTIONS = ("dense", "effective")
MOVEMENT_OPS = {"Cast", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather",
                "Split", "Pad", "Identity", "Expand", "Tile", "Shape", "Size", "Constant", "ConstantOfShape",
                "Dropout", "Where", "Range", "GatherElements", "GatherND", "ScatterElements", "ScatterND"}


@dataclass(frozen=True)
class Constraint:
    expr: sp.Expr  # valid when expr >= 0
    why: str
    text: str  # e.g. "samples >= 512"
    symbol: sp.Symbol | None = None
    bound: int | None = None  # symbol >= bound, when it reduces to that


@dataclass(frozen=True)
class InputValue:
    """The value an input beside the audio is analyzed with: a number, or a formula in the input dims."""

    value: sp.Expr
    why: str


@dataclass
class NodeReport:
    index: int
    name: str
    op_type: str
    output_shapes: list[tuple[Dim, ...] | None]
    math: str
    dense: Counts | None
    effective: Counts | None
    bytes_moved: Dim
    problem: str | None
    unknown_constants: tuple[str, ...] = ()  # constant inputs of unknown value: effective is an upper bound
    branches: Branches | None = None  # an If: what each branch costs, and the condition that picks one
    # an If the data decides, no branch fixed: (dense, effective) of its cheaper side kind by kind, while
    # dense / effective hold the dearer side: the totals are then bounds, not one path's count
    lower: tuple[Counts, Counts] | None = None
    chosen: str | None = None  # the branch fixed with --branch

    @property
    def counted(self) -> bool:
        return self.dense is not None

    def at_least(self, convention: str) -> Counts:
        """This node's smallest possible count: its count, or for a bounded If its cheaper side."""
        if self.lower is None:
            return cast(Counts, getattr(self, convention))
        return self.lower[0] if convention == "dense" else self.lower[1]


def linear_form(expr: sp.Expr) -> sp.Expr:
    """floor(a) + c >= 0 holds exactly when a + c >= 0 (c an integer): a frame count's constraint made linear."""
    floors = [t for t in sp.Add.make_args(expr) if isinstance(t, sp.floor)]
    rest = expr - floors[0] if len(floors) == 1 else None
    return floors[0].args[0] + rest if rest is not None and rest.is_Integer else expr


def reduce_constraint(expr: sp.Expr, why: str) -> Constraint:
    """Turn expr >= 0 into 'name >= bound' when it is linear in one dim, as it is for a sliding window."""
    free = sorted(expr.free_symbols, key=str)
    if len(free) == 1:
        symbol = free[0]
        linear = linear_form(expr)
        poly = sp.Poly(linear, symbol) if linear.is_polynomial(symbol) else None
        if poly is not None and poly.degree() == 1 and poly.LC() > 0:
            bound = int(sp.ceiling(-poly.TC() / poly.LC()))
            return Constraint(expr, why, f"{symbol} >= {bound}", symbol, bound)
    return Constraint(expr, why, f"{pretty(expr)} >= 0")


def report_name(outcome: NodeOutcome) -> str:
    return outcome.node.name or f"{outcome.node.op_type}_{outcome.index}"


def run_time_branches(branches: Branches, chosen: str | None) -> tuple[Counts, Counts, tuple[Counts, Counts] | None]:
    """An If the data decides: the fixed branch's (dense, effective), or each kind's dearer side with the
    cheaper side as the lower bound."""
    (then_dense, then_eff), (else_dense, else_eff) = branches.costs["then"], branches.costs["else"]
    if chosen is not None:
        return (*branches.costs[chosen], None)
    return (per_kind(sp.Max, then_dense, else_dense), per_kind(sp.Max, then_eff, else_eff),
            (per_kind(sp.Min, then_dense, else_dense), per_kind(sp.Min, then_eff, else_eff)))


def node_report(outcome: NodeOutcome, chosen: str | None = None) -> NodeReport:
    node = outcome.node
    result = outcome.result
    name = report_name(outcome)
    if result is None:
        return NodeReport(outcome.index, name, node.op_type, [None] * len(node.output), "", None, None,
                          sp.Integer(0), outcome.problem)
    dense, effective = result.dense, result.effective if result.effective is not None else result.dense
    lower = None
    if dense is None and result.branches is not None:
        dense, effective, lower = run_time_branches(result.branches, chosen)
    moved = sum((t.numel * dtype_size(t.dtype) for t in result.outputs if t.shape is not None), sp.Integer(0)) \
        if node.op_type in MOVEMENT_OPS else sp.Integer(0)
    return NodeReport(outcome.index, name, node.op_type, [t.shape for t in result.outputs], result.math,
                      dense, effective, moved, None, tuple(outcome.unknown_constants), result.branches, lower,
                      chosen if result.dense is None else None)


def run_time_ifs(propagation: Propagation) -> list[str]:
    """The If nodes whose condition only the data decides: the ones --branch can fix."""
    return [report_name(o) for o in propagation.nodes
            if o.result is not None and o.result.branches is not None and o.result.dense is None]


def branch_choices(propagation: Propagation, given: Mapping[str, str]) -> dict[str, str]:
    """--branch NODE=then|else, checked: each names an If whose condition the data decides."""
    open_ifs = run_time_ifs(propagation)
    for name, branch in given.items():
        if name not in open_ifs:
            known = ", ".join(open_ifs) or "none in this model"
            raise ToolkitError(f"--branch {name}={branch}: '{name}' is not an If whose condition the data decides "
                               f"(such nodes: {known}); name one of them or drop --branch")
        if branch not in ("then", "else"):
            raise ToolkitError(f"--branch {name}={branch}: the branch must be 'then' or 'else'")
    return dict(given)


@dataclass
class Analysis:
    """Formulas in the input dims plus their values at `dims`."""

    model: onnx.ModelProto
    propagation: Propagation
    dims: dict[str, int]
    nodes: list[NodeReport]
    constraints: list[Constraint]
    frames: Frames | None
    sample_rate: int
    input_values: dict[str, InputValue]

    @property
    def bindings(self) -> dict[sp.Symbol, int]:
        return {sym: self.dims[name] for name, sym in self.propagation.symbols.items()}

    def value(self, expr: object) -> int:
        evaluated = sp.sympify(expr).subs(self.bindings)
        return int(evaluated)

    def holds(self, expr: object) -> bool:
        """expr >= 0 at these dims, exactly (a constraint can be a fraction: int() would round it to 0)."""
        return bool(sp.sympify(expr).subs(self.bindings) >= 0)

    def formula(self, convention: str) -> Counts:
        return total(getattr(n, convention) for n in self.nodes if n.counted)

    def totals(self, convention: str) -> dict[str, int]:
        """Every counted node's count; with a bounded If (see `bounded`) this is the most any run costs."""
        return self.formula(convention).subs(self.bindings).as_ints()

    def totals_at_least(self, convention: str) -> dict[str, int]:
        """The least any run costs: each bounded If at its cheaper side, kind by kind."""
        return total(n.at_least(convention) for n in self.nodes if n.counted).subs(self.bindings).as_ints()

    @property
    def bounded(self) -> list[NodeReport]:
        """If nodes the data decides with no branch fixed: the totals are bounds while there are any."""
        return [n for n in self.nodes if n.lower is not None]

    @property
    def not_counted(self) -> list[NodeReport]:
        return [n for n in self.nodes if not n.counted]

    def smallest_input(self) -> dict[str, int]:
        smallest = {name: 1 for name in self.propagation.symbols}
        for c in self.constraints:
            if c.symbol is not None and c.bound is not None:  # set together (reduce_constraint)
                smallest[str(c.symbol)] = max(smallest[str(c.symbol)], c.bound)
        return smallest

    def to_json(self) -> Json:
        from toolkit.analysis.report import analysis_json

        return analysis_json(self)


def tensor_contract(value_info: onnx.ValueInfoProto) -> dict[str, object]:
    shape = value_info.type.tensor_type.shape
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]
    return {"name": value_info.name, "dtype": helper.tensor_dtype_to_string(value_info.type.tensor_type.elem_type)
            .removeprefix("TensorProto."), "shape": dims}


DEFAULT_BATCH, DEFAULT_SAMPLES = 1, 16000  # one second at 16 kHz


def resolve_dims(inputs: list[Tensor], symbols: Mapping[str, sp.Symbol], dims: Mapping[str, int] | None,
                 batch: int | None, samples: int | None) -> dict[str, int]:
    """Bind every symbolic input dim: --batch is the first dim of the first input, --samples its last.

    Not given, they default to 1 and 16000 where those dims are symbolic; given, they must fit the model.
    """
    values = dict(dims or {})
    first = inputs[0] if inputs else None
    for flag, value, default, position in (("--batch", batch, DEFAULT_BATCH, 0),
                                           ("--samples", samples, DEFAULT_SAMPLES, -1)):
        if first is None or not first.shape:
            continue
        dim = first.shape[position]
        if value is None:
            if not dim.is_Integer:
                values.setdefault(str(dim), default)
            continue
        if dim.is_Integer:
            if int(dim) != value:
                raise ToolkitError(f"{flag} {value}: input '{first.name}' has a fixed size {int(dim)} there; "
                                   f"drop {flag} or pass {flag} {int(dim)}")
            continue
        values.setdefault(str(dim), value)
    for name, value in values.items():
        if name not in symbols:
            known = ", ".join(symbols) or "none"
            raise ToolkitError(f"dim '{name}' is not an input dim of this model (its dims: {known})")
        if not isinstance(value, int) or value < 1:
            raise ToolkitError(f"dim '{name}' = {value} must be a whole number >= 1")
    missing = [name for name in symbols if name not in values]
    if missing:
        raise ToolkitError(f"no value for input dim '{missing[0]}'; pass --dim {missing[0]}=N")
    return values


def dim_flags(inputs: list[Tensor], symbols: Mapping[str, sp.Symbol]) -> dict[str, str]:
    """The CLI flag that sets each input dim, for error messages that name the fix."""
    flags = {name: f"--dim {name}=" for name in symbols}
    first = inputs[0] if inputs else None
    if first is not None and first.shape:
        for position, flag in ((0, "--batch "), (-1, "--samples ")):
            if not first.shape[position].is_Integer:
                flags[str(first.shape[position])] = flag
    return flags


def check_constraints(analysis: Analysis) -> None:
    """Refuse dims no run can take, naming the rule that fails and the smallest value that works."""
    flags = dim_flags(analysis.propagation.inputs, analysis.propagation.symbols)
    for c in analysis.constraints:
        if analysis.holds(c.expr):
            continue
        given = ", ".join(f"{k}={v}" for k, v in analysis.dims.items())
        if c.symbol is None:
            raise ToolkitError(f"these input dims ({given}) are invalid: {c.why} ({c.text}); change the input dims")
        raise ToolkitError(f"{c.symbol}={analysis.dims[str(c.symbol)]} is too small: the graph needs {c.text} "
                           f"for one frame ({c.why}); pass {flags[str(c.symbol)]}{c.bound} or more")


def default_values(inputs: list[Tensor], lengths: set[str], sample_rate: int) -> dict[str, InputValue]:
    """Inputs beside the audio (the first input) whose role is known: `lengths` (the feed plan's rule,
    toolkit.load.feed_plan, so analysis and the runs agree) hold the audio's length (its last dim, a formula
    while unbound); an integer input named like a sample rate holds --sample-rate. Others stay unknown."""
    defaults = {}
    for tensor in inputs[1:] if inputs and inputs[0].shape else ():
        if tensor.name in lengths:
            defaults[tensor.name] = InputValue(inputs[0].dims[-1], "default: lengths are the samples given")
        elif is_integer_dtype(tensor.dtype) and RATE_NAME.search(tensor.name):
            defaults[tensor.name] = InputValue(sp.Integer(sample_rate), "default: the sample rate (--sample-rate)")
    return defaults


def given_values(inputs: list[Tensor], given: Mapping[str, float]) -> dict[str, InputValue]:
    """--input NAME=VALUE, checked: an input of the model, not the audio, a whole number for an integer type."""
    by_name = {t.name: t for t in inputs}
    values = {}
    for name, value in given.items():
        if name not in by_name:
            raise ToolkitError(f"input '{name}' is not an input of this model (its inputs: {', '.join(by_name)})")
        tensor = by_name[name]
        if tensor is inputs[0]:
            raise ToolkitError(f"input '{name}' is the audio input: it takes no value, only sizes "
                               "(--samples, --batch, --dim)")
        if is_integer_dtype(tensor.dtype) and value != int(value):
            kind = helper.tensor_dtype_to_string(tensor.dtype).removeprefix("TensorProto.")
            raise ToolkitError(f"input '{name}' is {kind}: {value} is not a whole number")
        values[name] = InputValue(sp.Integer(int(value)) if value == int(value) else sp.Float(value),
                                  "given with --input")
    return values


def input_arrays(inputs: list[Tensor], values: Mapping[str, InputValue], dims: Mapping[str, int]
                 ) -> dict[str, np.ndarray]:
    """Each valued input filled with its value, at its shape under the bound dims."""
    bindings = {dim_symbol(name): size for name, size in dims.items()}
    arrays = {}
    for tensor in inputs:
        if tensor.name in values:
            shape = tuple(int(sp.sympify(d).subs(bindings)) for d in tensor.dims)
            arrays[tensor.name] = settle(np.full(shape, values[tensor.name].value, dtype=object), tensor.dtype)
    return arrays


def analyze(model: onnx.ModelProto | str | Path | None = None, *, batch: int | None = None,
            samples: int | None = None, dims: Mapping[str, int] | None = None,
            inputs: Mapping[str, float] | None = None, sample_rate: int = 16000,
            branches: Mapping[str, str] | None = None) -> Analysis:
    """Analyze a model (default: the built-in mel graph) at the given input dims (default 1 x 16000).

    Inputs beside the audio get values where their role is known (see default_values) or given in `inputs`.
    `branches` fixes the branch of an If whose condition the data decides (node name -> "then" / "else");
    such an If left open makes the totals bounds (Analysis.bounded).
    """
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model, limits=ANALYSIS_LIMITS)
    declared, symbols = declared_inputs(model)
    bound = resolve_dims(declared, symbols, dims, batch, samples)
    values = default_values(declared, lengths_inputs(model), sample_rate) | given_values(declared, inputs or {})
    propagation = propagate(model, input_arrays(declared, values, bound),
                            {dim_symbol(name): size for name, size in bound.items()})
    chosen = branch_choices(propagation, branches or {})
    nodes = [node_report(o, chosen.get(report_name(o))) for o in propagation.nodes]
    constraints: dict[str, Constraint] = {}
    for outcome in propagation.nodes:
        for expr, why in outcome.result.constraints if outcome.result else ():
            constraint = reduce_constraint(sp.sympify(expr), why)
            if not constraint.expr.free_symbols and constraint.expr < 0:
                raise ToolkitError(f"the model cannot run at its fixed input size: {why}")
            if constraint.expr.free_symbols and (constraint.bound is None or constraint.bound > 1):  # dims are >= 1
                constraints.setdefault(constraint.text, constraint)
    analysis = Analysis(model, propagation, bound, nodes, list(constraints.values()), None, sample_rate, values)
    check_constraints(analysis)
    analysis.frames = find_frames(analysis)
    return analysis
