"""Evidence labels: every number the toolkit writes says how it was obtained, in these words.

One table, read by the stages that attach labels (profiling sources, counts, predictions, selection, export)
and by the renderers that show them, so a label is spelled once.
"""

HOST = "measured-on-host"
BOARD = "measured-on-board"
EMULATED = "emulated-instructions"
EMULATED_TIME = "emulated-wall-time"
PREDICTED = "predicted"
COUNTED = "counted"
ESTIMATED = "target-file-estimate"
TARGET_FILE = "target-file"
FILE = "file"
SETTING = "setting"
EXPLAINED = "explained"

# evidence label -> what it means, for manifests and reports
EVIDENCE: dict[str, str] = {
    COUNTED: "exact analytic count of the graph as written (toolkit.analysis, README counting convention)",
    HOST: "measured on this machine by the bench runner (time.perf_counter_ns, process CPU time)",
    BOARD: "measured on the board by the same bench runner, copied there over SSH or imported",
    EMULATED: "computed or counted under QEMU user-mode emulation: the board's aarch64 builds under qemu-aarch64 "
              "with the board's CPU model (outputs, instructions), or this host's own build under qemu-x86_64 "
              "(instructions)",
    EMULATED_TIME: "emulation wall time (not a board latency): hundreds of times a board's, never used as a "
                   "board's speed",
    PREDICTED: "predicted from emulated instruction counts and the core's pipe rates (toolkit.profiling.predict)",
    ESTIMATED: "estimate from the target file's [cpu] facts and [peak] method, not measured",
    TARGET_FILE: "a fact copied from the target file; target.cpu.sources says where each [cpu] fact comes from",
    FILE: "a property of the exported model file itself (its size and sha256)",
    SETTING: "a setting: the chosen configuration or the target's policy, not a measurement",
    EXPLAINED: "recovered from the graph's structure and weights by toolkit.explain (the fixed length it pads "
               "every input to, which the real-time budget is a fraction of)",
}
# latencies with these labels may decide a choice (a prediction only where nothing was measured: see select)
CHOOSABLE = (HOST, BOARD, PREDICTED)
