"""``backprop-lab experiments [--quick] --out DIR``: run every experiment, write report.html and results.csv.

All runs (exact backprop plus every family's variants) are independent, so they are spread over worker
processes (one BLAS thread each; default: two workers, or ``BACKPROP_LAB_JOBS``). Every run gets the
same seed: the variants start from the same weights and see the same minibatches as exact backprop.
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from ..blas import one_thread_for_children
from . import feedback_alignment, noise, random_hidden, rounding, stale_weights
from .base import finish
from .report import write_csv, write_html
from .result import ExperimentResult
from .training import (BASELINE, Dataset, RunResult, Settings, Variant, make_dataset, settings_for,
                       single_blas_thread, train_variant)
from .words import pct, signed

FAMILIES = (feedback_alignment, stale_weights, random_hidden, noise, rounding)
DEFAULT_SEED = 2026
JOBS_ENV = "BACKPROP_LAB_JOBS"


@dataclass
class Report:
    experiments: list[ExperimentResult]
    settings: Settings
    meta: dict
    out_dir: Path

    @property
    def html(self) -> Path:
        return self.out_dir / "report.html"

    @property
    def csv(self) -> Path:
        return self.out_dir / "results.csv"


def all_variants() -> list[Variant]:
    """Exact backprop first, then every family's variants in report order."""
    return [BASELINE] + [v for fam in FAMILIES for v in fam.variants()]


def baseline_sentence(baseline: RunResult, settings: Settings) -> str:
    last = baseline.epochs[-1] if baseline.epochs else settings.epochs
    best = min(baseline.valid_error) if baseline.valid_error else baseline.final_valid_error
    return (f"Exact backprop reached {pct(baseline.final_test_error)} test error "
            f"({pct(baseline.final_train_error)} training, {pct(baseline.final_valid_error)} validation; best "
            f"validation error along the way {pct(best)}) after {last:g} epochs in {baseline.seconds:.1f} s; "
            "every other number on this page is compared with it.")


# ---------------------------------------------------------------------------------------------
# Workers

_DATA: dict[tuple, Dataset] = {}


def _dataset(settings: Settings, data_seed: int) -> Dataset:
    key = (settings, data_seed)
    if key not in _DATA:
        from ..mnist import load_mnist
        _DATA.clear()
        _DATA[key] = make_dataset(load_mnist(fetch=False), settings, np.random.default_rng(data_seed))
    return _DATA[key]


def _run_one(variant: Variant, settings: Settings, data_seed: int, run_seed: int) -> RunResult:
    """One training run (in a worker process, or in this one when jobs == 1)."""
    with single_blas_thread():
        return train_variant(variant, _dataset(settings, data_seed), settings, np.random.default_rng(run_seed))


def default_jobs() -> int:
    env = os.environ.get(JOBS_ENV)
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def train_all(variants: list[Variant], settings: Settings, data_seed: int, run_seed: int, jobs: int,
              on_done: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Every variant's run, in the order given."""
    results: dict[int, RunResult] = {}
    if jobs <= 1:
        for i, v in enumerate(variants):
            results[i] = _run_one(v, settings, data_seed, run_seed)
            if on_done:
                on_done(results[i])
    else:
        import multiprocessing
        with one_thread_for_children(), ProcessPoolExecutor(max_workers=jobs,
                                                         mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, v, settings, data_seed, run_seed): i for i, v in enumerate(variants)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if on_done:
                    on_done(results[futures[fut]])
    return [results[i] for i in range(len(variants))]


# ---------------------------------------------------------------------------------------------
# The whole report

def run_all(out_dir: Path | str, quick: bool = False, rng: np.random.Generator | None = None,
            jobs: int | None = None, activation: str | None = None, progress: bool = True,
            settings: Settings | None = None) -> Report:
    """Run every experiment and write ``out_dir``/report.html, results.csv, results.json and the plots."""
    from ..mnist import load_mnist
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if activation is None:
        from ..config import load_config
        activation = load_config().activation
    settings = settings or settings_for(quick, activation)
    seed = DEFAULT_SEED
    if rng is None:
        rng = np.random.default_rng(seed)
    else:
        seed = "(generator passed by the caller)"
    data_rng, run_rng = rng.spawn(2)
    data_seed, run_seed = int(data_rng.integers(2**63)), int(run_rng.integers(2**63))
    jobs = jobs or default_jobs()
    load_mnist(fetch=True)  # fetch once here, before any worker looks for the cache
    variants = all_variants()
    started_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    with _Progress(progress, len(variants), settings) as prog:
        runs = train_all(variants, settings, data_seed, run_seed, jobs, on_done=prog.done)
    baseline = runs[0]
    experiments = []
    for fam in FAMILIES:
        mine = [r for r in runs[1:] if r.experiment == fam.NAME]
        experiments.append(finish(fam, mine, baseline, out_dir, settings))
    wall = time.perf_counter() - t0
    meta = {"seed": seed, "runs": len(runs), "wall_s": round(wall, 1), "jobs": jobs, "started": started_at,
            "mode": settings.mode, "baseline_sentence": baseline_sentence(baseline, settings)}
    write_csv(out_dir / "results.csv", experiments)
    (out_dir / "results.json").write_text(json.dumps({
        "settings": asdict(settings), "meta": meta,
        "experiments": [{"name": e.name, "title": e.title, "sentence": e.sentence,
                         "runs": [r.to_dict() for r in e.runs]} for e in experiments],
        "baseline": baseline.to_dict()}, indent=1))
    write_html(out_dir / "report.html", experiments, settings, meta)
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    return Report(experiments, settings, meta, out_dir)


class _Progress:
    """A rich progress bar on stderr with one line per finished run; silent when disabled."""

    def __init__(self, enabled: bool, total: int, settings: Settings) -> None:
        self.enabled, self.total, self.settings = enabled, total, settings
        self.p = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=Console(stderr=True))
            self.p.__enter__()
            self.p.console.print(f"[bold]experiments[/bold] ({self.settings.mode} mode): {self.settings.describe()}")
            self.task = self.p.add_task("training runs", total=self.total)
        return self

    def done(self, run: RunResult) -> None:
        if self.p is None:
            return
        status = " [red]diverged[/red]" if run.diverged else ""
        self.p.console.print(f"  {run.experiment} / {run.variant}: test error {pct(run.final_test_error)}"
                             f" ({run.seconds:.1f} s){status}")
        self.p.advance(self.task)

    def __exit__(self, *exc) -> None:
        if self.p is not None:
            self.p.__exit__(*exc)


def print_summary(report: Report, stream=None) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(file=stream or sys.stdout, width=130)
    table = Table(title=f"final test error ({report.settings.mode} mode)")
    for col, just in (("experiment", "left"), ("variant", "left"), ("test", "right"), ("vs exact", "right"),
                      ("seconds", "right")):
        table.add_column(col, justify=just)
    base = report.experiments[0].baseline
    table.add_row("baseline", "exact backprop", pct(base.final_test_error), "", f"{base.seconds:.1f}")
    for exp in report.experiments:
        for r in exp.runs:
            d = 100 * (r.final_test_error - base.final_test_error)
            table.add_row(exp.name, r.variant + (" (diverged)" if r.diverged else ""), pct(r.final_test_error),
                          signed(d), f"{r.seconds:.1f}")
    console.print(table)
    console.print(report.meta["baseline_sentence"])
    for exp in report.experiments:
        console.print(f"[bold]{exp.name}[/bold]: {exp.sentence}")
    console.print(f"{report.meta['runs']} runs in {report.meta['wall_s']:.1f} s with {report.meta['jobs']} worker(s)")


def cli_experiments(args) -> int:
    jobs = getattr(args, "jobs", None)
    report = run_all(Path(args.out), quick=bool(args.quick), jobs=jobs, activation=getattr(args, "activation", None))
    print_summary(report)
    print(f"wrote {report.html} and {report.csv}")
    return 0
