"""Every check the grader knows, defined once: id, title, labels, default points, the student functions
it calls, its runner and its words for the README and the notebook (issue 11).

``CHECK_IDS``, the labels of every zero result (grade, batch, Gradescope), gradebook columns, feedback
titles, the README's points table, the notebook prompts and the otter/nbgrader tests all read this
module. It imports nothing of the grader but the result type, so ``config`` can import it.
Adding a check: one entry here, its module (``runner``) and its tests (docs/design.md, "Issue 11").
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..results import CheckResult


@dataclass(frozen=True)
class CheckSpec:
    """One check id. ``labels`` are its tests (results.json names ``"<id>: <label>"``); ``runner`` is
    ``"module:function"`` under ``autograder.checks``; core runners take ``(ctx)`` (plus
    ``(data, budget, statement)`` when ``needs_data``), extension runners ``(ctx, points)``."""
    check_id: str
    title: str
    labels: tuple[str, ...]
    default_points: float
    runner: str
    functions: tuple[str, ...] = ()
    extension: bool = False
    needs_data: bool = False
    readme: str = ""
    prompt: str = ""

    def points(self, config: Any) -> float:
        """This check's points in ``config`` (the rubric, or ``extension_points`` for an extension)."""
        table = getattr(config, "extension_points" if self.extension else "rubric", None) or {}
        return float(table.get(self.check_id, self.default_points))

    def zero(self, config: Any, message: str, tags: list[str] | None = None) -> list[CheckResult]:
        """Every test of this check at zero, for one shared reason."""
        return zero_results(self.check_id, list(self.labels), self.points(config), message, tags)

    def run(self, *args: Any) -> list[CheckResult]:
        module, _, name = self.runner.partition(":")
        fn: Callable[..., list[CheckResult]] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return fn(*args)


_FB = ("forward", "backward")
CORE: tuple[CheckSpec, ...] = (
    CheckSpec("forward", "Forward pass",
              ("public toy case", "hidden cases (incl. N=1)", "large logits (numerical stability)"), 15,
              "forward:run", ("forward",),
              readme="`forward` on hidden random inputs of several sizes (N = 1 included): probabilities "
                     "compared with the reference's, rtol 1e-6 in float64.",
              prompt="`forward(params, X)` returns `(probs, cache)`: softmax probabilities `(N, n_out)`, each row "
                     "summing to 1, for every N (including N=1) and without overflow on large logits."),
    CheckSpec("gradients", "Gradients (finite differences of the true loss)", ("W", "b", "V", "c"), 35,
              "gradients:run", _FB,
              readme="`backward` against central finite differences of the true loss, per parameter "
                     "(relative error under 1e-6 in float64).",
              prompt="`backward(params, cache, Y)` returns the gradients of the MEAN negative log-likelihood over "
                     "the batch, a dict with the keys and shapes of `params`. Each parameter is a test."),
    CheckSpec("minibatch", "Minibatches",
              ("mean of per-example gradients", "rows independent", "N=1 and odd N", "inputs not mutated"), 20,
              "minibatch:run", _FB,
              readme="batch gradients equal the mean of per-example gradients; each output row depends only "
                     "on its own input row; N = 1 and odd N work; inputs are not modified.",
              prompt="The gradient of a batch is the mean of the per-example gradients; each output row depends "
                     "only on its input row; N=1 and odd N work; `forward` and `backward` never modify their "
                     "inputs."),
    CheckSpec("sgd_step", "SGD step", ("exact update for every key", "gradients left unchanged"), 10,
              "sgd_step:run", ("sgd_step",),
              readme="the exact update `p - learning_rate * g` for every key; the gradients are not modified "
                     "(updating params in place is fine).",
              prompt="`sgd_step(params, grads, learning_rate)` returns `{k: params[k] - learning_rate * grads[k]}` "
                     "for every key and leaves `grads` unchanged."),
    CheckSpec("training", "Training on MNIST", ("MNIST test error within the time budget",), 20,
              "training:run", ("init_params", "forward", "backward", "sgd_step"), needs_data=True,
              readme="the grader's own SGD loop, with your functions and your `HYPERPARAMS`, on the 50,000 "
                     "training images; test error must reach the target within the time budget (partial "
                     "credit on a stated scale)."),  # its notebook prompt depends on the year: release/notebook.py
)

EXTENSIONS: tuple[CheckSpec, ...] = (
    CheckSpec("l2", "l2",  # titles of extensions: their ids, as feedback pages always showed
              ("penalty value", "gradient of the penalized loss"), 5,
              "extensions:check_l2", ("l2_penalty", "l2_penalty_grads"), extension=True,
              readme="`l2_penalty` and `l2_penalty_grads` (weight decay on W and V).",
              prompt="Optional extension (L2 weight decay): `l2_penalty(params, weight_decay)` returns "
                     "`(weight_decay/2)(|W|² + |V|²)`; `l2_penalty_grads(params, grads, weight_decay)` returns the "
                     "gradients of the penalized loss (weight decay on W and V only)."),
    CheckSpec("early_stopping", "early_stopping",
              ("stop epoch on given validation curves", "best epoch on given validation curves"), 5,
              "extensions:check_early_stopping", ("early_stopping",), extension=True,
              readme="`early_stopping(valid_errors, patience)` on given validation curves.",
              prompt="Optional extension: `early_stopping(valid_errors, patience)` returns `(stop_epoch, best_epoch)`: "
                     "stop at the first epoch with `epoch - best_epoch == patience` (a tie is no improvement; "
                     "epochs count from 0; never stopping early gives the last epoch)."),
    CheckSpec("dropout", "dropout",
              ("expected value of the hidden layer", "gradient with a fixed mask"), 5,
              "extension_dropout:check_dropout", ("dropout_forward", "dropout_backward"), extension=True,
              readme="`dropout_forward` (inverted dropout, mask from `rng`) and `dropout_backward`.",
              prompt="Optional extension (inverted dropout): `dropout_forward(h, rate, rng)` returns `(h_dropped, "
                     "mask)`, dropping each unit with probability `rate` and dividing the kept ones by `1 - rate`, "
                     "the mask drawn from `rng`; `dropout_backward(dh, mask, rate)` returns `dh * mask / (1 - rate)`."),
)

BY_ID: dict[str, CheckSpec] = {s.check_id: s for s in CORE + EXTENSIONS}
CHECK_IDS: tuple[str, ...] = tuple(s.check_id for s in CORE)
EXTENSION_IDS: tuple[str, ...] = tuple(s.check_id for s in EXTENSIONS)
LABELS: dict[str, list[str]] = {s.check_id: list(s.labels) for s in CORE + EXTENSIONS}
TITLES: dict[str, str] = {s.check_id: s.title for s in CORE + EXTENSIONS}
EXTENSION_FUNCTIONS: dict[str, tuple[str, ...]] = {s.check_id: s.functions for s in EXTENSIONS}


def spec(check_id: str) -> CheckSpec:
    return BY_ID[check_id]


def enabled_extensions(config: Any) -> list[str]:
    """The extension ids course.toml switches on (none when the config predates extensions)."""
    flags = getattr(config, "extensions", None) or {}
    return [e for e in EXTENSION_IDS if flags.get(e)]


def graded(config: Any) -> list[CheckSpec]:
    """The checks a submission is graded on in ``config``: every core check, then the enabled extensions."""
    return list(CORE) + [BY_ID[e] for e in enabled_extensions(config)]


def max_score(config: Any) -> float:
    return round(sum(s.points(config) for s in graded(config)), 4)


def split_points(total: float, labels: list[str]) -> list[float]:
    """Split a check's points evenly over its tests (last one takes the rounding)."""
    if not labels:
        return []
    each = round(total / len(labels), 4)
    return [each] * (len(labels) - 1) + [round(total - each * (len(labels) - 1), 4)]


def zero_results(check_id: str, labels: list[str], total: float, message: str,
                 diagnoses: list[str] | None = None) -> list[CheckResult]:
    """Every test of a check failed for the same reason (not implemented, crash, ...)."""
    return [CheckResult(check_id, label, 0.0, pts, message, list(diagnoses or []))
            for label, pts in zip(labels, split_points(total, labels))]


def all_zero(config: Any, message: str, tags: list[str] | None = None) -> list[CheckResult]:
    """Zero on every test of every graded check (core and enabled extensions), for one shared reason:
    the one builder behind grade's syntax/import/unreadable reports, batch's grader-error report and
    Gradescope's failure results, so all of them are out of the same maximum."""
    return [r for s in graded(config) for r in s.zero(config, message, tags)]


__all__ = ["BY_ID", "CHECK_IDS", "CORE", "CheckSpec", "EXTENSIONS", "EXTENSION_FUNCTIONS", "EXTENSION_IDS", "LABELS",
           "TITLES", "all_zero", "enabled_extensions", "graded", "max_score", "spec", "split_points", "zero_results"]
