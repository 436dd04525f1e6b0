"""What a batch's results folder holds as finished, for the interruption tests (test_batch_run.py,
test_batch_kill.py)."""
from __future__ import annotations

from pathlib import Path

from autograder.batch.plan import STATE


def states(out: Path) -> dict[str, bytes]:
    """{student: its .state.json bytes} of the committed students only: a ``.stage.*`` (or ``.old.*``)
    folder a kill left half-swapped is not a result."""
    return {p.parent.name: p.read_bytes() for p in out.glob(f"*/{STATE}") if not p.parent.name.startswith(".")}
