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

try:  # inside the autograder package
    from .. import extension_judges, gradcheck, judges
except ImportError:  # shipped: bplab_judges.py, bplab_extension_judges.py and gradcheck.py lie next to it
    import bplab_extension_judges as extension_judges
    import bplab_judges as judges
    import gradcheck

KEYS = ("W", "b", "V", "c")
FLOAT_DTYPES = judges.FLOAT_DTYPES


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


_call = judges.call_student  # one definition, shared with bplab_training


def _array(name, value, shape, allow_nonfinite=False):
    problem = judges.array_problem(name, value, shape, allow_nonfinite)
    if problem:
        raise AssertionError(problem)
    return value


def _probs(forward, params, X):
    out = _call(forward, "forward", params, X)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"forward returned {type(out).__name__}; it must return (probs, cache)")
    return out


def _grads(forward, backward, case, X=None, Y=None):
    params = _params(case)
    probs, cache = _probs(forward, params, np.array(case["X"] if X is None else X))
    grads = _call(backward, "backward", params, cache, np.array(case["Y"] if Y is None else Y))
    if not isinstance(grads, dict):
        raise AssertionError(f"backward returned {type(grads).__name__}; it must return a dict with keys W, b, V, c")
    return grads


def _grad(grads, key, shape):
    if key not in grads:
        raise AssertionError(f"backward's dict has no key {key!r}")
    return _array(f"dL/d{key}", grads[key], shape)


def _all_grads(forward, backward, case, X=None, Y=None):
    """Every gradient, a (1, n) bias taken as (n,) (the gradients tests charge that shape, as the grader)."""
    grads = _grads(forward, backward, case, X, Y)
    return {k: _grad({k: judges.squeeze_to(grads.get(k), case[k].shape)} if k in grads else {}, k, case[k].shape)
            for k in KEYS}


def _truth(case, prefix=""):
    """(truth, truth in float32) of a case's data: ``g.<K>`` and ``g32.<K>`` (autograder/checks/judge_data.py)."""
    return ({k: case[f"{prefix}g.{k}"] for k in KEYS}, {k: case[f"{prefix}g32.{k}"] for k in KEYS})


def _fail(verdict, where):
    if not verdict.passed:
        raise AssertionError(f"{where}: {verdict.message}")


# ---- forward -------------------------------------------------------------------------------------
def forward_matches(forward, data):
    """probs of every case match the reference's (bplab_judges.probs: rtol 1e-6, atol 1e-9 in float64)."""
    for i, case in enumerate(cases(data)):
        probs, _ = _probs(forward, _params(case), np.array(case["X"]))
        shape = (case["X"].shape[0], case["V"].shape[0])
        probs = _array("probs", probs, shape, allow_nonfinite=True)
        variants = {k[3:]: v for k, v in case.items() if k.startswith("fv=")}
        _fail(judges.probs(probs, case["probs"], case["probs32"], variants, str(case["activation"]),
                           bool(case["overflow"])), f"case {i} (N={shape[0]})")


# ---- gradients -----------------------------------------------------------------------------------
def gradient_matches(forward, backward, data, key):
    """dL/d``key`` of every case matches the true gradient (bplab_judges.gradient), and the first case
    again gives the same gradient (no hidden state between calls)."""
    found = cases(data)
    first = None
    for i, case in enumerate(found):
        got = _grad(_grads(forward, backward, case), key, case[key].shape)
        first = got.copy() if first is None else first
        truth, truth32 = _truth(case)
        variants = {k.split(".", 2)[2]: v for k, v in case.items() if k.startswith(f"gv.{key}.")}
        messages = {k[3:]: str(v) for k, v in case.items() if k.startswith("gm.")}
        _fail(judges.gradient(key, got, truth[key], truth32[key], judges.grad_scale(truth), case["X"].shape[0],
                              case["Y"].shape[1], variants, messages), f"case {i} (N={case['X'].shape[0]}): dL/d{key}")
    again = _grads(forward, backward, found[0]).get(key)  # the grader's repeat of its first case
    if type(again) is not np.ndarray or again.shape != first.shape or gradcheck.relative_error(again, first) > 1e-12:
        raise AssertionError(f"called again on the first case, backward returned a different dL/d{key}: it keeps "
                             "hidden state between calls; it must depend only on params, cache and Y")


def gradients_match_all(forward, backward, data):
    """dL/dW, dL/db, dL/dV and dL/dc all match (the public self-check)."""
    for key in KEYS:
        gradient_matches(forward, backward, data, key)


# ---- minibatch -----------------------------------------------------------------------------------
def batch_is_mean(forward, backward, data):
    """The gradient of a batch equals the mean of its per-example gradients (bplab_judges.batch_mean)."""
    case = cases(data)[0]
    n = case["X"].shape[0]
    batch = _all_grads(forward, backward, case)
    singles, usable = [], set(KEYS)
    for i in range(n):
        singles.append(_all_grads(forward, backward, case, case["X"][i:i + 1], case["Y"][i:i + 1]))
        usable &= judges.right_keys(singles[-1], *_truth(case, f"e{i}."))
    ref_singles = [_truth(case, f"e{i}.")[1] for i in range(n)]
    _fail(judges.batch_mean(batch, singles, usable, _truth(case)[1], ref_singles), f"batch of {n}")


def rows_independent(forward, data):
    """Changing example 0 (``X2``: the grader's perturbation) leaves the other examples' probs unchanged."""
    case = cases(data)[0]
    shape = (case["X"].shape[0], case["V"].shape[0])
    first = _array("probs", np.asarray(_probs(forward, _params(case), np.array(case["X"]))[0]), shape)  # values, as
    second = _array("probs", np.asarray(_probs(forward, _params(case), np.array(case["X2"]))[0]), shape)  # the grader
    _fail(judges.rows_independent(first, second, case["probs"], case["probs32"]), "rows independent")


def sizes_match(forward, backward, data):
    """Gradients are right for N=1 and for an odd N (bplab_judges.batch_size)."""
    for case in cases(data):
        n = case["X"].shape[0]
        _fail(judges.batch_size(_all_grads(forward, backward, case), *_truth(case), n), f"N={n}")


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
    if not right:
        raise AssertionError("not credited: neither forward nor backward was right on any case yet")


def _right_somewhere(case, probs, grads):
    """Are probs, or every gradient, the reference's on this case? (the grader's gate for 'inputs not mutated')"""
    try:
        if type(probs) is np.ndarray and probs.shape == case["probs"].shape and probs.dtype in FLOAT_DTYPES and \
                judges.probs(probs, case["probs"], case["probs32"]).passed:
            return True
        return isinstance(grads, dict) and all(type(grads.get(k)) is np.ndarray and grads[k].shape == case[k].shape
                                               for k in KEYS) and judges.right_keys(grads, *_truth(case)) == set(KEYS)
    except (TypeError, ValueError):
        return False


# ---- sgd_step ------------------------------------------------------------------------------------
_SGD = []  # (sgd_step, packed case, calls): the function itself is kept, so an id is never reused


def _sgd_calls(sgd_step, case):
    """The grader's three calls, (p, g, lr), (p2, g2, lr2), (p, g, lr) again: [(suffix, new, grads, copy)],
    made once per sgd_step and case (as the grader, which calls it three times in all: hidden state shows)."""
    packed = pack(case)
    for fn, key, calls in _SGD:
        if fn is sgd_step and key == packed:
            return calls
    _SGD.append((sgd_step, packed, _sgd_made(sgd_step, case)))
    return _SGD[-1][2]


def _sgd_made(sgd_step, case):
    out = []
    for suffix in ("", "2", ""):
        if f"lr{suffix}" not in case:
            continue
        params = {k: np.array(case[f"p{suffix}.{k}"]) for k in KEYS}
        grads = {k: np.array(case[f"g{suffix}.{k}"]) for k in KEYS}
        kept = {k: v.copy() for k, v in grads.items()}
        out.append((suffix, _call(sgd_step, "sgd_step", params, grads, float(case[f"lr{suffix}"])), grads, kept))
    return out


def _sgd_verdict(case, calls):
    """bplab_judges.sgd_calls on the calls made: (verdict, keys the first call updated exactly)."""
    return judges.sgd_calls([(*(dict((k, case[f"{x}{s}.{k}"]) for k in KEYS) for x in "pg"), float(case[f"lr{s}"]),
                              judges.sgd_returned(new, {k: case[f"p{s}.{k}"].shape for k in KEYS}))
                             for s, new, _, _ in calls])


def sgd_exact(sgd_step, data):
    """Every key is updated as p - lr * g, on each of the grader's three calls in a row."""
    case = cases(data)[0]
    verdict, _ = _sgd_verdict(case, _sgd_calls(sgd_step, case))
    if not verdict.passed:
        raise AssertionError(verdict.message)


def sgd_keeps_grads(sgd_step, data):
    """sgd_step does not modify the gradients it is given (credited once some key is updated right)."""
    case = cases(data)[0]
    calls = _sgd_calls(sgd_step, case)
    changed = sorted({k for _, _, grads, kept in calls for k in KEYS
                      if not np.array_equal(np.asarray(grads[k]), kept[k], equal_nan=True)})
    if changed:
        raise AssertionError(f"sgd_step changed the gradients {', '.join(changed)}; read them, do not modify them")
    if not _sgd_verdict(case, calls)[1]:  # as the grader: a wrong update earns nothing for unchanged grads
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
    _fail(extension_judges.l2_value(value, _case_params(data), wd), "l2_penalty")


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
        _, problem = extension_judges.l2_grad_key(key, got, data["g." + key], data["p." + key],
                                                  float(data["weight_decay"]), data["e." + key])
        if problem:
            raise AssertionError(f"l2_penalty_grads: {problem[1]}")


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
    cases = [([float(x) for x in data[f"curve{i}"]], int(data[f"patience{i}"])) for i in range(int(data["count"]))]
    _fail(extension_judges.early_stopping(index, _early_answers(early_stopping, data), cases), "early_stopping")


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
    _fail(extension_judges.dropout_forward(h, dropped, masks, rate), "dropout_forward")
    again = _call(dropout_forward, "dropout_forward", h.copy(), rate, np.random.default_rng(int(data["seed"])))
    if not np.array_equal(np.asarray(again[0]), dropped[0]):
        raise AssertionError(extension_judges.DROPOUT_IGNORES_RNG)


def dropout_backward_ok(dropout_backward, data):
    """dropout_backward(dh, mask, rate) == dh * mask / (1 - rate) for a fixed mask."""
    dh, mask, rate = np.array(data["dh"]), np.array(data["mask"]), float(data["rate"])
    got = _array("the gradient dropout_backward returned",
                 _call(dropout_backward, "dropout_backward", dh, mask, rate), dh.shape)
    _fail(extension_judges.dropout_backward(got, dh, mask, rate), "dropout_backward")
