"""Checks of the backprop lab for the otter-grader and nbgrader versions (shipped next to the notebook as
``bplab_checks.py``): pure numpy, no solution code, no expected values; public test cells pass packed
arrays (:func:`pack`), hidden ones load theirs at grading time (:func:`hidden`). Each check raises
``AssertionError`` with a sentence a student can act on; they mirror the grader's tests one for one.
Shapes: X (N, n_in), Y (N, n_out) one-hot, W (n_hidden, n_in), b (n_hidden,), V (n_out, n_hidden),
c (n_out,), probs (N, n_out)."""
import base64
import io
import os

import numpy as np

KEYS = ("W", "b", "V", "c")
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


# ---- packing: arrays travel inside test cells as base64 text of an .npz (never pickled) --------
def pack(arrays):
    """``{name: array}`` -> base64 text of an uncompressed .npz (allow_pickle is never needed)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def unpack(text):
    """The inverse of :func:`pack`: ``{name: array}``, loaded with ``allow_pickle=False``."""
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


#: the instructor-side file of hidden cases: this variable, else a file of this name next to this module
HIDDEN_ENV = "BPLAB_HIDDEN"
HIDDEN_FILE = "bplab_hidden.npz"


def hidden(test_id):
    """The arrays of one hidden test from the instructor-side file (never a cell: feedback shows cells):
    ``BPLAB_HIDDEN`` (nbgrader's config), else ``bplab_hidden.npz`` here (otter); keys ``<test id>/<name>``."""
    path = os.environ.get(HIDDEN_ENV) or os.path.join(os.path.dirname(os.path.abspath(__file__)), HIDDEN_FILE)
    if not os.path.isfile(path):
        raise AssertionError(f"hidden test {test_id}: the hidden cases file {path} is missing (instructors: "
                             f"set {HIDDEN_ENV} to the release's hidden .npz); this test cannot run here")
    prefix = f"{test_id}/"
    with np.load(path, allow_pickle=False) as data:
        found = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
    if not found:
        raise AssertionError(f"hidden test {test_id}: not in {path} (a file of another release?)")
    return found


def cases(data, prefix="case"):
    """Split ``{"case0.W": ..., "case0.X": ..., "case1.W": ...}`` into a list of per-case dicts."""
    found = {}
    for name, value in data.items():
        head, _, key = name.partition(".")
        if head.startswith(prefix) and head[len(prefix):].isdigit() and key:
            found.setdefault(int(head[len(prefix):]), {})[key] = value
    return [found[i] for i in sorted(found)]


# ---- calling the student's code and validating what comes back (type -> shape -> dtype -> finite) ----
def _params(case):
    return {k: np.array(case[k], dtype=np.float64) for k in KEYS}


def _call(fn, name, *args):
    if not callable(fn):
        raise AssertionError(f"{name} is not defined; keep the function names of the handout")
    try:
        return fn(*args)
    except NotImplementedError as exc:
        raise AssertionError(f"{name} is not implemented yet ({exc}); replace the `raise "
                             "NotImplementedError` with your code") from None
    except Exception as exc:  # noqa: BLE001 - the student's error (AssertionError too), reported by name
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from None


def _array(name, value, shape, allow_nonfinite=False):
    if type(value) is not np.ndarray:
        raise AssertionError(f"{name} is a {type(value).__name__}, expected a plain numpy array of shape {shape}")
    if value.shape != tuple(shape):
        hint = ""
        if len(shape) == 2 and value.shape == tuple(shape)[::-1]:
            hint = " (transposed: you have the axes the other way round)"
        elif value.ndim == len(shape) + 1 and value.shape[1:] == tuple(shape):
            hint = " (one row per example: did you forget to sum over the batch axis?)"
        raise AssertionError(f"{name} has shape {value.shape}, expected {tuple(shape)}{hint}")
    if value.dtype not in FLOAT_DTYPES:
        raise AssertionError(f"{name} has dtype {value.dtype}; return float64 (or float32)")
    if not allow_nonfinite and not np.all(np.isfinite(value)):
        raise AssertionError(f"{name} contains NaN or inf")
    return value


def _tol(dtype, float64, float32):
    return float32 if np.dtype(dtype) == np.float32 else float64


def relative_error(a, n):
    """``|a - n| / max(|a| + |n|, 1e-8)`` with Frobenius norms; 0 means identical."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-8))


def _probs(forward, params, X):
    out = _call(forward, "forward", params, X)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"forward returned {type(out).__name__}; it must return (probs, cache)")
    return out


def _grads(forward, backward, case):
    params = _params(case)
    probs, cache = _probs(forward, params, np.array(case["X"]))
    grads = _call(backward, "backward", params, cache, np.array(case["Y"]))
    if not isinstance(grads, dict):
        raise AssertionError(f"backward returned {type(grads).__name__}; it must return a dict with keys W, b, V, c")
    return grads


def _grad(grads, key, shape):
    if key not in grads:
        raise AssertionError(f"backward's dict has no key {key!r}")
    return _array(f"dL/d{key}", grads[key], shape)


# ---- forward -------------------------------------------------------------------------------------
def forward_matches(forward, data):
    """probs of every case match the reference's (rtol 1e-6, atol 1e-9 in float64)."""
    for i, case in enumerate(cases(data)):
        params = _params(case)
        probs, _ = _probs(forward, params, np.array(case["X"]))
        shape = (case["X"].shape[0], case["V"].shape[0])
        probs = _array("probs", probs, shape, allow_nonfinite=True)
        if not np.all(np.isfinite(probs)):
            raise AssertionError(f"case {i}: probs contain NaN or inf (an exp that overflows? subtract each "
                                 "row's maximum logit before np.exp)")
        expected = case["probs"]
        rtol, atol = _tol(probs.dtype, 1e-6, 1e-4), _tol(probs.dtype, 1e-9, 1e-6)
        err = float(np.max(np.abs(probs - expected) / (atol + rtol * np.abs(expected))))
        if err > 1.0:
            raise AssertionError(f"case {i} (N={shape[0]}): probs differ from the expected values by up to "
                                 f"{np.max(np.abs(probs - expected)):.3g}; check a = X W^T + b, h = f(a), "
                                 "logits = h V^T + c and the softmax over each row")


# ---- gradients -----------------------------------------------------------------------------------
def gradient_matches(forward, backward, data, key):
    """dL/d``key`` of every case matches the true gradient (relative error < 1e-6 in float64)."""
    for i, case in enumerate(cases(data)):
        grads = _grads(forward, backward, case)
        got = _grad(grads, key, case[key].shape)
        err = relative_error(got, case["g" + key])
        if err > _tol(got.dtype, 1e-6, 1e-4):
            raise AssertionError(f"case {i} (N={case['X'].shape[0]}): dL/d{key} has relative error {err:.2e} "
                                 "against the true gradient of the mean loss")


def gradients_match_all(forward, backward, data):
    """dL/dW, dL/db, dL/dV and dL/dc all match (the public self-check)."""
    for key in KEYS:
        gradient_matches(forward, backward, data, key)


# ---- minibatch -----------------------------------------------------------------------------------
def batch_is_mean(forward, backward, data):
    """The gradient of a batch equals the mean of its per-example gradients."""
    case = cases(data)[0]
    batch = _grads(forward, backward, case)
    shapes = {k: case[k].shape for k in KEYS}
    batch = {k: _grad(batch, k, shapes[k]) for k in KEYS}
    singles = []
    for i in range(case["X"].shape[0]):
        one = dict(case, X=case["X"][i:i + 1], Y=case["Y"][i:i + 1])
        g = _grads(forward, backward, one)
        singles.append({k: _grad(g, k, shapes[k]) for k in KEYS})
    tol = 1e-8 if all(v.dtype == np.float64 for v in batch.values()) else 1e-4
    usable = [k for k in KEYS if all(f"e{i}g{k}" not in case or relative_error(s[k], case[f"e{i}g{k}"])
                                     <= _tol(s[k].dtype, 1e-6, 1e-4) for i, s in enumerate(singles))]
    if not usable:  # as the grader: zero or wrong per-example gradients earn nothing here
        raise AssertionError("not credited: the per-example gradients are wrong for every parameter")
    for key in usable:
        err = relative_error(batch[key], np.mean([s[key] for s in singles], axis=0))
        if err > tol:
            raise AssertionError(f"the batch gradient dL/d{key} is not the mean of the per-example gradients "
                                 f"(relative error {err:.2e}); the loss is the MEAN over the batch")


def rows_independent(forward, data):
    """Changing example 0 leaves the probabilities of the other examples unchanged."""
    case = cases(data)[0]
    params = _params(case)
    X = np.array(case["X"])
    shape = (X.shape[0], case["V"].shape[0])
    first = _array("probs", _probs(forward, params, X.copy())[0], shape)
    X2 = X.copy()
    X2[0] += 3.0
    second = _array("probs", _probs(forward, _params(case), X2)[0], shape)
    changed = float(np.abs(first[1:] - second[1:]).max())
    if changed > _tol(first.dtype, 1e-12, 1e-6):
        raise AssertionError(f"changing only example 0 changed the probabilities of other examples (by up to "
                             f"{changed:.2e}): normalise over axis=1 (the classes), not over the batch")
    if "probs" in case and float(np.max(np.abs(first - case["probs"]))) > _tol(first.dtype, 1e-6, 1e-4):
        raise AssertionError("not credited: probs are wrong on this case, so independent rows show nothing yet")


def sizes_match(forward, backward, data):
    """Gradients are right for N=1 and for an odd N."""
    for case in cases(data):
        grads = _grads(forward, backward, case)
        for key in KEYS:
            got = _grad(grads, key, case[key].shape)
            err = relative_error(got, case["g" + key])
            if err > _tol(got.dtype, 1e-6, 1e-4):
                raise AssertionError(f"N={case['X'].shape[0]}: dL/d{key} is wrong (relative error {err:.2e}); "
                                     "check sums and means over the batch axis")


def inputs_unchanged(forward, backward, data):
    """forward and backward leave params, X and Y as they were (credited once either is right somewhere)."""
    right = False
    for case in cases(data):
        params = _params(case)
        X, Y = np.array(case["X"]), np.array(case["Y"])
        before = {"X": X.copy(), "Y": Y.copy(), **{f"params[{k!r}]": v.copy() for k, v in params.items()}}
        probs, cache = _probs(forward, params, X)
        grads = _call(backward, "backward", params, cache, Y)
        right = right or _right_somewhere(case, probs, grads)
        after = {"X": X, "Y": Y, **{f"params[{k!r}]": params[k] for k in KEYS}}
        changed = [name for name, old in before.items()
                   if not (isinstance(after[name], np.ndarray) and after[name].shape == old.shape
                           and np.array_equal(after[name], old, equal_nan=True))]
        if changed:
            raise AssertionError(f"forward/backward changed {', '.join(changed)} in place; compute new arrays "
                                 "instead (e.g. not `X -= ...`)")
    if not right and any("probs" in c for c in cases(data)):
        raise AssertionError("not credited: neither forward nor backward was right on any case yet")


def _right_somewhere(case, probs, grads):
    """Are probs, or every gradient, the reference's on this case? (the grader's gate for 'inputs not mutated')"""
    try:
        if "probs" in case and np.asarray(probs).shape == case["probs"].shape and \
                float(np.max(np.abs(np.asarray(probs, dtype=np.float64) - case["probs"]))) <= 1e-4:
            return True
        return isinstance(grads, dict) and all(
            "g" + k in case and np.asarray(grads.get(k)).shape == case["g" + k].shape
            and relative_error(np.asarray(grads[k], dtype=np.float64), case["g" + k]) <= 1e-4 for k in KEYS)
    except (TypeError, ValueError):
        return False


# ---- sgd_step ------------------------------------------------------------------------------------
def _sgd(sgd_step, case):
    params = {k: np.array(case["p" + k]) for k in KEYS}
    grads = {k: np.array(case["g" + k]) for k in KEYS}
    kept = {k: v.copy() for k, v in grads.items()}
    new = _call(sgd_step, "sgd_step", params, grads, float(case["lr"]))
    return new, grads, kept


def sgd_exact(sgd_step, data):
    """Every key is updated as p - lr * g."""
    case = cases(data)[0]
    new, _, _ = _sgd(sgd_step, case)
    if not isinstance(new, dict):
        raise AssertionError(f"sgd_step returned {type(new).__name__}; return a dict with the keys W, b, V, c")
    for key in KEYS:
        if key not in new:
            raise AssertionError(f"the dict sgd_step returned has no key {key!r}: every parameter takes a step")
        got = _array(f"the new {key}", new[key], case["p" + key].shape)
        expected = case["p" + key] - float(case["lr"]) * case["g" + key]
        if not np.allclose(got, expected, rtol=_tol(got.dtype, 1e-12, 1e-6), atol=1e-14):
            raise AssertionError(f"the new {key} is not p - lr * g")


def sgd_keeps_grads(sgd_step, data):
    """sgd_step does not modify the gradients it is given."""
    case = cases(data)[0]
    new, grads, kept = _sgd(sgd_step, case)
    changed = [k for k in KEYS if not np.array_equal(np.asarray(grads[k]), kept[k], equal_nan=True)]
    if changed:
        raise AssertionError(f"sgd_step changed the gradients {', '.join(changed)}; read them, do not modify them")
    lr = float(case["lr"])
    exact = [k for k in KEYS if isinstance(new, dict) and k in new and np.asarray(new[k]).shape == case["p" + k].shape
             and np.all(np.abs(np.asarray(new[k], dtype=np.float64) - (case["p" + k] - lr * case["g" + k]))
                        <= _tol(np.asarray(new[k]).dtype, 1e-12, 1e-6) * (np.abs(case["p" + k]) + lr * np.abs(case["g" + k])) + 1e-14)]
    if not exact:  # as the grader: an update that is wrong everywhere earns nothing for leaving grads alone
        raise AssertionError("not credited: no key was updated correctly")


# ---- training: the grader's run on real MNIST (bplab_training.py, shipped next to this file) -------
def _training_module():
    try:
        from . import nbtraining  # in the backprop-lab package
        return nbtraining
    except ImportError:  # shipped: bplab_training.py next to this file
        import importlib.util
        import sys
        if "bplab_training" not in sys.modules:
            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bplab_training.py")
            spec = importlib.util.spec_from_file_location("bplab_training", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["bplab_training"] = module
        return sys.modules["bplab_training"]


def training_reaches(init_params, forward, backward, sgd_step, HYPERPARAMS, data, threshold, within_budget):
    """Trained on MNIST with the grader's loop and rules, the network scores this step of the grader's
    scale (``within_budget``: the target within the CPU budget; else best test error < ``threshold``)."""
    _training_module().reaches(init_params, forward, backward, sgd_step, HYPERPARAMS, data, threshold,
                               within_budget)


# ---- optional extensions (only in releases whose course.toml enables them) -----------------------
def _case_params(data, prefix="p."):
    return {k: np.array(data[prefix + k], dtype=np.float64) for k in KEYS}


def l2_value(l2_penalty, data):
    """l2_penalty(params, weight_decay) == (weight_decay/2)(|W|^2 + |V|^2) (rtol 1e-8)."""
    wd = float(data["weight_decay"])
    value = _call(l2_penalty, "l2_penalty", _case_params(data), wd)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"l2_penalty returned {type(value).__name__}; return one float") from None
    if not np.isclose(value, float(data["expected"]), rtol=1e-8, atol=1e-12):
        raise AssertionError(f"l2_penalty returned {value:.6g}, expected (weight_decay/2)(|W|² + |V|²)")


def l2_grads(l2_penalty_grads, data):
    """l2_penalty_grads(params, grads, weight_decay) adds weight_decay * W (and V) to the gradients."""
    params = _case_params(data)
    grads = {k: np.array(data["g." + k], dtype=np.float64) for k in KEYS}
    out = _call(l2_penalty_grads, "l2_penalty_grads", params, grads, float(data["weight_decay"]))
    if not isinstance(out, dict):
        raise AssertionError(f"l2_penalty_grads returned {type(out).__name__}; return a dict with keys W, b, V, c")
    for key in KEYS:
        if key not in out:
            raise AssertionError(f"l2_penalty_grads' dict has no key {key!r}")
        got = _array(f"the returned {key}", out[key], params[key].shape)
        err = relative_error(got, data["e." + key])
        if err > 1e-6:
            raise AssertionError(f"the returned {key} has relative error {err:.1e} against the gradient of the "
                                 "penalized loss (weight decay applies to W and V, not to b and c)")


def _early_answers(early_stopping, data):
    answers = []
    for i in range(int(data["count"])):
        curve = [float(x) for x in data[f"curve{i}"]]
        out = _call(early_stopping, "early_stopping", curve, int(data[f"patience{i}"]))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError("early_stopping must return the pair (stop_epoch, best_epoch) of ints")
        try:
            pair = tuple(int(v) for v in out)
        except (TypeError, ValueError):
            raise AssertionError("early_stopping must return the pair (stop_epoch, best_epoch) of ints") from None
        if any(float(v) != p for v, p in zip(out, pair)):
            raise AssertionError("early_stopping must return whole epoch numbers")
        answers.append(pair)
    return answers


def early_stopping_epoch(early_stopping, data, index):
    """stop_epoch (index 0) or best_epoch (index 1) is right on every validation curve."""
    what = ("stop_epoch", "best_epoch")[index]
    answers = _early_answers(early_stopping, data)
    wrong = [i for i, a in enumerate(answers) if a[index] != int(data[f"expected{i}"][index])]
    if wrong:
        raise AssertionError(f"{what} is wrong on {len(wrong)} of {len(answers)} validation curves; see the rule in "
                             "the docstring: stop at the first epoch with epoch - best_epoch == patience, a tie is "
                             "not an improvement, epochs count from 0")


def dropout_forward_ok(dropout_forward, data):
    """Inverted dropout: keep with probability 1 - rate, kept units divided by 1 - rate, a 0/1 mask from rng."""
    h, rate, draws = np.array(data["h"]), float(data["rate"]), int(data["draws"])
    rng = np.random.default_rng(int(data["seed"]))
    dropped, masks = [], []
    for _ in range(draws):
        h_in = h.copy()
        out = _call(dropout_forward, "dropout_forward", h_in, rate, rng)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError("dropout_forward must return the pair (h_dropped, mask) of arrays shaped like h")
        if not np.array_equal(h_in, h):
            raise AssertionError("dropout_forward changed h in place: return a new array")
        dropped.append(_array("h_dropped", out[0], h.shape))
        masks.append(np.asarray(out[1], dtype=np.float64))
    dropped, masks = np.array(dropped), np.array(masks)
    if masks.shape != dropped.shape:
        raise AssertionError(f"mask must have h's shape {h.shape}")
    kept = dropped != 0
    keep_frac = float(kept.mean())
    scale = float(np.mean(dropped[kept] / np.broadcast_to(h, dropped.shape)[kept])) if kept.any() else 0.0
    mean_ratio = float(dropped.mean(axis=0).sum() / h.sum())
    if abs(keep_frac - (1 - rate)) > 0.03:
        raise AssertionError(f"{100 * keep_frac:.1f}% of the units were kept, expected {100 * (1 - rate):.0f}% at "
                             f"rate {rate} (rate is the probability of DROPPING a unit)")
    if not np.isclose(scale, 1 / (1 - rate), rtol=1e-6):
        raise AssertionError(f"kept units are scaled by {scale:.4f}, expected 1/(1-rate) = {1 / (1 - rate):.4f}")
    if abs(mean_ratio - 1) > 0.03:
        raise AssertionError(f"over {draws} masks the mean of h_dropped is {mean_ratio:.3f} h, expected 1.000 h")
    if not np.all((masks == 0) | (masks == 1)) or not np.array_equal(masks != 0, kept):
        raise AssertionError("the mask must hold 1.0 exactly where the unit was kept and 0.0 elsewhere")
    if draws > 1 and all(np.array_equal(masks[0], m) for m in masks[1:]):
        raise AssertionError("every call used the same mask: draw a new one from rng each call (do not re-seed)")
    again = _call(dropout_forward, "dropout_forward", h.copy(), rate, np.random.default_rng(int(data["seed"])))
    if not np.array_equal(np.asarray(again[0]), dropped[0]):
        raise AssertionError("two calls with equally seeded generators gave different masks: draw the mask from "
                             "the rng argument, not from np.random")


def dropout_backward_ok(dropout_backward, data):
    """dropout_backward(dh, mask, rate) == dh * mask / (1 - rate) for a fixed mask."""
    dh, mask, rate = np.array(data["dh"]), np.array(data["mask"]), float(data["rate"])
    got = _array("the gradient dropout_backward returned",
                 _call(dropout_backward, "dropout_backward", dh, mask, rate), dh.shape)
    if not np.allclose(got, dh * mask / (1 - rate), rtol=1e-10, atol=1e-12):
        raise AssertionError("dropout_backward with a fixed mask: expected dh_dropped * mask / (1 - rate)")
