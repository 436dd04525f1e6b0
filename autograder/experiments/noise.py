"""Gaussian noise on the hidden layer h, in the forward pass, the backward pass, or both.

``forward``: the output layer sees h + e (e ~ N(0, sigma^2)), the backward pass uses the clean h;
``backward``: the forward pass is clean, the backward pass uses h + e (in dV and in f'(h));
``both, same sample``: forward and backward use the same h + e;
``both, resampled``: the backward pass draws its own e' independent of the forward's e.
Evaluation is without noise.
"""
from __future__ import annotations

import numpy as np

from .base import run_family
from .result import ExperimentResult
from .training import RunResult, Variant
from .words import join, pct, points, signed, verdict

NAME = "noise"
TITLE = "Gaussian noise on h in the forward pass, the backward pass, or both"
QUESTION = ("Add gaussian noise of standard deviation sigma to the hidden layer h: only in the forward pass, "
            "only in the backward pass, or in both (with the same noise sample, or a new one for the "
            "backward pass). How does each behave for sigma = 0.1, 0.5 and 1.0?")
LEVELS = (0.1, 0.5, 1.0)
GROUP_SIZE = len(LEVELS)  # the plot shades the levels of one position in one hue
WHERE = {
    "forward": dict(h_forward="noise", h_backward="clean"),
    "backward": dict(h_backward="noise_resampled"),
    "both, same sample": dict(h_forward="noise", h_backward="noise_same"),
    "both, resampled": dict(h_forward="noise", h_backward="noise_resampled"),
}
#: how each position reads inside a sentence
PHRASE = {
    "forward": "in the forward pass only",
    "backward": "in the backward pass only",
    "both, same sample": "in both passes with the same sample",
    "both, resampled": "in both passes with a new sample for the backward pass",
}


def label(where: str, sigma: float) -> str:
    return f"{where}, sigma {sigma:.1f}"


def variants() -> list[Variant]:
    return [Variant(NAME, label(w, s), noise_std=s, **kw) for w, kw in WHERE.items() for s in LEVELS]


def interpret(runs: dict[str, RunResult], baseline: RunResult) -> str:
    parts = []
    for where in WHERE:
        errs = "/".join(pct(runs[label(where, s)].final_test_error).rstrip("%") for s in LEVELS)
        parts.append(f"{where} {errs}%")
    sig = "/".join(f"{s:.1f}" for s in LEVELS)
    text = f"test error at sigma = {sig}: {join(parts)} (exact backprop {pct(baseline.final_test_error)})"
    ranked = sorted(WHERE, key=lambda w: points(runs[label(w, LEVELS[-1])], baseline))
    best, worst = ranked[0], ranked[-1]
    text += (f"; at sigma = {LEVELS[-1]:.1f} noise {PHRASE[best]} hurt least "
             f"({signed(points(runs[label(best, LEVELS[-1])], baseline))} points) and noise {PHRASE[worst]} most: "
             f"it {verdict(runs[label(worst, LEVELS[-1])], baseline)}")
    return text


def run(rng: np.random.Generator, quick: bool = False, out_dir=None, data=None, settings=None,
        activation: str = "relu", baseline: RunResult | None = None) -> ExperimentResult:
    """Train exact backprop and the twelve noise variants; write ``out_dir/noise.png``."""
    import sys
    return run_family(sys.modules[__name__], rng, quick, out_dir, data, settings, activation, baseline)
