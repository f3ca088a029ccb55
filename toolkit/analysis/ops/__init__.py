"""Operator rules, one module per family; importing this package registers them all in RULES."""

from toolkit.analysis.ops import (
    control,
    elementwise,
    indexing,
    linear,
    movement,
    pool,
    quant,
    recurrent,
    reduce,
    spectral,
)
from toolkit.analysis.ops.base import RULES

__all__ = ["RULES", "control", "elementwise", "indexing", "linear", "movement", "pool", "quant", "recurrent",
           "reduce", "spectral"]
