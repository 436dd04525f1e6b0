"""Helpers of the public self-tests (test_mlp.py): call the student's functions, turn every problem into
one readable sentence, load the public cases and ask the grader's own judges (bplab_judges.py) for
their verdict on them. Shapes: X (N, n_in), Y (N, n_out) one-hot, W (n_hidden, n_in), b (n_hidden,),
V (n_out, n_hidden), c (n_out,), probs (N, n_out)."""
import functools
import json
import os
import traceback

import numpy as np
import pytest

import bplab_judges as judges
import gradcheck


KEYS = ("W", "b", "V", "c")


TOL = 1e-6  # relative error allowed between backward and finite differences (float64)


TOL32 = 1e-2  # the same for float32 code: finite differences of float32 arithmetic are this coarse


H32 = 1e-3    # the finite-difference step for float32 code (float32 rounding swamps h = 1e-5)


DTYPE_NOTE = (" (your result is float32: these tests and the grader judge float32 code to float32 precision, "
              "so this is more than rounding; float64, numpy's default, makes the checks sharper)")


def is32(*arrays):
    """True when any of ``arrays`` is a float32 numpy array."""
    return any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)


PUBLIC_CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "public_cases.json")


@functools.lru_cache(maxsize=None)
def _public_arrays():
    with open(PUBLIC_CASES, encoding="utf-8") as f:
        raw = json.load(f)["arrays"]
    return {k: np.asarray(v["values"]) if v["dtype"] == "str" else
            np.array(v["values"], dtype=v["dtype"]).reshape(v["shape"]) for k, v in raw.items()}


def public_case(name):
    """The arrays of one public case (``toy`` or ``sgd``), as the grader's side wrote them."""
    prefix = name + "."
    return {k[len(prefix):]: v.copy() for k, v in _public_arrays().items() if k.startswith(prefix)}


def toy_params(toy):
    return {k: toy[k].copy() for k in KEYS}


def fail(message):
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def _where(exc, module_file):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == module_file]
    return "".join(traceback.format_list(frames[-3:])) or "(not inside mlp.py)\n"


def call(mlp, name, *args):
    """mlp.<name>(*args), with 'not implemented yet' and crashes reported by name."""
    __tracebackhide__ = True
    fn = getattr(mlp, name, None)
    if not callable(fn):
        fail(f"mlp.py has no function {name}(); keep the function names and signatures of the handout")
    try:
        return fn(*args)
    except NotImplementedError as exc:
        text = str(exc)
        prefix = f"{name}: not implemented yet"
        detail = text[len(prefix):].lstrip(" -—:") if text.startswith(prefix) else text
        message = (f"{name} is not implemented yet" + (f": {detail}" if detail else "")
                   + f" (replace the `raise NotImplementedError` in {name} with your code)")
    except Exception as exc:
        message = f"{name} raised {type(exc).__name__}: {exc}\n{_where(exc, mlp.__file__)}"
    fail(message)  # outside the except block, so pytest shows only this message


def shape_problem(what, got, expected, n_batch=None):
    """A sentence about a wrong shape, naming the likely cause."""
    msg = f"{what} has shape {got}, expected {expected}"
    if len(expected) == 2 and got == expected[::-1]:
        return msg + (": it is transposed. Check the order of the factors in the matrix product "
                      "(A.T @ B versus B.T @ A); shapes are batch-major, one row per example")
    if n_batch is not None and len(expected) == 1 and got == (n_batch,) + expected:
        return msg + (f": it has one row per example (N={n_batch}). A bias gradient must be summed over "
                      "the batch (over axis 0), like the bias is shared by every example")
    return msg


def expect_dict(what, value):
    __tracebackhide__ = True
    if isinstance(value, (tuple, list)):
        fail(f"{what} returned a {type(value).__name__} of {len(value)} items; it must return a dict "
             "with the keys 'W', 'b', 'V', 'c' (e.g. {'W': ..., 'b': ..., 'V': ..., 'c': ...})")
    if not isinstance(value, dict):
        fail(f"{what} returned {type(value).__name__}; it must return a dict with the keys 'W', 'b', 'V', 'c'")


def expect_param_dict(what, value, shapes, n_batch=None):
    """``value`` is a dict with exactly ``shapes``' keys and finite float arrays of those shapes."""
    __tracebackhide__ = True
    expect_dict(what, value)
    missing = [k for k in shapes if k not in value]
    extra = [k for k in value if k not in shapes]
    if missing:
        fail(f"{what} returned a dict without the key(s) {', '.join(map(repr, missing))}; every one of "
             f"{', '.join(map(repr, shapes))} must be there (did it skip one?)")
    if extra:
        fail(f"{what} returned unexpected key(s) {', '.join(map(repr, extra))}; use exactly 'W', 'b', 'V', 'c'")
    for k, shape in shapes.items():
        expect_array(f"{what}['{k}']", value[k], shape, n_batch)


def expect_array(what, arr, shape, n_batch=None):
    __tracebackhide__ = True
    if type(arr) is not np.ndarray:  # as the grader: a plain array (an np.matrix or other subclass is not)
        fail(f"{what} is a {type(arr).__name__}, expected a plain numpy array of shape {shape}")
    if arr.shape != shape:
        fail(shape_problem(what, arr.shape, shape, n_batch))
    if arr.dtype not in judges.FLOAT_DTYPES:
        fail(f"{what} has dtype {arr.dtype}; use float64 (numpy's default) or float32 arrays (np.zeros(n) is "
             "float64, np.zeros(n, dtype=int) is not)")
    if not np.all(np.isfinite(arr)):
        fail(f"{what} contains NaN or inf (often an overflowing np.exp or log(0) somewhere before it)")


def run_forward(mlp, params, X):
    """probs from forward(params, X), checked: a (probs, cache) pair, shape (N, n_out), rows sum to 1."""
    __tracebackhide__ = True
    out = call(mlp, "forward", params, X)
    if isinstance(out, np.ndarray) or not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"forward returned {type(out).__name__}; it must return a pair (probs, cache) so that backward "
             "gets the cache: `return probs, cache`")
    probs, cache = out
    n, n_out = X.shape[0], params["V"].shape[0]
    if isinstance(probs, np.ndarray) and probs.shape == (n_out, n) and n != n_out:
        fail(f"forward returned probs of shape {probs.shape}, expected (N, n_out) = {(n, n_out)}: the "
             "probabilities are transposed. Keep one row per example and one column per class")
    expect_array("probs (forward's first result)", probs, (n, n_out))
    slack, note = (1e-5, DTYPE_NOTE) if is32(probs) else (1e-8, "")
    if np.any(probs < 0) or np.any(probs > 1 + slack):
        fail("forward returned probabilities outside [0, 1]; apply a softmax to the logits" + note)
    if not np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=slack):
        if n > 1 and np.allclose(probs.sum(axis=0), 1.0, rtol=0, atol=slack):
            fail("the COLUMNS of probs sum to 1, not the rows: your softmax normalises over the batch "
                 "(axis 0) instead of over the classes of each example (axis=1)")
        fail(f"the rows of probs must each sum to 1; their sums are {np.round(probs.sum(axis=1), 9)}" + note)
    return probs, cache


def run_backward(mlp, params, X, Y):
    """forward then backward; the gradient dict is checked for keys and shapes."""
    __tracebackhide__ = True
    _, cache = run_forward(mlp, params, X)
    grads = call(mlp, "backward", params, cache, Y)
    expect_param_dict("backward's result", grads, {k: v.shape for k, v in params.items()}, n_batch=X.shape[0])
    return grads


def make_problem(seed, N, n_in=10, n_hidden=5, n_out=2, margin=1e-2):
    """A float64 problem (params, X, one-hot Y) with every pre-activation at least ``margin`` from 0.

    The margin keeps finite differences away from the kink of ReLU at 0, where they are meaningless.
    """
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        params = {"W": 0.5 * rng.standard_normal((n_hidden, n_in)), "b": 0.1 * rng.standard_normal(n_hidden),
                  "V": rng.standard_normal((n_out, n_hidden)), "c": 0.1 * rng.standard_normal(n_out)}
        X = rng.standard_normal((N, n_in))
        if np.abs(X @ params["W"].T + params["b"]).min() > margin:
            break
    Y = np.eye(n_out)[rng.integers(0, n_out, size=N)]
    return params, X, Y


def gradient_errors(mlp, params, X, Y):
    """(student's gradients, finite-difference gradients, relative error per key or None if misshapen)."""
    __tracebackhide__ = True
    params = {k: v.copy() for k, v in params.items()}
    probs, cache = run_forward(mlp, params, X)
    grads = call(mlp, "backward", params, cache, Y)
    expect_gradient_keys(grads)

    def loss():
        return gradcheck.mean_nll(call(mlp, "forward", params, X)[0], Y)

    h = H32 if is32(probs, *grads.values()) else 1e-5
    numeric = {k: gradcheck.numerical_gradient(loss, params[k], h) for k in KEYS}
    errors = {}
    for k in KEYS:
        ok_shape = isinstance(grads[k], np.ndarray) and grads[k].shape == params[k].shape
        errors[k] = gradcheck.relative_error(grads[k], numeric[k]) if ok_shape else None
    return grads, numeric, errors


def expect_gradient_keys(grads):
    __tracebackhide__ = True
    expect_dict("backward", grads)
    missing = [k for k in KEYS if k not in grads]
    if missing:
        fail(f"backward returned a dict without the key(s) {', '.join(map(repr, missing))}; "
             "it must have a gradient for each of 'W', 'b', 'V', 'c'")


def explain_gradient(mlp, k, analytic, numeric, errors, n_batch):
    """Why the gradient of ``k`` differs from finite differences, in a TA's words."""
    head = (f"backward's gradient for {k} is wrong: relative error {errors[k]:.2e} against finite differences "
            f"of your forward's mean loss (must be < {TOL:g})")
    scale, residual = gradcheck.best_scale(analytic, numeric)
    if residual < 1e-5:
        what = gradcheck.describe_scale(scale, n_batch)
        if what:
            return f"{head}. It {what}."
    others_ok = all(errors[o] is not None and errors[o] < TOL for o in ("V", "c"))
    if k in ("W", "b") and others_ok:
        act = getattr(mlp, "ACTIVATION", "?")
        return (f"{head}. The gradients of V and c pass, so the output layer is right and the bug lies between "
                f"dL/dh and {k}: most likely the activation derivative. Check f'(a) for ACTIVATION = {act!r} "
                "(evaluated at the pre-activation a, multiplied elementwise: dL/da = dL/dh * f'(a)) and "
                "dL/dh = dL/dlogits @ V")
    i = np.unravel_index(np.argmax(np.abs(analytic - numeric)), numeric.shape)
    return (f"{head}. Largest difference at {k}{list(i)}: yours {analytic[i]:.6g}, finite differences "
            f"{numeric[i]:.6g}. Start from dL/dlogits = (probs - Y) / N and check each step's shape")


def check_all_gradients(mlp, params, X, Y, keys=KEYS):
    __tracebackhide__ = True
    grads, numeric, errors = gradient_errors(mlp, params, X, Y)
    for k in keys:
        expect_array(f"backward's gradient for {k}", grads[k], params[k].shape, n_batch=X.shape[0])
        if errors[k] >= (TOL32 if is32(grads[k]) else TOL):
            fail(explain_gradient(mlp, k, grads[k], numeric[k], errors, X.shape[0])
                 + (DTYPE_NOTE if is32(grads[k]) else ""))


def copies(d):
    return {k: v.copy() for k, v in d.items()}


def forward_verdict(mlp):
    """(the grader's judge's verdict on forward's probs for the public toy case, probs)."""
    toy = public_case("toy")
    probs, _ = run_forward(mlp, toy_params(toy), toy["X"])
    variants = {k[3:]: v for k, v in toy.items() if k.startswith("fv=")}
    return judges.probs(probs, toy["probs"], toy["probs32"], variants, str(toy["activation"])), probs


def rows_verdict(mlp):
    """The grader's rows-independence verdict on the public toy (it judges the values: an array subclass is
    the forward test's to charge)."""
    toy = public_case("toy")
    probs = []
    for X in (toy["X"], toy["X2"]):
        out = call(mlp, "forward", toy_params(toy), X)
        value = np.asarray(out[0]) if isinstance(out, (tuple, list)) and len(out) == 2 else out
        expect_array("probs (forward's first result)", value, toy["probs"].shape)
        probs.append(value)
    return judges.rows_independent(probs[0], probs[1], toy["probs"], toy["probs32"]), probs[0]


def gradient_verdict(mlp, key):
    """(the grader's judge's verdict on backward's gradient of ``key`` for the public toy case, grads)."""
    toy = public_case("toy")
    params, X, Y = toy_params(toy), toy["X"], toy["Y"]
    grads = call(mlp, "backward", params, forward_cache(mlp, params, X), Y)
    expect_gradient_keys(grads)
    expect_array(f"backward's gradient for {key}", grads[key], params[key].shape, n_batch=X.shape[0])
    truth = {k: toy["g." + k] for k in KEYS}
    variants = {k.split(".", 2)[2]: v for k, v in toy.items() if k.startswith(f"gv.{key}.")}
    messages = {k[3:]: str(v) for k, v in toy.items() if k.startswith("gm.")}
    return judges.gradient(key, grads[key], truth[key], toy["g32." + key], judges.grad_scale(truth), X.shape[0],
                           Y.shape[1], variants, messages), grads


def forward_cache(mlp, params, X):
    """forward's cache, for backward: the gradient tests judge the gradients, as the grader's do (what is
    wrong with probs is the forward tests' to say)."""
    __tracebackhide__ = True
    out = call(mlp, "forward", params, X)
    if isinstance(out, np.ndarray) or not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"forward returned {type(out).__name__}; it must return a pair (probs, cache) so that backward "
             "gets the cache: `return probs, cache`")
    return out[1]


def squeezed_backward(mlp, params, X, Y):
    """forward then backward, a (1, n) bias gradient taken as (n,) (the gradient tests charge that shape)."""
    cache = forward_cache(mlp, params, X)
    grads = call(mlp, "backward", params, cache, Y)
    expect_dict("backward", grads)
    grads = {k: judges.squeeze_to(v, params[k].shape) if k in params else v for k, v in grads.items()}
    expect_param_dict("backward's result", grads, {k: v.shape for k, v in params.items()}, n_batch=X.shape[0])
    return grads


def batch_mean_verdict(mlp):
    toy = public_case("toy")
    params, X, Y = toy_params(toy), toy["X"], toy["Y"]
    # fresh copies for every call, as the grader's worker gets: an input changed in place is another test's
    batch = squeezed_backward(mlp, copies(params), X.copy(), Y.copy())
    singles = [squeezed_backward(mlp, copies(params), X[i:i + 1].copy(), Y[i:i + 1].copy()) for i in range(X.shape[0])]
    usable = set(KEYS)
    for i, single in enumerate(singles):
        usable &= judges.right_keys(single, {k: toy[f"e{i}.g.{k}"] for k in KEYS}, {k: toy[f"e{i}.g32.{k}"] for k in KEYS})
    ref_singles = [{k: toy[f"e{i}.g32.{k}"] for k in KEYS} for i in range(X.shape[0])]
    return judges.batch_mean(batch, singles, usable, {k: toy["g32." + k] for k in KEYS}, ref_singles)


def _sgd_case(seed):
    rng = np.random.default_rng(seed)
    shapes = {"W": (5, 10), "b": (5,), "V": (2, 5), "c": (2,)}
    return ({k: rng.standard_normal(s) for k, s in shapes.items()},
            {k: rng.standard_normal(s) for k, s in shapes.items()}, shapes)


def sgd_verdict(mlp):
    """The grader's verdict on its three calls in a row on the public sgd case ((p, g, lr), (p2, g2,
    lr2), the first again; learning rates 0.37 and 0.05, not the usual 0.1), from the grader's judge."""
    case = public_case("sgd")
    calls = []
    for suffix in ("", "2", ""):
        params = {k: case[f"p{suffix}.{k}"] for k in KEYS}
        grads = {k: case[f"g{suffix}.{k}"] for k in KEYS}
        lr = float(case["lr" + suffix])
        new = call(mlp, "sgd_step", copies(params), copies(grads), lr)
        calls.append((params, grads, lr, judges.sgd_returned(new, {k: v.shape for k, v in params.items()})))
    return judges.sgd_calls(calls)[0], new

