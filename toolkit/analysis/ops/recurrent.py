"""LSTM and GRU by the ONNX spec's formulas, per direction, time step and batch element.

Each gate unit's pre-activation is one sum of terms: I products with X_t, H products with H_t-1, a peephole
product (LSTM i, o, f with P), and the two biases Wb, Rb when B is given; it costs its products' muls and
(terms - 1) adds. Then, per hidden unit:
  LSTM  f on i, o, f, g on c, h on C_t; C_t = f C_t-1 + i c (2 mul, 1 add); H_t = o h(C_t) (1 mul)
  GRU   f on z, r, g on h; r H_t-1 before R_h (linear_before_reset 0: H mul) or r (H_t-1 R_h + Rb_h) after it
        (1: H mul, the bias a term of the inner sum); H_t = (1 - z) h + z H_t-1 (2 mul, 2 add)
clip: 2 cmp per gate unit. Activations cost as the ops of the same name. Effective: products and biases with a
constant 0 drop out, a constant 1 factor drops its mul; the recurrent state is never taken as constant.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from toolkit.analysis.counts import Counts
from toolkit.analysis.ops.base import NodeContext, NodeResult, rule
from toolkit.analysis.ops.elementwise import UNARY
from toolkit.errors import ToolkitError

# op -> (gates, activations per direction by default, the gates the peephole input P feeds)
RECURRENT = {"LSTM": (4, ("Sigmoid", "Tanh", "Tanh"), 3), "GRU": (3, ("Sigmoid", "Tanh"), 0)}
ACTIVATIONS = {name: UNARY[name][0] for name in ("Sigmoid", "Tanh", "Relu")}
PEEPHOLE_INPUT = 7


def factor_terms(ctx: NodeContext, i: int, direction: int, dense: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row of input i's slice for one direction: terms it adds and muls it needs (absent input: none).

    Dense, or an input not constant, keeps every term and mul; effective drops 0s (term and mul) and 1s (mul)."""
    tensor = ctx.input(i)
    if tensor is None:
        return np.zeros(1, np.int64), np.zeros(1, np.int64)
    shape = tuple(int(d) for d in tensor.dims[1:])
    value = None if dense else ctx.const(i)
    if value is None:
        ones = np.ones(shape, np.int64)
        return ones, ones
    value = value[direction]
    return (value != 0).astype(np.int64), ((value != 0) & (value != 1)).astype(np.int64)


def rows(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Terms and muls summed along a weight matrix's input axis: one number per gate unit."""
    terms, muls = pair
    return (terms.sum(axis=-1), muls.sum(axis=-1)) if terms.ndim > 1 else (terms, muls)


def gate_costs(ctx: NodeContext, direction: int, hidden: int, dense: bool) -> Counts:
    """One step of one direction for one batch element: the gate sums and, for GRU, r H or r (H R_h + Rb_h)."""
    gates, _, peepholes = RECURRENT[ctx.op]
    units = gates * hidden
    w_terms, w_muls = rows(factor_terms(ctx, 1, direction, dense))
    r_terms, r_muls = rows(factor_terms(ctx, 2, direction, dense))
    b_terms, _ = factor_terms(ctx, 3, direction, dense)
    b_terms = np.broadcast_to(b_terms, (2 * units,))
    bias = b_terms[:units] + b_terms[units:]
    peep = np.zeros((2, units), np.int64)
    if ctx.op == "LSTM" and ctx.input(PEEPHOLE_INPUT) is not None:
        peep[:, :peepholes * hidden] = factor_terms(ctx, PEEPHOLE_INPUT, direction, dense)
    if ctx.op == "GRU" and int(ctx.attr("linear_before_reset")):
        return gru_reset_after(w_terms, w_muls, r_terms, r_muls, b_terms, hidden)
    terms = w_terms + r_terms + bias + peep[0]
    reset = Counts(mul=hidden) if ctx.op == "GRU" else Counts()
    return Counts(mul=int((w_muls + r_muls + peep[1]).sum()), add=int(np.maximum(terms - 1, 0).sum())) + reset


def gru_reset_after(w_terms: np.ndarray, w_muls: np.ndarray, r_terms: np.ndarray, r_muls: np.ndarray,
                    b_terms: np.ndarray, hidden: int) -> Counts:
    """linear_before_reset 1: z, r as usual; h's inner sum H R_h + Rb_h, times r (H mul), then X W_h + that + Wb_h."""
    units = 3 * hidden
    zr = slice(0, 2 * hidden)
    h = slice(2 * hidden, units)
    zr_terms = w_terms[zr] + r_terms[zr] + b_terms[:units][zr] + b_terms[units:][zr]
    inner = r_terms[h] + b_terms[units:][h]
    outer = w_terms[h] + 1 + b_terms[:units][h]
    adds = sum(int(np.maximum(t - 1, 0).sum()) for t in (zr_terms, inner, outer))
    return Counts(mul=int((w_muls + r_muls).sum()) + hidden, add=adds)


def activation_costs(ctx: NodeContext, directions: int, hidden: int) -> list[Counts]:
    """Per direction: each activation once per hidden unit of each gate it applies to (f to all but the last)."""
    gates, defaults, _ = RECURRENT[ctx.op]
    names = ctx.attr("activations") or defaults * directions
    per = len(defaults)
    out = []
    for d in range(directions):
        chosen = names[d * per:(d + 1) * per]
        unknown = [n for n in chosen if n not in ACTIVATIONS]
        if unknown:
            raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): activation {unknown[0]} has no cost rule "
                               f"(supported: {', '.join(ACTIVATIONS)})")
        uses = [gates - 1, 1, 1][:per]  # f on every gate but the candidate, g on the candidate, h on C_t
        out.append(sum((ACTIVATIONS[n] * (u * hidden) for n, u in zip(chosen, uses, strict=True)), Counts()))
    return out


def cell_costs(ctx: NodeContext, hidden: int) -> Counts:
    """Per step: the state update, and the clip of every gate unit's pre-activation when `clip` is set."""
    gates = RECURRENT[ctx.op][0]
    update = Counts(mul=3 * hidden, add=hidden) if ctx.op == "LSTM" else Counts(mul=2 * hidden, add=2 * hidden)
    clip = Counts(cmp=2 * gates * hidden) if ctx.attr("clip") is not None else Counts()
    return update + clip


def check_supported(ctx: NodeContext) -> None:
    if ctx.input(4) is not None:
        raise ToolkitError(f"node '{ctx.node.name}' ({ctx.op}): sequence_lens is not supported (the steps run per "
                           "batch element would depend on its values)")
    if ctx.op == "LSTM" and int(ctx.attr("input_forget")):
        raise ToolkitError(f"node '{ctx.node.name}' (LSTM): input_forget=1 has no cost rule")


@rule(*RECURRENT)
def recurrent(ctx: NodeContext) -> NodeResult:
    check_supported(ctx)
    x, w = ctx.require(0), ctx.require(1)
    layout = int(ctx.attr("layout"))
    seq, batch = (x.dims[1], x.dims[0]) if layout else (x.dims[0], x.dims[1])
    directions, hidden = int(w.dims[0]), int(ctx.attr("hidden_size") or int(ctx.require(2).dims[-1]))
    activations = activation_costs(ctx, directions, hidden)
    steps = seq * batch
    dense, effective = Counts(), Counts()
    for d in range(directions):
        shared = activations[d] + cell_costs(ctx, hidden)
        dense = dense + (gate_costs(ctx, d, hidden, True) + shared) * steps
        effective = effective + (gate_costs(ctx, d, hidden, False) + shared) * steps
    y = (batch, seq, directions, hidden) if layout else (seq, directions, batch, hidden)
    state = (batch, directions, hidden) if layout else (directions, batch, hidden)
    outputs = [ctx.out(y if i == 0 else state, index=i) for i, name in enumerate(ctx.node.output) if name]
    direction = str(ctx.attr("direction"))
    math = (f"{', '.join(n for n in ctx.node.output if n)} = {ctx.op} ({direction}, hidden {hidden}) over "
            f"{sp.sympify(seq)} steps of {ctx.name(0)}, per the ONNX formulas")
    return NodeResult(outputs, dense, math, effective)
