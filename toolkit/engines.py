"""Engine sessions made in this process, their options in one place: onnxruntime on the CPU with the default
optimizations, fed by the model's feed plan (toolkit.load.feed_plan) through the bench runner's own feed maker,
so an in-process run feeds exactly what a board is fed; and LiteRT's interpreter for the TFLite variant. (The
runner builds its own sessions: it runs on boards without the toolkit.)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, overload

import numpy as np
import onnx
import onnxruntime as ort

from toolkit.errors import ToolkitError
from toolkit.load import FeedPlan, feed_plan
from toolkit.profiling.runner import feed_arrays

Feed = dict[str, np.ndarray]  # input name -> the array one inference is fed
MEL_TENSOR = "mel_energies"  # the TFLite writer's name for the tensor feeding the floor: run_tflite reads it
# onnxruntime's refusals of a model or a feed: the user's to fix, so callers word them as one line
REFUSALS = (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
            ort.capi.onnxruntime_pybind11_state.RuntimeException)


def cpu_session(model: onnx.ModelProto | str | os.PathLike[str], quiet: bool = True) -> ort.InferenceSession:
    """A CPU onnxruntime session with the default optimizations, from a model or a path. `quiet`: no log lines,
    its errors come back as exceptions only (and run_session words them)."""
    options = ort.SessionOptions()
    if quiet:
        options.log_severity_level = 4
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def plan_feed(plan: FeedPlan, audio: np.ndarray, names: set[str] | None = None) -> Feed:
    """The arrays one inference on `audio` is fed by `plan`: the inputs in `names` (default: every one)."""
    return feed_arrays([entry.to_json() for entry in plan], audio, {e.name for e in plan} if names is None else names)


@dataclass(frozen=True)
class FedSession:
    """A CPU onnxruntime session and the feed plan that feeds every one of its inputs."""

    session: ort.InferenceSession
    plan: FeedPlan

    def feed(self, audio: np.ndarray) -> Feed:
        """The arrays one inference on `audio` is fed: every input the session takes."""
        return plan_feed(self.plan, audio, {i.name for i in self.session.get_inputs()})


def session(model: onnx.ModelProto | str, plan: FeedPlan | None = None) -> FedSession:
    """A CPU onnxruntime session with the default optimizations, from a model or a path, fed by `plan`
    (default: the model's own feed plan, no --input values)."""
    proto = onnx.load(model) if isinstance(model, str) else model
    return FedSession(cpu_session(proto), feed_plan(proto) if plan is None else plan)


def run_session(fed: FedSession, audio: np.ndarray) -> list[np.ndarray]:
    """Every graph output for one [batch, samples] clip, on a session made once by the caller. onnxruntime's
    refusal (an input it cannot take) is the user's to fix, so it comes back as one line naming the feed."""
    try:
        return fed.session.run(None, fed.feed(audio.astype(np.float32)))
    except REFUSALS as error:
        message = " ".join(str(error).split())[-300:]
        fed_as = ", ".join(f"{e.name} as {e.role}" for e in fed.plan)
        raise ToolkitError(f"onnxruntime could not run the model on {audio.shape[-1]} samples (fed {fed_as}): "
                           f"{message}; check the input sizes it takes (analyze) and the other inputs' values "
                           "(--input NAME=VALUE)") from None


def run_onnx(model: onnx.ModelProto | str, audio: np.ndarray) -> list[np.ndarray]:
    """Every graph output for one [batch, samples] clip (a fresh session: one-off runs only)."""
    return run_session(session(model), audio)


class Interpreter(Protocol):
    """The part of LiteRT's (untyped) Interpreter the toolkit uses."""

    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def get_tensor_details(self) -> list[dict[str, Any]]: ...
    def resize_tensor_input(self, input_index: int, tensor_size: list[int]) -> None: ...
    def allocate_tensors(self) -> None: ...
    def set_tensor(self, tensor_index: int, value: np.ndarray) -> None: ...
    def invoke(self) -> None: ...
    def get_tensor(self, tensor_index: int) -> np.ndarray: ...


def _interpreter_class() -> Callable[..., Interpreter]:
    """LiteRT's Interpreter, or tflite_runtime's where only that is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def interpreter(model: str | Path | bytes, samples: int, keep_tensors: bool = False) -> Interpreter:
    """A LiteRT interpreter sized for [1, samples] input; `keep_tensors` keeps intermediates readable."""
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    with warnings.catch_warnings():
        # keeping intermediates is the point when reading the mel energies for the accuracy gate
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        runner = _interpreter_class()(**source, experimental_preserve_all_tensors=keep_tensors)
    runner.resize_tensor_input(runner.get_input_details()[0]["index"], [1, samples])
    runner.allocate_tensors()
    return runner


def _tensor_index(runner: Interpreter, name: str) -> int:
    """The index of the tensor called `name`."""
    for detail in runner.get_tensor_details():
        if detail["name"] == name:
            return detail["index"]
    raise ToolkitError(f"the TFLite model has no tensor named {name!r}: was it written by meltoolkit?")


@overload
def run_tflite(model: str | Path | bytes, audio: np.ndarray, with_mel: Literal[True]) -> tuple[np.ndarray, np.ndarray]:
    ...


@overload
def run_tflite(
    model: str | Path | bytes, audio: np.ndarray, with_mel: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    ...


def run_tflite(
    model: str | Path | bytes, audio: np.ndarray, with_mel: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """(dB output, mel energies or None) of the TFLite model for one [1, samples] float32 input."""
    if audio.ndim != 2 or audio.shape[0] != 1:
        raise ToolkitError(f"the TFLite variant takes one clip [1, samples]; got shape {audio.shape}")
    runner = interpreter(model, audio.shape[1], keep_tensors=with_mel)
    runner.set_tensor(runner.get_input_details()[0]["index"], audio.astype(np.float32))
    runner.invoke()
    output = runner.get_tensor(runner.get_output_details()[0]["index"])
    mel = runner.get_tensor(_tensor_index(runner, MEL_TENSOR)) if with_mel else None
    return output, mel
