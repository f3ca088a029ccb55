"""Terminal output for the whole toolkit: progress lines, rich tables, a progress bar with an ETA, and quiet / JSON
modes for scripts. A library function never prints: it reports progress through progress(), and a command prints
its result.

    progress("[counts] original: counted")          # one line on stderr, flushed

    out = Output.from_args(args)                    # after add_output_flags(parser)
    for item in out.track(items, "reading"): ...    # a bar on a terminal, nothing otherwise
    out.emit(data, lambda console: ...)             # --json: data as JSON; --quiet: nothing; else the render

    with runner_progress("profile x86-host", quiet=False) as feed:   # the bench runner's stderr lines
        for line in proc.stderr:
            feed(line)

Progress and tables go to stderr and stdout respectively, so `--json` output stays parseable with a bar shown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

T = TypeVar("T")
# the bench runner's progress line: "[12/800] run|variant|...: median 0.103 ms"
RUNNER_LINE = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")


def progress(message: str) -> None:
    """One progress line on stderr, flushed at once: stdout keeps only a command's result (--json stays parseable)."""
    print(message, file=sys.stderr, flush=True)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """--json and --quiet, mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the result as JSON on stdout, nothing else")
    group.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _bar(console: Console) -> Progress:
    """A bar with done/total, elapsed time and the ETA rich estimates from the recent rate."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
                    console=console, transient=True)


@dataclass
class Output:
    """How a command talks: `rich` tables and bars, `json` on stdout only, or `quiet`."""

    mode: str = "rich"
    console: Console | None = None
    errors: Console | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Output:
        """The mode the --json / --quiet flags ask for."""
        mode = "json" if getattr(args, "json", False) else "quiet" if getattr(args, "quiet", False) else "rich"
        return cls(mode, Console(), Console(stderr=True))

    def track(self, items: Sequence[T], description: str) -> Iterator[T]:
        """Iterate with a progress bar on an interactive stderr, silently otherwise."""
        errors = self.errors or Console(stderr=True)
        if self.mode == "quiet" or not errors.is_terminal:
            yield from items
            return
        with _bar(errors) as bar:
            task = bar.add_task(description, total=len(items), current="")
            for item in items:
                bar.update(task, current=str(item))
                yield item
                bar.advance(task)

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """The command's result: JSON, the rich rendering, or nothing."""
        if self.mode == "json":
            json.dump(data, sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")
        elif self.mode == "rich":
            render(self.console or Console())


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Remaining time at the average rate so far; None before the first unit is done."""
    return None if done <= 0 else elapsed / done * (total - done)


class RunnerFeed:
    """The bench runner's "[i/n] ..." stderr lines: printed as they come, with a bar and ETA below them on a
    terminal, or with "(eta N s)" appended in logs; nothing when quiet."""

    def __init__(self, description: str, console: Console, quiet: bool) -> None:
        self.description, self.console, self.quiet = description, console, quiet
        self.started = time.monotonic()
        self.bar: Progress | None = _bar(console) if console.is_terminal and not quiet else None
        self.task: Any = None

    def __call__(self, line: str) -> None:
        """One line of runner output."""
        text = line.rstrip("\n")
        match = RUNNER_LINE.match(text)
        if match is not None and self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(self.description, total=int(match[2]), current="")
            self.bar.update(self.task, completed=int(match[1]), total=int(match[2]),
                            current=match[3].split(":")[0][-60:])
        elif match is not None and not text.endswith(" s left)"):  # the runner's own estimate knows its streams
            eta = eta_seconds(int(match[1]), int(match[2]), time.monotonic() - self.started)
            text += f" (eta {eta:.0f} s)" if eta is not None else ""
        if not self.quiet:  # every line stays readable: above the bar on a terminal, as it is in logs
            self.console.print(text, markup=False, highlight=False)


@contextlib.contextmanager
def runner_progress(description: str, quiet: bool = False, console: Console | None = None) -> Iterator[RunnerFeed]:
    """A feed for the runner's stderr lines, shown as a bar with ETA on a terminal, as ETA-stamped lines in logs."""
    feed = RunnerFeed(description, console or Console(stderr=True), quiet)
    if feed.bar is None:
        yield feed
        return
    with feed.bar:
        yield feed


def rich_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               numeric: Sequence[str] = ()) -> Table:
    """A rich Table; columns named in `numeric` align right."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    return table
