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
from ..gradcheck import mean_nll, numerical_gradient, relative_error
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, split_points
from .registry import EXTENSION_FUNCTIONS, EXTENSION_IDS, EXTENSIONS, enabled_extensions, spec
from .extension_common import LABELS, _call, _close, _fail, _failed, _pass, _scalar
from .extension_dropout import DROPOUT_DRAWS, DROPOUT_RATE, check_dropout

__all__ = ["CHECKS", "DEFAULT_POINTS", "DROPOUT_DRAWS", "DROPOUT_RATE", "EXTENSION_IDS", "FUNCTIONS", "LABELS",
           "check_dropout", "check_early_stopping", "check_l2", "enabled_extensions", "expected_early_stopping", "run"]

FUNCTIONS = EXTENSION_FUNCTIONS
DEFAULT_POINTS = {s.check_id: float(s.default_points) for s in EXTENSIONS}
GRAD_TOL = 1e-6


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

def _l2_value_bug(value: float, params: dict[str, np.ndarray], wd: float) -> tuple[str, str]:
    sq = float(np.sum(params["W"] ** 2) + np.sum(params["V"] ** 2))
    sq_all = sq + float(np.sum(params["b"] ** 2) + np.sum(params["c"] ** 2))
    expected = 0.5 * wd * sq
    candidates = [
        (wd * sq, "l2_penalty_factor", "the penalty is twice too large: it is (weight_decay / 2) * (sum(W**2) + "
                                       "sum(V**2)); the 1/2 makes its gradient exactly weight_decay * W"),
        (0.25 * wd * sq, "l2_penalty_factor", "the penalty is half too small: (weight_decay / 2) * sum of squares, "
                                              "not weight_decay / 4"),
        (0.5 * wd * sq_all, "l2_penalizes_biases", "the biases b and c are penalised too; only W and V are"),
        (wd * sq_all, "l2_penalizes_biases", "the biases are penalised and the 1/2 is missing"),
        (0.5 * wd * float(np.sqrt(np.sum(params["W"] ** 2)) + np.sqrt(np.sum(params["V"] ** 2))), "l2_norm_not_squared",
         "the norms are not squared: sum the squared entries"),
        (0.5 * sq, "l2_ignores_decay", "weight_decay is not used"),
        (sq, "l2_ignores_decay", "weight_decay and the 1/2 are missing"),
        (0.5 * wd * float(np.sum(params["W"] ** 2)), "l2_skips_key", "V is not penalised (only W)"),
        (0.5 * wd * float(np.sum(params["V"] ** 2)), "l2_skips_key", "W is not penalised (only V)"),
    ]
    for cand, tag, text in candidates:
        if np.isclose(value, cand, rtol=1e-7) and not np.isclose(cand, expected, rtol=1e-7):
            return tag, text
    return "l2_penalty_wrong", f"expected {expected:.6g}"


def _l2_grad_bug(key: str, new: np.ndarray, g: np.ndarray, p: np.ndarray, wd: float) -> tuple[str, str]:
    if key in ("b", "c"):
        if _close(new, g + wd * p):
            return "l2_penalizes_biases", f"the bias {key} was decayed too: the penalty covers only W and V"
        if _close(new, g):
            return "", ""
        return "l2_grad_wrong", f"the gradient of bias {key} should stay the NLL gradient unchanged"
    step = wd * p
    named = [
        (g, "l2_grad_missing", f"{key}'s gradient has no penalty term: add weight_decay * {key}"),
        (g + 0.5 * step, "l2_grad_factor", f"{key}'s penalty gradient is missing its factor: the derivative of "
                                           f"(weight_decay / 2) * sum({key}**2) is weight_decay * {key}, not half of it"),
        (g + 2 * step, "l2_grad_factor", f"{key}'s penalty gradient is 2 * weight_decay * {key}: with the penalty "
                                         f"(weight_decay / 2) * sum({key}**2) the factors 2 and 1/2 cancel"),
        (g - step, "l2_grad_sign", f"{key}'s penalty gradient has the wrong sign: add weight_decay * {key}, "
                                   "the penalty pulls weights towards 0"),
        (step, "l2_grad_only_penalty", f"{key} holds only the penalty's gradient: add it to the NLL gradient"),
        (g + p, "l2_ignores_decay", f"{key}'s penalty gradient ignores weight_decay (it adds {key} itself)"),
        (g + wd * np.sign(p), "l2_is_l1", f"{key} got weight_decay * sign({key}), an L1 penalty's gradient"),
    ]
    for cand, tag, text in named:
        if _close(new, cand):
            return tag, text
    return "l2_grad_wrong", f"{key} is not grads[{key!r}] + weight_decay * {key}"


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
    expected = 0.5 * wd * float(np.sum(params["W"] ** 2) + np.sum(params["V"] ** 2))
    if not reply.ok:
        out += _failed("l2", labels[:1], pts[:1], "l2_penalty", reply)
    else:
        value, problem = _scalar(reply, "out_0", "the value l2_penalty returned")
        if problem:
            out.append(_fail("l2", labels[0], pts[0], problem + "; return one float", ["wrong_type"]))
        elif np.isclose(value, expected, rtol=1e-8, atol=1e-12):
            out.append(_pass("l2", labels[0], pts[0], f"l2_penalty = {value:.6g} = (weight_decay/2)(|W|² + |V|²) "
                             f"(weight_decay = {wd:.3f}).", value=value))
        else:
            tag, text = _l2_value_bug(value, params, wd)
            out.append(_fail("l2", labels[0], pts[0], f"l2_penalty returned {value:.6g}, expected {expected:.6g}: {text}.",
                             [tag], value=value, expected=expected))

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
        err = relative_error(checked.value, numeric[key])
        errors[key] = err
        if err > GRAD_TOL:
            tag, text = _l2_grad_bug(key, checked.value, grads[key], params[key], wd)
            wrong.append((tag or "l2_grad_wrong", text or f"{key} differs from the finite differences (relative error {err:.1e})"))
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

def expected_early_stopping(errors: list[float], patience: int, late: int = 0, ties: bool = False) -> tuple[int, int]:
    """(stop_epoch, best_epoch) by the rule of the handout; ``late``/``ties`` give the known bugs' answers."""
    best_epoch, best = 0, errors[0]
    for epoch in range(1, len(errors)):
        if errors[epoch] < best or (ties and errors[epoch] <= best):
            best, best_epoch = errors[epoch], epoch
        elif epoch - best_epoch >= patience + late:
            return epoch, best_epoch
    return len(errors) - 1, best_epoch


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


_ES_BUGS: list[tuple[str, str, Callable[[list[float], int], tuple[int, int]]]] = [
    ("early_stop_late", "it stops one epoch too late: stop at the first epoch where epoch - best_epoch == patience "
                        "(use >=, not >)", lambda c, p: expected_early_stopping(c, p, late=1)),
    ("early_stop_early", "it stops one epoch too early: patience epochs WITHOUT improvement must pass after the best "
                         "one (epoch - best_epoch == patience)", lambda c, p: expected_early_stopping(c, p, late=-1)),
    ("early_stop_ties", "it counts an equal error as an improvement: only a strictly lower error resets the patience",
     lambda c, p: expected_early_stopping(c, p, ties=True)),
    ("early_stop_one_based", "its epochs are 1-based: valid_errors[e] belongs to epoch e, counted from 0",
     lambda c, p: tuple(x + 1 for x in expected_early_stopping(c, p))),
    ("early_stop_past_end", "when patience never runs out it returns len(valid_errors); the last epoch is "
                            "len(valid_errors) - 1", lambda c, p: (len(c) if expected_early_stopping(c, p)[0] == len(c) - 1
                                                                   else expected_early_stopping(c, p)[0],
                                                                   expected_early_stopping(c, p)[1])),
    ("early_stop_best_last", "best_epoch is the LAST minimum rather than the first (on ties keep the first)",
     lambda c, p: (expected_early_stopping(c, p)[0],
                   int(len(c[:expected_early_stopping(c, p)[0] + 1]) - 1
                       - np.argmin(c[:expected_early_stopping(c, p)[0] + 1][::-1])))),
]


def _es_diagnosis(index: int, answers: list[tuple[int, int] | None], cases: list[tuple[list[float], int]]) -> tuple[str, str]:
    """The known bug whose answers agree with the student's wherever the correct answer differs."""
    for tag, text, rule in _ES_BUGS:
        relevant = [(a, rule(c, p)) for a, (c, p) in zip(answers, cases)
                    if a is not None and rule(c, p)[index] != expected_early_stopping(c, p)[index]]
        if relevant and all(a[index] == b[index] for a, b in relevant):
            return tag, text
    return "early_stop_wrong", "see the rule in the docstring: stop at the first epoch with epoch - best_epoch == patience"


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
    for index, (label, p, what) in enumerate(zip(labels, pts, ("stop_epoch", "best_epoch"))):
        bad = [(c, pa, a) for (c, pa), a in zip(cases, answers) if a[index] != expected_early_stopping(c, pa)[index]]
        if not bad:
            out.append(_pass("early_stopping", label, p, f"{what} is right on all {len(cases)} validation curves."))
            continue
        tag, text = _es_diagnosis(index, answers, cases)
        curve, patience, got = bad[0]
        want = expected_early_stopping(curve, patience)[index]
        out.append(_fail("early_stopping", label, p,
                         f"{what} is wrong on {len(bad)} of {len(cases)} curves; {text}. For example, "
                         f"valid_errors = {curve}, patience = {patience}: got {what} = {got[index]}, expected {want}.",
                         [tag]))
    return out


# ---------------------------------------------------------------------------------------------
# Dropout

CHECKS: dict[str, Callable[[Context, float], list[CheckResult]]] = {
    "l2": check_l2, "early_stopping": check_early_stopping, "dropout": check_dropout,
}
