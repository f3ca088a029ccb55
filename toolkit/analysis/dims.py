"""Symbolic dims: sympy expressions over the input dims, printed the way people write them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeAlias, cast

import sympy as sp
from sympy.printing.str import StrPrinter

# sympy ships no types, so to mypy these are Any: the names say what a value is, the checker cannot
Dim: TypeAlias = sp.Expr
Shape: TypeAlias = tuple[Dim, ...]


def dim_symbol(name: str) -> sp.Symbol:
    """An input dim: a positive integer unknown until the user binds it."""
    return sp.Symbol(name, integer=True, positive=True)


def floor_div(numerator: Dim, denominator: int) -> Dim:
    return sp.floor(sp.sympify(numerator) / sp.Integer(denominator))


def ceil_div(numerator: Dim, denominator: int) -> Dim:
    return sp.ceiling(sp.sympify(numerator) / sp.Integer(denominator))


def assume_nonnegative(expr: Dim, why: str, constraints: list[tuple[Dim, str]]) -> bool:
    """True when expr >= 0: proven by sympy, or assumed and recorded as a constraint (expr >= 0, why) so that dims
    outside it are refused; False when sympy proves it negative."""
    expr = sp.sympify(expr)
    if expr.is_nonnegative:
        return True
    if expr.is_negative:
        return False
    constraints.append((expr, why))
    return True


def numel(shape: Sequence[Dim]) -> Dim:
    return sp.Mul(*shape) if shape else sp.Integer(1)


class _FormulaPrinter(StrPrinter):
    """Prints floor((samples - 512)/160) rather than sympy's floor(samples/160 - 16/5)."""

    def _quotient(self, argument: sp.Expr) -> str:
        numerator, denominator = sp.fraction(sp.together(sp.expand(argument)))
        if denominator == 1:
            return cast(str, self._print(numerator))
        top = self._print(numerator)
        return f"({top})/{self._print(denominator)}" if numerator.is_Add else f"{top}/{self._print(denominator)}"

    def _print_floor(self, expr: sp.Expr) -> str:
        return f"floor({self._quotient(expr.args[0])})"

    def _print_ceiling(self, expr: sp.Expr) -> str:
        return f"ceil({self._quotient(expr.args[0])})"


_PRINTER = _FormulaPrinter()


def pretty(expr: object) -> str:
    """A formula as text, factored so that per-frame structure stays visible."""
    formula = sp.sympify(expr)
    if formula.is_Integer:
        return str(int(formula))
    return cast(str, _PRINTER.doprint(sp.factor_terms(formula)))


def render_dim(dim: Dim) -> int | str:
    """A dim for JSON: an int when known, else its formula."""
    return int(dim) if dim.is_Integer else pretty(dim)


def render_shape(shape: Iterable[Dim] | None) -> list[int | str] | None:
    return None if shape is None else [render_dim(d) for d in shape]


def is_known(dim: Dim) -> bool:
    return cast(bool, sp.sympify(dim).is_Integer)
