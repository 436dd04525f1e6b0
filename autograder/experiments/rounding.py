"""h rounded to the nearest integer: in the forward pass, in the backward pass, or only in dV.

``forward``: the output layer sees round(h) (in training and at evaluation: the rounded network is the
model), the backward pass uses the real h, as a straight-through estimator does;
``backward``: the forward pass is exact, the backward pass uses round(h) in dV and in f'(h);
``weight gradient``: only ``dV = d_logits^T round(h)``, f'(a) is exact.
"""
from __future__ import annotations

import numpy as np

from .base import run_family
from .result import ExperimentResult
from .training import RunResult, Variant
from .words import points, verdict

NAME = "rounding"
TITLE = "h rounded to the nearest integer"
QUESTION = ("Round the hidden layer h to the nearest integer: in the forward pass (keeping the real h in the "
            "backward pass), only in the backward pass, or only in the weight gradient of the output layer "
            "dV. Which of these can the network tolerate?")
FWD, BWD, DV = "forward pass", "backward pass", "weight gradient dV only"


def variants() -> list[Variant]:
    return [Variant(NAME, FWD, h_forward="round", h_backward="clean"),
            Variant(NAME, BWD, h_backward="round"),
            Variant(NAME, DV, h_backward="round", scope="dV")]


def interpret(runs: dict[str, RunResult], baseline: RunResult) -> str:
    f, b, d = runs[FWD], runs[BWD], runs[DV]
    text = (f"rounding h in the forward pass {verdict(f, baseline)}, in the backward pass {verdict(b, baseline)}, "
            f"and only in dV {verdict(d, baseline)}")
    worst = max((FWD, BWD, DV), key=lambda n: points(runs[n], baseline))
    if points(runs[worst], baseline) >= 1.0:
        text += f"; rounding in the {worst} cost the most"
    else:
        text += "; all three stayed within 1 point of exact backprop"
    return text


def run(rng: np.random.Generator, quick: bool = False, out_dir=None, data=None, settings=None,
        activation: str = "relu", baseline: RunResult | None = None) -> ExperimentResult:
    """Train exact backprop and the three rounding variants; write ``out_dir/rounding.png``."""
    import sys
    return run_family(sys.modules[__name__], rng, quick, out_dir, data, settings, activation, baseline)
