"""Public self-tests for mlp.py: shapes, invariants, finite differences and the grader's own judges on
the public cases, no hidden answers.

Run them in this folder:   python -m pytest -q
Each failure says what is wrong and where to look. Where a test judges a public case (the toy of the
grader's forward and gradients checks, the public sgd_step calls) it uses the grader's own judge
(bplab_judges.py, a verbatim copy) against the expected values in public_cases.json, so it fails
exactly when the grader would on that case, for the same reason. Passing them is a good sign, not a
promise of full marks: the grader also runs hidden sizes and seeds, and trains on MNIST.
"""

import numpy as np
import pytest

import gradcheck
from selftest_helpers import (DTYPE_NOTE, KEYS, TOL, TOL32, batch_mean_verdict, call, copies, expect_dict,
                             expect_param_dict, explain_gradient, fail, forward_verdict, gradient_errors,
                             gradient_verdict, is32, make_problem, public_case, rows_verdict, run_backward,
                             run_forward, sgd_verdict, _sgd_case, check_all_gradients, toy_params)

HYPERPARAM_BOUNDS = {"n_hidden": (16, 1024), "learning_rate": (0.0001, 10.0), "batch_size": (1, 1024), "epochs": (1, 50)}


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
    verdict, probs = forward_verdict(mlp)
    if not verdict.passed:
        fail(f"on the public toy case (10 inputs, 5 hidden units, 2 classes): {verdict.message}"
             + (DTYPE_NOTE if is32(probs) else ""))


def test_forward_rows_are_independent(mlp):
    """The grader's rows-independence test on the public toy: example 0 changed, the others not."""
    verdict, first = rows_verdict(mlp)
    if not verdict.passed:
        fail(verdict.message + " Look for a sum, mean or max over axis 0 (the batch)."
             + (DTYPE_NOTE if is32(first) else ""))


@pytest.mark.parametrize("key", KEYS)
def test_gradient_matches_finite_differences(mlp, key):
    """The grader's gradient test of ``key`` on its public toy case (the truth: finite differences of the
    true loss, shipped), judged by the grader's own judge; a failure also compares with finite
    differences of YOUR forward, to say where the bug is."""
    verdict, grads = gradient_verdict(mlp, key)
    if verdict.passed:
        return
    toy = public_case("toy")
    params, X, Y = toy_params(toy), toy["X"], toy["Y"]
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
    verdict = batch_mean_verdict(mlp)
    if not verdict.passed:
        fail(f"for the public toy case's batch of 4: {verdict.message}")


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


def test_sgd_step_exact_update(mlp):
    verdict, new = sgd_verdict(mlp)
    if not verdict.passed:
        if "sgd_skips_key" in verdict.diagnoses:
            fail(f"sgd_step skipped a key: {verdict.message}. Update every key of params (loop over params, do not "
                 "list the keys by hand)")
        if "sgd_not_dict" in verdict.diagnoses:
            expect_dict("sgd_step", new)
        fail(f"sgd_step(params, grads, learning_rate) on the public calls (learning rates 0.37, 0.05, 0.37): "
             f"{verdict.message}" + (DTYPE_NOTE if any(is32(v) for v in (new.values() if isinstance(new, dict) else ()))
                                     else ""))


def test_sgd_step_does_not_modify_the_gradients(mlp):
    params, grads, _ = _sgd_case(41)
    g_in = copies(grads)
    call(mlp, "sgd_step", copies(params), g_in, 0.1)
    for k in KEYS:
        if not np.array_equal(g_in[k], grads[k]):
            fail(f"sgd_step changed grads['{k}'] in place; read the gradients, do not modify them "
                 "(updating params in place is fine)")


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

