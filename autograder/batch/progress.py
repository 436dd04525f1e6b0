"""What a batch run shows while it works: a rich progress bar on a terminal, one plain line per finished
student otherwise, and the closing summary. Student names and statuses are data: escaped for rich."""
from __future__ import annotations

import sys
import time

from ..terminal import shorten

OK_STATUS = ("graded", "not_implemented")
NAME_WIDTH = 24


class Reporter:
    """A rich progress bar on a terminal; one plain line per finished student otherwise."""

    def __init__(self, total: int, mode: str = "auto", stream=None):
        self.stream = stream or sys.stdout
        self.total, self.done, self.failed = total, 0, 0
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.started = time.monotonic()
        self.progress = None
        if mode == "bar" and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn
            from ..terminal import console_for
            self.progress = Progress(TextColumn("grading"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                     TextColumn("[red]{task.fields[failed]} could not be graded"), TextColumn("ETA"),
                                     TimeRemainingColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.fields[last]}", markup=False),
                                     console=console_for(self.stream))
            self.task = self.progress.add_task("grading", total=total, failed=0, last="")
            self.progress.start()

    def finished(self, student: str, score: float | None, max_score: float | None, status: str, seconds: float) -> None:
        self.done += 1
        bad = status not in OK_STATUS
        self.failed += bad
        shown = "-" if score is None or max_score is None else f"{score:g}/{max_score:g}"
        if self.progress is not None:
            if bad:
                from rich.markup import escape
                self.progress.console.print(f"[red]{escape(student)}[/red]: {escape(status)} ({escape(shown)})",
                                            highlight=False)
            self.progress.update(self.task, advance=1, failed=self.failed,
                                 last=f"{shorten(student, NAME_WIDTH)}: {shown}")
        elif self.mode == "lines":
            rate = (time.monotonic() - self.started) / self.done
            eta = rate * (self.total - self.done)
            width = len(str(self.total))
            print(f"[{self.done:>{width}}/{self.total}] {student}  {shown}  {status}  ({seconds:.1f} s)  "
                  f"could not be graded {self.failed}  ETA {eta:.0f} s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def print_outcome(outcome, stream=None) -> None:
    """The closing lines of a run: counts, who needs a look, where the gradebook and summary are."""
    stream = stream or sys.stdout
    rows = outcome.rows
    look = [r for r in rows if r.attention()]
    graded = len(outcome.graded)
    print(f"graded {graded}, skipped {len(outcome.skipped)} unchanged, in {outcome.seconds:.1f} s", file=stream)
    if look:
        print(f"{len(look)} need a look: " + ", ".join(f"{r.student} ({r.status})" for r in look[:10])
              + (" ..." if len(look) > 10 else ""), file=stream)
    print(f"gradebook: {outcome.gradebook}", file=stream)
    print(f"summary:   {outcome.summary}", file=stream)
