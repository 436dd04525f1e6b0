"""What the checks of the optional extensions share (extension_l2.py, extension_early_stopping.py,
extension_dropout.py): calling an allow-listed function in the worker and turning its reply into results.
Each extension is scored separately and only when course.toml enables it.

Check ids (results.json names ``"<id>: <label>"``): ``l2`` (weight decay), ``early_stopping`` and
``dropout`` (inverted dropout). The student writes the functions in mlp.py (reference:
``solutions/extensions.py``); the worker calls them through the harness's ``call_extension`` op and
every expected value is computed here, in the parent, never taken from the worker:

* l2: the penalty's value, and the gradient of the penalized loss against central finite differences
  (float64) of ``mean NLL + (wd/2)(|W|^2 + |V|^2)`` around the hidden reference's gradients;
* early_stopping: (stop_epoch, best_epoch) on fixed and seeded validation curves;
* dropout: the expected value of the dropped hidden layer over many masks (≈ h), the keep rate and
  the 0/1 mask, and the gradient ``dropout_backward`` returns for a fixed mask.

A wrong answer is compared with the known bugs (missing 1/(1-rate), factor 2 or 1/2 in the L2 gradient,
stopping one epoch early or late, ...) so the message names the likely one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results import CheckResult
from .common import Context, explain_failure, failure_tag

if TYPE_CHECKING:
    from ..worker.session import Reply



def _call(ctx: Context, function: str, arrays: dict[str, np.ndarray], order: list[str], **extra) -> Reply:
    reply = ctx.session.call("call_extension", arrays, function=function, order=order, **extra)
    ctx.note_mutation(function, reply)
    return reply


def _failed(check_id: str, labels: list[str], pts: list[float], function: str, reply: Reply) -> list[CheckResult]:
    msg = explain_failure(function, reply)
    return [CheckResult(check_id, label, 0.0, p, msg, failure_tag(reply)) for label, p in zip(labels, pts)]


def _scalar(reply: Reply, key: str, what: str) -> tuple[float | None, str | None]:
    """A returned number (0-d array or one-element array), or the reason it is not one."""
    info = (reply.meta.get("types") or {}).get(key.removeprefix("out_"), {})
    if key not in reply.arrays:
        return None, f"{what} is missing or not a number (it was a {info.get('type', 'nothing')})"
    arr = reply.arrays[key]
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        return None, f"{what} is not a single number (shape {arr.shape}, dtype {arr.dtype})"
    value = float(arr.reshape(-1)[0])
    if not np.isfinite(value):
        return None, f"{what} is {value}"
    return value, None


def _pass(check_id: str, label: str, pts: float, message: str, **evidence) -> CheckResult:
    return CheckResult(check_id, label, pts, pts, message, [], evidence)


def _fail(check_id: str, label: str, pts: float, message: str, tags: list[str], **evidence) -> CheckResult:
    return CheckResult(check_id, label, 0.0, pts, message, tags, evidence)


# ---------------------------------------------------------------------------------------------
# L2 weight decay
