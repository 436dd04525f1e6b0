"""The verdicts of the backprop-lab checks, in pure numpy: arrays in, a :class:`Verdict` out.

One definition of each judgement (issue 11), used in three places: the grader's parent on the arrays a
sandboxed worker returned (``autograder/checks/*``), the public self-tests on the public cases
(``assignment/bplab_judges.py``, with the public cases' expected values shipped as data), and the
otter/nbgrader checks on the hidden cases' expected values (``bplab_judges.py`` next to
``bplab_checks.py``). Shipped verbatim: numpy, the standard library and ``gradcheck`` only; no
solution code, no expected values. Messages carry no case name: the caller prefixes it.

Shapes: probs (N, n_out); a gradient has its parameter's shape (W (n_hidden, n_in), b (n_hidden,),
V (n_out, n_hidden), c (n_out,)). ``truth``/``expected`` are float64; ``*32`` arguments are the
reference's result computed in float32 (what a correct float32 implementation achieves).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

try:  # inside the autograder package
    from . import gradcheck
except ImportError:  # shipped next to gradcheck.py (the handout, otter/nbgrader)
    import gradcheck

KEYS = ("W", "b", "V", "c")
EPS32 = float(np.finfo(np.float32).eps)
FLOAT32_MARGIN = 25.0          # a different-but-correct float32 order of operations, within this factor
FLOAT32_FLOOR = 20 * EPS32     # ~2.4e-6: never demand less than a few float32 ulps
ZERO_FLOOR = 1e-6              # absolute floor of a comparison, relative to the case's largest gradient
PASS_FLOAT64 = 1e-6            # gradients: relative error against the truth
MATCH_TOL = 1e-5               # a wrong gradient "is" a known bug's when this close to it
PROBS_RTOL, PROBS_ATOL = 1e-6, 1e-9


def call_student(fn, name: str, *args):
    """``fn(*args)`` for the otter/nbgrader tests (``bplab_checks``, ``bplab_training``): a missing function,
    ``NotImplementedError`` or a crash becomes an ``AssertionError`` naming the function, so the tool shows
    one sentence, not a traceback into the student's cell."""
    if not callable(fn):
        raise AssertionError(f"{name} is not defined; keep the function names of the handout")
    try:
        return fn(*args)
    except NotImplementedError as exc:
        raise AssertionError(f"{name} is not implemented yet ({exc}); replace the `raise "
                             "NotImplementedError` with your code") from None
    except Exception as exc:  # noqa: BLE001 - the student's error (AssertionError too), reported by name
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Verdict:
    """One judgement: ``passed``, bug ids (``diagnoses``) and the sentence a TA would say."""
    passed: bool
    diagnoses: tuple[str, ...] = ()
    message: str = ""
    evidence: dict = field(default_factory=dict)


# ---- tolerances ----------------------------------------------------------------------------------
def threshold(dtype, tol64: float, ref32_error: float) -> float:
    """The pass threshold for a result of ``dtype``: ``tol64``, or for float32 what the reference
    achieves in float32 on this input (``ref32_error``, the same error measure) with a margin."""
    if np.dtype(dtype) != np.float32:
        return tol64
    return max(tol64, FLOAT32_MARGIN * float(ref32_error), FLOAT32_FLOOR)


def scaled_error(student, truth, scale: float) -> float:
    """Relative error with an absolute floor scaled to the case's gradient sizes: near-zero gradients
    (a batch gradient exactly 0 against a per-example mean of -6e-17) compare as equal."""
    a = np.asarray(student, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    floor = max(ZERO_FLOOR * float(scale), 1e-300)
    return float(np.linalg.norm(a - t) / max(np.linalg.norm(a) + np.linalg.norm(t), floor))


def grad_scale(grads: dict) -> float:
    """The largest Frobenius norm among a case's gradients (sets the absolute floor)."""
    return max((float(np.linalg.norm(np.asarray(g, dtype=np.float64))) for g in grads.values()), default=0.0)


def dtype_tolerance(dtype, float64: float, float32: float) -> float:
    return float32 if np.dtype(dtype) == np.float32 else float64


# ---- what came back: type -> shape -> dtype -> finite ----------------------------------------------
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def array_problem(name: str, value, shape: tuple, allow_nonfinite: bool = False) -> str | None:
    """Why ``value`` is not a plain finite float64/float32 array of ``shape`` (None when it is)."""
    shape = tuple(shape)
    if type(value) is not np.ndarray:
        return f"{name} is a {type(value).__name__}, expected a plain numpy array of shape {shape}"
    if value.shape != shape:
        hint = ""
        if len(shape) == 2 and value.shape == shape[::-1]:
            hint = " (transposed: you have the axes the other way round)"
        elif value.ndim == len(shape) + 1 and value.shape[1:] == shape:
            hint = " (one row per example: did you forget to sum over the batch axis?)"
        return f"{name} has shape {value.shape}, expected {shape}{hint}"
    if value.dtype not in FLOAT_DTYPES:
        return f"{name} has dtype {value.dtype}; return float64 (or float32)"
    if not allow_nonfinite and not np.all(np.isfinite(value)):
        return f"{name} contains NaN or inf"
    return None


def squeeze_to(arr, shape: tuple):
    """``arr`` with extra length-1 axes dropped when that gives ``shape`` (a bias kept as (1, n) by
    ``keepdims=True``): the gradients check charges that shape once; other checks judge the values."""
    shape = tuple(shape)
    if isinstance(arr, np.ndarray) and arr.shape != shape and arr.size == int(np.prod(shape)) and \
            tuple(d for d in arr.shape if d != 1) == tuple(d for d in shape if d != 1):
        return arr.reshape(shape)
    return arr


# ---- forward -------------------------------------------------------------------------------------
FORWARD_BUGS = {
    "wrong_activation": "your hidden layer uses {detail}, but this year's activation is {activation} (see "
                        "ACTIVATION at the top of mlp.py)",
    "forward_missing_b": "the hidden layer ignores the bias b (a = X W^T + b)",
    "forward_missing_c": "the output layer ignores the bias c (logits = h V^T + c)",
    "softmax_wrong_axis": "the softmax normalises over the batch axis (columns) instead of over the classes of "
                          "each example (rows): use axis=1",
    "forward_missing_biases": "both biases are missing: the hidden layer ignores b (a = X W^T + b) and the output "
                              "layer ignores c (logits = h V^T + c)",
    "sigmoid_output": "the output layer applies a sigmoid to each logit; the output must be a softmax over the "
                      "classes (exp of each logit divided by the sum over its row)",
    "no_softmax": "you return the logits: apply the softmax to turn them into probabilities",
    "no_hidden_activation": "the hidden layer has no activation: h = f(a), not h = a",
}
OVERFLOW = (": your softmax overflows on large logits. Subtract each row's maximum logit before np.exp; the "
            "result is the same, and exp never sees a large number")


def batch_factor(scale: float, n: int) -> str | None:
    """``grad_factor_n`` when ``scale`` is the batch size N (the sum over the batch, not the mean),
    ``grad_factor_1_over_n`` when it is 1/N (the mean taken twice), else None; only for N > 1."""
    if n > 1 and abs(scale - n) < 1e-3 * n:
        return "grad_factor_n"
    if n > 1 and abs(scale * n - 1) < 1e-3:
        return "grad_factor_1_over_n"
    return None


def _bug(key: str) -> tuple[str, str]:
    """A variant's key ``"<bug id>"`` or ``"<bug id>=<detail>"`` split into (bug id, detail)."""
    bug_id, _, detail = key.partition("=")
    return bug_id, detail


def diagnose_probs(probs: np.ndarray, variants: dict, activation: str) -> tuple[list[str], str]:
    """Name the forward bug behind wrong ``probs``: the first of ``variants`` ({bug key: the probs that
    bug gives on this case}, in order) it matches, else rows that do not sum to 1."""
    probs = np.asarray(probs, dtype=np.float64)
    for key, variant in variants.items():
        variant = np.asarray(variant)
        if variant.shape == probs.shape and np.allclose(probs, variant, rtol=1e-5, atol=1e-8):
            bug_id, detail = _bug(key)
            return [bug_id], FORWARD_BUGS[bug_id].format(detail=detail, activation=activation)
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-5):
        return ["rows_not_normalised"], (f"rows of probs do not sum to 1 (row sums from {sums.min():.4g} to "
                                         f"{sums.max():.4g}): the softmax must normalise each row")
    return [], ""


def probs(got: np.ndarray, expected: np.ndarray, expected32: np.ndarray | None = None, variants: dict | None = None,
          activation: str = "", overflow: bool = False) -> Verdict:
    """forward's ``got`` (N, n_out), validated float64/float32, against the reference's ``expected``:
    rtol 1e-6, atol 1e-9 in float64; float32 held to the reference in float32 (``expected32``) with a
    margin. ``overflow``: the case's logits are all large, so NaN/inf means an overflowing softmax."""
    if not np.all(np.isfinite(got)):
        return Verdict(False, ("softmax_overflow" if overflow else "nan_inf",),
                       "probs contain NaN or inf" + (OVERFLOW if overflow else ""))
    expected = np.asarray(expected, dtype=np.float64)
    scale = PROBS_ATOL + PROBS_RTOL * np.abs(expected)
    err = float(np.max(np.abs(got - expected) / scale))
    limit = 1.0
    if got.dtype == np.float32 and expected32 is not None:
        ref32 = float(np.max(np.abs(np.asarray(expected32, dtype=np.float64) - expected) / scale))
        limit = max(threshold(got.dtype, 1.0, ref32), FLOAT32_FLOOR / PROBS_RTOL)
    evidence = {"max_abs_error": float(np.max(np.abs(got - expected))), "dtype": str(got.dtype)}
    if err <= limit:
        return Verdict(True, (), f"probs match the reference (max |difference| {evidence['max_abs_error']:.1e}, "
                                 f"dtype {got.dtype}).", evidence)
    tags, text = diagnose_probs(got, variants or {}, activation)
    text = text or "probs differ from the reference; check each step: a, h = f(a), logits, softmax"
    return Verdict(False, tuple(tags or ["forward_wrong"]),
                   f"{text} (max |difference| from the reference {evidence['max_abs_error']:.3g}).", evidence)


# ---- gradients -----------------------------------------------------------------------------------
def gradient_error(got: np.ndarray, truth: np.ndarray, truth32: np.ndarray, scale: float,
                   tol64: float = PASS_FLOAT64) -> tuple[bool, float]:
    """(right?, relative error): ``got`` against ``truth`` with the case's absolute floor ``scale``;
    a float32 ``got`` is held to what the reference achieves in float32 (``truth32``)."""
    err = scaled_error(got, truth, scale)
    return err <= threshold(np.asarray(got).dtype, tol64, scaled_error(truth32, truth, scale)), err


def diagnose_gradient(key: str, student: np.ndarray, truth: np.ndarray, n: int, n_classes: int,
                      variants: dict | None = None, messages: dict | None = None) -> tuple[list[str], str]:
    """(bug ids, TA-style sentence) for a wrong gradient of parameter ``key``: a constant factor (sign,
    N, 1/N, ...), a transpose, or one of ``variants`` ({bug id: that bug's gradient of ``key`` on this
    case}, in order; ``messages`` {bug id: sentence})."""
    student = np.asarray(student, dtype=np.float64)
    many_classes = n_classes >= 3  # with 2 classes every zero-sum c-gradient is a multiple of (1, -1)
    scale, residual = gradcheck.best_scale(student, truth)
    if residual < MATCH_TOL and many_classes and abs(scale) > 1e-9 and abs(scale - 1) <= 1e-3:
        return ["grad_scaled"], (f"dL/d{key} is the true gradient times {scale:.6g}: right in direction, but a "
                                 "constant is slightly off (a rounded or mistyped number?)")
    if residual < MATCH_TOL and many_classes:
        text = gradcheck.describe_scale(scale, n)
        if text:
            tag = ("grad_sign_flipped" if scale < 0 and abs(abs(scale) - 1) < 1e-3 else
                   batch_factor(scale, n) or ("grad_zero" if abs(scale) < 1e-3 else "grad_scaled"))
            return [tag], f"dL/d{key} {text}"
    if student.ndim == 2 and student.shape[0] == student.shape[1] and \
            gradcheck.relative_error(student.T, truth) < MATCH_TOL:
        return ["grad_transposed"], f"dL/d{key} is transposed: it must have the shape of {key}"
    for bug_id, variant in (variants or {}).items():
        variant = np.asarray(variant, dtype=np.float64)
        if variant.shape != truth.shape or gradcheck.best_scale(variant, truth)[1] < MATCH_TOL:
            continue  # on this key the bug only rescales the gradient: the scale test judges that (>= 3 classes)
        message = (messages or {}).get(bug_id, bug_id)
        if gradcheck.relative_error(variant, truth) > 1e-3 and gradcheck.relative_error(student, variant) < MATCH_TOL:
            return [bug_id], message
        v_scale, v_res = gradcheck.best_scale(student, variant)
        if gradcheck.relative_error(variant, truth) > 1e-3 and v_res < MATCH_TOL and many_classes and \
                gradcheck.describe_scale(v_scale, n):
            return [bug_id, "grad_scaled"], f"{message}; also, dL/d{key} {gradcheck.describe_scale(v_scale, n)}"
    return [], ""


def gradient(key: str, got: np.ndarray, truth: np.ndarray, truth32: np.ndarray, scale: float, n: int,
             n_classes: int, variants: dict | None = None, messages: dict | None = None) -> Verdict:
    """dL/d``key`` of one case: right within the tolerance, else the likely bug."""
    ok, err = gradient_error(got, truth, truth32, scale)
    if ok:
        return Verdict(True, (), f"dL/d{key} matches the true gradient (relative error {err:.1e}).",
                       {"relative_error": err})
    tags, text = diagnose_gradient(key, got, truth, n, n_classes, variants, messages)
    return Verdict(False, tuple(tags or ["grad_wrong"]), f"relative error {err:.2e} against finite differences of "
                   "the true loss." + (f" {text}" if text else ""), {"relative_error": err})


# ---- minibatch -----------------------------------------------------------------------------------
def right_keys(grads: dict, truth: dict, truth32: dict, tol64: float = PASS_FLOAT64) -> set[str]:
    """The keys whose gradient is right on a case (float32 judged against the reference in float32)."""
    scale = grad_scale(truth)
    return {k for k in KEYS if k in grads and gradient_error(grads[k], truth[k], truth32[k], scale, tol64)[0]}


def batch_mean(batch: dict, singles: list, usable: set, ref_batch32: dict, ref_singles32: list) -> Verdict:
    """The gradient of a batch of N against the mean of its N per-example gradients, judged on the
    ``usable`` keys (those whose per-example gradients are right: zero or wrong ones are trivially
    "averaged" and earn nothing). ``ref_*32``: the reference's gradients in float32 (the tolerance)."""
    n = len(singles)
    if not usable:
        return Verdict(False, ("not_credited",), "not credited: the per-example gradients are wrong for every "
                       "parameter (the gradients check says why), so whether the batch gradient is their mean "
                       "shows nothing yet.")
    means = {k: np.mean([s[k] for s in singles], axis=0) for k in KEYS}
    scale = grad_scale(means)
    worst_key, worst = max(((k, scaled_error(batch[k], means[k], scale)) for k in sorted(usable)),
                           key=lambda kv: kv[1])
    ref32 = max(scaled_error(ref_batch32[k], np.mean([s[k] for s in ref_singles32], axis=0), scale) for k in usable)
    tol = threshold(np.result_type(*[batch[k].dtype for k in usable]), 1e-8, ref32)
    evidence = {"relative_error": worst, "parameter": worst_key, "judged_on": sorted(usable)}
    if worst <= tol:
        return Verdict(True, (), f"the gradient of a batch of {n} equals the mean of its {n} per-example gradients "
                       f"(worst relative error {worst:.1e}, judged on {', '.join(sorted(usable))}).", evidence)
    factor, residual = gradcheck.best_scale(np.asarray(batch[worst_key], dtype=np.float64), means[worst_key])
    tag = batch_factor(factor, n) if residual < 1e-6 else None
    if tag == "grad_factor_n":
        return Verdict(False, (tag,), f"the batch gradient dL/d{worst_key} is the SUM of the per-example "
                       f"gradients, N={n} times their mean: the loss is the mean over the batch, so divide by N",
                       evidence)
    if tag == "grad_factor_1_over_n":
        return Verdict(False, (tag,), f"the batch gradient dL/d{worst_key} is 1/N of the mean of "
                       "per-example gradients: you divide by N twice", evidence)
    return Verdict(False, ("batch_not_mean",), f"the batch gradient dL/d{worst_key} is not the mean of the "
                   f"per-example gradients (relative error {worst:.2e}): some step mixes examples or drops part of "
                   "the batch", evidence)


def rows_independent(first: np.ndarray, second: np.ndarray, expected: np.ndarray, expected32: np.ndarray) -> Verdict:
    """forward's probs on X (``first``) and on X with example 0 changed (``second``, the change chosen so
    that the reference's probs of example 0 move): the other rows must not change, and the credit
    needs ``first`` right (``expected``, ``expected32``: the reference on X in float64 / float32)."""
    changed = float(np.abs(first[1:] - second[1:]).max()) if first.shape[0] > 1 else 0.0
    if changed > dtype_tolerance(first.dtype, 1e-12, 1e-6):
        return Verdict(False, ("rows_depend_on_each_other",), f"changing only example 0 changed the probabilities of "
                       f"OTHER examples (by up to {changed:.2e}): each row must depend only on its own input. A softmax "
                       "or a normalisation over axis=0 (the batch) does this; use axis=1.")
    off = float(np.max(np.abs(first - expected)))
    if off > threshold(first.dtype, 1e-6, float(np.max(np.abs(np.asarray(expected32, dtype=np.float64) - expected)))):
        return Verdict(False, ("not_credited",), f"not credited: probs are wrong on this case (off by up to {off:.2g}; "
                       "the forward check says why), so rows that do not depend on each other show nothing yet.")
    return Verdict(True, (), "changing example 0 leaves the probabilities of the other examples unchanged.")


def batch_size(grads: dict, truth: dict, truth32: dict, n: int) -> Verdict:
    """The gradients of a batch of ``n`` (N=1, an odd N) against the truth, every key.

    One bug is charged once: gradients that are exactly N or 1/N times the truth for every key (the sum
    over the batch instead of the mean, or the mean taken twice) are what "mean of per-example
    gradients" charges, so this test credits them and says so (``explained_by_other_check``)."""
    scale = grad_scale(truth)
    wrong = []
    for key in KEYS:
        ok, err = gradient_error(grads[key], truth[key], truth32[key], scale)
        if not ok:
            wrong.append((key, err))
    if not wrong:
        return Verdict(True, (), "gradients are right for this N.")
    fits = [gradcheck.best_scale(np.asarray(grads[k], dtype=np.float64), truth[k]) for k in KEYS if np.any(truth[k])]
    tags = {batch_factor(factor, n) if residual < 1e-6 else None for factor, residual in fits}
    if len(tags) == 1 and None not in tags:
        what = {"grad_factor_n": "N times the true ones: the SUM over the batch, not the mean",
                "grad_factor_1_over_n": "1/N of the true ones: the mean taken twice"}[tags.pop()]
        return Verdict(True, ("explained_by_other_check",), f"for N={n} the gradients are {what}. That is "
                       "the bug 'mean of per-example gradients' charges; it is not charged twice here.")
    key, err = wrong[0]
    hint = ("even for a single example, so the bug is not in how the batch is summed or averaged: the "
            "gradients check names it" if n == 1 else
            "though the shapes are right; check sums and means over the batch axis for this N")
    return Verdict(False, ("batch_size_dependent",), f"dL/d{key} is wrong (relative error {err:.2e}) {hint}.")


# ---- sgd_step ------------------------------------------------------------------------------------
def sgd_matches(new: np.ndarray, x: np.ndarray, p: np.ndarray, g: np.ndarray, lr: float, rtol: float) -> bool:
    """``new`` equals ``x`` up to rounding in ``new``'s dtype. The scale is the size of the operands,
    |p| + lr*|g|, not of the result: where p and lr*g nearly cancel, a correct float32 update is off by
    float32 rounding of the operands, which is large relative to the small result."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(new - x) <= rtol * (np.abs(p) + lr * np.abs(g)) + 1e-14))


def sgd_key(key: str, new: np.ndarray, p: np.ndarray, g: np.ndarray, lr: float) -> Verdict:
    """The new ``key`` returned by sgd_step(params, grads, lr): exactly p - lr*g, else the likely bug."""
    if sgd_matches(new, p - lr * g, p, g, lr, dtype_tolerance(new.dtype, 1e-12, 1e-6)):
        return Verdict(True, (), f"{key} = p - lr*g")

    def close(x: np.ndarray) -> bool:
        return sgd_matches(new, x, p, g, lr, dtype_tolerance(new.dtype, 1e-10, 1e-5))

    if close(p + lr * g):
        return Verdict(False, ("sgd_ascends",), f"{key} moved UP the gradient (p + lr*g): gradient descent "
                       "subtracts, p - lr*g")
    if close(p):
        return Verdict(False, ("sgd_skips_key",), f"{key} was not updated at all: every parameter must take a step")
    if close(p - g):
        return Verdict(False, ("sgd_ignores_lr",), f"{key} moved by the full gradient: multiply it by learning_rate")
    if close(-lr * g) or close(lr * g):
        return Verdict(False, ("sgd_returns_step",), f"{key} holds only the step (lr*g), not the updated parameter "
                       "p - lr*g")
    if close(p - lr * lr * g) or close(p - g / lr):
        return Verdict(False, ("sgd_wrong_lr_use",), f"{key} uses the learning rate the wrong way (p - lr*g is the "
                       "rule)")
    return Verdict(False, ("sgd_wrong",), f"{key} is not p - lr*g")


def sgd_hidden_state(g1: dict, p2: dict, g2: dict, lr2: float, new2: dict) -> tuple[str, str]:
    """(bug id, sentence) for the hidden state behind a first call (grads ``g1``) that is right and a
    later one that is not: ``new2`` is what the second call, sgd_step(p2, g2, lr2), returned."""
    fits = []
    for key in new2:
        extra = (p2[key] - new2[key]) - lr2 * g2[key]   # what was subtracted beyond lr * g
        denom = float(np.sum(g1[key] * g1[key]))
        if denom == 0:
            continue
        mu = float(np.sum(extra * g1[key])) / denom
        fits.append((mu, gradcheck.relative_error(extra, mu * g1[key])))
    if fits and all(res < 1e-6 for _, res in fits) and all(abs(m) > 1e-9 for m, _ in fits):
        return "sgd_momentum", ("sgd_step remembers the previous call's gradient (momentum): the second call moved "
                                "the parameters by lr*g plus a multiple of the FIRST call's gradient. This "
                                "assignment's sgd_step is plain SGD, p - lr*g, depending only on its arguments")
    return "hidden_state", ("sgd_step gives a different result for the same arguments depending on earlier calls "
                            "(a step counter, a learning-rate schedule, stored values): it must depend only on "
                            "params, grads and learning_rate")


def sgd_returned(new, shapes: dict):
    """What an in-process sgd_step call returned, as :func:`sgd_calls` takes it: a sentence when it is
    not a dict, else {key: the validated array, or (bug id, sentence) when missing or malformed}."""
    if not isinstance(new, dict):
        return f"sgd_step returned {type(new).__name__}"
    out = {}
    for key in KEYS:
        if key not in new:
            out[key] = ("sgd_skips_key", f"the returned dict has no key {key!r} (keys: {list(new)})")
        else:
            problem = array_problem(f"the new {key}", new[key], shapes[key])
            out[key] = ("wrong_shape", problem) if problem else new[key]
    return out


def _call_wrong(p: dict, g: dict, lr: float, returned) -> tuple[list, set]:
    """([(bug id, sentence)] in key order, the keys updated exactly) for one call."""
    if isinstance(returned, str):
        return [("sgd_not_dict", returned + ": return a dict with the keys W, b, V, c")], set()
    wrong, right = [], set()
    for key in KEYS:
        got = returned[key]
        if isinstance(got, tuple):
            wrong.append(got)
            continue
        verdict = sgd_key(key, got, p[key], g[key], lr)
        if verdict.passed:
            right.add(key)
        else:
            wrong.append((verdict.diagnoses[0], verdict.message))
    return wrong, right


def sgd_calls(calls: list) -> tuple[Verdict, set]:
    """The grader's verdict on three sgd_step calls in a row, ``calls`` = [(p, g, lr, returned)] for
    (p1, g1, lr1), (p2, g2, lr2), (p1, g1, lr1) again (``returned``: see :func:`sgd_returned`): every
    key of the first call exactly p - lr*g, then the later calls too (else: the hidden state). Also the
    keys the first call updated exactly (the "gradients left unchanged" test credits only those)."""
    wrong, right = _call_wrong(*calls[0])
    if wrong:
        first = [wrong[0]] + [w for w in wrong[1:] if w[0] != wrong[0][0]]
        return Verdict(False, tuple(sorted({w[0] for w in wrong})), "; ".join(w[1] for w in first)), right
    later = [i for i, call in enumerate(calls[1:], 1) if _call_wrong(*call)[0]]
    if later:
        p2, g2, lr2, returned2 = calls[1]
        values2 = {k: v for k, v in returned2.items() if not isinstance(v, tuple)} if isinstance(returned2, dict) else {}
        tag, text = sgd_hidden_state(calls[0][1], p2, g2, lr2, values2)
        which = "second" if later[0] == 1 else "third (a repeat of the first)"
        return Verdict(False, (tag,), f"the first call is right, but of three calls in a row the {which} is not: "
                                      f"{text}."), right
    return Verdict(True, (), "every key is updated exactly as p - lr*g, on each of three calls in a row (lr = "
                   + ", ".join(f"{call[2]:.3f}" for call in calls) + ")."), right


__all__ = ["FLOAT32_FLOOR", "FLOAT_DTYPES", "FORWARD_BUGS", "KEYS", "PASS_FLOAT64", "Verdict", "array_problem",
           "batch_mean", "batch_size", "diagnose_gradient", "diagnose_probs", "dtype_tolerance", "grad_scale",
           "gradient", "gradient_error", "probs", "right_keys", "rows_independent", "scaled_error",
           "sgd_calls", "sgd_hidden_state", "sgd_key", "sgd_matches", "sgd_returned", "squeeze_to",
           "threshold"]
