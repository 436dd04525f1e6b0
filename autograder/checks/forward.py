"""Check 'forward': probabilities against the hidden reference on public and hidden cases."""
from __future__ import annotations

import numpy as np

from ..boundary import check_array
from ..config import ACTIVATIONS, CourseConfig
from ..nnmath import activate, softmax
from ..results import CheckResult
from .cases import Case, hidden_cases, make_case, public_toy
from .tolerances import FLOAT32_FLOOR, reference_probs32, threshold
from .common import Context, explain_failure, failure_tag, split_points
from .registry import LABELS as REGISTRY_LABELS

LABELS = REGISTRY_LABELS["forward"]


def _variants(case: Case, activation: str) -> list[tuple[str, str, np.ndarray]]:
    """Outputs of classic forward bugs on ``case``: (bug id, TA sentence, probs)."""
    p, X = case.params, case.X
    out = []
    for other in ACTIVATIONS:
        if other != activation:
            h = activate(X @ p["W"].T + p["b"], other)
            out.append(("wrong_activation", f"your hidden layer uses {other}, but this year's activation is "
                        f"{activation} (see ACTIVATION at the top of mlp.py)", softmax(h @ p["V"].T + p["c"], 1)))
    h = activate(X @ p["W"].T + p["b"], activation)
    logits = h @ p["V"].T + p["c"]
    out += [
        ("forward_missing_b", "the hidden layer ignores the bias b (a = X W^T + b)",
         softmax(activate(X @ p["W"].T, activation) @ p["V"].T + p["c"], 1)),
        ("forward_missing_c", "the output layer ignores the bias c (logits = h V^T + c)", softmax(h @ p["V"].T, 1)),
        ("softmax_wrong_axis", "the softmax normalises over the batch axis (columns) instead of over the "
         "classes of each example (rows): use axis=1", softmax(logits, 0)),
        ("forward_missing_biases", "both biases are missing: the hidden layer ignores b (a = X W^T + b) and the "
         "output layer ignores c (logits = h V^T + c)", softmax(activate(X @ p["W"].T, activation) @ p["V"].T, 1)),
        ("sigmoid_output", "the output layer applies a sigmoid to each logit; the output must be a softmax over "
         "the classes (exp of each logit divided by the sum over its row)", 0.5 * (1.0 + np.tanh(0.5 * logits))),
        ("no_softmax", "you return the logits: apply the softmax to turn them into probabilities", logits),
        ("no_hidden_activation", "the hidden layer has no activation: h = f(a), not h = a",
         softmax((X @ p["W"].T + p["b"]) @ p["V"].T + p["c"], 1)),
    ]
    return out


def diagnose_probs(probs: np.ndarray, case: Case, activation: str) -> tuple[list[str], str]:
    """Name the forward bug behind wrong ``probs`` (N, n_out)."""
    for bug_id, text, variant in _variants(case, activation):
        if variant.shape == probs.shape and np.allclose(probs, variant, rtol=1e-5, atol=1e-8):
            return [bug_id], text
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-5):
        return ["rows_not_normalised"], (f"rows of probs do not sum to 1 (row sums from {sums.min():.4g} to "
                                         f"{sums.max():.4g}): the softmax must normalise each row")
    return [], ""


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
    if checked.nonfinite:
        overflow = bool(np.abs(case.params["c"]).max() > 500)  # only the large-logit case has such c
        text = ("probs contain NaN or inf" + (": your softmax overflows on large logits. Subtract each row's "
                "maximum logit before np.exp; the result is the same, and exp never sees a large number"
                if overflow else ""))
        return CheckResult("forward", label, 0.0, points, f"{case.name}: {text}",
                           ["softmax_overflow" if overflow else "nan_inf"])
    rtol, atol = 1e-6, 1e-9
    err = float(np.max(np.abs(probs - expected) / (atol + rtol * np.abs(expected))))
    limit = 1.0
    if probs.dtype == np.float32:  # what the reference itself achieves in float32 on these inputs
        ref32 = reference_probs32(ctx.ref, case.params, case.X)
        limit = threshold(probs.dtype, 1.0, float(np.max(np.abs(ref32 - expected) / (atol + rtol * np.abs(expected)))))
        limit = max(limit, FLOAT32_FLOOR / rtol)
    evidence = {"max_abs_error": float(np.max(np.abs(probs - expected))), "dtype": str(probs.dtype)}
    if err <= limit:
        ctx.right.add("forward")
        return CheckResult("forward", label, points, points,
                           f"{case.name}: probs match the reference (max |difference| "
                           f"{evidence['max_abs_error']:.1e}, dtype {probs.dtype}).", evidence=evidence)
    tags, text = diagnose_probs(probs.astype(np.float64), case, act)
    text = text or "probs differ from the reference; check each step: a, h = f(a), logits, softmax"
    return CheckResult("forward", label, 0.0, points,
                       f"{case.name}: {text} (max |difference| from the reference "
                       f"{evidence['max_abs_error']:.3g}).", tags or ["forward_wrong"], evidence)


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
