"""The accuracy gate: a fixed generated signal set, errors of a variant against the original, and the verdict.

Errors are reported overall, per input level and per signal, because the failure mode of reduced precision
here is level-dependent: the power spectrum before the log spans over 100 dB, so int8 or fp16 can be fine
on loud input and tens of dB off on quiet input.

Two error measures, and one check:
- dB error: |variant - original| of each float output of the graph (the features), element by element; max
  and p99 (p99 is an element that occurs: numpy's percentile with method "higher", so an inf is reported, never
  interpolated away), per output; the worst output's numbers are the variant's.
- relative mel error: of the mel energies, the tensor where explain's mel filterbank block ends (read through
  toolkit.variants.anatomy; without a mel block, the tensor its log block reads). Both sides are floored at amin
  (the log floors next) or at float32's resolution of the signal's peak mel energy, 2^-23 x that peak, whichever
  is larger (below it rounding noise is all there is), then |v - r| / r. For ONNX variants the energies come from
  an accuracy-only copy of the model that also outputs that tensor (the original's tensor by name, which every
  ONNX variant keeps; a variant without it is located afresh); for TFLite variants written by meltoolkit, from the
  tensor named `mel_energies` read with LiteRT's preserve-all-tensors option. A graph with neither block has no
  mel error (None).
- integer outputs (the features' lengths) must equal the original's exactly: a mismatch fails the gate, and
  the reason says which output, on how many signals, and the first values.

compare() takes plain dicts (signal name -> that signal's outputs, or one array for a one-output graph), so
outputs saved by the profiling runner in an npz feed it as well as run_signals() here. Every input of the
graph is fed by its feed plan (toolkit.load.feed_plan).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from toolkit.engines import run_session, run_tflite, session
from toolkit.errors import ToolkitError
from toolkit.load import FULL_SCALE, FeedPlan, int16_clip
from toolkit.targets import Policy
from toolkit.variants.anatomy import anatomy

SAMPLE_RATE = 16000
DEFAULT_AMIN = 1e-10
FLOAT32_RESOLUTION = 2.0**-23  # float32's relative spacing: its rounding noise beside a peak
SILENCE = -math.inf

Shape = Callable[[int, np.random.Generator], np.ndarray]
Outputs = np.ndarray | Sequence[np.ndarray]  # one signal's graph outputs in order (an array: the only one)


def _seconds(samples: int) -> np.ndarray:
    """Sample times in seconds."""
    return np.arange(samples) / SAMPLE_RATE


def _noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise."""
    return rng.standard_normal(samples)


def _sweep(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Exponential sine sweep 50 Hz -> 7.9 kHz over the clip."""
    del rng  # deterministic by construction
    duration = samples / SAMPLE_RATE
    ratio = math.log(7900.0 / 50.0)
    phase = 2 * math.pi * 50.0 * duration / ratio * (np.exp(_seconds(samples) / duration * ratio) - 1.0)
    return np.sin(phase)


def _impulses(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Single-sample clicks every 50 ms (800 samples), the first at sample 100."""
    del rng  # deterministic by construction
    clicks = np.zeros(samples)
    clicks[100::800] = 1.0
    return clicks


def _speech_like(samples: int, rng: np.random.Generator) -> np.ndarray:
    """A voiced-speech stand-in: 20 harmonics (1/h) of a 140 Hz pitch wobbling +-30 Hz at 3 Hz (FM),
    under a 4 Hz syllable envelope (AM)."""
    del rng  # deterministic by construction
    t = _seconds(samples)
    pitch_phase = 2 * math.pi * (140.0 * t - 30.0 / (2 * math.pi * 3.0) * np.cos(2 * math.pi * 3.0 * t))
    voiced = sum(np.sin(h * pitch_phase) / h for h in range(1, 21))
    return voiced * (0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t))


def _square(samples: int, rng: np.random.Generator) -> np.ndarray:
    """A 440 Hz square wave at 1.5 x full scale: clipped to int16 it is a full-scale square."""
    del rng  # deterministic by construction
    return 1.5 * np.sign(np.sin(2 * math.pi * 440.0 * _seconds(samples)) + 1e-12)


# name -> (generator, nominal RMS level in dBFS); the generator's output is scaled to that RMS level
# (except the square, which is scaled by its generator and clipped) and rounded to int16 values.
SIGNALS: dict[str, tuple[Shape, float]] = {
    "silence": (lambda samples, rng: np.zeros(samples), SILENCE),
    "noise-90dBFS": (_noise, -90.0),
    "noise-60dBFS": (_noise, -60.0),
    "noise-30dBFS": (_noise, -30.0),
    "noise-10dBFS": (_noise, -10.0),
    "sweep-60dBFS": (_sweep, -60.0),
    "sweep-10dBFS": (_sweep, -10.0),
    "impulses-30dBFS": (_impulses, -30.0),
    "speech-am-fm-60dBFS": (_speech_like, -60.0),
    "speech-am-fm-30dBFS": (_speech_like, -30.0),
    "square-clipped-0dBFS": (_square, 0.0),
}
UNSCALED = {"silence", "square-clipped-0dBFS"}



def signal_set(samples: int = 16000, full_scale: float = FULL_SCALE) -> dict[str, np.ndarray]:
    """The fixed, deterministic accuracy signals: name -> float32 [1, samples], full scale `full_scale`."""
    if samples < 512:
        raise ToolkitError(f"samples={samples} gives no frame; use at least 512 (one 32 ms frame)")
    signals = {}
    for index, (name, (shape, level)) in enumerate(SIGNALS.items()):
        values = shape(samples, np.random.default_rng(1000 + index))
        if name not in UNSCALED:
            values = values / np.sqrt(np.mean(values**2)) * 10.0 ** (level / 20.0)
        signals[name] = int16_clip(values * FULL_SCALE, full_scale)
    return signals


def signal_levels() -> dict[str, float]:
    """Nominal RMS level of each signal in dBFS (-inf for silence)."""
    return {name: level for name, (_, level) in SIGNALS.items()}


def level_label(level: float) -> str:
    """The key a level is reported under."""
    return "silence" if level == SILENCE else f"{level:g} dBFS"


@dataclass(frozen=True)
class ErrorStats:
    """Errors over one group of signals; max_rel_mel is None when mel energies were not given."""

    max_abs_db: float
    p99_abs_db: float
    max_rel_mel: float | None


@dataclass(frozen=True)
class AccuracyReport:
    """A variant's errors against the original: overall, by input level, by signal (each the worst float
    output's), by float output; and the integer outputs that differ from the original's."""

    overall: ErrorStats
    by_level: dict[str, ErrorStats]
    by_signal: dict[str, ErrorStats]
    by_output: dict[str, ErrorStats]
    mismatches: list[str]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields (inf stays a float: json writes it as Infinity)."""
        return asdict(self)


def _abs_db_errors(reference: np.ndarray, variant: np.ndarray, name: str) -> np.ndarray:
    """|variant - reference| flattened; a non-finite variant value where the reference is finite is inf."""
    if reference.shape != variant.shape:
        raise ToolkitError(
            f"signal {name!r}: variant output shape {variant.shape} != original {reference.shape}; "
            "compare outputs of the same input"
        )
    errors = np.abs(variant.astype(np.float64) - reference.astype(np.float64)).ravel()
    return np.where(np.isfinite(errors), errors, math.inf)


def _rel_mel_errors(reference: np.ndarray, variant: np.ndarray, amin: float) -> np.ndarray:
    """|max(v, f) - max(r, f)| / max(r, f), flattened, f the larger of amin and float32's resolution of the
    signal's peak mel energy; non-finite becomes inf.

    Why the resolution: float32 rounding in the DFT's sums leaves every band an absolute error of about
    2^-23 x the frame's energy, so a band far below the peak carries rounding noise of any relative size in
    the original as much as in an exact rewrite (measured: 10 % on a loud sweep's far bands for a 400-tap
    rewrite of NeMo's front end, 1e-4 with this floor; fp16 stays at 0.3).
    """
    reference, variant = reference.astype(np.float64), variant.astype(np.float64)
    peak = float(reference.max()) if reference.size and np.isfinite(reference.max()) else 0.0
    floor = max(amin, FLOAT32_RESOLUTION * peak)
    ref = np.maximum(reference, floor)
    errors = (np.abs(np.maximum(variant, floor) - ref) / ref).ravel()
    return np.where(np.isfinite(errors), errors, math.inf)


def _stats(db_errors: list[list[np.ndarray]], mel_errors: list[np.ndarray] | None) -> ErrorStats:
    """Over a group of signals (each: its float outputs' dB errors): the max and p99 of each output, the worst
    output's of each; the max of the mel errors."""
    per_output = [np.concatenate(errors) for errors in zip(*db_errors, strict=True)]
    mel = float(np.concatenate(mel_errors).max()) if mel_errors else None
    worst_max = max(float(errors.max()) for errors in per_output)
    return ErrorStats(worst_max, max(float(np.percentile(e, 99, method="higher")) for e in per_output), mel)


def _as_list(outputs: Outputs) -> list[np.ndarray]:
    """One signal's outputs as a list: a bare array is a one-output graph's."""
    return [outputs] if isinstance(outputs, np.ndarray) else list(outputs)


def _brief(array: np.ndarray) -> str:
    """The first few values of an integer output, for a mismatch's reason."""
    values = array.ravel()
    return f"{values[:4].tolist()}{' ...' if values.size > 4 else ''}"


def _mismatch(label: str, reference: dict[str, list[np.ndarray]], variant: dict[str, list[np.ndarray]],
              index: int) -> str | None:
    """Why integer output `index` differs from the original's (on which signals, first values), or None."""
    differing = [n for n in reference if not np.array_equal(reference[n][index], variant[n][index])]
    if not differing:
        return None
    first = differing[0]
    return (f"integer output {label} differs from the original's on {len(differing)} of {len(reference)} signals "
            f"(first {first!r}: {_brief(variant[first][index])} vs {_brief(reference[first][index])}); it must be "
            "equal")


def _float_outputs(reference: dict[str, list[np.ndarray]], variant: dict[str, list[np.ndarray]]) -> list[int]:
    """Indices of the float outputs (the features), after checking both sides give the same outputs."""
    for name, outputs in reference.items():
        if len(variant[name]) != len(outputs):
            raise ToolkitError(f"signal {name!r}: the variant gives {len(variant[name])} outputs, the original "
                               f"{len(outputs)}; compare outputs of the same graph")
    first = next(iter(reference.values()))
    floats = [k for k, output in enumerate(first) if np.issubdtype(output.dtype, np.floating)]
    if not floats:
        raise ToolkitError("the graph has no float output (features) to compare in dB")
    return floats


def compare(
    reference_outputs: Mapping[str, Outputs],
    variant_outputs: Mapping[str, Outputs],
    levels: Mapping[str, float],
    reference_mel: Mapping[str, np.ndarray] | None = None,
    variant_mel: Mapping[str, np.ndarray] | None = None,
    amin: float = DEFAULT_AMIN,
    names: Sequence[str] = (),
) -> AccuracyReport:
    """Errors of `variant_outputs` against `reference_outputs` (signal name -> its outputs), grouped by level.

    Float outputs are compared in dB, integer ones for equality; `names` labels the outputs (default
    "output k"). Mel energies are compared only when both mel dicts are given.
    """
    missing = sorted(set(reference_outputs) - set(variant_outputs))
    if missing:
        raise ToolkitError(f"variant outputs lack signal(s) {', '.join(missing)}; run the variant on the full set")
    reference = {name: _as_list(outputs) for name, outputs in reference_outputs.items()}
    variant = {name: _as_list(variant_outputs[name]) for name in reference}
    floats = _float_outputs(reference, variant)
    labels = [names[k] if k < len(names) else f"output {k}" for k in range(len(next(iter(reference.values()))))]
    with_mel = reference_mel is not None and variant_mel is not None
    db = {name: [_abs_db_errors(reference[name][k], variant[name][k], name) for k in floats] for name in reference}
    mel = ({name: _rel_mel_errors(reference_mel[name], variant_mel[name], amin) for name in db}
           if reference_mel is not None and variant_mel is not None else {})
    by_signal = {name: _stats([db[name]], [mel[name]] if with_mel else None) for name in db}
    groups: dict[str, list[str]] = {}
    for name in db:
        groups.setdefault(level_label(levels[name]), []).append(name)
    by_level = {
        label: _stats([db[n] for n in members], [mel[n] for n in members] if with_mel else None)
        for label, members in groups.items()
    }
    overall = _stats(list(db.values()), list(mel.values()) if with_mel else None)
    by_output = {labels[k]: _stats([[errors[i]] for errors in db.values()], None) for i, k in enumerate(floats)}
    integers = [k for k in range(len(labels)) if k not in floats]
    mismatches = [m for k in integers if (m := _mismatch(labels[k], reference, variant, k))]
    return AccuracyReport(overall, by_level, by_signal, by_output, mismatches)


# policy key -> (report field, what it bounds); max_rel_mel_error is checked only when the policy sets it
GATE_CHECKS = {
    "max_abs_db_error": ("max_abs_db", "max |dB error|"),
    "p99_abs_db_error": ("p99_abs_db", "p99 |dB error|"),
    "max_rel_mel_error": ("max_rel_mel", "max relative mel-energy error"),
}
REQUIRED_POLICY = ("max_abs_db_error", "p99_abs_db_error")


def gate(report: AccuracyReport, policy: Mapping[str, float | None] | Policy) -> tuple[bool, list[str]]:
    """(passed, reasons): every tolerance the target's [policy] sets, checked on the overall errors, and the
    integer outputs' equality.

    `policy` is the [policy] table as a mapping, or toolkit.targets.Policy. The reasons name each failed
    bound with the measured value and the worst input level.
    """
    limits = policy if isinstance(policy, Mapping) else asdict(policy)
    bounds: dict[str, float] = {key: value for key, value in limits.items() if value is not None}
    absent = [key for key in REQUIRED_POLICY if key not in bounds]
    if absent:
        raise ToolkitError(f"the target's [policy] lacks {', '.join(absent)}; add it (a tolerance in dB)")
    reasons = []
    for key, (field, label) in GATE_CHECKS.items():
        if key not in bounds:
            continue
        limit = float(bounds[key])
        measured = getattr(report.overall, field)
        if measured is None:
            reasons.append(f"{label} not measured (no mel energies) but the policy bounds it by {limit:g}")
        elif not measured <= limit:
            worst = max(report.by_level, key=lambda label_: getattr(report.by_level[label_], field) or 0.0)
            reasons.append(f"{label} {measured:.4g} > {limit:g} ({key}); worst at {worst}")
    reasons += report.mismatches
    return not reasons, reasons


def runner_outputs(arrays: Mapping[str, np.ndarray], variant: str) -> dict[str, list[np.ndarray]]:
    """One variant's per-signal outputs from the profiling runner's npz (keys "<variant>/<signal>" for the first
    output, "<variant>/<signal>/<k>" for output k), each signal's in graph order."""
    prefix = f"{variant}/"
    found: dict[str, dict[int, np.ndarray]] = {}
    for key, value in arrays.items():
        if key.startswith(prefix):
            signal, _, index = key[len(prefix) :].partition("/")
            found.setdefault(signal, {})[int(index or 0)] = value
    if not found:
        raise ToolkitError(f"the runner's outputs hold nothing for variant {variant!r}; was it in the bundle?")
    return {signal: [outputs[k] for k in sorted(outputs)] for signal, outputs in found.items()}


def mel_taps(model: onnx.ModelProto) -> tuple[str, ...]:
    """Where the mel energies can be read, by explain's blocks: where the mel block ends, the tensor the log block
    reads (a graph whose filterbank explain cannot name still has it), and the floored energies its Log reads (a
    quantizer may fold the floor into the MatMul and keep only that name); () without either block."""
    parts = anatomy(model)
    log = parts.find("log")
    entry = [log.nodes[0].input[0], *(node.input[0] for node in log.nodes if node.op_type == "Log")] if log else []
    return tuple(dict.fromkeys([*([parts.mel.output] if parts.mel else []), *entry]))


def mel_tensor(model: onnx.ModelProto, preferred: Sequence[str] = ()) -> str | None:
    """The mel energies: the first of `preferred` (the original's taps) the model computes, else the first of its
    own; None when explain finds no mel block."""
    computed = {name for node in model.graph.node for name in node.output}
    return next((name for name in preferred if name in computed), None) or next(iter(mel_taps(model)), None)


def with_mel_output(model: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    """An accuracy-only copy of `model` that also outputs `tensor`, the mel energies (as its last output)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inferred = onnx.shape_inference.infer_shapes(probe)
    types = {info.name: info.type.tensor_type.elem_type for info in inferred.graph.value_info}
    probe.graph.output.append(helper.make_tensor_value_info(tensor, types.get(tensor, TensorProto.FLOAT), None))
    return probe


@dataclass(frozen=True)
class SignalOutputs:
    """One variant's outputs on the signal set, each signal name -> its graph outputs in order (the first: the
    features) and its mel energies (None without a mel block); the outputs' names; where a variant of it may
    read its mel energies (mel_taps)."""

    outputs: dict[str, list[np.ndarray]]
    mel: dict[str, np.ndarray] | None
    names: list[str]
    mel_taps: tuple[str, ...] = ()


def _run_onnx_file(path: Path, signals: Mapping[str, np.ndarray], plan: FeedPlan | None,
                   preferred: Sequence[str]) -> SignalOutputs:
    """Each signal through the accuracy-only copy of the ONNX model (mel energies as an extra output), every
    input fed by `plan` (default: the model's own)."""
    model = onnx.load(str(path))
    names = [output.name for output in model.graph.output]
    taps = tuple(preferred) or mel_taps(model)
    tensor = mel_tensor(model, taps)
    if tensor is None:
        fed = session(model, plan)
        return SignalOutputs({name: run_session(fed, audio) for name, audio in signals.items()}, None, names)
    probe = session(with_mel_output(model, tensor), plan)
    results = {name: run_session(probe, audio) for name, audio in signals.items()}
    outputs = {name: result[:-1] for name, result in results.items()}
    mel = {name: result[-1].astype(np.float32) for name, result in results.items()}
    return SignalOutputs(outputs, mel, names, taps)


def _run_tflite_file(path: Path, signals: Mapping[str, np.ndarray], plan: FeedPlan | None,
                     preferred: Sequence[str]) -> SignalOutputs:
    """Each signal through LiteRT, reading the `mel_energies` tensor."""
    del plan, preferred  # the TFLite variant takes the audio only, and names its mel energies itself
    results = {name: run_tflite(path, audio, with_mel=True) for name, audio in signals.items()}
    return SignalOutputs({n: [r[0]] for n, r in results.items()}, {n: r[1] for n, r in results.items()}, [])


RUNNERS: dict[str, Callable[[Path, Mapping[str, np.ndarray], FeedPlan | None, Sequence[str]], SignalOutputs]] = {
    "onnx": _run_onnx_file,
    "tflite": _run_tflite_file,
}


def run_signals(path: str | Path, model_format: str, signals: Mapping[str, np.ndarray],
                plan: FeedPlan | None = None, mel: Sequence[str] = ()) -> SignalOutputs:
    """Run a variant file over the signals in this process (CPU), one signal per call (batch 1), its other
    inputs fed by `plan` (default: the model's own feed plan), its mel energies read at the first tensor of `mel`
    it computes (default: where its own mel block ends)."""
    if model_format not in RUNNERS:
        raise ToolkitError(f"unknown model format {model_format!r}; use one of {', '.join(RUNNERS)}")
    return RUNNERS[model_format](Path(path), signals, plan, mel)


def measure(
    reference: SignalOutputs, path: str | Path, model_format: str, signals: Mapping[str, np.ndarray],
    plan: FeedPlan | None = None,
) -> AccuracyReport:
    """The accuracy report of one variant file against the original's outputs on the same signals."""
    outputs = run_signals(path, model_format, signals, plan, reference.mel_taps)
    return compare(reference.outputs, outputs.outputs, signal_levels(), reference.mel, outputs.mel,
                   names=reference.names)
