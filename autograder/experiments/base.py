"""What every experiment family shares: its result type, running it, and sentences built from numbers.

A family module (``feedback_alignment``, ``stale_weights``, ...) defines ``NAME``, ``TITLE``,
``QUESTION``, ``variants() -> list[Variant]`` and ``interpret(runs, baseline) -> str``, plus a ``run``
function with the common signature (see :func:`run_family`). The runner trains all families' variants
together (in parallel) and then calls :func:`finish` per family, exactly as ``run`` does for one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from .training import BASELINE, Dataset, RunResult, Settings, make_dataset, settings_for, single_blas_thread, train_variant

#: a test error at or above this is "did not learn" (chance is 90% on ten classes)
NO_LEARNING = 0.80
#: differences smaller than this many points of test error (rounded to 0.1) are "about the same"
SAME_POINTS = 0.25


@dataclass
class ExperimentResult:
    """One family's runs (its variants, in order), the baseline, its plot and its measured sentence."""
    name: str
    title: str
    question: str
    runs: list[RunResult]
    baseline: RunResult
    sentence: str
    plot: Path | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Numbers into words

def pct(x: float) -> str:
    """0.0612 -> '6.1%' (one decimal; two below 1%)."""
    v = 100 * x
    return f"{v:.2f}%" if 0 < v < 1 else f"{v:.1f}%"


def points(run: RunResult, baseline: RunResult) -> float:
    """Test error of ``run`` minus the baseline's, in percentage points."""
    return 100 * (run.final_test_error - baseline.final_test_error)


def signed(d: float) -> str:
    """+1.3 / -0.4 / +0.0 (never '-0.0')."""
    d = round(d, 1)
    return f"{d + 0.0:+.1f}"


def verdict(run: RunResult, baseline: RunResult) -> str:
    """How ``run`` did against exact backprop, in a clause with the measured numbers."""
    if run.diverged:
        return (f"diverged after {run.diverged_at_epoch:g} epochs (non-finite weights; "
                f"{pct(run.final_test_error)} test error with the last finite ones)")
    if run.final_test_error >= NO_LEARNING:
        return f"did not learn ({pct(run.final_test_error)} test error)"
    d = points(run, baseline)
    if abs(round(d, 1)) < SAME_POINTS:
        text = f"matched exact backprop ({pct(run.final_test_error)} test error, {signed(d)} points)"
    elif d > 0:
        text = f"reached {pct(run.final_test_error)} test error, {d:.1f} points worse than exact backprop"
    else:
        text = f"reached {pct(run.final_test_error)} test error, {-d:.1f} points better than exact backprop"
    return text + relapse(run)


def relapse(run: RunResult) -> str:
    """' (its validation error rose from 10.8% at epoch 1 to 46.5%)' when a run got clearly worse."""
    if not run.valid_error:
        return ""
    best = int(np.argmin(run.valid_error))
    lo, last = run.valid_error[best], run.valid_error[-1]
    if last - lo > 0.02 and last > 1.5 * lo:
        return (f" (its validation error rose from {pct(lo)} at epoch {run.epochs[best]:g} "
                f"to {pct(last)})")
    return ""


def baseline_clause(baseline: RunResult) -> str:
    return f"exact backprop: {pct(baseline.final_test_error)}"


def join(clauses: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    clauses = [c for c in clauses if c]
    if len(clauses) <= 1:
        return "".join(clauses)
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# ---------------------------------------------------------------------------------------------
# Running one family

def by_name(runs: list[RunResult]) -> dict[str, RunResult]:
    return {r.variant: r for r in runs}


def finish(module: ModuleType, runs: list[RunResult], baseline: RunResult, out_dir: Path | None,
           settings: Settings) -> ExperimentResult:
    """Plot and interpret one family's finished runs (in the order of ``module.variants()``)."""
    order = [v.name for v in module.variants()]
    named = by_name(runs)
    missing = [n for n in order if n not in named]
    if missing:
        raise ValueError(f"{module.NAME}: no result for {', '.join(missing)}")
    ordered = [named[n] for n in order]
    text = sentence(module.interpret(named, baseline))
    plot = None
    if out_dir is not None:
        from .report import plot_curves
        plot = plot_curves(Path(out_dir) / f"{module.NAME}.png", module.TITLE, ordered, baseline, settings,
                           getattr(module, "GROUP_SIZE", 1))
    return ExperimentResult(module.NAME, module.TITLE, module.QUESTION, ordered, baseline, text, plot)


def run_family(module: ModuleType, rng: np.random.Generator, quick: bool = False, out_dir: Path | str | None = None,
               data: Dataset | None = None, settings: Settings | None = None, activation: str = "relu",
               baseline: RunResult | None = None) -> ExperimentResult:
    """Train ``module``'s variants (and exact backprop, unless ``baseline`` is given) one after another.

    ``rng`` seeds everything: the data subset (quick mode), then one seed shared by every run of the
    family, so all variants start from the same weights and see the same minibatches.
    """
    settings = settings or settings_for(quick, activation)
    data_rng, run_rng = rng.spawn(2)
    if data is None:
        from ..mnist import load_mnist
        data = make_dataset(load_mnist(fetch=True), settings, data_rng)
    run_seed = int(run_rng.integers(2**63))
    with single_blas_thread():
        if baseline is None:
            baseline = train_variant(BASELINE, data, settings, np.random.default_rng(run_seed))
        runs = [train_variant(v, data, settings, np.random.default_rng(run_seed)) for v in module.variants()]
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return finish(module, runs, baseline, Path(out_dir) if out_dir is not None else None, settings)
