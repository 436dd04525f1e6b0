"""Check 'sgd_step': the exact update p - lr * g for every key, without touching the gradients."""
from __future__ import annotations

import numpy as np

from ..boundary import check_array, tolerance
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, explain_failure, failure_tag, split_points

LABELS = ["exact update for every key", "gradients left unchanged"]


def matches(new: np.ndarray, x: np.ndarray, p: np.ndarray, g: np.ndarray, lr: float, rtol: float) -> bool:
    """``new`` equals ``x`` up to rounding in ``new``'s dtype. The scale is the size of the operands,
    |p| + lr*|g|, not of the result: where p and lr*g nearly cancel, a correct float32 update is off by
    float32 rounding of the operands, which is large relative to the small result."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(new - x) <= rtol * (np.abs(p) + lr * np.abs(g)) + 1e-14))


def _diagnose(key: str, new: np.ndarray, p: np.ndarray, g: np.ndarray, lr: float) -> tuple[str, str]:
    def close(x: np.ndarray) -> bool:
        return matches(new, x, p, g, lr, tolerance(new.dtype, 1e-10, 1e-5))

    if close(p + lr * g):
        return "sgd_ascends", f"{key} moved UP the gradient (p + lr*g): gradient descent subtracts, p - lr*g"
    if close(p):
        return "sgd_skips_key", f"{key} was not updated at all: every parameter must take a step"
    if close(p - g):
        return "sgd_ignores_lr", f"{key} moved by the full gradient: multiply it by learning_rate"
    if close(-lr * g) or close(lr * g):
        return "sgd_returns_step", f"{key} holds only the step (lr*g), not the updated parameter p - lr*g"
    if close(p - lr * lr * g) or close(p - g / lr):
        return "sgd_wrong_lr_use", f"{key} uses the learning rate the wrong way (p - lr*g is the rule)"
    return "sgd_wrong", f"{key} is not p - lr*g"


def run(ctx: Context) -> list[CheckResult]:
    pts = split_points(ctx.config.rubric["sgd_step"], LABELS)
    rng = np.random.default_rng(ctx.config.seed("sgd_step"))
    case = make_case("sgd case", rng, int(rng.integers(3, 15)), int(rng.integers(2, 10)), int(rng.integers(2, 8)),
                     3, ctx.config.activation)
    params = case.params
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    lr = float(rng.uniform(0.05, 0.9))
    arrays = {f"p_{k}": v for k, v in params.items()} | {f"g_{k}": v for k, v in grads.items()}
    reply = ctx.session.call("sgd_step", arrays, learning_rate=lr)
    if not reply.ok:
        msg = explain_failure("sgd_step", reply)
        return [CheckResult("sgd_step", label, 0.0, p, msg, failure_tag(reply)) for label, p in zip(LABELS, pts)]
    problems = [str(p) for p in (reply.meta.get("problems") or [])]
    keys = reply.meta.get("sgd_step_keys") or []
    types = reply.meta.get("sgd_step_types") or {}
    wrong: list[tuple[str, str]] = []
    if problems:
        wrong.append(("sgd_not_dict", problems[0] + ": return a dict with the keys W, b, V, c"))
    else:
        for key in PARAM_KEYS:
            if key not in keys:
                wrong.append(("sgd_skips_key", f"the returned dict has no key {key!r} (keys: {keys})"))
                continue
            checked = check_array(f"the new {key}", reply.arrays, f"new_{key}", params[key].shape,
                                  type_info=types.get(key) if isinstance(types, dict) else None)
            if not checked.ok:
                wrong.append(("wrong_shape", checked.problem))
                continue
            expected = params[key] - lr * grads[key]
            if not matches(checked.value, expected, params[key], grads[key], lr,
                           tolerance(checked.value.dtype, 1e-12, 1e-6)):
                wrong.append(_diagnose(key, checked.value, params[key], grads[key], lr))
    if wrong:
        first = [wrong[0]] + [w for w in wrong[1:] if w[0] != wrong[0][0]]
        update = CheckResult("sgd_step", LABELS[0], 0.0, pts[0], "; ".join(w[1] for w in first),
                             sorted({w[0] for w in wrong}))
    else:
        update = CheckResult("sgd_step", LABELS[0], pts[0], pts[0],
                             f"every key is updated exactly as p - lr*g (lr = {lr:.3f}).")
    changed = reply.meta.get("mutated") or []
    if changed:
        inputs = CheckResult("sgd_step", LABELS[1], 0.0, pts[1],
                             f"sgd_step changed its gradients ({', '.join(map(str, changed[:4]))}): read them, "
                             "do not modify them (updating params in place is fine).", ["sgd_mutates_grads"])
    else:
        inputs = CheckResult("sgd_step", LABELS[1], pts[1], pts[1], "the gradients were left unchanged.")
    return [update, inputs]
