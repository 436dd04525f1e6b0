"""A one-hidden-layer MLP for MNIST in numpy: forward, backward and SGD.

Notation (batch-major, as numpy users expect):
    N        examples in the batch
    n_in     inputs per example (784 for MNIST)
    n_hidden hidden units
    n_out    classes (10 for MNIST)

    hidden layer   h = f(X W^T + b)          f = ACTIVATION below
    output layer   y = softmax(h V^T + c)

The loss is the MEAN negative log-likelihood over the batch:
    L = -(1/N) * sum_n sum_k Y[n, k] * log(y[n, k])
"""
import numpy as np

# This year's hidden activation: "sigmoid", "tanh" or "relu". Your code must use this one.
ACTIVATION = "relu"

# Suggested defaults per activation, measured to reach < 5% MNIST test error in about one epoch.
# The grader trains your network with YOUR HYPERPARAMS (they must stay within the bounds stated in
# the README) and stops as soon as the test error is under 5%, so fewer epochs cost you nothing.
SUGGESTED_HYPERPARAMS = {
    "sigmoid": {"n_hidden": 100, "learning_rate": 2.0, "batch_size": 32, "epochs": 3},
    "tanh": {"n_hidden": 100, "learning_rate": 0.3, "batch_size": 32, "epochs": 3},
    "relu": {"n_hidden": 100, "learning_rate": 0.5, "batch_size": 64, "epochs": 3},
}
HYPERPARAMS = dict(SUGGESTED_HYPERPARAMS[ACTIVATION])


def init_params(n_in, n_hidden, n_out, rng):
    """Random initial parameters.

    Args:
        n_in, n_hidden, n_out: layer sizes (ints).
        rng: a numpy.random.Generator; draw every random number from it.
    Returns:
        dict with float64 arrays
            "W": (n_hidden, n_in)   "b": (n_hidden,)
            "V": (n_out, n_hidden)  "c": (n_out,)
    """
    # BEGIN SOLUTION: draw W and V from a zero-mean normal scaled like 1/sqrt(fan_in); biases start at 0
    scale_w = np.sqrt(2.0 / n_in) if ACTIVATION == "relu" else np.sqrt(1.0 / n_in)
    return {
        "W": rng.standard_normal((n_hidden, n_in)) * scale_w,
        "b": np.zeros(n_hidden),
        "V": rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden),
        "c": np.zeros(n_out),
    }
    # END SOLUTION


def forward(params, X):
    """Forward pass.

    Args:
        params: dict as returned by init_params.
        X: (N, n_in) inputs. Do not modify it.
    Returns:
        probs: (N, n_out) softmax probabilities; every row sums to 1.
        cache: anything backward needs (for example the pre-activations and h).
    """
    # BEGIN SOLUTION: compute a = X W^T + b, h = f(a), logits = h V^T + c, then a softmax that cannot overflow
    a = X @ params["W"].T + params["b"]
    h = _activate(a)
    logits = h @ params["V"].T + params["c"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs = e / e.sum(axis=1, keepdims=True)
    return probs, (X, a, h, probs)
    # END SOLUTION


def backward(params, cache, Y):
    """Gradients of the MEAN negative log-likelihood over the batch.

    Args:
        params: dict as returned by init_params.
        cache: what forward returned alongside probs.
        Y: (N, n_out) one-hot labels. Do not modify it.
    Returns:
        dict with the same keys and shapes as params:
            "W": (n_hidden, n_in)   "b": (n_hidden,)
            "V": (n_out, n_hidden)  "c": (n_out,)
    """
    # BEGIN SOLUTION: start from dL/dlogits = (probs - Y) / N, go back through V, then through f'(a)
    X, a, h, probs = cache
    n = X.shape[0]
    d_logits = (probs - Y) / n
    d_h = d_logits @ params["V"]
    d_a = d_h * _activate_grad(a, h)
    return {
        "W": d_a.T @ X,
        "b": d_a.sum(axis=0),
        "V": d_logits.T @ h,
        "c": d_logits.sum(axis=0),
    }
    # END SOLUTION


def sgd_step(params, grads, learning_rate):
    """One step of stochastic gradient descent.

    Args:
        params: dict of arrays.
        grads: dict with the same keys and shapes (from backward).
        learning_rate: float step size.
    Returns:
        dict with the same keys: params[k] - learning_rate * grads[k] for every key.
    """
    # BEGIN SOLUTION: move every parameter against its gradient
    return {key: params[key] - learning_rate * grads[key] for key in params}
    # END SOLUTION


# BEGIN SOLUTION: (private helpers of the reference)
def _activate(a):
    """f(a) for this year's ACTIVATION; a: (N, n_hidden)."""
    if ACTIVATION == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free logistic
    if ACTIVATION == "tanh":
        return np.tanh(a)
    if ACTIVATION == "relu":
        return np.maximum(a, 0.0)
    raise ValueError(f"unknown ACTIVATION {ACTIVATION!r}")


def _activate_grad(a, h):
    """f'(a) given a and h = f(a); both (N, n_hidden)."""
    if ACTIVATION == "sigmoid":
        return h * (1.0 - h)
    if ACTIVATION == "tanh":
        return 1.0 - h * h
    if ACTIVATION == "relu":
        return (a > 0).astype(a.dtype)
    raise ValueError(f"unknown ACTIVATION {ACTIVATION!r}")
# END SOLUTION
