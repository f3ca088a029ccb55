"""The streaming executor: the pipeline's onnxruntime sessions fed chunk by chunk as openWakeWord feeds them.

openWakeWord 0.5.1 (utils.py AudioFeatures._streaming_features, model.py Model.predict): every 1280 new samples
the mel model runs on the last 1760 samples of int16-valued float32 audio and its 8 frames, transformed x/10 + 2,
are appended to the mel buffer (started as ones); the embedding model runs on the last 76 frames as
[1, 76, 32, 1] and its 96 values are appended to the embedding buffer; every wake-word model runs on the last 16
embeddings as [1, 16, 96]. The pipeline file says all of this as data (toolkit.wakeword.spec; the part this
module reads is a Cadence, plain JSON on a board); this module only follows it. Two differences from
openWakeWord, both in the first chunks only: the audio buffer starts as zeros (openWakeWord's first mel run sees
the 1280 samples it has) and the embedding buffer as the stage's `fill` (openWakeWord embeds 4 s of random
noise), so scores agree from the chunk where every buffer holds real data on (settle_chunks); openWakeWord's
zeroing of its first 5 scores is not repeated.

Measured at the real rate with toolkit.profiling.runner.paced, the runner's own streaming loop: the CPU share of
one core is process CPU time / wall time over the stream; a stage's share is the process CPU time spent inside
its session.run calls / the same wall time, so the shares add up to the whole minus the time between chunks.

Self-contained like the runner: it imports only the standard library, numpy and the runner (onnxruntime through
it), so the same file is shipped to a board beside runner.py (toolkit.wakeword.board) and the chain logic
cannot differ between this host and the board.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING or __package__:  # toolkit.wakeword.stream, inside the toolkit (what mypy checks)
    from toolkit.errors import ToolkitError as StreamError
    from toolkit.profiling import runner
else:  # stream.py shipped to a board beside runner.py: no toolkit there, the runner's one-line error instead
    import runner
    StreamError = runner.BundleError

Config = dict[str, Any]  # the runner's run configuration: a value for each of runner.CONFIG_FIELDS
DEFAULT_CONFIG: Config = {"engine": "onnxruntime", "provider": "CPUExecutionProvider", "threads": 1,
                          "spinning": False, "optimization": "all", "precision": None}
WAKE_WORD_COUNTS = (1, 2, 4, 8)
METHOD = (runner.STREAMING_METHOD + "; a stage's share = process CPU time inside its session.run calls (all "
          "classifiers together for the fanned-out stage) / the same wall time; 'between' = whole - stages "
          "(sleeping, buffer copies, spinning intra-op workers); a chunk's latency = wall time of all its "
          "stages, chunk arrival to its last score")


@dataclass(frozen=True)
class Cut:
    """How one stage's input is cut from its source's buffer and what its output adds (toolkit.wakeword.spec
    describes each field; its Stage is a Cut with the file's other keys)."""

    name: str
    window: int
    input_shape: tuple[int, ...]
    rows: int
    row_size: int
    scale: float
    offset: float
    fill: float
    fanout: bool


@dataclass(frozen=True)
class Cadence:
    """What the executor reads of a pipeline: the rate and each stage's cut (spec.Pipeline is a Cadence)."""

    sample_rate: int
    chunk_samples: int
    stages: tuple[Cut, ...]

    @property
    def rate_hz(self) -> float:
        """Streaming steps per second."""
        return self.sample_rate / self.chunk_samples

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, only the Cut fields of each stage: what a board is sent."""
        cuts = [{f.name: getattr(s, f.name) for f in fields(Cut)} for s in self.stages]
        return {"sample_rate": self.sample_rate, "chunk_samples": self.chunk_samples,
                "stages": [{**c, "input_shape": list(c["input_shape"])} for c in cuts]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Cadence:
        """The cadence a board was sent."""
        stages = tuple(Cut(**{**s, "input_shape": tuple(s["input_shape"])}) for s in doc["stages"])
        return cls(int(doc["sample_rate"]), int(doc["chunk_samples"]), stages)


@dataclass
class StageSessions:
    """The sessions of one stage (one per wake word when it fans out) and their input names."""

    stage: Cut
    sessions: list[Any]
    inputs: list[str]


def _check_input(stage: Cut, path: Path, session: Any) -> str:
    """The model's one input name; its fixed dims must be the stage's input_shape."""
    inputs = session.get_inputs()
    dims = inputs[0].shape
    fixed = len(dims) == len(stage.input_shape) and all(
        not isinstance(d, int) or d == want for d, want in zip(dims, stage.input_shape, strict=True))
    if len(inputs) != 1 or not fixed:
        raise StreamError(f"{path}: stage {stage.name!r} feeds one input {list(stage.input_shape)}, the model has "
                           f"{[(i.name, i.shape) for i in inputs]}")
    return inputs[0].name


def open_sessions(stage: Cut, paths: Sequence[Path], config: Config) -> StageSessions:
    """onnxruntime sessions with the runner's session options for `config`."""
    sessions = [runner.OrtSession(Path(path), config, []).session for path in paths]
    names = [_check_input(stage, Path(path), s) for path, s in zip(paths, sessions, strict=True)]
    return StageSessions(stage, sessions, names)


@dataclass
class Chain:
    """Sessions plus one input buffer per stage: the audio for the first, the previous stage's rows after."""

    stages: list[StageSessions]
    buffers: list[np.ndarray] = field(init=False)
    cpu_s: list[float] = field(init=False)
    inputs: list[np.ndarray] = field(init=False)
    outputs: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        rows = [1] + [s.stage.row_size for s in self.stages[:-1]]
        fills = [0.0] + [s.stage.fill for s in self.stages[:-1]]
        self.buffers = [np.full((s.stage.window, row), fill, dtype=np.float32)
                        for s, row, fill in zip(self.stages, rows, fills, strict=True)]
        self.cpu_s = [0.0] * len(self.stages)
        self.inputs = [np.empty(0)] * len(self.stages)
        self.outputs = [np.empty(0)] * len(self.stages)

    def run_stage(self, index: int, x: np.ndarray) -> np.ndarray:
        """One stage on its window: rows x row_size per model, transformed, side by side when fanned out."""
        run = self.stages[index]
        stage = run.stage
        started = time.process_time()
        results = [session.run(None, {name: x})[0] for session, name in zip(run.sessions, run.inputs, strict=True)]
        self.cpu_s[index] += time.process_time() - started
        for result in results:
            if result.size != stage.rows * stage.row_size:
                raise StreamError(f"stage {stage.name!r}: output {list(result.shape)} has {result.size} values, "
                                   f"the pipeline says rows {stage.rows} x row_size {stage.row_size}")
        rows = [r.reshape(stage.rows, stage.row_size) * stage.scale + stage.offset for r in results]
        return np.concatenate(rows, axis=1).astype(np.float32)

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """Feed one chunk of new samples through every stage; the last stage's outputs (one score per model)."""
        new = chunk.reshape(-1, 1).astype(np.float32)
        for index, run in enumerate(self.stages):
            buffer = np.concatenate([self.buffers[index], new])[-run.stage.window:]
            self.buffers[index] = buffer
            x = buffer.reshape(run.stage.input_shape)
            new = self.run_stage(index, x)
            self.inputs[index], self.outputs[index] = x, new
        return new.reshape(-1)


T = TypeVar("T")


def classifier_files(files: Sequence[T], n: int) -> list[T]:
    """N classifiers: the available wake-word models, repeated when fewer."""
    return [files[i % len(files)] for i in range(n)]


def open_chain(pipeline: Cadence, files: dict[str, list[Path]], configs: dict[str, Config],
               n: int | None = None) -> Chain:
    """A fresh chain; the fanned-out stage gets `n` classifiers (default: each of its files once)."""
    stages = []
    for stage in pipeline.stages:
        paths = classifier_files(files[stage.name], n) if stage.fanout and n else files[stage.name]
        stages.append(open_sessions(stage, paths, configs.get(stage.name, DEFAULT_CONFIG)))
    return Chain(stages)


def settle_chunks(pipeline: Cadence) -> int:
    """Chunks until every buffer holds only rows made from the audio: each stage's window / its new rows a step."""
    new_rows = [pipeline.chunk_samples] + [s.rows for s in pipeline.stages[:-1]]
    return sum(math.ceil(s.window / rows) for s, rows in zip(pipeline.stages, new_rows, strict=True))


def chunks_of(audio: np.ndarray, pipeline: Cadence) -> np.ndarray:
    """The audio as whole chunks [count, chunk_samples]; a partial last chunk is dropped, as openWakeWord keeps it
    for the next call."""
    flat = np.asarray(audio, dtype=np.float32).reshape(-1)
    count = flat.size // pipeline.chunk_samples
    return flat[: count * pipeline.chunk_samples].reshape(count, pipeline.chunk_samples)


def scores(chain: Chain, audio: np.ndarray, pipeline: Cadence) -> np.ndarray:
    """The last stage's outputs for every chunk of `audio`, [chunks, models]."""
    return np.stack([chain.step(chunk) for chunk in chunks_of(audio, pipeline)])


def stream_audio(pipeline: Cadence, seconds: float, seed: int) -> np.ndarray:
    """Int16-scale noise for settle_chunks plus `seconds` of chunks: what the measured stream is fed."""
    chunks = settle_chunks(pipeline) + max(1, round(seconds * pipeline.rate_hz))
    return runner.noise((chunks * pipeline.chunk_samples,), seed)


def measure(chain: Chain, pipeline: Cadence, seconds: float, seed: int = 0) -> dict[str, Any]:
    """CPU share of one core for the whole chain and per stage at the real rate, and each chunk's latency; the
    settle chunks run first, untimed, so every stage works on real rows."""
    chunks = chunks_of(stream_audio(pipeline, seconds, seed), pipeline)
    warm = settle_chunks(pipeline)
    for chunk in chunks[:warm]:
        chain.step(chunk)
    chain.cpu_s = [0.0] * len(chain.stages)
    stream = runner.paced(lambda i: chain.step(chunks[warm + i]), pipeline.rate_hz, len(chunks) - warm)
    wall = stream["wall_s"]
    stage_share = {run.stage.name: cpu / wall for run, cpu in zip(chain.stages, chain.cpu_s, strict=True)}
    return {
        "chunks": len(chunks) - warm,
        "rate_hz": pipeline.rate_hz,
        "wall_s": wall,
        "cpu_share": stream["cpu_share"],
        "stage_cpu_share": stage_share,
        "between_cpu_share": stream["cpu_share"] - sum(stage_share.values()),
        "latency_ms": runner.latency_stats(stream["latencies_ms"]),
        "deadline_misses": stream["deadline_misses"],
        "method": METHOD,
    }


def sweep(pipeline: Cadence, files: dict[str, list[Path]], configs: dict[str, Config], seconds: float,
          counts: Sequence[int] = WAKE_WORD_COUNTS) -> list[dict[str, Any]]:
    """The chain streamed at the real rate with N classifiers, for each N."""
    return [{"wake_words": n, **measure(open_chain(pipeline, files, configs, n), pipeline, seconds, seed=n)}
            for n in counts]


def stage_chunks(rate_hz: float, seconds: float) -> int:
    """How many chunks a stage streamed alone for `seconds` is fed."""
    return max(1, round(seconds * rate_hz))


def stream_stage(stage: Cut, paths: Sequence[Path], inputs: Sequence[np.ndarray], config: Config, rate_hz: float,
                 chunks: int) -> dict[str, Any]:
    """The stage alone at the cadence, fed `inputs` in order (cycled) after 3 untimed runs: process CPU time /
    wall time; `unavailable` with the reason when the configuration's provider is missing here."""
    missing = runner.provider_missing(config)
    if missing:
        return {"config": config, "status": "unavailable", "reason": missing}
    chain = Chain([open_sessions(stage, paths, config)])
    for x in inputs[:3]:
        chain.run_stage(0, x)
    stream = runner.paced(lambda i: chain.run_stage(0, inputs[i % len(inputs)]), rate_hz, chunks)
    return {"config": config, "status": "ok", "cpu_share": stream["cpu_share"],
            "median_ms": float(np.median(stream["latencies_ms"])), "chunks": chunks}
