"""Progress bars for fetching (rich, on stderr); a no-op when disabled."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator


class Progress:
    """``with Progress(enabled) as prog: with prog.step("...", total) as advance: advance(n)``."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._p = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress as RichProgress, SpinnerColumn, TaskProgressColumn,
                                       TextColumn, TimeElapsedColumn)
            self._p = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                   TaskProgressColumn(), TimeElapsedColumn(),
                                   console=Console(stderr=True))
            self._p.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            if exc[0] is not None:  # on failure leave stderr to the one-line error
                if self._p.console.is_terminal:
                    for task in self._p.task_ids:
                        self._p.update(task, visible=False)
                    self._p.live.transient = True
                else:
                    self._p.console.quiet = True
            self._p.__exit__(*exc)
            self._p = None

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
        if self._p is None:
            yield lambda n=1: None
            return
        task = self._p.add_task(description, total=total)
        yield lambda n=1: self._p.advance(task, n)
        self._p.update(task, total=total or 1, completed=total or 1)

    def note(self, text: str) -> None:
        if self._p is not None:
            self._p.console.print(text)
