"""Feedback alignment: send the output error back through a random matrix B instead of V.

The backward pass computes ``d_h = d_logits @ B`` with B of V's shape and V's initial distribution,
either drawn once and kept (Lillicrap et al.'s feedback alignment) or drawn afresh at every step.
Everything else (dV, dc, f'(a)) is exact.
"""
from __future__ import annotations

import numpy as np

from .base import run_family
from .result import ExperimentResult
from .training import RunResult, Variant
from .words import points, verdict

NAME = "feedback_alignment"
TITLE = "Random feedback matrix B instead of V in the backward pass"
QUESTION = ("In the backward pass, replace V by a random matrix B of the same shape when sending the error "
            "back to the hidden layer. Does the network still learn if B is fixed for the whole training? "
            "And if a fresh B is drawn at every step?")
FIXED, FRESH = "fixed B", "fresh B every step"


def variants() -> list[Variant]:
    return [Variant(NAME, FIXED, feedback="random_fixed"), Variant(NAME, FRESH, feedback="random_fresh")]


def interpret(runs: dict[str, RunResult], baseline: RunResult) -> str:
    fixed, fresh = runs[FIXED], runs[FRESH]
    text = f"a fixed random feedback matrix {verdict(fixed, baseline)}; a fresh matrix per step {verdict(fresh, baseline)}"
    gap = points(fresh, baseline) - points(fixed, baseline)
    if gap > 2 and not fixed.diverged:
        text += (f", so the hidden layer can learn from a wrong but consistent feedback signal "
                 f"({gap:.1f} points better than an inconsistent one)")
    elif abs(gap) <= 2:
        text += f"; whether B is fixed or redrawn changed the test error by only {abs(gap):.1f} points"
    return text


def run(rng: np.random.Generator, quick: bool = False, out_dir=None, data=None, settings=None,
        activation: str = "relu", baseline: RunResult | None = None) -> ExperimentResult:
    """Train exact backprop and both variants; write ``out_dir/feedback_alignment.png``."""
    import sys
    return run_family(sys.modules[__name__], rng, quick, out_dir, data, settings, activation, baseline)
