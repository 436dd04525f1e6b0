"""Check 'forward': probabilities against the hidden reference on public and hidden cases."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import judges
from ..boundary import check_array
from ..nnmath import ACTIVATIONS, activate, softmax
from ..results import CheckResult
from .cases import Case, hidden_cases, make_case, public_toy
from .tolerances import reference_probs32
from .common import Context, explain_failure, failure_tag, split_points
from .spec import CheckSpec

if TYPE_CHECKING:
    from ..config import CourseConfig

SPEC = CheckSpec("forward", "Forward pass",
                 ("public toy case", "hidden cases (incl. N=1)", "large logits (numerical stability)"), 15,
                 "forward:run", ("forward",),
                 readme="`forward` on hidden random inputs of several sizes (N = 1 included): probabilities "
                        "compared with the reference's, rtol 1e-6 in float64.",
                 prompt="`forward(params, X)` returns `(probs, cache)`: softmax probabilities `(N, n_out)`, each row "
                        "summing to 1, for every N (including N=1) and without overflow on large logits.",
                 order=10)

LABELS = list(SPEC.labels)


def variants(case: Case, activation: str) -> dict[str, np.ndarray]:
    """The probs classic forward bugs give on ``case`` ({bug key: probs (N, n_out)}, in the order they
    are tried; their sentences are ``judges.FORWARD_BUGS``)."""
    p, X = case.params, case.X
    out = {f"wrong_activation={other}": softmax(activate(X @ p["W"].T + p["b"], other) @ p["V"].T + p["c"], 1)
           for other in ACTIVATIONS if other != activation}
    h = activate(X @ p["W"].T + p["b"], activation)
    logits = h @ p["V"].T + p["c"]
    out.update({
        "forward_missing_b": softmax(activate(X @ p["W"].T, activation) @ p["V"].T + p["c"], 1),
        "forward_missing_c": softmax(h @ p["V"].T, 1),
        "softmax_wrong_axis": softmax(logits, 0),
        "forward_missing_biases": softmax(activate(X @ p["W"].T, activation) @ p["V"].T, 1),
        "sigmoid_output": 0.5 * (1.0 + np.tanh(0.5 * logits)),
        "no_softmax": logits,
        "no_hidden_activation": softmax((X @ p["W"].T + p["b"]) @ p["V"].T + p["c"], 1),
    })
    return out


def diagnose_probs(probs: np.ndarray, case: Case, activation: str) -> tuple[list[str], str]:
    """Name the forward bug behind wrong ``probs`` (N, n_out)."""
    return judges.diagnose_probs(probs, variants(case, activation), activation)


def is_large_logit(case: Case) -> bool:
    """Only the large-logit case has such c: NaN/inf there means an overflowing softmax."""
    return bool(np.abs(case.params["c"]).max() > 500)


def _one(ctx: Context, case: Case, label: str, points: float) -> CheckResult:
    act = ctx.config.activation
    reply = ctx.session.call("forward", case.params | {"X": case.X})
    ctx.note_mutation("forward", reply)
    if not reply.ok:
        return CheckResult("forward", label, 0.0, points, f"{case.name}: {explain_failure('forward', reply)}",
                           failure_tag(reply))
    problems = reply.meta.get("problems") or []
    n_out = case.params["V"].shape[0]
    checked = check_array("probs", reply.arrays, "probs", (case.n, n_out), allow_nonfinite=True,
                          type_info=reply.meta.get("probs_type"))
    if not checked.ok:
        text = "; ".join([str(p) for p in problems[:2]] + [checked.problem])
        tag = ["wrong_shape"] if "shape" in checked.problem else ["wrong_type"]
        return CheckResult("forward", label, 0.0, points, f"{case.name}: {text}", tag)
    probs = checked.value
    expected, _ = ctx.ref.forward(case.params, case.X)
    expected32 = reference_probs32(ctx.ref, case.params, case.X) if probs.dtype == np.float32 else None
    verdict = judges.probs(probs, expected, expected32, variants(case, act), act, overflow=is_large_logit(case))
    if verdict.passed:
        ctx.right.add("forward")
    return CheckResult("forward", label, points if verdict.passed else 0.0, points, f"{case.name}: {verdict.message}",
                       list(verdict.diagnoses), dict(verdict.evidence))


def run(ctx: Context) -> list[CheckResult]:
    act = ctx.config.activation
    pts = split_points(ctx.config.rubric["forward"], LABELS)
    results = [_one(ctx, public_toy(act), LABELS[0], pts[0])]
    worst = None
    for case in hidden_cases(ctx.config, "forward"):
        r = _one(ctx, case, LABELS[1], pts[1])
        if not r.passed:
            worst = r
            break
    results.append(worst or CheckResult("forward", LABELS[1], pts[1], pts[1],
                                        "all hidden cases (including N=1) match the reference."))
    results.append(_one(ctx, large_logit_case(ctx.config), LABELS[2], pts[2]))
    return results


def large_logit_case(config: CourseConfig) -> Case:
    """A case whose every logit is above 750, so ``np.exp(logits)`` overflows unless the softmax
    subtracts the row maximum; the spread between logits stays realistic (tens)."""
    act = config.activation
    rng = np.random.default_rng(config.seed("forward-large"))
    case = make_case("large-logit case (every logit above 750)", rng, 8, 6, 5, 5, act, logit_scale=20.0)
    h = activate(case.X @ case.params["W"].T + case.params["b"], act)
    lowest = float((h @ case.params["V"].T + case.params["c"]).min())
    case.params["c"] = case.params["c"] + (1000.0 + max(0.0, 750.0 - (lowest + 1000.0)))
    return case
