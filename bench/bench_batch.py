#!/usr/bin/env python3
"""Batch-grading benchmark: N correct submissions graded with --jobs 1 and --jobs J.

Run from the project root:  python bench/bench_batch.py [--n 200] [--serial-n 200] [--jobs 2]

The class is N copies of the reference, each with a trivial difference (a comment), so every
submission hashes differently and nothing is skipped. Each run grades into a fresh results folder
with the full pipeline (sandboxed worker, five checks incl. MNIST training, feedback.html with
figures, results.json, .state.json), exactly as `backprop-lab batch` does. The calibration of the
training budget is done (and cached) before the clock starts.

Prints: wall time, per-student time (wall / N and the mean of the per-student grading times),
the speed-up of J jobs over 1 job and its ratio to linear, and peak memory (VmHWM) of each pool
worker and of the largest sandboxed worker it started. With --serial-n < N, the 1-job time is
measured on that subset and extrapolated linearly to N (and the output says so).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from autograder.batch.runner import run_batch  # noqa: E402
from autograder.config import load_config  # noqa: E402
from autograder.grade import prepare  # noqa: E402
from autograder.reference import reference_source  # noqa: E402

TARGET_WALL_S = 180.0          # 200 students in <= 3 min on 2 cores
TARGET_EFFICIENCY = 0.8        # speed-up >= 0.8 x linear


def make_class(folder: Path, n: int, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"student{i:03d}.py").write_text(f"# submission of student {i:03d}\n{source}")


def run(folder: Path, jobs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-batch-out-") as out:
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        outcome = run_batch(folder, out, jobs=jobs, progress="none", stream=open(os.devnull, "w"))
        wall = time.perf_counter() - started
        load = (load0, os.getloadavg()[0])
        bad = [r for r in outcome.rows if r.total != 100]
        for r in bad[:1]:
            import json
            data = json.loads((Path(out) / r.student / "results.json").read_text())
            failed = [t for t in data["tests"] if t["status"] != "passed"]
            print(f"  not full marks: {r.student} {r.total} {r.status}: "
                  f"{failed[0]['name'] + ': ' + failed[0]['output'][:300] if failed else ''}", file=sys.stderr)
    graded = outcome.graded
    per = [g["seconds"] for g in graded]
    cpu: dict = {}
    for g in graded:
        cpu[g.get("pid")] = max(cpu.get(g.get("pid"), 0.0), g.get("worker_cpu_s", 0.0))
    workers = {}
    for g in graded:
        pid = g.get("pid")
        workers[pid] = (max(workers.get(pid, (0, 0))[0], g.get("worker_peak_rss_kb", 0)),
                        max(workers.get(pid, (0, 0))[1], g.get("sandbox_peak_rss_kb", 0)))
    return {"n": len(graded), "jobs": jobs, "wall": wall, "cpu": sum(cpu.values()), "load": load, "per_student_wall": wall / max(len(graded), 1),
            "mean_grade_s": statistics.fmean(per) if per else 0.0, "workers": workers, "not_full": len(bad)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="students in the class (default 200)")
    ap.add_argument("--serial-n", type=int, default=None,
                    help="students graded with --jobs 1 (default: all N; fewer = extrapolated)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel workers to compare with 1 (default 2)")
    args = ap.parse_args()
    config = load_config()
    serial_n = min(args.serial_n or args.n, args.n)
    print(f"backprop-lab batch benchmark: {args.n} correct submissions, activation {config.activation}, "
          f"{os.cpu_count()} CPU cores")
    prepare(config, progress=lambda m: print(m, file=sys.stderr))  # calibration, cached, off the clock
    source = reference_source(config.activation)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        full, subset = Path(tmp) / "class", Path(tmp) / "subset"
        make_class(full, args.n, source)
        make_class(subset, serial_n, source)
        results = []
        one = run(subset if serial_n < args.n else full, 1)
        results.append(one)
        many = run(full, args.jobs)
        results.append(many)
    serial_wall = one["wall"] * args.n / one["n"]
    speedup = serial_wall / many["wall"]
    print()
    print(f"{'jobs':>4} {'students':>8} {'wall s':>8} {'s/student':>10} {'mean grade s':>13} {'CPU s/student':>14} "
          f"{'load before/after':>18} {'not 100':>8}")
    for r in results:
        print(f"{r['jobs']:>4} {r['n']:>8} {r['wall']:>8.1f} {r['per_student_wall']:>10.3f} "
              f"{r['mean_grade_s']:>13.3f} {r['cpu'] / max(r['n'], 1):>14.3f} "
              f"{r['load'][0]:>8.2f} / {r['load'][1]:<7.2f} {r['not_full']:>8}")
    if serial_n < args.n:
        print(f"(--jobs 1 measured on {serial_n} students and extrapolated linearly to {args.n}: "
              f"{serial_wall:.1f} s)")
    print(f"speed-up of {args.jobs} jobs over 1: {speedup:.2f}x = {speedup / args.jobs:.2f} of linear "
          f"(goal >= {TARGET_EFFICIENCY})")
    print(f"{args.n} students with {args.jobs} jobs: {many['wall']:.1f} s (target <= {TARGET_WALL_S:.0f} s "
          f"on 2 cores): {'OK' if many['wall'] <= TARGET_WALL_S else 'MISSED'}")
    cpu_per = many["cpu"] / max(many["n"], 1)
    print(f"CPU per student (grading worker + sandbox, all {many['n']}): {cpu_per:.2f} s -> {args.n} students on "
          f"{args.jobs} otherwise idle cores: about {cpu_per * args.n / args.jobs:.0f} s (the wall times above "
          f"include whatever else the machine was running: see the load averages)")
    for r in results:
        for pid, (peak, sandbox) in sorted(r["workers"].items()):
            print(f"  jobs={r['jobs']} pool worker pid {pid}: peak RSS {peak / 1024:.0f} MiB; "
                  f"largest sandboxed worker {sandbox / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
