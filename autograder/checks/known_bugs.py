"""Gradients that classic bugs produce, computed in the trusted parent, to name a student's bug.

Each variant is the gradient a specific mistake yields on the same case. When a student's
gradient for a parameter matches a variant (and not the truth), the feedback names that mistake,
the way a TA who has seen it a hundred times would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..gradcheck import best_scale, describe_scale, relative_error
from ..nnmath import activate, softmax
from ..nnmath import activation_derivative as derivative
from .cases import Case

MATCH_TOL = 1e-5


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


def diagnose_gradient(key: str, student: np.ndarray, truth: np.ndarray, case: Case,
                      activation: str) -> tuple[list[str], str]:
    """(bug ids, TA-style sentence) for a wrong gradient of parameter ``key``."""
    many_classes = case.Y.shape[1] >= 3  # with 2 classes every zero-sum c-gradient is a multiple of (1, -1)
    scale, residual = best_scale(student, truth)
    if residual < MATCH_TOL and many_classes and abs(scale) > 1e-9 and abs(scale - 1) <= 1e-3:
        return ["grad_scaled"], (f"dL/d{key} is the true gradient times {scale:.6g}: right in direction, but a "
                                 "constant is slightly off (a rounded or mistyped number?)")
    if residual < MATCH_TOL and many_classes:
        text = describe_scale(scale, case.n)
        if text:
            tag = ("grad_sign_flipped" if scale < 0 and abs(abs(scale) - 1) < 1e-3 else
                   "grad_factor_n" if abs(scale - case.n) < 1e-3 * case.n else
                   "grad_factor_1_over_n" if case.n > 1 and abs(scale * case.n - 1) < 1e-3 else
                   "grad_zero" if abs(scale) < 1e-3 else "grad_scaled")
            return [tag], f"dL/d{key} {text}"
    if student.ndim == 2 and student.shape[0] == student.shape[1] and relative_error(student.T, truth) < MATCH_TOL:
        return ["grad_transposed"], f"dL/d{key} is transposed: it must have the shape of {key}"
    t = intermediates(case, activation)
    for bug in known_bugs(activation):
        variant = bug.grads(t)[key]
        if best_scale(variant, truth)[1] < MATCH_TOL:
            continue  # on this key the bug only rescales the gradient: the scale test judges that (>= 3 classes)
        if relative_error(variant, truth) > 1e-3 and relative_error(student, variant) < MATCH_TOL:
            return [bug.bug_id], bug.message
        v_scale, v_res = best_scale(student, variant)
        if relative_error(variant, truth) > 1e-3 and v_res < MATCH_TOL and many_classes and describe_scale(v_scale, case.n):
            return [bug.bug_id, "grad_scaled"], f"{bug.message}; also, dL/d{key} {describe_scale(v_scale, case.n)}"
    return [], ""
