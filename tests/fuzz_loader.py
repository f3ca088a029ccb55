"""Fuzz target for the model loader (atheris, coverage-guided): any bytes as an .onnx file.

The loader's contract: a checked ModelProto or a ToolkitError, nothing else, whatever the file holds.
Any other exception is a finding; atheris stops and saves the input. Not part of CI (it runs until stopped);
`make fuzz` runs it for FUZZ_SECONDS from a seed corpus of valid, truncated and mutated mel graphs.

    python tests/fuzz_loader.py CORPUS_DIR -max_total_time=60
    python tests/fuzz_loader.py build/fuzz/crash-...        # replay a finding
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from toolkit.errors import ToolkitError
    from toolkit.load import load_model
    from toolkit.melgraph import MelParams, build_mel_model

FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-loader-"))
MODEL = FOLDER / "model.onnx"
# a small mel graph: valid seeds, and a cheap analysis-free load for each input
SEED = build_mel_model(MelParams(n_fft=32, win_length=24, hop=8, n_mels=4, sample_rate=1600, fmin=0.0,
                                 fmax=800.0)).SerializeToString()


def seed_corpus(folder: Path) -> None:
    """The whole small graph, cuts of it, and a few other formats, so the fuzzer starts near valid models."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {"whole": SEED, "half": SEED[: len(SEED) // 2], "head": SEED[:64], "tflite": b"\x1c\0\0\0TFL3" + bytes(8)}
    for name, data in seeds.items():
        (folder / name).write_bytes(data)


def one_input(data: bytes) -> None:
    """Load `data` as a model file: anything but success or ToolkitError is a finding."""
    MODEL.write_bytes(data)
    try:
        load_model(MODEL)
    except ToolkitError as error:
        if "\n" in str(error):
            raise AssertionError(f"a multi-line error: {error!r}") from None


def main() -> None:
    corpus = next((Path(a) for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus is not None and not corpus.is_file() and not any(corpus.glob("*")):  # a file: replay one input
        seed_corpus(corpus)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
