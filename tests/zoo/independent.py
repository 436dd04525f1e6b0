"""Two mlp.py solutions written independently of the reference (other names, order, idioms).

The similarity tests use them as a copier's "own code" into which one function of another student is
transplanted; nothing else in the test class derives from them.
"""

CS231N_STYLE = '''import numpy as np

ACTIVATION = "relu"
HYPERPARAMS = {"n_hidden": 128, "learning_rate": 0.4, "batch_size": 50, "epochs": 3}


def _activate(z):
    return z * (z > 0)


def _activate_grad(z, out):
    return np.where(z > 0, 1.0, 0.0)


def init_params(n_in, n_hidden, n_out, rng):
    std1 = (2.0 / n_in) ** 0.5
    W1 = std1 * rng.normal(size=(n_hidden, n_in))
    W2 = rng.normal(size=(n_out, n_hidden)) / np.sqrt(n_hidden)
    return dict(W=W1, b=np.zeros(n_hidden), V=W2, c=np.zeros(n_out))


def forward(params, X):
    z1 = np.dot(X, params["W"].T)
    z1 += params["b"][None, :]
    a1 = _activate(z1)
    scores = np.dot(a1, params["V"].T) + params["c"][None, :]
    scores -= np.max(scores, axis=-1)[:, None]
    exp_scores = np.exp(scores)
    p = exp_scores / np.sum(exp_scores, axis=-1)[:, None]
    return p, {"inp": X, "z1": z1, "a1": a1, "p": p}


def backward(params, cache, Y):
    batch = Y.shape[0]
    dscores = cache["p"].copy()
    dscores -= Y
    dscores /= batch
    grads = {"V": np.dot(dscores.T, cache["a1"]), "c": np.sum(dscores, axis=0)}
    dhidden = np.dot(dscores, params["V"]) * _activate_grad(cache["z1"], cache["a1"])
    grads["W"] = np.dot(dhidden.T, cache["inp"])
    grads["b"] = np.sum(dhidden, axis=0)
    return grads


def sgd_step(params, grads, learning_rate):
    new = {}
    for name, value in params.items():
        new[name] = value - grads[name] * learning_rate
    return new
'''

LOOPY_STYLE = '''import numpy as np
import math

ACTIVATION = "relu"
HYPERPARAMS = dict(n_hidden=100, learning_rate=0.5, batch_size=64, epochs=4)


def sgd_step(params, grads, learning_rate):
    updated = dict(params)
    for k in ("W", "b", "V", "c"):
        updated[k] = updated[k] - learning_rate * grads[k]
    return updated


def init_params(n_in, n_hidden, n_out, rng):
    limit_in = math.sqrt(6.0 / (n_in + n_hidden))
    limit_out = math.sqrt(6.0 / (n_hidden + n_out))
    return {
        "W": rng.uniform(-limit_in, limit_in, (n_hidden, n_in)),
        "b": np.zeros(n_hidden),
        "V": rng.uniform(-limit_out, limit_out, (n_out, n_hidden)),
        "c": np.zeros(n_out),
    }


def _activate(pre):
    out = pre.copy()
    out[out < 0] = 0.0
    return out


def _activate_grad(pre, post):
    mask = np.zeros_like(pre)
    mask[pre > 0] = 1.0
    return mask


def forward(params, X):
    hidden_in = np.matmul(X, params["W"].transpose()) + params["b"]
    hidden_out = _activate(hidden_in)
    logit = np.matmul(hidden_out, params["V"].transpose()) + params["c"]
    top = np.amax(logit, axis=1, keepdims=True)
    unnorm = np.exp(logit - top)
    total = unnorm.sum(axis=1).reshape(-1, 1)
    return unnorm / total, (hidden_in, hidden_out, X, unnorm / total)


def backward(params, cache, Y):
    hidden_in, hidden_out, X, probs = cache
    count = len(X)
    err = (probs - Y) * (1.0 / count)
    g = {}
    g["c"] = err.sum(0)
    g["V"] = np.matmul(err.transpose(), hidden_out)
    back = np.matmul(err, params["V"]) * _activate_grad(hidden_in, hidden_out)
    g["b"] = back.sum(0)
    g["W"] = np.matmul(back.transpose(), X)
    return g
'''
