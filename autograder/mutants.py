"""Known-bug mutants GENERATED from the reference solution (never hand-copied).

Each mutant is one realistic student mistake, written as exact text substitutions on the reference
source. A substitution whose pattern is not found (or is found more than once) raises
:class:`MutationError`, so a changed reference fails loudly instead of silently producing a "mutant"
that is identical to the reference.

The one catalogue of known bugs (issue 11): used by the bundled sample class (``backprop-lab demo``), by
the tests (every mutant must lose points on ``expected_check`` with ``expected_diagnosis``; where it has
``public_words``, the public self-tests must fail on it with those words, and the agreement test holds
the self-tests, the grader and the otter/nbgrader checks to the same verdict) and by the release gate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .errors import ConfigError

__all__ = ["Mutant", "MutationError", "MUTANTS", "EXTENSION_MUTANTS", "for_activation", "gate_mutants", "mutant",
           "mutant_sources", "source_activation"]


class MutationError(ConfigError):
    """A mutant's pattern does not occur exactly once in the reference: update autograder/mutants.py."""


_ACTIVATION_LINE = re.compile(r'^ACTIVATION\s*=\s*["\'](\w+)["\']', re.MULTILINE)


def source_activation(source: str) -> str:
    """The activation named by the source's top-level ``ACTIVATION = "..."`` line."""
    m = _ACTIVATION_LINE.search(source)
    if not m:
        raise MutationError("the reference has no top-level ACTIVATION = \"...\" line")
    return m.group(1)


Edit = tuple[str, str]  # (exact old text, new text)


def substitute(source: str, edits: list[Edit], mutant_id: str = "?") -> str:
    """Apply exact text substitutions; each ``old`` must occur exactly once in the current text."""
    for old, new in edits:
        count = source.count(old)
        if count != 1:
            where = "is not found" if count == 0 else f"occurs {count} times"
            raise MutationError(f"mutant {mutant_id}: the pattern {old!r} {where} in the reference "
                                "solution; the reference changed, so update autograder/mutants.py")
        source = source.replace(old, new)
    return source


@dataclass(frozen=True)
class Mutant:
    """One known bug. ``apply(source) -> source`` mutates the reference's text (raises if it cannot)."""
    mutant_id: str
    description: str
    expected_check: str
    expected_diagnosis: str
    edits: Callable[[str], list[Edit]] = field(repr=False)
    public_words: tuple[str, ...] = ()       # words the failing public self-tests print (case-insensitive)
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu")  # the years whose reference it applies to

    def apply(self, source: str) -> str:
        return substitute(source, self.edits(source), self.mutant_id)


def _fixed(*edits: Edit) -> Callable[[str], list[Edit]]:
    return lambda source: list(edits)


# The activation derivative lines of the reference, and the wrong derivative a student writes for each.
_DERIVATIVE = {
    "sigmoid": ("return h * (1.0 - h)", "return 1.0 - h * h  # BUG: tanh's derivative"),
    "tanh": ("return 1.0 - h * h", "return h * (1.0 - h)  # BUG: sigmoid's derivative"),
    "relu": ("return (a > 0).astype(a.dtype)", "return 1.0 - h * h  # BUG: tanh's derivative"),
}


def _wrong_derivative(source: str) -> list[Edit]:
    return [_DERIVATIVE[source_activation(source)]]


_DLOGITS = "d_logits = (probs - Y) / n"
_SGD = "params[key] - learning_rate * grads[key]"
_A = 'a = X @ params["W"].T + params["b"]'

MUTANTS: list[Mutant] = [
    Mutant("grad_sign_flip", "dL/dlogits written as (Y - probs) / N: every gradient has the wrong sign",
           "gradients", "grad_sign_flipped",
           _fixed((_DLOGITS, "d_logits = (Y - probs) / n  # BUG: sign")), ("opposite sign", "Y - probs")),
    Mutant("grad_factor_n", "forgot to divide by the batch size: gradients of the SUM, not the mean",
           "gradients", "grad_factor_n",
           _fixed((_DLOGITS, "d_logits = probs - Y  # BUG: not divided by N")),
           ("exactly the batch size", "instead of taking the mean")),
    Mutant("grad_factor_1_over_n", "averaged over the batch twice: gradients divided by N once too often",
           "gradients", "grad_factor_1_over_n",
           _fixed((_DLOGITS, "d_logits = (probs - Y) / (n * n)  # BUG: divided by N twice"))),
    Mutant("grad_transposed", "dW computed as X.T @ d_a: the transpose, with the wrong shape",
           "gradients", "grad_transposed",
           _fixed(('"W": d_a.T @ X,', '"W": X.T @ d_a,  # BUG: transposed')), ("transposed", "gradient for w")),
    Mutant("wrong_activation_derivative", "back-propagated through the wrong activation's derivative",
           "gradients", "wrong_activation_derivative", _wrong_derivative),
    Mutant("bias_not_summed", "db left with one row per example: not summed over the batch",
           "gradients", "bias_not_summed",
           _fixed(('"b": d_a.sum(axis=0),', '"b": d_a,  # BUG: not summed over the batch')),
           ("one row per example", "summed over the batch")),
    Mutant("bias_first_example", "db taken from the first example only",
           "gradients", "bias_first_example_only",
           _fixed(('"b": d_a.sum(axis=0),', '"b": d_a[0],  # BUG: first example only'))),
    Mutant("dV_from_preactivation", "dV computed from the pre-activations a instead of h = f(a)",
           "gradients", "V_from_preactivation",
           _fixed(('"V": d_logits.T @ h,', '"V": d_logits.T @ a,  # BUG: a instead of h'))),
    Mutant("naive_softmax", "softmax without subtracting the row maximum: overflows on large logits",
           "forward", "softmax_overflow",
           _fixed(("shifted = logits - logits.max(axis=1, keepdims=True)",
                   "shifted = logits  # BUG: no max subtraction")), ("overflows", "nan or inf")),
    Mutant("softmax_axis0", "softmax normalised over the batch axis instead of over the classes",
           "forward", "softmax_wrong_axis",
           _fixed(("shifted = logits - logits.max(axis=1, keepdims=True)",
                   "shifted = logits - logits.max(axis=0, keepdims=True)  # BUG: axis"),
                  ("probs = e / e.sum(axis=1, keepdims=True)",
                   "probs = e / e.sum(axis=0, keepdims=True)  # BUG: axis")), ("columns of probs sum to 1",)),
    Mutant("missing_c", "the output bias c is never added to the logits",
           "forward", "forward_missing_c",
           _fixed(('logits = h @ params["V"].T + params["c"]', 'logits = h @ params["V"].T  # BUG: no c'))),
    Mutant("forward_mutates_X", "forward scales its input X in place (after using it)",
           "minibatch", "input_mutated",
           _fixed((_A, _A + "\n    X_seen = X.copy()\n    X *= 2.0  # BUG: modifies the caller's array"),
                  ("return probs, (X, a, h, probs)", "return probs, (X_seen, a, h, probs)")),
           ("forward modified x in place",)),
    Mutant("sgd_ascends", "SGD adds the gradient: p + lr * g", "sgd_step", "sgd_ascends",
           _fixed((_SGD, "params[key] + learning_rate * grads[key]")), ("moved up the gradient", "gradient descent subtracts")),
    Mutant("sgd_skips_key", "SGD leaves the output bias c out of the returned dict",
           "sgd_step", "sgd_skips_key",
           _fixed(("for key in params}", 'for key in params if key != "c"}  # BUG: c skipped')),
           ("sgd_step skipped a key", "no key 'c'")),
    Mutant("sgd_ignores_lr", "SGD subtracts the full gradient, ignoring the learning rate",
           "sgd_step", "sgd_ignores_lr",
           _fixed((_SGD, "params[key] - grads[key]")), ("multiply it by learning_rate",)),
    # formerly tests/buggy_variants (the public self-tests' catalogue), now one catalogue
    Mutant("no_activation_derivative", "back-propagated through the hidden layer without f'(a)",
           "gradients", "no_activation_derivative",
           _fixed(("d_a = d_h * _activate_grad(a, h)", "d_a = d_h  # BUG: no f'(a)")),
           ("gradients of V and c pass", "activation derivative"), ("relu",)),
    Mutant("tanh_derivative_of_a", "the tanh derivative written with the pre-activation: 1 - a^2",
           "gradients", "tanh_derivative_of_a", _fixed(("return 1.0 - h * h", "return 1.0 - a * a  # BUG"))
           , ("gradients of V and c pass", "activation derivative"), ("tanh",)),
    Mutant("sigmoid_derivative_of_a", "the sigmoid derivative written with the pre-activation: a (1 - a)",
           "gradients", "sigmoid_derivative_of_a", _fixed(("return h * (1.0 - h)", "return a * (1.0 - a)  # BUG")),
           ("gradients of V and c pass", "activation derivative"), ("sigmoid",)),
    Mutant("probs_transposed", "forward returns probs transposed, (n_out, N)", "forward", "wrong_shape",
           _fixed(("return probs, (X, a, h, probs)", "return probs.T, (X, a, h, probs)  # BUG")), ("transposed",)),
    Mutant("softmax_sum_axis0", "softmax shifted by the row maximum but normalised over the batch axis",
           "forward", "softmax_wrong_axis",
           _fixed(("probs = e / e.sum(axis=1, keepdims=True)", "probs = e / e.sum(axis=0, keepdims=True)  # BUG")),
           ("columns of probs sum to 1",)),
    Mutant("grad_V_divided_twice", "dL/dV divided by N once more", "gradients", "grad_factor_1_over_n",
           _fixed(('"V": d_logits.T @ h,', '"V": d_logits.T @ h / n,  # BUG')), ("divided by the batch size twice",)),
    Mutant("sgd_returns_tuple", "sgd_step returns a tuple of arrays, not a dict", "sgd_step", "sgd_not_dict",
           _fixed(("return {key: params[key] - learning_rate * grads[key] for key in params}",
                   "return tuple(params[key] - learning_rate * grads[key] for key in params)  # BUG")),
           ("returned a tuple", "must return a dict")),
    Mutant("sgd_mutates_grads", "sgd_step scales the gradients in place", "sgd_step", "sgd_mutates_grads",
           _fixed(("    return {key: params[key] - learning_rate * grads[key] for key in params}",
                   "    for key in grads:\n        grads[key] *= learning_rate  # BUG: in place\n"
                   "    return {key: params[key] - grads[key] for key in params}")), ("changed grads['w'] in place",)),
    Mutant("forward_centres_X", "forward centres its input X in place before using it", "minibatch", "input_mutated",
           _fixed((_A, 'X -= X.mean(axis=1, keepdims=True)  # BUG: "centre" the inputs, in place\n    ' + _A)),
           ("forward modified x in place",)),
]


# Mutants of the optional extensions (solutions/extensions.py, appended to the reference when a year
# enables them); the gate uses those of the enabled extensions only.
EXTENSION_MUTANTS: list[Mutant] = [
    Mutant("dropout_not_rescaled", "inverted dropout without the 1/(1 - rate) rescaling",
           "dropout", "dropout_not_rescaled",
           _fixed(("return h * mask / (1.0 - rate), mask", "return h * mask, mask  # BUG: not rescaled"))),
    Mutant("dropout_mask_inverted", "dropout backward lets the gradient through the DROPPED units",
           "dropout", "dropout_mask_inverted",
           _fixed(("return dh_dropped * mask / (1.0 - rate)", "return dh_dropped * (1 - mask) / (1.0 - rate)"))),
    Mutant("l2_grad_missing", "the L2 penalty never reaches the gradient",
           "l2", "l2_grad_missing",
           _fixed(("out[key] = grads[key] + weight_decay * params[key]", "out[key] = grads[key]  # BUG"))),
    Mutant("l2_grad_factor", "the L2 gradient with half the weight decay",
           "l2", "l2_grad_factor",
           _fixed(("out[key] = grads[key] + weight_decay * params[key]",
                   "out[key] = grads[key] + 0.5 * weight_decay * params[key]  # BUG"))),
    Mutant("early_stop_late", "early stopping waits one epoch more than the patience",
           "early_stopping", "early_stop_late",
           _fixed(("elif epoch - best_epoch >= patience:", "elif epoch - best_epoch > patience:  # BUG"))),
]


def gate_mutants(extensions: dict[str, bool] | None = None, activation: str | None = None) -> list[Mutant]:
    """The mutants a release gate must see fail: every core one (of ``activation``'s year when given),
    plus those of enabled extensions."""
    enabled = {name for name, on in (extensions or {}).items() if on}
    chosen = MUTANTS + [m for m in EXTENSION_MUTANTS if m.expected_check in enabled]
    return chosen if activation is None else for_activation(activation, chosen)


def for_activation(activation: str, catalogue: list[Mutant] | None = None) -> list[Mutant]:
    """The mutants of ``catalogue`` (default: the core ones) that apply to a year with ``activation``."""
    return [m for m in (MUTANTS if catalogue is None else catalogue) if activation in m.activations]


def mutant(mutant_id: str) -> Mutant:
    for m in MUTANTS:
        if m.mutant_id == mutant_id:
            return m
    raise KeyError(f"unknown mutant {mutant_id!r}; known: {', '.join(m.mutant_id for m in MUTANTS)}")


def mutant_sources(activation: str, reference: str | None = None) -> dict[str, str]:
    """{mutant id: mutated source} generated from the reference for ``activation``.

    ``reference`` defaults to ``solutions/mlp.py`` with its ACTIVATION line set to ``activation``.
    Raises :class:`MutationError` when any mutant no longer applies.
    """
    if reference is None:
        from .reference import reference_source
        reference = reference_source(activation)
    out = {}
    for m in for_activation(activation):
        mutated = m.apply(reference)
        if mutated == reference:  # pragma: no cover - substitute() already guarantees a change
            raise MutationError(f"mutant {m.mutant_id} left the reference unchanged")
        out[m.mutant_id] = mutated
    return out
