"""A release's expected values: the year's cases run through the reference once, stored as plain arrays.

The otter-grader and nbgrader versions grade with :mod:`autograder.release.nbchecks` (shipped as
``bplab_checks.py``) against these values, so they need no solution code. Every test here mirrors one
test of the backprop-lab grader: the same cases (from the grader's own case generators in
``autograder/checks/*``), the same judges (``autograder/judges.py``, shipped as ``bplab_judges.py``)
and the same points, so the graders agree on a submission. The file is ``expected.npz``, written and read with
``allow_pickle=False``; its keys are ``<test id>/<array name>``.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from ..checks.cases import hidden_cases, make_case, public_toy
from ..checks.forward import large_logit_case
from ..checks.gradients import gradient_cases
from ..checks.judge_data import many, public_data, sgd_data
from ..checks.minibatch import cases as minibatch_cases
from ..checks.minibatch import perturbed
from ..checks.registry import LABELS, split_points
from ..checks.sgd_step import cases as sgd_cases
from ..checks.training import PARTIAL_SCALE
from ..checks.training_rules import INIT_MIN_ERROR, INIT_ROWS, PLATEAU_ERROR, PLATEAU_SPREAD, PLATEAU_WINDOW
from ..config import CourseConfig
from ..reference import load_reference
from . import nbchecks, nbtraining

#: the student's names the training test needs (``bplab_checks.training_reaches``)
TRAINING_ARGS = ("init_params", "forward", "backward", "sgd_step", "HYPERPARAMS")
#: CPU seconds past the budget after which the grader stops its worker (``TrainingStream.train``'s grace)
BUDGET_GRACE_S = 3.0


@dataclass(frozen=True)
class ReleaseTest:
    """One test of the otter/nbgrader versions: ``bplab_checks.<function>(*args, DATA, *extra)``.

    ``args`` name the student's functions the test needs (otter fills them from the notebook's
    globals); ``data`` holds every array it compares against; ``hidden`` tests carry hidden cases.
    """
    check_id: str
    label: str
    points: float
    hidden: bool
    function: str
    args: tuple[str, ...]
    data: dict[str, np.ndarray] = field(repr=False)
    extra: tuple = ()

    @property
    def test_id(self) -> str:
        return f"{self.check_id}__{re.sub(r'[^a-z0-9]+', '_', self.label.lower()).strip('_')}"

    def call(self, module: str, data_expr: str) -> str:
        """The Python call a test cell makes, e.g. ``bplab_checks.forward_matches(forward, DATA)``."""
        extra = "".join(f", {value!r}" for value in self.extra)
        return f"{module}.{self.function}({', '.join(self.args)}, {data_expr}{extra})"


def _forward_tests(config: CourseConfig, ref: ModuleType) -> list[ReleaseTest]:
    labels = LABELS["forward"]
    pts = split_points(config.rubric["forward"], labels)
    groups = [[public_toy(config.activation)], hidden_cases(config, "forward"), [large_logit_case(config)]]
    return [ReleaseTest("forward", label, p, hidden=i > 0, function="forward_matches", args=("forward",),
                        data=many(group, ref, config, forward=True))
            for i, (label, p, group) in enumerate(zip(labels, pts, groups))]


def _gradient_tests(config: CourseConfig, ref: ModuleType) -> list[ReleaseTest]:
    labels = LABELS["gradients"]
    pts = split_points(config.rubric["gradients"], labels)
    data = many(gradient_cases(config), ref, config, gradients=True)
    return [ReleaseTest("gradients", key, p, True, "gradient_matches", ("forward", "backward"), data, (key,))
            for key, p in zip(labels, pts)]


def _minibatch_tests(config: CourseConfig, ref: ModuleType) -> list[ReleaseTest]:
    labels = LABELS["minibatch"]
    pts = split_points(config.rubric["minibatch"], labels)
    batch, sizes = minibatch_cases(config)  # the grader's own draws
    rows = many([batch], ref, config, forward=True) | {"case0.X2": perturbed(ref, batch, config.seed("minibatch-rows"))}
    fb = ("forward", "backward")
    return [
        ReleaseTest("minibatch", labels[0], pts[0], True, "batch_is_mean", fb,
                    many([batch], ref, config, gradients=True, fd=False, per_example=True, variants=False)),
        ReleaseTest("minibatch", labels[1], pts[1], True, "rows_independent", ("forward",), rows),
        ReleaseTest("minibatch", labels[2], pts[2], True, "sizes_match", fb,
                    many(sizes, ref, config, gradients=True, fd=False, variants=False)),
        ReleaseTest("minibatch", labels[3], pts[3], True, "inputs_unchanged", fb,
                    many([public_toy(config.activation), batch] + sizes, ref, config, forward=True, gradients=True,
                         fd=False, variants=False)),
    ]


def _sgd_arrays(calls: list[tuple[dict, dict, float]]) -> dict[str, np.ndarray]:
    """``case0.p.<K> case0.g.<K> case0.lr`` (and ``p2 g2 lr2``): the calls ``bplab_checks.sgd_exact`` makes."""
    out: dict[str, np.ndarray] = {}
    for (params, grads, lr), suffix in zip(calls, ("", "2")):
        out |= {f"case0.{k}": v for k, v in sgd_data(params, grads, lr, suffix).items()}
    return out


def _sgd_tests(config: CourseConfig) -> list[ReleaseTest]:
    labels = LABELS["sgd_step"]
    pts = split_points(config.rubric["sgd_step"], labels)
    data = _sgd_arrays(sgd_cases(config))  # the grader's own draws
    return [ReleaseTest("sgd_step", labels[0], pts[0], True, "sgd_exact", ("sgd_step",), data),
            ReleaseTest("sgd_step", labels[1], pts[1], True, "sgd_keeps_grads", ("sgd_step",), data)]


def training_steps(config: CourseConfig) -> list[tuple[float, float]]:
    """(error threshold, points) per training test: the grader's partial-credit scale as increments."""
    total = config.rubric["training"]
    scale = sorted(PARTIAL_SCALE, key=lambda ef: -ef[0]) + [(config.training.target_error, 1.0)]
    steps, before = [], 0.0
    for error, fraction in scale:
        steps.append((error, round(total * (fraction - before), 4)))
        before = fraction
    return steps


def notebook_budget(config: CourseConfig) -> float:
    """The training budget the otter/nbgrader test states, in CPU seconds: the grader's rule
    ``max(floor, factor x the reference's time to target)`` with the reference's time calibrated on
    this machine when the grader has measured it (its calibration cache, any isolation level), else the
    floor (the grader's budget is never below it)."""
    import json
    from ..calibration import _machine_key, calibration_file
    from ..config import ISOLATION_LEVELS
    try:
        table = json.loads(calibration_file().read_text())
    except (OSError, ValueError):
        table = {}
    times = [table[k] for k in (_machine_key(config.activation, level) for level in ISOLATION_LEVELS)
             if isinstance(table.get(k), (int, float)) and table[k] > 0]
    t = config.training
    return float(max(t.budget_floor_s, t.budget_factor * max(times))) if times else float(t.budget_floor_s)


def training_spec(config: CourseConfig, seed: int, split: str, budget: float | None = None) -> dict[str, np.ndarray]:
    """What ``bplab_training.train`` needs to run the grader's training check: the seed, the split it
    is evaluated on ("test" for the graded tests, "valid" for the public self-check), the target, the
    schedule, the budget, the HYPERPARAMS bounds and the grader's init and plateau rules."""
    t, b = config.training, config.bounds
    spec = {"seed": seed, "split": split, "activation": config.activation, "target": t.target_error,
            "eval_every_epochs": t.eval_every_epochs, "max_epochs": t.max_epochs,
            "budget_s": notebook_budget(config) if budget is None else budget, "grace_s": BUDGET_GRACE_S,
            "bounds": np.array([b.n_hidden, b.learning_rate, b.batch_size, b.epochs], dtype=np.float64),
            "init_rows": INIT_ROWS, "init_min_error": INIT_MIN_ERROR,
            "plateau": np.array([PLATEAU_ERROR, PLATEAU_WINDOW, PLATEAU_SPREAD], dtype=np.float64)}
    return {k: np.asarray(v) for k, v in spec.items()}


def _training_tests(config: CourseConfig, budget: float | None = None) -> list[ReleaseTest]:
    """One test per step of the grader's scale, all sharing one MNIST run with the grader's seed."""
    data = training_spec(config, config.seed("training"), "test", budget)
    steps = training_steps(config)
    return [ReleaseTest("training", (f"MNIST test error below {error:.0%} within the budget" if i == len(steps) - 1
                                     else f"MNIST test error below {error:.0%}"), p, True,
                        "training_reaches", TRAINING_ARGS, data, (error, i == len(steps) - 1))
            for i, (error, p) in enumerate(steps)]


def _extension_tests(config: CourseConfig, ref: ModuleType) -> dict[str, list[ReleaseTest]]:
    """One test per test of ``autograder/checks/extension_*.py`` for each enabled extension, drawn from the
    same seeds in the same order, with the same points (``extension_points``, split evenly)."""
    from ..checks.extension_dropout import DROPOUT_DRAWS, DROPOUT_RATE
    from ..checks.extension_early_stopping import curves, expected_early_stopping
    from ..checks.registry import enabled_extensions
    out: dict[str, list[ReleaseTest]] = {}
    enabled = enabled_extensions(config)
    points = {k: split_points(float(config.extension_points[k]), LABELS[k]) for k in enabled}
    if "l2" in enabled:
        rng = np.random.default_rng(config.seed("extension_l2"))
        case = make_case("l2 case", rng, int(rng.integers(4, 9)), int(rng.integers(3, 7)), int(rng.integers(2, 5)),
                         int(rng.integers(3, 7)), config.activation)
        wd = float(rng.uniform(0.2, 0.6))
        grads = ref.backward(case.params, ref.forward(case.params, case.X)[1], case.Y)
        data = {f"p.{k}": v for k, v in case.params.items()} | {f"g.{k}": np.asarray(v) for k, v in grads.items()}
        data |= {f"e.{k}": np.asarray(grads[k]) + (wd * case.params[k] if k in ("W", "V") else 0.0) for k in grads}
        data |= {"weight_decay": np.asarray(wd), "expected": np.asarray(
            0.5 * wd * float(np.sum(case.params["W"] ** 2) + np.sum(case.params["V"] ** 2)))}
        labels = LABELS["l2"]
        out["l2"] = [ReleaseTest("l2", labels[0], points["l2"][0], True, "l2_value", ("l2_penalty",), data),
                     ReleaseTest("l2", labels[1], points["l2"][1], True, "l2_grads", ("l2_penalty_grads",), data)]
    if "early_stopping" in enabled:
        cases = curves(np.random.default_rng(config.seed("extension_early_stopping")))
        data = {"count": np.asarray(len(cases))}
        for i, (curve, patience) in enumerate(cases):
            data |= {f"curve{i}": np.asarray(curve), f"patience{i}": np.asarray(patience),
                     f"expected{i}": np.asarray(expected_early_stopping(curve, patience))}
        labels = LABELS["early_stopping"]
        out["early_stopping"] = [ReleaseTest("early_stopping", label, p, True, "early_stopping_epoch",
                                             ("early_stopping",), data, (i,))
                                 for i, (label, p) in enumerate(zip(labels, points["early_stopping"]))]
    if "dropout" in enabled:
        rng = np.random.default_rng(config.seed("extension_dropout"))
        h = rng.uniform(0.1, 2.0, size=(int(rng.integers(4, 9)), int(rng.integers(10, 26))))
        seed = int(rng.integers(2**31))
        dh = rng.standard_normal(h.shape)
        mask = (rng.random(h.shape) >= DROPOUT_RATE).astype(np.float64)
        rate = np.asarray(DROPOUT_RATE)
        labels = LABELS["dropout"]
        out["dropout"] = [
            ReleaseTest("dropout", labels[0], points["dropout"][0], True, "dropout_forward_ok", ("dropout_forward",),
                        {"h": h, "rate": rate, "seed": np.asarray(seed), "draws": np.asarray(DROPOUT_DRAWS)}),
            ReleaseTest("dropout", labels[1], points["dropout"][1], True, "dropout_backward_ok",
                        ("dropout_backward",), {"dh": dh, "mask": mask, "rate": rate})]
    return out


SELF_CHECK = "public self-check (0 points)"


def _self_checks(config: CourseConfig, ref: ModuleType, budget: float | None = None) -> dict[str, ReleaseTest]:
    """0-point public tests on public data, so that students' ``otter check`` covers every question:
    the same public cases and expected values as the handout's self-tests (judge_data.public_data);
    the training self-check trains on MNIST and is judged on the validation split."""
    public = public_data(ref, config)
    data = {f"case0.{k[4:]}": v for k, v in public.items() if k.startswith("toy.")}
    sgd = {f"case0.{k[4:]}": v for k, v in public.items() if k.startswith("sgd.")}
    spec = training_spec(config, 20242, "valid", budget)
    fb = ("forward", "backward")
    return {
        "gradients": ReleaseTest("gradients", SELF_CHECK, 0.0, False, "gradients_match_all", fb, data),
        "minibatch": ReleaseTest("minibatch", SELF_CHECK, 0.0, False, "batch_is_mean", fb, data),
        "sgd_step": ReleaseTest("sgd_step", SELF_CHECK, 0.0, False, "sgd_exact", ("sgd_step",), sgd),
        "training": ReleaseTest("training", SELF_CHECK + ": MNIST validation error", 0.0, False,
                                "training_reaches", TRAINING_ARGS, spec, (config.training.target_error, True)),
    }


def build_tests(config: CourseConfig, ref: ModuleType | None = None, budget: float | None = None) -> list[ReleaseTest]:
    """Every otter/nbgrader test of the release, in rubric order, with its expected values.

    Per check: its public 0-point self-check first (forward's public test is the graded toy case),
    then the tests that mirror the grader's, with the grader's points.
    """
    ref = ref or load_reference(config.activation)
    public = _self_checks(config, ref, budget)
    groups = {"forward": _forward_tests(config, ref), "gradients": _gradient_tests(config, ref),
              "minibatch": _minibatch_tests(config, ref), "sgd_step": _sgd_tests(config),
              "training": _training_tests(config, budget)} | _extension_tests(config, ref)
    return [t for check, tests in groups.items() for t in ([public[check]] if check in public else []) + tests]


def run_tests(tests: list[ReleaseTest], namespace: dict | ModuleType,
              with_training: bool = True) -> list[tuple[ReleaseTest, float, str]]:
    """Run the tests in-process against the functions in ``namespace``: (test, score, failure message).

    Only for trusted code (the reference, the skeleton, our own mutants): it runs in this process.
    The training tests train on the grader's MNIST cache (``BPLAB_MNIST`` when set); without
    ``with_training`` they are left out of the results.
    """
    import os
    from ..mnist import mnist_dir
    names = namespace if isinstance(namespace, dict) else vars(namespace)
    results = []
    before = os.environ.get(nbtraining.MNIST_ENV)
    if not before:
        os.environ[nbtraining.MNIST_ENV] = str(mnist_dir())
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            for test in tests:
                if test.check_id == "training" and not with_training:
                    continue
                fn = getattr(nbchecks, test.function)
                try:
                    fn(*(names.get(a) for a in test.args), test.data, *test.extra)
                    results.append((test, test.points, ""))
                except AssertionError as exc:
                    results.append((test, 0.0, str(exc)))
                except Exception as exc:  # noqa: BLE001 - in otter/nbgrader a test cell that raises fails that test
                    results.append((test, 0.0, f"the test raised {type(exc).__name__}: {exc}"))
    finally:
        if not before:
            os.environ.pop(nbtraining.MNIST_ENV, None)
    return results


def by_check(results: list[tuple[ReleaseTest, float, str]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for test, score, _ in results:
        totals[test.check_id] = round(totals.get(test.check_id, 0.0) + score, 4)
    return totals


def to_arrays(tests: list[ReleaseTest], config: CourseConfig) -> dict[str, np.ndarray]:
    """The flat ``{"<test id>/<name>": array}`` of ``expected.npz``, with ``meta/*`` describing the year."""
    arrays = {"meta/year": np.asarray(config.year), "meta/activation": np.asarray(config.activation)}
    for test in tests:
        arrays[f"{test.test_id}/meta.points"] = np.asarray(test.points)
        arrays.update({f"{test.test_id}/{k}": v for k, v in test.data.items()})
    return arrays


def save_hidden(path: Path, tests: list[ReleaseTest]) -> None:
    """The hidden tests' arrays (``<test id>/<name>``) that ``bplab_checks.hidden`` reads at grading time."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{t.test_id}/{k}": v for t in tests if t.hidden for k, v in t.data.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())


def save_expected(path: Path, tests: list[ReleaseTest], config: CourseConfig) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **to_arrays(tests, config))
    Path(path).write_bytes(buf.getvalue())


def load_expected(path: Path) -> dict[str, np.ndarray]:
    """``expected.npz`` as a dict (``allow_pickle=False``: plain arrays only)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
