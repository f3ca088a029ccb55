"""Fixtures of the pytest-benchmark suite: the variants built once per session from the built-in model.

BENCH_QUICK=1 (CI) measures four variants on the streaming chunk and one second with 20 rounds each; without it,
every exact variant with 200 rounds. Nothing here is a unit test: `make bench` runs it and writes its JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.melgraph import default_model
from toolkit.variants import build_variants

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
QUICK_VARIANTS = ("original", "dft-fused", "stft-op", "tflite")
FULL_VARIANTS = ("original", "simplified", "dft-400tap", "dft-fused", "stft-op", "mel-sparse",
                 "dft-400tap-fused-mel-sparse", "tflite")
VARIANTS = QUICK_VARIANTS if QUICK else FULL_VARIANTS
ROUNDS = 20 if QUICK else 200
WARMUP_ROUNDS = 2 if QUICK else 10


@pytest.fixture(scope="session")
def variants_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmarked variants' files, built once."""
    folder = tmp_path_factory.mktemp("bench-variants")
    built = build_variants(default_model(), folder, names=list(VARIANTS))
    failed = [f"{v.name}: {v.reason}" for v in built if v.status != "built"]
    if failed:
        pytest.fail(f"variants failed to build: {'; '.join(failed)}")
    return folder
