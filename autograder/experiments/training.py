"""The shared training loop of the experiments: exact backprop and its perturbed variants, vectorized.

Same network and math as the reference (``solutions/mlp.py``)::

    a = X W^T + b        h = f(a)        probs = softmax(h V^T + c)
    d_logits = (probs - Y) / N
    dV = d_logits^T h    dc = sum(d_logits)
    d_a = (d_logits V) * f'(a)
    dW = d_a^T X         db = sum(d_a)

A :class:`Variant` changes exactly one of three things, everything else stays exact:

``h_forward``   what the output layer sees in the forward pass: h, h + noise, or round(h).
``h_backward``  the hidden state the backward pass uses in place of the forward's: in
                ``dV = d_logits^T h_b`` and, when ``scope == "all"``, in the derivative
                f'(a) computed from h_b (sigmoid: h(1-h), tanh: 1-h^2, relu: [h > 0]), as the
                classic handout's backward pass does with the h it stored.
``feedback``    the matrix that carries d_logits back to the hidden layer: V (exact), a random
                matrix B (fixed once, or fresh every step), or V from k steps ago.

Every random number comes from the Generator passed to :func:`train_variant` (never numpy's global
state). Each run splits it into independent streams for the initial weights, the data order and
the variant's own noise, so two variants given equally seeded generators start from the same weights
and see the same minibatches: their curves differ only by the variant (common random numbers).

Evaluation (every ``1 / evals_per_epoch`` epoch) uses the network as trained: rounding in the
forward pass is part of the model and stays; noise is a training-time perturbation and is off.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..nnmath import activate, softmax

N_CLASSES = 10
H_FORWARD = ("exact", "noise", "round")
H_BACKWARD = ("forward", "clean", "noise_same", "noise_resampled", "round", "random_fixed", "random_fresh")
FEEDBACK = ("exact", "random_fixed", "random_fresh", "stale")
SCOPES = ("all", "dV")


# ---------------------------------------------------------------------------------------------
# What a run is

@dataclass(frozen=True)
class Variant:
    """One way of computing the update. Plain data, so it can travel to a worker process.

    The default values are exact backprop. ``h_backward="forward"`` means "the h the forward pass
    used" (with the exact f'(a)): the true gradient of the network the forward pass computed.
    """
    experiment: str
    name: str
    h_forward: str = "exact"
    h_backward: str = "forward"
    scope: str = "all"
    feedback: str = "exact"
    noise_std: float = 0.0
    stale_k: int = 0

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.h_forward, H_FORWARD, "h_forward"),
                                     (self.h_backward, H_BACKWARD, "h_backward"),
                                     (self.feedback, FEEDBACK, "feedback"), (self.scope, SCOPES, "scope")):
            if value not in allowed:
                raise ValueError(f"{what}={value!r}; choose one of {', '.join(allowed)}")
        if (self.h_forward == "noise" or self.h_backward.startswith("noise")) and self.noise_std <= 0:
            raise ValueError(f"variant {self.name!r} uses noise but noise_std is {self.noise_std}")
        if self.feedback == "stale" and self.stale_k < 1:
            raise ValueError(f"variant {self.name!r}: stale feedback needs stale_k >= 1")


BASELINE = Variant("baseline", "exact backprop")


@dataclass(frozen=True)
class Settings:
    """Sizes and hyperparameters of one mode (quick or full)."""
    mode: str
    n_train: int
    n_valid: int
    n_test: int
    n_train_eval: int          # training error is measured on this many (fixed) training examples
    epochs: int
    evals_per_epoch: int
    learning_rate: float
    batch_size: int
    n_hidden: int
    activation: str
    dtype: str = "float32"

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train // self.batch_size

    def describe(self) -> str:
        return (f"{self.activation}, {self.n_hidden} hidden units, SGD lr {self.learning_rate:g}, batch "
                f"{self.batch_size}, {self.epochs} epochs on {self.n_train:,} training examples "
                f"(errors every {1 / self.evals_per_epoch:g} epoch; training error on {self.n_train_eval:,} "
                f"fixed training examples, validation {self.n_valid:,}, test {self.n_test:,}), {self.dtype}")


def settings_for(quick: bool, activation: str = "relu") -> Settings:
    """Quick: seconds, for CI. Full: the real 50k/10k/10k MNIST split, well within 15 min on 2 cores."""
    lr = {"sigmoid": 0.5, "tanh": 0.1, "relu": 0.1}[activation]
    if quick:
        return Settings("quick", 5000, 2000, 2000, 5000, epochs=4, evals_per_epoch=2, learning_rate=lr,
                        batch_size=32, n_hidden=100, activation=activation)
    return Settings("full", 50_000, 10_000, 10_000, 10_000, epochs=10, evals_per_epoch=2, learning_rate=lr,
                    batch_size=32, n_hidden=100, activation=activation)


@dataclass
class Dataset:
    """Arrays of one run (already in the training dtype)."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_eval_idx: np.ndarray  # rows of X_train on which the training error is measured


def make_dataset(mnist, settings: Settings, rng: np.random.Generator) -> Dataset:
    """Subsets of ``mnist`` (an :class:`autograder.mnist.MNIST`) of the sizes in ``settings``.

    Quick mode draws random subsets with ``rng``; a full-size split is taken whole, in order.
    """
    dtype = np.dtype(settings.dtype)

    def take(split, n):
        total = len(split)
        if n > total:
            raise ValueError(f"asked for {n} examples of a split of {total}")
        idx = np.arange(total) if n == total else np.sort(rng.choice(total, size=n, replace=False))
        return np.asarray(split.X[idx], dtype=dtype), np.asarray(split.y[idx], dtype=np.int64)

    Xtr, ytr = take(mnist.train, settings.n_train)
    Xva, yva = take(mnist.valid, settings.n_valid)
    Xte, yte = take(mnist.test, settings.n_test)
    n_eval = min(settings.n_train_eval, settings.n_train)
    eval_idx = (np.arange(n_eval) if n_eval == settings.n_train
                else np.sort(rng.choice(settings.n_train, size=n_eval, replace=False)))
    return Dataset(Xtr, ytr, Xva, yva, Xte, yte, eval_idx)


@dataclass
class RunResult:
    """What one training run measured. Errors are fractions in [0, 1]."""
    experiment: str
    variant: str
    epochs: list[float]
    train_error: list[float]
    valid_error: list[float]
    final_train_error: float
    final_valid_error: float
    final_test_error: float
    seconds: float
    diverged: bool = False
    diverged_at_epoch: float | None = None
    spec: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# The math

def derivative_from_a(a: np.ndarray, h: np.ndarray, activation: str) -> np.ndarray:
    """f'(a), exactly (h = f(a) is used where that is the cheaper formula)."""
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    return derivative_from_h(h, activation)


def derivative_from_h(h: np.ndarray, activation: str) -> np.ndarray:
    """f'(a) written as a function of h = f(a), the way a backward pass that stored only h computes it."""
    if activation == "sigmoid":
        return h * (1 - h)
    if activation == "tanh":
        return 1 - h * h
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    raise ValueError(f"unknown activation {activation!r}")


def init_params(n_in: int, n_hidden: int, n_out: int, activation: str, rng: np.random.Generator,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """The reference's initialisation (``solutions/mlp.py: init_params``), same draws in the same order."""
    scale_w = np.sqrt(2.0 / n_in) if activation == "relu" else np.sqrt(1.0 / n_in)
    params = {
        "W": rng.standard_normal((n_hidden, n_in)) * scale_w,
        "b": np.zeros(n_hidden),
        "V": rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden),
        "c": np.zeros(n_out),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


def exact_gradients(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                    activation: str) -> dict[str, np.ndarray]:
    """Gradients of the mean NLL, exact backprop (what the reference's backward returns)."""
    state = _VariantState(BASELINE, params, activation, np.random.default_rng(0))
    return state.gradients(params, X, Y)


class _VariantState:
    """Whatever a variant keeps between steps (fixed B, fixed random h, the history of V)."""

    def __init__(self, variant: Variant, params: dict[str, np.ndarray], activation: str,
                 rng: np.random.Generator) -> None:
        self.v = variant
        self.activation = activation
        self.rng = rng
        self.dtype = params["W"].dtype
        n_out, n_hidden = params["V"].shape
        self.B = self._random_feedback(n_out, n_hidden) if variant.feedback == "random_fixed" else None
        self.history: deque[np.ndarray] = deque(maxlen=variant.stale_k + 1) if variant.feedback == "stale" else deque()
        self.fixed_h: np.ndarray | None = None

    def _random_feedback(self, n_out: int, n_hidden: int) -> np.ndarray:
        # same distribution as V's initialisation, so the scale of the signal sent back is comparable
        return (self.rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden)).astype(self.dtype)

    def _random_h(self, shape: tuple[int, int]) -> np.ndarray:
        # a "hidden state" of the right kind: f(z) with z ~ N(0, 1)
        return activate(self.rng.standard_normal(shape), self.activation).astype(self.dtype)

    def _noise(self, shape: tuple[int, int]) -> np.ndarray:
        return (self.rng.standard_normal(shape) * self.v.noise_std).astype(self.dtype)

    def hidden_forward(self, h: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(what the output layer sees, the noise sample used or None)."""
        if self.v.h_forward == "round":
            return np.round(h), None
        if self.v.h_forward == "noise" and training:
            e = self._noise(h.shape)
            return h + e, e
        return h, None

    def feedback_matrix(self, V: np.ndarray) -> np.ndarray:
        fb = self.v.feedback
        if fb == "exact":
            return V
        if fb == "random_fixed":
            return self.B
        if fb == "random_fresh":
            return self._random_feedback(*V.shape)
        # stale: V as it was stale_k steps ago (the oldest kept copy until that many steps have passed)
        self.history.append(V.copy())
        return self.history[0]

    def backward_h(self, h: np.ndarray, h_fwd: np.ndarray, e_fwd: np.ndarray | None) -> np.ndarray | None:
        """The hidden state the backward pass uses, or None for exact backprop of the forward."""
        hb = self.v.h_backward
        if hb == "forward":
            return None
        if hb == "clean":
            return h
        if hb == "noise_same":
            return h + e_fwd if e_fwd is not None else h + self._noise(h.shape)
        if hb == "noise_resampled":
            return h + self._noise(h.shape)
        if hb == "round":
            return np.round(h)
        if hb == "random_fresh":
            return self._random_h(h.shape)
        # random_fixed: drawn once, the same for every step
        if self.fixed_h is None or self.fixed_h.shape != h.shape:
            self.fixed_h = self._random_h(h.shape)
        return self.fixed_h

    def gradients(self, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
        act = self.activation
        a = X @ params["W"].T + params["b"]
        h = activate(a, act)
        h_fwd, e_fwd = self.hidden_forward(h, training=True)
        probs = softmax(h_fwd @ params["V"].T + params["c"])
        d_logits = (probs - Y) / X.shape[0]
        h_b = self.backward_h(h, h_fwd, e_fwd)
        if h_b is None:
            h_for_dV, fprime = h_fwd, derivative_from_a(a, h, act)
        elif self.v.scope == "dV":
            h_for_dV, fprime = h_b, derivative_from_a(a, h, act)
        else:
            h_for_dV, fprime = h_b, derivative_from_h(h_b, act)
        d_a = (d_logits @ self.feedback_matrix(params["V"])) * fprime
        return {"W": d_a.T @ X, "b": d_a.sum(axis=0), "V": d_logits.T @ h_for_dV, "c": d_logits.sum(axis=0)}

    def predict(self, params: dict[str, np.ndarray], X: np.ndarray, chunk: int = 10_000) -> np.ndarray:
        out = np.empty(X.shape[0], dtype=np.int64)
        for start in range(0, X.shape[0], chunk):
            xb = X[start:start + chunk]
            h, _ = self.hidden_forward(activate(xb @ params["W"].T + params["b"], self.activation), training=False)
            out[start:start + chunk] = np.argmax(h @ params["V"].T + params["c"], axis=1)
        return out


# ---------------------------------------------------------------------------------------------
# The loop

def _finite(params: dict[str, np.ndarray]) -> bool:
    return all(bool(np.isfinite(v).all()) for v in params.values())


def train_variant(variant: Variant, data: Dataset, settings: Settings, rng: np.random.Generator,
                  on_eval: Callable[[float], None] | None = None) -> RunResult:
    """Train one network with ``variant``'s update; errors every ``1/evals_per_epoch`` epoch.

    A run whose parameters stop being finite is marked diverged and stopped; its later errors are
    those of its last finite parameters (the curve ends where it diverged).
    """
    init_rng, order_rng, variant_rng = rng.spawn(3)
    dtype = np.dtype(settings.dtype)
    started = time.perf_counter()
    n_in = data.X_train.shape[1]
    params = init_params(n_in, settings.n_hidden, N_CLASSES, settings.activation, init_rng, dtype)
    state = _VariantState(variant, params, settings.activation, variant_rng)
    eye = np.eye(N_CLASSES, dtype=dtype)
    X_eval, y_eval = data.X_train[data.train_eval_idx], data.y_train[data.train_eval_idx]

    def error(X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(state.predict(params, X) != y))

    epochs, train_err, valid_err = [0.0], [error(X_eval, y_eval)], [error(data.X_valid, data.y_valid)]
    spe, bs = settings.steps_per_epoch, settings.batch_size
    eval_at = {max(1, round(i * spe / settings.evals_per_epoch)) for i in range(1, settings.evals_per_epoch + 1)}
    lr = dtype.type(settings.learning_rate)
    diverged_at = None
    step = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(settings.epochs):
            order = order_rng.permutation(data.X_train.shape[0])
            for s in range(spe):
                idx = order[s * bs:(s + 1) * bs]
                grads = state.gradients(params, data.X_train[idx], eye[data.y_train[idx]])
                new = {k: params[k] - lr * grads[k] for k in params}
                step += 1
                if not _finite(new):
                    diverged_at = round(step / spe, 3)
                    break
                params = new
                if s + 1 in eval_at:
                    at = epoch + (s + 1) / spe
                    epochs.append(round(at, 3))
                    train_err.append(error(X_eval, y_eval))
                    valid_err.append(error(data.X_valid, data.y_valid))
                    if on_eval is not None:
                        on_eval(at)
            if diverged_at is not None:
                break
        final_train = error(data.X_train, data.y_train)
        final_valid = error(data.X_valid, data.y_valid)
        final_test = error(data.X_test, data.y_test)
    return RunResult(variant.experiment, variant.name, epochs, train_err, valid_err, final_train, final_valid,
                     final_test, round(time.perf_counter() - started, 3), diverged_at is not None, diverged_at,
                     spec=asdict(variant))


# ---------------------------------------------------------------------------------------------
# One BLAS thread: at this size a second thread costs far more than it gives (measured: an epoch takes
# 0.33 s on one thread and 2.6 s with two threads fighting over two busy cores).

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads", "MKL_Set_Num_Threads", "bli_thread_set_num_threads")
_GETTERS = {"scipy_openblas_set_num_threads64_": "scipy_openblas_get_num_threads64_",
            "scipy_openblas_set_num_threads": "scipy_openblas_get_num_threads",
            "openblas_set_num_threads64_": "openblas_get_num_threads64_",
            "openblas_set_num_threads": "openblas_get_num_threads"}


def _blas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if any(s in os.path.basename(p).lower() for s in ("openblas", "mkl_rt", "blis")))


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Best effort: one BLAS thread in this process for the duration (restored afterwards)."""
    restore: list[tuple[Callable, int]] = []
    for path in _blas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is None:
                continue
            getter = getattr(lib, _GETTERS.get(name, ""), None) if name in _GETTERS else None
            before = int(getter()) if getter is not None else None
            setter(1)
            if before is not None:
                restore.append((setter, before))
            break
    try:
        yield
    finally:
        for setter, before in restore:
            setter(before)
