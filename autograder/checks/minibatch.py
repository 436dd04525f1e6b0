"""Check 'minibatch': batch gradient = mean of per-example gradients, rows independent, N=1 and odd N,
inputs not mutated."""
from __future__ import annotations

import numpy as np

from ..boundary import check_array, tolerance
from ..gradcheck import best_scale
from ..results import CheckResult
from .cases import PARAM_KEYS, Case, make_case, reference_gradients
from .common import Context, explain_failure, failure_tag, split_points, squeeze_to
from .registry import LABELS as REGISTRY_LABELS
from .tolerances import grad_scale, reference_gradients32, reference_probs32, scaled_error, threshold

LABELS = REGISTRY_LABELS["minibatch"]


def _described(reply) -> dict | None:
    """What the worker said probs was (type, shape), for the message only: the forward check already
    penalises a subclass, this test judges independence of the values."""
    info = reply.meta.get("probs_type")
    return {k: info[k] for k in ("type", "shape") if k in info} if isinstance(info, dict) else None


def _tag(problem: str) -> str:
    return "grad_transposed" if "transposed" in problem else "wrong_shape" if "shape" in problem else "wrong_type"


def _grads(ctx: Context, case: Case) -> tuple[dict[str, np.ndarray] | None, str, list[str]]:
    reply = ctx.session.call("forward_backward", case.params | {"X": case.X, "Y": case.Y})
    ctx.note_mutation("forward/backward", reply)
    if not reply.ok:
        return None, explain_failure("forward/backward", reply), failure_tag(reply)
    types = reply.meta.get("backward_types") or {}
    grads = {}
    arrays = {k: squeeze_to(v, case.params[k[5:]].shape) if k[5:] in case.params else v
              for k, v in reply.arrays.items() if k.startswith("grad_")}  # a (1, n) bias is the gradients check's
    for key in PARAM_KEYS:
        checked = check_array(f"dL/d{key}", arrays, f"grad_{key}", case.params[key].shape,
                              type_info=types.get(key) if isinstance(types, dict) else None)
        if not checked.ok:
            return None, f"{case.name}: {checked.problem}", [_tag(checked.problem)]
        grads[key] = checked.value
    return grads, "", []


def _right(ctx: Context, case: Case, grads: dict[str, np.ndarray]) -> set[str]:
    """The keys whose gradient is right on ``case`` (float32 judged against the reference in float32)."""
    truth = reference_gradients(ctx.ref, case)
    ref32 = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
    scale = grad_scale(truth)
    return {k for k in PARAM_KEYS if scaled_error(grads[k], truth[k], scale)
            <= threshold(grads[k].dtype, 1e-6, scaled_error(ref32[k], truth[k], scale))}


def _mean_of_examples(ctx: Context, case: Case, points: float) -> CheckResult:
    """Judged on the keys whose per-example gradients are right (zero or wrong per-example gradients
    are trivially "averaged" and earn nothing here)."""
    label = LABELS[0]
    batch, why, tags = _grads(ctx, case)
    if batch is None:
        return CheckResult("minibatch", label, 0.0, points, why, tags)
    singles, usable = [], set(PARAM_KEYS)
    for i in range(case.n):
        one = Case(f"example {i}", case.params, case.X[i:i + 1], case.Y[i:i + 1])
        g, why, tags = _grads(ctx, one)
        if g is None:
            return CheckResult("minibatch", label, 0.0, points, f"on a single example: {why}", tags)
        singles.append(g)
        usable &= _right(ctx, one, g)
    if not usable:
        return CheckResult("minibatch", label, 0.0, points,
                           "not credited: the per-example gradients are wrong for every parameter (the gradients "
                           "check says why), so whether the batch gradient is their mean shows nothing yet.",
                           ["not_credited"])
    scale = grad_scale({k: np.mean([s[k] for s in singles], axis=0) for k in PARAM_KEYS})
    worst_key, worst = max(((k, scaled_error(batch[k], np.mean([s[k] for s in singles], axis=0), scale))
                            for k in sorted(usable)), key=lambda kv: kv[1])
    ref_batch = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
    ref_singles = [reference_gradients32(ctx.ref, case.params, case.X[i:i + 1], case.Y[i:i + 1]) for i in range(case.n)]
    ref32 = max(scaled_error(ref_batch[k], np.mean([s[k] for s in ref_singles], axis=0), scale) for k in usable)
    tol = threshold(np.result_type(*[batch[k].dtype for k in usable]), 1e-8, ref32)
    evidence = {"relative_error": worst, "parameter": worst_key, "judged_on": sorted(usable)}
    if worst <= tol:
        return CheckResult("minibatch", label, points, points,
                           f"the gradient of a batch of {case.n} equals the mean of its {case.n} per-example "
                           f"gradients (worst relative error {worst:.1e}, judged on {', '.join(sorted(usable))}).",
                           [], evidence)
    mean = np.mean([s[worst_key] for s in singles], axis=0)
    scale, residual = best_scale(batch[worst_key].astype(np.float64), mean)
    if residual < 1e-6 and abs(scale - case.n) < 1e-3 * case.n:
        text, tag = (f"the batch gradient dL/d{worst_key} is the SUM of the per-example gradients, N={case.n} "
                     "times their mean: the loss is the mean over the batch, so divide by N"), "grad_factor_n"
    elif residual < 1e-6 and abs(scale * case.n - 1) < 1e-3:
        text, tag = (f"the batch gradient dL/d{worst_key} is 1/N of the mean of per-example gradients: you "
                     "divide by N twice"), "grad_factor_1_over_n"
    else:
        text, tag = (f"the batch gradient dL/d{worst_key} is not the mean of the per-example gradients "
                     f"(relative error {worst:.2e}): some step mixes examples or drops part of the batch"), \
            "batch_not_mean"
    return CheckResult("minibatch", label, 0.0, points, text, [tag], evidence)


def _perturbed(ctx: Context, case: Case) -> np.ndarray:
    """``case.X`` with example 0 changed enough that the reference's probabilities for example 0 move
    (a shift that leaves every ReLU of example 0 off would make the test vacuous)."""
    base, _ = ctx.ref.forward(case.params, case.X)
    rng = np.random.default_rng(ctx.config.seed("minibatch-rows"))
    X2 = case.X.copy()
    for attempt in range(50):
        X2 = case.X.copy()
        X2[0] += 3.0 if attempt == 0 else 3.0 * rng.standard_normal(case.X.shape[1])
        moved, _ = ctx.ref.forward(case.params, X2)
        if np.abs(moved[0] - base[0]).max() > 1e-3:
            break
    return X2


def _rows_independent(ctx: Context, case: Case, points: float) -> CheckResult:
    label = LABELS[1]
    first = ctx.session.call("forward", case.params | {"X": case.X})
    X2 = _perturbed(ctx, case)
    second = ctx.session.call("forward", case.params | {"X": X2})
    for r in (first, second):
        ctx.note_mutation("forward", r)
        if not r.ok:
            return CheckResult("minibatch", label, 0.0, points, explain_failure("forward", r), failure_tag(r))
    shape = (case.n, case.params["V"].shape[0])
    a = check_array("probs", first.arrays, "probs", shape, type_info=_described(first))
    b = check_array("probs", second.arrays, "probs", shape, type_info=_described(second))
    if not (a.ok and b.ok):
        problem = a.problem or b.problem
        return CheckResult("minibatch", label, 0.0, points, problem, [_tag(problem)])
    changed = np.abs(a.value[1:] - b.value[1:]).max()
    tol = tolerance(a.value.dtype, 1e-12, 1e-6)
    if changed <= tol:
        expected, _ = ctx.ref.forward(case.params, case.X)
        ref32 = reference_probs32(ctx.ref, case.params, case.X)
        off = float(np.max(np.abs(a.value - expected)))
        if off > threshold(a.value.dtype, 1e-6, float(np.max(np.abs(ref32 - expected)))):
            return CheckResult("minibatch", label, 0.0, points,
                               f"not credited: probs are wrong on this case (off by up to {off:.2g}; the forward check "
                               "says why), so rows that do not depend on each other show nothing yet.",
                               ["not_credited"])
        return CheckResult("minibatch", label, points, points,
                           "changing example 0 leaves the probabilities of the other examples unchanged.")
    return CheckResult("minibatch", label, 0.0, points,
                       f"changing only example 0 changed the probabilities of OTHER examples (by up to "
                       f"{changed:.2e}): each row must depend only on its own input. A softmax or a "
                       "normalisation over axis=0 (the batch) does this; use axis=1.", ["rows_depend_on_each_other"])


def _sizes(ctx: Context, cases: list[Case], points: float) -> CheckResult:
    label = LABELS[2]
    for case in cases:
        grads, why, tags = _grads(ctx, case)
        if grads is None:
            return CheckResult("minibatch", label, 0.0, points, why, tags)  # why names the case
        truth = reference_gradients(ctx.ref, case)
        ref32 = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
        scale = grad_scale(truth)
        for key in PARAM_KEYS:
            err = scaled_error(grads[key], truth[key], scale)
            if err > threshold(grads[key].dtype, 1e-6, scaled_error(ref32[key], truth[key], scale)):
                hint = ("even for a single example, so the bug is not in how the batch is summed or "
                        "averaged: the gradients check names it" if case.n == 1 else
                        "though the shapes are right; check sums and means over the batch axis for this N")
                return CheckResult("minibatch", label, 0.0, points,
                                   f"{case.name}: dL/d{key} is wrong (relative error {err:.2e}) {hint}.",
                                   ["batch_size_dependent"])
    return CheckResult("minibatch", label, points, points, "gradients are right for N=1 and for an odd N.")


def _not_mutated(ctx: Context, points: float) -> CheckResult:
    label = LABELS[3]
    if not {"forward", "forward/backward"} & ctx.succeeded:
        return CheckResult("minibatch", label, 0.0, points, "could not be checked: forward/backward never "
                           "completed (see the other tests).", ["not_checked"])
    if not ctx.mutations and not {"forward", "backward"} & ctx.right:
        return CheckResult("minibatch", label, 0.0, points, "not credited: neither forward nor backward was right on "
                           "any case yet, so leaving the inputs unchanged shows nothing (see the other checks).",
                           ["not_credited"])
    if not ctx.mutations:
        return CheckResult("minibatch", label, points, points,
                           "forward and backward left their inputs (params, X, Y) unchanged.")
    where = "; ".join(f"{fn} changed {', '.join(sorted(names))}" for fn, names in sorted(ctx.mutations.items()))
    return CheckResult("minibatch", label, 0.0, points,
                       f"{where}. Functions must not modify their inputs in place (e.g. `X -= ...` or "
                       "`params['W'] *= ...`); compute new arrays instead.", ["input_mutated"])


def run(ctx: Context) -> list[CheckResult]:
    act = ctx.config.activation
    pts = split_points(ctx.config.rubric["minibatch"], LABELS)
    rng = np.random.default_rng(ctx.config.seed("minibatch"))
    n_in, n_hidden, n_out = int(rng.integers(4, 20)), int(rng.integers(3, 12)), int(rng.integers(2, 8))
    batch = make_case("batch of 6", rng, n_in, n_hidden, n_out, 6, act)
    results = [_mean_of_examples(ctx, batch, pts[0]), _rows_independent(ctx, batch, pts[1])]
    sizes = [make_case("N=1", rng, n_in, n_hidden, n_out, 1, act),
             make_case("N=7", rng, n_in, n_hidden, n_out, 7, act)]
    results.append(_sizes(ctx, sizes, pts[2]))
    results.append(_not_mutated(ctx, pts[3]))
    return results
