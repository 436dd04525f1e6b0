"""What the extension checks share: their labels, calling an allow-listed extension function in the
worker and turning its reply into results (autograder/checks/extensions.py)."""
from __future__ import annotations

import numpy as np

from ..results import CheckResult
from ..worker.session import Reply
from .common import Context, explain_failure, failure_tag
from .registry import LABELS  # noqa: F401 - the extension checks' labels



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
