"""Numbers into words: the measured clauses every family's sentence is built from (test errors in %, points)."""
from __future__ import annotations

import numpy as np

from .training import RunResult

#: a test error at or above this is "did not learn" (chance is 90% on ten classes)
NO_LEARNING = 0.80
#: differences smaller than this many points of test error (rounded to 0.1) are "about the same"
SAME_POINTS = 0.25


def pct(x: float) -> str:
    """0.0612 -> '6.1%' (one decimal; two below 1%)."""
    v = 100 * x
    return f"{v:.2f}%" if 0 < v < 1 else f"{v:.1f}%"


def points(run: RunResult, baseline: RunResult) -> float:
    """Test error of ``run`` minus the baseline's, in percentage points."""
    return 100 * (run.final_test_error - baseline.final_test_error)


def signed(d: float) -> str:
    """+1.3 / -0.4 / +0.0 (never '-0.0')."""
    d = round(d, 1)
    return f"{d + 0.0:+.1f}"


def verdict(run: RunResult, baseline: RunResult) -> str:
    """How ``run`` did against exact backprop, in a clause with the measured numbers."""
    if run.diverged:
        return (f"diverged after {run.diverged_at_epoch:g} epochs (non-finite weights; "
                f"{pct(run.final_test_error)} test error with the last finite ones)")
    if run.final_test_error >= NO_LEARNING:
        return f"did not learn ({pct(run.final_test_error)} test error)"
    d = points(run, baseline)
    if abs(round(d, 1)) < SAME_POINTS:
        text = f"matched exact backprop ({pct(run.final_test_error)} test error, {signed(d)} points)"
    elif d > 0:
        text = f"reached {pct(run.final_test_error)} test error, {d:.1f} points worse than exact backprop"
    else:
        text = f"reached {pct(run.final_test_error)} test error, {-d:.1f} points better than exact backprop"
    return text + relapse(run)


def relapse(run: RunResult) -> str:
    """' (its validation error rose from 10.8% at epoch 1 to 46.5%)' when a run got clearly worse."""
    if not run.valid_error:
        return ""
    best = int(np.argmin(run.valid_error))
    lo, last = run.valid_error[best], run.valid_error[-1]
    if last - lo > 0.02 and last > 1.5 * lo:
        return (f" (its validation error rose from {pct(lo)} at epoch {run.epochs[best]:g} "
                f"to {pct(last)})")
    return ""


def join(clauses: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    clauses = [c for c in clauses if c]
    if len(clauses) <= 1:
        return "".join(clauses)
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."
