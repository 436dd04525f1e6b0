"""Interrupt a 6-student batch (issue 14), graded without training (cheap) through the same pool,
commit and gradebook code as a real run (the real CLI with MNIST training, killed -9 while a student
trains: test_batch_run.py).

kill -9 of the batch at 4 named moments of resumed runs (before anything is graded, right after the
first result, mid-write, almost done), then a run to the end that loses one pool worker to kill -9
while it grades (the pool is rebuilt); and at 1 seeded random moment (20 with
BACKPROP_LAB_LONG_TESTS=1, the release checklist in docs/release.md): the pool workers die with the
batch, every rerun grades nobody already finished, and the final gradebook is byte-identical to an
uninterrupted run's. SIGINT at 3 moments and SIGTERM at 1 (10 and 3 with the long checks):
gradebook.csv and summary.html exist every time and list every finished student as finished."""
from __future__ import annotations

import csv
import io
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.batch.demo import skeleton_source
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from batch_states import done_counts, log_events, states, workers_gone

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
KILLS, KILLS_PER_ROUND = (20 if LONG else 1), 5   # random moments (the 4 named ones come on top)
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


def no_leftovers(out: Path, spared_pid: int | None = None) -> None:
    """No staging folder, parked folder or temp file is left (``spared_pid``: a pool worker killed in
    the middle of a commit leaves its ``.stage.<student>.<pid>``; the next run's start removes it)."""
    left = [p for pattern in (".stage.*", ".old.*", ".*.tmp", "*/.*.tmp") for p in out.glob(pattern)]
    assert not [p for p in left if spared_pid is None or not p.name.endswith(f".{spared_pid}")], left


def finish(subs: Path, out: Path, expected: bytes, students: list[str], when: str) -> None:
    """Run to the end: nobody finished is graded again, and the gradebook is the uninterrupted one."""
    before = states(out) if out.exists() else {}
    proc = start(subs, out)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    check_nobody_regraded(before, out, when)
    same_gradebook(out, expected, when)
    assert sorted(states(out)) == students
    no_leftovers(out)


def grading_now(out: Path, skip: int) -> tuple[int, str] | None:
    """(pid, student) of a pool worker whose last line in the log after its first ``skip`` lines is the
    start of a student: it is grading that student now (or was, a moment ago)."""
    last: dict[int, tuple[str, str]] = {}
    for _, pid, event, student, *_ in log_events(out)[skip:]:
        last[int(pid)] = (event, student)
    return next(((pid, student) for pid, (event, student) in last.items() if event == "start"), None)


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def finish_killing_a_worker(subs: Path, out: Path, expected: bytes, students: list[str], when: str) -> bool:
    """Run to the end with one pool worker (not the batch) killed -9 while it grades a student: the
    batch still exits 0, nobody finished is graded again, the gradebook is the uninterrupted one. True
    when the kill landed mid-grading and the rebuilt pool graded that student to the end; False when
    nothing was left to grade or the worker had just finished its student (the caller runs again)."""
    before = states(out) if out.exists() else {}
    skip = len(log_events(out))
    proc = start(subs, out)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and proc.poll() is None:
        assert time.monotonic() < deadline, f"the batch ({when}) neither graded nor ended within 300 s"
        busy = grading_now(out, skip)
        if busy is not None and parent_of(busy[0]) == proc.pid:   # a pool worker of this batch
            try:
                os.kill(busy[0], signal.SIGKILL)
                victim = busy
            except ProcessLookupError:
                pass
        if victim is None:
            time.sleep(0.005)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, f"the batch did not survive a killed pool worker ({when}):\n{output}"
    check_nobody_regraded(before, out, when)
    same_gradebook(out, expected, when)
    assert sorted(states(out)) == students
    no_leftovers(out, spared_pid=victim[0] if victim else None)
    if victim is None:
        return False
    pid, student = victim
    lines = log_events(out)[skip:]
    died_grading = [e for _, p, e, *_ in lines if int(p) == pid][-1:] == ["start"]
    # and a worker of the rebuilt pool graded that student to the end (else the victim had committed it
    # in the instant between its commit and its "done" line: the kill came too late)
    return died_grading and any(e == "done" and s == student and int(p) != pid for _, p, e, s, *_ in lines)


@pytest.mark.slow
def test_kill_9_at_named_moments_then_a_pool_worker_killed(uninterrupted):
    """kill -9 of the batch at four moments of resumed runs on one results folder (before anything is
    graded; right after the first result; mid-write, a few students in; almost done, two students left,
    so that the last run has some to grade): each time the pool workers die with it and nobody finished
    is graded again. The run to the end then loses one pool worker to kill -9 while it grades: the pool
    is rebuilt and the class finishes with the uninterrupted gradebook (on a fresh folder when the last
    kill came too late and had left nothing to grade)."""
    base, subs, students, expected, _ = uninterrupted
    out = base / "named"
    before: dict[str, bytes] = {}
    stages: set[Path] = set()
    moments = [
        ("before anything is graded", None),   # the run's first line: its first gradebook is written
        ("right after the first result", lambda: len(states(out)) > len(before)),
        ("mid-write, a few students in", lambda: bool(set(out.glob(".stage.*")) - stages)
         or len(states(out)) >= max(3, len(before) + 1)),
        ("almost done, two students left", lambda: len(states(out)) >= len(students) - 2),
    ]
    killed_at = []
    for label, when in moments:
        before = states(out) if out.exists() else {}
        stages = set(out.glob(".stage.*"))     # left by the last kill (this run's start removes them)
        proc = start(subs, out)
        if when is None:
            assert select.select([proc.stdout], [], [], 300)[0], "the batch printed nothing within 300 s"
            first = proc.stdout.readline()
            assert b"students in" in first, first
        else:
            deadline = time.monotonic() + 300
            while proc.poll() is None and not when():
                assert time.monotonic() < deadline, f"no progress towards {label!r} within 300 s"
                time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)   # the batch process only: its workers must die with it
        if proc.wait(timeout=60) == -signal.SIGKILL:
            killed_at.append((label, len(before), len(states(out))))
        else:                                  # the class was finished first
            assert proc.returncode == 0, proc.communicate()[0].decode()
        assert workers_gone(out), f"grading workers outlived the batch killed {label!r}"
        check_nobody_regraded(before, out, f"the kill {label!r}")
        if (out / "gradebook.csv").exists():   # never half a file
            assert sorted(book(out)) == students
    assert len(killed_at) >= 3, killed_at  # the last may come too late: the class was finished
    print("killed (moment, finished before, finished after):", killed_at)
    landed = finish_killing_a_worker(subs, out, expected, students, "the end of the named kills")
    attempt = 0
    while not landed:
        assert attempt < 3, "no pool worker was killed while grading a student, in 3 fresh runs"
        landed = finish_killing_a_worker(subs, base / f"worker-killed{attempt}", expected, students,
                                         f"a fresh run with a pool worker killed (attempt {attempt})")
        attempt += 1
    print("pool worker killed while grading; fresh runs needed:", attempt)


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
            if rng.random() < 0.5:    # any moment of the run, as long as this one is expected to take:
                # about half of the uninterrupted run is start-up and the final gradebook (a run with
                # nothing to grade took 1.7 s of its 3.6 s), the rest scales with the students left
                left = (len(students) - len(before)) / len(students)
                time.sleep(rng.uniform(0.05, seconds * (1 + left) / 2))
            else:                      # just after a student is committed (its gradebook rebuild, the next one)
                while proc.poll() is None and len(states(out)) <= len(before) and time.monotonic() - t0 < 120:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.4))
            moment = time.monotonic() - t0
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)   # the batch process only: its workers die with it
                proc.wait(timeout=60)
                kills += 1
                assert workers_gone(out), f"grading workers outlived the batch killed at {moment:.2f} s"
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
