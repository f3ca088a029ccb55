"""`python -m toolkit.wakeword.reference`: the executor's scores against openWakeWord's own Model.predict.

Both run the package's own model files (installed with pip --no-deps into the toolkit's cache, as the profile
does) on the accuracy signal set, chunk by chunk; the largest |score difference| is reported from the chunk
where every buffer holds real data on (toolkit.wakeword.stream.settle_chunks), since the two start their
buffers differently. openWakeWord's package imports scipy and scikit-learn for custom verifier training only;
they are not installed here, so empty stand-ins take their place in sys.modules for this check. Never run by the
tests: it needs the package from PyPI.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.accuracy import signal_set
from toolkit.errors import ToolkitError
from toolkit.wakeword.models import package_dir
from toolkit.wakeword.spec import Pipeline, load_pipeline
from toolkit.wakeword.stream import chunks_of, open_chain, scores, settle_chunks

UNUSED_IMPORTS = ("scipy", "scipy.signal", "sklearn", "sklearn.linear_model", "sklearn.pipeline",
                  "sklearn.preprocessing", "tqdm", "requests")


class _Unused(types.ModuleType):
    """A module whose every attribute is another stand-in: enough for imports that are never called."""

    def __getattr__(self, name: str) -> Any:
        return _Unused(f"{self.__name__}.{name}")


def _openwakeword_model(site: Path) -> Any:
    """openWakeWord's Model class from the installed package."""
    for name in UNUSED_IMPORTS:
        sys.modules.setdefault(name, _Unused(name))
    sys.path.insert(0, str(site))
    from openwakeword.model import Model  # from the cache folder, after the stand-ins

    return Model


def compare(pipeline: Pipeline, models_dir: Path, seconds: float = 4.0) -> dict[str, Any]:
    """Largest |score difference| per signal after the settle chunks, with every classifier of the pipeline
    (one with a package)."""
    assert pipeline.package is not None  # main checked it
    site = models_dir.parents[len(Path(pipeline.package.models_dir).parts) - 1]
    files = {s.name: [models_dir / f for f in s.files] for s in pipeline.stages}
    mel, embedding, classifier = (files[s.name] for s in pipeline.stages)
    model = _openwakeword_model(site)(wakeword_models=[str(f) for f in classifier], inference_framework="onnx",
                                      melspec_model_path=str(mel[0]), embedding_model_path=str(embedding[0]))
    settle = settle_chunks(pipeline)
    differences = {}
    for name, audio in signal_set(round(seconds * pipeline.sample_rate)).items():
        ours = scores(open_chain(pipeline, files, {}), audio, pipeline)
        model.reset()
        theirs = np.array([list(model.predict(chunk.astype(np.int16)).values())
                           for chunk in chunks_of(audio, pipeline)])
        differences[name] = float(np.abs(ours[settle:] - theirs[settle:]).max())
    return {"settle_chunks": settle, "max_abs_score_difference": differences, "worst": max(differences.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.wakeword.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="openwakeword")
    args = parser.parse_args(argv)
    try:
        pipeline = load_pipeline(args.pipeline)
        if pipeline.package is None or len(pipeline.stages) != 3:
            raise ToolkitError(f"pipeline {pipeline.name!r}: the reference is openWakeWord's 3-stage Model")
        result = compare(pipeline, package_dir(pipeline.package))
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, difference in result["max_abs_score_difference"].items():
        print(f"{name}: max |score difference| {difference:.3g} after {result['settle_chunks']} chunks")
    print(f"worst: {result['worst']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
