"""Public self-tests for the optional extensions in mlp.py: L2 weight decay, early stopping, dropout.

Run them in this folder:   python -m pytest -q test_extensions.py
Only the extensions your course enables this year are tested (the others are skipped). They check
your functions against finite differences and against each other, with no hidden answers.
"""
import numpy as np
import pytest

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
    if not np.isclose(value, 0.05 * 10.25):
        hint = ""
        if np.isclose(value, 0.1 * 10.25):
            hint = ": it is twice too large, the penalty is (weight_decay / 2) * (sum(W**2) + sum(V**2))"
        elif value > 0.05 * 10.25 * 1.5:
            hint = ": are the biases penalised? Only W and V are"
        fail(f"l2_penalty returned {value}, expected {0.05 * 10.25}{hint}")


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
        numeric = gradcheck.numerical_gradient(penalized, work[key])
        got = np.asarray(total[key], dtype=np.float64)
        if got.shape != numeric.shape:
            fail(f"l2_penalty_grads[{key!r}] has shape {got.shape}, expected {numeric.shape}")
        err = gradcheck.relative_error(got, numeric)
        if err > 1e-6:
            extra = grads[key] + weight_decay * params[key]
            hint = ""
            if key in ("W", "V") and np.allclose(got, grads[key]):
                hint = f": the penalty's gradient weight_decay * {key} was not added"
            elif key in ("W", "V") and np.allclose(got - grads[key], 0.5 * (extra - grads[key])):
                hint = f": the penalty's gradient is half what it should be (d/d{key} of (wd/2)*sum({key}**2) is wd*{key})"
            elif key in ("b", "c") and not np.allclose(got, grads[key]):
                hint = ": biases are not penalised, their gradient stays the NLL gradient"
            fail(f"l2_penalty_grads[{key!r}] differs from finite differences of NLL + l2_penalty "
                 f"(relative error {err:.1e}){hint}")


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
    if got != expected:
        hint = ""
        if got[0] == expected[0] + 1:
            hint = " (one epoch too late: stop when epoch - best_epoch == patience)"
        elif got[0] == expected[0] - 1:
            hint = " (one epoch too early: patience epochs without improvement must pass)"
        elif got == (expected[0] + 1, expected[1] + 1):
            hint = " (epochs are 0-based: valid_errors[0] is epoch 0)"
        fail(f"early_stopping({errors}, patience={patience}) returned {got}, expected {expected}{hint}")


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------
def test_dropout_expected_value_is_h(mlp):
    need("dropout")
    rate = 0.3
    h = np.random.default_rng(2).uniform(0.1, 2.0, size=(6, 20))
    rng = np.random.default_rng(3)
    total, kept = np.zeros_like(h), 0.0
    draws = 2000
    for _ in range(draws):
        dropped, mask = call(mlp, "dropout_forward", h, rate, rng)
        mask = np.asarray(mask, dtype=np.float64)
        if not np.all((mask == 0) | (mask == 1)):
            fail("the mask must hold 1.0 for kept units and 0.0 for dropped ones")
        total += dropped
        kept += mask.mean()
    ratio = total.sum() / (draws * h.sum())
    if abs(kept / draws - (1 - rate)) > 0.02:
        fail(f"{100 * kept / draws:.1f}% of the units were kept at rate {rate}; rate is the probability of "
             f"DROPPING a unit, so about {100 * (1 - rate):.0f}% should be kept")
    if abs(ratio - 1) > 0.02:
        hint = " (kept units must be divided by 1 - rate)" if abs(ratio - (1 - rate)) < 0.02 else ""
        fail(f"the mean of h_dropped over {draws} masks is {ratio:.3f} h, expected h{hint}")


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

    numeric = gradcheck.numerical_gradient(loss, work)
    got = np.asarray(call(mlp, "dropout_backward", dh, mask, rate), dtype=np.float64)
    err = gradcheck.relative_error(got, numeric)
    if err > 1e-6:
        hint = " (the backward pass must divide by 1 - rate like the forward pass)" \
            if np.allclose(got, numeric * (1 - rate)) else ""
        fail(f"dropout_backward differs from finite differences of your dropout_forward with the same mask "
             f"(relative error {err:.1e}){hint}")
