#!/usr/bin/env python3
"""Grader overhead per submission: everything but the student's own training.

Run from the project root:  python bench/bench_grader.py [--runs N] [--levels full,rlimits]

Grades the reference with ``grade_source`` in an environment without training (MNIST is not needed)
``--runs`` times per isolation level and prints the median against the 0.3 s target, then where the
time goes in the median run: worker start (sandbox + interpreter + numpy + importing mlp.py), each
check split into time waiting on the worker (IPC and student code) and time computing in the parent
(finite differences, reference, diagnosis), worker round trips, and teardown.

Wall time depends on how busy the machine is; the CPU time of a grading (parent + worker, from
getrusage) does not much, and on an idle machine the two agree (the pipeline is sequential). Both are
printed, with the load average.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from autograder.checks import forward, gradients, minibatch, sgd_step  # noqa: E402
from autograder.config import load_config  # noqa: E402
from autograder.grade import grade_source, prepare  # noqa: E402
from autograder.reference import reference_source  # noqa: E402
from autograder.sandbox.launch import descendants  # noqa: E402
from autograder.sandbox.level import detect  # noqa: E402
from autograder.worker.session import WorkerSession  # noqa: E402

TARGET_S = 0.3
CHECKS = {"forward": forward, "gradients": gradients, "minibatch": minibatch, "sgd_step": sgd_step}


class Timings:
    """Wall time per phase of one grading, collected by wrapping the grader's own functions."""

    def __init__(self) -> None:
        self.phase: dict[str, float] = defaultdict(float)
        self.worker: dict[str, float] = defaultdict(float)   # time inside worker requests, per check
        self.trips: dict[str, int] = defaultdict(int)
        self.current = "start"
        self.worker_cpu = 0.0   # CPU seconds of every worker process, read from /proc before it is killed

    def patches(self) -> ExitStack:
        stack = ExitStack()
        real_start, real_request, real_close = WorkerSession._start, WorkerSession._request, WorkerSession.close
        real_stop = WorkerSession.stop

        def sampled_stop(session):
            if session.proc is not None:
                self.worker_cpu += _tree_cpu(session.proc.pid)
            return real_stop(session)

        def timed_start(session):
            t = time.perf_counter()
            try:
                return real_start(session)
            finally:
                self.phase["worker start (spawn + import)"] += time.perf_counter() - t

        def timed_request(session, message, timeout):
            t = time.perf_counter()
            try:
                return real_request(session, message, timeout)
            finally:
                if message.get("op") != "load":
                    self.worker[self.current] += time.perf_counter() - t
                    self.trips[self.current] += 1

        def timed_close(session):
            t = time.perf_counter()
            try:
                return real_close(session)
            finally:
                self.phase["teardown (kill + rm scratch)"] += time.perf_counter() - t

        stack.enter_context(mock.patch.object(WorkerSession, "_start", timed_start))
        stack.enter_context(mock.patch.object(WorkerSession, "_request", timed_request))
        stack.enter_context(mock.patch.object(WorkerSession, "close", timed_close))
        stack.enter_context(mock.patch.object(WorkerSession, "stop", sampled_stop))
        for name, module in CHECKS.items():
            stack.enter_context(mock.patch.object(module, "run", self._timed_check(name, module.run)))
        return stack

    def _timed_check(self, name, run):
        def timed(ctx, *args, **kwargs):
            self.current = name
            t = time.perf_counter()
            try:
                return run(ctx, *args, **kwargs)
            finally:
                self.phase[f"check {name}"] += time.perf_counter() - t
                self.current = "other"
        return timed


def _cpu() -> float:
    """CPU seconds of this (the grading) process so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU seconds used by ``pid`` and its live descendants (sandbox included), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in {pid} | descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(level: str | None, runs: int) -> tuple[str, list[float], list[float], Timings]:
    if level:
        os.environ["BACKPROP_LAB_ISOLATION"] = level
    else:
        os.environ.pop("BACKPROP_LAB_ISOLATION", None)
    detect.cache_clear()
    config = load_config()
    env = prepare(config, with_training=False)
    source = reference_source(config.activation)
    grade_source(source, env)  # warm-up: page cache, imports, first bwrap start
    totals, cpus, per_run = [], [], []
    for _ in range(runs):
        timings = Timings()
        with timings.patches():
            c, t = _cpu(), time.perf_counter()
            report = grade_source(source, env)
            totals.append(time.perf_counter() - t)
            cpus.append(_cpu() - c + timings.worker_cpu)
        assert report.score == config.max_score - config.rubric["training"], report.score
        per_run.append(timings)
    median_run = per_run[sorted(range(runs), key=lambda i: totals[i])[runs // 2]]
    return env.iso.level, totals, cpus, median_run


def report_level(level: str, totals: list[float], cpus: list[float], timings: Timings) -> None:
    median, cpu = statistics.median(totals), statistics.median(cpus)
    verdict = "OK" if median <= TARGET_S else "OVER"
    print(f"\n== isolation {level}: wall median {median * 1000:.0f} ms over {len(totals)} runs "
          f"(min {min(totals) * 1000:.0f}, max {max(totals) * 1000:.0f}) -- target {TARGET_S * 1000:.0f} ms: {verdict}")
    print(f"   CPU per grading (grader + worker): median {cpu * 1000:.0f} ms "
          f"({'OK' if cpu <= TARGET_S else 'OVER'} against the target on an idle core)")
    print(f"   {'phase':34s} {'total ms':>9s} {'worker ms':>10s} {'parent ms':>10s} {'trips':>6s}")
    accounted = 0.0
    for phase, seconds in timings.phase.items():
        name = phase.removeprefix("check ")
        worker = timings.worker.get(name, 0.0) if phase.startswith("check ") else 0.0
        trips = timings.trips.get(name, 0) if phase.startswith("check ") else 0
        accounted += seconds
        print(f"   {phase:34s} {seconds * 1000:9.1f} {worker * 1000:10.1f} {(seconds - worker) * 1000:10.1f} "
              f"{trips if trips else '':>6}")
    total = sorted(totals)[len(totals) // 2]
    print(f"   {'rest (syntax check, reports, ...)':34s} {(total - accounted) * 1000:9.1f}")
    print(f"   round trips to the worker: {sum(timings.trips.values())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--levels", default="best,rlimits",
                        help="comma-separated isolation caps; 'best' is what this machine offers")
    args = parser.parse_args()
    print(f"grader overhead per submission (reference, no training), target {TARGET_S * 1000:.0f} ms; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    worst = 0.0
    for level in args.levels.split(","):
        got_level, totals, cpus, timings = measure(None if level == "best" else level, args.runs)
        report_level(got_level, totals, cpus, timings)
        worst = max(worst, statistics.median(totals))
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (wall times above it are inflated by other work)")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
