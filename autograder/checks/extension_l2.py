"""Optional extension check 'l2' (weight decay): the penalty's value, and the gradient of the penalized
loss against central finite differences (float64) of ``mean NLL + (wd/2)(|W|^2 + |V|^2)`` around the
hidden reference's gradients. A wrong answer is compared with the known bugs (a factor 2 or 1/2 in the
gradient, ...) so the message names the likely one (``extension_judges``)."""
from __future__ import annotations

import numpy as np

from .. import extension_judges as judges
from ..boundary import check_array
from ..gradcheck import mean_nll, numerical_gradient
from ..results import CheckResult
from .cases import PARAM_KEYS, make_case
from .common import Context, split_points
from .extension_common import _call, _fail, _failed, _pass, _scalar
from .spec import CheckSpec

SPEC = CheckSpec("l2", "l2",  # titles of extensions: their ids, as feedback pages always showed
                 ("penalty value", "gradient of the penalized loss"), 5,
                 "extension_l2:check_l2", ("l2_penalty", "l2_penalty_grads"), extension=True,
                 readme="`l2_penalty` and `l2_penalty_grads` (weight decay on W and V).",
                 prompt="Optional extension (L2 weight decay): `l2_penalty(params, weight_decay)` returns "
                        "`(weight_decay/2)(|W|² + |V|²)`; `l2_penalty_grads(params, grads, weight_decay)` returns the "
                        "gradients of the penalized loss (weight decay on W and V only).",
                 order=10)


def check_l2(ctx: Context, total: float) -> list[CheckResult]:
    labels = list(SPEC.labels)
    pts = split_points(total, labels)
    rng = np.random.default_rng(ctx.config.seed("extension_l2"))
    case = make_case("l2 case", rng, int(rng.integers(4, 9)), int(rng.integers(3, 7)), int(rng.integers(2, 5)),
                     int(rng.integers(3, 7)), ctx.config.activation)
    params, X, Y = case.params, case.X, case.Y
    wd = float(rng.uniform(0.2, 0.6))
    p_arrays = {f"p_{k}": v for k, v in params.items()}
    out: list[CheckResult] = []

    # 1. the value
    reply = _call(ctx, "l2_penalty", p_arrays, ["params", "weight_decay"], scalars={"weight_decay": wd})
    if not reply.ok:
        out += _failed("l2", labels[:1], pts[:1], "l2_penalty", reply)
    else:
        value, problem = _scalar(reply, "out_0", "the value l2_penalty returned")
        if problem:
            out.append(_fail("l2", labels[0], pts[0], problem + "; return one float", ["wrong_type"]))
        else:
            verdict = judges.l2_value(value, params, wd)
            out.append(CheckResult("l2", labels[0], pts[0] if verdict.passed else 0.0, pts[0], verdict.message,
                                   list(verdict.diagnoses), dict(verdict.evidence)))

    # 2. the gradient of the penalized loss, against finite differences of the penalized loss
    probs, cache = ctx.ref.forward(params, X)
    grads = ctx.ref.backward(params, cache, Y)
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}

    def penalized() -> float:
        return mean_nll(ctx.ref.forward(work, X)[0], Y) + 0.5 * wd * float(np.sum(work["W"] ** 2) + np.sum(work["V"] ** 2))

    numeric = {k: numerical_gradient(penalized, work[k]) for k in PARAM_KEYS}
    reply = _call(ctx, "l2_penalty_grads", p_arrays | {f"g_{k}": v for k, v in grads.items()},
                  ["params", "grads", "weight_decay"], scalars={"weight_decay": wd})
    if not reply.ok:
        return out + _failed("l2", labels[1:], pts[1:], "l2_penalty_grads", reply)
    types = reply.meta.get("types") or {}
    wrong: list[tuple[str, str]] = []
    errors: dict[str, float] = {}
    for key in PARAM_KEYS:
        checked = check_array(f"the returned {key}", reply.arrays, f"out_{key}", params[key].shape,
                              type_info=types.get(key))
        if not checked.ok:
            wrong.append(("wrong_shape" if "shape" in (checked.problem or "") else "wrong_type", checked.problem))
            continue
        errors[key], problem = judges.l2_grad_key(key, checked.value, grads[key], params[key], wd, numeric[key])
        if problem:
            wrong.append(problem)
    evidence = {"relative_errors": errors, "weight_decay": wd}
    if wrong:
        first = [wrong[0]] + [w for w in wrong[1:] if w[1] != wrong[0][1]]
        out.append(_fail("l2", labels[1], pts[1], "; ".join(w[1] for w in first[:4]) + ".",
                         sorted({w[0] for w in wrong}), **evidence))
    else:
        note = ""
        changed = reply.meta.get("mutated") or []
        if changed:
            note = f" (note: it modified its inputs {', '.join(map(str, changed[:4]))}; returning a new dict is safer)"
        worst = max(errors.values()) if errors else 0.0
        out.append(_pass("l2", labels[1], pts[1], "the gradients match finite differences of the penalized loss "
                         f"(largest relative error {worst:.1e}; weight_decay = {wd:.3f}){note}.", **evidence))
    return out
