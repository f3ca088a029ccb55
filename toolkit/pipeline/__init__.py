"""The profiling pipeline of a target: stages in toolkit.pipeline.orchestrate, their files in .stages, the
run ledger in .ledger, where measurements come from in .sources. Nothing below it imports it: the vocabulary its
stages share with compare, select, export and report (evidence labels, strict JSON, run configurations) lives in
the base layer (tests/test_layers.py)."""
