"""The toolkit on front ends it did not write: onnx-asr 0.12.0's published log-mel graphs (`make frontends`).

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

The package is fetched with pip into the toolkit's cache folder (never into the repository); tests never
download, and build their own small graphs instead.
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
import onnxruntime as ort

from toolkit.errors import ToolkitError
from toolkit.files import write_text_atomic
from toolkit.profiling.emulate import cache_dir

PACKAGE = "onnx-asr"
VERSION = "0.12.0"
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


def package_dir(cache: Path | None = None) -> Path:
    """onnx-asr installed (without its dependencies) under the cache folder, installed first when missing."""
    target = (cache or cache_dir()) / f"{PACKAGE}-{VERSION}"
    if not (target / "onnx_asr" / "preprocessors" / "numpy_preprocessor.py").is_file():
        print(f"frontends: pip install {PACKAGE}=={VERSION} into {target}", file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               str(target), f"{PACKAGE}=={VERSION}"], check=False)
        if done.returncode != 0:
            raise ToolkitError(f"pip could not install {PACKAGE}=={VERSION} (exit {done.returncode}); its messages "
                               "are above")
    return target


def graph_path(package: Path, name: str) -> Path:
    """The published ONNX file of one front end."""
    return package / "onnx_asr" / "preprocessors" / "data" / f"{name}.onnx"


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
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
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


def cli_json(*args: str) -> dict[str, Any]:
    """One toolkit command's --json output; a failure (exit code, traceback) raises with its last line."""
    done = subprocess.run([sys.executable, "-m", "toolkit", *args, "--json"], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
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


def check_analyze(model: Path) -> tuple[str, list[str]]:
    """analyze counts every node at one second of audio."""
    report = cli_json("analyze", str(model), "--samples", str(SAMPLES))
    mul = report["totals"]["dense"]["mul"]
    missing = [node["op"] if isinstance(node, dict) and "op" in node else str(node) for node in report["not_counted"]]
    problems = [] if report["complete"] else [f"analyze: not counted: {', '.join(missing)}"]
    return f"{mul:,} mul{'' if report['complete'] else ' (incomplete: ' + ', '.join(missing) + ')'}", problems


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


def check_profile(model: Path, work: Path) -> tuple[str, list[str]]:
    """A quick host profile exports an artifact whose variant passed the gate."""
    build, artifacts = work / "build", work / "artifacts"
    done = subprocess.run([sys.executable, "-m", "toolkit", "profile", str(model), "--target", "x86-host",
                           "--quick", "--build", str(build), "--artifacts", str(artifacts)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"failed (exit {done.returncode})", [f"profile: exited {done.returncode}: {last}"]
    manifest = json.loads((artifacts / "x86-host" / "manifest.json").read_text(encoding="utf-8"))
    chosen = manifest.get("variant", {})
    name = chosen.get("name", "?") if isinstance(chosen, dict) else str(chosen)
    return f"exported {name}", []


def run(names: Sequence[str], work: Path, profile: bool) -> list[Outcome]:
    """Every check on every named front end, with progress on stderr."""
    package = package_dir()
    outcomes = []
    for index, name in enumerate(names, 1):
        print(f"frontends: [{index}/{len(names)}] {name}", file=sys.stderr)
        model, ref, outcome = graph_path(package, name), reference(package, name), Outcome(name)
        outcome.check("reference", lambda m=model, r=ref: check_reference(m, r))
        outcome.check("analyze", lambda m=model: check_analyze(m))
        outcome.check("explain", lambda m=model, r=ref: check_explain(m, expected_parameters(r)))
        if profile:
            outcome.check("profile", lambda m=model, n=name: check_profile(m, work / n))
        outcomes.append(outcome)
    return outcomes


def markdown(outcomes: Sequence[Outcome]) -> str:
    """The table the README quotes: one row per front end, one column per check."""
    labels = list(dict.fromkeys(label for o in outcomes for label in o.lines))
    rows = [f"| front end | {' | '.join(labels)} | problems |", "|---" * (len(labels) + 2) + "|"]
    for o in outcomes:
        cells = [o.lines.get(label, "").replace("|", "/") for label in labels]
        rows.append(f"| {o.name} | {' | '.join(cells)} | {'; '.join(o.problems).replace('|', '/') or 'none'} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m toolkit.frontends [--only NAME] [--no-profile]`: exit 1 when any check found a problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(REFERENCES), help="check this front end only")
    parser.add_argument("--no-profile", action="store_true", help="skip the quick profiles (the slow part)")
    parser.add_argument("--out", type=Path, default=Path("build/frontends"), help="folder for report.md")
    args = parser.parse_args(argv)
    try:
        outcomes = run(args.only or sorted(REFERENCES), args.out, not args.no_profile)
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = markdown(outcomes)
    write_text_atomic(args.out / "report.md", table)
    print(table)
    failed = [o.name for o in outcomes if o.problems]
    print(f"frontends: {len(outcomes) - len(failed)} of {len(outcomes)} front ends pass every check"
          + (f"; problems in {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
