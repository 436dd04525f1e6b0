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
from ..judges import EPS32, FLOAT32_FLOOR, FLOAT32_MARGIN, ZERO_FLOOR, grad_scale, scaled_error, threshold  # noqa: F401

# the rules themselves (threshold, scaled_error, grad_scale) live in autograder/judges.py, shipped verbatim;
# what needs the reference (its results in float32) stays here


def cast32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


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


__all__ = ["FLOAT32_FLOOR", "cast32", "threshold", "reference_gradients32", "reference_probs32", "scaled_error", "grad_scale",
           "relative_error", "EPS32"]
