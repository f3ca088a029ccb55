"""Counting interpreter: runs an ONNX graph with per-element Python loops and counts every scalar operation.

It exists to check the analyzer's count formulas independently. No count here comes from a formula: each one is a
counter bumped by the `_Tally` method that performs that very multiply, add, divide, compare or special function.
Outputs must match onnxruntime, which shows the counted loops are the real computation and not a sketch of it.
numpy only moves data (broadcast, transpose, pad, slice) and keeps shapes; it never does counted arithmetic.
Use small shapes: every scalar operation is a Python call.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import Any, cast

import numpy as np
import onnx
from onnx import helper, numpy_helper

from toolkit.analysis.attributes import Attributes, AttributeValue, FromInput, decode, softmax_axes
from toolkit.analysis.counts import Counts
from toolkit.errors import ToolkitError

Scalar = float | int


@dataclass(frozen=True)
class NodeTally:
    """Counts of one node as executed. `counted` is always True: an op without a cost rule raises instead."""

    index: int
    name: str
    op_type: str
    dense: Counts
    effective: Counts
    counted: bool


@dataclass(frozen=True)
class Interpretation:
    outputs: dict[str, np.ndarray]
    nodes: list[NodeTally]


# ---------------------------------------------------------------------------------------------------------------
# Counters: every counted operation of the interpreter goes through one of these methods.


def _divide(a: Scalar, b: Scalar) -> Scalar:
    """a / b with onnxruntime's results: truncation for integers, IEEE inf/nan for a float zero divisor."""
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient
    return float(np.divide(a, b))


def _remainder(a: Scalar, b: Scalar, fmod: bool) -> Scalar:
    """Mod: with fmod the sign of a (C's fmod), else the sign of b (Python's %), as onnxruntime computes them."""
    if isinstance(a, int) and isinstance(b, int):
        return a - b * _divide(a, b) if fmod else a % b
    return float(np.fmod(a, b) if fmod else np.mod(a, b))


class _Tally:
    """Dense and effective counters of one node; `skip` means the effective convention drops that operation."""

    def __init__(self) -> None:
        self.dense: Counter[str] = Counter()
        self.effective: Counter[str] = Counter()

    def _count(self, kind: str, skip: bool) -> None:
        self.dense[kind] += 1
        if not skip:
            self.effective[kind] += 1

    def add(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("add", skip)
        return a + b

    def sub(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("add", skip)
        return a - b

    def mul(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("mul", skip)
        return a * b

    def div(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("div", skip)
        return _divide(a, b)

    def max(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("cmp", skip)
        return b if b > a or math.isnan(b) else a

    def min(self, a: Scalar, b: Scalar, skip: bool = False) -> Scalar:
        self._count("cmp", skip)
        return b if b < a or math.isnan(b) else a

    def compare(self, test: Callable[[Scalar, Scalar], bool], a: Scalar, b: Scalar) -> bool:
        self._count("cmp", False)
        return bool(test(a, b))

    def mod(self, a: Scalar, b: Scalar, fmod: bool) -> Scalar:
        self._count("mod", False)
        return _remainder(a, b, fmod)

    def special(self, name: str, fn: Callable[..., Any], *args: Scalar) -> float:
        self._count(name, False)
        return float(fn(*args))

    def counts(self) -> tuple[Counts, Counts]:
        return Counts(dict(self.dense)), Counts(dict(self.effective))

    def absorb(self, inner: NodeTally) -> None:
        """A body node's counts (If, Loop, Scan), counted as the enclosing node's."""
        for mine, theirs in ((self.dense, inner.dense), (self.effective, inner.effective)):
            mine.update(theirs.as_ints())


class _Dot:
    """One output element of a sum of products (Conv, MatMul, Gemm): (terms - 1) adds, dense and effective.

    A product with a constant factor exactly 0 is dropped from the effective count (mul and add); one with a
    constant factor exactly 1 keeps its add but not its mul. The value always includes every term, as the graph.
    """

    __slots__ = ("kept", "tally", "terms", "value")

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.value: Scalar = 0
        self.terms = 0
        self.kept = 0

    def product(self, a: Scalar, b: Scalar, a_const: bool, b_const: bool) -> None:
        zero = (a_const and a == 0) or (b_const and b == 0)
        one = (a_const and a == 1) or (b_const and b == 1)
        self.term(self.tally.mul(a, b, skip=zero or one), dropped=zero)

    def term(self, value: Scalar, dropped: bool = False) -> None:
        if self.terms:
            self.value = self.tally.add(self.value, value, skip=dropped or not self.kept)
        else:
            self.value = value
        self.terms += 1
        self.kept += not dropped


def _fold(values: Sequence[Scalar], combine: Callable[[Scalar, Scalar], Scalar]) -> Scalar:
    """Left fold from the first element: m values cost m - 1 operations."""
    acc = values[0]
    for v in values[1:]:
        acc = combine(acc, v)
    return acc


# ---------------------------------------------------------------------------------------------------------------
# Scalar special functions with onnxruntime's IEEE results where Python's math raises.


def _log(v: float) -> float:
    return float(np.log(np.float64(v)))


def _exp(v: float) -> float:
    return float(np.exp(np.float64(v)))


def _sqrt(v: float) -> float:
    return float(np.sqrt(np.float64(v)))


def _pow(a: Scalar, b: Scalar) -> Scalar:
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        return cast(int, a**b)
    return float(np.power(np.float64(a), np.float64(b)))


def _is_positive_int(v: Scalar) -> bool:
    return v >= 1 and float(v).is_integer()


# ---------------------------------------------------------------------------------------------------------------
# The node being executed.


@dataclass
class _Step:
    node: onnx.NodeProto
    inputs: list[np.ndarray | None]
    const: list[bool]
    opset: int
    tally: _Tally
    # runs a body (If branch, Loop or Scan body) with the given inputs in this node's scope, counting into tally
    run_graph: Callable[[onnx.GraphProto, dict[str, np.ndarray]], list[np.ndarray]] | None = None

    def __post_init__(self) -> None:
        self.attrs: Attributes = decode(self.node, self.opset)

    def attr(self, name: str) -> AttributeValue:
        """The node's value, else its schema's default (None where the schema has none)."""
        return self.attrs[name]

    def input(self, i: int) -> np.ndarray | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def require(self, i: int) -> np.ndarray:
        """An input the op cannot do without."""
        value = self.input(i)
        if value is None:
            raise self.fail(f"input {i} is not given")
        return value

    def run_body(self, graph: onnx.GraphProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """A body (If branch, Loop or Scan body) run in this node's scope, its counts the node's."""
        if self.run_graph is None:
            raise self.fail("its body cannot be run here")
        return self.run_graph(graph, feeds)

    def is_const(self, i: int) -> bool:
        return i < len(self.const) and self.const[i]

    def param(self, name: str) -> np.ndarray | None:
        """A parameter some opsets give as an attribute and others as an input (attributes.MOVED): that input,
        or the attribute's value as an array; None when the node gives it neither way."""
        source = self.attrs[name]
        if isinstance(source, FromInput):
            if self.input(source.index) is not None or source.absent is None:
                return self.input(source.index)
            source = source.absent
        return None if source is None else np.asarray(source)

    def param_is_const(self, name: str) -> bool:
        """Whether the parameter is a constant: an attribute always is, an input when it is one."""
        source = self.attrs[name]
        return not isinstance(source, FromInput) or self.is_const(source.index)

    def required_param(self, name: str) -> np.ndarray:
        """As param, for one the op cannot do without (Slice's starts, Pad's pads, DFT's axis)."""
        value = self.param(name)
        if value is None:
            raise self.fail(f"{name} is not given")
        return value

    def ints(self, name: str) -> list[int] | None:
        """param as a list of ints."""
        value = self.param(name)
        return None if value is None else [int(v) for v in value.reshape(-1)]

    def required_ints(self, name: str) -> list[int]:
        """required_param as a list of ints."""
        return [int(v) for v in self.required_param(name).reshape(-1)]

    def fail(self, why: str) -> ToolkitError:
        return ToolkitError(f"node '{self.node.name}' ({self.node.op_type}): {why}")


def _pack(values: list[Scalar], shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """Loop results back into a tensor of the op's output type."""
    return np.array(values, dtype=np.float64 if dtype.kind == "f" else None).astype(dtype).reshape(shape)


def _flat(x: np.ndarray, shape: Sequence[int]) -> list[Scalar]:
    """x broadcast to `shape`, row-major, as Python scalars for the counted loops."""
    return np.broadcast_to(x, shape).reshape(-1).tolist()


# ---------------------------------------------------------------------------------------------------------------
# Elementwise ops.

_UnaryFn = Callable[[_Tally, Scalar], Scalar]


def _unary(fn: _UnaryFn) -> Callable[[_Step], list[np.ndarray]]:
    def run(step: _Step) -> list[np.ndarray]:
        x = step.require(0)
        return [_pack([fn(step.tally, v) for v in x.reshape(-1).tolist()], x.shape, x.dtype)]

    return run


def _sigmoid(t: _Tally, v: Scalar) -> Scalar:
    return t.div(1.0, t.add(1.0, t.special("exp", _exp, -v)))


def _softplus(t: _Tally, v: Scalar) -> Scalar:
    return t.special("log", _log, t.add(1.0, t.special("exp", _exp, v)))


def _leaky_relu(step: _Step) -> list[np.ndarray]:
    """max(x, alpha x) as counted (1 mul, 1 cmp); the value is the spec's x < 0 ? alpha x : x for any alpha."""
    alpha = float(step.attr("alpha"))

    def fn(t: _Tally, v: Scalar) -> Scalar:
        scaled = t.mul(alpha, v)
        return t.max(v, scaled) if alpha <= 1 else t.min(v, scaled)

    return _unary(fn)(step)


def _special(name: str, fn: Callable[[float], float]) -> Callable[[_Step], list[np.ndarray]]:
    return _unary(lambda t, v: t.special(name, fn, v))


_BinaryFn = Callable[[_Tally, Scalar, Scalar, bool, bool], Scalar]


def _add(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.add(a, b, skip=(ca and a == 0) or (cb and b == 0))


def _sub(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.sub(a, b, skip=cb and b == 0)


def _mul(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.mul(a, b, skip=(ca and a in (0, 1)) or (cb and b in (0, 1)))


def _div(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.div(a, b, skip=cb and b == 1)


def _power(t: _Tally, a: Scalar, p: Scalar, ca: bool, cp: bool) -> Scalar:
    """A constant positive integer exponent is repeated multiplication: p - 1 muls."""
    if not (cp and _is_positive_int(p)):
        return t.special("pow", _pow, a, p)
    result = a
    for _ in range(int(p) - 1):
        result = t.mul(result, a)
    return result


def _max(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.max(a, b, skip=(ca and math.isinf(a)) or (cb and math.isinf(b)))


def _min(t: _Tally, a: Scalar, b: Scalar, ca: bool, cb: bool) -> Scalar:
    return t.min(a, b, skip=(ca and math.isinf(a)) or (cb and math.isinf(b)))


def _broadcast(step: _Step) -> tuple[tuple[int, ...], list[list[Scalar]]]:
    """The given inputs broadcast to their joint shape, each flattened row-major for the counted loops."""
    present = [x for x in step.inputs if x is not None]
    shape = np.broadcast_shapes(*(x.shape for x in present))
    return shape, [_flat(x, shape) for x in present]


def _variadic(fn: _BinaryFn, mean: bool = False) -> Callable[[_Step], list[np.ndarray]]:
    """Broadcasting n-ary op as a left fold: the running value is constant while every folded input is."""

    def run(step: _Step) -> list[np.ndarray]:
        shape, columns = _broadcast(step)
        flags = [c for x, c in zip(step.inputs, step.const, strict=True) if x is not None]
        out = []
        for row in zip(*columns, strict=True):
            acc, acc_const = row[0], flags[0]
            for v, v_const in zip(row[1:], flags[1:], strict=True):
                acc = fn(step.tally, acc, v, acc_const, v_const)
                acc_const = acc_const and v_const
            out.append(step.tally.div(acc, len(row)) if mean else acc)
        return [_pack(out, shape, step.require(0).dtype)]

    return run


def _relu(t: _Tally, v: Scalar) -> Scalar:
    return t.max(v, 0)


def _compare(test: Callable[[Scalar, Scalar], bool]) -> Callable[[_Step], list[np.ndarray]]:
    """Equal, Less, ...: one compare per output element, a bool result."""

    def run(step: _Step) -> list[np.ndarray]:
        shape, (a, b) = _broadcast(step)
        return [_pack([step.tally.compare(test, x, y) for x, y in zip(a, b, strict=True)], shape, np.dtype(bool))]

    return run


def _mod(step: _Step) -> list[np.ndarray]:
    """One remainder per output element; `fmod` says whose sign it takes."""
    fmod = bool(step.attr("fmod"))
    shape, (a, b) = _broadcast(step)
    return [_pack([step.tally.mod(x, y, fmod) for x, y in zip(a, b, strict=True)], shape, step.require(0).dtype)]


def _clip(step: _Step) -> list[np.ndarray]:
    """One compare per bound given; a constant infinite bound is skipped by the effective count."""
    bounds = [(step.param(side), step.param_is_const(side)) for side in ("min", "max")]
    (low, low_const), (high, high_const) = [(None if b is None else b.item(), const) for b, const in bounds]
    t = step.tally

    def clip(_: _Tally, v: Scalar) -> Scalar:
        if low is not None:
            v = t.max(v, low, skip=low_const and math.isinf(low))
        if high is not None:
            v = t.min(v, high, skip=high_const and math.isinf(high))
        return v

    return _unary(clip)(step)


# ---------------------------------------------------------------------------------------------------------------
# Sliding windows: Conv, ConvTranspose and the pools.

_PAD = -1  # a tap on a declared pad
_OUTSIDE = -2  # a tap beyond the pads (ceil_mode's last window)


@dataclass(frozen=True)
class _Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    out: tuple[int, ...]


def _window(step: _Step, spatial: Sequence[int], kernel: Sequence[int], ceil_mode: bool = False) -> _Window:
    """Output size and pads per the ONNX spec: explicit pads, SAME_UPPER/SAME_LOWER or VALID."""
    rank = len(kernel)
    strides = tuple(step.attr("strides") or (1,) * rank)
    dilations = tuple(step.attr("dilations") or (1,) * rank)
    auto_pad = step.attr("auto_pad")
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(spatial, strides, strict=True)]
        totals = [max((o - 1) * s + span - n, 0) for o, s, span, n in zip(out, strides, spans, spatial, strict=True)]
        begins = [tot // 2 if auto_pad == "SAME_UPPER" else tot - tot // 2 for tot in totals]
        ends = [tot - b for tot, b in zip(totals, begins, strict=True)]
    elif auto_pad in ("NOTSET", "VALID"):
        pads = step.attr("pads") if auto_pad == "NOTSET" else None
        pads = list(pads or (0,) * (2 * rank))
        begins, ends = pads[:rank], pads[rank:]
        out = []
        for n, s, span, b, e in zip(spatial, strides, spans, begins, ends, strict=True):
            extent = n + b + e - span
            size = (-(-extent // s) if ceil_mode else extent // s) + 1
            if ceil_mode and (size - 1) * s >= n + b:
                size -= 1  # the last window would start on the end pad
            out.append(size)
    else:
        raise step.fail(f"unknown auto_pad '{auto_pad}'")
    if min(out) < 1:
        raise step.fail(f"input {tuple(spatial)} is smaller than the window {tuple(spans)}")
    return _Window(tuple(kernel), strides, dilations, tuple(begins), tuple(ends), tuple(out))


def _taps(window: _Window, spatial: Sequence[int]) -> list[list[int]]:
    """For each output position (row-major), each kernel tap's flat input offset, or _PAD / _OUTSIDE."""
    steps = [math.prod(spatial[axis + 1 :]) for axis in range(len(spatial))]
    limits = list(zip(spatial, window.begins, window.ends, strict=True))
    rows = []
    for position in product(*(range(o) for o in window.out)):
        starts = [o * s - b for o, s, b in zip(position, window.strides, window.begins, strict=True)]
        row = []
        for tap in product(*(range(k) for k in window.kernel)):
            coords = [i + k * d for i, k, d in zip(starts, tap, window.dilations, strict=True)]
            if all(0 <= i < n for i, (n, _, _) in zip(coords, limits, strict=True)):
                row.append(sum(i * step for i, step in zip(coords, steps, strict=True)))
            elif all(-b <= i < n + e for i, (n, b, e) in zip(coords, limits, strict=True)):
                row.append(_PAD)
            else:
                row.append(_OUTSIDE)
        rows.append(row)
    return rows


def _conv(step: _Step) -> list[np.ndarray]:
    """Gather form: per output element, every input channel of its group times every tap, padding taps too."""
    x, w, bias = step.require(0), step.require(1), step.input(2)
    batch, channels = x.shape[:2]
    filters, group = w.shape[0], int(step.attr("group"))
    per_group_in, per_group_out = channels // group, filters // group
    window = _window(step, x.shape[2:], w.shape[2:])
    taps = _taps(window, x.shape[2:])
    xs, ws = x.reshape(batch, channels, -1).tolist(), w.reshape(filters, per_group_in, -1).tolist()
    x_const, w_const, b_const = step.is_const(0), step.is_const(1), step.is_const(2)
    out = []
    for n, m in product(range(batch), range(filters)):
        first_channel = (m // per_group_out) * per_group_in
        for offsets in taps:
            dot = _Dot(step.tally)
            for c in range(per_group_in):
                row, weights = xs[n][first_channel + c], ws[m][c]
                for k, off in enumerate(offsets):
                    dot.product(row[off] if off >= 0 else 0.0, weights[k], x_const and off >= 0, w_const)
            if bias is not None:
                b = bias[m].item()
                dot.term(b, dropped=b_const and b == 0)
            out.append(dot.value)
    return [_pack(out, (batch, filters, *window.out), x.dtype)]


def _transpose_pads(step: _Step, spatial: Sequence[int], full: Sequence[int]) -> tuple[list[int], list[int]]:
    """ConvTranspose pads: from output_shape or SAME (total split as onnxruntime does), VALID, or explicit."""
    rank = len(spatial)
    auto_pad = step.attr("auto_pad")
    output_shape = step.attr("output_shape")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        strides = step.attr("strides") or (1,) * rank
        target = list(output_shape)[-rank:] if output_shape else [n * s for n, s in zip(spatial, strides, strict=True)]
        totals = [max(f - t, 0) for f, t in zip(full, target, strict=True)]
        small = [tot // 2 for tot in totals]
        begins = small if auto_pad == "SAME_UPPER" else [tot - s for tot, s in zip(totals, small, strict=True)]
        return begins, [tot - b for tot, b in zip(totals, begins, strict=True)]
    pads = list(step.attr("pads") or (0,) * (2 * rank)) if auto_pad == "NOTSET" else [0] * (2 * rank)
    return pads[:rank], pads[rank:]


def _conv_transpose(step: _Step) -> list[np.ndarray]:
    """Scatter form: every input element times every tap of its group, each product added into a zeroed
    full-size output (one add per product, cropped ones too), then the pads cropped and the bias added."""
    x, w, bias = step.require(0), step.require(1), step.input(2)
    batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
    group = int(step.attr("group"))
    per_group_in, per_group_out = channels // group, w.shape[1]
    filters, kernel, rank = per_group_out * group, w.shape[2:], len(spatial)
    strides = step.attr("strides") or (1,) * rank
    dilations = step.attr("dilations") or (1,) * rank
    extra = step.attr("output_padding") or (0,) * rank
    full = [
        s * (n - 1) + d * (k - 1) + 1 + e
        for n, k, s, d, e in zip(spatial, kernel, strides, dilations, extra, strict=True)
    ]
    begins, ends = _transpose_pads(step, spatial, full)
    xs, ws = x.reshape(batch, channels, -1).tolist(), w.reshape(channels, per_group_out, -1).tolist()
    positions = list(product(*(range(d) for d in spatial)))
    kernel_taps = list(product(*(range(k) for k in kernel)))
    x_const, w_const, b_const = step.is_const(0), step.is_const(1), step.is_const(2)
    t = step.tally
    buffer = np.zeros((batch, filters, *full), dtype=object)  # Python scalars, as the counted loop leaves them
    for n, c, j in product(range(batch), range(channels), range(per_group_out)):
        plane = buffer[n, (c // per_group_in) * per_group_out + j]
        for position, v in zip(positions, xs[n][c], strict=True):
            for tap, wv in zip(kernel_taps, ws[c][j], strict=True):
                zero = (x_const and v == 0) or (w_const and wv == 0)
                one = (x_const and v == 1) or (w_const and wv == 1)
                at = tuple(i * s + k * d for i, k, s, d in zip(position, tap, strides, dilations, strict=True))
                plane[at] = t.add(plane[at], t.mul(v, wv, skip=zero or one), skip=zero)
    crop = tuple(slice(b, f - e) for b, f, e in zip(begins, full, ends, strict=True))
    out = buffer[(slice(None), slice(None), *crop)]
    values = out.reshape(-1).tolist()
    if bias is not None:
        biases = _flat(bias.reshape((filters,) + (1,) * rank), out.shape)
        values = [t.add(v, b, skip=b_const and b == 0) for v, b in zip(values, biases, strict=True)]
    return [_pack(values, out.shape, x.dtype)]


def _pool(step: _Step, reduce: Callable[[list[Scalar], list[int]], Scalar]) -> list[np.ndarray]:
    """Every tap of every window, padding positions included, handed to `reduce` with its offset code."""
    x = step.require(0)
    if len(step.node.output) > 1 and step.node.output[1]:
        raise step.fail("the Indices output is not supported")
    spatial = x.shape[2:]
    window = _window(step, spatial, step.attr("kernel_shape"), bool(step.attr("ceil_mode")))
    taps = _taps(window, spatial)
    out = []
    for row in x.reshape(x.shape[0] * x.shape[1], -1).tolist():
        out += [reduce([row[o] if o >= 0 else 0.0 for o in offsets], offsets) for offsets in taps]
    return [_pack(out, (*x.shape[:2], *window.out), x.dtype)]


def _max_pool(step: _Step) -> list[np.ndarray]:
    def reduce(values: list[Scalar], offsets: list[int]) -> Scalar:
        taps = [v if o >= 0 else -math.inf for v, o in zip(values, offsets, strict=True)]
        return _fold(taps, step.tally.max)

    return _pool(step, reduce)


def _average_pool(step: _Step) -> list[np.ndarray]:
    """k - 1 adds over the whole window, then 1 div by the count onnxruntime divides by."""
    include_pad = bool(step.attr("count_include_pad"))

    def reduce(values: list[Scalar], offsets: list[int]) -> Scalar:
        count = sum(o >= 0 or (include_pad and o == _PAD) for o in offsets)
        return step.tally.div(_fold(values, step.tally.add), count)

    return _pool(step, reduce)


def _global_pool(reduce: Callable[[_Tally, list[Scalar]], Scalar]) -> Callable[[_Step], list[np.ndarray]]:
    """GlobalAveragePool, GlobalMaxPool: one reduction over all spatial positions per (n, c)."""

    def run(step: _Step) -> list[np.ndarray]:
        x = step.require(0)
        out = [reduce(step.tally, row) for row in x.reshape(x.shape[0] * x.shape[1], -1).tolist()]
        return [_pack(out, (*x.shape[:2], *(1,) * (x.ndim - 2)), x.dtype)]

    return run


# ---------------------------------------------------------------------------------------------------------------
# MatMul and Gemm.


def _matmul(step: _Step) -> list[np.ndarray]:
    """numpy matmul semantics: batch dims broadcast, a 1-D operand gets a unit dim that is dropped after."""
    a, b = step.require(0), step.require(1)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    (rows, inner), cols = a2.shape[-2:], b2.shape[-1]
    lefts = np.broadcast_to(a2, (*batch, rows, inner)).reshape(-1, rows, inner).tolist()
    rights = np.broadcast_to(b2, (*batch, inner, cols)).reshape(-1, inner, cols).tolist()
    a_const, b_const = step.is_const(0), step.is_const(1)
    out = []
    for left, right in zip(lefts, rights, strict=True):
        for i, j in product(range(rows), range(cols)):
            dot = _Dot(step.tally)
            for k in range(inner):
                dot.product(left[i][k], right[k][j], a_const, b_const)
            out.append(dot.value)
    shape = (*batch, *(() if a.ndim == 1 else (rows,)), *(() if b.ndim == 1 else (cols,)))
    return [_pack(out, shape, a.dtype)]


def _gemm(step: _Step) -> list[np.ndarray]:
    """alpha * A'B' + beta * C: K products, a mul for alpha != 1, then beta * C as one more term."""
    a, b, c = step.require(0), step.require(1), step.input(2)
    a = a.T if step.attr("transA") else a
    b = b.T if step.attr("transB") else b
    alpha, beta = float(step.attr("alpha")), float(step.attr("beta"))
    (rows, inner), cols = a.shape, b.shape[1]
    left, right = a.tolist(), b.tolist()
    cs = None if c is None else _flat(c, (rows, cols))
    a_const, b_const, c_const = step.is_const(0), step.is_const(1), step.is_const(2)
    t = step.tally
    out = []
    for i, j in product(range(rows), range(cols)):
        dot = _Dot(t)
        for k in range(inner):
            dot.product(left[i][k], right[k][j], a_const, b_const)
        if alpha != 1:
            dot.value = t.mul(alpha, dot.value)
        if cs is not None:
            cv = cs[i * cols + j]
            if beta != 1:
                dot.product(beta, cv, True, c_const)
            else:
                dot.term(cv, dropped=c_const and cv == 0)
        out.append(dot.value)
    return [_pack(out, (rows, cols), a.dtype)]


# ---------------------------------------------------------------------------------------------------------------
# Rows: Softmax, normalizations and reductions.


def _rows_last(x: np.ndarray, axes: Sequence[int]) -> tuple[list[list[Scalar]], tuple[int, ...]]:
    """x with `axes` moved last and flattened: one row per output element, plus the kept dims' shape."""
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = np.transpose(x, kept + list(axes))
    kept_shape = tuple(x.shape[d] for d in kept)
    return moved.reshape(math.prod(kept_shape), -1).tolist(), kept_shape


def _from_rows(values: list[Scalar], x: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Inverse of _rows_last when every row keeps its length."""
    order = [d for d in range(x.ndim) if d not in axes] + list(axes)
    return np.transpose(_pack(values, [x.shape[d] for d in order], x.dtype), np.argsort(order))


def _softmax_row(t: _Tally, row: list[Scalar]) -> list[Scalar]:
    """exp(x) / sum exp(x): n exp, n - 1 add, n div."""
    top = max(row)
    exps = [t.special("exp", _exp, v - top) for v in row]
    total = _fold(exps, t.add)
    return [t.div(e, total) for e in exps]


def _log_softmax_row(t: _Tally, row: list[Scalar]) -> list[Scalar]:
    """x - ln(sum exp(x)): n exp, n - 1 add for the sum, 1 log, n sub."""
    top = max(row)
    log_total = top + t.special("log", _log, _fold([t.special("exp", _exp, v - top) for v in row], t.add))
    return [t.sub(v, log_total) for v in row]


def _softmax(per_row: Callable[[_Tally, list[Scalar]], list[Scalar]]) -> Callable[[_Step], list[np.ndarray]]:
    """Softmax, LogSoftmax over rows along `axis` (before opset 13: dims axis..end). The value subtracts the row
    max inside exp's argument and adds it back after the log, uncounted, only so float64 cannot overflow."""

    def run(step: _Step) -> list[np.ndarray]:
        x = step.require(0)
        axes = softmax_axes(int(step.attr("axis")) % x.ndim, x.ndim, step.opset)
        rows, _ = _rows_last(x, axes)
        return [_from_rows([v for row in rows for v in per_row(step.tally, row)], x, axes)]

    return run


def _batch_norm(step: _Step) -> list[np.ndarray]:
    """Inference: per channel var + eps and its sqrt, then per element (x - mean) / std * scale + B."""
    if step.attr("training_mode"):
        raise step.fail("training_mode=1 is not supported; export the model for inference")
    x, scale, bias, mean, var = (step.require(i) for i in range(5))
    eps = float(step.attr("epsilon"))
    t = step.tally
    stds = [t.special("sqrt", _sqrt, t.add(v, eps)) for v in var.tolist()]
    channel = np.arange(x.shape[1]).reshape((1, -1) + (1,) * (x.ndim - 2))
    channels = [int(c) for c in _flat(channel, x.shape)]
    out = [
        t.add(t.mul(t.div(t.sub(v, mean[c].item()), stds[c]), scale[c].item()), bias[c].item())
        for v, c in zip(x.reshape(-1).tolist(), channels, strict=True)
    ]
    return [_pack(out, x.shape, x.dtype)]


def _layer_norm(step: _Step) -> list[np.ndarray]:
    """Per row of n: mean (n - 1 add, 1 div), x - mean (n add), variance (n mul, n - 1 add, 1 div),
    sqrt(var + eps) (1 add, 1 sqrt), then per element / std, * scale, + B (n div, n mul, n add)."""
    if any(step.node.output[1:]):
        raise step.fail("the Mean and InvStdDev outputs are not supported")
    x, scale, bias = step.require(0), step.require(1), step.input(2)
    axis = int(step.attr("axis")) % x.ndim
    eps = float(step.attr("epsilon"))
    normalized = x.shape[axis:]
    scales = _flat(scale, normalized)
    biases = None if bias is None else _flat(bias, normalized)
    t = step.tally
    out = []
    for row in x.reshape(math.prod(x.shape[:axis]), -1).tolist():
        n = len(row)
        mean = t.div(_fold(row, t.add), n)
        deviations = [t.sub(v, mean) for v in row]
        variance = t.div(_fold([t.mul(d, d) for d in deviations], t.add), n)
        std = t.special("sqrt", _sqrt, t.add(variance, eps))
        scaled = [t.mul(t.div(d, std), s) for d, s in zip(deviations, scales, strict=True)]
        out += scaled if biases is None else [t.add(v, b) for v, b in zip(scaled, biases, strict=True)]
    return [_pack(out, x.shape, x.dtype)]


def _sum_squares(t: _Tally, row: list[Scalar]) -> Scalar:
    return _fold([t.mul(v, v) for v in row], t.add)


_REDUCERS: dict[str, Callable[[_Tally, list[Scalar]], Scalar]] = {
    "ReduceSum": lambda t, row: _fold(row, t.add),
    "ReduceMean": lambda t, row: t.div(_fold(row, t.add), len(row)),
    "ReduceMax": lambda t, row: _fold(row, t.max),
    "ReduceMin": lambda t, row: _fold(row, t.min),
    "ReduceProd": lambda t, row: _fold(row, t.mul),
    "ReduceSumSquare": _sum_squares,
    "ReduceL1": lambda t, row: _fold([abs(v) for v in row], t.add),
    "ReduceL2": lambda t, row: t.special("sqrt", _sqrt, _sum_squares(t, row)),
    "ReduceLogSum": lambda t, row: t.special("log", _log, _fold(row, t.add)),
    "ReduceLogSumExp": lambda t, row: t.special("log", _log, _fold([t.special("exp", _exp, v) for v in row], t.add)),
}


def _reduce(step: _Step) -> list[np.ndarray]:
    """Axes from input 1 or the `axes` attribute; none means all axes, or identity with noop_with_empty_axes."""
    x = step.require(0)
    axes = step.ints("axes") or []
    if not axes and step.attr("noop_with_empty_axes"):
        return [x]
    axes = sorted({a % x.ndim for a in axes} if axes else set(range(x.ndim)))
    rows, kept_shape = _rows_last(x, axes)
    reducer = _REDUCERS[step.node.op_type]
    out = [reducer(step.tally, row) for row in rows]
    keep = [1 if d in axes else x.shape[d] for d in range(x.ndim)]
    return [_pack(out, keep if step.attr("keepdims") else kept_shape, x.dtype)]


# ---------------------------------------------------------------------------------------------------------------
# DFT and STFT: naive O(N^2), every product and accumulation counted.

Complex = tuple[Scalar, Scalar]


def _twiddles(size: int, inverse: bool) -> list[Complex]:
    """e^(-+2 pi i m / N) for m = k n mod N: a constant table, its index reduced exactly in integers."""
    sign = 1.0 if inverse else -1.0
    return [(math.cos(2 * math.pi * m / size), sign * math.sin(2 * math.pi * m / size)) for m in range(size)]


def _dft_row(t: _Tally, signal: list[Complex] | list[Scalar], bins: int, twiddles: list[Complex]) -> list[Complex]:
    """Real input: 2N mul, 2(N - 1) add per bin; complex input: 4N mul, 4N - 2 add per bin."""
    size = len(twiddles)
    out = []
    for k in range(bins):
        terms = []
        for n, v in enumerate(signal):
            c, s = twiddles[(k * n) % size]
            if isinstance(v, tuple):
                re, im = v
                terms.append((t.sub(t.mul(re, c), t.mul(im, s)), t.add(t.mul(re, s), t.mul(im, c))))
            else:
                terms.append((t.mul(v, c), t.mul(v, s)))
        out.append((_fold([r for r, _ in terms], t.add), _fold([i for _, i in terms], t.add)))
    return out


def _as_signal(samples: list[list[Scalar]]) -> list[Complex] | list[Scalar]:
    """Rows of [re] or [re, im] as real scalars or (re, im) pairs."""
    return [s[0] for s in samples] if len(samples[0]) == 1 else [(s[0], s[1]) for s in samples]


def _dft(step: _Step) -> list[np.ndarray]:
    x = step.require(0)
    onesided, inverse = bool(step.attr("onesided")), bool(step.attr("inverse"))
    if onesided and inverse:
        raise step.fail("onesided inverse DFT (IRFFT) has no cost rule")
    axis = int(step.required_param("axis").item()) % x.ndim
    length = step.param("dft_length")
    moved = np.moveaxis(x, axis, -2)
    size = int(length.item()) if length is not None else moved.shape[-2]
    moved = moved[..., :size, :]
    padding = [(0, 0)] * (moved.ndim - 2) + [(0, size - moved.shape[-2]), (0, 0)]
    moved = np.pad(moved, padding)
    bins = size // 2 + 1 if onesided else size
    twiddles = _twiddles(size, inverse)
    rows = moved.reshape(-1, size, moved.shape[-1]).tolist()
    out = [_dft_row(step.tally, _as_signal(row), bins, twiddles) for row in rows]
    if inverse:  # the spec's 1/N after the sum: 2 div per bin
        out = [[(step.tally.div(re, size), step.tally.div(im, size)) for re, im in row] for row in out]
    result = _pack([v for row in out for pair in row for v in pair], (*moved.shape[:-2], bins, 2), x.dtype)
    return [np.moveaxis(result, -2, axis)]


def _stft(step: _Step) -> list[np.ndarray]:
    """Per frame: frame_length window muls (per component for a complex signal) if a window is given, then the
    DFT of the frame."""
    signal, hop, window, length = step.require(0), int(step.require(1).item()), step.input(2), step.input(3)
    frame = int(length.item()) if length is not None else (len(window) if window is not None else signal.shape[1])
    bins = frame // 2 + 1 if step.attr("onesided") else frame
    frames = (signal.shape[1] - frame) // hop + 1
    taps = None if window is None else window.tolist()
    twiddles = _twiddles(frame, inverse=False)
    t = step.tally
    out = []
    for samples in signal.tolist():
        for f in range(frames):
            chunk = samples[f * hop : f * hop + frame]
            if taps is not None:
                chunk = [[t.mul(v, w) for v in s] for s, w in zip(chunk, taps, strict=True)]
            out += [v for pair in _dft_row(t, _as_signal(chunk), bins, twiddles) for v in pair]
    return [_pack(out, (signal.shape[0], frames, bins, 2), signal.dtype)]


# ---------------------------------------------------------------------------------------------------------------
# Data movement: no arithmetic, numpy does it all.


def _constant(step: _Step) -> list[np.ndarray]:
    given = step.attrs.given
    if "value" in given:
        return [numpy_helper.to_array(step.attr("value"))]
    converters = {
        "value_float": np.float32,
        "value_floats": np.float32,
        "value_int": np.int64,
        "value_ints": np.int64,
    }
    for name, dtype in converters.items():
        if name in given:
            return [np.array(step.attr(name), dtype=dtype)]
    raise step.fail(f"attribute {sorted(given)} is not supported")


def _constant_of_shape(step: _Step) -> list[np.ndarray]:
    tensor = step.attr("value")
    value = numpy_helper.to_array(tensor).reshape(-1) if tensor is not None else np.zeros(1, np.float32)
    return [np.full([int(d) for d in step.require(0)], value[0], dtype=value.dtype)]


def _reshape(step: _Step) -> list[np.ndarray]:
    x, shape = step.require(0), [int(d) for d in step.require(1)]
    keep_zero = bool(step.attr("allowzero"))
    return [x.reshape([x.shape[i] if d == 0 and not keep_zero else d for i, d in enumerate(shape)])]


def _flatten(step: _Step) -> list[np.ndarray]:
    x = step.require(0)
    axis = int(step.attr("axis"))
    axis += x.ndim if axis < 0 else 0
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


def _squeeze(step: _Step) -> list[np.ndarray]:
    axes = step.ints("axes")
    return [np.squeeze(step.require(0), axis=None if axes is None else tuple(axes))]


def _unsqueeze(step: _Step) -> list[np.ndarray]:
    return [np.expand_dims(step.require(0), tuple(step.required_ints("axes")))]


def _transpose(step: _Step) -> list[np.ndarray]:
    return [np.transpose(step.require(0), step.attr("perm"))]


def _concat(step: _Step) -> list[np.ndarray]:
    return [np.concatenate([x for x in step.inputs if x is not None], axis=int(step.attr("axis")))]


def _slice_indices(start: int, end: int, step_size: int, dim: int) -> np.ndarray:
    """Indices one Slice axis visits, with the spec's clamping (which differs from Python's for step < 0)."""
    start, end = (start + dim if start < 0 else start), (end + dim if end < 0 else end)
    if step_size > 0:
        return np.arange(min(max(start, 0), dim), min(max(end, 0), dim), step_size)
    return np.arange(min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step_size)


def _slice(step: _Step) -> list[np.ndarray]:
    x = step.require(0)
    starts, ends = step.required_ints("starts"), step.required_ints("ends")
    axes = step.ints("axes") or list(range(len(starts)))
    steps = step.ints("steps") or [1] * len(starts)
    for start, end, axis, size in zip(starts, ends, axes, steps, strict=True):
        x = np.take(x, _slice_indices(start, end, size, x.shape[axis % x.ndim]), axis=axis % x.ndim)
    return [x]


def _gather(step: _Step) -> list[np.ndarray]:
    x, indices = step.require(0), step.require(1)
    axis = int(step.attr("axis")) % x.ndim
    return [np.take(x, np.where(indices < 0, indices + x.shape[axis], indices), axis=axis)]


def _split(step: _Step) -> list[np.ndarray]:
    x = step.require(0)
    axis = int(step.attr("axis")) % x.ndim
    parts = len(step.node.output)
    sizes = step.ints("split")
    if sizes is None:
        chunk = -(-x.shape[axis] // int(step.attr("num_outputs") or parts))
        sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(parts)]
    return np.split(x, np.cumsum(sizes)[:-1].tolist(), axis=axis)


def _pad(step: _Step) -> list[np.ndarray]:
    """Negative pads crop first, then np.pad in the spec's mode; `wrap` and the `axes` input included."""
    x = step.require(0)
    pads = step.required_ints("pads")
    value = step.required_param("value").item()
    axes = [a % x.ndim for a in (step.ints("axes") or range(x.ndim))]
    widths = [(0, 0)] * x.ndim
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    x = x[tuple(slice(max(-b, 0), x.shape[d] - max(-e, 0)) for d, (b, e) in enumerate(widths))]
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    mode = step.attr("mode")
    if mode == "constant":
        return [np.pad(x, widths, constant_values=np.array(value).astype(x.dtype))]
    return [np.pad(x, widths, mode=mode)]


def _cast(step: _Step) -> list[np.ndarray]:
    return [step.require(0).astype(helper.tensor_dtype_to_np_dtype(step.attr("to")))]


def _shape(step: _Step) -> list[np.ndarray]:
    shape = step.require(0).shape
    return [np.array(shape[step.attr("start") : step.attr("end")], dtype=np.int64)]


def _expand(step: _Step) -> list[np.ndarray]:
    x, shape = step.require(0), step.require(1)
    return [np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))).copy()]


def _tile(step: _Step) -> list[np.ndarray]:
    return [np.tile(step.require(0), [int(r) for r in step.require(1)])]


def _size(step: _Step) -> list[np.ndarray]:
    return [np.array(step.require(0).size, dtype=np.int64)]


def _dropout(step: _Step) -> list[np.ndarray]:
    """Inference: the data unchanged and an all-true mask; training mode draws random numbers, not supported."""
    training = step.input(2)
    if training is not None and training.item():
        raise step.fail("training_mode=1 is not supported; export the model for inference")
    x = step.require(0)
    return [x, np.ones(x.shape, dtype=bool)]


def _range(step: _Step) -> list[np.ndarray]:
    """Each element after the first is the previous plus delta: n - 1 adds. The length n is shape logic."""
    start, limit, delta = (step.require(i).item() for i in range(3))
    n = max(math.ceil((limit - start) / delta), 0)
    values = [start][:n]
    while len(values) < n:
        values.append(step.tally.add(values[-1], delta))
    return [_pack(values, (n,), step.require(0).dtype)]


# ---------------------------------------------------------------------------------------------------------------
# Indexing: gathers only move data; a scatter with a reduction counts one operation per update element.


def _gather_elements(step: _Step) -> list[np.ndarray]:
    x, indices = step.require(0), step.require(1)
    axis = int(step.attr("axis")) % x.ndim
    return [np.take_along_axis(x, np.where(indices < 0, indices + x.shape[axis], indices), axis=axis)]


def _gather_nd(step: _Step) -> list[np.ndarray]:
    """Per batch (the first batch_dims dims of both), each index tuple of length k picks a slice of data."""
    x, indices = step.require(0), step.require(1)
    b, k = int(step.attr("batch_dims")), indices.shape[-1]
    dims = np.array(x.shape[b : b + k])
    tuples = np.where(indices < 0, indices + dims, indices).reshape(math.prod(indices.shape[:b]), -1, k)
    slices = x.reshape(len(tuples), *x.shape[b:])
    picked = [slices[n][tuple(row)] for n in range(len(tuples)) for row in tuples[n].tolist()]
    return [np.array(picked, dtype=x.dtype).reshape(*indices.shape[:-1], *x.shape[b + k :])]


_SCATTER_REDUCTIONS: dict[str, Callable[[_Tally, Scalar, Scalar], Scalar]] = {
    "none": lambda t, old, new: new,
    "add": lambda t, old, new: t.add(old, new),
    "mul": lambda t, old, new: t.mul(old, new),
    "max": lambda t, old, new: t.max(old, new),
    "min": lambda t, old, new: t.min(old, new),
}


def _scatter_elements_targets(step: _Step) -> Iterable[tuple[int, ...]]:
    """Each index element's own position, with its value in place of the coordinate along `axis`."""
    data, indices = step.require(0), step.require(1)
    axis = int(step.attr("axis")) % data.ndim
    dim = data.shape[axis]
    for position, i in zip(np.ndindex(indices.shape), indices.reshape(-1).tolist(), strict=True):
        yield (*position[:axis], i + dim if i < 0 else i, *position[axis + 1 :])


def _scatter_nd_targets(step: _Step) -> Iterable[tuple[int, ...]]:
    """Each index tuple of length k, then every position of the slice data.shape[k:] it addresses."""
    data, indices = step.require(0), step.require(1)
    k = indices.shape[-1]
    tail = list(np.ndindex(data.shape[k:]))
    for row in indices.reshape(-1, k).tolist():
        head = tuple(i + d if i < 0 else i for i, d in zip(row, data.shape, strict=False))
        yield from (head + rest for rest in tail)


def _scatter(targets: Callable[[_Step], Iterable[tuple[int, ...]]]) -> Callable[[_Step], list[np.ndarray]]:
    """A copy of data, then each update, in order, written into its target or combined with it by `reduction`."""

    def run(step: _Step) -> list[np.ndarray]:
        data, updates = step.require(0), step.require(2)
        combine = _SCATTER_REDUCTIONS[step.attr("reduction")]
        out = data.astype(object)
        for at, new in zip(targets(step), updates.reshape(-1).tolist(), strict=True):
            out[at] = combine(step.tally, out[at], new)
        return [out.astype(data.dtype)]

    return run


# ---------------------------------------------------------------------------------------------------------------
# Quantization: onnxruntime.quantization's ops, by their ONNX definitions (round half to even, saturate).


def _round(v: Scalar) -> float:
    return float(np.round(np.float64(v)))


def _per_axis(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A per-axis scale or zero point shaped to broadcast against its tensor."""
    if param.size == 1:
        return param.reshape(())
    return param.reshape([1] * (axis % rank) + [param.size] + [1] * (rank - axis % rank - 1))


def _saturate(t: _Tally, v: Scalar, dtype: np.dtype) -> Scalar:
    info = np.iinfo(dtype)
    return t.min(t.max(v, info.min), info.max)


def _quantize(t: _Tally, v: Scalar, scale: Scalar, zp: Scalar | None, scale_const: bool, zp_const: bool,
              dtype: np.dtype) -> Scalar:
    q = t.special("round", _round, t.div(v, scale, skip=scale_const and scale == 1))
    if zp is not None:
        q = t.add(q, zp, skip=zp_const and zp == 0)
    return _saturate(t, q, dtype)


def _quantize_linear(step: _Step) -> list[np.ndarray]:
    x, scale, zp = step.require(0), step.require(1), step.input(2)
    axis = int(step.attr("axis"))
    dtype = zp.dtype if zp is not None else np.dtype(np.uint8)
    scales = _flat(_per_axis(scale, x.ndim, axis), x.shape)
    zps = _flat(_per_axis(zp, x.ndim, axis), x.shape) if zp is not None else [None] * x.size
    out = [_quantize(step.tally, v, s, z, step.is_const(1), step.is_const(2), dtype)
           for v, s, z in zip(_flat(x, x.shape), scales, zps, strict=True)]
    return [_pack(out, x.shape, dtype)]


def _dequantize_linear(step: _Step) -> list[np.ndarray]:
    x, scale, zp = step.require(0), step.require(1), step.input(2)
    axis = int(step.attr("axis"))
    t = step.tally
    scales = _flat(_per_axis(scale, x.ndim, axis), x.shape)
    zps = _flat(_per_axis(zp, x.ndim, axis), x.shape) if zp is not None else [None] * x.size
    out = []
    for v, s, z in zip(_flat(x, x.shape), scales, zps, strict=True):
        shifted = v if z is None else t.sub(v, z, skip=step.is_const(2) and z == 0)
        out.append(_mul(t, shifted, s, False, step.is_const(1)))
    return [_pack(out, x.shape, scale.dtype)]


def _dynamic_quantize_linear(step: _Step) -> list[np.ndarray]:
    """uint8: the range always holds 0; scale = range / 255; zero point = saturate(round(-min / scale))."""
    x = step.require(0)
    t = step.tally
    values = _flat(x, x.shape)
    low = t.min(_fold(values, t.min), 0.0)
    high = t.max(_fold(values, t.max), 0.0)
    scale = float(np.float32(t.div(t.sub(high, low), 255.0)))
    zp = _saturate(t, t.special("round", _round, t.sub(0.0, t.div(low, scale))), np.dtype(np.uint8))
    out = [_quantize(t, v, scale, zp, False, False, np.dtype(np.uint8)) for v in values]
    return [_pack(out, x.shape, np.dtype(np.uint8)), np.array(scale, dtype=np.float32),
            np.array(zp, dtype=np.uint8)]


def _shifted(step: _Step, operand: int, zero_point: int, axis: int) -> tuple[np.ndarray, bool]:
    """operand - zero_point element by element (counted), as int32; constant when both are."""
    x, zp = step.require(operand), step.input(zero_point)
    if zp is None:
        return x.astype(np.int32), step.is_const(operand)
    zps = _flat(_per_axis(zp, x.ndim, axis), x.shape)
    zp_const = step.is_const(zero_point)
    out = [step.tally.sub(v, z, skip=zp_const and z == 0) for v, z in zip(_flat(x, x.shape), zps, strict=True)]
    return np.array(out, dtype=np.int32).reshape(x.shape), step.is_const(operand) and zp_const


def _integer(inner: Callable[[_Step], list[np.ndarray]], axes: tuple[int, int]) -> Callable[[_Step], list[np.ndarray]]:
    """ConvInteger / MatMulInteger: subtract the zero points, then the float op's counted loops in int32."""

    def run(step: _Step) -> list[np.ndarray]:
        a, a_const = _shifted(step, 0, 2, axes[0])
        b, b_const = _shifted(step, 1, 3, axes[1])
        return inner(_Step(step.node, [a, b], [a_const, b_const], step.opset, step.tally))

    return run


# ---------------------------------------------------------------------------------------------------------------
# Control flow: the bodies run node by node through the same handlers, their counts added to the node's.


def _if(step: _Step) -> list[np.ndarray]:
    branch = "then_branch" if bool(step.require(0).item()) else "else_branch"
    return step.run_body(step.attr(branch), {})


def _stack(per_iteration: list[list[np.ndarray]], axes: Sequence[int], reverse: Sequence[int]) -> list[np.ndarray]:
    """Each scan output's per-iteration tensors stacked along its axis (in reverse order where asked)."""
    count = len(per_iteration[0]) if per_iteration else 0
    out = []
    for k in range(count):
        parts = [it[k] for it in per_iteration]
        axis = axes[k] if k < len(axes) else 0
        out.append(np.stack(parts[::-1] if k < len(reverse) and reverse[k] else parts, axis=axis % (parts[0].ndim + 1)))
    return out


def _scan(step: _Step) -> list[np.ndarray]:
    """Opset 9+: per iteration t, the states and slice t of each scanned input (from the end if reversed)."""
    body, scanned = step.attr("body"), int(step.attr("num_scan_inputs"))
    inputs = [step.require(i) for i in range(len(step.inputs))]
    states, sequences = inputs[: len(inputs) - scanned], inputs[len(inputs) - scanned :]
    axes = [a % s.ndim for a, s in zip(step.attr("scan_input_axes") or [0] * scanned, sequences, strict=True)]
    backwards = step.attr("scan_input_directions") or [0] * scanned
    count = sequences[0].shape[axes[0]]
    if count == 0:
        raise step.fail("a scan of 0 iterations is not supported")
    names = [i.name for i in body.input]
    per_iteration = []
    for t in range(count):
        slices = [np.take(s, count - 1 - t if b else t, axis=a) for s, a, b in zip(sequences, axes, backwards,
                                                                                      strict=True)]
        outs = step.run_body(body, dict(zip(names, [*states, *slices], strict=True)))
        states, scans = outs[: len(states)], outs[len(states) :]
        per_iteration.append(scans)
    return [*states, *_stack(per_iteration, step.attr("scan_output_axes") or [], step.attr("scan_output_directions")
                             or [])]


def _loop(step: _Step) -> list[np.ndarray]:
    """Up to M iterations while the condition holds; the body gets the iteration number, the condition, the
    carried values, and returns the next condition, the carried values and its scan outputs."""
    body, trips, start = step.attr("body"), step.input(0), step.input(1)
    carried = [step.require(i) for i in range(2, len(step.inputs))]
    keep = True if start is None else bool(start.item())
    names = [i.name for i in body.input]
    per_iteration = []
    iteration = 0
    while keep and (trips is None or iteration < int(trips.item())):
        feeds = [np.array(iteration, np.int64), np.array(keep), *carried]
        outs = step.run_body(body, dict(zip(names, feeds, strict=True)))
        keep, carried = bool(outs[0].item()), outs[1 : 1 + len(carried)]
        per_iteration.append(outs[1 + len(carried) :])
        iteration += 1
    if not per_iteration and len(body.output) > 1 + len(carried):
        raise step.fail("a loop of 0 iterations with scan outputs is not supported")
    return [*carried, *_stack(per_iteration, [], [])]


# ---------------------------------------------------------------------------------------------------------------
# LSTM and GRU: the ONNX spec's equations unit by unit, each gate pre-activation one counted sum of terms.

_RNN_ACTIVATIONS: dict[str, _UnaryFn] = {
    "Sigmoid": _sigmoid,
    "Tanh": lambda t, v: t.special("tanh", math.tanh, v),
    "Relu": _relu,
}


@dataclass
class _Recurrence:
    """One direction's weights as lists, and how to form a gate unit's pre-activation."""

    step: _Step
    direction: int

    def __post_init__(self) -> None:
        x, w, r, b = self.step.require(0), self.step.require(1), self.step.require(2), self.step.input(3)
        self.w, self.r = w[self.direction].tolist(), r[self.direction].tolist()
        self.units = len(self.w)
        self.b = None if b is None else b[self.direction].tolist()
        self.consts = (self.step.is_const(1), self.step.is_const(2), self.step.is_const(3))
        clip = self.step.attr("clip")
        self.clip = None if clip is None else float(clip)
        self.dtype = x.dtype

    def dot(self, row: int, xs: list[Scalar] | None, hs: list[Scalar] | None, biases: tuple[bool, bool]) -> _Dot:
        """sum_k x_k W[row, k] + sum_k h_k R[row, k] + Wb[row] + Rb[row], the parts asked for."""
        dot = _Dot(self.step.tally)
        for values, weights, const in ((xs, self.w, self.consts[0]), (hs, self.r, self.consts[1])):
            for v, wv in zip(values or [], weights[row] if values is not None else [], strict=True):
                dot.product(v, wv, False, const)
        for offset, wanted in zip((0, self.units), biases, strict=True):
            if wanted and self.b is not None:
                bias = self.b[offset + row]
                dot.term(bias, dropped=self.consts[2] and bias == 0)
        return dot

    def clipped(self, v: Scalar) -> Scalar:
        t = self.step.tally
        return v if self.clip is None else t.min(t.max(v, -self.clip), self.clip)


def _rnn_activations(step: _Step, defaults: tuple[str, ...], direction: int) -> list[_UnaryFn]:
    per = len(defaults)
    names = step.attr("activations") or list(defaults) * step.require(1).shape[0]
    chosen = names[direction * per : (direction + 1) * per]
    unknown = [n for n in chosen if n not in _RNN_ACTIVATIONS]
    if unknown:
        raise step.fail(f"activation {unknown[0]} is not supported")
    return [_RNN_ACTIVATIONS[n] for n in chosen]


def _lstm_step(rec: _Recurrence, acts: list[_UnaryFn], xt: list[Scalar], h: list[Scalar], c: list[Scalar],
               peep: list[Scalar] | None) -> tuple[list[Scalar], list[Scalar]]:
    """Gates i, o, f, c (the spec's order in W); peepholes i, o, f; o sees the new cell state."""
    t, (f_act, g_act, h_act) = rec.step.tally, acts
    hidden = len(h)
    p_const = rec.step.is_const(7)

    def gate(row: int, cell: Scalar | None, peep_row: int | None, act: _UnaryFn) -> Scalar:
        dot = rec.dot(row, xt, h, (True, True))
        if peep is not None and peep_row is not None and cell is not None:  # set together
            dot.product(cell, peep[peep_row], False, p_const)
        return act(t, rec.clipped(dot.value))

    new_c, new_h = [], []
    for j in range(hidden):
        i_gate = gate(j, c[j], j, f_act)
        f_gate = gate(2 * hidden + j, c[j], 2 * hidden + j, f_act)
        candidate = gate(3 * hidden + j, None, None, g_act)
        new_c.append(t.add(t.mul(f_gate, c[j]), t.mul(i_gate, candidate)))
    for j in range(hidden):
        o_gate = gate(hidden + j, new_c[j], hidden + j, f_act)
        new_h.append(t.mul(o_gate, h_act(t, new_c[j])))
    return new_h, new_c


def _gru_step(rec: _Recurrence, acts: list[_UnaryFn], xt: list[Scalar], h: list[Scalar]) -> list[Scalar]:
    """Gates z, r, h; r applied to H_t-1 before R_h, or (linear_before_reset) to H_t-1 R_h + Rb_h after it."""
    t, (f_act, g_act) = rec.step.tally, acts
    hidden = len(h)
    z = [f_act(t, rec.clipped(rec.dot(j, xt, h, (True, True)).value)) for j in range(hidden)]
    r = [f_act(t, rec.clipped(rec.dot(hidden + j, xt, h, (True, True)).value)) for j in range(hidden)]
    candidate = []
    if rec.step.attr("linear_before_reset"):
        for j in range(hidden):
            reset = t.mul(r[j], rec.dot(2 * hidden + j, None, h, (False, True)).value)
            outer = rec.dot(2 * hidden + j, xt, None, (True, False))
            outer.term(reset)
            candidate.append(g_act(t, rec.clipped(outer.value)))
    else:
        resets = [t.mul(rj, hj) for rj, hj in zip(r, h, strict=True)]
        candidate = [g_act(t, rec.clipped(rec.dot(2 * hidden + j, xt, resets, (True, True)).value))
                     for j in range(hidden)]
    return [t.add(t.mul(t.sub(1.0, zj), cj), t.mul(zj, hj)) for zj, cj, hj in zip(z, candidate, h, strict=True)]


def _recurrent(step: _Step) -> list[np.ndarray]:
    """Per direction (reverse walks the sequence backwards), per batch element, per step."""
    lstm = step.node.op_type == "LSTM"
    if step.input(4) is not None or (lstm and step.attr("input_forget")) or step.attr("layout"):
        raise step.fail("sequence_lens, input_forget and layout 1 are not supported (onnxruntime lacks layout 1)")
    x, h0 = step.require(0), step.input(5)
    c0, peep = (step.input(6), step.input(7)) if lstm else (None, None)
    seq, batch = x.shape[:2]
    directions, hidden = step.require(1).shape[0], step.require(2).shape[-1]
    y = np.zeros((seq, directions, batch, hidden))
    y_h, y_c = np.zeros((directions, batch, hidden)), np.zeros((directions, batch, hidden))
    for d in range(directions):
        rec = _Recurrence(step, d)
        acts = _rnn_activations(step, ("Sigmoid", "Tanh", "Tanh") if lstm else ("Sigmoid", "Tanh"), d)
        backwards = step.attr("direction") == "reverse" or d == 1
        for n in range(batch):
            h = [0.0] * hidden if h0 is None else h0[d, n].tolist()
            c = [0.0] * hidden if c0 is None else c0[d, n].tolist()
            for t in reversed(range(seq)) if backwards else range(seq):
                xt = x[t, n].tolist()
                if lstm:
                    h, c = _lstm_step(rec, acts, xt, h, c, None if peep is None else peep[d].tolist())
                else:
                    h = _gru_step(rec, acts, xt, h)
                y[t, d, n] = h
            y_h[d, n], y_c[d, n] = h, c
    return [v.astype(rec.dtype) for v in (y, y_h, y_c)]


# ---------------------------------------------------------------------------------------------------------------
# The op table and the graph walk.

_Handler = Callable[[_Step], list[np.ndarray]]

_HANDLERS: dict[str, _Handler] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Add": _variadic(_add),
    "Sub": _variadic(_sub),
    "Mul": _variadic(_mul),
    "Div": _variadic(_div),
    "Pow": _variadic(_power),
    "Sum": _variadic(_add),
    "Mean": _variadic(_add, mean=True),
    "Max": _variadic(_max),
    "Min": _variadic(_min),
    "Mod": _mod,
    "Equal": _compare(operator.eq),
    "Less": _compare(operator.lt),
    "LessOrEqual": _compare(operator.le),
    "Greater": _compare(operator.gt),
    "GreaterOrEqual": _compare(operator.ge),
    "Where": lambda step: [np.where(step.require(0), step.require(1), step.require(2))],
    "Relu": _unary(_relu),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _unary(_sigmoid),
    "Tanh": _special("tanh", math.tanh),
    "Log": _special("log", _log),
    "Exp": _special("exp", _exp),
    "Sqrt": _special("sqrt", _sqrt),
    "Erf": _special("erf", math.erf),
    "Sin": _special("sin", math.sin),
    "Cos": _special("cos", math.cos),
    "Floor": _special("floor", np.floor),
    "Ceil": _special("ceil", np.ceil),
    "Round": _special("round", _round),
    "Softplus": _unary(_softplus),
    "Abs": _unary(lambda t, v: abs(v)),
    "Neg": _unary(lambda t, v: -v),
    "Not": _unary(lambda t, v: not v),
    "Reciprocal": _unary(lambda t, v: t.div(1.0, v)),
    "Clip": _clip,
    "Softmax": _softmax(_softmax_row),
    "LogSoftmax": _softmax(_log_softmax_row),
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _global_pool(_REDUCERS["ReduceMean"]),
    "GlobalMaxPool": _global_pool(_REDUCERS["ReduceMax"]),
    "DFT": _dft,
    "STFT": _stft,
    **dict.fromkeys(_REDUCERS, _reduce),
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Slice": _slice,
    "Gather": _gather,
    "Split": _split,
    "Pad": _pad,
    "Cast": _cast,
    "Identity": lambda step: [step.require(0)],
    "Shape": _shape,
    "Expand": _expand,
    "Tile": _tile,
    "Size": _size,
    "Dropout": _dropout,
    "Range": _range,
    "GatherElements": _gather_elements,
    "GatherND": _gather_nd,
    "ScatterElements": _scatter(_scatter_elements_targets),
    "ScatterND": _scatter(_scatter_nd_targets),
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "DynamicQuantizeLinear": _dynamic_quantize_linear,
    "ConvInteger": _integer(_conv, (1, 0)),
    "MatMulInteger": _integer(_matmul, (-2, -1)),
    "If": _if,
    "Scan": _scan,
    "Loop": _loop,
    "LSTM": _recurrent,
    "GRU": _recurrent,
}

SUPPORTED_OPS = frozenset(_HANDLERS)


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ToolkitError("model imports no default-domain opset; it is not an ONNX operator graph")


def _initial_values(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], set[str]]:
    """Initializers and given inputs by name, and the names that are constant (initializers not graph inputs)."""
    graph = model.graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    input_names = {i.name for i in graph.input}
    unknown = sorted(set(inputs) - input_names)
    if unknown:
        raise ToolkitError(f"inputs {unknown} are not graph inputs; the graph takes {sorted(input_names)}")
    missing = sorted(input_names - set(inputs) - set(initializers))
    if missing:
        raise ToolkitError(f"graph inputs {missing} were not given; pass an array for each")
    values = {**initializers, **{name: np.asarray(v) for name, v in inputs.items()}}
    return values, set(initializers) - input_names


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def _run_graph(graph: onnx.GraphProto, feeds: dict[str, np.ndarray], values: dict[str, np.ndarray],
               constants: set[str], opset: int, tally: _Tally) -> list[np.ndarray]:
    """A body sees the enclosing scope, its own initializers (constant) and its fed inputs (never constant)."""
    local = {**values, **{t.name: numpy_helper.to_array(t) for t in graph.initializer}, **feeds}
    local_constants = (constants | {t.name for t in graph.initializer}) - set(feeds)
    for index, node in enumerate(graph.node):
        tally.absorb(_run_node(index, node, local, local_constants, opset))
    return [local[o.name] for o in graph.output]


def _run_node(
    index: int, node: onnx.NodeProto, values: dict[str, np.ndarray], constants: set[str], opset: int
) -> NodeTally:
    """Execute one node, store its outputs (and their constness), and return its counts."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in _HANDLERS:
        domain = f" in domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
        raise ToolkitError(
            f"node '{node.name}': op {node.op_type}{domain} is not supported by the counting interpreter"
        )
    tally = _Tally()
    step = _Step(
        node,
        [values[name] if name else None for name in node.input],
        [bool(name) and name in constants for name in node.input],
        opset,
        tally,
        partial(_run_graph, values=values, constants=constants, opset=opset, tally=tally),
    )
    results = _HANDLERS[node.op_type](step)
    # a control-flow node reads its scope too: its outputs are never taken as constant
    is_const = all(name in constants for name in node.input if name) and not _has_subgraph(node)
    for name, value in zip(node.output, results, strict=False):
        if name:
            values[name] = value
            if is_const:
                constants.add(name)
    dense, effective = tally.counts()
    return NodeTally(index, node.name, node.op_type, dense, effective, True)


def interpret(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> Interpretation:
    """Run `model` on `inputs` with counted per-element loops; graph outputs and per-node counts, graph order."""
    opset = _opset(model)
    values, constants = _initial_values(model, inputs)
    with np.errstate(all="ignore"):
        tallies = [_run_node(i, node, values, constants, opset) for i, node in enumerate(model.graph.node)]
    return Interpretation({o.name: values[o.name] for o in model.graph.output}, tallies)


def total_counts(tallies: Iterable[NodeTally]) -> tuple[Counts, Counts]:
    """Dense and effective totals over nodes."""
    dense, effective = Counts(), Counts()
    for tally in tallies:
        dense, effective = dense + tally.dense, effective + tally.effective
    return dense, effective
