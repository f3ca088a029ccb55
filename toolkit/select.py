"""The target's [policy] picks one variant + engine/provider + threads (+ spinning, optimization level, precision).

Candidates are the finished runs on the streaming chunk (1 x 1760 samples, openWakeWord's 80 ms step) or, on a
board that was only emulated, each predicted latency of a variant in one engine setting (labelled `predicted`;
emulated wall time is never a candidate). A candidate is eligible when every check in CHECKS passes: its variant
passed the accuracy gate on this host and its outputs where the runs ran, made in its engine setting (an OpenVINO
precision is gated like a variant: runner.output_name), stay within the dB tolerances, its latency is a
measurement of the target or a prediction for it, its median is within the real-time budget, its file within the
size limit, and its measured CPU share of one core while streaming at 12.5 chunks/s within max_stream_cpu_share.

The budget is realtime_budget x the audio one inference covers (counts.json `inference_audio`,
toolkit/profiling/workload.py): the 80 ms streaming step, or the whole window of a graph that pads every input to a
fixed length (Whisper's 30 s), which is run once per window. For such a graph the CPU share is the share at that
cadence: the stream's CPU time per inference / the window.

The fastest eligible median wins, except that candidates within the measurement spread of the fastest (their
medians differ by less than the larger p90 - median of the two) are near-ties: among them the lower streaming
CPU share wins, then fewer threads. Where CPU share cannot be measured (emulation) the choice says so and takes
1 thread with spinning off. A variant over tolerance is never a candidate. The original's best configuration is
always reported beside the choice (never an engine setting whose outputs there fail the tolerances: that one
computes other numbers than the original's).

    python -m toolkit select --target x86-host      # reads build/x86-host/, writes choice.json, prints the choice
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from toolkit.configs import STREAM_FIELDS, engine_words, same
from toolkit.evidence import CHOOSABLE, EMULATED_TIME, PREDICTED
from toolkit.files import Json
from toolkit.folder import BuildFolder
from toolkit.profiling.runner import CONFIG_FIELDS, output_name
from toolkit.profiling.workload import STEP, streaming_step
from toolkit.records import (
    Candidate,
    Choice,
    Excluded,
    PlatformFile,
    ProfileFile,
    Rejected,
    RunnerUp,
    StreamRecord,
    VariantRecord,
    Verdict,
    measured,
)
from toolkit.targets import CHUNK_MS, Policy, Target, load_target

STREAM = "stream"
SECOND = "second"
RUNNERS_UP_SAME_VARIANT = 2
RULE = ("lowest median on the streaming chunk within realtime_budget x the audio one inference covers; near-ties "
        "(within the larger p90 - median): lower streaming CPU share, then fewer threads; over max_stream_cpu_share "
        "never chosen")


@dataclass(frozen=True)
class Inputs:
    """What the checks read: verdicts per variant, the policy, the latency evidence."""

    accuracy: dict[str, Verdict]
    platform: dict[str, Verdict]  # platform.json's: the outputs made where the runs ran, by runner.output_name
    policy: Policy
    latency_evidence: str
    audio: Json


def _gate(c: Candidate, i: Inputs) -> str | None:
    verdict = i.accuracy.get(c.variant)
    if verdict is not None and verdict.passed:
        return None
    return "failed the accuracy gate: " + "; ".join(verdict.reasons if verdict else [])


def _platform(c: Candidate, i: Inputs) -> str | None:
    verdict = i.platform.get(c.outputs)
    if verdict is not None and verdict.passed:
        return None
    reasons = "; ".join(verdict.reasons if verdict else ["no outputs"])
    setting = "" if c.outputs == c.variant else f"{c.outputs}: "
    return f"its outputs where it ran fail the dB tolerances: {setting}{reasons}"


def _evidence(c: Candidate, i: Inputs) -> str | None:
    return None if c.evidence in CHOOSABLE else f"its latency is {c.evidence}, not a measurement of the target"


def _budget(c: Candidate, i: Inputs) -> str | None:
    limit = i.policy.budget_ms(c.audio_ms)
    return None if c.median_ms <= limit else (f"median {c.median_ms:.3f} ms > budget {limit:.3f} ms "
                                              f"(realtime_budget {i.policy.realtime_budget:g} x {c.audio_ms:g} ms)")


def _size(c: Candidate, i: Inputs) -> str | None:
    limit = i.policy.max_model_bytes
    return None if limit is None or c.bytes <= limit else f"file {c.bytes:,} bytes > max_model_bytes {limit:,}"


def _stream_cpu(c: Candidate, i: Inputs) -> str | None:
    limit = i.policy.max_stream_cpu_share
    if c.cpu_share is None or c.cpu_share <= limit:
        return None
    return f"{_cadence(c)} it takes {c.cpu_share:.1%} of one core > max_stream_cpu_share {limit:.0%}"


def _cadence(c: Candidate) -> str:
    """How the graph is run in the CPU share's sentence."""
    return "streaming at 12.5 chunks/s" if c.audio_ms == CHUNK_MS else f"run once per {c.audio_ms:g} ms window"


def _other_numbers(c: Candidate, i: Inputs) -> bool:
    """Whether an engine setting of c's variant computes numbers other than the variant's (its outputs where it
    ran fail the tolerances): not a baseline of that variant."""
    return c.outputs != c.variant and _platform(c, i) is not None


CHECKS: dict[str, Callable[[Candidate, Inputs], str | None]] = {
    "accuracy gate": _gate,
    "accuracy where measured": _platform,
    "measured latency": _evidence,
    "real-time budget": _budget,
    "size limit": _size,
    "streaming CPU share": _stream_cpu,
}


def failures(candidate: Candidate, inputs: Inputs) -> list[str]:
    """Every check the candidate fails, as sentences; empty when eligible."""
    return [reason for check in CHECKS.values() if (reason := check(candidate, inputs))]


def cadence_share(stream: StreamRecord, audio_ms: float) -> tuple[float | None, int | None]:
    """(CPU share of one core, streams per core) when run once per `audio_ms`: the measured share for the
    streaming step; for a fixed window, the stream's CPU time per inference / the window (a graph slower than
    the 80 ms cadence ran its chunks back to back, so its measured share says nothing about its real cadence)."""
    if audio_ms == CHUNK_MS:
        return stream.cpu_share, stream.streams_per_core
    if stream.cpu_s is None or stream.chunks is None:
        raise ValueError(f"streaming run {stream.key} has no CPU time: status {stream.status}")
    share = stream.cpu_s / stream.chunks / (audio_ms / 1000.0)
    return share, math.floor(1.0 / share) if share > 0 else None


def candidates(profile: ProfileFile, sizes: dict[str, int], evidence: str, audio_ms: float) -> list[Candidate]:
    """One candidate per finished streaming-chunk run, joined with its one-second run and its streaming run."""
    runs = profile.ok_runs()
    found = []
    for run in (r for r in runs if r.workload == STREAM):
        second = next((r for r in runs if r.workload == SECOND and same(r, run)), None)
        stream = next((s for s in profile.streaming if s.ok and same(s, run, STREAM_FIELDS)), None)
        stats = measured(run)
        share, per_core = cadence_share(stream, audio_ms) if stream else (None, None)
        found.append(Candidate(
            variant=run.variant, format=run.format, engine=run.engine, provider=run.provider,
            threads=run.threads, spinning=run.spinning, optimization=run.optimization,
            precision=run.precision, key=run.key,
            median_ms=stats.median, p90_ms=stats.p90, min_ms=stats.min,
            second_median_ms=measured(second).median if second else None,
            cpu_share=share, streams_per_core=per_core,
            stream_p99_ms=measured(stream).p99 if stream else None,
            bytes=sizes[run.variant], evidence=evidence, audio_ms=audio_ms,
        ))
    return found


def predicted_candidates(predictions: list[Json], sizes: dict[str, int], formats: dict[str, str],
                         audio_ms: float) -> list[Candidate]:
    """One candidate per variant and configuration with a predicted chunk latency (emulated boards); its
    configuration is the one the instructions were counted in (one intra-op thread, the row's engine setting),
    its median the prediction (a throughput bound, no spread). CPU share cannot be measured under emulation, so
    the configuration is given with spinning off: an idle spinning pool only burns CPU between chunks, and one
    thread has no pool to spin."""
    by_key = {(p["variant"], *(p["config"].get(f) for f in CONFIG_FIELDS), p["workload"]): p for p in predictions}
    found = []
    for (name, *values, workload), p in by_key.items():
        if workload != STREAM:
            continue
        config, second = p["config"], by_key.get((name, *values, SECOND))
        found.append(Candidate(
            variant=name, format=formats[name], engine=config["engine"], provider=config["provider"],
            threads=int(config["threads"]), spinning=False if config["spinning"] is not None else None,
            optimization=config["optimization"], precision=config.get("precision"),
            key=f"predicted|{output_name(name, config)}|{STREAM}", median_ms=p["latency_ms"],
            p90_ms=None, min_ms=None,
            second_median_ms=second["latency_ms"] if second else None, cpu_share=None, streams_per_core=None,
            stream_p99_ms=None, bytes=sizes[name], evidence=PREDICTED, audio_ms=audio_ms,
        ))
    return found


def rank_key(c: Candidate) -> tuple[float, float, int]:
    """Lowest median first; then lower streaming CPU share (unknown last); then fewer threads."""
    return c.median_ms, c.cpu_share if c.cpu_share is not None else math.inf, c.threads


def spread_ms(c: Candidate) -> float:
    """The run's own spread: p90 - median (0 for a prediction, which has none)."""
    return 0.0 if c.p90_ms is None else max(c.p90_ms - c.median_ms, 0.0)


def near_tie(c: Candidate, fastest: Candidate) -> bool:
    """Whether c's median is within the measurement spread of the fastest one's (the larger of the two spreads)."""
    return c.median_ms - fastest.median_ms <= max(spread_ms(c), spread_ms(fastest))


def thrift_key(c: Candidate) -> tuple[float, int, float]:
    """Among near-ties: lower streaming CPU share (unknown last), then fewer threads, then the lower median."""
    return c.cpu_share if c.cpu_share is not None else math.inf, c.threads, c.median_ms


def pick(eligible: list[Candidate]) -> tuple[Candidate, Candidate]:
    """(chosen, fastest): the thriftiest of the near-ties of the fastest eligible candidate."""
    fastest = min(eligible, key=rank_key)
    return min((c for c in eligible if near_tie(c, fastest)), key=thrift_key), fastest


def _latency_words(c: Candidate) -> str:
    """'median 0.1234 ms' or 'predicted 0.1234 ms' for sentences."""
    return f"{'predicted' if c.evidence == PREDICTED else 'median'} {c.median_ms:.4f} ms"


def _audio_words(c: Candidate) -> str:
    """'the chunk's 80 ms' or 'the 30000 ms window one inference covers' for sentences."""
    if c.audio_ms == CHUNK_MS:
        return f"the chunk's {CHUNK_MS:g} ms"
    return f"the {c.audio_ms:g} ms window one inference covers"


def _tie_reason(chosen: Candidate, fastest: Candidate) -> str:
    """Why a near-tie of the fastest was taken instead of it."""
    share = "unknown" if fastest.cpu_share is None else f"{fastest.cpu_share:.1%}"
    mine = "unknown" if chosen.cpu_share is None else f"{chosen.cpu_share:.1%}"
    return (f"within the measurement spread of the fastest ({fastest.label()}: {_latency_words(fastest)}, "
            f"p90 - median {spread_ms(fastest):.4f} ms) and thriftier: streaming CPU share {mine} against {share}, "
            f"{chosen.threads} thread(s) against {fastest.threads}")


def _speedup(chosen: Candidate, original: Candidate | None) -> str:
    """The chosen one against the original's best configuration, saying when both are predictions."""
    if original is None:
        return "the original has no finished run on the chunk to compare with"
    if chosen.variant == "original":
        return "no variant beats the original at the median: the original is chosen"
    ratio = original.median_ms / chosen.median_ms
    # chosen slower: a near-tie went to the thriftier one, or the original's best fails a check
    words = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower at the median"
    slower = "" if ratio >= 1 else "; chosen by the rule above, not by its median alone"
    if PREDICTED in (chosen.evidence, original.evidence):
        return (f"predicted {words} than the original's best configuration ({original.label()}: "
                f"{_latency_words(original)}; evidence `predicted`, not measured){slower}")
    return (f"{words} than the original's best configuration ({original.label()}: "
            f"{original.median_ms:.4f} ms){slower}")


def _cpu_reason(chosen: Candidate, cpu_rejected: list[Candidate], policy: Policy) -> str:
    """What the streaming CPU share says about the choice, or why it is unknown."""
    if chosen.evidence == PREDICTED:
        return ("streaming CPU share cannot be measured under emulation: configured with 1 intra-op thread and "
                "spinning off (spinning workers busy-wait between chunks); measure it with HOST=user@board")
    if chosen.cpu_share is None:
        return "streaming CPU share was not measured for this configuration"
    text = (f"{_cadence(chosen)} it takes {chosen.cpu_share:.2%} of one core ({chosen.streams_per_core} "
            f"such streams per core; limit max_stream_cpu_share {policy.max_stream_cpu_share:.0%})")
    if cpu_rejected:
        best = min(cpu_rejected, key=rank_key)
        text += (f"; {len(cpu_rejected)} configuration(s) excluded for their CPU share, the fastest of them "
                 f"{best.label()} at {best.median_ms:.4f} ms taking {best.cpu_share:.1%} of a core")
    return text


def _reasons(chosen: Candidate, fastest: Candidate, eligible: list[Candidate], original: Candidate | None,
             inputs: Inputs, accuracy: Verdict, cpu_rejected: list[Candidate]) -> list[str]:
    """Why this one, in sentences with the numbers."""
    overall = accuracy.overall
    policy = inputs.policy
    how = "lowest predicted latency" if chosen.evidence == PREDICTED else "lowest median"
    reasons = [
        f"within tolerance: max |dB error| {overall.get('max_abs_db', 0):.4g} <= {policy.max_abs_db_error:g}, "
        f"p99 {overall.get('p99_abs_db', 0):.4g} <= {policy.p99_abs_db_error:g}, relative mel error "
        f"{overall.get('max_rel_mel', 0):.4g} <= {policy.max_rel_mel_error:g}",
        f"{how} on the 1760-sample chunk of {len(eligible)} eligible configurations: {_latency_words(chosen)} "
        f"= {chosen.realtime_factor:.4f} of {_audio_words(chosen)} (budget {policy.realtime_budget:g})"
        if chosen is fastest else _tie_reason(chosen, fastest),
        _speedup(chosen, original),
    ]
    if chosen.outputs != chosen.variant:
        verdict = inputs.platform.get(chosen.outputs)
        where = verdict.overall if verdict else {}
        reasons.insert(1, f"its outputs as {chosen.outputs} where it ran: max |dB error| "
                          f"{where.get('max_abs_db', 0):.4g} <= {policy.max_abs_db_error:g}")
    if inputs.audio["kind"] != STEP:
        reasons.append(f"budget {policy.budget_ms(chosen.audio_ms):g} ms: {inputs.audio['reason']}")
    if chosen.evidence == PREDICTED:
        reasons.append("latency predicted, not measured: a throughput bound from emulated instruction counts and "
                       "the core's pipe rates (real latency is usually higher: README 'Predictions and their error' "
                       "says by how much where it was measured); measure it with HOST=user@board")
    reasons.append(_cpu_reason(chosen, cpu_rejected, policy))
    return reasons


def runners_up(chosen: Candidate, eligible: list[Candidate], cpu_rejected: list[Candidate]) -> list[RunnerUp]:
    """The best configuration of every other eligible variant, then the chosen variant's next configurations,
    then the fastest configuration excluded for its streaming CPU share; each says why it was not chosen."""
    best: dict[str, Candidate] = {}
    for c in sorted(eligible, key=rank_key):
        best.setdefault(c.variant, c)
    others = [c for name, c in best.items() if name != chosen.variant]
    same = [c for c in sorted(eligible, key=rank_key) if c.variant == chosen.variant and c != chosen]
    rows = []
    for c in [*others, *same[:RUNNERS_UP_SAME_VARIANT]]:
        ratio = c.median_ms / chosen.median_ms
        why = (f"{ratio:.2f}x the chosen's latency" if ratio > 1 else
               "a near-tie of the chosen that uses more CPU or threads while streaming")
        rows.append(RunnerUp(c, ratio, why))
    for c in sorted(cpu_rejected, key=rank_key)[:1]:
        rows.append(RunnerUp(c, c.median_ms / chosen.median_ms,
                             f"excluded: streaming CPU share {c.cpu_share:.1%} > max_stream_cpu_share"))
    return rows


def excluded(variants: list[VariantRecord], accuracy: dict[str, Verdict], profiled: set[str]) -> list[Excluded]:
    """Variants that never became candidates, each with why."""
    rows = []
    for v in variants:
        if not v.built:
            word = "skipped" if v.status == "skipped" else "not built"
            rows.append(Excluded(v.name, f"{word}: {v.reason}"))
        elif not accuracy[v.name].passed:
            rows.append(Excluded(v.name, "not profiled: failed the gate: " + "; ".join(accuracy[v.name].reasons)))
        elif v.name not in profiled:
            rows.append(Excluded(v.name, "no finished run on the streaming chunk"))
    return rows


def choose(variants: list[VariantRecord], accuracy: dict[str, Verdict], platform: PlatformFile,
           profile: ProfileFile, policy: Policy, audio: Json | None = None) -> Choice:
    """choice.json: the chosen candidate and why, the runners-up, the original's best, what was excluded.
    `audio` is the audio one inference covers (workload.InferenceAudio as JSON; the streaming step if None)."""
    sizes = {v.name: v.bytes for v in variants if v.built and v.bytes is not None}
    formats = {v.name: v.format for v in variants}
    audio = audio or streaming_step("not stated").to_json()
    inputs = Inputs(accuracy, platform.accuracy, policy, platform.latency_evidence, audio)
    audio_ms = float(audio["audio_ms"])
    emulated = inputs.latency_evidence == EMULATED_TIME  # emulated wall time is never a candidate's latency
    found = [] if emulated else candidates(profile, sizes, inputs.latency_evidence, audio_ms)
    if inputs.latency_evidence not in CHOOSABLE:  # nothing measured on the target: its predictions decide
        found += predicted_candidates(platform.predictions.rows, sizes, formats, audio_ms)
    rejected = [Rejected(c, failures(c, inputs)) for c in found if failures(c, inputs)]
    eligible = [c for c in found if not failures(c, inputs)]
    cpu_rejected = [c for c in found if failures(c, inputs) == [_stream_cpu(c, inputs)]]
    originals = sorted((c for c in found if c.variant == "original" and not _other_numbers(c, inputs)),
                       key=rank_key)
    original = originals[0] if originals else None
    unchosen = Choice(
        policy={**asdict(policy), "max_chunk_ms": policy.budget_ms(audio_ms)}, inference_audio=audio,
        checks=list(CHECKS), rule=RULE, latency_evidence=inputs.latency_evidence, candidates=len(found),
        eligible=len(eligible), original_best=original,
        excluded=excluded(variants, accuracy, {c.variant for c in found}), rejected=rejected, chosen=None, reasons=[],
    )
    if not eligible:
        why = ("no configuration meets the policy; see rejected for each one's failed checks" if found else
               "no latency measured on the target or predicted for it (emulated wall time is not a latency)")
        return replace(unchosen, reasons=[why])
    chosen, fastest = pick(eligible)
    return replace(
        unchosen, chosen=chosen,
        reasons=_reasons(chosen, fastest, eligible, original, inputs, accuracy[chosen.variant], cpu_rejected),
        beats_original=original is not None and chosen.variant != "original",
        runners_up=runners_up(chosen, eligible, cpu_rejected),
    )


def select_folder(folder: Path, target: Target) -> Choice:
    """Read a build folder's stage files, choose, write choice.json; returns the choice."""
    files = BuildFolder(folder)
    choice = choose(files.variants().variants, files.accuracy().variants, files.platform(), files.profile(),
                    target.policy, files.counts().inference_audio)
    files.write("choice", choice)
    return choice


def choice_lines(choice: Choice) -> list[str]:
    """The choice as a few lines of text."""
    chosen = choice.chosen
    if chosen is None:
        return ["no variant chosen: " + "; ".join(choice.reasons)]
    head = (f"chosen: {chosen.variant} on {engine_words(chosen.config())}, {chosen.threads} thread(s)"
            f"{'' if chosen.spinning is None else ', spinning ' + ('on' if chosen.spinning else 'off')}"
            f"{', optimization ' + chosen.optimization if chosen.optimization else ''}")
    return [head, *(f"  - {reason}" for reason in choice.reasons)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="x86-host", help="target name or .toml file (default x86-host)")
    parser.add_argument("--build", type=Path, default=Path("build"),
                        help="build root holding <target>/ from `profile` (default build)")


def run(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    choice = select_folder(args.build / target.name, target)
    print("\n".join(choice_lines(choice)))
    return 0 if choice.chosen else 1

