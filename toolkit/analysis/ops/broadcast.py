"""Numpy-style broadcasting over symbolic dims, and counting the output positions a constant makes free."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

from toolkit.analysis.dims import Shape, numel
from toolkit.errors import ToolkitError


def broadcast_shapes(shapes: Sequence[Shape], where: str) -> Shape:
    """The broadcast of several shapes; symbolic dims that differ are taken as equal (a constraint)."""
    rank = max(len(s) for s in shapes)
    padded = [(sp.Integer(1),) * (rank - len(s)) + tuple(s) for s in shapes]
    result = []
    for dims in zip(*padded, strict=True):
        non_one = [d for d in dims if d != 1]
        if not non_one:
            result.append(sp.Integer(1))
            continue
        concrete = {int(d) for d in non_one if d.is_Integer}
        if len(concrete) > 1:
            raise ToolkitError(f"{where}: shapes {[list(map(str, s)) for s in shapes]} do not broadcast")
        result.append(sp.Integer(concrete.pop()) if concrete else non_one[0])
    return tuple(result)


def nary_effective_ops(out_shape: Shape, skip_masks: Sequence[np.ndarray | None]) -> sp.Expr:
    """Operations of an n-ary elementwise op when operands flagged in their mask cost nothing.

    Each position costs max(operands not skipped - 1, 0): x + 0 costs 0, x * 1 costs 0, a + b costs 1.
    A mask is None for an operand that is never skipped (not constant). Masks broadcast to a small joint
    shape whose dims are each 1 or the output's, so the count scales by numel(out) / numel(joint).
    """
    rank = len(out_shape)
    present = [np.asarray(m, dtype=bool).reshape((1,) * (rank - np.ndim(m)) + np.shape(m))
               for m in skip_masks if m is not None]
    never_skipped = sum(1 for m in skip_masks if m is None)
    if not present:
        return max(never_skipped - 1, 0) * numel(out_shape)
    joint = np.broadcast_shapes(*(m.shape for m in present))
    alive = never_skipped + sum((~np.broadcast_to(m, joint)).astype(np.int64) for m in present)
    per_joint = int(np.maximum(alive - 1, 0).sum())
    replication = numel(out_shape) / numel([sp.Integer(d) for d in joint])
    return sp.Integer(per_joint) * replication
