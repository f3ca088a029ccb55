"""The profiling pipeline of a target: stages in toolkit.pipeline.orchestrate, their files in .stages, the
run ledger in .ledger, where measurements come from in .sources. Imports nothing itself, so the stage modules
and the modules they call (compare, select, export, report) import the small ones without cycles."""
