"""The dropout extension's check: ``dropout_forward(h, rate, rng)`` judged by the expected value of the
dropped layer over many masks, the keep rate and the 0/1 mask; ``dropout_backward(dh, mask, rate)``
by the gradient for a fixed mask. Shapes: h, dh, mask (N, n_hidden)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import extension_judges as judges
from ..boundary import check_array
from ..results import CheckResult
from .common import Context, split_points
from .extension_common import _call, _fail, _failed, _pass
from .spec import CheckSpec

if TYPE_CHECKING:
    from ..worker.session import Reply

SPEC = CheckSpec("dropout", "dropout",
                 ("expected value of the hidden layer", "gradient with a fixed mask"), 5,
                 "extension_dropout:check_dropout", ("dropout_forward", "dropout_backward"), extension=True,
                 readme="`dropout_forward` (inverted dropout, mask from `rng`) and `dropout_backward`.",
                 prompt="Optional extension (inverted dropout): `dropout_forward(h, rate, rng)` returns `(h_dropped, "
                        "mask)`, dropping each unit with probability `rate` and dividing the kept ones by `1 - rate`, "
                        "the mask drawn from `rng`; `dropout_backward(dh, mask, rate)` returns `dh * mask / (1 - rate)`.",
                 order=30)

DROPOUT_RATE = 0.3      # not 0.5, so "rate" and "keep probability" cannot be confused unnoticed
DROPOUT_DRAWS = 400


def _dropout_forward_result(reply: Reply, h: np.ndarray, rate: float, draws: int) -> tuple[bool, str, list[str], dict]:
    n = draws
    types = reply.meta.get("types") or {}
    if "out_0" not in reply.arrays or "out_1" not in reply.arrays:
        got = ", ".join(f"{k}: {v.get('type')}" for k, v in types.items()) or "nothing usable"
        return False, (f"dropout_forward must return the pair (h_dropped, mask) of arrays shaped like h; it returned "
                       f"{got}"), ["wrong_type"], {}
    dropped, mask = reply.arrays["out_0"], reply.arrays["out_1"]
    if dropped.shape != (n,) + h.shape or mask.shape != (n,) + h.shape:
        return False, (f"h_dropped and mask must have h's shape {h.shape}; got {dropped.shape[1:]} and "
                       f"{mask.shape[1:]}"), ["wrong_shape"], {}
    if dropped.dtype.kind != "f" or not np.all(np.isfinite(dropped)):
        return False, "h_dropped must be a finite float array", ["wrong_type"], {}
    if "h" in (reply.meta.get("mutated") or []):
        return False, "dropout_forward changed h in place: return a new array", ["dropout_mutates_h"], {}
    verdict = judges.dropout_forward(h, dropped, mask, rate)
    return verdict.passed, verdict.message, list(verdict.diagnoses), dict(verdict.evidence)


def check_dropout(ctx: Context, total: float) -> list[CheckResult]:
    labels = list(SPEC.labels)
    pts = split_points(total, labels)
    rng = np.random.default_rng(ctx.config.seed("extension_dropout"))
    rate = DROPOUT_RATE
    h = rng.uniform(0.1, 2.0, size=(int(rng.integers(4, 9)), int(rng.integers(10, 26))))
    seed = int(rng.integers(2**31))
    out: list[CheckResult] = []

    reply = _call(ctx, "dropout_forward", {"h": h}, ["h", "rate", "rng"], scalars={"rate": rate}, seed=seed,
                  repeat=DROPOUT_DRAWS)
    if not reply.ok:
        out += _failed("dropout", labels[:1], pts[:1], "dropout_forward", reply)
    else:
        ok, message, tags, evidence = _dropout_forward_result(reply, h, rate, DROPOUT_DRAWS)
        if ok:  # the same seed must give the same mask: the mask comes from the rng passed in
            again = _call(ctx, "dropout_forward", {"h": h}, ["h", "rate", "rng"], scalars={"rate": rate},
                          seed=seed, repeat=1)
            first = reply.arrays["out_0"][0]
            if again.ok and "out_0" in again.arrays and not np.array_equal(again.arrays["out_0"], first):
                ok, tags, message = False, ["dropout_ignores_rng"], judges.DROPOUT_IGNORES_RNG
        out.append(_pass("dropout", labels[0], pts[0], message, **evidence) if ok
                   else _fail("dropout", labels[0], pts[0], message, tags, **evidence))

    dh = rng.standard_normal(h.shape)
    mask = (rng.random(h.shape) >= rate).astype(np.float64)
    reply = _call(ctx, "dropout_backward", {"dh": dh, "mask": mask}, ["dh", "mask", "rate"], scalars={"rate": rate})
    if not reply.ok:
        return out + _failed("dropout", labels[1:], pts[1:], "dropout_backward", reply)
    checked = check_array("the gradient dropout_backward returned", reply.arrays, "out_0", h.shape,
                          type_info=(reply.meta.get("types") or {}).get("0"))
    # the gradient of sum(dh * h_dropped) with respect to h, with this mask: d(h * mask / (1-rate)) / dh
    if not checked.ok:
        out.append(_fail("dropout", labels[1], pts[1], checked.problem, ["wrong_shape"]))
    else:
        verdict = judges.dropout_backward(checked.value, dh, mask, rate)
        out.append(CheckResult("dropout", labels[1], pts[1] if verdict.passed else 0.0, pts[1], verdict.message,
                               list(verdict.diagnoses)))
    return out
