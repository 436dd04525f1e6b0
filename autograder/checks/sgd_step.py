"""Check 'sgd_step': the exact update p - lr * g for every key, without touching the gradients."""
from __future__ import annotations

import numpy as np

from .. import judges
from ..boundary import check_array
from ..gradcheck import relative_error
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, explain_failure, failure_tag, split_points
from .registry import LABELS as REGISTRY_LABELS

LABELS = REGISTRY_LABELS["sgd_step"]


matches = judges.sgd_matches  # the rule, shipped verbatim (autograder/judges.py)


def _judge(reply, params, grads, lr) -> tuple[list[tuple[str, str]], set[str], dict[str, np.ndarray]]:
    """(what is wrong, the keys updated exactly, the new values) for one sgd_step call."""
    problems = [str(p) for p in (reply.meta.get("problems") or [])]
    keys = reply.meta.get("sgd_step_keys") or []
    types = reply.meta.get("sgd_step_types") or {}
    wrong: list[tuple[str, str]] = []
    right: set[str] = set()
    values: dict[str, np.ndarray] = {}
    if problems:
        return [("sgd_not_dict", problems[0] + ": return a dict with the keys W, b, V, c")], right, values
    for key in PARAM_KEYS:
        if key not in keys:
            wrong.append(("sgd_skips_key", f"the returned dict has no key {key!r} (keys: {keys})"))
            continue
        checked = check_array(f"the new {key}", reply.arrays, f"new_{key}", params[key].shape,
                              type_info=types.get(key) if isinstance(types, dict) else None)
        if not checked.ok:
            wrong.append(("wrong_shape", checked.problem))
            continue
        values[key] = checked.value
        verdict = judges.sgd_key(key, checked.value, params[key], grads[key], lr)
        if verdict.passed:
            right.add(key)
        else:
            wrong.append((verdict.diagnoses[0], verdict.message))
    return wrong, right, values


def _stateful(calls: list[tuple]) -> tuple[str, str]:
    """Name the hidden state behind a first call that is right and a later one that is not:
    ``calls`` = [(p1, g1, lr1), (p2, g2, lr2, the second call's new values)]."""
    g1, (p2, g2, lr2, values2) = calls[0][1], calls[1]
    fits = []
    for key in values2:
        extra = (p2[key] - values2[key]) - lr2 * g2[key]   # what was subtracted beyond lr * g
        denom = float(np.sum(g1[key] * g1[key]))
        if denom == 0:
            continue
        mu = float(np.sum(extra * g1[key])) / denom
        fits.append((mu, relative_error(extra, mu * g1[key])))
    if fits and all(res < 1e-6 for _, res in fits) and all(abs(m) > 1e-9 for m, _ in fits):
        return "sgd_momentum", ("sgd_step remembers the previous call's gradient (momentum): the second call moved "
                                "the parameters by lr*g plus a multiple of the FIRST call's gradient. This "
                                "assignment's sgd_step is plain SGD, p - lr*g, depending only on its arguments")
    return "hidden_state", ("sgd_step gives a different result for the same arguments depending on earlier calls "
                            "(a step counter, a learning-rate schedule, stored values): it must depend only on "
                            "params, grads and learning_rate")


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
    wrong, right, _ = _judge(replies[0], params, grads, lr)
    if wrong:
        first = [wrong[0]] + [w for w in wrong[1:] if w[0] != wrong[0][0]]
        update = CheckResult("sgd_step", LABELS[0], 0.0, pts[0], "; ".join(w[1] for w in first),
                             sorted({w[0] for w in wrong}))
    else:
        wrong2, _, values2 = _judge(replies[1], params2, grads2, lr2)
        wrong3, _, values3 = _judge(replies[2], params, grads, lr)
        if wrong2 or wrong3:
            tag, text = _stateful([(params, grads, lr), (params2, grads2, lr2, values2)])
            update = CheckResult("sgd_step", LABELS[0], 0.0, pts[0],
                                 f"the first call is right, but of three calls in a row the "
                                 f"{'second' if wrong2 else 'third (a repeat of the first)'} is not: {text}.", [tag])
        else:
            update = CheckResult("sgd_step", LABELS[0], pts[0], pts[0],
                                 f"every key is updated exactly as p - lr*g, on each of three calls in a row "
                                 f"(lr = {lr:.3f}, {lr2:.3f}, {lr:.3f}).")
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
