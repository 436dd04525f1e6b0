"""Check 'sgd_step': the exact update p - lr * g for every key, without touching the gradients."""
from __future__ import annotations

import numpy as np

from .. import judges
from ..boundary import check_array
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, explain_failure, failure_tag, split_points
from .spec import CheckSpec

SPEC = CheckSpec("sgd_step", "SGD step", ("exact update for every key", "gradients left unchanged"), 10,
                 "sgd_step:run", ("sgd_step",),
                 readme="the exact update `p - learning_rate * g` for every key; the gradients are not modified "
                        "(updating params in place is fine).",
                 prompt="`sgd_step(params, grads, learning_rate)` returns `{k: params[k] - learning_rate * grads[k]}` "
                        "for every key and leaves `grads` unchanged.",
                 order=40)

LABELS = list(SPEC.labels)


matches = judges.sgd_matches  # the rule, shipped verbatim (autograder/judges.py)


def _returned(reply, params) -> object:
    """What one sgd_step call returned, as judges.sgd_calls takes it (validated at the boundary)."""
    problems = [str(p) for p in (reply.meta.get("problems") or [])]
    if problems:
        return problems[0]
    keys = reply.meta.get("sgd_step_keys") or []
    types = reply.meta.get("sgd_step_types") or {}
    out: dict = {}
    for key in PARAM_KEYS:
        if key not in keys:
            out[key] = ("sgd_skips_key", f"the returned dict has no key {key!r} (keys: {keys})")
            continue
        checked = check_array(f"the new {key}", reply.arrays, f"new_{key}", params[key].shape,
                              type_info=types.get(key) if isinstance(types, dict) else None)
        out[key] = checked.value if checked.ok else ("wrong_shape", checked.problem)
    return out


def cases(config) -> list[tuple[dict, dict, float]]:
    """[(params, grads, lr), (params2, grads2, lr2)] from the config's seed; the grader calls sgd_step on
    the first, the second, then the first again (the otter/nbgrader tests use the same draws)."""
    rng = np.random.default_rng(config.seed("sgd_step"))
    case = make_case("sgd case", rng, int(rng.integers(3, 15)), int(rng.integers(2, 10)), int(rng.integers(2, 8)),
                     3, config.activation)
    params = case.params
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    lr = float(rng.uniform(0.05, 0.9))
    params2 = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    grads2 = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    lr2 = float(rng.uniform(0.05, 0.9))
    return [(params, grads, lr), (params2, grads2, lr2)]


def run(ctx: Context) -> list[CheckResult]:
    """Three calls on the same worker: (p1, g1, lr1), (p2, g2, lr2), then (p1, g1, lr1) again; every
    result must be exactly p - lr*g, and the third must equal the first."""
    pts = split_points(ctx.config.rubric["sgd_step"], LABELS)
    (params, grads, lr), (params2, grads2, lr2) = cases(ctx.config)
    replies = []
    for p, g, step in ((params, grads, lr), (params2, grads2, lr2), (params, grads, lr)):
        arrays = {f"p_{k}": v for k, v in p.items()} | {f"g_{k}": v for k, v in g.items()}
        reply = ctx.session.call("sgd_step", arrays, learning_rate=step)
        if not reply.ok:
            msg = explain_failure("sgd_step", reply)
            return [CheckResult("sgd_step", label, 0.0, pt, msg, failure_tag(reply)) for label, pt in zip(LABELS, pts)]
        replies.append(reply)
    calls = [(p, g, step, _returned(reply, p)) for (p, g, step), reply
             in zip(((params, grads, lr), (params2, grads2, lr2), (params, grads, lr)), replies)]
    verdict, right = judges.sgd_calls(calls)
    update = CheckResult("sgd_step", LABELS[0], pts[0] if verdict.passed else 0.0, pts[0], verdict.message,
                         list(verdict.diagnoses))
    changed = sorted({str(c) for r in replies for c in (r.meta.get("mutated") or [])})
    if changed:
        inputs = CheckResult("sgd_step", LABELS[1], 0.0, pts[1],
                             f"sgd_step changed its gradients ({', '.join(changed[:4])}): read them, "
                             "do not modify them (updating params in place is fine).", ["sgd_mutates_grads"])
    elif not right:
        inputs = CheckResult("sgd_step", LABELS[1], 0.0, pts[1],
                             "not credited: no key was updated correctly, so leaving the gradients unchanged "
                             "shows nothing yet (fix the update first).", ["not_credited"])
    else:
        inputs = CheckResult("sgd_step", LABELS[1], pts[1], pts[1], "the gradients were left unchanged.")
    return [update, inputs]
