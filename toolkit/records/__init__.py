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

    CountsFile      counts.json, with each variant's VariantCounts and their WorkloadCounts
    ProfileFile     profile.json (the runner's result), with its RunRecord and StreamRecord entries
    PlatformFile    platform.json, with its Rows and PredictionErrors groups and its Verdicts
    Comparison      compare.json, with its ComparedRun, Contradiction and ContradictionSummary rows
    LedgerFile      pipeline.json, with each finished stage's StageDone

Each module says what it leaves as Json: sub-documents that are copied through whole or are their producer's own
record (an accuracy report's numbers, the feed plan's entries, the policy, the manifest's groups, the runner's
per-node profile and placement, the rows of instructions and predictions).
"""

from toolkit.records.accuracy import AccuracyFile, Verdict, verdicts
from toolkit.records.choice import Candidate, Choice, Excluded, Rejected, RunnerUp
from toolkit.records.compare import Achieved, ComparedRun, Comparison, Contradiction, ContradictionSummary
from toolkit.records.counts import CountsFile, VariantCounts, WorkloadCounts
from toolkit.records.ledger import LedgerFile, StageDone
from toolkit.records.manifest import Manifest
from toolkit.records.platform import PlatformFile, PredictionErrors, Rows
from toolkit.records.profile import Latency, ProfileFile, RunRecord, StreamRecord, measured
from toolkit.records.variants import VariantRecord, VariantsFile

__all__ = ["AccuracyFile", "Achieved", "Candidate", "Choice", "ComparedRun", "Comparison", "Contradiction",
           "ContradictionSummary", "CountsFile", "Excluded", "Latency", "LedgerFile", "Manifest", "PlatformFile",
           "PredictionErrors", "ProfileFile", "Rejected", "Rows", "RunRecord", "RunnerUp", "StageDone",
           "StreamRecord", "VariantCounts", "VariantRecord", "VariantsFile", "Verdict", "WorkloadCounts", "measured",
           "verdicts"]
