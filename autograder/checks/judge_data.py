"""What the judges (autograder/judges.py) need to judge a case away from the grader: the expected
values and the known bugs' outputs, computed grader-side from the SAME case generators the grader
uses (issue 11). The otter/nbgrader versions get those of the hidden cases (in the instructor-side
hidden file), the public self-tests those of the public cases (shipped in the handout); never the
reference code.

Keys of one case (flat ``{name: array}``, plain float64/int/str arrays, ``allow_pickle=False``-safe):
``W b V c X Y`` the inputs; ``probs probs32 overflow`` and ``fv=<bug key>`` for forward;
``g.<K> g32.<K>`` the true gradient and the reference's in float32, ``gv.<K>.<bug id>`` a known bug's
gradient of K and ``gm.<bug id>`` its sentence; ``X2 probs2`` the rows-independence perturbation;
``e<i>.g.<K> e<i>.g32.<K>`` per-example gradients; sgd cases ``p.<K> g.<K> lr`` (and ``p2 g2 lr2``).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .cases import PARAM_KEYS, Case
from .known_bugs import gradient_variants
from .tolerances import reference_gradients32, reference_probs32

if TYPE_CHECKING:
    from ..config import CourseConfig


def _f64(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def inputs(case: Case) -> dict[str, np.ndarray]:
    return {k: _f64(v) for k, v in case.arrays().items()}


def forward_data(ref: ModuleType, case: Case, activation: str) -> dict[str, np.ndarray]:
    """The reference's probs (float64 and float32) and the classic forward bugs' probs on ``case``."""
    from .forward import is_large_logit, variants
    out = {"probs": _f64(ref.forward(case.params, case.X)[0]), "probs32": reference_probs32(ref, case.params, case.X),
           "overflow": np.asarray(int(is_large_logit(case))), "activation": np.asarray(activation)}
    out.update({f"fv={key}": _f64(v) for key, v in variants(case, activation).items()})
    return out


def truth(ref: ModuleType, config: CourseConfig, case: Case) -> dict[str, np.ndarray]:
    """The gradients check's truth on ``case``: finite differences of the true loss, checked against the
    reference's analytic gradient (autograder/checks/gradients.py:truth)."""
    from .common import Context
    from .gradients import truth as fd_truth
    return fd_truth(Context(config, ref, None), case)  # type: ignore[arg-type]  # no worker: truth needs none


def gradient_data(ref: ModuleType, config: CourseConfig, case: Case, fd: bool = True,
                  prefix: str = "", variants: bool = True) -> dict[str, np.ndarray]:
    """``g.<K>`` (the truth: finite differences when ``fd``, else the reference's analytic gradient),
    ``g32.<K>``, and, when ``variants``, the known bugs' gradients and sentences."""
    if fd:
        g = truth(ref, config, case)
    else:
        _, cache = ref.forward(case.params, case.X)
        g = ref.backward(case.params, cache, case.Y)
    g32 = reference_gradients32(ref, case.params, case.X, case.Y)
    out = {f"{prefix}g.{k}": _f64(g[k]) for k in PARAM_KEYS} | {f"{prefix}g32.{k}": _f64(g32[k]) for k in PARAM_KEYS}
    if variants:
        for k in PARAM_KEYS:
            found, messages = gradient_variants(k, case, config.activation)
            out.update({f"gv.{k}.{bug}": _f64(v) for bug, v in found.items()})
            out.update({f"gm.{bug}": np.asarray(text) for bug, text in messages.items()})
    return out


def per_example_data(ref: ModuleType, config: CourseConfig, case: Case) -> dict[str, np.ndarray]:
    """``e<i>.g.<K>`` and ``e<i>.g32.<K>``: the reference's gradients of example i alone."""
    out: dict[str, np.ndarray] = {}
    for i in range(case.n):
        one = Case(f"example {i}", case.params, case.X[i:i + 1], case.Y[i:i + 1])
        out.update(gradient_data(ref, config, one, fd=False, prefix=f"e{i}.", variants=False))
    return out


def sgd_data(params: dict, grads: dict, lr: float, suffix: str = "") -> dict[str, np.ndarray]:
    return ({f"p{suffix}.{k}": _f64(v) for k, v in params.items()} | {f"g{suffix}.{k}": _f64(v) for k, v in grads.items()}
            | {f"lr{suffix}": np.asarray(float(lr))})


def case_data(ref: ModuleType, config: CourseConfig, case: Case, *, forward: bool = False, gradients: bool = False,
              fd: bool = True, per_example: bool = False, variants: bool = True) -> dict[str, np.ndarray]:
    """Inputs plus the chosen judges' data for one case."""
    out = inputs(case)
    if forward:
        out |= forward_data(ref, case, config.activation)
    if gradients:
        out |= gradient_data(ref, config, case, fd=fd, variants=variants)
    if per_example:
        out |= per_example_data(ref, config, case)
    return out


def many(cases: list[Case], ref: ModuleType, config: CourseConfig, **chosen) -> dict[str, np.ndarray]:
    """``case<i>.<key>`` for every case (the layout ``bplab_checks.cases`` splits)."""
    out: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        out.update({f"case{i}.{k}": v for k, v in case_data(ref, config, case, **chosen).items()})
    return out


def public_data(ref: ModuleType, config: CourseConfig) -> dict[str, np.ndarray]:
    """Every public case's judge data: ``toy.<key>`` (the public toy of the forward and gradients checks,
    with its per-example gradients and its rows-independence perturbation) and ``sgd.<key>`` (the
    public sgd_step calls). Shipped with the handout and the otter/nbgrader self-checks; public only."""
    from .cases import public_sgd_calls, public_toy
    from .minibatch import perturbed
    toy = public_toy(config.activation)
    out = {f"toy.{k}": v for k, v in case_data(ref, config, toy, forward=True, gradients=True,
                                               per_example=True).items()}
    out["toy.X2"] = _f64(perturbed(ref, toy, PUBLIC_ROWS_SEED))
    for (params, grads, lr), suffix in zip(public_sgd_calls(), ("", "2")):
        out |= {f"sgd.{k}": v for k, v in sgd_data(params, grads, lr, suffix).items()}
    return out


PUBLIC_ROWS_SEED = 20243
