"""Public self-tests for mlp.py: shapes, invariants, finite differences and the grader's own judges on
the public cases, no hidden answers.

Run them in this folder:   python -m pytest -q
Each failure says what is wrong and where to look. Where a test judges a public case (the toy of the
grader's forward and gradients checks, the public sgd_step calls) it uses the grader's own judge
(bplab_judges.py, a verbatim copy) against the expected values in public_cases.json, so it fails
exactly when the grader would on that case, for the same reason. Passing them is a good sign, not a
promise of full marks: the grader also runs hidden sizes and seeds, and trains on MNIST.
"""
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


HYPERPARAM_BOUNDS = {"n_hidden": (16, 1024), "learning_rate": (0.0001, 10.0), "batch_size": (1, 1024), "epochs": (1, 50)}


# ---------------------------------------------------------------------------------------------
# helpers: call the student's code and turn every problem into one readable sentence
# ---------------------------------------------------------------------------------------------
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
    if not isinstance(arr, np.ndarray):
        fail(f"{what} is a {type(arr).__name__}, expected a numpy array of shape {shape}")
    if arr.shape != shape:
        fail(shape_problem(what, arr.shape, shape, n_batch))
    if not np.issubdtype(arr.dtype, np.floating):
        fail(f"{what} has dtype {arr.dtype}; use float arrays (np.zeros(n) is float64, np.zeros(n, dtype=int) is not)")
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


# ---------------------------------------------------------------------------------------------
# init_params
# ---------------------------------------------------------------------------------------------
def test_init_params_shapes(mlp):
    params = call(mlp, "init_params", 10, 5, 2, np.random.default_rng(0))
    expect_param_dict("init_params", params, {"W": (5, 10), "b": (5,), "V": (2, 5), "c": (2,)})
    if np.allclose(params["W"], params["W"][0]):  # V = 0 is fine: V's gradient breaks the symmetry
        fail("init_params starts every row of W equal: every hidden unit then gets the same gradient and they "
             "stay identical forever. Draw W at random from rng")


def test_init_params_draws_from_rng(mlp):
    first = call(mlp, "init_params", 784, 100, 10, np.random.default_rng(1))
    expect_param_dict("init_params", first, {"W": (100, 784), "b": (100,), "V": (10, 100), "c": (10,)})
    again = call(mlp, "init_params", 784, 100, 10, np.random.default_rng(1))
    other = call(mlp, "init_params", 784, 100, 10, np.random.default_rng(2))
    if not all(np.array_equal(first[k], again[k]) for k in KEYS):
        fail("init_params gave different parameters for two generators with the same seed: draw every random "
             "number from the rng argument (rng.standard_normal(...)), not from np.random.*")
    if np.array_equal(first["W"], other["W"]):
        fail("init_params gave the same W for different seeds: draw W from the rng argument")
    std = float(first["W"].std())
    if not 1e-4 <= std <= 0.5:
        fail(f"W entries for 784 inputs have standard deviation {std:.3g}; scale them like 1/sqrt(n_in) "
             "(about 0.036 here) so the hidden pre-activations start at a sensible size")


# ---------------------------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------------------------
def test_forward_returns_probabilities(mlp):
    params, X, _ = make_problem(seed=10, N=6, n_out=3)
    run_forward(mlp, params, X)


def test_forward_is_stable_for_large_logits(mlp):
    params, X, _ = make_problem(seed=11, N=5, n_out=3)
    base, _ = run_forward(mlp, params, X)
    for shift in (1000.0,):  # the grader's large-logit case: every logit above 750
        shifted = dict(params, c=params["c"] + shift)
        with np.errstate(all="ignore"):
            probs = call(mlp, "forward", shifted, X)[0]
        if not (isinstance(probs, np.ndarray) and np.all(np.isfinite(probs))):
            fail(f"forward returns NaN or inf when every logit is shifted by {shift:+g} (through c): the softmax "
                 "overflows in np.exp. Softmax does not change when one constant is subtracted from a row "
                 "of logits, so subtract each row's largest logit before exponentiating")
        # float32 logits near 1000 are rounded to about 6e-5, and so are the probabilities
        atol, note = (1e-3, DTYPE_NOTE) if is32(probs) else (1e-8, "")
        if probs.shape != base.shape or not np.allclose(probs, base, rtol=0, atol=atol):
            fail(f"adding {shift:+g} to every logit changed forward's probabilities; a softmax is unchanged "
                 "by adding one constant to a row of logits (is np.exp overflowing or underflowing?)" + note)


def test_forward_matches_the_reference_on_the_public_toy(mlp):
    """The grader's forward test on its public toy case, judged by the grader's own judge."""
    toy = public_case("toy")
    probs, _ = run_forward(mlp, toy_params(toy), toy["X"])
    variants = {k[3:]: v for k, v in toy.items() if k.startswith("fv=")}
    verdict = judges.probs(probs, toy["probs"], toy["probs32"], variants, str(toy["activation"]))
    if not verdict.passed:
        fail(f"on the public toy case (10 inputs, 5 hidden units, 2 classes): {verdict.message}"
             + (DTYPE_NOTE if is32(probs) else ""))


def test_forward_rows_are_independent(mlp):
    """The grader's rows-independence test on the public toy: example 0 changed, the others not."""
    toy = public_case("toy")
    first, _ = run_forward(mlp, toy_params(toy), toy["X"])
    second, _ = run_forward(mlp, toy_params(toy), toy["X2"])
    verdict = judges.rows_independent(first, second, toy["probs"], toy["probs32"])
    if not verdict.passed:
        fail(verdict.message + " Look for a sum, mean or max over axis 0 (the batch)."
             + (DTYPE_NOTE if is32(first) else ""))


# ---------------------------------------------------------------------------------------------
# backward: finite differences on the classic toy (10 inputs, 5 hidden units, 2 classes)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
def test_gradient_matches_finite_differences(mlp, key):
    """The grader's gradient test of ``key`` on its public toy case (the truth: finite differences of the
    true loss, shipped), judged by the grader's own judge; a failure also compares with finite
    differences of YOUR forward, to say where the bug is."""
    toy = public_case("toy")
    params, X, Y = toy_params(toy), toy["X"], toy["Y"]
    _, cache = run_forward(mlp, params, X)
    grads = call(mlp, "backward", params, cache, Y)
    expect_gradient_keys(grads)
    expect_array(f"backward's gradient for {key}", grads[key], params[key].shape, n_batch=X.shape[0])
    truth = {k: toy["g." + k] for k in KEYS}
    variants = {k.split(".", 2)[2]: v for k, v in toy.items() if k.startswith(f"gv.{key}.")}
    messages = {k[3:]: str(v) for k, v in toy.items() if k.startswith("gm.")}
    verdict = judges.gradient(key, grads[key], truth[key], toy["g32." + key], judges.grad_scale(truth), X.shape[0],
                              Y.shape[1], variants, messages)
    if verdict.passed:
        return
    own, numeric, errors = gradient_errors(mlp, params, X, Y)
    hint = ""
    if errors[key] is not None and errors[key] >= (TOL32 if is32(own[key]) else TOL):
        hint = " Against finite differences of your own forward: " + explain_gradient(
            mlp, key, own[key], numeric[key], errors, X.shape[0]) + "."
    elif errors[key] is not None:
        hint = (" It does match finite differences of YOUR forward, so the bug is in forward (see the forward "
                "tests), not in backward.")
    fail(f"backward's gradient for {key} is wrong on the public toy case: {verdict.message}{hint}"
         + (DTYPE_NOTE if is32(grads[key]) else ""))


def test_minibatch_gradient_is_mean_of_per_example_gradients(mlp):
    """The grader's batch-mean test on the public toy (N=4), judged by the grader's own judge."""
    toy = public_case("toy")
    params, X, Y = toy_params(toy), toy["X"], toy["Y"]
    batch = run_backward(mlp, params, X, Y)
    singles = [run_backward(mlp, params, X[i:i + 1], Y[i:i + 1]) for i in range(X.shape[0])]
    usable = set(KEYS)
    for i, single in enumerate(singles):
        usable &= judges.right_keys(single, {k: toy[f"e{i}.g.{k}"] for k in KEYS}, {k: toy[f"e{i}.g32.{k}"] for k in KEYS})
    ref_singles = [{k: toy[f"e{i}.g32.{k}"] for k in KEYS} for i in range(X.shape[0])]
    verdict = judges.batch_mean(batch, singles, usable, {k: toy["g32." + k] for k in KEYS}, ref_singles)
    if not verdict.passed:
        fail(f"for the public toy case's batch of {X.shape[0]}: {verdict.message}")


@pytest.mark.parametrize("N", [1, 7])
def test_backward_works_for_any_batch_size(mlp, N):
    params, X, Y = make_problem(seed=22 + N, N=N)
    run_backward(mlp, params, X, Y)
    check_all_gradients(mlp, params, X, Y)


def test_forward_and_backward_do_not_modify_inputs(mlp):
    params, X, Y = make_problem(seed=30, N=5)
    saved_params, saved_X, saved_Y = copies(params), X.copy(), Y.copy()
    _, cache = run_forward(mlp, params, X)
    for name, now, before in [("X", X, saved_X)] + [(f"params['{k}']", params[k], saved_params[k]) for k in KEYS]:
        if not np.array_equal(now, before):
            fail(f"forward modified {name} in place (its values changed after the call). Build new arrays "
                 "instead (write `Z = Z - m`, not `Z -= m`): the caller still needs the original")
    call(mlp, "backward", params, cache, Y)
    for name, now, before in ([("X", X, saved_X), ("Y", Y, saved_Y)]
                              + [(f"params['{k}']", params[k], saved_params[k]) for k in KEYS]):
        if not np.array_equal(now, before):
            fail(f"backward modified {name} in place; compute gradients in new arrays and leave the inputs alone")


# ---------------------------------------------------------------------------------------------
# sgd_step
# ---------------------------------------------------------------------------------------------
def _sgd_case(seed):
    rng = np.random.default_rng(seed)
    shapes = {"W": (5, 10), "b": (5,), "V": (2, 5), "c": (2,)}
    return ({k: rng.standard_normal(s) for k, s in shapes.items()},
            {k: rng.standard_normal(s) for k, s in shapes.items()}, shapes)


def test_sgd_step_exact_update(mlp):
    """The grader's three calls in a row on the public sgd case ((p, g, lr), (p2, g2, lr2), the first
    again; learning rates 0.37 and 0.05, not the usual 0.1), each key judged by the grader's judge."""
    case = public_case("sgd")
    for i, suffix in enumerate(("", "2", "")):
        params = {k: case[f"p{suffix}.{k}"] for k in KEYS}
        grads = {k: case[f"g{suffix}.{k}"] for k in KEYS}
        lr = float(case["lr" + suffix])
        new = call(mlp, "sgd_step", copies(params), copies(grads), lr)
        if isinstance(new, dict) and [k for k in KEYS if k not in new]:
            missing = ", ".join(repr(k) for k in KEYS if k not in new)
            fail(f"sgd_step skipped {missing}: the returned dict has no {missing}. Update every key of params "
                 "(loop over params, do not list the keys by hand)")
        expect_param_dict("sgd_step", new, {k: v.shape for k, v in params.items()})
        for k in KEYS:
            verdict = judges.sgd_key(k, new[k], params[k], grads[k], lr)
            if not verdict.passed:
                before = "" if i == 0 else (f"the first call was right, but call {i + 1} of three in a row is not: "
                                            "sgd_step must depend only on its arguments (no step counter, no "
                                            "stored values). ")
                fail(f"sgd_step(params, grads, learning_rate={lr:g}): {before}{verdict.message}"
                     + (DTYPE_NOTE if is32(new[k]) else ""))


def test_sgd_step_does_not_modify_the_gradients(mlp):
    params, grads, _ = _sgd_case(41)
    g_in = copies(grads)
    call(mlp, "sgd_step", copies(params), g_in, 0.1)
    for k in KEYS:
        if not np.array_equal(g_in[k], grads[k]):
            fail(f"sgd_step changed grads['{k}'] in place; read the gradients, do not modify them "
                 "(updating params in place is fine)")


# ---------------------------------------------------------------------------------------------
# hyperparameters and a short training run on a toy problem
# ---------------------------------------------------------------------------------------------
def check_hyperparams(hp):
    __tracebackhide__ = True
    if not isinstance(hp, dict):
        fail(f"HYPERPARAMS must be a dict with keys {', '.join(HYPERPARAM_BOUNDS)}; got {type(hp).__name__}")
    for key, (lo, hi) in HYPERPARAM_BOUNDS.items():
        if key not in hp:
            fail(f"HYPERPARAMS has no {key!r}; the grader needs {', '.join(HYPERPARAM_BOUNDS)}")
        value = hp[key]
        wants_int = key != "learning_rate"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (wants_int and value != int(value)):
            fail(f"HYPERPARAMS[{key!r}] = {value!r} must be {'an int' if wants_int else 'a number'}")
        if not lo <= value <= hi:
            fail(f"HYPERPARAMS[{key!r}] = {value!r} is outside the allowed range [{lo:g}, {hi:g}] "
                 "(see the README); the grader refuses it")


def test_hyperparams_in_bounds_and_training_reduces_the_loss(mlp):
    check_hyperparams(getattr(mlp, "HYPERPARAMS", None))
    hp = mlp.HYPERPARAMS
    rng = np.random.default_rng(50)
    n_in, n_out, N = 20, 3, 300
    labels = rng.integers(0, n_out, size=N)
    X = 1.5 * rng.standard_normal((n_out, n_in))[labels] + rng.standard_normal((N, n_in))
    Y = np.eye(n_out)[labels]
    params = call(mlp, "init_params", n_in, 32, n_out, rng)
    expect_param_dict("init_params", params, {"W": (32, n_in), "b": (32,), "V": (n_out, 32), "c": (n_out,)})
    start = gradcheck.mean_nll(run_forward(mlp, params, X)[0], Y)
    batch = int(min(hp["batch_size"], N))
    for _ in range(5):
        for i in range(0, N, batch):
            grads = run_backward(mlp, params, X[i:i + batch], Y[i:i + batch])
            params = call(mlp, "sgd_step", params, grads, hp["learning_rate"])
            expect_param_dict("sgd_step", params, {k: v.shape for k, v in grads.items()})
    end = gradcheck.mean_nll(run_forward(mlp, params, X)[0], Y)
    if not end < 0.5 * start:
        fail(f"5 epochs of SGD with your HYPERPARAMS (learning_rate={hp['learning_rate']}, batch_size={batch}) "
             f"on an easy toy problem moved the mean loss from {start:.4f} to {end:.4f}; with correct "
             "gradients it falls below half. Fix the other failing tests first, then check the learning rate")


# ---------------------------------------------------------------------------------------------
# imports: the grader offers numpy, the standard library and gradcheck.py, nothing else
# ---------------------------------------------------------------------------------------------
def test_mlp_imports_only_what_the_grader_offers(mlp):
    import ast
    import sys
    call(mlp, "init_params", 10, 5, 2, np.random.default_rng(0))  # judged once the code runs at all
    allowed = set(getattr(sys, "stdlib_module_names", ())) | {"numpy", "gradcheck", "__future__"}
    if len(allowed) < 10:
        pytest.skip("this Python cannot list its standard library (needs 3.10 or newer)")
    tree = ast.parse(open(mlp.__file__, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    extra = sorted(names - allowed)
    if extra:
        fail(f"mlp.py imports {', '.join(extra)}, which the grader does not offer: mlp.py may import only "
             "numpy, the Python standard library and gradcheck.py. Move plotting and other tools to the "
             "notebook")
