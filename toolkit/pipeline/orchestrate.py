"""`make profile TARGET=x`: variants -> accuracy gate -> analytic counts -> profile -> compare -> select -> export.

    from toolkit.pipeline.orchestrate import Settings, run_pipeline
    run_pipeline(Settings(target="x86-host", model=None))     # the built-in model; artifacts/x86-host/

Each stage writes its result file atomically under build/<target>/ and is then recorded in pipeline.json
(toolkit.pipeline.ledger); with `resume` a finished stage of the same run is skipped, and an unfinished profile
stage continues the runner's own result file (`runner.py --resume`), so Ctrl-C keeps every finished result.
Where the measurements come from (this host, a board over SSH, QEMU, an imported file) is one table in
toolkit.pipeline.sources. Progress goes to stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

import toolkit
from toolkit import accuracy
from toolkit.errors import ToolkitError
from toolkit.files import Json, sha256_file
from toolkit.folder import BuildFolder
from toolkit.load import AUDIO_SCALES, FeedPlan, feed_plan, load_model, parse_inputs
from toolkit.pipeline import stages
from toolkit.pipeline.ledger import Ledger, Stopwatch, run_identity
from toolkit.pipeline.sources import choose_source
from toolkit.targets import Target, load_target
from toolkit.terminal import progress
from toolkit.variants import VARIANTS

BUILD_ROOT = Path("build")
ARTIFACTS_ROOT = Path("artifacts")


@dataclass(frozen=True)
class Settings:
    """What the user asked for: the run's inputs and where its files go."""

    target: str
    model: str | None = None
    variants: tuple[str, ...] = ()
    quick: bool = False
    resume: bool = False
    board: str | None = None
    imported: str | None = None
    emulate: bool = False
    count_host: bool = False  # count this host's instructions under qemu-x86_64 to hold predictions against it
    inputs: tuple[str, ...] = ()  # --input NAME=VALUE: what a graph input other than the audio is fed
    audio_scale: str = "int16"  # --audio-scale: the units the audio input takes (toolkit.load.AUDIO_SCALES)
    openvino: bool = True  # --no-openvino leaves the target's [openvino] settings out
    build_root: Path = BUILD_ROOT
    artifacts_root: Path = ARTIFACTS_ROOT


@dataclass
class Run:
    """One pipeline run: settings resolved into a target, a model, a source and folders."""

    settings: Settings
    target: Target
    model: onnx.ModelProto
    source: str
    folder: Path
    artifacts: Path
    variant_names: list[str]
    plan: FeedPlan  # what every graph input is fed, decided once (toolkit.load.feed_plan)
    ledger: Ledger = field(init=False)

    def path(self, name: str) -> Path:
        """A folder of this run's build folder (its variant files, the bench bundle)."""
        return self.folder / name

    @property
    def files(self) -> BuildFolder:
        """This run's stage files."""
        return BuildFolder(self.folder)

    @property
    def full_scale(self) -> float:
        """Full scale in the units the audio input takes: the signals and calibration audio are fed at it."""
        return AUDIO_SCALES[self.settings.audio_scale]


Stage = Callable[[Run], None]

# name -> what it does; run in this order, each one reading the files of the ones before it
STAGES: dict[str, tuple[str, Stage]] = {
    "variants": ("build every variant of the input model", stages.build),
    "accuracy": ("every built variant on the signal set against the original; the gate", stages.gate),
    "counts": ("exact analytic counts of every built ONNX variant at each workload", stages.count),
    "profile": ("bundle the variants that passed the gate and measure them", stages.profile),
    "compare": ("measured against analytic: achieved mults/s, node shares, rank contradictions", stages.compare),
    "select": ("the target's policy picks one variant and configuration", stages.select),
    "export": ("artifacts/<target>/: model, manifest.json, report.md", stages.export),
}


def variant_names(requested: tuple[str, ...]) -> list[str]:
    """The variants to build: `original` first (every error is measured against it), then the requested ones."""
    unknown = sorted(set(requested) - set(VARIANTS))
    if unknown:
        raise ToolkitError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    chosen = [name for name in (requested or VARIANTS) if name != "original"]
    return ["original", *dict.fromkeys(chosen)]


def identity(settings: Settings, target: Target, names: list[str], source: str) -> Json:
    """Everything that decides this run's results; its hash is the run id pipeline.json checks on --resume."""
    model = Path(settings.model) if settings.model else None
    return {
        "model": {"path": str(model) if model else None, "sha256": sha256_file(model) if model else None,
                  "builtin": model is None},
        "target": {"name": target.name, "file": str(target.path),
                   "sha256": sha256_file(target.path)},
        "variants": names,
        "quick": settings.quick,
        "source": source,
        "board": settings.board,
        "imported": settings.imported,
        "count_host": settings.count_host,
        "inputs": list(settings.inputs),
        "audio_scale": settings.audio_scale,
        "openvino": settings.openvino,
        "signals": {"samples": stages.SIGNAL_SAMPLES, "count": len(accuracy.SIGNALS)},
        "toolkit": toolkit.__version__,
    }


def prepare(settings: Settings) -> Run:
    """Resolve the settings; opens (or with resume, reopens) the ledger."""
    target = load_target(settings.target)
    if not settings.openvino:
        target = replace(target, openvino=None)
    imported = Path(settings.imported) if settings.imported else None
    source = choose_source(target, settings.board, imported, settings.emulate)
    names = variant_names(settings.variants)
    model = load_model(settings.model)
    plan = feed_plan(model, parse_inputs(settings.inputs))
    run = Run(settings, target, model, source, settings.build_root / target.name,
              settings.artifacts_root / target.name, names, plan)
    inputs = identity(settings, target, names, source)
    run.folder.mkdir(parents=True, exist_ok=True)
    run.ledger = Ledger.open(run.folder, run_identity(inputs), inputs, settings.resume)
    return run


def run_pipeline(settings: Settings, only: tuple[str, ...] = ()) -> Run:
    """Run every stage (or `only` these) in order; finished stages of a resumed run are skipped."""
    run = prepare(settings)
    progress(f"[profile] target {run.target.name} ({run.target.description}); results from {run.source}; "
             f"build folder {run.folder}")
    for index, (name, (what, stage)) in enumerate(STAGES.items(), 1):
        head = f"[profile {index}/{len(STAGES)}] {name}"
        if only and name not in only:
            continue
        if settings.resume and run.ledger.done(name):
            progress(f"{head}: finished earlier in this run, skipped (--resume)")
            continue
        progress(f"{head}: {what}")
        with Stopwatch() as watch:
            stage(run)
        run.ledger.finish(name, watch.seconds)
        progress(f"{head}: done in {watch.seconds:.1f} s")
    progress(f"[profile] stage wall time {run.ledger.seconds:.1f} s in total; results in {run.folder}, "
             f"artifacts in {run.artifacts}")
    return run
