"""Optional extension check 'early_stopping': ``early_stopping(valid_errors, patience)`` returns
``(stop_epoch, best_epoch)`` on fixed and seeded validation curves; a wrong pair is compared with the
known bugs (stopping one epoch early or late, a tie counted as an improvement, ...)."""
from __future__ import annotations

import numpy as np

from .. import extension_judges as judges
from ..extension_judges import expected_early_stopping  # noqa: F401 - the rule, for release/expected.py
from ..results import CheckResult
from .common import Context, split_points
from .extension_common import _call, _fail, _failed, _scalar
from .spec import CheckSpec

SPEC = CheckSpec("early_stopping", "early_stopping",
                 ("stop epoch on given validation curves", "best epoch on given validation curves"), 5,
                 "extension_early_stopping:check_early_stopping", ("early_stopping",), extension=True,
                 readme="`early_stopping(valid_errors, patience)` on given validation curves.",
                 prompt="Optional extension: `early_stopping(valid_errors, patience)` returns `(stop_epoch, best_epoch)`: "
                        "stop at the first epoch with `epoch - best_epoch == patience` (a tie is no improvement; "
                        "epochs count from 0; never stopping early gives the last epoch).",
                 order=20)


FIXED_CURVES: list[tuple[list[float], int]] = [
    ([0.50, 0.40, 0.42, 0.41, 0.43, 0.39, 0.38], 2),   # stops at 3, best 1
    ([0.30, 0.20, 0.20, 0.20, 0.25, 0.26], 2),         # a tie is not an improvement: stops at 3, best 1
    ([0.50, 0.40, 0.30, 0.20], 3),                     # never stops early: 3, best 3
    ([0.30, 0.35, 0.20, 0.10], 1),                     # patience 1: stops at 1, best 0
    ([0.10, 0.20, 0.30, 0.40, 0.50, 0.60], 3),         # best first: stops at 3, best 0
    ([0.40, 0.30, 0.31, 0.32, 0.29, 0.33, 0.34, 0.35, 0.36], 3),  # recovers once: stops at 7, best 4
]


def curves(rng: np.random.Generator) -> list[tuple[list[float], int]]:
    cases = list(FIXED_CURVES)
    for _ in range(4):
        n = int(rng.integers(8, 16))
        t = np.arange(n)
        curve = 0.3 * np.exp(-t / rng.uniform(1.5, 4)) + 0.002 * np.maximum(t - rng.integers(3, 8), 0) ** 2 \
            + 0.02 + rng.normal(0, 0.004, n)
        cases.append(([round(float(x), 4) for x in curve], int(rng.integers(1, 5))))
    return cases


def check_early_stopping(ctx: Context, total: float) -> list[CheckResult]:
    labels = list(SPEC.labels)
    pts = split_points(total, labels)
    cases = curves(np.random.default_rng(ctx.config.seed("extension_early_stopping")))
    answers: list[tuple[int, int] | None] = []
    problems: list[str] = []
    for curve, patience in cases:
        reply = _call(ctx, "early_stopping", {"valid_errors": np.array(curve)}, ["valid_errors", "patience"],
                      scalars={"patience": patience}, as_list=["valid_errors"])
        if not reply.ok:
            return _failed("early_stopping", labels, pts, "early_stopping", reply)
        pair = []
        for key, what in (("out_0", "stop_epoch"), ("out_1", "best_epoch")):
            value, problem = _scalar(reply, key, f"{what}")
            if problem is None and value != int(value):
                problem = f"{what} = {value} is not a whole number"
            if problem:
                problems.append(problem + " (return the pair (stop_epoch, best_epoch) of ints)")
                break
            pair.append(int(value))
        answers.append(tuple(pair) if len(pair) == 2 else None)
    if problems:
        return [_fail("early_stopping", label, p, problems[0], ["wrong_type"]) for label, p in zip(labels, pts)]
    out = []
    for index, (label, p) in enumerate(zip(labels, pts)):
        verdict = judges.early_stopping(index, answers, cases)
        out.append(CheckResult("early_stopping", label, p if verdict.passed else 0.0, p, verdict.message,
                               list(verdict.diagnoses)))
    return out
