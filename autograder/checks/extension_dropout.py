"""The dropout extension's check: ``dropout_forward(h, rate, rng)`` judged by the expected value of the
dropped layer over many masks, the keep rate and the 0/1 mask; ``dropout_backward(dh, mask, rate)``
by the gradient for a fixed mask. Shapes: h, dh, mask (N, n_hidden)."""
from __future__ import annotations

import numpy as np

from ..boundary import check_array
from ..results import CheckResult
from ..worker.session import Reply
from .common import Context, split_points
from .extension_common import LABELS, _call, _close, _fail, _failed, _pass

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
    mask = mask.astype(np.float64)
    kept = dropped != 0  # h > 0 everywhere, so a kept unit is never 0
    keep_frac = float(kept.mean())
    scale = float(np.mean(dropped[kept] / np.broadcast_to(h, dropped.shape)[kept])) if kept.any() else 0.0
    mean_ratio = float(dropped.mean(axis=0).sum() / h.sum())
    evidence = {"keep_fraction": keep_frac, "scale_of_kept_units": scale, "mean_over_masks_ratio": mean_ratio,
                "draws": n, "rate": rate}
    keep, inv = 1 - rate, 1 / (1 - rate)
    expected_line = (f"over {n} masks the mean of h_dropped is {mean_ratio:.3f} h (expected 1.000 h); "
                     f"{100 * keep_frac:.1f}% of the units were kept (expected {100 * keep:.0f}% at rate {rate})")
    if abs(keep_frac - keep) > 0.03:
        if abs(keep_frac - rate) < 0.03:
            return False, (f"{expected_line}: it keeps units with probability rate; rate is the probability of "
                           "DROPPING a unit, keep with probability 1 - rate"), ["dropout_rate_is_keep"], evidence
        if keep_frac > 0.999:
            return False, f"{expected_line}: no unit was dropped", ["dropout_no_mask"], evidence
        return False, expected_line, ["dropout_wrong_rate"], evidence
    if not np.isclose(scale, inv, rtol=1e-6):
        if np.isclose(scale, 1.0, rtol=1e-6):
            return False, (f"{expected_line}: kept units are not rescaled by 1/(1-rate), so the expected hidden "
                           f"layer is (1-rate)·h = {keep:.2f} h instead of h"), ["dropout_not_rescaled"], evidence
        if np.isclose(scale, keep, rtol=1e-6):
            return False, (f"{expected_line}: kept units are multiplied by (1-rate); inverted dropout DIVIDES them "
                           "by 1-rate"), ["dropout_wrong_scale"], evidence
        if np.isclose(scale, 1 / rate, rtol=1e-6):
            return False, f"{expected_line}: kept units are divided by rate; divide by 1 - rate", \
                ["dropout_wrong_scale"], evidence
        return False, f"{expected_line}: kept units are scaled by {scale:.4f}, expected 1/(1-rate) = {inv:.4f}", \
            ["dropout_wrong_scale"], evidence
    if abs(mean_ratio - 1) > 0.03:
        return False, expected_line, ["dropout_biased"], evidence
    if not np.all((mask == 0) | (mask == 1)):
        return False, ("the mask must hold 1.0 for kept units and 0.0 for dropped ones (the 1/(1-rate) scale "
                       "belongs in h_dropped and in dropout_backward)"), ["dropout_mask_scaled"], evidence
    if not np.array_equal(mask != 0, kept):
        return False, "the mask does not match h_dropped: mask must be 1 exactly where the unit was kept", \
            ["dropout_mask_mismatch"], evidence
    if n > 1 and all(np.array_equal(mask[0], mask[i]) for i in range(1, n)):
        return False, ("every call used the same mask: draw a new one from rng each call (do not re-seed)"),\
            ["dropout_same_mask"], evidence
    return True, expected_line + ".", [], evidence


def _dropout_backward_bug(got: np.ndarray, dh: np.ndarray, mask: np.ndarray, rate: float) -> tuple[str, str]:
    named = [
        (dh * mask, "dropout_not_rescaled", "the gradient is not rescaled by 1/(1-rate): the forward pass divided "
                                            "the kept units by 1-rate, so the backward pass must too"),
        (dh * mask * (1 - rate), "dropout_wrong_scale", "the gradient is multiplied by (1-rate); divide by it"),
        (dh * mask / rate, "dropout_wrong_scale", "the gradient is divided by rate; divide by 1 - rate"),
        (dh / (1 - rate), "dropout_backward_no_mask", "the mask is not applied: dropped units get no gradient"),
        (dh * (1 - mask) / (1 - rate), "dropout_mask_inverted", "the mask is inverted: 1 marks a KEPT unit"),
        (dh, "dropout_backward_identity", "dh_dropped is returned unchanged: apply the mask and the 1/(1-rate) scale"),
    ]
    for cand, tag, text in named:
        if _close(got, cand):
            return tag, text
    return "dropout_backward_wrong", "expected dh_dropped * mask / (1 - rate)"


def check_dropout(ctx: Context, total: float) -> list[CheckResult]:
    labels, pts = LABELS["dropout"], split_points(total, LABELS["dropout"])
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
                ok, tags = False, ["dropout_ignores_rng"]
                message = ("two calls with equally seeded generators gave different masks: draw the mask from the "
                           "rng argument (rng.random(h.shape)), not from np.random")
        out.append(_pass("dropout", labels[0], pts[0], message, **evidence) if ok
                   else _fail("dropout", labels[0], pts[0], message, tags, **evidence))

    dh = rng.standard_normal(h.shape)
    mask = (rng.random(h.shape) >= rate).astype(np.float64)
    reply = _call(ctx, "dropout_backward", {"dh": dh, "mask": mask}, ["dh", "mask", "rate"], scalars={"rate": rate})
    if not reply.ok:
        return out + _failed("dropout", labels[1:], pts[1:], "dropout_backward", reply)
    checked = check_array("the gradient dropout_backward returned", reply.arrays, "out_0", h.shape,
                          type_info=(reply.meta.get("types") or {}).get("0"))
    expected = dh * mask / (1 - rate)
    # the gradient of sum(dh * h_dropped) with respect to h, with this mask: d(h * mask / (1-rate)) / dh
    if not checked.ok:
        out.append(_fail("dropout", labels[1], pts[1], checked.problem, ["wrong_shape"]))
    elif _close(checked.value, expected, rtol=1e-10):
        out.append(_pass("dropout", labels[1], pts[1], f"dropout_backward = dh_dropped * mask / (1 - rate) "
                         f"(rate {rate}) for a fixed mask."))
    else:
        tag, text = _dropout_backward_bug(checked.value, dh, mask, rate)
        out.append(_fail("dropout", labels[1], pts[1], f"dropout_backward with a fixed mask: {text}.", [tag]))
    return out
