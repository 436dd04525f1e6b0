"""Optional extensions of the MLP, each scored separately when course.toml enables it.

Put the functions of the extensions your course enables in your mlp.py, next to forward/backward:
the grader calls them from there. Same notation as mlp.py (batch-major):

    h          (N, n_hidden) hidden layer
    params     dict with "W" (n_hidden, n_in), "b" (n_hidden,), "V" (n_out, n_hidden), "c" (n_out,)

L2 weight decay penalises the weight MATRICES only (not the biases):
    penalized loss = mean NLL + (weight_decay / 2) * (sum(W**2) + sum(V**2))

Early stopping watches the validation error measured after each epoch and stops once it has not
improved (strictly) for ``patience`` epochs in a row; you keep the parameters of the best epoch.

Dropout (inverted) keeps each hidden unit with probability 1 - rate and divides the kept ones by
1 - rate during training, so the expected hidden layer equals h and nothing changes at test time.
"""
import numpy as np


def l2_penalty(params, weight_decay):
    """The L2 penalty (weight_decay / 2) * (sum(W**2) + sum(V**2)), a float (biases are not penalised)."""
    # BEGIN SOLUTION: half the weight decay times the sum of the squared entries of W and V
    return 0.5 * weight_decay * float(np.sum(params["W"] ** 2) + np.sum(params["V"] ** 2))
    # END SOLUTION


def l2_penalty_grads(params, grads, weight_decay):
    """Gradients of the penalized loss, given ``grads`` of the mean NLL (from backward).

    Returns a NEW dict with the same keys and shapes; do not modify ``grads`` or ``params``.
    """
    # BEGIN SOLUTION: add the derivative of the penalty to the weight matrices' gradients; biases unchanged
    out = {key: np.array(value, copy=True) for key, value in grads.items()}
    for key in ("W", "V"):
        out[key] = grads[key] + weight_decay * params[key]
    return out
    # END SOLUTION


def early_stopping(valid_errors, patience):
    """When to stop, given the validation error after each epoch so far.

    Args:
        valid_errors: sequence of floats; valid_errors[e] is the validation error after epoch e (0-based).
        patience: int >= 1, epochs without a strict improvement on the best error that end training.
    Returns:
        (stop_epoch, best_epoch), both 0-based ints: stop_epoch is the first epoch e at which the best
        error so far was reached exactly ``patience`` epochs earlier (e - best_epoch == patience), or
        the last epoch if that never happens; best_epoch is the epoch of the lowest error up to
        stop_epoch (the first one, on ties).
    """
    # BEGIN SOLUTION: track the best error and its epoch; stop when the epochs since it reach patience
    best_epoch = 0
    best = float(valid_errors[0])
    for epoch in range(1, len(valid_errors)):
        if float(valid_errors[epoch]) < best:
            best, best_epoch = float(valid_errors[epoch]), epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(valid_errors) - 1, best_epoch
    # END SOLUTION


def dropout_forward(h, rate, rng):
    """Inverted dropout on the hidden layer, during training.

    Args:
        h: (N, n_hidden) hidden layer. Do not modify it.
        rate: probability of DROPPING a unit, 0 <= rate < 1.
        rng: a numpy.random.Generator; draw the mask from it.
    Returns:
        (h_dropped, mask): mask is (N, n_hidden) with 1.0 for kept units and 0.0 for dropped ones;
        h_dropped = h * mask / (1 - rate), so that its expected value is h.
    """
    # BEGIN SOLUTION: keep each unit with probability 1 - rate and rescale the kept ones by 1 / (1 - rate)
    mask = (rng.random(h.shape) >= rate).astype(h.dtype)
    return h * mask / (1.0 - rate), mask
    # END SOLUTION


def dropout_backward(dh_dropped, mask, rate):
    """Gradient with respect to h, given the gradient with respect to h_dropped and the same mask."""
    # BEGIN SOLUTION: the same mask and the same 1 / (1 - rate) scale as in the forward pass
    return dh_dropped * mask / (1.0 - rate)
    # END SOLUTION
