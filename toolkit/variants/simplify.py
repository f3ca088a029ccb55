"""The reference variants: the input model as given, and onnxsim's simplification of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx
from onnxsim import simplify

from toolkit.engines import Feed
from toolkit.errors import ToolkitError
from toolkit.melgraph import save_model


def build_original(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """The input model unchanged: every other variant is measured against it."""
    del calibration  # nothing to compute
    save_model(model, path)


def build_simplified(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """onnxsim.simplify (constant folding, dead-node removal), kept only when its own check passes."""
    del calibration  # onnxsim checks itself on random input
    simplified, check_ok = simplify(model)
    if not check_ok:
        raise ToolkitError("onnxsim's own check found the simplified model's output differs: not kept")
    save_model(simplified, path)
