"""The toolkit on models it did not write: onnx-asr 0.12.0's published log-mel graphs, openWakeWord 0.5.1's
models and Silero VAD 6.2.3 (`make frontends`).

Why: a recognizer or cost rule that fits only our own graph is not done. onnx-asr (MIT) ships the front ends of
Kaldi, NeMo, Whisper, GigaAM and WeSpeaker models as ONNX files beside a NumPy reference implementation of each
(`onnx_asr/preprocessors/numpy_preprocessor.py`). For every graph this runs what a user runs, as a user runs it
(the CLI in a subprocess, so a traceback is a failure like any other), and checks:

    reference  onnxruntime's output of the graph against the publisher's NumPy reference on the same signal
               (features to REFERENCE_TOLERANCE, reported; lengths exactly, required)
    analyze    `analyze --samples 16000 --json` is complete (every node counted)
    explain    `explain --json` recovers the reference's parameters (n_fft, window and its length, hop, bands, ...)
               and never describes the graph as the identity
    profile    `profile --target x86-host --quick` exports an artifact whose variant passed the gate

openWakeWord's and Silero's models are not all front ends, so each gets the checks that fit what it is (MODELS):
its mel front end explain's n_fft, hop and bands and a quick profile; the embedding CNN, the hey_jarvis
classifier (with its If) and the VAD (an If on the sample rate around its LSTM) analyze complete at their own
input shapes and explain without a traceback or an identity. There is no NumPy reference for them.

The packages are fetched with pip --no-deps into the toolkit's cache folder (never into the repository); tests
never download, and build their own small graphs instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.engines import cpu_session
from toolkit.errors import ToolkitError
from toolkit.files import write_text_atomic
from toolkit.folder import manifest_path, read_manifest
from toolkit.packages import installed
from toolkit.records import Manifest
from toolkit.terminal import progress

SAMPLES = 16000
REFERENCE_TOLERANCE = 5e-3
# graph name -> (reference class in numpy_preprocessor.py, the name it is built with)
REFERENCES: dict[str, tuple[str, str]] = {
    **{name: ("KaldiPreprocessorNumpy", "kaldi") for name in ("kaldi", "kaldi_conv")},
    "wespeaker": ("KaldiPreprocessorNumpy", "wespeaker"),
    **{f"nemo{n}{s}": ("NemoPreprocessorNumpy", f"nemo{n}") for n in (80, 128) for s in ("", "_conv")},
    **{f"whisper{n}{s}": ("WhisperPreprocessorNumpy", f"whisper{n}") for n in (80, 128) for s in ("", "_conv")},
    **{f"gigaam_{v}{s}": ("GigaamPreprocessorNumpy", f"gigaam_{v}") for v in ("v2", "v3") for s in ("", "_conv")},
}




@dataclass(frozen=True)
class Package:
    """A PyPI package whose wheel ships models, pinned; `marker` is a file that proves it is installed."""

    name: str
    version: str
    marker: str


ONNX_ASR = Package("onnx-asr", "0.12.0", "onnx_asr/preprocessors/numpy_preprocessor.py")
OPENWAKEWORD = Package("openwakeword", "0.5.1", "openwakeword/resources/models/melspectrogram.onnx")
SILERO_VAD = Package("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx")
ONNX_ASR_DATA = "onnx_asr/preprocessors/data"
OWW_MODELS = "openwakeword/resources/models"


@dataclass(frozen=True)
class Model:
    """A published model that is not an onnx-asr front end, and the checks that fit what it is: the analyze
    arguments it is counted at, the parameters explain must recover (none for a model that is no front end),
    and whether a quick profile runs on it (front ends only: the profile's signal set is audio)."""

    package: Package
    path: str
    what: str
    analyze_args: tuple[str, ...] = ()
    expected: tuple[tuple[str, Any], ...] = ()
    profile: bool = False


MODELS: dict[str, Model] = {
    "oww_melspectrogram": Model(OPENWAKEWORD, f"{OWW_MODELS}/melspectrogram.onnx", "openWakeWord's log-mel front end",
                                ("--samples", str(SAMPLES)),
                                (("n_fft", 512), ("hop", 160), ("window length", 400), ("bands", 32)), profile=True),
    "oww_embedding_model": Model(OPENWAKEWORD, f"{OWW_MODELS}/embedding_model.onnx",
                                 "openWakeWord's embedding CNN over 76 x 32 mel frames"),
    "oww_hey_jarvis": Model(OPENWAKEWORD, f"{OWW_MODELS}/hey_jarvis_v0.1.onnx",
                            "openWakeWord's hey_jarvis classifier (an If on its score)"),
    # Silero VAD takes 512-sample chunks at 16 kHz; its state's batch dim is unnamed, so it is bound by --dim
    "silero_vad": Model(SILERO_VAD, "silero_vad/data/silero_vad.onnx",
                        "Silero VAD (an If on the sample rate around its LSTM)",
                        ("--samples", "512", "--dim", "state_dim1=1")),
}


def package_dir(package: Package, cache: Path | None = None) -> Path:
    """`package` installed (without its dependencies) under the cache folder, installed first when missing."""
    return installed(package.name, package.version, package.marker, cache)


def graph_path(package: Path, name: str) -> Path:
    """The published ONNX file of one onnx-asr front end."""
    return package / ONNX_ASR_DATA / f"{name}.onnx"


def reference(package: Path, name: str) -> Any:
    """The publisher's NumPy implementation of the front end `name`."""
    if str(package) not in sys.path:
        sys.path.insert(0, str(package))
    module = importlib.import_module("onnx_asr.preprocessors.numpy_preprocessor")
    class_name, built_as = REFERENCES[name]
    return getattr(module, class_name)(built_as)


def test_signal() -> np.ndarray:
    """One second of a 440 Hz tone in noise at speech level, float in [-1, 1] as onnx-asr feeds it."""
    t = np.arange(SAMPLES) / SAMPLES
    noise = np.random.default_rng(0).standard_normal(SAMPLES)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)[None, :]


def reference_error(model: Path, ref: Any) -> tuple[float, bool]:
    """(max |graph - reference| of the features, whether the lengths are equal) on test_signal()."""
    x, lens = test_signal(), np.array([SAMPLES], np.int64)
    session = cpu_session(model, quiet=False)
    features, lengths = session.run(None, {"waveforms": x, "waveforms_lens": lens})[:2]
    ref_features, ref_lengths = ref(x.copy(), lens)
    return float(np.abs(features - ref_features).max()), bool(np.array_equal(lengths, ref_lengths))


def expected_parameters(ref: Any) -> dict[str, Any]:
    """The parameters the reference implementation uses, by the names explain gives them."""
    expected: dict[str, Any] = {"n_fft": ref._n_fft, "hop": ref._hop_length, "window length": ref._win_length,
                                "bands": ref._melscale_fbanks.shape[1]}
    coefficient = getattr(ref, "_preemph", getattr(ref, "_preemphasis_coefficient", 0.0))
    if coefficient:
        expected["coefficient"] = coefficient
    return expected


def recovered_parameters(explanation: dict[str, Any]) -> dict[str, Any]:
    """Every parameter explain recovered, by name (the first block naming it wins)."""
    found: dict[str, Any] = {}
    for block in explanation["blocks"]:
        for param in block["params"]:
            found.setdefault(param["name"], param["value"])
    return found


def _close(a: Any, b: Any) -> bool:
    """Equal, or equal as numbers to 1e-6."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return bool(a == b)


def cli_json(*args: str, allowed: Sequence[int] = (0,)) -> dict[str, Any]:
    """One toolkit command's --json output; a failure (an exit code not `allowed`, a traceback) raises with its
    last line."""
    done = subprocess.run([sys.executable, "-m", "toolkit", *args, "--json"], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode not in allowed:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ToolkitError(f"{' '.join(args[:1])} exited {done.returncode}: {last}")
    return json.loads(done.stdout)


@dataclass
class Outcome:
    """What the checks found on one front end: a line per check, and the problems."""

    name: str
    lines: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, label: str, run: Callable[[], tuple[str, list[str]]]) -> None:
        """Run one check; a ToolkitError is that check's problem, the others go on."""
        try:
            line, problems = run()
        except ToolkitError as error:
            line, problems = f"failed: {error}", [f"{label}: {error}"]
        self.lines[label] = line
        self.problems += problems


def check_reference(model: Path, ref: Any) -> tuple[str, list[str]]:
    """Whether the graph computes what its publisher's reference computes. A difference is the publisher's, not
    the toolkit's, so it is reported, not counted as a problem; unequal lengths would make the gate's length
    check meaningless, so they are."""
    error, lengths_equal = reference_error(model, ref)
    agreement = "agrees" if error <= REFERENCE_TOLERANCE else "DIFFERS"
    problems = [] if lengths_equal else ["reference: the graph's lengths differ from the reference's"]
    return f"{agreement}: max abs error {error:.2g}, lengths {'equal' if lengths_equal else 'DIFFER'}", problems


def check_analyze(model: Path, args: Sequence[str] = ("--samples", str(SAMPLES))) -> tuple[str, list[str]]:
    """analyze counts every node (a front end at one second of audio, another model at its own shape), and each
    heavy node's multiplications equal those from onnxruntime's real shapes (--against-onnxruntime)."""
    report = cli_json("analyze", str(model), *args, "--against-onnxruntime", allowed=(0, 1))
    mul, check = report["totals"]["dense"]["mul"], report["against_onnxruntime"]
    missing = [node["op"] if isinstance(node, dict) and "op" in node else str(node) for node in report["not_counted"]]
    problems = [] if report["complete"] else [f"analyze: not counted: {', '.join(missing)}"]
    differ = [f"{n['name']} ({n['analyze']:,} vs {n['onnxruntime']:,})" for n in check["nodes"]
              if n["onnxruntime"] is not None and not n["equal"]]
    problems += [f"analyze: heavy nodes differ from onnxruntime's shapes: {', '.join(differ)}"] if differ else []
    counted = sum(1 for node in report["nodes"] if node["counted"])
    state = "" if report["complete"] else f" (incomplete: {', '.join(missing)})"
    bound = "" if report["exact"] else (f" at most ({', '.join(report['depends_on_condition'])} decided by data; "
                                         f"at least {report['totals_at_least']['dense']['mul']:,})")
    heavy = f"{check['compared']} heavy node(s) {'equal to' if not differ else 'UNLIKE'} onnxruntime's"
    return f"{mul:,} mul{bound}, {counted} of {len(report['nodes'])} nodes counted{state}; {heavy}", problems


def check_explain(model: Path, expected: dict[str, Any]) -> tuple[str, list[str]]:
    """explain recovers the reference's parameters and names what it cannot recognize."""
    explanation = cli_json("explain", str(model))
    found = recovered_parameters(explanation)
    problems = [f"explain: {name} = {found.get(name, 'not recovered')}, the reference uses {value}"
                for name, value in expected.items() if not _close(found.get(name), value)]
    text = explanation["equation"]["text"] if explanation.get("equation") else ""
    if text.startswith("y[b,n] = x[b,n]"):
        problems.append("explain: the equation is the identity")
    unrecognized = [b for b in explanation["blocks"] if b["kind"] == "unrecognized"]
    kinds = ", ".join(b["kind"] for b in explanation["blocks"] if b["kind"] != "unrecognized")
    return f"{kinds or 'nothing recognized'}; {len(unrecognized)} unrecognized span(s)", problems


def check_profile(model: Path, work: Path, extra: Sequence[str],
                  audio_scale: str = "int16") -> tuple[str, list[str]]:
    """A quick host profile (with `extra` profile arguments), fed audio in the units the graph takes, exports an
    artifact whose variant passed the gate."""
    build, artifacts = work / "build", work / "artifacts"
    done = subprocess.run([sys.executable, "-m", "toolkit", "profile", str(model), "--target", "x86-host",
                           "--quick", "--audio-scale", audio_scale, "--build", str(build),
                           "--artifacts", str(artifacts), *extra],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"failed (exit {done.returncode})", [f"profile: exited {done.returncode}: {last}"]
    manifest = read_manifest(artifacts / "x86-host")
    if manifest is None:
        return "failed (nothing exported)", [f"profile: exited 0 but wrote no {manifest_path(artifacts / 'x86-host')}"]
    return exported(manifest)


def exported(manifest: Manifest) -> tuple[str, list[str]]:
    """What the manifest says was exported, against which budget; a variant that did not pass the gate is a
    problem."""
    choice, name = manifest.choice, manifest.model["variant"]
    audio = choice["inference_audio"]
    budget = f"budget {choice['policy']['max_chunk_ms']:g} ms per {audio['audio_ms']:g} ms {audio['kind']}"
    if not manifest.accuracy["gate"]["passed"]:
        return f"exported {name}, which FAILED the gate", [f"profile: the exported {name} did not pass the gate"]
    return f"exported {name} (gate passed; {budget})", []


def check_front_end(name: str, work: Path, profile: Sequence[str] | None) -> Outcome:
    """An onnx-asr front end: against its reference, analyze, explain's parameters, and the profile if asked
    (`profile`: its extra arguments)."""
    package = package_dir(ONNX_ASR)
    model, ref, outcome = graph_path(package, name), reference(package, name), Outcome(name)
    outcome.check("reference", lambda: check_reference(model, ref))
    outcome.check("analyze", lambda: check_analyze(model))
    outcome.check("explain", lambda: check_explain(model, expected_parameters(ref)))
    if profile is not None:
        # onnx-asr feeds its front ends float audio in [-1, 1] (onnx_asr's own loaders)
        outcome.check("profile", lambda: check_profile(model, work / name, profile, "unit"))
    return outcome


def check_model(name: str, work: Path, profile: Sequence[str] | None) -> Outcome:
    """A model of MODELS: analyze at its own arguments, explain, and the profile where it is a front end (and
    asked: `profile` is its extra arguments)."""
    spec, outcome = MODELS[name], Outcome(name)
    model = package_dir(spec.package) / spec.path
    outcome.lines["what"] = spec.what
    outcome.check("analyze", lambda: check_analyze(model, spec.analyze_args))
    outcome.check("explain", lambda: check_explain(model, dict(spec.expected)))
    if profile is not None and spec.profile:
        outcome.check("profile", lambda: check_profile(model, work / name, profile))
    return outcome


def run(names: Sequence[str], work: Path, profiled: set[str], extra: Sequence[str] = ()) -> list[Outcome]:
    """Every check on every named model, with progress on stderr; the quick profile (with `extra` profile
    arguments) on those in `profiled`."""
    outcomes = []
    for index, name in enumerate(names, 1):
        progress(f"frontends: [{index}/{len(names)}] {name}")
        check = check_front_end if name in REFERENCES else check_model
        outcomes.append(check(name, work, extra if name in profiled else None))
    return outcomes


def markdown(outcomes: Sequence[Outcome]) -> str:
    """The table the README quotes: one row per front end, one column per check."""
    labels = list(dict.fromkeys(label for o in outcomes for label in o.lines))
    rows = [f"| front end | {' | '.join(labels)} | problems |", "|---" * (len(labels) + 2) + "|"]
    for o in outcomes:
        cells = [o.lines.get(label, "-").replace("|", "/") for label in labels]
        rows.append(f"| {o.name} | {' | '.join(cells)} | {'; '.join(o.problems).replace('|', '/') or 'none'} |")
    return "\n".join(rows) + "\n"


def profiled_names(names: Sequence[str], args: argparse.Namespace) -> set[str]:
    """The models the quick profile runs on: none with --no-profile, the --profile ones, else all checked."""
    if args.no_profile:
        return set()
    return set(args.profile) if args.profile else set(names)


def main(argv: list[str] | None = None) -> int:
    """`python -m toolkit.frontends [--only NAME] [--profile NAME] [--no-profile]`: exit 1 when any check found a
    problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*sorted(REFERENCES), *MODELS]
    parser.add_argument("--only", action="append", choices=names, help="check this model only (repeatable)")
    parser.add_argument("--profile", action="append", choices=names, default=[],
                        help="run the quick profile on this model only (repeatable; default: every model checked "
                             "that is a front end)")
    parser.add_argument("--no-profile", action="store_true", help="skip the quick profiles (the slow part)")
    parser.add_argument("--no-openvino", action="store_true",
                        help="profile without the target's OpenVINO settings (profile --no-openvino)")
    parser.add_argument("--out", type=Path, default=Path("build/frontends"), help="folder for report.md")
    args = parser.parse_args(argv)
    checked = args.only or names
    try:
        outcomes = run(checked, args.out, profiled_names(checked, args), ["--no-openvino"] * args.no_openvino)
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = markdown(outcomes)
    write_text_atomic(args.out / "report.md", table)
    print(table)
    failed = [o.name for o in outcomes if o.problems]
    print(f"frontends: {len(outcomes) - len(failed)} of {len(outcomes)} models pass every check"
          + (f"; problems in {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
