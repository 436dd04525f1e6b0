"""Check 'training': the grader owns the training run. Its loop trains with the student's functions and
HYPERPARAMS on the train split; the parent fixes the checkpoint schedule (step 0, the untrained network,
then every ``eval_every_epochs``), evaluates test error at those steps only (test labels never enter the
worker), charges the student the worker tree's CPU seconds, and stops at the target, at the budget, or
as soon as a run has plateaued far above every partial-credit level."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boundary import check_array
from ..results import CheckResult
from .common import Context, explain_failure, failure_tag, squeeze_to
from .spec import CheckSpec
from .training_rules import (FORGED_FACTOR, INIT_MIN_ERROR, INIT_ROWS, N_IN, N_OUT, PARTIAL_SCALE,
                             PLATEAU_ERROR, PLATEAU_SPREAD, PLATEAU_WINDOW, VALID_ROWS, WALL_FACTOR,
                             reference_step_seconds)

if TYPE_CHECKING:
    from ..config import CourseConfig

# its notebook prompt depends on the year: release/notebook.py
SPEC = CheckSpec("training", "Training on MNIST", ("MNIST test error within the time budget",), 20,
                 "training:run", ("init_params", "forward", "backward", "sgd_step"), needs_data=True,
                 readme="the grader's own SGD loop, with your functions and your `HYPERPARAMS`, on the 50,000 "
                        "training images; test error must reach the target within the time budget (partial "
                        "credit on a stated scale).",
                 order=50)
LABEL = SPEC.labels[0]

__all__ = ["PARTIAL_SCALE", "LABEL", "run", "schedule", "validate_hyperparams"]


def scale_text(target: float) -> str:
    parts = [f"< {target:.0%} within the budget: full points"]
    parts += [f"< {e:.0%}: {f:.0%}" for e, f in PARTIAL_SCALE]
    return "; ".join(parts) + "; otherwise 0"

def error_rate(ref, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, chunk: int = 2500) -> tuple[float, np.ndarray]:
    """Classification error of ``params`` through the REFERENCE forward, and the predictions (N,)."""
    preds = np.empty(X.shape[0], dtype=np.int64)
    p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    with np.errstate(all="ignore"):
        for start in range(0, X.shape[0], chunk):
            probs, _ = ref.forward(p64, np.asarray(X[start:start + chunk], dtype=np.float64))
            preds[start:start + chunk] = np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1)
    return float(np.mean(preds != y)), preds


def validate_hyperparams(hp: Any, config: CourseConfig, types: Any = None) -> tuple[dict[str, float] | None, str]:
    """The student's HYPERPARAMS within the course bounds, or why not (every value a finite number)."""
    if not isinstance(hp, dict):
        return None, "mlp.py has no HYPERPARAMS dict of numbers (keep the one from the handout)"
    types = types if isinstance(types, dict) else {}
    bounds = config.bounds
    out: dict[str, float] = {}
    for key in ("n_hidden", "learning_rate", "batch_size", "epochs"):
        lo, hi = getattr(bounds, key)
        if key in types and key not in hp:
            kind = types[key]
            name, text = (kind[0], kind[1]) if isinstance(kind, (list, tuple)) and len(kind) == 2 else ("?", "?")
            return None, f"HYPERPARAMS[{key!r}] is a {str(name)[:30]} ({str(text)[:40]}), not a number"
        if key not in hp:
            return None, f"HYPERPARAMS has no {key!r}; it needs n_hidden, learning_rate, batch_size and epochs"
        value = hp[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return None, f"HYPERPARAMS[{key!r}] = {str(value)[:40]} is not a finite number"
        if key != "learning_rate" and value != int(value):
            return None, f"HYPERPARAMS[{key!r}] = {value:g} must be a whole number"
        if not lo <= value <= hi:
            return None, f"HYPERPARAMS[{key!r}] = {value:g} is outside the allowed range [{lo:g}, {hi:g}]"
        out[key] = value
    return out, ""


def schedule(config: CourseConfig, hp: dict[str, float], n_train: int) -> tuple[list[int], int, int]:
    """(checkpoint steps, starting with 0; steps per epoch; epochs trained)."""
    steps_per_epoch = n_train // int(hp["batch_size"])
    epochs = min(int(hp["epochs"]), config.training.max_epochs)
    every = max(1, int(round(config.training.eval_every_epochs * steps_per_epoch)))
    steps = list(range(every, epochs * steps_per_epoch + 1, every))
    if not steps or steps[-1] != epochs * steps_per_epoch:
        steps.append(epochs * steps_per_epoch)
    return [0] + steps, steps_per_epoch, epochs




@dataclass
class Run:
    """What the parent saw of one training run."""
    target: float
    budget: float
    test_X: np.ndarray
    test_y: np.ndarray
    valid_X: np.ndarray
    valid_y: np.ndarray
    n_hidden: int
    steps_per_epoch: int
    curve: list[dict[str, float]] = field(default_factory=list)
    init_error: float | None = None
    reached_at: float | None = None
    best_error: float = 1.0
    problem: str = ""
    problem_tag: str = ""
    final_predictions: np.ndarray | None = None  # test predictions at the last checkpoint, (10000,)
    eval_seconds: float = 0.0
    last_step: int = 0
    last_used: float = 0.0
    init_used: float = 0.0           # worker CPU seconds when the step-0 checkpoint arrived
    ref_step_seconds: float = 0.0    # CPU seconds of one reference step at this batch size and width

    def forged(self, step: int, used: float) -> bool:
        """Fewer CPU seconds than any real loop needs for ``step`` steps: the stream was not trained.
        Counted from the step-0 checkpoint (``init_used``): whatever a stream does before it (decoding
        weights it brought along, say) is not a training step, so it cannot buy a forged stream the
        few hundredths of a second an early checkpoint needs. CPU time may be counted in clock ticks
        (10 ms): one tick of slack, but never more than half of what is needed, so an early checkpoint
        (a quarter epoch of a fast reference needs ~10 ms) still catches a stream that spent nothing;
        a real loop spends four times what is needed."""
        need = FORGED_FACTOR * step * self.ref_step_seconds
        return (used - self.init_used) + min(0.01, 0.5 * need) < need

    def params_from(self, arrays: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray] | None:
        """The checkpoint's params validated against the requested n_hidden BEFORE any evaluation."""
        shapes = {"W": (self.n_hidden, N_IN), "b": (self.n_hidden,), "V": (N_OUT, self.n_hidden), "c": (N_OUT,)}
        params = {}
        for key, shape in shapes.items():
            if key in arrays:
                arrays = {**arrays, key: squeeze_to(arrays[key], shape)}
            what = "from init_params" if step == 0 else "after training"
            checked = check_array(f"params[{key!r}] {what}", arrays, key, shape, allow_nonfinite=True)
            if not checked.ok:
                self.problem, self.problem_tag = checked.problem or "", "wrong_shape"
                return None
            if checked.nonfinite:
                self.problem = (f"params[{key!r}] became NaN/inf after {step} steps: training diverged "
                                "(learning rate too large, or an unstable softmax)")
                self.problem_tag = "diverged"
                return None
            params[key] = checked.value
        return params

    def plateaued(self) -> bool:
        """Far above every credit level and flat over the last checkpoints: nothing left to change."""
        errors = [c["test_error"] for c in self.curve[-PLATEAU_WINDOW:]]
        return (len(self.curve) >= PLATEAU_WINDOW and self.best_error > PLATEAU_ERROR
                and max(errors) - min(errors) < PLATEAU_SPREAD)

    def on_checkpoint(self, ref):
        def handle(index: int, step: int, arrays: dict[str, np.ndarray], used: float, meta: dict) -> bool:
            params = self.params_from(arrays, step)
            if params is None:
                return False
            started = time.perf_counter()
            if step == 0:  # trained or not: the first INIT_ROWS test images tell (chance is 90%)
                self.init_used = used
                self.init_error, _ = error_rate(ref, params, self.test_X[:INIT_ROWS], self.test_y[:INIT_ROWS])
                self.eval_seconds += time.perf_counter() - started
                return self.init_error >= INIT_MIN_ERROR
            test_err, predictions = error_rate(ref, params, self.test_X, self.test_y)
            valid_err, _ = error_rate(ref, params, self.valid_X[:VALID_ROWS], self.valid_y[:VALID_ROWS])
            self.eval_seconds += time.perf_counter() - started
            self.last_step, self.last_used = step, used
            self.curve.append({"epoch": round(step / self.steps_per_epoch, 4), "seconds": round(used, 3),
                               "test_error": test_err, "valid_error": valid_err})
            self.final_predictions = predictions
            self.best_error = min(self.best_error, test_err)
            if self.forged(step, used):
                self.problem, self.problem_tag = (
                    f"the training run reported {step} SGD steps {used - self.init_used:.2f} CPU seconds after "
                    f"its untrained checkpoint, under a quarter of what the reference needs "
                    f"({self.ref_step_seconds * 1e3:.2f} ms per step): the grader's training loop was replaced, "
                    "so this run does not count"), "forged_training"
                return False
            if test_err < self.target and used <= self.budget:
                self.reached_at = used
                return False
            if self.plateaued():
                return False
            return used <= self.budget
        return handle

    def curve_text(self, most: int = 8) -> str:
        points = self.curve if len(self.curve) <= most else self.curve[:: max(1, len(self.curve) // most)][:most - 1] + [self.curve[-1]]
        return ", ".join(f"{c['test_error']:.1%} after {c['epoch']:g} epochs" for c in points)


def run(ctx: Context, data, budget: float, budget_statement: str, seed: int | None = None) -> list[CheckResult]:
    """``data``: the parent's MNIST (autograder.mnist.MNIST); only the train split's paths reach the worker."""

    points = ctx.config.rubric["training"]
    tcfg = ctx.config.training
    loaded = ctx.session.ensure_started()
    if not loaded.ok:
        return [CheckResult("training", LABEL, 0.0, points, explain_failure("import", loaded), failure_tag(loaded))]
    hp, why = validate_hyperparams(loaded.meta.get("hyperparams"), ctx.config, loaded.meta.get("hyperparams_types"))
    if hp is None:
        return [CheckResult("training", LABEL, 0.0, points, f"not trained: {why}.", ["bad_hyperparameters"])]
    steps, steps_per_epoch, epochs = schedule(ctx.config, hp, data.train.X.shape[0])
    run_ = Run(tcfg.target_error, budget, data.test.X, data.test.y, data.valid.X, data.valid.y,
               int(hp["n_hidden"]), steps_per_epoch,
               ref_step_seconds=reference_step_seconds(ctx.ref, int(hp["batch_size"]), int(hp["n_hidden"]),
                                                       ctx.config.activation))
    train = ctx.session.train_split()   # readable by the worker's user, wherever the project lives
    train_X, train_y = train / "X.npy", train / "y.npy"
    args = {"train_X": str(train_X), "train_y": str(train_y), "n_hidden": int(hp["n_hidden"]),
            "learning_rate": float(hp["learning_rate"]), "batch_size": int(hp["batch_size"]),
            "seed": int(seed if seed is not None else ctx.config.seed("training"))}
    wall_cap = min(WALL_FACTOR * budget + 10.0, max(ctx.config.sandbox.student_wall_s, budget + 10.0))
    started = time.monotonic()
    reply = ctx.session.train(args, steps, run_.on_checkpoint(ctx.ref), budget, wall_cap)
    evidence: dict[str, Any] = {"curve": run_.curve, "budget_s": budget, "budget_unit": "CPU seconds",
                                "hyperparams": hp, "init_error": run_.init_error,
                                "wall_seconds": round(time.monotonic() - started, 3),
                                "eval_seconds": round(run_.eval_seconds, 3)}
    if run_.final_predictions is not None:
        preds = run_.final_predictions
        conf = np.zeros((N_OUT, N_OUT), dtype=np.int64)
        np.add.at(conf, (data.test.y, preds), 1)
        evidence.update(confusion=conf.tolist(), misclassified=np.flatnonzero(preds != data.test.y)[:36].tolist(),
                        predictions_of_misclassified=preds[preds != data.test.y][:36].tolist())
    if run_.reached_at is not None:
        last = run_.curve[-1]
        evidence["time_to_target_s"] = run_.reached_at
        return [CheckResult("training", LABEL, points, points,
                            f"test error {last['test_error']:.2%} < {tcfg.target_error:.0%} after "
                            f"{last['epoch']:.2f} epochs, {run_.reached_at:.1f} CPU seconds of training "
                            f"({budget_statement}).", [], evidence)]
    from .training_text import failure_text
    failure, tags = failure_text(ctx, run_, reply, hp, epochs, budget, wall_cap)
    frac = next((f for e, f in PARTIAL_SCALE if run_.best_error < e), 0.0) if run_.curve else 0.0
    if {"untrained_init", "forged_training"} & set(tags):
        frac = 0.0
    best = f" Best test error seen: {run_.best_error:.2%};" if run_.curve else ""
    return [CheckResult("training", LABEL, round(points * frac, 4), points,
                        f"{failure}.{best} partial credit: {scale_text(tcfg.target_error)}.", tags, evidence)]
