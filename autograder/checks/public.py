"""The grader's own verdicts on the PUBLIC cases, through the sandboxed worker, the boundary and the same
judges as the graded checks: what the public self-tests must agree with (tests/test_agreement.py).
Keys: ``forward``, ``rows``, ``batch_mean``, ``gradients:<K>``, ``sgd``; values (passed, diagnoses)."""
from __future__ import annotations

from .. import judges
from ..boundary import check_array
from . import forward, gradients, minibatch, sgd_step
from .common import failure_tag
from .cases import PARAM_KEYS, public_sgd_calls, public_toy
from .common import Context
from .judge_data import PUBLIC_ROWS_SEED
from .tolerances import grad_scale, reference_gradients32

Outcome = tuple[bool, tuple[str, ...]]


def _gradients(ctx: Context) -> dict[str, Outcome]:
    toy = public_toy(ctx.config.activation)
    reply = gradients._call(ctx, toy)
    if not reply.ok:
        return {f"gradients:{k}": (False, tuple(failure_tag(reply))) for k in PARAM_KEYS}
    fd = gradients.truth(ctx, toy)
    ref32 = reference_gradients32(ctx.ref, toy.params, toy.X, toy.Y)
    types = reply.meta.get("backward_types") or {}
    out: dict[str, Outcome] = {}
    for key in PARAM_KEYS:
        checked = check_array(f"dL/d{key}", reply.arrays, f"grad_{key}", toy.params[key].shape,
                              type_info=types.get(key) if isinstance(types, dict) else None)
        if not checked.ok:
            out[f"gradients:{key}"] = (False, tuple(gradients._shape_problem(key, checked, [], toy.params[key].shape)[0]))
            continue
        v = gradients.key_verdict(toy, key, checked.value, fd, ref32, grad_scale(fd), ctx.config.activation)
        out[f"gradients:{key}"] = (v.passed, () if v.passed else v.diagnoses)
    return out


def _sgd(ctx: Context) -> Outcome:
    (p, g, lr), (p2, g2, lr2) = public_sgd_calls()
    calls = []
    for params, grads, step in ((p, g, lr), (p2, g2, lr2), (p, g, lr)):
        arrays = {f"p_{k}": v for k, v in params.items()} | {f"g_{k}": v for k, v in grads.items()}
        reply = ctx.session.call("sgd_step", arrays, learning_rate=step)
        if not reply.ok:
            return False, tuple(failure_tag(reply))
        calls.append((params, grads, step, sgd_step._returned(reply, params)))
    verdict, _ = judges.sgd_calls(calls)
    return verdict.passed, verdict.diagnoses


def verdicts(ctx: Context) -> dict[str, Outcome]:
    """Every public case's verdict, in the order the public self-tests judge them."""
    toy = public_toy(ctx.config.activation)
    out: dict[str, Outcome] = {}
    r = forward._one(ctx, toy, "public toy case", 1.0)
    out["forward"] = (r.passed, tuple(r.diagnoses))
    r = minibatch._rows_independent(ctx, toy, 1.0, minibatch.perturbed(ctx.ref, toy, PUBLIC_ROWS_SEED))
    out["rows"] = (r.passed, tuple(r.diagnoses))
    r = minibatch._mean_of_examples(ctx, toy, 1.0)
    out["batch_mean"] = (r.passed, tuple(r.diagnoses))
    out.update(_gradients(ctx))
    out["sgd"] = _sgd(ctx)
    return out
