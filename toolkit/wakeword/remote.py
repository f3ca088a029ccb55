"""A board target with --host: the pipeline streamed at the real rate on the board, over SSH.

Two trips through toolkit.profiling.ssh (host key checked, arguments quoted, files as tar streams): first every
gated variant of every stage alone at the cadence per engine configuration of the target's matrix, fed what the
original pipeline fed that stage here (for the choice, made here as on a host target); then the original and the
chosen chain with N = 1, 2, 4, 8 classifiers. Each trip sends one folder: board.py with runner.py and stream.py
beside it (the board runs this host's executor from the same files, with its own numpy and onnxruntime), the
model files, job.json (the pipeline's Cadence as plain JSON, the jobs) and inputs.npz; each trip's RESULT.json
is kept at build/<pipeline>/<target>/board/<trip>.json as soon as it is fetched. Every number is `measured`,
on that board.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.files import write_bytes_atomic
from toolkit.profiling import runner, ssh
from toolkit.targets import Target
from toolkit.terminal import progress
from toolkit.wakeword import board as board_script
from toolkit.wakeword import stream
from toolkit.wakeword.spec import Pipeline, Stage
from toolkit.wakeword.stream import Config
from toolkit.wakeword.variants import StageVariant, Trace, stage_configs

Json = dict[str, Any]
SCRIPTS = tuple(Path(module.__file__ or "") for module in (runner, stream, board_script))
RESULT = "result.json"


def check(board: ssh.Board, target: Target) -> Json:
    """The board check (toolkit.profiling.ssh), and onnxruntime importable there: the executor needs it."""
    facts = ssh.check_board(board, target)
    if facts["packages"]["onnxruntime"] is None:
        raise ToolkitError(f"{board.destination}: {board.python} has no onnxruntime, which the pipeline's executor "
                           f"needs there (onnxruntime==1.32.0 wheel: {facts['installable']['onnxruntime==1.32.0']})")
    return facts


class JobFolder:
    """The folder one trip sends: the three scripts, each model file once under models/, job.json, inputs.npz."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "models").mkdir(parents=True)
        for script in SCRIPTS:
            shutil.copyfile(script, folder / script.name)
        self.folder = folder
        self.names: dict[Path, str] = {}

    def files(self, paths: list[Path]) -> list[str]:
        """Each file copied in once; its name relative to the folder."""
        for path in paths:
            if path not in self.names:
                self.names[path] = f"models/{len(self.names)}-{path.name}"
                shutil.copyfile(path, self.folder / self.names[path])
        return [self.names[path] for path in paths]

    def write(self, pipeline: Pipeline, stages: list[Json], sweeps: list[Json],
              inputs: dict[str, np.ndarray]) -> Path:
        """job.json and inputs.npz; the folder."""
        np.savez(self.folder / "inputs.npz", **inputs)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle, a keyword NumPy < 2.1 lacks
        job = {"format_version": board_script.FORMAT_VERSION, "pipeline": pipeline.name,
               "cadence": pipeline.to_json(), "stages": stages, "inputs": "inputs.npz", "sweeps": sweeps}
        (self.folder / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
        return self.folder


def run_trip(board: ssh.Board, folder: Path, kept: Path) -> Json:
    """Send the folder, run board.py there with the board's Python, fetch its RESULT.json and keep it."""
    progress(f"ssh: streaming {folder.name} on {board.destination}")
    files = ssh.run_copied(board, folder, lambda remote_dir: [
        board.python, f"{remote_dir}/board.py", remote_dir, "--out", f"{remote_dir}/{RESULT}"], [RESULT])
    write_bytes_atomic(kept, files[RESULT])
    return json.loads(files[RESULT])


def _key(stage: Stage, variant: StageVariant, config: Config) -> str:
    return "|".join([stage.name, runner.run_key("stream", variant.name, config)])


def measure_stages(board: ssh.Board, pipeline: Pipeline, target: Target, gated: list[tuple[StageVariant, Stage]],
                   recorded: Trace, seconds: float, build: Path) -> list[list[Json]]:
    """Every gated variant alone on the board per configuration of the target's matrix: its measured entries
    (as toolkit.wakeword.variants.measure_stage's), in the order given."""
    configs = stage_configs(target)
    chunks = stream.stage_chunks(pipeline.rate_hz, seconds)
    folder = JobFolder(build / "board" / "stages")
    jobs = [{"key": _key(stage, variant, config), "stage": stage.name, "variant": variant.name,
             "files": folder.files(variant.files), "config": config, "chunks": chunks}
            for variant, stage in gated for config in configs]
    inputs = {s.name: np.stack(recorded.inputs[s.name][:max(chunks, 3)]) for s in pipeline.stages}
    result = run_trip(board, folder.write(pipeline, jobs, [], inputs), build / "board" / "stages.json")
    by_key = {entry.pop("key"): entry for entry in result["stages"]}
    return [[{k: v for k, v in by_key[_key(stage, variant, c)].items() if k not in ("stage", "variant")}
             for c in configs] for variant, stage in gated]


def sweep_chains(board: ssh.Board, pipeline: Pipeline, chains: dict[str, dict[str, StageVariant]],
                 configs: dict[str, dict[str, Config]], seconds: float,
                 build: Path) -> tuple[dict[str, list[Json]], Json]:
    """Each labelled chain (a variant per stage, its configurations) on the board with N = 1, 2, 4, 8; the
    board's platform (toolkit.profiling.runner.platform_info) with them."""
    folder = JobFolder(build / "board" / "sweeps")
    sweeps = [{"label": label, "files": {s: folder.files(v.files) for s, v in combo.items()},
               "configs": configs[label], "counts": list(stream.WAKE_WORD_COUNTS), "seconds": seconds}
              for label, combo in chains.items()]
    result = run_trip(board, folder.write(pipeline, [], sweeps, {}), build / "board" / "sweeps.json")
    return result["sweeps"], result["platform"]
