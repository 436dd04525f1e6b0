"""What a batch's results folder holds as finished, how often each student was graded to the end, and
whether the pool workers of a killed run are gone: for the interruption tests (test_batch_run.py,
test_batch_kill.py)."""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from autograder.batch.commit import LOG
from autograder.batch.plan import STATE
from autograder.batch.pool import WORKERS_LOCK


def states(out: Path) -> dict[str, bytes]:
    """{student: its .state.json bytes} of the committed students only: a ``.stage.*`` (or ``.old.*``)
    folder a kill left half-swapped is not a result."""
    return {p.parent.name: p.read_bytes() for p in out.glob(f"*/{STATE}") if not p.parent.name.startswith(".")}


def log_events(out: Path) -> list[list[str]]:
    """RESULTS/.batch.log as [time, pid, event, student, extra] rows, oldest first (all runs); a line
    still being appended (no newline yet) is left out."""
    if not (out / LOG).exists():
        return []
    lines = (out / LOG).read_text(encoding="utf-8", errors="replace").split("\n")[:-1]
    return [r for r in (line.split("\t") for line in lines) if len(r) >= 4]


def done_counts(out: Path) -> dict[str, int]:
    """{student: how many times a grading of it ran to the end (``done`` or ``unreadable``)}, all runs."""
    counts: dict[str, int] = {}
    for _, _, event, student, *_ in log_events(out):
        if event in ("done", "unreadable"):
            counts[student] = counts.get(student, 0) + 1
    return counts


def workers_gone(out: Path, timeout: float = 30) -> bool:
    """Pool workers hold a shared lock on RESULTS/.workers.lock while alive (and die with the batch):
    True once it can be taken exclusively, False if still held after ``timeout`` seconds."""
    path = out / WORKERS_LOCK
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)
