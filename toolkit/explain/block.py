"""The records recognizers return: a Block per recognized stage and the Signal flowing between stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import onnx

from toolkit.explain.graph import GraphView


@dataclass(frozen=True)
class Param:
    """One recovered parameter with its unit and, when useful, how it was obtained."""

    name: str
    value: Any
    unit: str = ""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "note": self.note}


@dataclass(frozen=True)
class Formula:
    """How a block maps its input to its output, as templates: `{x}` is the input's value at the current index,
    `{s}` the input as a bare symbol that the template indexes itself (e.g. `{s}[b, 160t + j]`).

    `name` gives the output a symbol later blocks refer to; `index` is the output's index when it changes
    (e.g. "b,t,k" after the transform); `reuses` says the template reads its input twice (name it first).
    """

    text: str
    latex: str
    name: str | None = None
    index: str | None = None
    reuses: bool = False
    where: tuple[str, ...] = ()
    where_latex: tuple[str, ...] = ()


@dataclass
class Block:
    """One recognized stage: what it is, which nodes make it, its parameters, and its formula; `data` holds
    what later stages read without re-deriving it (a transform's n_fft, bins and window taps as a float array)."""

    kind: str
    nodes: list[str]
    summary: str
    params: list[Param] = field(default_factory=list)
    formula: Formula | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        """A parameter's value by name (KeyError if the block has none of that name)."""
        return next(p.value for p in self.params if p.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "nodes": self.nodes,
            "summary": self.summary,
            "params": [p.to_json() for p in self.params],
            "equation": None if self.formula is None else {
                "text": self.formula.text.replace("{s}", "x").replace("{x}", "x"),
                "latex": self.formula.latex.replace("{s}", "x").replace("{x}", "x"),
            },
        }


@dataclass(frozen=True)
class Signal:
    """The value flowing between blocks: one real tensor, or a complex value as a (re, im) pair or stacked.

    `domain` is "time" on the samples before the transform, "spectral" after it, and "unknown" past nodes no
    recognizer explains that compute new values (a Gemm, a Relu); `context` carries facts later blocks need
    (n_fft, bins, the dB multiplier) without them re-deriving anything.
    """

    tensors: tuple[str, ...]
    form: str = "real"
    domain: str = "time"
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def on_samples(self) -> bool:
        """True while the value is the audio's samples (or frames of them) before the transform, reached only
        through data movement and earlier time-domain blocks: the one place time-domain blocks (DC removal,
        pre-emphasis, padding) may be named, so a layer norm deep in a classifier is not called DC removal."""
        return self.form == "real" and self.domain == "time"

    def then(self, tensors: tuple[str, ...], form: str = "real", **context: Any) -> Signal:
        """The next signal, keeping the domain unless context says otherwise."""
        domain = context.pop("domain", self.domain)
        return Signal(tensors, form, domain, {**self.context, **context})


@dataclass
class Match:
    """A recognizer's answer: the block and the signal after it."""

    block: Block
    signal: Signal


Recognizer = Callable[[GraphView, Signal], Match | None]


def node_names(view: GraphView, nodes: list[onnx.NodeProto]) -> list[str]:
    """Report names for nodes, in the order given."""
    return [view.name(node) for node in nodes]


def fmt(value: float, digits: int = 6) -> str:
    """A number as a short string: integers without a decimal point, others with `digits` significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"
