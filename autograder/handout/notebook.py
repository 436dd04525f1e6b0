"""The handout notebook (assignment/backprop_lab.ipynb): derive, implement, check, train, plot."""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ..config import CourseConfig

_INTRO = """\
# Backprop lab: a one-hidden-layer network for MNIST, by hand

In this lab you write the forward pass, the backward pass and stochastic gradient descent of a small
neural network in plain numpy, check your gradients numerically, and train the network to recognise
handwritten digits.

* **This year's hidden activation:** `{activation}` (it is set in `mlp.py` as `ACTIVATION`).
* **What you hand in:** `mlp.py`, with `init_params`, `forward`, `backward` and `sgd_step` filled in.
* **Self-test at any time:** `python -m pytest -q` in this folder (see `README.md`).

The notebook walks you through the work in order: (a) derive the gradients on paper, (b) implement
them in `mlp.py`, (c) compare them with finite differences on a tiny network, (d) make sure they are
right for whole minibatches, (e) train on MNIST to under {target:.0%} test error, (f) plot the
learning curves.
"""

_DERIVE = r"""
## (a) Derive the gradients

Everything is **batch-major**: one row per example. For a minibatch of $N$ examples

| quantity | formula | shape |
|---|---|---|
| inputs | $X$ | $(N, n_{in})$ |
| hidden pre-activation | $A = X W^\top + b$ | $(N, n_{hidden})$ |
| hidden layer | $H = f(A)$, elementwise | $(N, n_{hidden})$ |
| logits | $Z = H V^\top + c$ | $(N, n_{out})$ |
| probabilities | $P_{nk} = e^{Z_{nk}} / \sum_j e^{Z_{nj}}$ (softmax of each row) | $(N, n_{out})$ |
| labels | $Y$, one-hot | $(N, n_{out})$ |

with parameters $W$: $(n_{hidden}, n_{in})$, $b$: $(n_{hidden},)$, $V$: $(n_{out}, n_{hidden})$,
$c$: $(n_{out},)$. The loss is the **mean** negative log-likelihood over the batch:

$$L = -\frac{1}{N} \sum_{n=1}^{N} \sum_{k} Y_{nk} \log P_{nk}.$$

Work the chain rule backwards, one layer at a time; write the shape next to every result.

1. **Softmax and loss together.** For one example, $\partial(-\log P_{y}) / \partial Z_k = P_k - Y_k$.
   With the mean over the batch, $\dfrac{\partial L}{\partial Z} = \dfrac{P - Y}{N}$, shape $(N, n_{out})$.
   This is the only place where $1/N$ appears.
2. **Output layer.** $\dfrac{\partial L}{\partial V} = \Big(\dfrac{\partial L}{\partial Z}\Big)^{\!\top} H$,
   shape $(n_{out}, n_{hidden})$, and $\dfrac{\partial L}{\partial c} = \sum_n \Big(\dfrac{\partial L}{\partial Z}\Big)_{n,:}$,
   shape $(n_{out},)$: the bias is shared by every example, so its gradient is summed over the batch.
3. **Back into the hidden layer.** $\dfrac{\partial L}{\partial H} = \dfrac{\partial L}{\partial Z}\, V$, shape $(N, n_{hidden})$.
4. **Through the activation.** $\dfrac{\partial L}{\partial A} = \dfrac{\partial L}{\partial H} \odot f'(A)$
   (elementwise), where
   * sigmoid: $f'(a) = f(a)\,(1 - f(a))$,
   * tanh: $f'(a) = 1 - f(a)^2$,
   * relu: $f'(a) = 1$ if $a > 0$ else $0$.
5. **Hidden layer.** $\dfrac{\partial L}{\partial W} = \Big(\dfrac{\partial L}{\partial A}\Big)^{\!\top} X$,
   shape $(n_{hidden}, n_{in})$, and $\dfrac{\partial L}{\partial b} = \sum_n \Big(\dfrac{\partial L}{\partial A}\Big)_{n,:}$,
   shape $(n_{hidden},)$.

Before you code: check that every product above has compatible shapes, and that each gradient has
the shape of its parameter. Softmax needs care with large logits: $e^{1000}$ overflows, but the
softmax of a row does not change when you subtract the same number from every entry of that row.
"""

_IMPLEMENT = """\
## (b) Implement `mlp.py`

Open `mlp.py` in this folder and replace every `raise NotImplementedError(...)` with your code;
each message says what that function must compute. Keep the names, signatures and shapes: the
grader calls them exactly as documented. Use `ACTIVATION` for `f`, and draw every random number
in `init_params` from the `rng` argument.

The next cell imports your module. Run it again after every edit: it reloads `mlp.py`.
"""

_SETUP = """\
import importlib
import sys
from pathlib import Path

import numpy as np

if str(Path.cwd()) not in sys.path:
    sys.path.insert(0, str(Path.cwd()))  # mlp.py and gradcheck.py live next to this notebook
import gradcheck
import mlp

importlib.reload(mlp)
print("ACTIVATION  =", mlp.ACTIVATION)
print("HYPERPARAMS =", mlp.HYPERPARAMS)
"""

_FD_TEXT = """\
## (c) Check your gradients with finite differences

For every entry $\\theta_i$ of a parameter, the central difference
$\\big(L(\\theta_i + h) - L(\\theta_i - h)\\big) / 2h$ with $h = 10^{-5}$ approximates $\\partial L/\\partial\\theta_i$
to about $10^{-10}$ in float64. Compare it with your `backward` through the relative error
$|a - n| / \\max(|a| + |n|, 10^{-8})$: correct code gives well under $10^{-6}$; a bug gives $10^{-2}$ or more.

We use the toy network of the classic handout: **10 inputs, 5 hidden units, 2 classes**, a handful
of examples. ReLU has a kink at 0 where finite differences are meaningless, so the toy keeps every
pre-activation away from 0.
"""

_FD_CODE = """\
def toy_problem(seed, N=4, n_in=10, n_hidden=5, n_out=2):
    \"\"\"Parameters, inputs X (N, n_in) and one-hot labels Y (N, n_out), all float64.\"\"\"
    rng = np.random.default_rng(seed)
    while True:
        params = {"W": 0.5 * rng.standard_normal((n_hidden, n_in)), "b": 0.1 * rng.standard_normal(n_hidden),
                  "V": rng.standard_normal((n_out, n_hidden)), "c": 0.1 * rng.standard_normal(n_out)}
        X = rng.standard_normal((N, n_in))
        if np.abs(X @ params["W"].T + params["b"]).min() > 1e-2:  # away from the ReLU kink
            break
    Y = np.eye(n_out)[rng.integers(0, n_out, size=N)]
    return params, X, Y


def gradient_table(params, X, Y):
    \"\"\"Print backward's gradients against finite differences, one row per parameter.\"\"\"
    probs, cache = mlp.forward(params, X)
    grads = mlp.backward(params, cache, Y)

    def loss():
        return gradcheck.mean_nll(mlp.forward(params, X)[0], Y)

    print(f"{'param':<6} {'shape':<9} {'relative error':>15}  verdict")
    for name in ["W", "b", "V", "c"]:
        numeric = gradcheck.numerical_gradient(loss, params[name])
        mine = np.asarray(grads[name])
        if mine.shape != numeric.shape:
            print(f"{name:<6} {str(numeric.shape):<9} {'-':>15}  WRONG SHAPE {mine.shape}")
            continue
        err = gradcheck.relative_error(mine, numeric)
        scale, residual = gradcheck.best_scale(mine, numeric)
        hint = gradcheck.describe_scale(scale, X.shape[0]) if residual < 1e-5 else None
        verdict = "ok" if err < 1e-6 else "WRONG" + (f": it {hint}" if hint else "")
        print(f"{name:<6} {str(numeric.shape):<9} {err:>15.2e}  {verdict}")


gradient_table(*toy_problem(seed=0))
"""

_BATCH_TEXT = """\
## (d) From one example to a minibatch

The loss is a mean over the batch, so its gradient is the **mean of the per-example gradients**.
Your `backward` must give exactly that for any $N$, including $N = 1$ and odd sizes, and each row
of `probs` must depend only on its own input row. The next cell compares a batch of 7 with the 7
examples one at a time (every relative error should be below $10^{-10}$).
"""

_BATCH_CODE = """\
params, X, Y = toy_problem(seed=1, N=7)
batch = mlp.backward(params, mlp.forward(params, X)[1], Y)
singles = [mlp.backward(params, mlp.forward(params, X[i:i + 1])[1], Y[i:i + 1]) for i in range(len(X))]
for name in ["W", "b", "V", "c"]:
    mean = np.mean([g[name] for g in singles], axis=0)
    print(f"{name}: relative error between the batch gradient and the mean of single-example gradients "
          f"= {gradcheck.relative_error(batch[name], mean):.1e}")
"""

_TRAIN_TEXT = """\
## (e) Train on MNIST with SGD

MNIST here is the classic split: 50,000 training, 10,000 validation and 10,000 test images, each a
row of 784 floats in $[0, 1]$. The loop below shuffles the training set every epoch, takes
minibatches of `HYPERPARAMS["batch_size"]`, and records the training error (on the first 10,000
training images, to save time) and the validation error every quarter epoch, exactly where the
grader looks. Aim for **under {target:.0%} test error**.

The grader trains with *your* `HYPERPARAMS`, evaluates every {every:g} epoch and stops at the first
evaluation under {target:.0%} test error, so a good learning rate makes your run short. The
training time allowed is `max({floor:g} s, {factor:g} × the reference's time to the same target)` on
the grading machine, and at most {max_epochs} epochs; see `README.md` for the allowed ranges.

**Data.** In the course repository the data layer provides MNIST (`backprop-lab data fetch`
downloads and caches it). Outside it, set the environment variable `BACKPROP_LAB_MNIST` to a
local `mnist.pkl.gz` before starting Jupyter.
"""

_DATA_CODE = """\
import gzip
import os
import pickle

SPLITS = ("train", "valid", "test")


def _repo_root():
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "course.toml").is_file():
            return folder
    return None


def load_data():
    \"\"\"[(X, y) for train, valid, test]: X (N, 784) float32 in [0, 1], y (N,) int64 labels.\"\"\"
    try:
        from autograder.mnist import load_mnist
    except ImportError:
        load_mnist = None
    if load_mnist is not None:
        try:
            data = load_mnist()
            return [(split.X, split.y) for split in (data.train, data.valid, data.test)]
        except Exception as exc:  # no cache and no network, for example: try the fallbacks
            print(f"autograder.mnist.load_mnist() failed ({exc}); trying the local fallbacks")
    caches = [Path(os.environ["BACKPROP_LAB_CACHE"]).expanduser()] if os.environ.get("BACKPROP_LAB_CACHE") else []
    if _repo_root() is not None:
        caches.append(_repo_root() / "data" / "cache")
    for cache in caches:
        folder = cache / "mnist"
        if all((folder / s / f).is_file() for s in SPLITS for f in ("X.npy", "y.npy")):
            return [(np.load(folder / s / "X.npy"), np.load(folder / s / "y.npy")) for s in SPLITS]
    path = os.environ.get("BACKPROP_LAB_MNIST", "")
    if path.endswith(".pkl.gz") and Path(path).is_file():
        with gzip.open(path, "rb") as f:
            splits = pickle.load(f, encoding="latin1")  # the classic file is a Python 2 pickle
        return [(np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)) for X, y in splits]
    raise FileNotFoundError("MNIST not found: run `backprop-lab data fetch` in the course repository, "
                            "or set BACKPROP_LAB_MNIST to a local mnist.pkl.gz and restart the kernel")


(X_train, y_train), (X_valid, y_valid), (X_test, y_test) = load_data()
print("train", X_train.shape, "valid", X_valid.shape, "test", X_test.shape)
"""

_TRAIN_CODE = """\
import time


def error_rate(params, X, y, chunk=10000):
    \"\"\"Fraction of rows of X whose most probable class is not y.\"\"\"
    wrong = 0
    for i in range(0, len(X), chunk):
        probs, _ = mlp.forward(params, X[i:i + chunk])
        wrong += int(np.sum(probs.argmax(axis=1) != y[i:i + chunk]))
    return wrong / len(X)


hp = mlp.HYPERPARAMS
rng = np.random.default_rng(0)
params = mlp.init_params(X_train.shape[1], hp["n_hidden"], 10, rng)
Y_train = np.eye(10)[y_train]
n, batch_size = len(X_train), hp["batch_size"]
steps = -(-n // batch_size)  # minibatches per epoch
checkpoints = {round(q * steps / 4) for q in (1, 2, 3, 4)}  # every quarter epoch
curve = []  # (epochs done, error on the first 10,000 training images, validation error)
best = (1.0, None, None)  # (validation error, epochs done, parameters) of the best checkpoint
train_seconds = 0.0
for epoch in range(hp["epochs"]):
    order = rng.permutation(n)
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        idx = order[(step - 1) * batch_size: step * batch_size]
        probs, cache = mlp.forward(params, X_train[idx])
        grads = mlp.backward(params, cache, Y_train[idx])
        params = mlp.sgd_step(params, grads, hp["learning_rate"])
        train_seconds += time.perf_counter() - t0
        if step in checkpoints:
            curve.append((epoch + step / steps, error_rate(params, X_train[:10000], y_train[:10000]),
                          error_rate(params, X_valid, y_valid)))
            print(f"epoch {curve[-1][0]:5.2f}: train error {curve[-1][1]:6.2%}, "
                  f"validation error {curve[-1][2]:6.2%}  ({train_seconds:.1f} s of training)")
            if curve[-1][2] < best[0]:
                best = (curve[-1][2], curve[-1][0], {k: v.copy() for k, v in params.items()})

# Early stopping: keep the checkpoint with the lowest validation error, then look at the test set once.
final_test_error = error_rate(best[2], X_test, y_test)
print(f"test error of the checkpoint with the lowest validation error (epoch {best[1]:.2f}): "
      f"{final_test_error:.2%} (target: under {TARGET:.0%})")
"""

_PLOT_TEXT = """\
## (f) Learning curves

Plot the training and validation error against epochs. Where do they separate? What happens with
a learning rate ten times larger or smaller, or with fewer hidden units?
"""

_PLOT_CODE = """\
import matplotlib.pyplot as plt

epochs, train_err, valid_err = zip(*curve)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(epochs, train_err, "o-", label="training error")
ax.plot(epochs, valid_err, "s-", label="validation error")
ax.axhline(TARGET, color="gray", linestyle="--", label=f"target ({TARGET:.0%})")
ax.set_xlabel("epochs")
ax.set_ylabel("error rate")
ax.set_title(f"MLP, {mlp.ACTIVATION}, {hp['n_hidden']} hidden units, lr {hp['learning_rate']}")
ax.legend()
plt.show()
"""

_OPTIONAL = """\
## Optional work

Nothing below is graded. If you are curious:

* Try the other activations (sigmoid, tanh, relu) by changing `ACTIVATION` in a copy of `mlp.py`,
  and compare their learning curves and the learning rates they tolerate.
* Vary the number of hidden units and the batch size; how does time-to-{target:.0%} change?
* In the course repository, `backprop-lab experiments --quick --out DIR` runs a set of such
  experiments with the reference solution and writes an HTML report to `DIR` to compare with yours.
"""


def build_notebook(config: CourseConfig) -> str:
    """The notebook's JSON text: deterministic (fixed cell ids, no outputs, no timestamps)."""
    t = config.training
    fmt = dict(activation=config.activation, target=t.target_error, every=t.eval_every_epochs,
               floor=t.budget_floor_s, factor=t.budget_factor, max_epochs=t.max_epochs)
    cells = [
        ("intro", new_markdown_cell(_INTRO.format(**fmt))),
        ("derive", new_markdown_cell(_DERIVE.lstrip("\n"))),
        ("implement", new_markdown_cell(_IMPLEMENT)),
        ("setup", new_code_cell(_SETUP + f"TARGET = {t.target_error!r}  # test error to reach\n")),
        ("gradcheck-text", new_markdown_cell(_FD_TEXT)),
        ("gradcheck", new_code_cell(_FD_CODE)),
        ("minibatch-text", new_markdown_cell(_BATCH_TEXT)),
        ("minibatch", new_code_cell(_BATCH_CODE)),
        ("train-text", new_markdown_cell(_TRAIN_TEXT.format(**fmt))),
        ("data", new_code_cell(_DATA_CODE)),
        ("train", new_code_cell(_TRAIN_CODE)),
        ("plot-text", new_markdown_cell(_PLOT_TEXT)),
        ("plot", new_code_cell(_PLOT_CODE)),
        ("optional", new_markdown_cell(_OPTIONAL.format(**fmt))),
    ]
    nb = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for cell_id, cell in cells:
        cell.id = cell_id
        cell.source = cell.source.rstrip("\n")
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"
