"""Compose the blocks' formulas into one equation for the whole model, in plain text and LaTeX.

Blocks are substituted into each other from the input outwards. A block that names its output (the transform's
X) or reads its input twice (the clamp) gets a symbol and a `where` definition instead, so the equation stays
readable: y = <outer blocks>, where X = <transform of x>, and the constants (window, filters) are described.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.explain.block import Block, Formula

# Symbol for a compound value that must be named before a block reuses it, by the kind of block that made it.
_NAMES = {"log": "D", "mel filterbank": "M", "power spectrum": "P", "magnitude spectrum": "A", "affine": "u"}


@dataclass
class _State:
    """The expression for the current value, and the symbol it is (None when it is a compound expression)."""

    value: tuple[str, str]
    symbol: tuple[str, str] | None
    index: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    where: list[tuple[str, str]] = field(default_factory=list)


def _indexed(symbol: tuple[str, str], index: str) -> tuple[str, str]:
    return f"{symbol[0]}[{index}]", f"{symbol[1]}_{{{index}}}"


def _fresh(state: _State, name: str) -> str:
    """`name`, or `name2`, `name3`, ... when an earlier line already defines it."""
    taken = {line[0].split("[")[0] for line in state.lines}
    return name if name not in taken else next(f"{name}{i}" for i in range(2, 99) if f"{name}{i}" not in taken)


def _name_current(state: _State, name: str) -> None:
    """Bind the current compound value to a fresh symbol and refer to it from now on."""
    symbol = _fresh(state, name)
    lhs = _indexed((symbol, symbol), state.index)
    state.lines.append((f"{lhs[0]} = {state.value[0]}", f"{lhs[1]} = {state.value[1]}"))
    state.symbol, state.value = (symbol, symbol), lhs


def _apply(state: _State, formula: Formula, input_kind: str) -> None:
    """Substitute the current value into `formula`; `input_kind` names the block that made that value."""
    if ("{s}" in formula.text or formula.reuses) and state.symbol is None:
        _name_current(state, _NAMES.get(input_kind, "v"))
    symbol = state.symbol or state.value
    text = formula.text.replace("{x}", state.value[0]).replace("{s}", symbol[0])
    latex = formula.latex.replace("{x}", state.value[1]).replace("{s}", symbol[1])
    state.index = formula.index or state.index
    state.where += list(zip(formula.where, formula.where_latex or formula.where, strict=False))
    if formula.name:
        fresh = _fresh(state, formula.name)
        lhs = _indexed((fresh, fresh), state.index)
        state.lines.append((f"{lhs[0]} = {text}", f"{lhs[1]} = {latex}"))
        state.symbol, state.value = (fresh, fresh), lhs
    else:
        state.symbol, state.value = None, (text, latex)


def _named(kind: str) -> Formula:
    """A block without a formula of its own appears by its kind: kind(x)."""
    return Formula(text=f"{kind}({{x}})", latex=rf"\mathrm{{{kind}}}\left({{x}}\right)")


def compose(blocks: list[Block], input_name: str = "x") -> dict[str, object]:
    """{"text", "latex"}: y = ... on the first line, then the definitions it uses, outermost first."""
    state = _State(value=_indexed((input_name, input_name), "b,n"), symbol=(input_name, input_name), index="b,n")
    previous = "input"
    for block in blocks:
        _apply(state, block.formula or _named(block.kind), previous)
        previous = block.kind
    output = _indexed(("y", "y"), state.index)
    lines = [(f"{output[0]} = {state.value[0]}", f"{output[1]} = {state.value[1]}"), *reversed(state.lines)]
    lines += state.where
    return {
        "text": "\n".join(text for text, _ in lines[:1]) + "".join(f"\n  where {t}" for t, _ in lines[1:]),
        "latex": r" \\ ".join(latex for _, latex in lines),
    }
