"""A correct submission's score and verdicts quiet and beside CPU hogs (issue 12).

    python bench/bench_load_verdicts.py [HOGS] [WARMUP_S]

Grades three correct submissions with MNIST training (the reference, a per-example loop that needs
~6 CPU s, float32) on a quiet machine, then starts HOGS busy processes (default 4: load >= 4 on 2
cores), waits WARMUP_S (default 150 s) for the 1-minute load average to climb, and grades them again.
Prints each score, wall time, load and training sentence, and whether every score and verdict (check,
test, points, diagnoses) is identical. The training budget is CPU seconds of the worker tree, so it
must be. Exit status 1 when they differ.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from autograder.config import load_config  # noqa: E402
from autograder.grade import grade_source, prepare  # noqa: E402
from autograder.reference import reference_source  # noqa: E402
from zoo import BY_NAME  # noqa: E402


def verdicts(report) -> list[tuple]:
    return [(r.check_id, r.name, r.score, tuple(r.diagnoses)) for r in report.results]


def grade_all(label: str, env, sources: dict[str, str]) -> dict[str, tuple]:
    out = {}
    for name, source in sources.items():
        started = time.perf_counter()
        report = grade_source(source, env)
        wall = time.perf_counter() - started
        training = next(r for r in report.results if r.check_id == "training")
        out[name] = (report.score, verdicts(report))
        print(f"{label:6} {name:17} score {report.score:5.1f}  wall {wall:4.1f} s  load {os.getloadavg()[0]:4.1f}  "
              f"| {training.message[:90]}", flush=True)
    return out


def main(argv: list[str]) -> int:
    hogs = int(argv[0]) if argv else 4
    warmup = float(argv[1]) if len(argv) > 1 else 150.0
    config = load_config()
    env = prepare(config)
    sources = {"reference": reference_source(config.activation),
               "per_example_loop": BY_NAME["train_per_example_loop"].build(None),
               "float32": BY_NAME["train_float32"].build(None)}
    quiet = grade_all("quiet", env, sources)
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
    try:
        time.sleep(warmup)
        loaded = grade_all(f"{hogs} hogs", env, sources)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    same = quiet == loaded
    print(f"scores and verdicts identical quiet and with {hogs} hogs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
