#!/usr/bin/env python3
"""Three graders side by side on one class: `backprop-lab batch` vs `nbgrader autograde` vs `otter run` looped.

Run from the project root:  python bench/bench_tools.py [--students 10] [--jobs 1]

The class (default 10 students) alternates correct variants of tests/zoo (the reference, column-major,
float32, einsum, logsumexp softmax) with mutants of autograder/mutants.py (a sign flip, an unsummed
bias, a naive softmax, SGD ascending, gradients divided by N twice), all relu. Every grader trains on
the real MNIST cache: the backprop-lab grader in its sandboxed worker, the otter and nbgrader versions
with bplab_training.py in their kernels (same seed, schedule, target and partial credit). Same machine,
same run, one BLAS thread everywhere (``OPENBLAS_NUM_THREADS=1``, as the grader's worker), ``--jobs 1``
for batch by default (nbgrader and the otter loop grade one notebook at a time).

Before the clock: the otter and nbgrader versions are built from course.toml (``build_otter`` without
its self-test, ``build_nbgrader``), the training budget is calibrated (cached), and every submission is
written: ``<student>.py`` for batch, the otter student notebook and the nbgrader released notebook filled
in with the same source (``submission_notebook``).

Prints wall seconds per tool, per student (wall / N, and the slowest otter run), each tool's ratio to
`backprop-lab batch` measured in this run, and every student's total in each grader (they must agree).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # tests/zoo: the correct variants

ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
CORRECT = ("reference", "column_major", "float32", "einsum", "logsumexp_softmax")
MUTANTS = ("grad_sign_flip", "bias_not_summed", "naive_softmax", "sgd_ascends", "grad_factor_1_over_n")
NOTEBOOK = "backprop_lab.ipynb"


def class_sources(n: int) -> dict[str, str]:
    """``n`` students: correct variants and mutants, alternating."""
    from zoo import sources as zoo

    from autograder.mutants import mutant_sources
    correct = {"reference": zoo.ref("relu"), "column_major": zoo.column_major(), "float32": zoo.float32(),
               "einsum": zoo.einsum(), "logsumexp_softmax": zoo.logsumexp_softmax()}
    mutants = mutant_sources("relu")
    order = [x for pair in zip(CORRECT, MUTANTS) for x in pair]
    return {f"s{i:02d}_{name}": (correct.get(name) or mutants[name]) for i, name in enumerate(order[:n])}


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - started, proc


def check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        sys.exit(f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=10, help="students in the class (default 10, at most 10)")
    ap.add_argument("--jobs", type=int, default=1, help="backprop-lab batch --jobs (default 1)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folder here (default: a temporary one)")
    args = ap.parse_args()
    if not 1 <= args.students <= len(CORRECT) + len(MUTANTS):
        ap.error(f"--students must be between 1 and {len(CORRECT) + len(MUTANTS)}")

    from autograder.config import load_config
    from autograder.grade import prepare
    from autograder.mnist import mnist_dir
    from autograder.release.expected import build_tests
    from autograder.release.nbgrader import assignment_id, build_nbgrader, nbgrader_command, scores_from_gradebook
    from autograder.release.otter import (build_otter, otter_command, results_by_question, submission_notebook)

    config = load_config(activation="relu")
    env = {**os.environ, **ONE_THREAD, "BPLAB_MNIST": str(mnist_dir()),
           "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-tools-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    print("setting up (not timed): MNIST, calibration, otter and nbgrader versions, submissions", flush=True)
    budget = prepare(config).budget_statement
    tests = build_tests(config)
    build_otter(config, tests, work / "otter", self_test=False)
    aid = assignment_id(config)
    build_nbgrader(config, tests, work / "nbgrader")
    sources = class_sources(args.students)
    (work / "batch-in").mkdir()
    for name, source in sources.items():
        (work / "batch-in" / f"{name}.py").write_text(source, encoding="utf-8")
        folder = work / "otter-runs" / name
        (folder / "out").mkdir(parents=True)
        submission_notebook(work / "otter" / "dist" / "student" / NOTEBOOK, source, folder / NOTEBOOK)
        submitted = work / "nbgrader" / "submitted" / name / aid
        submitted.mkdir(parents=True)
        submission_notebook(work / "nbgrader" / "release" / aid / NOTEBOOK, source, submitted / NOTEBOOK)
    lab = [sys.executable, "-m", "autograder.cli"]  # this checkout's grader (PYTHONPATH below)
    gen = subprocess.run(nbgrader_command() + ["generate_assignment", aid, "--force"], cwd=work / "nbgrader",
                         env=env, capture_output=True, text=True)  # the build drops its gradebook
    check(gen, "nbgrader generate_assignment")
    print(f"{budget}\nclass: {', '.join(sources)}\n", flush=True)

    walls, per_student = {}, {}
    print(f"backprop-lab batch --jobs {args.jobs} ...", flush=True)
    walls["batch"], proc = timed(lab + ["batch", str(work / "batch-in"), "--out", str(work / "batch-out"),
                                        "--jobs", str(args.jobs)], work, env)
    check(proc, "backprop-lab batch")
    with (work / "batch-out" / "gradebook.csv").open(newline="", encoding="utf-8-sig") as f:  # it has a BOM
        batch_totals = {r["student"]: float(r["total"]) for r in csv.DictReader(f)}

    print("nbgrader autograde ...", flush=True)
    walls["nbgrader"], proc = timed(nbgrader_command() + ["autograde", aid], work / "nbgrader", env)
    check(proc, "nbgrader autograde")
    nbgrader_totals = {n: round(sum(scores_from_gradebook(work / "nbgrader", aid, n).values()), 4) for n in sources}

    print("otter run, one student at a time ...", flush=True)
    otter_totals, otter_each = {}, []
    started = time.perf_counter()
    for name in sources:
        folder = work / "otter-runs" / name
        seconds, proc = timed(otter_command() + ["run", "-a", str(work / "otter" / "autograder.zip"), "-o", "out",
                                                 NOTEBOOK], folder, env)
        check(proc, f"otter run ({name})")
        otter_each.append(seconds)
        otter_totals[name] = round(sum(results_by_question(folder / "out" / "results.json").values()), 4)
    walls["otter"] = time.perf_counter() - started

    n = len(sources)
    print(f"\n{'tool':<34} {'wall s':>8} {'s/student':>10} {'x batch':>8}")
    labels = {"batch": f"backprop-lab batch --jobs {args.jobs}", "nbgrader": "nbgrader autograde",
              "otter": "otter run (looped)"}
    for tool in ("batch", "nbgrader", "otter"):
        per_student[tool] = walls[tool] / n
        print(f"{labels[tool]:<34} {walls[tool]:>8.1f} {per_student[tool]:>10.2f} {walls[tool] / walls['batch']:>8.2f}")
    print(f"otter run per student: min {min(otter_each):.1f} s, max {max(otter_each):.1f} s")

    print(f"\n{'student':<28} {'batch':>7} {'nbgrader':>9} {'otter':>7}")
    disagree = 0
    for name in sources:
        row = (batch_totals.get(name, float("nan")), nbgrader_totals[name], otter_totals[name])
        same = max(row) - min(row) < 1e-6
        disagree += not same
        print(f"{name:<28} {row[0]:>7g} {row[1]:>9g} {row[2]:>7g}{'' if same else '   <- differ'}")
    print(f"\n{n - disagree}/{n} students scored the same in the three graders; "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
