"""Random hidden states in the backward pass.

The backward pass normally reuses the h of the forward pass twice: in ``dV = d_logits^T h`` and in the
derivative f'(a), which a backward pass that stored only h computes from h (sigmoid h(1-h), tanh 1-h^2,
relu [h > 0]). Here a random "hidden state" ``f(z)``, z ~ N(0, 1), takes h's place: either in the whole
backward pass or only in the output layer's weight gradient dV; drawn once and kept, or redrawn at every
step.
"""
from __future__ import annotations

import numpy as np

from .base import run_family
from .result import ExperimentResult
from .training import RunResult, Variant
from .words import points, verdict

NAME = "random_hidden"
TITLE = "Random hidden states h in the backward pass"
QUESTION = ("Replace the hidden states h in the backward pass by random ones: a fixed random h, or a new "
            "random h at every step. What if the random h is used only for the output layer's weight "
            "gradient dV, and the true h everywhere else?")
BWD_FIXED, BWD_FRESH = "backward, fixed random h", "backward, redrawn h"
DV_FIXED, DV_FRESH = "dV only, fixed random h", "dV only, redrawn h"


def variants() -> list[Variant]:
    return [Variant(NAME, BWD_FIXED, h_backward="random_fixed"),
            Variant(NAME, BWD_FRESH, h_backward="random_fresh"),
            Variant(NAME, DV_FIXED, h_backward="random_fixed", scope="dV"),
            Variant(NAME, DV_FRESH, h_backward="random_fresh", scope="dV")]


def interpret(runs: dict[str, RunResult], baseline: RunResult) -> str:
    bf, bn, vf, vn = (runs[n] for n in (BWD_FIXED, BWD_FRESH, DV_FIXED, DV_FRESH))
    text = (f"with a random h in the whole backward pass the network {verdict(bf, baseline)} when h was fixed and "
            f"{verdict(bn, baseline)} when it was redrawn; with a random h only in dV it {verdict(vf, baseline)} "
            f"(fixed) and {verdict(vn, baseline)} (redrawn)")
    whole = min(points(bf, baseline), points(bn, baseline))
    dv = max(points(vf, baseline), points(vn, baseline))
    if whole - dv > 2:
        text += (f", so most of the damage ({whole:.1f} against at most {dv:.1f} points) comes from the wrong "
                 "derivative f'(h) sent to the first layer, not from dV")
    elif dv - whole > 2:
        text += f", so a wrong dV alone did more damage ({dv:.1f} points) than the whole random backward pass"
    return text


def run(rng: np.random.Generator, quick: bool = False, out_dir=None, data=None, settings=None,
        activation: str = "relu", baseline: RunResult | None = None) -> ExperimentResult:
    """Train exact backprop and the four random-h variants; write ``out_dir/random_hidden.png``."""
    import sys
    return run_family(sys.modules[__name__], rng, quick, out_dir, data, settings, activation, baseline)
