"""Check 'minibatch': batch gradient = mean of per-example gradients, rows independent, N=1 and odd N,
inputs not mutated."""
from __future__ import annotations

import numpy as np

from .. import judges
from ..boundary import check_array
from ..results import CheckResult
from .cases import PARAM_KEYS, Case, make_case, reference_gradients
from .common import Context, explain_failure, failure_tag, split_points, squeeze_to
from .spec import CheckSpec
from .tolerances import reference_gradients32, reference_probs32

SPEC = CheckSpec("minibatch", "Minibatches",
                 ("mean of per-example gradients", "rows independent", "N=1 and odd N", "inputs not mutated"), 20,
                 "minibatch:run", ("forward", "backward"),
                 readme="batch gradients equal the mean of per-example gradients; each output row depends only "
                        "on its own input row; N = 1 and odd N work; inputs are not modified.",
                 prompt="The gradient of a batch is the mean of the per-example gradients; each output row depends "
                        "only on its input row; N=1 and odd N work; `forward` and `backward` never modify their "
                        "inputs.",
                 order=30)

LABELS = list(SPEC.labels)


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
    return judges.right_keys(grads, reference_gradients(ctx.ref, case),
                             reference_gradients32(ctx.ref, case.params, case.X, case.Y))


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
    ref_batch = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
    ref_singles = [reference_gradients32(ctx.ref, case.params, case.X[i:i + 1], case.Y[i:i + 1]) for i in range(case.n)]
    verdict = judges.batch_mean(batch, singles, usable, ref_batch, ref_singles)
    return CheckResult("minibatch", label, points if verdict.passed else 0.0, points, verdict.message,
                       list(verdict.diagnoses), dict(verdict.evidence))


def _perturbed(ctx: Context, case: Case) -> np.ndarray:
    return perturbed(ctx.ref, case, ctx.config.seed("minibatch-rows"))


def perturbed(ref, case: Case, seed: int) -> np.ndarray:
    """``case.X`` with example 0 changed enough that the reference's probabilities for example 0 move
    (a shift that leaves every ReLU of example 0 off would make the test vacuous)."""
    base, _ = ref.forward(case.params, case.X)
    rng = np.random.default_rng(seed)
    X2 = case.X.copy()
    for attempt in range(50):
        X2 = case.X.copy()
        X2[0] += 3.0 if attempt == 0 else 3.0 * rng.standard_normal(case.X.shape[1])
        moved, _ = ref.forward(case.params, X2)
        if np.abs(moved[0] - base[0]).max() > 1e-3:
            break
    return X2


def _rows_independent(ctx: Context, case: Case, points: float, X2: np.ndarray | None = None) -> CheckResult:
    label = LABELS[1]
    first = ctx.session.call("forward", case.params | {"X": case.X})
    X2 = _perturbed(ctx, case) if X2 is None else X2
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
    expected, _ = ctx.ref.forward(case.params, case.X)
    verdict = judges.rows_independent(a.value, b.value, expected, reference_probs32(ctx.ref, case.params, case.X))
    return CheckResult("minibatch", label, points if verdict.passed else 0.0, points, verdict.message,
                       list(verdict.diagnoses))


def _sizes(ctx: Context, cases: list[Case], points: float) -> CheckResult:
    label = LABELS[2]
    explained: CheckResult | None = None
    for case in cases:
        grads, why, tags = _grads(ctx, case)
        if grads is None:
            return CheckResult("minibatch", label, 0.0, points, why, tags)  # why names the case
        verdict = judges.batch_size(grads, reference_gradients(ctx.ref, case),
                                    reference_gradients32(ctx.ref, case.params, case.X, case.Y), case.n)
        if not verdict.passed:
            return CheckResult("minibatch", label, 0.0, points, f"{case.name}: {verdict.message}",
                               list(verdict.diagnoses))
        if verdict.diagnoses and explained is None:  # right up to the batch factor the mean test charges
            explained = CheckResult("minibatch", label, points, points, f"{case.name}: {verdict.message}",
                                    list(verdict.diagnoses))
    return explained or CheckResult("minibatch", label, points, points, "gradients are right for N=1 and for an odd N.")


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


def cases(config) -> tuple[Case, list[Case]]:
    """(the batch of 6, [N=1, N=7]) from the config's seed (the otter/nbgrader tests use the same)."""
    act = config.activation
    rng = np.random.default_rng(config.seed("minibatch"))
    n_in, n_hidden, n_out = int(rng.integers(4, 20)), int(rng.integers(3, 12)), int(rng.integers(2, 8))
    batch = make_case("batch of 6", rng, n_in, n_hidden, n_out, 6, act)
    sizes = [make_case("N=1", rng, n_in, n_hidden, n_out, 1, act),
             make_case("N=7", rng, n_in, n_hidden, n_out, 7, act)]
    return batch, sizes


def run(ctx: Context) -> list[CheckResult]:
    pts = split_points(ctx.config.rubric["minibatch"], LABELS)
    batch, sizes = cases(ctx.config)
    results = [_mean_of_examples(ctx, batch, pts[0]), _rows_independent(ctx, batch, pts[1])]
    results.append(_sizes(ctx, sizes, pts[2]))
    results.append(_not_mutated(ctx, pts[3]))
    return results
