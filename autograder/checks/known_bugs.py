"""Gradients that classic bugs produce, computed in the trusted parent, to name a student's bug.

Each variant is the gradient a specific mistake yields on the same case. When a student's
gradient for a parameter matches a variant (and not the truth), the feedback names that mistake,
the way a TA who has seen it a hundred times would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import judges
from ..nnmath import activate, softmax
from ..nnmath import activation_derivative as derivative
from .cases import Case

@dataclass(frozen=True)
class Bug:
    """A known mistake: id (for class statistics), what a TA would say, and its gradients."""
    bug_id: str
    message: str
    grads: Callable[[dict], dict[str, np.ndarray]]


def intermediates(case: Case, activation: str) -> dict:
    p, X, Y = case.params, case.X, case.Y
    a = X @ p["W"].T + p["b"]
    h = activate(a, activation)
    probs = softmax(h @ p["V"].T + p["c"])
    return {"p": p, "X": X, "Y": Y, "a": a, "h": h, "probs": probs, "n": X.shape[0], "act": activation,
            "d": (probs - Y) / X.shape[0]}


def _grads(t: dict, d: np.ndarray | None = None, fprime: np.ndarray | None = None,
           h_for_v: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Back-propagation with one ingredient swapped out."""
    d = t["d"] if d is None else d
    fprime = derivative(t["a"], t["act"]) if fprime is None else fprime
    h = t["h"] if h_for_v is None else h_for_v
    da = (d @ t["p"]["V"]) * fprime
    return {"W": da.T @ t["X"], "b": da.sum(axis=0), "V": d.T @ h, "c": d.sum(axis=0)}


def _mse_delta(t: dict) -> np.ndarray:
    """dL/dlogits of the mean squared error (1/2N) sum ||probs - Y||^2 back through the softmax."""
    g = t["probs"] - t["Y"]
    return t["probs"] * (g - np.sum(g * t["probs"], axis=1, keepdims=True)) / t["n"]


def _first_example_bias(t: dict) -> dict[str, np.ndarray]:
    grads = _grads(t)
    da = (t["d"] @ t["p"]["V"]) * derivative(t["a"], t["act"])
    return {**grads, "b": da[0], "c": t["d"][0]}


def _wrong_derivatives(act: str) -> list[tuple[str, str, Callable[[dict], np.ndarray]]]:
    sig = lambda x: 0.5 * (1.0 + np.tanh(0.5 * x))  # noqa: E731
    common = [("no_activation_derivative", "dL/dW and dL/db miss the activation derivative f'(a): you "
               "back-propagated through the hidden layer as if it were linear", lambda t: np.ones_like(t["a"]))]
    if act == "sigmoid":
        return common + [
            ("sigmoid_derivative_h", "the sigmoid derivative is h * (1 - h); you used h alone", lambda t: t["h"]),
            ("sigmoid_derivative_of_a", "the sigmoid derivative must be written with h = sigmoid(a): "
             "h * (1 - h); you wrote a * (1 - a) with the pre-activation", lambda t: t["a"] * (1 - t["a"])),
            ("sigmoid_twice", "you applied sigmoid again inside the derivative: use h * (1 - h) with h = "
             "sigmoid(a), not sigmoid(h) * (1 - sigmoid(h))", lambda t: sig(t["h"]) * (1 - sig(t["h"]))),
            ("wrong_activation_derivative", "you used the derivative of tanh (1 - h^2), but this year's "
             "activation is sigmoid (h * (1 - h))", lambda t: 1 - t["h"] ** 2),
        ]
    if act == "tanh":
        return common + [
            ("tanh_derivative_not_squared", "the tanh derivative is 1 - h^2; you wrote 1 - h", lambda t: 1 - t["h"]),
            ("tanh_derivative_of_a", "the tanh derivative is 1 - tanh(a)^2 = 1 - h^2; you wrote 1 - a^2 "
             "with the pre-activation", lambda t: 1 - t["a"] ** 2),
            ("tanh_twice", "you applied tanh again inside the derivative: use 1 - h^2 with h = tanh(a), "
             "not 1 - tanh(h)^2", lambda t: 1 - np.tanh(t["h"]) ** 2),
            ("wrong_activation_derivative", "you used the derivative of sigmoid (h * (1 - h)), but this "
             "year's activation is tanh (1 - h^2)", lambda t: t["h"] * (1 - t["h"])),
        ]
    return common + [
        ("relu_derivative_h", "the ReLU derivative is 1 where a > 0 and 0 elsewhere; you multiplied by "
         "h = max(a, 0) itself", lambda t: t["h"]),
        ("relu_derivative_inverted", "the ReLU derivative is 1 where a > 0 (you have it where a < 0)",
         lambda t: (t["a"] < 0).astype(float)),
        ("wrong_activation_derivative", "you used the derivative of sigmoid or tanh, but this year's "
         "activation is relu (1 where a > 0, else 0)", lambda t: 1 - t["h"] ** 2),
    ]


def known_bugs(activation: str) -> list[Bug]:
    bugs = [
        Bug("V_from_preactivation", "dL/dV must use the hidden activations h = f(a); you used the "
            "pre-activations a = X W^T + b", lambda t: _grads(t, h_for_v=t["a"])),
        Bug("delta_without_labels", "dL/dlogits is (probs - Y) / N; you left out the labels Y",
            lambda t: _grads(t, d=t["probs"] / t["n"])),
        Bug("mse_loss", "your gradient is that of the squared error (probs - Y)^2 through the softmax, not of the "
            "negative log-likelihood: for softmax with cross-entropy, dL/dlogits is simply (probs - Y) / N",
            lambda t: _grads(t, d=_mse_delta(t))),
        Bug("bias_first_example_only", "a bias gradient must be summed over the batch; yours uses only "
            "the first example", _first_example_bias),
        Bug("bias_mean_not_sum", "the bias gradient averages over the batch a second time: (probs - Y) / N "
            "is already divided by N, so sum its rows for db and dc", lambda t: {
                **_grads(t), "b": _grads(t)["b"] / t["n"], "c": _grads(t)["c"] / t["n"]}),
    ]
    for bug_id, message, fprime in _wrong_derivatives(activation):
        bugs.append(Bug(bug_id, message, lambda t, f=fprime: _grads(t, fprime=f(t))))
    return bugs


def gradient_variants(key: str, case: Case, activation: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({bug id: the gradient of ``key`` that bug gives on ``case``}, {bug id: its sentence}), in order."""
    t = intermediates(case, activation)
    bugs = known_bugs(activation)
    return {bug.bug_id: bug.grads(t)[key] for bug in bugs}, {bug.bug_id: bug.message for bug in bugs}


def diagnose_gradient(key: str, student: np.ndarray, truth: np.ndarray, case: Case,
                      activation: str) -> tuple[list[str], str]:
    """(bug ids, TA-style sentence) for a wrong gradient of parameter ``key`` (autograder/judges.py)."""
    found, messages = gradient_variants(key, case, activation)
    return judges.diagnose_gradient(key, student, truth, case.n, case.Y.shape[1], found, messages)
