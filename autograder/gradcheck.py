"""Pure numeric checks shared by the grader and the student's public tests (numpy only).

This module is copied verbatim into the handout (``assignment/gradcheck.py``), so it must stay
free of solution code and of imports from the rest of the package.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``|a - n| / max(|a| + |n|, 1e-8)`` with Frobenius norms; 0 means identical."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-8))


def numerical_gradient(loss: Callable[[], float], array: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central finite differences of ``loss()`` with respect to every entry of ``array``.

    ``array`` is perturbed in place (it is the parameter ``loss`` reads) and every entry is
    restored in a ``finally`` block, even when ``loss`` raises.
    Returns an array of ``array``'s shape, float64.
    """
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)  # a view: writing to it perturbs the parameter
    if not np.shares_memory(flat, array):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        try:
            flat[i] = old + h
            plus = float(loss())
            flat[i] = old - h
            minus = float(loss())
        finally:
            flat[i] = old
        gflat[i] = (plus - minus) / (2.0 * h)
    return grad


def mean_nll(probs: np.ndarray, Y: np.ndarray) -> float:
    """Mean negative log-likelihood of one-hot ``Y`` (N, n_out) under ``probs`` (N, n_out)."""
    probs = np.asarray(probs, dtype=np.float64)
    picked = np.sum(probs * Y, axis=1)
    return float(-np.mean(np.log(np.maximum(picked, 1e-300))))


def best_scale(student: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Least-squares factor ``s`` with ``student ≈ s * truth`` and the relative residual of that fit.

    A residual near 0 means the student's array is the true one times a constant: s = -1 is a
    flipped sign, s = N or 1/N a batch-size factor.
    """
    s = np.asarray(student, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    denom = float(t @ t)
    if denom == 0.0:
        return 0.0, relative_error(s, t)
    scale = float(s @ t) / denom
    return scale, relative_error(s, scale * t)


def describe_scale(scale: float, n_batch: int, tol: float = 1e-3) -> str | None:
    """Name a constant factor the way a TA would, or None when it is not a recognisable one."""
    def near(x: float, y: float) -> bool:
        return abs(x - y) <= tol * max(abs(y), 1.0)

    if near(scale, 1.0):
        return None
    if near(scale, -1.0):
        return "has the opposite sign of the true gradient (did you compute Y - probs instead of probs - Y?)"
    if n_batch > 1 and near(scale, float(n_batch)):
        return (f"is {n_batch}x too large, exactly the batch size N={n_batch}: you summed over the batch "
                "instead of taking the mean (divide by N once)")
    if n_batch > 1 and near(scale, 1.0 / n_batch):
        return (f"is {n_batch}x too small, exactly 1/N for N={n_batch}: you divided by the batch size twice "
                "(once in dL/dlogits and again later?)")
    if n_batch > 1 and near(scale, -float(n_batch)):
        return f"has the wrong sign and is N={n_batch}x too large (summed, not averaged, and sign flipped)"
    if near(scale, 0.0):
        return "is zero where the true gradient is not"
    return f"is the true gradient times {scale:.4g} (a constant factor is wrong)"
