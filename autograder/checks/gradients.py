"""Check 'gradients': the student's backward against central finite differences of the TRUE loss, on
the public toy, two hidden cases and a real-size 784-100-10 batch of 100 (random directional
derivatives there: two reference forward passes per direction), then the toy again (same inputs, same
gradients: no hidden state)."""
from __future__ import annotations

import hashlib

import numpy as np

from .. import judges
from ..boundary import check_array
from ..gradcheck import relative_error
from ..results import CheckResult
from .cases import (PARAM_KEYS, Case, fd_agrees_with_reference, hidden_cases, mnist_size_case, public_toy,
                    reference_gradients, true_gradients, true_loss)
from .common import Context, explain_failure, failure_tag, split_points, zero_results
from .known_bugs import diagnose_gradient, gradient_variants
from .spec import CheckSpec
from .tolerances import grad_scale, reference_gradients32, threshold

SPEC = CheckSpec("gradients", "Gradients (finite differences of the true loss)", ("W", "b", "V", "c"), 35,
                 "gradients:run", ("forward", "backward"),
                 readme="`backward` against central finite differences of the true loss, per parameter "
                        "(relative error under 1e-6 in float64).",
                 prompt="`backward(params, cache, Y)` returns the gradients of the MEAN negative log-likelihood over "
                        "the batch, a dict with the keys and shapes of `params`. Each parameter is a test.",
                 order=20)

PASS_FLOAT64 = 1e-6
FD_CLEAN = 1e-7          # FD this close to the reference's analytic gradient is used as the truth as is
FD_NOISE_LIMIT = 1e-5    # beyond this, reference and FD disagree for real
DIRECTIONS = 3           # random directions per parameter on the real-size case
_TRUTH: dict[str, dict[str, np.ndarray]] = {}   # per case: the same for every submission of a class


def cases(ctx: Context) -> list[Case]:
    """The public toy plus two hidden cases, each verified to be well conditioned for FD."""
    return gradient_cases(ctx.config)


def gradient_cases(config) -> list[Case]:
    """The cases of this check, from the config's seeds (the otter/nbgrader tests use the same)."""
    return [public_toy(config.activation)] + hidden_cases(config, "gradients", count=2)


def _key(ctx: Context, case: Case, extra: str = "") -> str:
    digest = hashlib.sha256(repr((getattr(ctx.ref, "__file__", ""), ctx.config.activation, case.name, extra)).encode())
    for array in (*case.params.values(), case.X, case.Y):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _remember(key: str, value: dict[str, np.ndarray]) -> None:
    if len(_TRUTH) > 64:
        _TRUTH.clear()
    _TRUTH[key] = value


def truth(ctx: Context, case: Case) -> dict[str, np.ndarray]:
    """Central finite differences of the true loss on ``case`` (checked against the reference's
    analytic gradient once), cached: every submission of a class gets the same hidden cases."""
    key = _key(ctx, case)
    if key not in _TRUTH:
        fd = true_gradients(ctx.ref, case)
        sanity = fd_agrees_with_reference(ctx.ref, case, fd)
        if sanity >= FD_NOISE_LIMIT:
            raise RuntimeError(f"grader case {case.name}: reference gradient and finite differences differ "
                               f"by {sanity:.1e}; the reference solution is wrong")
        if sanity >= FD_CLEAN:
            # finite-difference rounding noise on this case (seen up to 4e-8 for relu over 750 secrets):
            # the reference's analytic gradient of the same true loss is the more exact truth
            fd = reference_gradients(ctx.ref, case)
        _remember(key, fd)
    return {k: v.copy() for k, v in _TRUTH[key].items()}


def directional_truth(ctx: Context, case: Case, h: float = 1e-5) -> dict[str, np.ndarray]:
    """For the real-size case: ``dir_K`` (DIRECTIONS, *shape) unit random directions and ``val_K``
    (DIRECTIONS,) the true loss's directional derivatives along them, from two reference forward
    passes each, confirmed by the reference's analytic gradient (a direction whose difference quotient
    crosses a ReLU kink is redrawn)."""
    key = _key(ctx, case, "directions")
    if key not in _TRUTH:
        rng = np.random.default_rng(ctx.config.seed("gradients-directions"))
        analytic = reference_gradients(ctx.ref, case)
        out: dict[str, np.ndarray] = {}
        for k in PARAM_KEYS:
            dirs, vals = [], []
            for _ in range(20 * DIRECTIONS):
                d = rng.standard_normal(case.params[k].shape)
                d /= np.linalg.norm(d)
                plus = {**case.params, k: case.params[k] + h * d}
                minus = {**case.params, k: case.params[k] - h * d}
                fd = (true_loss(ctx.ref, plus, case.X, case.Y) - true_loss(ctx.ref, minus, case.X, case.Y)) / (2 * h)
                exact = float(np.sum(analytic[k] * d))
                if abs(fd - exact) <= FD_NOISE_LIMIT * max(abs(fd) + abs(exact), 1e-8):
                    dirs.append(d)
                    vals.append(exact if abs(fd - exact) > FD_CLEAN * max(abs(fd) + abs(exact), 1e-8) else fd)
                if len(dirs) == DIRECTIONS:
                    break
            if len(dirs) < DIRECTIONS:
                raise RuntimeError(f"grader case {case.name}: no direction for {k} where the reference agrees "
                                   "with finite differences; the reference solution is wrong")
            out[f"dir_{k}"], out[f"val_{k}"] = np.stack(dirs), np.array(vals)
        _remember(key, out)
    return {k: v.copy() for k, v in _TRUTH[key].items()}


def key_verdict(case: Case, key: str, value: np.ndarray, fd: dict, ref32: dict, scale: float,
                activation: str) -> judges.Verdict:
    """The judge's verdict on a validated dL/d``key`` for ``case`` (the known bugs named only when wrong)."""
    ok, err = judges.gradient_error(value, fd[key], ref32[key], scale)
    if ok:
        return judges.Verdict(True, (), "", {"relative_error": err})
    found, messages = gradient_variants(key, case, activation)
    return judges.gradient(key, value, fd[key], ref32[key], scale, case.n, case.Y.shape[1], found, messages)


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


def _call(ctx: Context, case: Case):
    reply = ctx.session.call("forward_backward", case.params | {"X": case.X, "Y": case.Y})
    ctx.note_mutation("forward/backward", reply)
    return reply


def _shape_problem(key: str, checked, problems: list, shape: tuple[int, ...] = ()) -> tuple[list[str], str]:
    problem = checked.problem or ""
    if key in "bc" and problem.startswith(f"dL/d{key} has shape (1, {shape[0] if shape else ''})") and len(shape) == 1:
        return ["bias_keepdims"], (f"dL/d{key} has shape (1, {shape[0]}), expected ({shape[0]},): a bias gradient "
                                   "is a vector; sum over the batch axis without keepdims=True")
    extra = f" ({'; '.join(map(str, problems[:2]))})" if problems else ""
    tag = ("bias_not_summed" if key in "bc" and "sum over the batch" in problem else
           "nan_inf" if checked.nonfinite else
           "grad_transposed" if "transposed" in problem else
           "wrong_shape" if "shape" in problem else "wrong_type")
    return [tag], problem + extra


def run(ctx: Context) -> list[CheckResult]:
    act = ctx.config.activation
    labels = list(SPEC.labels)
    points = dict(zip(labels, split_points(ctx.config.rubric["gradients"], labels)))
    rel: dict[str, list[float]] = {k: [] for k in PARAM_KEYS}
    failures: dict[str, tuple[list[str], str]] = {}
    hint_case: tuple[Case, dict[str, np.ndarray]] | None = None
    first_grads: dict[str, np.ndarray] = {}
    small_ok: set[str] = set()
    for case in cases(ctx):
        fd = truth(ctx, case)
        reply = _call(ctx, case)
        if not reply.ok:
            fn = "backward" if reply.kind == "not_implemented" and "backward" in reply.error else "forward/backward"
            return zero_results("gradients", labels, ctx.config.rubric["gradients"],
                                f"{case.name}: {explain_failure(fn, reply)}", failure_tag(reply))
        problems = reply.meta.get("problems") or []
        types = reply.meta.get("backward_types") or {}
        ref32 = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
        scale = grad_scale(fd)
        grads = {}
        for key in PARAM_KEYS:
            checked = check_array(f"dL/d{key}", reply.arrays, f"grad_{key}", case.params[key].shape,
                                  type_info=types.get(key) if isinstance(types, dict) else None)
            if not checked.ok:
                failures.setdefault(key, (lambda t, m: (t, f"{case.name}: {m}"))(*_shape_problem(key, checked, problems, case.params[key].shape)))
                continue
            grads[key] = checked.value
            if case.public:
                first_grads[key] = checked.value
            verdict = key_verdict(case, key, checked.value, fd, ref32, scale, act)
            rel[key].append(verdict.evidence["relative_error"])
            if verdict.passed:
                small_ok.add(key)
                continue
            tags = [] if verdict.diagnoses == ("grad_wrong",) else list(verdict.diagnoses)
            if key in failures and (not tags or set(failures[key][0]) - {"grad_wrong"}):
                continue  # keep the first diagnosed failure; a later case may name what an earlier could not
            failures[key] = (tags or ["grad_wrong"], f"{case.name}: {verdict.message}")
            if hint_case is None:
                hint_case = (case, grads)
    _real_size(ctx, rel, failures, small_ok)
    _repeat_toy(ctx, first_grads, failures)
    hint = _own_forward_hint(ctx, *hint_case) if hint_case else ""
    results = []
    for key in PARAM_KEYS:
        evidence = {"relative_errors": rel[key]}
        if key in failures:
            tags, text = failures[key]
            if not hint and tags == ["grad_wrong"]:
                text += " No known bug pattern matches; compare with your derivation step by step."
            text = text.rstrip(".") + "."
            results.append(CheckResult("gradients", key, 0.0, points[key], text + hint, tags, evidence))
        else:
            worst = max(rel[key]) if rel[key] else float("nan")
            results.append(CheckResult("gradients", key, points[key], points[key],
                                       f"dL/d{key} matches finite differences of the true loss on "
                                       f"{len(rel[key])} cases, one of MNIST size (worst relative error "
                                       f"{worst:.1e}).", [], evidence))
    if any(k in failures for k in PARAM_KEYS):
        ctx.right.discard("backward")
    else:
        ctx.right.add("backward")
    return results


def _real_size(ctx: Context, rel: dict[str, list[float]], failures: dict, small_ok: set[str]) -> None:
    """The 784-100-10 batch of 100: directional derivatives of the student's gradient vs the truth."""
    case = mnist_size_case(ctx.config)
    truth_dirs = directional_truth(ctx, case)
    reply = _call(ctx, case)
    if not reply.ok:
        for key in PARAM_KEYS:
            failures.setdefault(key, (failure_tag(reply), f"{case.name}: {explain_failure('forward/backward', reply)}"))
        return
    types = reply.meta.get("backward_types") or {}
    ref32 = reference_gradients32(ctx.ref, case.params, case.X, case.Y)
    analytic = None
    for key in PARAM_KEYS:
        checked = check_array(f"dL/d{key}", reply.arrays, f"grad_{key}", case.params[key].shape,
                              type_info=types.get(key) if isinstance(types, dict) else None)
        if key in failures:
            if checked.ok and failures[key][0] == ["grad_wrong"]:  # 10 classes, N=100: name what the small cases could not
                analytic = reference_gradients(ctx.ref, case) if analytic is None else analytic
                tags, text = diagnose_gradient(key, checked.value.astype(np.float64), analytic[key], case,
                                               ctx.config.activation)
                if tags:
                    failures[key] = (tags, f"{case.name}: {text}")
            continue
        if not checked.ok:
            failures[key] = (lambda t, m: (t, f"{case.name}: {m}"))(*_shape_problem(key, checked, [], case.params[key].shape))
            continue
        dirs, vals = truth_dirs[f"dir_{key}"], truth_dirs[f"val_{key}"]
        along = np.array([float(np.sum(checked.value.astype(np.float64) * d)) for d in dirs])
        along32 = np.array([float(np.sum(ref32[key].astype(np.float64) * d)) for d in dirs])
        err, err32 = relative_error(along, vals), relative_error(along32, vals)
        rel[key].append(err)
        if err <= threshold(checked.value.dtype, PASS_FLOAT64, err32):
            continue
        zero = not np.any(checked.value)
        where = ("right on the small cases but " if key in small_ok else "")
        failures[key] = (["grad_wrong_at_scale" if key in small_ok else "grad_wrong"],
                         f"{case.name}: dL/d{key} is {where}wrong on a real-size batch: its directional "
                         f"derivatives along {len(dirs)} random directions are off by {err:.2e} (relative) from "
                         "finite differences of the true loss" + (
                             " - it is all zeros there" if zero else "") +
                         (". Backward must compute the gradient analytically for any size, not only on small "
                          "problems" if key in small_ok else "."))


def _repeat_toy(ctx: Context, first: dict[str, np.ndarray], failures: dict) -> None:
    """The public toy again, after the other cases: identical inputs must give identical gradients."""
    if not first:
        return
    case = public_toy(ctx.config.activation)
    reply = _call(ctx, case)
    if not reply.ok:
        return
    changed = []
    for key, before in first.items():
        again = reply.arrays.get(f"grad_{key}")
        if again is None or again.shape != before.shape or relative_error(again, before) > 1e-12:
            changed.append(key)
    if changed:
        text = (f"called again on the public toy case with the same inputs, backward returned different "
                f"gradients for {', '.join(changed)}: it keeps hidden state between calls (a call counter, a "
                "cached value, a running average); it must depend only on params, cache and Y")
        for key in changed:
            if key not in failures:
                failures[key] = (["hidden_state"], text)
            else:
                failures[key] = (failures[key][0] + ["hidden_state"], failures[key][1] + " Also: " + text + ".")
