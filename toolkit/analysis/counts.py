"""Operation counts by kind, exact: sympy integers or formulas in the input dims, never floats."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

BASIC_KINDS = ("mul", "add", "div", "cmp")


class Counts:
    """Scalar operations by kind: mul, add (subtraction too), div, cmp, and special functions by name.

    Values are sympy expressions so that one object serves as formula and, after `evaluate`, as exact integers.
    """

    __slots__ = ("_ops",)

    def __init__(self, ops: Mapping[str, object] | None = None, **kinds: object) -> None:
        merged: dict[str, sp.Expr] = {}
        for source in (ops or {}, kinds):
            for kind, value in source.items():
                expr = sp.sympify(value)
                if expr != 0:
                    merged[kind] = merged.get(kind, sp.Integer(0)) + expr
        self._ops = merged

    def __getitem__(self, kind: str) -> sp.Expr:
        return self._ops.get(kind, sp.Integer(0))

    def kinds(self) -> list[str]:
        """Kinds with a nonzero count: the four basic kinds first, then special functions by name."""
        specials = sorted(k for k in self._ops if k not in BASIC_KINDS)
        return [k for k in BASIC_KINDS if k in self._ops] + specials

    def __add__(self, other: Counts) -> Counts:
        return Counts({k: self[k] + other[k] for k in set(self._ops) | set(other._ops)})

    def __mul__(self, factor: object) -> Counts:
        return Counts({k: v * factor for k, v in self._ops.items()})

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Counts):
            return NotImplemented
        return all(sp.simplify(self[k] - other[k]) == 0 for k in set(self._ops) | set(other._ops))

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, str(v)) for k, v in self._ops.items())))

    def __repr__(self) -> str:
        return f"Counts({', '.join(f'{k}={v}' for k, v in self.items())})"

    def items(self) -> list[tuple[str, sp.Expr]]:
        return [(k, self._ops[k]) for k in self.kinds()]

    def subs(self, values: Mapping[sp.Symbol, int]) -> Counts:
        return Counts({k: sp.expand(v.subs(values)) for k, v in self._ops.items()})

    def as_ints(self) -> dict[str, int]:
        """Every kind as a Python int; fails loudly if a dim was left unbound."""
        out = {}
        for kind, value in self.items():
            if not value.is_Integer:
                raise ValueError(f"count of {kind} is not a number yet: {value}")
            out[kind] = int(value)
        return out

    def to_json(self) -> dict[str, object]:
        """The JSON contract: {mul, add, div, cmp, special: {name: n}} with ints (or formula strings)."""
        def render(v: sp.Expr) -> object:
            return int(v) if v.is_Integer else str(v)

        out: dict[str, object] = {k: render(self[k]) for k in BASIC_KINDS}
        out["special"] = {k: render(v) for k, v in self.items() if k not in BASIC_KINDS}
        return out


def per_kind(pick: type[sp.Max] | type[sp.Min], a: Counts, b: Counts) -> Counts:
    """Each kind's larger (sp.Max) or smaller (sp.Min) count of two: a bound on either, kind by kind."""
    return Counts({k: pick(a[k], b[k]) for k in set(a.kinds()) | set(b.kinds())})


def total(counts: Iterable[Counts]) -> Counts:
    """Sum of many counts."""
    result = Counts()
    for c in counts:
        result = result + c
    return result
