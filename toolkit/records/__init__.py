"""The records of the stage files that later stages read field by field, one module per file: one dataclass each,
with to_json() (the file's JSON, key for key and in its order) and from_json() (its inverse:
from_json(x.to_json()) == x; toolkit.records.base).

    VariantRecord   an entry of variants.json's "variants"; VariantsFile the whole file
    Verdict         an accuracy verdict: an entry of accuracy.json's "variants" or of platform.json's "accuracy"
    AccuracyFile    accuracy.json
    Candidate       one configuration of one variant as select weighs it (choice.json's chosen, original_best,
                    and the base of every runner-up and rejected row)
    Choice          choice.json, with its RunnerUp, Rejected and Excluded rows
    Manifest        artifacts/<target>/manifest.json

Left as Json, because they are copied through as they are or typing them would only restate their producer: an
accuracy report's numbers (Verdict.report: overall / by_level / by_signal, toolkit.accuracy.AccuracyReport), the feed
plan's entries (VariantsFile.inputs, toolkit.load.InputFeed), the policy, signals and inference audio copied into
accuracy.json and choice.json, the manifest's groups (each a sub-document with its own evidence label), and the
documents of counts.json, profile.json (the runner's), platform.json (beyond its verdicts), compare.json and the
ledger.
"""

from toolkit.records.accuracy import AccuracyFile, Verdict, verdicts
from toolkit.records.choice import Candidate, Choice, Excluded, Rejected, RunnerUp
from toolkit.records.manifest import Manifest
from toolkit.records.variants import VariantRecord, VariantsFile

__all__ = ["AccuracyFile", "Candidate", "Choice", "Excluded", "Manifest", "Rejected", "RunnerUp", "VariantRecord",
           "VariantsFile", "Verdict", "verdicts"]
