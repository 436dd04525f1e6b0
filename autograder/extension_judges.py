"""The verdicts of the optional extensions (l2, early_stopping, dropout), in pure numpy: arrays in, a
``Verdict`` out (autograder/judges.py's type). One definition (issue 11) for the grader's extension checks
(autograder/checks/extension_l2.py, extension_early_stopping.py, extension_dropout.py) and the otter/nbgrader versions
(``bplab_extension_judges.py`` next to ``bplab_checks.py``). Numpy, the standard library and the two
shipped modules only; no expected values. Shapes: W (n_hidden, n_in), b (n_hidden,), V (n_out, n_hidden),
c (n_out,); h, dh, mask (N, n_hidden)."""
from __future__ import annotations

from typing import Callable

import numpy as np

try:  # inside the autograder package
    from . import gradcheck
    from .judges import Verdict
except ImportError:  # shipped next to gradcheck.py and bplab_judges.py
    import gradcheck
    from bplab_judges import Verdict

L2_RTOL = 1e-8
GRAD_TOL = 1e-6


def _no(tags: list[str], message: str, evidence: dict | None = None) -> Verdict:
    return Verdict(False, tuple(tags), message, dict(evidence or {}))


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-7) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=1e-12))


# ---- L2 weight decay ------------------------------------------------------------------------------
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


def l2_value(value: float, params: dict, wd: float) -> Verdict:
    """l2_penalty(params, wd) == (wd/2)(|W|^2 + |V|^2), rtol 1e-8, else the likely bug."""
    expected = 0.5 * wd * float(np.sum(params["W"] ** 2) + np.sum(params["V"] ** 2))
    if np.isclose(value, expected, rtol=L2_RTOL, atol=1e-12):
        return Verdict(True, (), f"l2_penalty = {value:.6g} = (weight_decay/2)(|W|² + |V|²) (weight_decay = {wd:.3f}).",
                       {"value": value})
    tag, text = _l2_value_bug(value, params, wd)
    return _no([tag], f"l2_penalty returned {value:.6g}, expected {expected:.6g}: {text}.",
               {"value": value, "expected": expected})


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


def l2_grad_key(key: str, new: np.ndarray, g: np.ndarray, p: np.ndarray, wd: float, truth: np.ndarray):
    """(relative error, None) when the returned ``key`` is the penalized gradient ``truth``, else
    (relative error, (bug id, sentence))."""
    err = gradcheck.relative_error(new, truth)
    if err <= GRAD_TOL:
        return err, None
    tag, text = _l2_grad_bug(key, new, g, p, wd)
    return err, (tag or "l2_grad_wrong", text or f"{key} differs from the finite differences (relative error {err:.1e})")


# ---- early stopping ------------------------------------------------------------------------------
def expected_early_stopping(errors: list[float], patience: int, late: int = 0, ties: bool = False) -> tuple[int, int]:
    """(stop_epoch, best_epoch) by the rule of the handout; ``late``/``ties`` give the known bugs' answers."""
    best_epoch, best = 0, errors[0]
    for epoch in range(1, len(errors)):
        if errors[epoch] < best or (ties and errors[epoch] <= best):
            best, best_epoch = errors[epoch], epoch
        elif epoch - best_epoch >= patience + late:
            return epoch, best_epoch
    return len(errors) - 1, best_epoch


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


def early_stopping(index: int, answers: list, cases: list) -> Verdict:
    """stop_epoch (``index`` 0) or best_epoch (1) of every answer (stop, best) against the rule on its
    (curve, patience) case, else the known bug whose answers agree."""
    what = ("stop_epoch", "best_epoch")[index]
    bad = [(c, pa, a) for (c, pa), a in zip(cases, answers) if a[index] != expected_early_stopping(c, pa)[index]]
    if not bad:
        return Verdict(True, (), f"{what} is right on all {len(cases)} validation curves.")
    tag, text = _es_diagnosis(index, answers, cases)
    curve, patience, got = bad[0]
    want = expected_early_stopping(curve, patience)[index]
    return _no([tag], f"{what} is wrong on {len(bad)} of {len(cases)} curves; {text}. For example, valid_errors = "
                      f"{curve}, patience = {patience}: got {what} = {got[index]}, expected {want}.")


# ---- dropout -------------------------------------------------------------------------------------
DROPOUT_IGNORES_RNG = ("two calls with equally seeded generators gave different masks: draw the mask from the "
                       "rng argument (rng.random(h.shape)), not from np.random")


def dropout_forward(h: np.ndarray, dropped: np.ndarray, mask: np.ndarray, rate: float) -> Verdict:
    """``draws`` calls of dropout_forward(h, rate, rng) on one rng: ``dropped`` and ``mask`` (draws, *h.shape),
    validated (finite floats, h's shape, h unchanged). Inverted dropout: keep with probability 1 - rate,
    kept units divided by 1 - rate (the mean over masks is h), a 0/1 mask matching, a new mask each call."""
    n = dropped.shape[0]
    mask = mask.astype(np.float64)
    kept = dropped != 0  # h > 0 everywhere, so a kept unit is never 0
    keep_frac = float(kept.mean())
    scale = float(np.mean(dropped[kept] / np.broadcast_to(h, dropped.shape)[kept])) if kept.any() else 0.0
    mean_ratio = float(dropped.mean(axis=0).sum() / h.sum())
    evidence = {"keep_fraction": keep_frac, "scale_of_kept_units": scale, "mean_over_masks_ratio": mean_ratio,
                "draws": n, "rate": rate}
    keep, inv = 1 - rate, 1 / (1 - rate)
    line = (f"over {n} masks the mean of h_dropped is {mean_ratio:.3f} h (expected 1.000 h); "
            f"{100 * keep_frac:.1f}% of the units were kept (expected {100 * keep:.0f}% at rate {rate})")
    if abs(keep_frac - keep) > 0.03:
        if abs(keep_frac - rate) < 0.03:
            return _no(["dropout_rate_is_keep"], f"{line}: it keeps units with probability rate; rate is the probability "
                       "of DROPPING a unit, keep with probability 1 - rate", evidence)
        if keep_frac > 0.999:
            return _no(["dropout_no_mask"], f"{line}: no unit was dropped", evidence)
        return _no(["dropout_wrong_rate"], line, evidence)
    if not np.isclose(scale, inv, rtol=1e-6):
        if np.isclose(scale, 1.0, rtol=1e-6):
            return _no(["dropout_not_rescaled"], f"{line}: kept units are not rescaled by 1/(1-rate), so the expected "
                       f"hidden layer is (1-rate)·h = {keep:.2f} h instead of h", evidence)
        if np.isclose(scale, keep, rtol=1e-6):
            return _no(["dropout_wrong_scale"], f"{line}: kept units are multiplied by (1-rate); inverted dropout "
                       "DIVIDES them by 1-rate", evidence)
        if np.isclose(scale, 1 / rate, rtol=1e-6):
            return _no(["dropout_wrong_scale"], f"{line}: kept units are divided by rate; divide by 1 - rate", evidence)
        return _no(["dropout_wrong_scale"], f"{line}: kept units are scaled by {scale:.4f}, expected 1/(1-rate) = "
                   f"{inv:.4f}", evidence)
    if abs(mean_ratio - 1) > 0.03:
        return _no(["dropout_biased"], line, evidence)
    if not np.all((mask == 0) | (mask == 1)):
        return _no(["dropout_mask_scaled"], "the mask must hold 1.0 for kept units and 0.0 for dropped ones (the "
                   "1/(1-rate) scale belongs in h_dropped and in dropout_backward)", evidence)
    if not np.array_equal(mask != 0, kept):
        return _no(["dropout_mask_mismatch"], "the mask does not match h_dropped: mask must be 1 exactly where the "
                   "unit was kept", evidence)
    if n > 1 and all(np.array_equal(mask[0], mask[i]) for i in range(1, n)):
        return _no(["dropout_same_mask"], "every call used the same mask: draw a new one from rng each call (do not "
                   "re-seed)", evidence)
    return Verdict(True, (), line + ".", evidence)


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


def dropout_backward(got: np.ndarray, dh: np.ndarray, mask: np.ndarray, rate: float) -> Verdict:
    """dropout_backward(dh, mask, rate) == dh * mask / (1 - rate) for a fixed mask (rtol 1e-10)."""
    if _close(got, dh * mask / (1 - rate), rtol=1e-10):
        return Verdict(True, (), f"dropout_backward = dh_dropped * mask / (1 - rate) (rate {rate}) for a fixed mask.")
    tag, text = _dropout_backward_bug(got, dh, mask, rate)
    return _no([tag], f"dropout_backward with a fixed mask: {text}.")
