"""Running one experiment family: train its variants and exact backprop, then plot and interpret them.

A family module (``feedback_alignment``, ``stale_weights``, ...) defines ``NAME``, ``TITLE``,
``QUESTION``, ``variants() -> list[Variant]`` and ``interpret(runs, baseline) -> str``, plus a ``run``
function with the common signature (see :func:`run_family`). The runner trains all families' variants
together (in parallel) and then calls :func:`finish` per family, exactly as ``run`` does for one.
The result type is in :mod:`.result`, the clauses built from numbers in :mod:`.words`.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from .report import plot_curves
from .result import ExperimentResult
from .training import BASELINE, Dataset, RunResult, Settings, make_dataset, settings_for, single_blas_thread, train_variant
from .words import sentence


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
