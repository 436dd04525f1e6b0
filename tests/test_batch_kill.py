"""Interrupt a 6-student batch at random moments (issue 14).

kill -9 at 4 moments (20 with BACKPROP_LAB_LONG_TESTS=1, the release checklist in docs/release.md):
every rerun grades nobody already finished, and the final gradebook is byte-identical to an
uninterrupted run's. SIGINT at 3 moments and SIGTERM at 1 (10 and 3 with the long checks):
gradebook.csv and summary.html exist every time and list every finished student as finished. Students
are graded without training (cheap) through the same pool, commit and gradebook code as a real run."""
from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.batch.commit import LOG
from autograder.batch.demo import skeleton_source
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from batch_states import states

# its module fixture (the uninterrupted run): made once, on one worker
pytestmark = pytest.mark.xdist_group("batch_kill")

ACT = load_config().activation
REF = reference_source(ACT)
DRIVER = ("import sys\n"
          "from autograder.batch.runner import run_batch, print_outcome\n"
          "try:\n"
          "    print_outcome(run_batch(sys.argv[1], sys.argv[2], jobs=2, with_training=False, progress='lines'))\n"
          "except KeyboardInterrupt:\n"
          "    sys.exit(130)\n")
LONG = bool(os.environ.get("BACKPROP_LAB_LONG_TESTS"))
KILLS, KILLS_PER_ROUND = (20 if LONG else 4), 5
INTERRUPTS, TERMS = (10, 3) if LONG else (3, 1)


def make_class(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    (folder / "ref0.py").write_text(f"# 0\n{REF}")
    (folder / "ref1.py").write_text(f"# 1\n{REF}")
    (folder / "bug.py").write_text(mutant_sources(ACT)["sgd_ascends"])
    (folder / "skel.py").write_text(skeleton_source(ACT))
    (folder / "syntax.py").write_text("def forward(:\n")
    (folder / "deep.ipynb").write_text('{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}")
    return sorted(["ref0", "ref1", "bug", "skel", "syntax", "deep"])


def start(subs: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(subs), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def book(out: Path) -> dict[str, dict[str, str]]:
    text = (out / "gradebook.csv").read_bytes().decode("utf-8-sig")
    return {r["student"]: r for r in csv.DictReader(io.StringIO(text))}


def done_counts(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in (out / LOG).read_text(encoding="utf-8").splitlines() if (out / LOG).exists() else []:
        parts = line.split("\t")
        if len(parts) >= 4 and parts[2] in ("done", "unreadable"):
            counts[parts[3]] = counts.get(parts[3], 0) + 1
    return counts


def same_gradebook(out: Path, expected: bytes, when: str) -> None:
    got = (out / "gradebook.csv").read_bytes()
    if got != expected:
        import difflib
        diff = "\n".join(difflib.unified_diff(expected.decode("utf-8-sig").splitlines(),
                                               got.decode("utf-8-sig").splitlines(), lineterm=""))
        raise AssertionError(f"gradebook differs from the uninterrupted run's ({when}):\n{diff}")


def check_nobody_regraded(before: dict[str, bytes], out: Path, when: str) -> None:
    after = states(out)
    for student, data in before.items():
        assert after.get(student) == data, f"{student} (finished) was graded again after {when}"
    assert all(n <= 1 for n in done_counts(out).values()), done_counts(out)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    subs = base / "class"
    students = make_class(subs)
    out = base / "uninterrupted"
    started = time.monotonic()
    proc = start(subs, out)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert sorted(book(out)) == students
    return base, subs, students, (out / "gradebook.csv").read_bytes(), time.monotonic() - started


def finish(subs: Path, out: Path, expected: bytes, students: list[str], when: str) -> None:
    """Run to the end: nobody finished is graded again, and the gradebook is the uninterrupted one."""
    before = states(out) if out.exists() else {}
    proc = start(subs, out)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    check_nobody_regraded(before, out, when)
    same_gradebook(out, expected, when)
    assert sorted(states(out)) == students
    assert not list(out.glob(".stage.*")) and not list(out.glob(".old.*")) and not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_kill_9_at_random_moments(uninterrupted):
    """Rounds on fresh results folders; in each, up to 5 kills of resumed runs (fewer when the class
    finishes first), then a run to the end; until KILLS kills have landed."""
    base, subs, students, expected, seconds = uninterrupted
    rng = random.Random(14)
    trace = []
    round_ = 0
    while len(trace) < KILLS:
        out = base / f"k{round_}"
        kills = 0
        while kills < min(KILLS_PER_ROUND, KILLS - len(trace)):
            before = states(out) if out.exists() else {}
            if len(before) == len(students):
                break                               # the class finished between kills: next round
            proc = start(subs, out)
            t0 = time.monotonic()
            if rng.random() < 0.5:    # any moment of the run
                time.sleep(rng.uniform(0.05, seconds))
            else:                      # just after a student is committed (its gradebook rebuild, the next one)
                while proc.poll() is None and len(states(out)) <= len(before) and time.monotonic() - t0 < 120:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.4))
            moment = time.monotonic() - t0
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)   # the batch process only: its workers die with it
                proc.wait(timeout=60)
                kills += 1
                check_nobody_regraded(before, out, f"kill -9 at {moment:.2f} s")
                if (out / "gradebook.csv").exists():   # never half a file
                    assert set(book(out)) <= set(students)
                trace.append((round_, round(moment, 2), len(before), len(states(out))))
                continue
            proc.wait()
            assert proc.returncode == 0, proc.stdout.read().decode()
            check_nobody_regraded(before, out, f"a finished run of round {round_}")
        finish(subs, out, expected, students, f"the end of round {round_}")
        round_ += 1
    assert len(trace) == KILLS, trace
    print(f"kills (round, moment s, finished before, finished after): {trace}; uninterrupted {seconds:.1f} s")


@pytest.mark.slow
def test_sigint_and_sigterm_at_random_moments_leave_gradebook_and_summary(uninterrupted):
    base, subs, students, expected, seconds = uninterrupted
    rng = random.Random(41)
    out = base / "int0"
    interrupted = 0
    stops = [signal.SIGINT] * INTERRUPTS + [signal.SIGTERM] * TERMS   # SIGTERM is handled like Ctrl-C
    rng.shuffle(stops)
    for n, stop in enumerate(stops):
        if out.exists() and len(states(out)) == len(students):
            out = base / f"int{n}"
        proc = start(subs, out)
        first = proc.stdout.readline()            # printed once the run's first gradebook is written
        assert b"students in" in first, first
        time.sleep(rng.uniform(0.0, seconds * 0.5 * (len(students) - len(states(out))) / len(students)))
        if proc.poll() is None:
            proc.send_signal(stop)
            interrupted += stop == signal.SIGINT
        rest = proc.communicate(timeout=120)[0].decode()
        # -SIGTERM only when it landed after run_batch had returned (its handler then restored)
        assert proc.returncode in (0, 130) or proc.returncode == -stop == -signal.SIGTERM, (stop, rest)
        assert (out / "gradebook.csv").is_file() and (out / "summary.html").is_file()
        rows = book(out)
        assert sorted(rows) == students
        for student in states(out):
            assert rows[student]["status"] not in ("pending", "stale"), (student, rows[student])
        summary = (out / "summary.html").read_text(encoding="utf-8")
        assert all(s in summary for s in students)
    assert interrupted >= INTERRUPTS // 2, interrupted
    shutil.rmtree(base, ignore_errors=True)
