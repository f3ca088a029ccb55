#!/usr/bin/env python3
"""Stream a wake-word pipeline on a board: `python3 board.py JOB_DIR --out RESULT.json`.

Shipped by toolkit.wakeword.remote with runner.py and stream.py beside it, and imports only those, numpy and the
standard library (onnxruntime through the runner), never the toolkit: the board runs the host's own executor
(stream.Chain) and streaming loop (runner.paced), from the very same files.

job.json (written by toolkit.wakeword.remote):
    format_version  1
    pipeline        name (informational)
    cadence         stream.Cadence.to_json(): sample_rate, chunk_samples, stages [{name, window, input_shape, rows,
                    row_size, scale, offset, fill, fanout}]
    stages          [{"key", "stage", "variant", "files" (relative to JOB_DIR), "config" (the runner's), "chunks"}]:
                    each stage variant streamed alone at the cadence (stream.stream_stage) on its inputs
    inputs          npz file (relative): one array per stage name, [chunks, *input_shape], what the original
                    pipeline fed that stage on the host, fed in order
    sweeps          [{"label", "files" {stage: [files]}, "configs" {stage: config}, "counts" [N], "seconds"}]:
                    the whole chain with N classifiers for each N (stream.sweep)

RESULT.json (rewritten atomically after every finished job, so an interrupted run keeps what finished):
    format_version, complete, platform (runner.platform_info), stages [{"key", "stage", "variant", measurement}],
    sweeps {label: [one row per N]}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING or __package__:  # toolkit.wakeword.board, inside the toolkit (the host reads FORMAT_VERSION)
    from toolkit.profiling import runner
    from toolkit.wakeword import stream
else:  # on a board, beside the runner.py and stream.py shipped with it
    import runner
    import stream

Json = dict[str, Any]
FORMAT_VERSION = 1


def stage_job(folder: Path, cadence: stream.Cadence, job: Json, inputs: dict[str, np.ndarray]) -> Json:
    """One stage variant alone at the cadence, in one configuration."""
    cut = next(c for c in cadence.stages if c.name == job["stage"])
    files = [folder / name for name in job["files"]]
    measured = stream.stream_stage(cut, files, list(inputs[job["stage"]]), job["config"], cadence.rate_hz,
                                   int(job["chunks"]))
    return {"key": job["key"], "stage": job["stage"], "variant": job["variant"], **measured}


def sweep_job(folder: Path, cadence: stream.Cadence, job: Json) -> list[Json]:
    """One chain with N classifiers for each N."""
    files = {stage: [folder / name for name in names] for stage, names in job["files"].items()}
    return stream.sweep(cadence, files, job["configs"], float(job["seconds"]), job["counts"])


def save(out: Path, result: Json, complete: bool = False) -> None:
    """Rewrite RESULT.json atomically."""
    result["complete"] = complete
    runner.write_atomic(out, lambda handle: json.dump(result, handle, indent=1))


def read_job(folder: Path) -> Json:
    """job.json, refused in one line when it is not one this script reads."""
    path = folder / "job.json"
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise runner.BundleError(f"{path}: not a readable job file: {error}") from None
    if job.get("format_version") != FORMAT_VERSION:
        raise runner.BundleError(f"{path}: format_version {job.get('format_version')!r}, this script reads "
                                 f"{FORMAT_VERSION}")
    return job


def run(folder: Path, out: Path) -> Json:
    """Every stage job, then every sweep, recording after each."""
    job = read_job(folder)
    missing = runner.engine_missing("onnxruntime")
    if missing:
        raise runner.BundleError(missing)
    cadence = stream.Cadence.from_json(job["cadence"])
    with np.load(folder / job["inputs"]) as npz:
        inputs = {name: npz[name] for name in npz.files}
    result: Json = {"format_version": FORMAT_VERSION, "complete": False, "platform": runner.platform_info(),
                    "stages": [], "sweeps": {}}
    for index, stage in enumerate(job["stages"], 1):
        result["stages"].append(stage_job(folder, cadence, stage, inputs))
        save(out, result)
        runner.progress(f"[{index}/{len(job['stages'])}] {stage['key']}: {result['stages'][-1]['status']}")
    for sweep in job["sweeps"]:
        result["sweeps"][sweep["label"]] = sweep_job(folder, cadence, sweep)
        save(out, result)
        runner.progress(f"{sweep['label']} chain with N = {', '.join(map(str, sweep['counts']))}: done")
    save(out, result, complete=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; a bad job or a missing engine is one line on stderr and exit 2."""
    parser = argparse.ArgumentParser(description="Stream a wake-word pipeline job; see the module docstring.")
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="RESULT.json to write")
    args = parser.parse_args(argv)
    try:
        run(args.job_dir, args.out)
    except runner.BundleError as error:  # stream's errors are the runner's BundleError on a board
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
