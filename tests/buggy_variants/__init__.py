"""Known-bug variants of the reference MLP, each made by one small text substitution.

Every variant names the bug, the exact text it replaces in solutions/mlp.py, the activation it is
built for, and the words the public self-tests must use to name the bug. ``make_variant`` refuses
when the text to replace is not found exactly once, so a change to the reference cannot silently
turn a variant into a copy of the reference.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    old: str
    new: str
    expect: tuple[str, ...]  # words the failing public tests must print (case-insensitive)
    activation: str = "relu"


VARIANTS: tuple[Variant, ...] = (
    Variant("grad_summed_not_averaged", "d_logits = (probs - Y) / n", "d_logits = (probs - Y)",
            ("exactly the batch size", "instead of taking the mean")),
    Variant("sign_flipped", "d_logits = (probs - Y) / n", "d_logits = (Y - probs) / n",
            ("opposite sign", "Y - probs")),
    Variant("bias_grad_not_summed", '"b": d_a.sum(axis=0),', '"b": d_a,',
            ("one row per example", "summed over the batch")),
    Variant("relu_derivative_forgotten", "d_a = d_h * _activate_grad(a, h)", "d_a = d_h",
            ("gradients of V and c pass", "activation derivative")),
    Variant("tanh_derivative_of_a", "return 1.0 - h * h", "return 1.0 - a * a",
            ("gradients of V and c pass", "activation derivative"), activation="tanh"),
    Variant("sigmoid_derivative_of_a", "return h * (1.0 - h)", "return a * (1.0 - a)",
            ("gradients of V and c pass", "activation derivative"), activation="sigmoid"),
    Variant("naive_softmax_overflows", "shifted = logits - logits.max(axis=1, keepdims=True)",
            "shifted = logits", ("overflows", "nan or inf")),
    Variant("probs_transposed", "return probs, (X, a, h, probs)", "return probs.T, (X, a, h, probs)",
            ("transposed",)),
    Variant("softmax_over_batch_axis", "probs = e / e.sum(axis=1, keepdims=True)",
            "probs = e / e.sum(axis=0, keepdims=True)", ("columns of probs sum to 1",)),
    Variant("grad_W_transposed", '"W": d_a.T @ X,', '"W": X.T @ d_a,', ("transposed", "gradient for w")),
    Variant("grad_V_divided_twice", '"V": d_logits.T @ h,', '"V": d_logits.T @ h / n,',
            ("divided by the batch size twice",)),
    Variant("sgd_ascends", "params[key] - learning_rate * grads[key]", "params[key] + learning_rate * grads[key]",
            ("adds the gradient", "gradient ascent")),
    Variant("sgd_skips_c", "for key in params}", 'for key in params if key != "c"}', ("sgd_step skipped 'c'",)),
    Variant("sgd_returns_tuple", "return {key: params[key] - learning_rate * grads[key] for key in params}",
            "return tuple(params[key] - learning_rate * grads[key] for key in params)",
            ("returned a tuple", "must return a dict")),
    Variant("sgd_mutates_grads", "    return {key: params[key] - learning_rate * grads[key] for key in params}",
            "    for key in grads:\n        grads[key] *= learning_rate  # scale in place\n"
            "    return {key: params[key] - grads[key] for key in params}", ("changed grads['w'] in place",)),
    Variant("forward_mutates_X", '    a = X @ params["W"].T + params["b"]',
            '    X -= X.mean(axis=1, keepdims=True)  # "centre" the inputs, in place\n'
            '    a = X @ params["W"].T + params["b"]', ("forward modified x in place",)),
)

_ACTIVATION_LINE = re.compile(r'^ACTIVATION = "\w+"', re.MULTILINE)


def with_activation(source: str, activation: str) -> str:
    """The reference source with its ``ACTIVATION = "..."`` line set to ``activation``."""
    out, count = _ACTIVATION_LINE.subn(f'ACTIVATION = "{activation}"', source)
    if count != 1:
        raise AssertionError(f"expected one ACTIVATION line in the reference, found {count}")
    return out


def make_variant(source: str, variant: Variant) -> str:
    """Apply ``variant`` to the reference ``source``; AssertionError unless it applies exactly once."""
    count = source.count(variant.old)
    if count != 1:
        raise AssertionError(f"variant {variant.name}: {variant.old!r} occurs {count} times in the reference "
                             "(expected once); update tests/buggy_variants to the new reference")
    return with_activation(source.replace(variant.old, variant.new), variant.activation)
