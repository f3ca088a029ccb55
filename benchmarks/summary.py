"""Print the report's benchmark table from a pytest-benchmark JSON: `python benchmarks/summary.py FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

from toolkit.report import read_bench
from toolkit.report.markdown import bench_table


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: python benchmarks/summary.py BENCHMARK.json (make bench writes build/bench/benchmark.json)",
              file=sys.stderr)
        return 2
    print("\n".join(bench_table(read_bench(Path(argv[0])))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
