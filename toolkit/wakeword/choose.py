"""The choice per stage under the pipeline's policy, the pipeline gate, and how many wake words fit a CPU budget.

Each stage offers its gated variants ranked by their cheapest measured configuration (near-ties broken by fewer
exact multiplications, then the original: toolkit.wakeword.variants.candidates); combinations are tried best
first, and the first whose classifier scores stay within max_abs_score_error of the original pipeline's, with
no detection flipping at the threshold, over the signal set, is chosen. The original
pipeline is always among them, so a choice always exists.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.wakeword.spec import Pipeline, Policy
from toolkit.wakeword.stream import Config, classifier_files
from toolkit.wakeword.variants import StageVariant, Trace, candidate_config, combinations, trace


def pipeline_gate(original: np.ndarray, chosen: np.ndarray, policy: Policy) -> dict[str, Any]:
    """Max |score difference| and detections flipped at the threshold, chunk by chunk and model by model."""
    above = original >= policy.threshold
    flips = int(np.count_nonzero(above != (chosen >= policy.threshold)))
    error = float(np.abs(original - chosen).max())
    return {"max_abs_score_error": error, "tolerance": policy.max_abs_score_error, "threshold": policy.threshold,
            "flips": flips, "original_detections": int(np.count_nonzero(above)), "scores": int(original.size),
            "passed": error <= policy.max_abs_score_error and flips == 0}


def combo_files(combo: dict[str, StageVariant]) -> dict[str, list[Path]]:
    return {stage: variant.files for stage, variant in combo.items()}


def combo_configs(combo: dict[str, StageVariant]) -> dict[str, Config]:
    """Each stage's cheapest measured engine configuration."""
    return {stage: candidate_config(variant)["config"] for stage, variant in combo.items()}


def choose(pipeline: Pipeline, per_stage: dict[str, list[StageVariant]], signals: dict[str, np.ndarray],
           original: Trace) -> tuple[dict[str, StageVariant], dict[str, Any], list[dict[str, Any]]]:
    """The first combination (cheapest first) passing the pipeline gate, its gate, and every combination tried."""
    tried = []
    for combo in combinations(per_stage):
        scores = trace(pipeline, combo_files(combo), signals, combo_configs(combo)).scores
        gate = pipeline_gate(original.scores, scores, pipeline.policy)
        tried.append({"variants": {s: v.name for s, v in combo.items()}, **gate})
        if gate["passed"]:
            return combo, gate, tried
    raise ToolkitError("no combination of the stages' variants passes the pipeline gate, not even the original "
                       f"(every stage's original must be measurable on this target); tried {len(tried)}")


def mults_per_chunk(pipeline: Pipeline, combo: dict[str, StageVariant], n: int) -> dict[str, Any]:
    """The combination's exact multiplications per chunk with N classifiers (None when a file is not counted;
    `at_most` when an If the data decides is counted at its dearer branch)."""
    total, at_most = 0, False
    for stage in pipeline.stages:
        counts = combo[stage.name].counts or []
        chosen = classifier_files(counts, n) if stage.fanout else counts
        if not chosen or any(c["mul"] is None for c in chosen):
            return {"mul": None, "at_most": False}
        total += sum(c["mul"] for c in chosen)
        at_most = at_most or any(c["at_most"] for c in chosen)
    return {"mul": total, "at_most": at_most}


def fit(measured: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """How many classifiers fit the budget: the largest measured N within it, and a straight line through the
    measured shares (share = base + N x per classifier, least squares) solved for the budget."""
    counts = np.array([m["wake_words"] for m in measured], dtype=float)
    shares = np.array([m["cpu_share"] for m in measured])
    per_classifier, base = np.polyfit(counts, shares, 1) if len(counts) > 1 else (0.0, float(shares[0]))
    within = [int(n) for n, share in zip(counts, shares, strict=True) if share <= budget]
    estimate = math.floor((budget - base) / per_classifier) if per_classifier > 0 and budget > base else None
    return {"budget": budget, "largest_measured_within": max(within) if within else 0,
            "base_share": float(base), "per_classifier_share": float(per_classifier),
            "estimated_within": estimate,
            "method": "largest N of those in the table with cpu_share <= budget; estimate = floor((budget - base) / "
                      "per_classifier) from a least-squares line through their (N, cpu_share)"}
