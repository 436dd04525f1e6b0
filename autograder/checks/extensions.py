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
from ..worker.session import Reply
from .cases import PARAM_KEYS, make_case
from .common import Context, explain_failure, failure_tag, split_points, zero_results

EXTENSION_IDS = ("l2", "early_stopping", "dropout")
LABELS = {
    "l2": ["penalty value", "gradient of the penalized loss"],
    "early_stopping": ["stop epoch on given validation curves", "best epoch on given validation curves"],
    "dropout": ["expected value of the hidden layer", "gradient with a fixed mask"],
}
FUNCTIONS = {"l2": ("l2_penalty", "l2_penalty_grads"), "early_stopping": ("early_stopping",),
             "dropout": ("dropout_forward", "dropout_backward")}
DEFAULT_POINTS = {"l2": 5.0, "early_stopping": 5.0, "dropout": 5.0}
GRAD_TOL = 1e-6
DROPOUT_RATE = 0.3      # not 0.5, so "rate" and "keep probability" cannot be confused unnoticed
DROPOUT_DRAWS = 400


def enabled_extensions(config) -> list[str]:
    """The extension ids course.toml switches on (none when the config predates extensions)."""
    flags = getattr(config, "extensions", None) or {}
    return [e for e in EXTENSION_IDS if flags.get(e)]


def run(ctx: Context, only: list[str] | None = None) -> list[CheckResult]:
    """Every enabled extension's results (``only`` overrides the config's choice, e.g. in tests)."""
    points = {**DEFAULT_POINTS, **(getattr(ctx.config, "extension_points", None) or {})}
    results: list[CheckResult] = []
    for ext in (only if only is not None else enabled_extensions(ctx.config)):
        try:
            results += CHECKS[ext](ctx, float(points[ext]))
        except Exception:  # noqa: BLE001 - a grader bug is reported, not hidden
            trace = traceback.format_exc(limit=-3)
            results += zero_results(ext, LABELS[ext], float(points[ext]),
                                    f"internal grader error while running this check; tell the course staff.\n{trace}",
                                    ["grader_error"])
    return results


# ---------------------------------------------------------------------------------------------
# Plumbing

def _call(ctx: Context, function: str, arrays: dict[str, np.ndarray], order: list[str], **extra) -> Reply:
    reply = ctx.session.call("call_extension", arrays, function=function, order=order, **extra)
    ctx.note_mutation(function, reply)
    return reply


def _failed(check_id: str, labels: list[str], pts: list[float], function: str, reply: Reply) -> list[CheckResult]:
    msg = explain_failure(function, reply)
    return [CheckResult(check_id, label, 0.0, p, msg, failure_tag(reply)) for label, p in zip(labels, pts)]


def _scalar(reply: Reply, key: str, what: str) -> tuple[float | None, str | None]:
    """A returned number (0-d array or one-element array), or the reason it is not one."""
    info = (reply.meta.get("types") or {}).get(key.removeprefix("out_"), {})
    if key not in reply.arrays:
        return None, f"{what} is missing or not a number (it was a {info.get('type', 'nothing')})"
    arr = reply.arrays[key]
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        return None, f"{what} is not a single number (shape {arr.shape}, dtype {arr.dtype})"
    value = float(arr.reshape(-1)[0])
    if not np.isfinite(value):
        return None, f"{what} is {value}"
    return value, None


def _pass(check_id: str, label: str, pts: float, message: str, **evidence) -> CheckResult:
    return CheckResult(check_id, label, pts, pts, message, [], evidence)


def _fail(check_id: str, label: str, pts: float, message: str, tags: list[str], **evidence) -> CheckResult:
    return CheckResult(check_id, label, 0.0, pts, message, tags, evidence)


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-7) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=1e-12))


# ---------------------------------------------------------------------------------------------
# L2 weight decay

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

def _dropout_forward_result(reply: Reply, h: np.ndarray, rate: float, draws: int) -> tuple[bool, str, list[str], dict]:
    n = draws
    types = reply.meta.get("types") or {}
    if "out_0" not in reply.arrays or "out_1" not in reply.arrays:
        got = ", ".join(f"{k}: {v.get('type')}" for k, v in types.items()) or "nothing usable"
        return False, (f"dropout_forward must return the pair (h_dropped, mask) of arrays shaped like h; it returned "
                       f"{got}"), ["wrong_type"], {}
    dropped, mask = reply.arrays["out_0"], reply.arrays["out_1"]
    if dropped.shape != (n,) + h.shape or mask.shape != (n,) + h.shape:
        return False, (f"h_dropped and mask must have h's shape {h.shape}; got {dropped.shape[1:]} and "
                       f"{mask.shape[1:]}"), ["wrong_shape"], {}
    if dropped.dtype.kind != "f" or not np.all(np.isfinite(dropped)):
        return False, "h_dropped must be a finite float array", ["wrong_type"], {}
    if "h" in (reply.meta.get("mutated") or []):
        return False, "dropout_forward changed h in place: return a new array", ["dropout_mutates_h"], {}
    mask = mask.astype(np.float64)
    kept = dropped != 0  # h > 0 everywhere, so a kept unit is never 0
    keep_frac = float(kept.mean())
    scale = float(np.mean(dropped[kept] / np.broadcast_to(h, dropped.shape)[kept])) if kept.any() else 0.0
    mean_ratio = float(dropped.mean(axis=0).sum() / h.sum())
    evidence = {"keep_fraction": keep_frac, "scale_of_kept_units": scale, "mean_over_masks_ratio": mean_ratio,
                "draws": n, "rate": rate}
    keep, inv = 1 - rate, 1 / (1 - rate)
    expected_line = (f"over {n} masks the mean of h_dropped is {mean_ratio:.3f} h (expected 1.000 h); "
                     f"{100 * keep_frac:.1f}% of the units were kept (expected {100 * keep:.0f}% at rate {rate})")
    if abs(keep_frac - keep) > 0.03:
        if abs(keep_frac - rate) < 0.03:
            return False, (f"{expected_line}: it keeps units with probability rate; rate is the probability of "
                           "DROPPING a unit, keep with probability 1 - rate"), ["dropout_rate_is_keep"], evidence
        if keep_frac > 0.999:
            return False, f"{expected_line}: no unit was dropped", ["dropout_no_mask"], evidence
        return False, expected_line, ["dropout_wrong_rate"], evidence
    if not np.isclose(scale, inv, rtol=1e-6):
        if np.isclose(scale, 1.0, rtol=1e-6):
            return False, (f"{expected_line}: kept units are not rescaled by 1/(1-rate), so the expected hidden "
                           f"layer is (1-rate)·h = {keep:.2f} h instead of h"), ["dropout_not_rescaled"], evidence
        if np.isclose(scale, keep, rtol=1e-6):
            return False, (f"{expected_line}: kept units are multiplied by (1-rate); inverted dropout DIVIDES them "
                           "by 1-rate"), ["dropout_wrong_scale"], evidence
        if np.isclose(scale, 1 / rate, rtol=1e-6):
            return False, f"{expected_line}: kept units are divided by rate; divide by 1 - rate", \
                ["dropout_wrong_scale"], evidence
        return False, f"{expected_line}: kept units are scaled by {scale:.4f}, expected 1/(1-rate) = {inv:.4f}", \
            ["dropout_wrong_scale"], evidence
    if abs(mean_ratio - 1) > 0.03:
        return False, expected_line, ["dropout_biased"], evidence
    if not np.all((mask == 0) | (mask == 1)):
        return False, ("the mask must hold 1.0 for kept units and 0.0 for dropped ones (the 1/(1-rate) scale "
                       "belongs in h_dropped and in dropout_backward)"), ["dropout_mask_scaled"], evidence
    if not np.array_equal(mask != 0, kept):
        return False, "the mask does not match h_dropped: mask must be 1 exactly where the unit was kept", \
            ["dropout_mask_mismatch"], evidence
    if n > 1 and all(np.array_equal(mask[0], mask[i]) for i in range(1, n)):
        return False, ("every call used the same mask: draw a new one from rng each call (do not re-seed)"),\
            ["dropout_same_mask"], evidence
    return True, expected_line + ".", [], evidence


def _dropout_backward_bug(got: np.ndarray, dh: np.ndarray, mask: np.ndarray, rate: float) -> tuple[str, str]:
    named = [
        (dh * mask, "dropout_not_rescaled", "the gradient is not rescaled by 1/(1-rate): the forward pass divided "
                                            "the kept units by 1-rate, so the backward pass must too"),
        (dh * mask * (1 - rate), "dropout_wrong_scale", "the gradient is multiplied by (1-rate); divide by it"),
        (dh * mask / rate, "dropout_wrong_scale", "the gradient is divided by rate; divide by 1 - rate"),
        (dh / (1 - rate), "dropout_backward_no_mask", "the mask is not applied: dropped units get no gradient"),
        (dh * (1 - mask) / (1 - rate), "dropout_mask_inverted", "the mask is inverted: 1 marks a KEPT unit"),
        (dh, "dropout_backward_identity", "dh_dropped is returned unchanged: apply the mask and the 1/(1-rate) scale"),
    ]
    for cand, tag, text in named:
        if _close(got, cand):
            return tag, text
    return "dropout_backward_wrong", "expected dh_dropped * mask / (1 - rate)"


def check_dropout(ctx: Context, total: float) -> list[CheckResult]:
    labels, pts = LABELS["dropout"], split_points(total, LABELS["dropout"])
    rng = np.random.default_rng(ctx.config.seed("extension_dropout"))
    rate = DROPOUT_RATE
    h = rng.uniform(0.1, 2.0, size=(int(rng.integers(4, 9)), int(rng.integers(10, 26))))
    seed = int(rng.integers(2**31))
    out: list[CheckResult] = []

    reply = _call(ctx, "dropout_forward", {"h": h}, ["h", "rate", "rng"], scalars={"rate": rate}, seed=seed,
                  repeat=DROPOUT_DRAWS)
    if not reply.ok:
        out += _failed("dropout", labels[:1], pts[:1], "dropout_forward", reply)
    else:
        ok, message, tags, evidence = _dropout_forward_result(reply, h, rate, DROPOUT_DRAWS)
        if ok:  # the same seed must give the same mask: the mask comes from the rng passed in
            again = _call(ctx, "dropout_forward", {"h": h}, ["h", "rate", "rng"], scalars={"rate": rate},
                          seed=seed, repeat=1)
            first = reply.arrays["out_0"][0]
            if again.ok and "out_0" in again.arrays and not np.array_equal(again.arrays["out_0"], first):
                ok, tags = False, ["dropout_ignores_rng"]
                message = ("two calls with equally seeded generators gave different masks: draw the mask from the "
                           "rng argument (rng.random(h.shape)), not from np.random")
        out.append(_pass("dropout", labels[0], pts[0], message, **evidence) if ok
                   else _fail("dropout", labels[0], pts[0], message, tags, **evidence))

    dh = rng.standard_normal(h.shape)
    mask = (rng.random(h.shape) >= rate).astype(np.float64)
    reply = _call(ctx, "dropout_backward", {"dh": dh, "mask": mask}, ["dh", "mask", "rate"], scalars={"rate": rate})
    if not reply.ok:
        return out + _failed("dropout", labels[1:], pts[1:], "dropout_backward", reply)
    checked = check_array("the gradient dropout_backward returned", reply.arrays, "out_0", h.shape,
                          type_info=(reply.meta.get("types") or {}).get("0"))
    expected = dh * mask / (1 - rate)
    # the gradient of sum(dh * h_dropped) with respect to h, with this mask: d(h * mask / (1-rate)) / dh
    if not checked.ok:
        out.append(_fail("dropout", labels[1], pts[1], checked.problem, ["wrong_shape"]))
    elif _close(checked.value, expected, rtol=1e-10):
        out.append(_pass("dropout", labels[1], pts[1], f"dropout_backward = dh_dropped * mask / (1 - rate) "
                         f"(rate {rate}) for a fixed mask."))
    else:
        tag, text = _dropout_backward_bug(checked.value, dh, mask, rate)
        out.append(_fail("dropout", labels[1], pts[1], f"dropout_backward with a fixed mask: {text}.", [tag]))
    return out


CHECKS: dict[str, Callable[[Context, float], list[CheckResult]]] = {
    "l2": check_l2, "early_stopping": check_early_stopping, "dropout": check_dropout,
}
