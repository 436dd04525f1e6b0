"""Test cases for the checks: the public toy of the handout and hidden cases seeded by year + secret."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..gradcheck import mean_nll, numerical_gradient, relative_error

if TYPE_CHECKING:
    from ..config import CourseConfig

PARAM_KEYS = ("W", "b", "V", "c")


@dataclass
class Case:
    """One input to the student's functions. Shapes: X (N, n_in), Y (N, n_out) one-hot,
    params W (n_hidden, n_in), b (n_hidden,), V (n_out, n_hidden), c (n_out,)."""
    name: str
    params: dict[str, np.ndarray]
    X: np.ndarray
    Y: np.ndarray
    public: bool = False

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape for k, v in self.params.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.params, "X": self.X, "Y": self.Y}


def make_case(name: str, rng: np.random.Generator, n_in: int, n_hidden: int, n_out: int, n: int,
              activation: str, public: bool = False, logit_scale: float = 1.0) -> Case:
    """Random parameters and inputs, kept away from ReLU's kink (|pre-activation| > 1e-2) so
    finite differences with h = 1e-5 never cross it."""
    for _ in range(1000):
        params = {
            "W": rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in),
            "b": rng.standard_normal(n_hidden) * 0.5,
            "V": rng.standard_normal((n_out, n_hidden)) * logit_scale,
            "c": rng.standard_normal(n_out) * 0.5 * logit_scale,
        }
        X = rng.standard_normal((n, n_in))
        a = X @ params["W"].T + params["b"]
        if activation != "relu" or (np.abs(a).min() > 1e-2 and (a > 0).any()):
            break
    labels = rng.integers(0, n_out, size=n)
    Y = np.eye(n_out)[labels]
    return Case(name, params, X, Y, public)


def public_toy(activation: str) -> Case:
    """The classic handout's toy: 10 inputs, 5 hidden units, 2 classes (public, fixed seed)."""
    return make_case("toy 10-5-2 (public)", np.random.default_rng(20240), 10, 5, 2, 4, activation, public=True)


PUBLIC_SGD_SEED = 20241


def public_sgd_calls() -> list[tuple[dict, dict, float]]:
    """The public sgd_step case: two calls [(params, grads, lr), (params2, grads2, lr2)] on the toy's
    shapes, with learning rates that are not the usual 0.1 (a hard-coded rate shows)."""
    rng = np.random.default_rng(PUBLIC_SGD_SEED)
    shapes = {"W": (5, 10), "b": (5,), "V": (2, 5), "c": (2,)}
    draw = lambda: {k: rng.standard_normal(s) for k, s in shapes.items()}  # noqa: E731
    return [(draw(), draw(), 0.37), (draw(), draw(), 0.05)]


def hidden_cases(config: CourseConfig, purpose: str, count: int = 3) -> list[Case]:
    """Fresh random sizes and seeds per year (and secret); includes N=1 and an odd N."""
    rng = np.random.default_rng(config.seed(purpose))
    batch_sizes = [1, int(rng.integers(3, 12)) | 1, int(rng.integers(4, 16))]
    cases = []
    for i in range(count):
        n_in, n_hidden, n_out = int(rng.integers(3, 25)), int(rng.integers(2, 16)), int(rng.integers(2, 10))
        n = batch_sizes[i % len(batch_sizes)]
        cases.append(make_case(f"hidden case {i + 1} (N={n})", rng, n_in, n_hidden, n_out, n, config.activation))
    return cases


def true_loss(ref: ModuleType, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    """The TRUE mean negative log-likelihood, from the reference forward (float64)."""
    probs, _ = ref.forward(params, X)
    return mean_nll(probs, Y)


def true_gradients(ref: ModuleType, case: Case, h: float = 1e-5) -> dict[str, np.ndarray]:
    """Central finite differences of the true loss, per parameter, in float64."""
    params = {k: np.array(v, dtype=np.float64) for k, v in case.params.items()}
    return {k: numerical_gradient(lambda: true_loss(ref, params, case.X, case.Y), params[k], h) for k in PARAM_KEYS}


def reference_gradients(ref: ModuleType, case: Case) -> dict[str, np.ndarray]:
    probs, cache = ref.forward(case.params, case.X)
    return ref.backward(case.params, cache, case.Y)


def fd_agrees_with_reference(ref: ModuleType, case: Case, fd: dict[str, np.ndarray]) -> float:
    """Worst relative error between the reference's analytic gradient and finite differences:
    a sanity bound on the case itself (a badly conditioned case would make the check unfair)."""
    analytic = reference_gradients(ref, case)
    return max(relative_error(analytic[k], fd[k]) for k in PARAM_KEYS)


def mnist_size_case(config: CourseConfig, n: int = 100) -> Case:
    """A real-size case: 784 inputs, 100 hidden units, 10 classes, a batch of ``n``. Inputs look like
    MNIST pixels (about 19% of them non-zero, in [0, 1]); parameters are scaled like a fresh
    initialisation, with small non-zero biases."""
    rng = np.random.default_rng(config.seed("gradients-mnist"))
    X = np.where(rng.random((n, 784)) < 0.19, rng.random((n, 784)), 0.0)
    params = {"W": rng.standard_normal((100, 784)) * np.sqrt(2.0 / 784), "b": rng.standard_normal(100) * 0.1,
              "V": rng.standard_normal((10, 100)) * np.sqrt(1.0 / 100), "c": rng.standard_normal(10) * 0.1}
    Y = np.eye(10)[rng.integers(0, 10, size=n)]
    return Case(f"MNIST-size case 784-100-10 (N={n})", params, X, Y)
