"""Checks of the optional extensions, each scored separately and only when course.toml enables it.

Check ids (results.json names ``"<id>: <label>"``): ``l2`` (weight decay), ``early_stopping`` and
``dropout`` (inverted dropout). The student writes the functions in mlp.py (reference:
``solutions/extensions.py``); the worker calls them through the harness's ``call_extension`` op and
every expected value is computed here, in the parent, never taken from the worker:

* l2: the penalty's value, and the gradient of the penalized loss against central finite differences
  (float64) of ``mean NLL + (wd/2)(|W|^2 + |V|^2)`` around the hidden reference's gradients;
* early_stopping: (stop_epoch, best_epoch) on fixed and seeded validation curves;
* dropout: the expected value of the dropped hidden layer over many masks (≈ h), the keep rate and
  the 0/1 mask, and the gradient ``dropout_backward`` returns for a fixed mask.

A wrong answer is compared with the known bugs (missing 1/(1-rate), factor 2 or 1/2 in the L2 gradient,
stopping one epoch early or late, ...) so the message names the likely one.
"""
from __future__ import annotations

import traceback
from typing import Callable

import numpy as np

from ..boundary import check_array
from .. import extension_judges as judges
from ..extension_judges import expected_early_stopping  # noqa: F401 - re-exported
from ..gradcheck import mean_nll, numerical_gradient
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, split_points
from .registry import EXTENSION_FUNCTIONS, EXTENSION_IDS, EXTENSIONS, enabled_extensions, spec
from .extension_common import LABELS, _call, _fail, _failed, _pass, _scalar
from .extension_dropout import DROPOUT_DRAWS, DROPOUT_RATE, check_dropout

__all__ = ["CHECKS", "DEFAULT_POINTS", "DROPOUT_DRAWS", "DROPOUT_RATE", "EXTENSION_IDS", "FUNCTIONS", "LABELS",
           "check_dropout", "check_early_stopping", "check_l2", "enabled_extensions", "expected_early_stopping", "run"]

FUNCTIONS = EXTENSION_FUNCTIONS
DEFAULT_POINTS = {s.check_id: float(s.default_points) for s in EXTENSIONS}


def run(ctx: Context, only: list[str] | None = None) -> list[CheckResult]:
    """Every enabled extension's results (``only`` overrides the config's choice, e.g. in tests)."""
    results: list[CheckResult] = []
    for ext in (only if only is not None else enabled_extensions(ctx.config)):
        points = spec(ext).points(ctx.config)
        try:
            results += CHECKS[ext](ctx, points)
        except Exception:  # noqa: BLE001 - a grader bug is reported, not hidden
            trace = traceback.format_exc(limit=-3)
            results += spec(ext).zero(ctx.config, "internal grader error while running this check; tell the course "
                                                  f"staff.\n{trace}", ["grader_error"])
    return results


# ---------------------------------------------------------------------------------------------
# Plumbing

def check_l2(ctx: Context, total: float) -> list[CheckResult]:
    labels, pts = LABELS["l2"], split_points(total, LABELS["l2"])
    rng = np.random.default_rng(ctx.config.seed("extension_l2"))
    case = make_case("l2 case", rng, int(rng.integers(4, 9)), int(rng.integers(3, 7)), int(rng.integers(2, 5)),
                     int(rng.integers(3, 7)), ctx.config.activation)
    params, X, Y = case.params, case.X, case.Y
    wd = float(rng.uniform(0.2, 0.6))
    p_arrays = {f"p_{k}": v for k, v in params.items()}
    out: list[CheckResult] = []

    # 1. the value
    reply = _call(ctx, "l2_penalty", p_arrays, ["params", "weight_decay"], scalars={"weight_decay": wd})
    if not reply.ok:
        out += _failed("l2", labels[:1], pts[:1], "l2_penalty", reply)
    else:
        value, problem = _scalar(reply, "out_0", "the value l2_penalty returned")
        if problem:
            out.append(_fail("l2", labels[0], pts[0], problem + "; return one float", ["wrong_type"]))
        else:
            verdict = judges.l2_value(value, params, wd)
            out.append(CheckResult("l2", labels[0], pts[0] if verdict.passed else 0.0, pts[0], verdict.message,
                                   list(verdict.diagnoses), dict(verdict.evidence)))

    # 2. the gradient of the penalized loss, against finite differences of the penalized loss
    probs, cache = ctx.ref.forward(params, X)
    grads = ctx.ref.backward(params, cache, Y)
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}

    def penalized() -> float:
        return mean_nll(ctx.ref.forward(work, X)[0], Y) + 0.5 * wd * float(np.sum(work["W"] ** 2) + np.sum(work["V"] ** 2))

    numeric = {k: numerical_gradient(penalized, work[k]) for k in PARAM_KEYS}
    reply = _call(ctx, "l2_penalty_grads", p_arrays | {f"g_{k}": v for k, v in grads.items()},
                  ["params", "grads", "weight_decay"], scalars={"weight_decay": wd})
    if not reply.ok:
        return out + _failed("l2", labels[1:], pts[1:], "l2_penalty_grads", reply)
    types = reply.meta.get("types") or {}
    wrong: list[tuple[str, str]] = []
    errors: dict[str, float] = {}
    for key in PARAM_KEYS:
        checked = check_array(f"the returned {key}", reply.arrays, f"out_{key}", params[key].shape,
                              type_info=types.get(key))
        if not checked.ok:
            wrong.append(("wrong_shape" if "shape" in (checked.problem or "") else "wrong_type", checked.problem))
            continue
        errors[key], problem = judges.l2_grad_key(key, checked.value, grads[key], params[key], wd, numeric[key])
        if problem:
            wrong.append(problem)
    evidence = {"relative_errors": errors, "weight_decay": wd}
    if wrong:
        first = [wrong[0]] + [w for w in wrong[1:] if w[1] != wrong[0][1]]
        out.append(_fail("l2", labels[1], pts[1], "; ".join(w[1] for w in first[:4]) + ".",
                         sorted({w[0] for w in wrong}), **evidence))
    else:
        note = ""
        changed = reply.meta.get("mutated") or []
        if changed:
            note = f" (note: it modified its inputs {', '.join(map(str, changed[:4]))}; returning a new dict is safer)"
        worst = max(errors.values()) if errors else 0.0
        out.append(_pass("l2", labels[1], pts[1], "the gradients match finite differences of the penalized loss "
                         f"(largest relative error {worst:.1e}; weight_decay = {wd:.3f}){note}.", **evidence))
    return out


# ---------------------------------------------------------------------------------------------
# Early stopping

FIXED_CURVES: list[tuple[list[float], int]] = [
    ([0.50, 0.40, 0.42, 0.41, 0.43, 0.39, 0.38], 2),   # stops at 3, best 1
    ([0.30, 0.20, 0.20, 0.20, 0.25, 0.26], 2),         # a tie is not an improvement: stops at 3, best 1
    ([0.50, 0.40, 0.30, 0.20], 3),                     # never stops early: 3, best 3
    ([0.30, 0.35, 0.20, 0.10], 1),                     # patience 1: stops at 1, best 0
    ([0.10, 0.20, 0.30, 0.40, 0.50, 0.60], 3),         # best first: stops at 3, best 0
    ([0.40, 0.30, 0.31, 0.32, 0.29, 0.33, 0.34, 0.35, 0.36], 3),  # recovers once: stops at 7, best 4
]


def _curves(rng: np.random.Generator) -> list[tuple[list[float], int]]:
    cases = list(FIXED_CURVES)
    for _ in range(4):
        n = int(rng.integers(8, 16))
        t = np.arange(n)
        curve = 0.3 * np.exp(-t / rng.uniform(1.5, 4)) + 0.002 * np.maximum(t - rng.integers(3, 8), 0) ** 2 \
            + 0.02 + rng.normal(0, 0.004, n)
        cases.append(([round(float(x), 4) for x in curve], int(rng.integers(1, 5))))
    return cases


def check_early_stopping(ctx: Context, total: float) -> list[CheckResult]:
    labels, pts = LABELS["early_stopping"], split_points(total, LABELS["early_stopping"])
    cases = _curves(np.random.default_rng(ctx.config.seed("extension_early_stopping")))
    answers: list[tuple[int, int] | None] = []
    problems: list[str] = []
    for curve, patience in cases:
        reply = _call(ctx, "early_stopping", {"valid_errors": np.array(curve)}, ["valid_errors", "patience"],
                      scalars={"patience": patience}, as_list=["valid_errors"])
        if not reply.ok:
            return _failed("early_stopping", labels, pts, "early_stopping", reply)
        pair = []
        for key, what in (("out_0", "stop_epoch"), ("out_1", "best_epoch")):
            value, problem = _scalar(reply, key, f"{what}")
            if problem is None and value != int(value):
                problem = f"{what} = {value} is not a whole number"
            if problem:
                problems.append(problem + " (return the pair (stop_epoch, best_epoch) of ints)")
                break
            pair.append(int(value))
        answers.append(tuple(pair) if len(pair) == 2 else None)
    if problems:
        return [_fail("early_stopping", label, p, problems[0], ["wrong_type"]) for label, p in zip(labels, pts)]
    out = []
    for index, (label, p) in enumerate(zip(labels, pts)):
        verdict = judges.early_stopping(index, answers, cases)
        out.append(CheckResult("early_stopping", label, p if verdict.passed else 0.0, p, verdict.message,
                               list(verdict.diagnoses)))
    return out


# ---------------------------------------------------------------------------------------------
# Dropout

CHECKS: dict[str, Callable[[Context, float], list[CheckResult]]] = {
    "l2": check_l2, "early_stopping": check_early_stopping, "dropout": check_dropout,
}
