"""Public self-tests for the optional extensions in mlp.py: L2 weight decay, early stopping, dropout.

Run them in this folder:   python -m pytest -q test_extensions.py
Only the extensions your course enables this year are tested (the others are skipped). They check
your functions against finite differences and against each other, with no hidden answers, and judge
the results with the grader's own judges (bplab_extension_judges.py, a verbatim copy).
"""
import numpy as np
import pytest

import bplab_extension_judges as judges
import gradcheck

EXTENSIONS = {"l2": True, "early_stopping": True, "dropout": True}
KEYS = ("W", "b", "V", "c")


def fail(message):
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def need(extension):
    if not EXTENSIONS.get(extension):
        pytest.skip(f"the {extension} extension is not part of this year's assignment")


def call(mlp, name, *args):
    """mlp.<name>(*args), with 'not implemented yet' and crashes reported by name."""
    __tracebackhide__ = True
    fn = getattr(mlp, name, None)
    if not callable(fn):
        fail(f"mlp.py has no function {name}(); the optional extensions go into mlp.py")
    try:
        return fn(*args)
    except NotImplementedError as exc:
        message = f"{name} is not implemented yet: {exc}"
    except Exception as exc:
        message = f"{name} raised {type(exc).__name__}: {exc}"
    fail(message)


def small_case(seed=0, n_in=6, n_hidden=5, n_out=3, n=4):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in), "b": rng.standard_normal(n_hidden) * 0.5,
              "V": rng.standard_normal((n_out, n_hidden)), "c": rng.standard_normal(n_out) * 0.5}
    X = rng.standard_normal((n, n_in))
    Y = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    return params, X, Y


# ---------------------------------------------------------------------------------------------
# L2 weight decay
# ---------------------------------------------------------------------------------------------
def test_l2_penalty_value(mlp):
    need("l2")
    params = {"W": np.array([[1.0, -2.0], [0.5, 0.0]]), "b": np.array([3.0, 3.0]),
              "V": np.array([[2.0, 1.0]]), "c": np.array([7.0])}
    value = float(call(mlp, "l2_penalty", params, 0.1))
    # (0.1 / 2) * (1 + 4 + 0.25 + 0 + 4 + 1); biases do not count
    verdict = judges.l2_value(value, params, 0.1)
    if not verdict.passed:
        fail(verdict.message)


def test_l2_gradients_match_finite_differences(mlp):
    need("l2")
    params, X, Y = small_case(1)
    weight_decay = 0.3
    probs, cache = call(mlp, "forward", params, X)
    grads = call(mlp, "backward", params, cache, Y)
    saved = {k: np.array(v, copy=True) for k, v in grads.items()}
    total = call(mlp, "l2_penalty_grads", params, grads, weight_decay)
    if not isinstance(total, dict):
        fail(f"l2_penalty_grads returned {type(total).__name__}; return a dict with the keys W, b, V, c")
    for key in KEYS:
        if not np.array_equal(grads[key], saved[key]):
            fail(f"l2_penalty_grads changed grads[{key!r}] in place; return a new dict")
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}

    def penalized():
        return gradcheck.mean_nll(mlp.forward(work, X)[0], Y) + float(mlp.l2_penalty(work, weight_decay))

    for key in KEYS:
        got = np.asarray(total[key], dtype=np.float64)
        if got.shape != params[key].shape:
            fail(f"l2_penalty_grads[{key!r}] has shape {got.shape}, expected {params[key].shape}")
        # the grader's truth: your NLL gradient plus the penalty's, weight_decay * W (and V; not b, c)
        truth = saved[key] + (weight_decay * params[key] if key in ("W", "V") else 0.0)
        _, problem = judges.l2_grad_key(key, got, saved[key], params[key], weight_decay, truth)
        if problem:
            numeric = gradcheck.numerical_gradient(penalized, work[key])
            fail(f"l2_penalty_grads[{key!r}]: {problem[1]} (relative error "
                 f"{gradcheck.relative_error(got, numeric):.1e} against finite differences of NLL + l2_penalty)")


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("errors, patience, expected", [
    ([0.50, 0.40, 0.42, 0.41, 0.43], 2, (3, 1)),
    ([0.50, 0.40, 0.30, 0.20], 2, (3, 3)),
    ([0.30, 0.20, 0.20, 0.20, 0.25], 2, (3, 1)),
    ([0.30, 0.35, 0.20], 1, (1, 0)),
])
def test_early_stopping_examples(mlp, errors, patience, expected):
    need("early_stopping")
    got = call(mlp, "early_stopping", list(errors), patience)
    if not (isinstance(got, tuple) and len(got) == 2):
        fail(f"early_stopping returned {got!r}; return the pair (stop_epoch, best_epoch)")
    got = (int(got[0]), int(got[1]))
    assert judges.expected_early_stopping(list(errors), patience) == expected  # the grader's rule, written out
    for index in (0, 1):
        verdict = judges.early_stopping(index, [got], [(list(errors), patience)])
        if not verdict.passed:
            fail(f"early_stopping({errors}, patience={patience}) returned {got}, expected {expected}: {verdict.message}")


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------
def test_dropout_expected_value_is_h(mlp):
    need("dropout")
    rate = 0.3
    h = np.random.default_rng(2).uniform(0.1, 2.0, size=(6, 20))
    rng = np.random.default_rng(3)
    dropped, masks = [], []
    for _ in range(400):  # the grader's number of draws
        out = call(mlp, "dropout_forward", h.copy(), rate, rng)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            fail("dropout_forward must return the pair (h_dropped, mask) of arrays shaped like h")
        dropped.append(np.asarray(out[0], dtype=np.float64))
        masks.append(np.asarray(out[1], dtype=np.float64))
    if any(d.shape != h.shape for d in dropped + masks):
        fail(f"h_dropped and mask must have h's shape {h.shape}")
    verdict = judges.dropout_forward(h, np.array(dropped), np.array(masks), rate)
    if not verdict.passed:
        fail(verdict.message)


def test_dropout_backward_matches_finite_differences(mlp):
    need("dropout")
    rate = 0.3
    rng = np.random.default_rng(4)
    h = rng.uniform(0.1, 2.0, size=(3, 7))
    dh = rng.standard_normal(h.shape)
    _, mask = call(mlp, "dropout_forward", h, rate, np.random.default_rng(5))
    work = np.array(h, copy=True)

    def loss():  # the same seed draws the same mask, so this is sum(dh * h_dropped) for that mask
        return float(np.sum(dh * mlp.dropout_forward(work, rate, np.random.default_rng(5))[0]))

    got = np.asarray(call(mlp, "dropout_backward", dh, np.asarray(mask, dtype=np.float64), rate), dtype=np.float64)
    if got.shape != h.shape:
        fail(f"dropout_backward returned shape {got.shape}, expected {h.shape}")
    verdict = judges.dropout_backward(got, dh, np.asarray(mask, dtype=np.float64), rate)
    if not verdict.passed:
        numeric = gradcheck.numerical_gradient(loss, work)
        fail(f"{verdict.message} (relative error {gradcheck.relative_error(got, numeric):.1e} against finite "
             "differences of your dropout_forward with the same mask)")
