"""Check 'training': the grader's loop trains with the student's functions and HYPERPARAMS; the parent
evaluates test error at fixed points (test labels never enter the worker) and stops at the target."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..boundary import check_array
from ..config import CourseConfig
from ..results import CheckResult
from .common import Context, explain_failure, failure_tag

PARTIAL_SCALE = ((0.07, 0.6), (0.10, 0.4), (0.20, 0.2))  # (error below, fraction of the points)
N_IN, N_OUT = 784, 10

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

def validate_hyperparams(hp: Any, config: CourseConfig) -> tuple[dict[str, float] | None, str]:
    """The student's HYPERPARAMS within the course bounds, or why not."""
    if not isinstance(hp, dict):
        return None, "mlp.py has no HYPERPARAMS dict of numbers (keep the one from the handout)"
    bounds = config.bounds
    out: dict[str, float] = {}
    for key in ("n_hidden", "learning_rate", "batch_size", "epochs"):
        lo, hi = getattr(bounds, key)
        if key not in hp:
            return None, f"HYPERPARAMS has no {key!r}; it needs n_hidden, learning_rate, batch_size and epochs"
        value = hp[key]
        if key != "learning_rate" and value != int(value):
            return None, f"HYPERPARAMS[{key!r}] = {value:g} must be a whole number"
        if not lo <= value <= hi:
            return None, f"HYPERPARAMS[{key!r}] = {value:g} is outside the allowed range [{lo:g}, {hi:g}]"
        out[key] = value
    return out, ""

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
    reached_at: float | None = None
    best_error: float = 1.0
    problem: str = ""
    final_predictions: np.ndarray | None = None  # test predictions at the last checkpoint, (10000,)
    eval_seconds: float = 0.0

    def on_checkpoint(self, ref):
        def handle(k: int, step: Any, arrays: dict[str, np.ndarray], used: float, meta: dict) -> bool:
            shapes = {"W": (self.n_hidden, N_IN), "b": (self.n_hidden,), "V": (N_OUT, self.n_hidden), "c": (N_OUT,)}
            params = {}
            for key, shape in shapes.items():
                checked = check_array(f"params[{key!r}] after training", arrays, key, shape,
                                      allow_nonfinite=True)
                if not checked.ok:
                    self.problem = checked.problem
                    return False
                if checked.nonfinite:
                    self.problem = (f"training diverged: params[{key!r}] became NaN/inf after "
                                    f"{step} steps (learning rate too large, or an unstable softmax)")
                    return False
                params[key] = checked.value
            started = time.perf_counter()
            test_err, predictions = error_rate(ref, params, self.test_X, self.test_y)
            valid_err, _ = error_rate(ref, params, self.valid_X, self.valid_y)
            self.eval_seconds += time.perf_counter() - started
            epoch = (int(step) if isinstance(step, int) else 0) / self.steps_per_epoch
            self.curve.append({"epoch": round(epoch, 4), "seconds": round(used, 3),
                               "test_error": test_err, "valid_error": valid_err})
            self.final_predictions = predictions
            self.best_error = min(self.best_error, test_err)
            if test_err < self.target and used <= self.budget:
                self.reached_at = used
                return False
            return used <= self.budget
        return handle

def run(ctx: Context, data, budget: float, budget_statement: str, seed: int | None = None) -> list[CheckResult]:
    """``data``: the parent's MNIST (autograder.mnist.MNIST); only the train split's paths reach the worker."""

    points = ctx.config.rubric["training"]
    label = "MNIST test error within the time budget"
    tcfg = ctx.config.training
    loaded = ctx.session.ensure_started()
    if not loaded.ok:
        return [CheckResult("training", label, 0.0, points, explain_failure("import", loaded), failure_tag(loaded))]
    hp, why = validate_hyperparams(loaded.meta.get("hyperparams"), ctx.config)
    if hp is None:
        return [CheckResult("training", label, 0.0, points, f"not trained: {why}.", ["bad_hyperparameters"])]
    n_train = data.train.X.shape[0]
    batch = int(hp["batch_size"])
    steps_per_epoch = n_train // batch
    epochs = min(int(hp["epochs"]), tcfg.max_epochs)
    every = max(1, int(round(tcfg.eval_every_epochs * steps_per_epoch)))
    eval_steps = list(range(every, epochs * steps_per_epoch + 1, every))
    if not eval_steps or eval_steps[-1] != epochs * steps_per_epoch:
        eval_steps.append(epochs * steps_per_epoch)
    run_ = Run(tcfg.target_error, budget, data.test.X, data.test.y, data.valid.X, data.valid.y,
               int(hp["n_hidden"]), steps_per_epoch)
    train = ctx.session.train_split()   # readable by the worker's user, wherever the project lives
    train_X, train_y = train / "X.npy", train / "y.npy"
    args = {"train_X": str(train_X), "train_y": str(train_y), "n_hidden": int(hp["n_hidden"]),
            "learning_rate": float(hp["learning_rate"]), "batch_size": batch, "eval_steps": eval_steps,
            "seed": int(seed if seed is not None else ctx.config.seed("training"))}
    reply = ctx.session.train(args, run_.on_checkpoint(ctx.ref), budget)
    evidence: dict[str, Any] = {"curve": run_.curve, "budget_s": budget, "hyperparams": hp,
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
        return [CheckResult("training", label, points, points,
                            f"test error {last['test_error']:.2%} < {tcfg.target_error:.0%} after "
                            f"{last['epoch']:.2f} epochs, {run_.reached_at:.1f} s of training "
                            f"({budget_statement}).", [], evidence)]
    if not reply.ok:
        failure = explain_failure("training (init_params/forward/backward/sgd_step)", reply)
        if reply.kind == "timeout":
            tags, failure = ["too_slow"], (f"training used the whole budget of {budget:.0f} s before reaching "
                                           f"{tcfg.target_error:.0%} test error: vectorize over the batch (no "
                                           "Python loop over examples) and check the learning rate")
        else:
            tags = failure_tag(reply)
    elif run_.problem:
        failure, tags = run_.problem, ["diverged" if "diverged" in run_.problem else "wrong_shape"]
    elif run_.curve and run_.curve[-1]["seconds"] > budget:
        failure, tags = (f"the time budget of {budget:.0f} s ran out at test error {run_.curve[-1]['test_error']:.2%}: "
                         "your training is too slow (vectorize: no Python loop over examples)"), ["too_slow"]
    else:
        failure, tags = (f"after {epochs} epoch(s) the test error is still {run_.best_error:.2%} (target "
                         f"{tcfg.target_error:.0%}): check HYPERPARAMS (learning rate, epochs) and your "
                         "initialisation"), ["bad_hyperparameters" if run_.best_error < 0.5 else "not_learning"]
    frac = next((f for e, f in PARTIAL_SCALE if run_.best_error < e), 0.0) if run_.curve else 0.0
    return [CheckResult("training", label, round(points * frac, 4), points,
                        f"{failure}. Best test error seen: {run_.best_error:.2%}; partial credit: "
                        f"{scale_text(tcfg.target_error)}.", tags, evidence)]
