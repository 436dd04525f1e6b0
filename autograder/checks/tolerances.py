"""Tolerances set by the check, not by the dtype the student returns.

A float64 result is held to the float64 threshold. A float32 result is held to what a CORRECT float32
implementation achieves on the same inputs: the reference run in float32, measured against the same
float64 truth, times a margin (and never below a few float32 ulps). So a real float32 implementation
passes, and an error far above float32 rounding (3e-5 relative, say) fails in either dtype.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from ..gradcheck import relative_error

EPS32 = float(np.finfo(np.float32).eps)
FLOAT32_MARGIN = 25.0          # a different-but-correct float32 order of operations, within this factor
FLOAT32_FLOOR = 20 * EPS32     # ~2.4e-6: never demand less than a few float32 ulps
ZERO_FLOOR = 1e-6              # absolute floor of a comparison, relative to the case's largest gradient


def cast32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


def threshold(dtype: np.dtype, tol64: float, ref32_error: float) -> float:
    """The pass threshold for a result of ``dtype``: ``tol64``, or for float32 what the reference
    achieves in float32 on this input (``ref32_error``, the same error measure) with a margin."""
    if np.dtype(dtype) != np.float32:
        return tol64
    return max(tol64, FLOAT32_MARGIN * float(ref32_error), FLOAT32_FLOOR)


def reference_gradients32(ref: ModuleType, params: dict[str, np.ndarray], X: np.ndarray,
                          Y: np.ndarray) -> dict[str, np.ndarray]:
    """The reference's gradients computed entirely in float32 (what a correct float32 student returns)."""
    p32 = cast32(params)
    with np.errstate(all="ignore"):
        _, cache = ref.forward(p32, np.asarray(X, dtype=np.float32))
        return ref.backward(p32, cache, np.asarray(Y, dtype=np.float32))


def reference_probs32(ref: ModuleType, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        probs, _ = ref.forward(cast32(params), np.asarray(X, dtype=np.float32))
    return np.asarray(probs, dtype=np.float64)


def scaled_error(student: np.ndarray, truth: np.ndarray, scale: float) -> float:
    """Relative error with an absolute floor scaled to the case's gradient sizes: near-zero gradients
    (a batch gradient exactly 0 against a per-example mean of -6e-17) compare as equal."""
    a = np.asarray(student, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    floor = max(ZERO_FLOOR * float(scale), 1e-300)
    return float(np.linalg.norm(a - t) / max(np.linalg.norm(a) + np.linalg.norm(t), floor))


def grad_scale(grads: dict[str, np.ndarray]) -> float:
    """The largest Frobenius norm among a case's gradients (sets the absolute floor)."""
    return max((float(np.linalg.norm(np.asarray(g, dtype=np.float64))) for g in grads.values()), default=0.0)


__all__ = ["FLOAT32_FLOOR", "cast32", "threshold", "reference_gradients32", "reference_probs32", "scaled_error", "grad_scale",
           "relative_error", "EPS32"]
