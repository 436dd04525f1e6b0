"""The training test of the otter-grader and nbgrader versions, on real MNIST (shipped next to the notebook
as ``bplab_training.py``, imported by ``bplab_checks.py``): pure numpy, no solution code.

It mirrors the backprop-lab grader's training check (``autograder/checks/training.py``) step for step:
the student's ``HYPERPARAMS`` within the course bounds; ``rng = default_rng(seed)``, then
``init_params(784, n_hidden, 10, rng)``, then per epoch ``rng.permutation(N)`` and minibatches of the
sorted indices, float64 inputs, one-hot labels; checkpoints at step 0 (the untrained network must err
on at least half of the first 2,000 test images) and every ``eval_every_epochs``; the test error of the
parameters at each checkpoint through the course's own forward pass (argmax of the logits); stop at the
target within the CPU-second budget, past the budget, on a plateau far above every credit level, or on
a bad or diverged checkpoint. The training time is this process's CPU seconds spent outside the
evaluations (the grader counts its sandboxed worker's), so one kernel grades one student at a time.

MNIST is the backprop-lab cache's ``.npy`` split (``<cache>/mnist/{train,valid,test}/{X,y}.npy``: X
(N, 784) float32 in [0, 1], y (N,) int64), found through :data:`MNIST_ENV`, a file
:data:`MNIST_FILE` holding the folder's path or a folder :data:`MNIST_DIR`, both next to this module
(= next to the notebook), or ``$BACKPROP_LAB_CACHE/mnist``.
"""
import contextlib
import math
import os
import time

import numpy as np

try:  # inside the autograder package
    from .. import judges
except ImportError:  # shipped: bplab_judges.py lies next to it
    import bplab_judges as judges

KEYS = ("W", "b", "V", "c")
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
N_IN, N_OUT = 784, 10
HYPERPARAM_KEYS = ("n_hidden", "learning_rate", "batch_size", "epochs")

#: where MNIST is: this variable (a folder holding train/X.npy ..., or a backprop-lab cache folder) ...
MNIST_ENV = "BPLAB_MNIST"
#: ... else a text file next to this module holding that folder's path, else a folder of this name here
MNIST_FILE = "bplab_mnist.txt"
MNIST_DIR = "mnist"


# ---- MNIST ---------------------------------------------------------------------------------------
def _here():
    return os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """[(how it was named, folder)] in the order they are tried."""
    out = []
    if os.environ.get(MNIST_ENV):
        out.append((f"${MNIST_ENV}", os.environ[MNIST_ENV]))
    note = os.path.join(_here(), MNIST_FILE)
    if os.path.isfile(note):
        with open(note, encoding="utf-8") as f:
            out.append((note, f.read().strip()))
    out.append(("next to the notebook", os.path.join(_here(), MNIST_DIR)))
    if os.environ.get("BACKPROP_LAB_CACHE"):
        out.append(("$BACKPROP_LAB_CACHE", os.path.join(os.environ["BACKPROP_LAB_CACHE"], "mnist")))
    return out


def _has_split(folder, split):
    return all(os.path.isfile(os.path.join(folder, split, f"{k}.npy")) for k in ("X", "y"))


def mnist_folder(split="train"):
    """The folder holding ``<split>/X.npy`` and ``<split>/y.npy``; AssertionError naming every path tried."""
    tried = []
    for how, folder in _candidates():
        folder = os.path.expanduser(folder)
        for option in (folder, os.path.join(folder, "mnist")):  # the split folder, or a cache holding mnist/
            if _has_split(option, split):
                return option
        tried.append(f"{os.path.join(folder, split)} ({how})")
    raise AssertionError(
        f"MNIST ({split} split) not found; looked for X.npy and y.npy in: {'; '.join(tried)}. Set {MNIST_ENV} "
        f"to the folder holding train/, valid/ and test/ (the backprop-lab cache's mnist/ folder, made by "
        f"`backprop-lab data fetch`), or write that path into {os.path.join(_here(), MNIST_FILE)}")


def load_split(split):
    """(X, y) of one split, memory-mapped: X (N, 784) float32, y (N,) integer labels 0..9."""
    folder = os.path.join(mnist_folder(split), split)
    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r", allow_pickle=False)
    y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r", allow_pickle=False)
    if X.ndim != 2 or X.shape[1] != N_IN or y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
        raise AssertionError(f"{folder}: expected X (N, {N_IN}) and integer labels y (N,), got X {X.shape} "
                             f"and y {y.shape} {y.dtype}: not the backprop-lab MNIST split")
    return X, y


# ---- the grader's rules ------------------------------------------------------------------------------
def _scalars(spec):
    return {k: (v.item() if np.ndim(v) == 0 else np.asarray(v)) for k, v in spec.items()}


def check_hyperparams(hp, spec):
    """The student's HYPERPARAMS within the course bounds (``spec["bounds"]``: 4 x (lo, hi)), else AssertionError."""
    if not isinstance(hp, dict):
        raise AssertionError("not trained: there is no HYPERPARAMS dict of numbers (keep the one from the handout)")
    out = {}
    for key, (lo, hi) in zip(HYPERPARAM_KEYS, np.asarray(spec["bounds"], dtype=np.float64)):
        if key not in hp:
            raise AssertionError(f"not trained: HYPERPARAMS has no {key!r}; it needs "
                                 "n_hidden, learning_rate, batch_size and epochs")
        value = hp[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise AssertionError(f"not trained: HYPERPARAMS[{key!r}] = {str(value)[:40]} is not a finite number")
        if key != "learning_rate" and value != int(value):
            raise AssertionError(f"not trained: HYPERPARAMS[{key!r}] = {value:g} must be a whole number")
        if not lo <= value <= hi:
            raise AssertionError(f"not trained: HYPERPARAMS[{key!r}] = {value:g} is outside the allowed range "
                                 f"[{lo:g}, {hi:g}]")
        out[key] = value
    return out


def schedule(spec, hp, n_train):
    """(checkpoint steps starting with 0, steps per epoch), as the grader's ``checks.training.schedule``."""
    steps_per_epoch = n_train // int(hp["batch_size"])
    epochs = min(int(hp["epochs"]), int(spec["max_epochs"]))
    every = max(1, int(round(float(spec["eval_every_epochs"]) * steps_per_epoch)))
    steps = list(range(every, epochs * steps_per_epoch + 1, every))
    if not steps or steps[-1] != epochs * steps_per_epoch:
        steps.append(epochs * steps_per_epoch)
    return [0] + steps, steps_per_epoch


#: f of the hidden layer, per activation, as the grader's evaluation computes it (the logistic without overflow)
ACTIVATIONS = {"sigmoid": lambda a: 0.5 * (1.0 + np.tanh(0.5 * a)), "tanh": np.tanh,
               "relu": lambda a: np.maximum(a, 0.0)}


def error_rate(params, X, y, activation, chunk=2500):
    """Classification error of ``params`` on (X, y): argmax of the logits h V^T + c, h = f(X W^T + b)."""
    wrong = 0
    with np.errstate(all="ignore"):
        for start in range(0, X.shape[0], chunk):
            xb = np.asarray(X[start:start + chunk], dtype=np.float64)
            logits = ACTIVATIONS[activation](xb @ params["W"].T + params["b"]) @ params["V"].T + params["c"]
            preds = np.argmax(np.nan_to_num(logits, nan=-np.inf), axis=1)
            wrong += int(np.sum(preds != np.asarray(y[start:start + chunk])))
    return wrong / X.shape[0]


def checked_params(value, n_hidden, step):
    """The checkpoint's params as float64 arrays of the requested shapes, else (None, the problem)."""
    shapes = {"W": (n_hidden, N_IN), "b": (n_hidden,), "V": (N_OUT, n_hidden), "c": (N_OUT,)}
    what = "from init_params" if step == 0 else "after training"
    if not isinstance(value, dict):
        return None, f"params {what} are a {type(value).__name__}, not the dict of W, b, V, c"
    out = {}
    for key, shape in shapes.items():
        arr = value.get(key)
        if isinstance(arr, np.ndarray) and arr.shape != shape and arr.size == int(np.prod(shape)) and \
                tuple(d for d in arr.shape if d != 1) == tuple(d for d in shape if d != 1):
            arr = arr.reshape(shape)  # a bias kept as (1, n): the gradients check charges that shape
        name = f"params[{key!r}] {what}"
        if not isinstance(arr, np.ndarray):
            return None, f"{name} is missing or is not a numpy array"
        if arr.shape != shape:
            return None, f"{name} has shape {arr.shape}, expected {shape}"
        if arr.dtype not in FLOAT_DTYPES:
            return None, f"{name} has dtype {arr.dtype}; return float64 (or float32)"
        if not np.all(np.isfinite(arr)):
            return None, (f"params[{key!r}] became NaN/inf after {step} steps: training diverged "
                          "(learning rate too large, or an unstable softmax)")
        out[key] = np.array(arr, dtype=np.float64)
    return out, ""


def one_blas_thread():
    """One BLAS thread while training, as the grader's worker: threads of a multi-threaded BLAS spin and
    bill CPU seconds the budget counts (threadpoolctl where installed; else OPENBLAS_NUM_THREADS=1 in
    the environment of the grading kernel does it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def train(init_params, forward, backward, sgd_step, hyperparams, spec):
    """:func:`run_training` with one BLAS thread."""
    with one_blas_thread():
        return run_training(init_params, forward, backward, sgd_step, hyperparams, spec)


def run_training(init_params, forward, backward, sgd_step, hyperparams, spec):
    """One training run with the grader's schedule and stopping rules.

    Returns a dict: ``curve`` [(epoch, CPU seconds, test error)], ``best`` (lowest test error seen, 1.0
    without a checkpoint), ``reached`` (the target within the budget), ``zero`` (an already trained
    init: no credit at all) and ``problem`` (why it stopped early, "" when it did not).
    """
    s = _scalars(spec)
    hp = check_hyperparams(hyperparams, s)
    X, y = load_split("train")
    Xt, yt = load_split(str(s["split"]))
    activation, target, budget = str(s["activation"]), float(s["target"]), float(s["budget_s"])
    steps, per_epoch = schedule(s, hp, X.shape[0])
    checkpoints, last = set(steps), steps[-1]
    n_hidden, lr, batch = int(hp["n_hidden"]), float(hp["learning_rate"]), int(hp["batch_size"])
    plateau_error, window, spread = (float(v) for v in s["plateau"])
    run = {"curve": [], "best": 1.0, "reached": False, "zero": False, "problem": "", "budget_s": budget}
    eye = np.eye(N_OUT)
    evaluating = [0.0]
    started = time.process_time()

    def used():
        return time.process_time() - started - evaluating[0]

    def checkpoint(step, params):
        """Evaluate one checkpoint; True to go on."""
        seconds = used()
        t0 = time.process_time()
        try:
            good, problem = checked_params(params, n_hidden, step)
            if good is None:
                run["problem"] = problem
                return False
            if step == 0:
                rows = int(s["init_rows"])
                init_error = error_rate(good, Xt[:rows], yt[:rows], activation)
                if init_error < float(s["init_min_error"]):
                    run["zero"] = True
                    run["problem"] = (f"init_params must return random weights: the untrained network already has "
                                      f"test error {init_error:.2%} (chance is about 90%); parameters trained "
                                      "beforehand score 0 here")
                    return False
                return True
            err = error_rate(good, Xt, yt, activation)
        finally:
            evaluating[0] += time.process_time() - t0
        run["curve"].append((round(step / per_epoch, 4), round(seconds, 3), err))
        run["best"] = min(run["best"], err)
        if err < target and seconds <= budget:
            run["reached"] = True
            return False
        errors = [c[2] for c in run["curve"][-int(window):]]
        if len(run["curve"]) >= int(window) and run["best"] > plateau_error and max(errors) - min(errors) < spread:
            run["problem"] = (f"the test error stayed at {run['best']:.1%} or above for {int(window)} checkpoints "
                              "in a row, so training was stopped early: the network is not learning")
            return False
        if seconds > budget:
            run["problem"] = f"training used the whole budget of {budget:.0f} CPU seconds"
            return False
        return True

    rng = np.random.default_rng(int(s["seed"]))
    try:
        params = judges.call_student(init_params, "init_params", X.shape[1], n_hidden, N_OUT, rng)
        if not checkpoint(0, params):
            return run
        step = 0
        while step < last:
            order = rng.permutation(X.shape[0])
            for k in range(per_epoch):
                idx = np.sort(order[k * batch:(k + 1) * batch])
                out = judges.call_student(forward, "forward", params, np.asarray(X[idx], dtype=np.float64))
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    raise AssertionError(f"forward returned {type(out).__name__}; it must return (probs, cache)")
                grads = judges.call_student(backward, "backward", params, out[1], eye[y[idx]])
                params = judges.call_student(sgd_step, "sgd_step", params, grads, lr)
                step += 1
                if used() > budget + float(s["grace_s"]):  # the grader stops its worker here
                    run["problem"] = f"training used the whole budget of {budget:.0f} CPU seconds"
                    return run
                if step in checkpoints and not checkpoint(step, params):
                    return run
                if step >= last:
                    break
    except AssertionError as exc:  # the student's code failed mid-run: credit for the checkpoints before
        run["problem"] = f"training stopped: {exc}"
    return run


def describe(run):
    """The run in one sentence: best error, epochs, CPU seconds and why it stopped."""
    if not run["curve"]:
        return run["problem"] or "no checkpoint was reached"
    epoch, seconds, err = run["curve"][-1]
    text = (f"best test error {run['best']:.2%}; last checkpoint {err:.2%} after {epoch:g} epochs, {seconds:.1f} "
            f"CPU seconds of training (budget {run['budget_s']:.0f} s)")
    return text + (f"; {run['problem']}" if run["problem"] else "")


_TRAINED = {}


def reaches(init_params, forward, backward, sgd_step, hyperparams, data, threshold, within_budget):
    """AssertionError unless the run scores this step of the grader's scale: ``within_budget`` (the
    target step) needs the target reached within the budget; a partial step needs the best test error
    below ``threshold``. One run per set of functions and spec, shared by the steps (the cache holds
    the functions themselves, so a later function with a recycled id is never taken for them)."""
    from_spec = {k: np.asarray(v) for k, v in data.items()}
    fns = (init_params, forward, backward, sgd_step)
    key = (tuple(id(f) for f in fns), repr(sorted(dict(hyperparams).items()))
           if isinstance(hyperparams, dict) else repr(hyperparams),
           tuple(sorted((k, v.tobytes(), str(v.dtype)) for k, v in from_spec.items())))
    cached = _TRAINED.get(key)
    if cached is None or any(a is not b for a, b in zip(cached[0], fns)):
        try:
            cached = (fns, train(init_params, forward, backward, sgd_step, hyperparams, from_spec))
        except AssertionError as exc:
            cached = (fns, str(exc))
        _TRAINED[key] = cached
    run = cached[1]
    if isinstance(run, str):
        raise AssertionError(run)
    if run["zero"]:
        raise AssertionError(run["problem"])
    if within_budget:
        if not run["reached"]:
            raise AssertionError(f"test error not below {float(threshold):.0%} within the budget: {describe(run)}")
    elif not run["best"] < float(threshold):
        raise AssertionError(f"test error not below {float(threshold):.0%}: {describe(run)}")
