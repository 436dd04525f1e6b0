"""Stale weights: the backward pass uses V as it was k steps ago (k = 1, 10, 100).

Models asynchronous or pipelined training, where gradients are computed with out-of-date weights.
The forward pass and the update use the current weights; only the feedback ``d_h = d_logits @ V_{t-k}``
is stale (until k steps have been taken, the initial V is used).
"""
from __future__ import annotations

import numpy as np

from .base import run_family
from .result import ExperimentResult
from .training import RunResult, Variant
from .words import join, pct, points, signed, verdict

NAME = "stale_weights"
TITLE = "Weights from k steps ago in the backward pass"
QUESTION = ("Compute the backward pass with the output weights V from k steps ago instead of the current ones "
            "(k = 1, 10, 100), as happens in asynchronous training. How much does stale feedback cost?")
KS = (1, 10, 100)


def label(k: int) -> str:
    return f"k = {k}"


def variants() -> list[Variant]:
    return [Variant(NAME, label(k), feedback="stale", stale_k=k) for k in KS]


def interpret(runs: dict[str, RunResult], baseline: RunResult) -> str:
    rs = [runs[label(k)] for k in KS]
    ds = [points(r, baseline) for r in rs]
    listed = join([f"{pct(r.final_test_error)} ({signed(d)} points)" for r, d in zip(rs, ds)])
    text = (f"with V from {join([str(k) for k in KS])} steps ago the test error was {listed} against "
            f"{pct(baseline.final_test_error)} for exact backprop")
    bad = [(k, r) for k, r in zip(KS, rs) if r.diverged or r.final_test_error >= 0.8]
    if bad:
        text += "; " + join([f"k = {k} {verdict(r, baseline)}" for k, r in bad])
    elif max(abs(d) for d in ds) < 1.0:
        text += f": feedback up to {KS[-1]} steps old cost at most {max(abs(d) for d in ds):.1f} points"
    elif ds == sorted(ds):
        text += ": the older the feedback, the worse the result"
    else:
        worst = KS[int(np.argmax(ds))]
        text += f": the worst was k = {worst}, with no steady trend in k"
    return text


def run(rng: np.random.Generator, quick: bool = False, out_dir=None, data=None, settings=None,
        activation: str = "relu", baseline: RunResult | None = None) -> ExperimentResult:
    """Train exact backprop and k = 1, 10, 100; write ``out_dir/stale_weights.png``."""
    import sys
    return run_family(sys.modules[__name__], rng, quick, out_dir, data, settings, activation, baseline)
