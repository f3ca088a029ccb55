"""Run configurations as the later stages read them: which records describe the same configuration, and how one
is named in a sentence. The field names are the runner's (toolkit.profiling.runner.CONFIG_FIELDS), so a field the
runner adds reaches every stage that matches or prints configurations.

A run is one variant in one configuration. A streaming run is made once per configuration at the first
optimization level, so it is matched without the level. A prediction is counted in one thread whatever the
spinning setting, and spinning moves no node between engines, so predictions and placements are matched without
spinning.
"""

from __future__ import annotations

from typing import Protocol

from toolkit.files import Json
from toolkit.profiling.runner import CONFIG_FIELDS

RUN_FIELDS = ("variant", *CONFIG_FIELDS)
STREAM_FIELDS = tuple(f for f in RUN_FIELDS if f != "optimization")
WITHOUT_SPINNING = tuple(f for f in CONFIG_FIELDS if f != "spinning")
DEFAULT_ENGINE = "onnxruntime"


class HasConfig(Protocol):
    """A record of one variant in one configuration (toolkit.records: a run, a streaming run, a candidate)."""

    @property
    def variant(self) -> str: ...

    def config(self) -> Json: ...


def _identity(record: Json | HasConfig) -> Json:
    """A record's variant and configuration fields as JSON: a dict as it is."""
    return record if isinstance(record, dict) else {"variant": record.variant, **record.config()}


def same(record: Json | HasConfig, other: Json | HasConfig, fields: tuple[str, ...] = RUN_FIELDS) -> bool:
    """Whether two records (dicts or toolkit.records) agree on `fields` (a field absent from an old record reads
    as None)."""
    mine, theirs = _identity(record), _identity(other)
    return all(mine.get(f) == theirs.get(f) for f in fields)


def engine_words(config: Json, short: bool = False, precision: bool = True) -> str:
    """'CPUExecutionProvider', 'openvino CPU f16', 'OpenVINOExecutionProvider bf16', 'litert xnnpack': the
    engine when it is not onnxruntime, the provider (without 'ExecutionProvider' when short), the precision when
    the engine sets one, so two settings of one variant never read alike."""
    provider = str(config.get("provider", "?"))
    engine = config.get("engine")
    words = [] if engine in (None, DEFAULT_ENGINE) else [str(engine)]
    words.append(provider.removesuffix("ExecutionProvider") if short else provider)
    if precision and config.get("precision"):
        words.append(str(config["precision"]))
    return " ".join(words)


def config_text(record: Json) -> str:
    """[engine] provider [precision], threads, spinning, optimization of a run or a choice, compactly."""
    parts = [engine_words(record, short=True), f"{record.get('threads', '?')} thr"]
    if record.get("spinning") is not None and record.get("threads", 1) != 1:
        parts.append("spin" if record["spinning"] else "no spin")
    if record.get("optimization"):
        parts.append(f"opt {record['optimization']}")
    return ", ".join(parts)


def placement_words(run: Json) -> str | None:
    """'12 of 14 nodes on OpenVINOExecutionProvider (2 on CPUExecutionProvider); runtime precision f16 12,
    f32 2', or None when the runner recorded no placement (older records, LiteRT)."""
    placement = run.get("placement")
    if not placement:
        return None
    labelled = engine_words(run, precision=False)
    others = [f"{n} on {name}" for name, n in placement.get("by_provider", {}).items()
              if n and name != run.get("provider")]
    text = f"{placement['labelled']} of {placement['nodes']} nodes on {labelled}"
    text += f" ({', '.join(others)})" if others else ""
    precisions = placement.get("precisions")
    if precisions:
        text += "; runtime precision " + ", ".join(f"{p} {n}" for p, n in precisions.items())
    return text
