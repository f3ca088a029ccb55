"""A wake-word deployment as a chain of models streamed together: mel front end -> embedding -> N classifiers.

Named `wakeword`, not `pipeline`: toolkit.pipeline is the orchestration of one model's profile stages (variants,
gate, profile, select, export); this package is a chain of several models that run as one at the streaming
cadence. Its pieces: .spec (pipelines/*.toml, validated), .models (which file each stage runs), .stream (the
executor and the measurement at the real rate), .variants (each stage's variants and its own gate), .choose
(the choice per stage and the pipeline gate), .emulated (a board's shares predicted), .remote (streamed on a board
over SSH by .board, the script shipped there beside runner.py and .stream), .export (files, manifest, report
section), .command (the CLI).
"""
