"""The grader's test zoo: submissions with the verdict each must get.

An ``Entry`` names a submission (built from the reference by asserted substitutions, or hostile),
the activation it is graded under, the expected score per check id, the diagnosis ids each check
must report, words its feedback must contain, and how long grading it may take. ``training`` is the
expected training score where a test trains it (``None``: training is not part of its verdict).

Default rubric: forward 15 (3 x 5), gradients 35 (4 x 8.75), minibatch 20 (4 x 5), sgd_step 10 (2 x 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import hostile as H
from . import sources as S
from .hostile import Probe

FULL = {"forward": 15.0, "gradients": 35.0, "minibatch": 20.0, "sgd_step": 10.0}
G = 8.75   # one gradient key
T = 5.0    # one forward / minibatch / sgd_step test


def full(**changes: float | tuple[float, ...]) -> dict[str, float | tuple[float, ...]]:
    return {**FULL, **changes}


# Where a verdict legitimately depends on the year's hidden cases, the entry allows each outcome and
# says why here; every other verdict must be exact for every secret (tests/test_grader_zoo.py sweeps).
ONE_OF = {
    "grad_W_transposed": "when the minibatch case happens to be square (n_in == n_hidden), X.T @ d_a has W's "
                         "shape and is still the mean of per-example gradients: only 'N=1 and odd N' fails",
    "forward_missing_b": "the large-logit test judges stability: with some cases the missing bias does not "
                         "change those probabilities beyond the tolerance",
    "forward_missing_c": "as forward_missing_b, for the output bias",
    "forward_tanh_instead_of_relu": "as forward_missing_b, for the activation",
}


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str                                    # correct, bug, hostile
    build: Callable[[Probe], str]
    expect: dict[str, float | tuple[float, ...]]  # check id -> score, or the scores allowed (see ONE_OF)
    diagnoses: dict[str, tuple[str, ...]] = field(default_factory=dict)   # check id -> ids that must appear
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)       # check id -> words in its messages
    activation: str = "relu"
    seconds: float = 8.0                         # grading must finish within this (no hang)
    training: float | tuple[float, ...] | None = None  # expected training score(s) when trained
    status: str | None = None                    # expected report.status, when it matters
    needs_full: bool = False                     # its containment facts hold only under full isolation
    limits: tuple[tuple[str, float], ...] = ()   # SandboxLimits fields this entry is graded under (support.py)
    budget_floor_s: float | None = None          # the training budget's floor, when not the course's


def _src(fn: Callable[[], str]) -> Callable[[Probe], str]:
    return lambda probe: fn()


def _patched(*pairs: tuple[str, str], activation: str = "relu") -> Callable[[Probe], str]:
    return lambda probe: S.patch(S.ref(activation), *pairs)


D_LOGITS = "d_logits = (probs - Y) / n"

CORRECT = [
    Entry(f"reference_{act}", "correct", _src(lambda act=act: S.ref(act)), FULL, activation=act)
    for act in ("relu", "sigmoid", "tanh")
] + [
    Entry("column_major", "correct", _src(S.column_major), FULL),
    Entry("float32", "correct", _src(S.float32), FULL),
    Entry("einsum", "correct", _src(S.einsum), FULL),
    Entry("imports_gradcheck", "correct", _src(S.imports_gradcheck), FULL),
    Entry("inplace_sgd_step", "correct", _src(S.inplace_sgd), FULL),
    Entry("hidden_unit_loops", "correct", _src(S.hidden_unit_loops), FULL),
    Entry("per_example_loop", "correct", _src(S.per_example_loop), FULL),
    Entry("cache_extra_keys", "correct", _src(S.cache_extra_keys), FULL),
    Entry("logsumexp_softmax", "correct", _src(S.logsumexp_softmax), FULL),
    # issue 11: valid code the public self-tests used to fail (with a wrong explanation)
    Entry("init_V_zero", "correct", _patched(('"V": rng.standard_normal((n_out, n_hidden)) * np.sqrt(1.0 / n_hidden),',
                                              '"V": np.zeros((n_out, n_hidden)),')), FULL),
    Entry("softmax_global_max", "correct", _patched(("shifted = logits - logits.max(axis=1, keepdims=True)",
                                                     "shifted = logits - logits.max()")), FULL),
] + [
    Entry(f"activation_table_{act}", "correct", _src(lambda act=act: S.activation_table(act)), FULL, activation=act)
    for act in ("relu", "sigmoid", "tanh")
]

BUGS = [
    # one bug, charged once in minibatch: "N=1 and odd N" credits the batch factor "mean of ..." charges
    Entry("grad_summed_not_averaged", "bug", _patched((D_LOGITS, "d_logits = (probs - Y)")),
          full(gradients=0, minibatch=3 * T),
          {"gradients": ("grad_factor_n",), "minibatch": ("grad_factor_n", "explained_by_other_check")},
          {"gradients": ("batch size", "mean"), "minibatch": ("SUM",)}),
    Entry("grad_averaged_twice", "bug", _patched((D_LOGITS, "d_logits = (probs - Y) / n / n")),
          full(gradients=0, minibatch=3 * T),
          {"gradients": ("grad_factor_1_over_n",), "minibatch": ("grad_factor_1_over_n",)},
          {"gradients": ("divided by the batch size twice",), "minibatch": ("twice",)}),
    Entry("grad_sign_flipped", "bug", _patched((D_LOGITS, "d_logits = (Y - probs) / n")),
          full(gradients=0, minibatch=2 * T),  # per-example gradients all wrong: the mean test is not credited
          {"gradients": ("grad_sign_flipped",), "minibatch": ("batch_size_dependent", "not_credited")},
          {"gradients": ("opposite sign", "Y - probs")}),
    Entry("grad_W_transposed", "bug", _patched(('"W": d_a.T @ X,', '"W": X.T @ d_a,')),
          full(gradients=3 * G, minibatch=(2 * T, 3 * T)),
          {"gradients": ("grad_transposed",)}, {"gradients": ("transposed", "dL/dW"), "minibatch": ("dL/dW",)}),
    Entry("sigmoid_derivative_h", "bug", _patched(("return h * (1.0 - h)", "return h"), activation="sigmoid"),
          full(gradients=2 * G, minibatch=3 * T), {"gradients": ("sigmoid_derivative_h",)},
          {"gradients": ("h * (1 - h)",)}, activation="sigmoid"),
    Entry("tanh_derivative_not_squared", "bug", _patched(("return 1.0 - h * h", "return 1.0 - h"), activation="tanh"),
          full(gradients=2 * G, minibatch=3 * T), {"gradients": ("tanh_derivative_not_squared",)},
          {"gradients": ("1 - h^2",)}, activation="tanh"),
    Entry("relu_derivative_h", "bug", _patched(("return (a > 0).astype(a.dtype)", "return h")),
          full(gradients=2 * G, minibatch=3 * T), {"gradients": ("relu_derivative_h",)},
          {"gradients": ("ReLU derivative",)}),
    Entry("dV_from_preactivation", "bug", _patched(('"V": d_logits.T @ h,', '"V": d_logits.T @ a,')),
          full(gradients=3 * G, minibatch=3 * T), {"gradients": ("V_from_preactivation",)},
          {"gradients": ("pre-activation",)}),
    Entry("bias_grad_not_summed", "bug", _patched(('"b": d_a.sum(axis=0),', '"b": d_a,')),
          full(gradients=3 * G, minibatch=2 * T), {"gradients": ("bias_not_summed",)},
          {"gradients": ("sum over the batch axis", "dL/db")}),
    Entry("bias_first_example_only", "bug",
          _patched(('"b": d_a.sum(axis=0),', '"b": d_a[0],'), ('"c": d_logits.sum(axis=0),', '"c": d_logits[0],')),
          full(gradients=2 * G, minibatch=2 * T), {"gradients": ("bias_first_example_only",)},
          {"gradients": ("first example",)}),
    Entry("naive_softmax", "bug", _patched(("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")),
          full(forward=2 * T), {"forward": ("softmax_overflow",)}, {"forward": ("overflow", "maximum")}),
    Entry("softmax_axis0", "bug", _patched(("probs = e / e.sum(axis=1, keepdims=True)",
                                            "probs = e / e.sum(axis=0, keepdims=True)")),
          full(forward=0, gradients=0, minibatch=0),  # nothing right anywhere: no invariance credit
          {"forward": ("softmax_wrong_axis",), "minibatch": ("rows_depend_on_each_other",)},
          {"forward": ("axis=1",), "minibatch": ("axis=1",)}),
    Entry("forward_missing_b", "bug", _patched((S.FORWARD_FIRST, '    a = X @ params["W"].T\n')),
          full(forward=(0, T), gradients=0, minibatch=0), {"forward": ("forward_missing_b",), "minibatch": ("not_credited",)},
          {"forward": ("bias b",)}),
    Entry("forward_missing_c", "bug", _patched(('logits = h @ params["V"].T + params["c"]', 'logits = h @ params["V"].T')),
          full(forward=(0, T), gradients=0, minibatch=0), {"forward": ("forward_missing_c",), "minibatch": ("not_credited",)},
          {"forward": ("bias c",)}),
    Entry("forward_tanh_instead_of_relu", "bug",
          _patched(("    h = _activate(a)\n", "    h = np.tanh(a)\n"), ("return (a > 0).astype(a.dtype)", "return 1.0 - h * h")),
          full(forward=(0, T), gradients=0, minibatch=0), {"forward": ("wrong_activation",)},
          {"forward": ("tanh", "relu"), "gradients": ("OWN forward",)}),
    Entry("forward_mutates_X", "bug",
          _patched(("    return probs, (X, a, h, probs)\n",
                    "    cache = (X.copy(), a, h, probs)\n    X[...] = 0.0  # free the input\n    return probs, cache\n")),
          full(minibatch=3 * T), {"minibatch": ("input_mutated",)}, {"minibatch": ("forward changed X",)}),
    Entry("backward_mutates_params", "bug",
          _patched(('    d_h = d_logits @ params["V"]\n',
                    '    d_h = d_logits @ params["V"]\n    params["V"] -= 0.1 * (d_logits.T @ h)  # update on the way\n')),
          full(minibatch=3 * T), {"minibatch": ("input_mutated",)}, {"minibatch": ("params.V",)}),
    Entry("sgd_ascends", "bug", _patched(("params[key] - learning_rate * grads[key]",
                                          "params[key] + learning_rate * grads[key]")),
          full(sgd_step=0), {"sgd_step": ("sgd_ascends", "not_credited")}, {"sgd_step": ("UP the gradient",)}),
    Entry("sgd_skips_c", "bug", _patched(("for key in params}", 'for key in params if key != "c"}')),
          full(sgd_step=T), {"sgd_step": ("sgd_skips_key",)}, {"sgd_step": ("'c'",)}),
    Entry("sgd_ignores_lr", "bug", _patched(("params[key] - learning_rate * grads[key]", "params[key] - grads[key]")),
          full(sgd_step=0), {"sgd_step": ("sgd_ignores_lr", "not_credited")}, {"sgd_step": ("learning_rate",)}),
    Entry("sgd_hardcoded_lr", "bug", _patched(("params[key] - learning_rate * grads[key]", "params[key] - 0.1 * grads[key]")),
          full(sgd_step=0), {"sgd_step": ("sgd_wrong", "not_credited")}, {"sgd_step": ("not p - lr*g",)}),
    Entry("sgd_returns_list", "bug", _patched((S.SGD_RETURN, "    return [params[key] - learning_rate * grads[key] for key in params]\n")),
          full(sgd_step=0), {"sgd_step": ("sgd_not_dict",)}, {"sgd_step": ("list", "dict")}),
    Entry("sgd_mutates_grads", "bug",
          _patched((S.SGD_RETURN, "    for key in grads:\n        grads[key] *= learning_rate\n"
                                  "    return {key: params[key] - grads[key] for key in params}\n")),
          full(sgd_step=T), {"sgd_step": ("sgd_mutates_grads",)}, {"sgd_step": ("changed its gradients",)}),
    Entry("not_implemented", "bug", _src(S.skeleton),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("not_implemented",), "gradients": ("not_implemented",), "sgd_step": ("not_implemented",)},
          {"forward": ("not implemented",), "gradients": ("not implemented",), "sgd_step": ("not implemented",)},
          status="not_implemented"),
    Entry("returns_np_matrix", "bug", _patched(("    return probs, (X, a, h, probs)\n",
                                                "    return np.asmatrix(probs), (X, a, h, probs)\n")),
          full(forward=0), {"forward": ("wrong_type",)}, {"forward": ("subclass", "matrix")}),
    Entry("backward_returns_lists", "bug",
          _patched(('    return {\n        "W": d_a.T @ X,', '    grads = {\n        "W": d_a.T @ X,'),
                   ('        "c": d_logits.sum(axis=0),\n    }\n',
                    '        "c": d_logits.sum(axis=0),\n    }\n    return {k: v.tolist() for k, v in grads.items()}\n')),
          full(gradients=0, minibatch=2 * T), {"gradients": ("wrong_type",), "minibatch": ("wrong_type",)},
          {"gradients": ("list",), "minibatch": ("list",)}),
    # ---- issue 12 (expected verdicts written from the rules before grading) ----------------------------
    Entry("momentum_sgd", "bug", _src(S.momentum_sgd), full(sgd_step=T), {"sgd_step": ("sgd_momentum",)},
          {"sgd_step": ("momentum", "FIRST call")}),
    Entry("step_counter_sgd", "bug", _src(S.step_counter_sgd), full(sgd_step=T), {"sgd_step": ("hidden_state",)},
          {"sgd_step": ("depend only on",)}),
    Entry("identity_update", "bug", _src(S.identity_update), full(sgd_step=0),
          {"sgd_step": ("sgd_skips_key", "not_credited")}, {"sgd_step": ("not updated", "not credited")}),
    Entry("uniform_probs_zero_grads", "bug", _src(S.uniform_probs),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 10.0},
          {"forward": ("forward_wrong",), "minibatch": ("not_credited",)}, {"minibatch": ("not credited",)}),
    Entry("zero_grads", "bug", _src(S.zero_grads), full(gradients=0, minibatch=2 * T),
          {"gradients": ("grad_zero",), "minibatch": ("not_credited",)}, {"gradients": ("zero",)}),
    Entry("gradient_3e-5_off_float64", "bug", _src(lambda: S.gradient_off(3e-5, "float64")),
          full(gradients=0, minibatch=2 * T), {"gradients": ("grad_scaled",)}, {"gradients": ("slightly off",)}),
    Entry("gradient_3e-5_off_float32", "bug", _src(lambda: S.gradient_off(3e-5, "float32")),
          full(gradients=0, minibatch=2 * T), {"gradients": ("grad_scaled",)}, {"gradients": ("slightly off",)}),
    Entry("bias_grad_keepdims", "bug", _src(S.bias_keepdims), full(gradients=2 * G),
          {"gradients": ("bias_keepdims",)}, {"gradients": ("keepdims", "(1, ")}),
    Entry("both_biases_missing", "bug", _src(S.both_biases_missing),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 10.0},
          {"forward": ("forward_missing_biases",)}, {"forward": ("both biases",)}),
    Entry("sigmoid_output", "bug", _src(S.sigmoid_output),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 10.0},
          {"forward": ("sigmoid_output",)}, {"forward": ("sigmoid", "softmax")}),
    Entry("mse_loss", "bug", _src(S.mse_loss), full(gradients=0, minibatch=2 * T), {"gradients": ("mse_loss",)},
          {"gradients": ("squared error",)}),
    Entry("imports_matplotlib", "bug", _src(S.imports_matplotlib),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("forbidden_import",)}, {"forward": ("matplotlib", "notebook")}, status="import_error"),
    Entry("syntax_error", "bug", _patched(("    return probs, (X, a, h, probs)\n", "    return probs, (X, a, h, probs\n")),
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("syntax_error",)}, {"forward": ("does not compile", "line")}, status="syntax_error"),
]

#: Entries whose hang is the point wait out every timeout (the forward loop: one call timeout, then
#: eight retries), so they are graded under shorter ones than ZOO_LIMITS. The calls that must still
#: succeed there are the reference's (under 0.05 s each: 10x margin over a retry and 20x over a call; a
#: worker start with the import under 0.5 s: 6x, 2x with two CPU hogs and a second suite worker beside it).
HANG_LIMITS = (("load_timeout_s", 3.0), ("call_timeout_s", 1.0), ("retry_timeout_s", 0.5))

HOSTILE = [
    Entry("import_infinite_loop", "hostile", H.import_loop, {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("timeout",)}, {"forward": ("did not finish",)}, seconds=20, status="timeout",
          limits=HANG_LIMITS),
    Entry("forward_infinite_loop", "hostile", H.forward_loop, full(forward=0, gradients=0, minibatch=0),
          {"forward": ("timeout",), "gradients": ("timeout",)}, {"forward": ("did not finish",)}, seconds=35,
          limits=HANG_LIMITS),
    Entry("memory_bomb", "hostile", H.memory_bomb, full(forward=0, gradients=0, minibatch=0),
          {"forward": ("memory",)}, {"forward": ("out of memory",)}),
    Entry("fork_bomb", "hostile", H.fork_bomb, FULL, seconds=30, needs_full=True),
    Entry("sigterm_ignored_sleep", "hostile", H.sigterm_sleep, full(sgd_step=0), {"sgd_step": ("timeout",)},
          {"sgd_step": ("did not finish",)}, seconds=20, limits=HANG_LIMITS),
    Entry("os_exit_in_backward", "hostile", H.exit_in_backward, full(gradients=0, minibatch=2 * T),
          {"gradients": ("crashed",)}, {"gradients": ("ended",)}),
    Entry("stdout_flood", "hostile", H.stdout_flood, FULL, seconds=15),
    Entry("fake_results", "hostile", H.fake_results, {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("not_implemented",)}, needs_full=True),
    Entry("read_secrets", "hostile", H.read_secrets, {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          seconds=30, needs_full=True),
    Entry("write_grader", "hostile", H.write_grader, FULL, needs_full=True),
    Entry("network", "hostile", H.network, FULL, seconds=15, needs_full=True),
    Entry("numpy_monkeypatch", "hostile", H.numpy_monkeypatch, full(gradients=0, minibatch=2 * T),  # sum bug: once
          {"gradients": ("grad_factor_n",), "minibatch": ("input_mutated",)}, {"minibatch": ("forward changed X",)}),
    # its probs are zeros (as a lying subclass): the rows-independence test is not credited (issue 12)
    Entry("lying_subclass", "hostile", H.lying_subclass, full(forward=0, minibatch=3 * T), {"forward": ("wrong_type",)},
          {"forward": ("subclass",)}),
    Entry("huge_arrays", "hostile", H.huge_arrays, full(forward=0, minibatch=3 * T), {"forward": ("wrong_shape",)},
          {"forward": ("100000000",), "minibatch": ("100000000",)}, seconds=20),
    Entry("background_process", "hostile", H.background_process, FULL),
    Entry("env_secret", "hostile", H.env_secret, FULL),
    Entry("symlink_output_log", "hostile", H.symlink_output_log,
          {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0}, needs_full=True),
    Entry("symlink_inputs", "hostile", H.symlink_inputs, FULL, needs_full=True),
    Entry("restart_chown", "hostile", H.restart_chown, full(sgd_step=0.0), {"sgd_step": ("crashed",)}, needs_full=True),
    Entry("protocol_garbage", "hostile", H.protocol_garbage, {"forward": 0, "gradients": 0, "minibatch": 0, "sgd_step": 0},
          {"forward": ("hostile_protocol",)}, {"forward": ("unreadable reply",)}, seconds=20),
]

def _hyperparams(new: str) -> Callable[[Probe], str]:
    return _patched(("HYPERPARAMS = dict(SUGGESTED_HYPERPARAMS[ACTIVATION])\n", new))


# Graded with training (MNIST). The fast ones fail before training starts.
TRAINING = [
    Entry("hyperparams_out_of_bounds", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": 100, "learning_rate": 50.0, "batch_size": 64, "epochs": 3}\n'),
          FULL, {"training": ("bad_hyperparameters",)}, {"training": ("outside the allowed range", "learning_rate")},
          training=0.0, seconds=15),
    Entry("hyperparams_missing", "bug", _hyperparams(""), FULL, {"training": ("bad_hyperparameters",)},
          {"training": ("HYPERPARAMS",)}, training=0.0, seconds=15),
    Entry("hyperparams_key_missing", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": 100, "learning_rate": 0.5, "batch_size": 64}\n'),
          FULL, {"training": ("bad_hyperparameters",)}, {"training": ("epochs",)}, training=0.0, seconds=15),
]
# issue 12: the grader owns training (fast: each fails or stops within a few checkpoints)
TRAINING += [
    Entry("hyperparams_nan", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": float("nan"), "learning_rate": 0.5, "batch_size": 64, "epochs": 3}\n'),
          FULL, {"training": ("bad_hyperparameters",)}, {"training": ("n_hidden", "finite")}, training=0.0, seconds=15),
    Entry("hyperparams_string", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": "100", "learning_rate": 0.5, "batch_size": 64, "epochs": 3}\n'),
          FULL, {"training": ("bad_hyperparameters",)}, {"training": ("n_hidden", "str")}, training=0.0, seconds=15),
    Entry("pretrained_init_fd_backward", "hostile", _src(S.pretrained_init_fd_backward), full(gradients=0),
          {"gradients": ("grad_wrong_at_scale",), "training": ("untrained_init",)},
          {"gradients": ("real-size",), "training": ("random weights",)}, training=0.0, seconds=30),
    Entry("forged_checkpoint_stream", "hostile", _src(S.forged_checkpoints), FULL,
          {"training": ("wrong_shape",)}, {"training": ("(1024, 784)",)}, training=0.0, seconds=30),
    Entry("forged_trained_stream", "hostile", _src(S.trained_in_forged_loop), FULL,
          {"training": ("forged_training",)}, {"training": ("replaced",)}, training=0.0, seconds=30),
    Entry("zero_grads_training", "bug", _src(S.zero_grads), full(gradients=0, minibatch=2 * T),
          {"training": ("not_learning",)}, {"training": ("gradients check already found", "stopped early")},
          training=0.0, seconds=40),
]
#: The two entries below spend their whole budget (the course's floor is 20 s); their verdict does not
#: depend on its size, so they run with a floor of 8 s (the budget stays max(floor, 4 x the reference's
#: time), so a slow machine still gets its own).
SHORT_BUDGET_FLOOR_S = 8.0
SLOW_TRAINING = [
    Entry("train_reference_relu", "correct", _src(S.ref), FULL, training=20.0, seconds=60),
    Entry("train_float32", "correct", _src(S.float32), FULL, training=20.0, seconds=60),
    Entry("train_per_example_loop", "correct", _src(S.per_example_loop), FULL, training=20.0, seconds=90),
    Entry("train_tiny_learning_rate", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": 100, "learning_rate": 0.0001, "batch_size": 64, "epochs": 1}\n'),
          FULL, {"training": ("not_learning",)}, {"training": ("HYPERPARAMS", "learning rate")}, training=0.0,
          seconds=60),
    Entry("train_bias_keepdims", "bug", _src(S.bias_keepdims), full(gradients=2 * G), {"gradients": ("bias_keepdims",)},
          training=20.0, seconds=60),
    # correct, vectorized, but a tiny learning rate on a wide net: the budget runs out while a step costs
    # what the reference's does, so the verdict is "did not converge" (never "too slow")
    Entry("train_slow_converging_vectorized", "bug",
          _hyperparams('HYPERPARAMS = {"n_hidden": 1024, "learning_rate": 0.003, "batch_size": 16, "epochs": 10}\n'),
          FULL, {"training": ("did_not_converge",)}, {"training": ("did not converge",)},
          training=(0.0, 4.0, 8.0, 12.0), seconds=150, budget_floor_s=SHORT_BUDGET_FLOOR_S),
    Entry("train_sleepy_sgd_step", "bug", lambda probe: S.at_start(S.ref(), S.SGD_RETURN, "    import time\n    time.sleep(0.2)"),
          FULL, {"training": ("too_slow",)}, {"training": ("budget", "sleeping")}, training=0.0, seconds=60,
          budget_floor_s=SHORT_BUDGET_FLOOR_S),
]

ZOO: list[Entry] = CORRECT + BUGS + HOSTILE
BY_NAME = {e.name: e for e in ZOO}
assert len(BY_NAME) == len(ZOO), "zoo entry names must be unique"

TRAINED = TRAINING + SLOW_TRAINING
for _e in TRAINED:
    assert _e.name not in BY_NAME, _e.name
    BY_NAME[_e.name] = _e

#: Graded again at BACKPROP_LAB_ISOLATION=rlimits (no user drop, no bwrap): verdicts must not change.
#: Never the fork bomb there: RLIMIT_NPROC does not bind root.
RLIMITS_SUBSET = ("reference_relu", "float32", "grad_summed_not_averaged", "softmax_axis0", "not_implemented",
                  "memory_bomb", "os_exit_in_backward", "stdout_flood", "numpy_monkeypatch", "lying_subclass",
                  "huge_arrays", "background_process", "env_secret", "protocol_garbage", "restart_chown")
