"""Loading a model: the user's file or the built-in default, with failures as one-line errors."""

from __future__ import annotations

from pathlib import Path

import onnx

from toolkit.errors import ToolkitError
from toolkit.melgraph import default_model


def load_model(path: str | Path | None = None) -> onnx.ModelProto:
    """The model at `path`, or the built-in openWakeWord-style mel graph when no path is given."""
    if path is None:
        return default_model()
    file = Path(path)
    if not file.is_file():
        raise ToolkitError(f"model file '{file}' does not exist; give the path of an .onnx file")
    try:
        model = onnx.load(str(file))
    except Exception as error:  # onnx raises several unrelated types for a bad file
        raise ToolkitError(f"'{file}' is not a readable ONNX model ({type(error).__name__}); "
                           "check that it is an .onnx file") from None
    if not model.graph.node:
        raise ToolkitError(f"'{file}' holds no graph nodes; check that it is an ONNX model")
    return model
