"""One experiment family's outcome: :class:`ExperimentResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .training import RunResult


@dataclass
class ExperimentResult:
    """One family's runs (its variants, in order), the baseline, its plot and its measured sentence."""
    name: str
    title: str
    question: str
    runs: list[RunResult]
    baseline: RunResult
    sentence: str
    plot: Path | None = None
    notes: list[str] = field(default_factory=list)
