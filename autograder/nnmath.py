"""The grader's own small pieces of MLP math (activation, its derivative, a stable softmax), used by
the bug diagnosis and the experiments. Shapes: a, h (N, n_hidden); logits (N, n_out)."""
from __future__ import annotations

import numpy as np

#: the hidden layer's activations a course year can pick (config re-exports it)
ACTIVATIONS = ("sigmoid", "tanh", "relu")


def activate(a: np.ndarray, activation: str) -> np.ndarray:
    """h = f(a) for sigmoid (overflow-free form), tanh or relu."""
    if activation == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0)
    raise ValueError(f"unknown activation {activation!r}")


def activation_derivative(a: np.ndarray, activation: str) -> np.ndarray:
    """f'(a), same shape as a."""
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    h = activate(a, activation)
    return h * (1 - h) if activation == "sigmoid" else 1 - h * h


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Softmax along ``axis`` with the maximum subtracted first (never overflows)."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
