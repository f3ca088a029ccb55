"""make frontends' own logic on local files: the cache is reused without pip, each model gets the checks that fit
it, the table marks a check that does not apply, the profiles run where asked. Nothing here downloads."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from toolkit import frontends
from toolkit.frontends import MODELS, OPENWAKEWORD, Outcome, markdown, package_dir, profiled_names
from toolkit.melgraph import default_model, save_model
from toolkit.records import Manifest


def test_an_installed_package_is_reused_from_the_cache(tmp_path: Path) -> None:
    marker = tmp_path / "openwakeword-0.5.1" / OPENWAKEWORD.marker
    marker.parent.mkdir(parents=True)
    marker.write_bytes(b"")
    assert package_dir(OPENWAKEWORD, tmp_path) == tmp_path / "openwakeword-0.5.1"


def test_only_the_mel_front_end_of_the_other_models_is_profiled_and_explained_against_parameters() -> None:
    assert [name for name, model in MODELS.items() if model.profile] == ["oww_melspectrogram"]
    assert dict(MODELS["oww_melspectrogram"].expected) == {"n_fft": 512, "hop": 160, "window length": 400,
                                                           "bands": 32}
    assert all(not model.expected for name, model in MODELS.items() if name != "oww_melspectrogram")


def test_profiles_run_on_the_named_models_all_or_none() -> None:
    names = ["kaldi", "whisper80", "silero_vad"]
    ask = argparse.Namespace(no_profile=False, profile=["whisper80"])
    assert profiled_names(names, ask) == {"whisper80"}
    assert profiled_names(names, argparse.Namespace(no_profile=False, profile=[])) == set(names)
    assert profiled_names(names, argparse.Namespace(no_profile=True, profile=["kaldi"])) == set()


def test_the_table_marks_checks_that_do_not_apply() -> None:
    asr = Outcome("kaldi", {"reference": "agrees", "analyze": "1 mul"})
    vad = Outcome("silero_vad", {"what": "Silero VAD", "analyze": "failed"}, ["analyze: exited 2"])
    assert markdown([asr, vad]).splitlines() == [
        "| front end | reference | analyze | what | problems |", "|---|---|---|---|---|",
        "| kaldi | agrees | 1 mul | - | none |", "| silero_vad | - | failed | Silero VAD | analyze: exited 2 |"]


def test_the_mel_front_end_passes_analyze_and_explain(tmp_path: Path) -> None:
    """The built-in graph is openWakeWord's mel front end node for node: the checks that model gets pass."""
    path = tmp_path / "mel.onnx"
    save_model(default_model(), path)
    spec = MODELS["oww_melspectrogram"]
    line, problems = frontends.check_analyze(path, spec.analyze_args)
    assert (line, problems) == ("26,377,986 mul, 29 of 29 nodes counted; 3 heavy node(s) equal to onnxruntime's", [])
    line, problems = frontends.check_explain(path, dict(spec.expected))
    assert problems == [] and line.startswith("stft, power spectrum, mel filterbank, log, top-db clamp")


def manifest(passed: bool) -> Manifest:
    """A manifest for a Whisper graph's 30 s window, with the groups the profile check reads filled in."""
    audio = {"evidence": "explained", "audio_ms": 30000.0, "kind": "fixed window", "reason": "pads to 480000"}
    groups = {f.name: {} for f in fields(Manifest) if f.name not in ("format_version", "date_utc")}
    return Manifest(**{**groups, "format_version": 1, "date_utc": "2026-12-02T00:00:00Z",
                       "model": {"variant": "simplified"}, "accuracy": {"gate": {"passed": passed}},
                       "choice": {"policy": {"max_chunk_ms": 3000.0}, "inference_audio": audio}})


def test_the_profile_line_names_the_exported_variant_and_its_budget() -> None:
    assert frontends.exported(manifest(True)) == (
        "exported simplified (gate passed; budget 3000 ms per 30000 ms fixed window)", [])
    assert frontends.exported(manifest(False))[1] == ["profile: the exported simplified did not pass the gate"]
