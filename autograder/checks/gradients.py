"""Check 'gradients': the student's backward against central finite differences of the TRUE loss."""
from __future__ import annotations

import hashlib

import numpy as np

from ..boundary import check_array, tolerance
from ..gradcheck import relative_error
from ..results import CheckResult
from .cases import (PARAM_KEYS, Case, fd_agrees_with_reference, hidden_cases, public_toy, reference_gradients,
                    true_gradients)
from .common import Context, explain_failure, failure_tag, split_points, zero_results
from .known_bugs import diagnose_gradient

PASS_FLOAT64 = 1e-6
FD_CLEAN = 1e-7          # FD this close to the reference's analytic gradient is used as the truth as is
FD_NOISE_LIMIT = 1e-5    # beyond this, reference and FD disagree for real
PASS_FLOAT32 = 1e-4
_TRUTH: dict[str, dict[str, np.ndarray]] = {}   # finite differences per case: the same for every submission


def cases(ctx: Context) -> list[Case]:
    """The public toy plus two hidden cases, each verified to be well conditioned for FD."""
    chosen = [public_toy(ctx.config.activation)] + hidden_cases(ctx.config, "gradients", count=2)
    return chosen


def truth(ctx: Context, case: Case) -> dict[str, np.ndarray]:
    """Central finite differences of the true loss on ``case`` (checked against the reference's
    analytic gradient once), cached: every submission of a class gets the same hidden cases."""
    digest = hashlib.sha256(repr((getattr(ctx.ref, "__file__", ""), ctx.config.activation, case.name)).encode())
    for array in (*case.params.values(), case.X, case.Y):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()
    if key not in _TRUTH:
        fd = true_gradients(ctx.ref, case)
        sanity = fd_agrees_with_reference(ctx.ref, case, fd)
        if sanity >= FD_NOISE_LIMIT:
            # a disagreement this large is a broken reference, not rounding: fail loudly (the check
            # turns it into an "internal grader error" result and the release gate refuses)
            raise RuntimeError(f"grader case {case.name}: reference gradient and finite differences differ "
                               f"by {sanity:.1e}; the reference solution is wrong")
        if sanity >= FD_CLEAN:
            # finite-difference rounding noise on this case (seen up to 4e-8 for relu over 750 secrets):
            # the reference's analytic gradient of the same true loss is the more exact truth
            fd = reference_gradients(ctx.ref, case)
        if len(_TRUTH) > 64:
            _TRUTH.clear()
        _TRUTH[key] = fd
    return {k: v.copy() for k, v in _TRUTH[key].items()}


def _own_forward_hint(ctx: Context, case: Case, grads: dict[str, np.ndarray]) -> str:
    """Do the student's gradients match finite differences of the student's OWN forward?"""
    reply = ctx.session.call("fd_student", case.params | {"X": case.X, "Y": case.Y})
    if not reply.ok:
        return ""
    errs = {k: relative_error(grads[k], reply.arrays[f"fd_{k}"]) for k in PARAM_KEYS
            if k in grads and f"fd_{k}" in reply.arrays and reply.arrays[f"fd_{k}"].shape == grads[k].shape}
    if len(errs) == 4 and max(errs.values()) < 1e-5:
        return (" Your backward does agree with finite differences of your OWN forward, so the bug is in "
                "forward (the forward check says what), not in backward.")
    return ""


def run(ctx: Context) -> list[CheckResult]:
    act = ctx.config.activation
    labels = list(PARAM_KEYS)
    points = dict(zip(labels, split_points(ctx.config.rubric["gradients"], labels)))
    rel: dict[str, list[float]] = {k: [] for k in PARAM_KEYS}
    failures: dict[str, tuple[list[str], str]] = {}
    hint_case: tuple[Case, dict[str, np.ndarray]] | None = None
    for case in cases(ctx):
        fd = truth(ctx, case)
        reply = ctx.session.call("forward_backward", case.params | {"X": case.X, "Y": case.Y})
        ctx.note_mutation("forward/backward", reply)
        if not reply.ok:
            fn = "backward" if reply.kind == "not_implemented" and "backward" in reply.error else "forward/backward"
            return zero_results("gradients", labels, ctx.config.rubric["gradients"],
                                f"{case.name}: {explain_failure(fn, reply)}", failure_tag(reply))
        problems = reply.meta.get("problems") or []
        types = reply.meta.get("backward_types") or {}
        grads = {}
        for key in PARAM_KEYS:
            if key in failures:
                continue
            checked = check_array(f"dL/d{key}", reply.arrays, f"grad_{key}", case.params[key].shape,
                                  type_info=types.get(key) if isinstance(types, dict) else None)
            if not checked.ok:
                extra = f" ({'; '.join(map(str, problems[:2]))})" if problems else ""
                problem = checked.problem
                tag = ("bias_not_summed" if key in "bc" and "sum over the batch" in problem else
                       "nan_inf" if checked.nonfinite else
                       "grad_transposed" if "transposed" in problem else
                       "wrong_shape" if "shape" in problem else "wrong_type")
                failures[key] = ([tag], f"{case.name}: {checked.problem}{extra}")
                continue
            grads[key] = checked.value
            err = relative_error(checked.value, fd[key])
            rel[key].append(err)
            if err > tolerance(checked.value.dtype, PASS_FLOAT64, PASS_FLOAT32):
                tags, text = diagnose_gradient(key, checked.value.astype(np.float64), fd[key], case, act)
                failures[key] = (tags or ["grad_wrong"], f"{case.name}: relative error {err:.2e} against finite "
                                 f"differences of the true loss. {text or 'No known bug pattern matches; compare with your derivation step by step.'}")
                if hint_case is None:
                    hint_case = (case, grads)
    hint = _own_forward_hint(ctx, *hint_case) if hint_case else ""
    results = []
    for key in PARAM_KEYS:
        evidence = {"relative_errors": rel[key]}
        if key in failures:
            tags, text = failures[key]
            results.append(CheckResult("gradients", key, 0.0, points[key], text + hint, tags, evidence))
        else:
            worst = max(rel[key]) if rel[key] else float("nan")
            results.append(CheckResult("gradients", key, points[key], points[key],
                                       f"dL/d{key} matches finite differences of the true loss on "
                                       f"{len(rel[key])} cases (worst relative error {worst:.1e}).", [], evidence))
    return results
