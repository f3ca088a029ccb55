"""How much audio one inference of a graph covers: what the target's real-time budget is a fraction of.

Why: the policy's budget is a real-time factor, latency / the audio one inference stands for. A streaming front
end (openWakeWord's) is run once per 80 ms step on the 1760-sample chunk, so its budget is a fraction of 80 ms.
A graph that pads every input to a fixed length (Whisper's 30 s) computes that whole window whatever it is fed,
and is run once per window: measured on the chunk it does a window's work, so its budget is the same fraction of
the window. The fixed length comes from explain's padding block ('to length'); a graph without one keeps the
streaming step, as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import onnx

from toolkit.accuracy import SAMPLE_RATE
from toolkit.explain import Explanation, explain
from toolkit.files import Json
from toolkit.profiling.bundle import STREAMING
from toolkit.targets import CHUNK_MS

STEP = "streaming step"
WINDOW = "fixed window"


@dataclass(frozen=True)
class InferenceAudio:
    """The audio one inference covers (ms), what it is (STEP or WINDOW), and why, for choice.json and reports."""

    audio_ms: float
    kind: str
    reason: str

    def to_json(self) -> Json:
        return asdict(self)


def streaming_step(why: str) -> InferenceAudio:
    """The default: one inference per 80 ms step of the 1760-sample chunk."""
    return InferenceAudio(CHUNK_MS, STEP, f"{why}: one inference per {CHUNK_MS:g} ms streaming step "
                                          f"({STREAMING['chunk_samples']}-sample chunk)")


def _fixed_length(explanation: Explanation) -> tuple[int, list[str]] | None:
    """(samples, nodes) of a padding block that extends every input to a fixed length, if there is one."""
    for block in explanation.blocks:
        lengths = [p.value for p in block.params if block.kind == "padding" and p.name == "to length"]
        if lengths and isinstance(lengths[0], int):
            return lengths[0], block.nodes
    return None


def _sample_rate(explanation: Explanation) -> int:
    """The mel filterbank's recovered rate, else the rate the signal set is made at."""
    mel = explanation.block("mel filterbank")
    rate = next((p.value for p in mel.params if p.name == "sample rate"), None) if mel else None
    return int(rate) if isinstance(rate, (int, float)) and rate > 0 else SAMPLE_RATE


def inference_audio(model: onnx.ModelProto) -> InferenceAudio:
    """The audio one inference of `model` covers: its fixed window when it pads every input to one longer than the
    chunk, else the streaming step."""
    explanation = explain(model)
    fixed = _fixed_length(explanation)
    if fixed is None or fixed[0] <= STREAMING["chunk_samples"]:
        return streaming_step("no padding to a fixed length longer than the chunk")
    samples, nodes = fixed
    rate = _sample_rate(explanation)
    audio_ms = 1000.0 * samples / rate
    return InferenceAudio(audio_ms, WINDOW, (
        f"the graph pads every input to {samples} samples ({audio_ms / 1000:g} s at {rate} Hz; explain's padding "
        f"block, nodes {', '.join(nodes[-1:])}): whatever it is fed, one inference computes that window and is run "
        f"once per window, so the budget is a fraction of {audio_ms:g} ms"))
