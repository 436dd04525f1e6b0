"""``backprop-lab batch``: grade a class in parallel, resumably, and write the gradebook and summary.

Layout of RESULTS::

    RESULTS/gradebook.csv            rebuilt from the per-student results: at the start of every run, as
                                     students finish, and at the end (also after Ctrl-C or SIGTERM)
    RESULTS/summary.html             the class summary (links to every feedback page), rebuilt with it
    RESULTS/<student>/results.json   Gradescope schema (+ extra_data.batch: source, late, clash, ...)
    RESULTS/<student>/feedback.html  self-contained, with the figures inlined
    RESULTS/<student>/.state.json    sha256 of the submission, config fingerprint, grader version
    RESULTS/.batch.log               one line per grading start/finish (pid, time), append-only
    RESULTS/.inputs/                 LMS exports, unpacked safely

A student's three files are committed together (see :mod:`.commit`): a ``kill -9`` at any moment leaves
each student either finished (skipped on rerun) or not (graded again on rerun); nobody is graded twice
and nothing finished is lost. The pieces: :mod:`.plan` (what to grade, what is current), :mod:`.pool`
(the worker processes), :mod:`.progress` (what is printed), :mod:`.commit` (writing one student).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import CourseConfig, load_config
from ..errors import UserError
from .commit import LOG, log_event, recover, unreadable_report, write_student
from .discover import Roster, discover
from .plan import STATE, Job, is_current, plan_job, settings_digest, state_for
from .pool import WORKERS_LOCK, run_pool
from .progress import Reporter, print_outcome

LOCK = ".batch.lock"
INPUTS = ".inputs"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
REBUILD_EVERY_S = 1.0

__all__ = ["run_batch", "cli_batch", "build_gradebook", "print_outcome", "plan_job", "state_for", "is_current",
           "settings_digest",
           "LOG", "STATE", "WORKERS_LOCK", "LOCK", "INPUTS", "BatchOutcome", "Job"]


@dataclass
class BatchOutcome:
    roster: Roster
    out: Path
    graded: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    gradebook: Path | None = None
    summary: Path | None = None
    seconds: float = 0.0
    rows: list = field(default_factory=list)


@contextlib.contextmanager
def exclusive(out: Path):
    """One batch per RESULTS folder at a time; then wait for workers a killed run may have left."""
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `backprop-lab batch` is writing to {out}; wait for it to finish") from None
        wfd = os.open(out / WORKERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    fcntl.flock(wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise UserError(f"grading workers of an earlier run on {out} are still alive; "
                                        "stop them and rerun") from None
                    time.sleep(0.1)
            fcntl.flock(wfd, fcntl.LOCK_UN)
        finally:
            os.close(wfd)
        yield
    finally:
        os.close(fd)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals_interrupt():
    """SIGTERM and SIGHUP interrupt like Ctrl-C does (so the gradebook is written on the way out)."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS if s != signal.SIGINT}
    for s in saved:
        signal.signal(s, _interrupt)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


class Books:
    """Rebuilds gradebook.csv and summary.html from RESULTS: at once, or at most every REBUILD_EVERY_S."""

    def __init__(self, out: Path, roster: Roster, config: CourseConfig, with_training: bool):
        self.out, self.roster, self.config, self.with_training = out, roster, config, with_training
        self.plan: list[Job] | None = None
        self.last = 0.0
        self.cost = 0.0
        self.result: tuple[list, Path, Path] | None = None

    def rebuild(self, throttle: bool = False, final: bool = False) -> tuple[list, Path, Path] | None:
        """Rewrite both files (``throttle``: unless done recently); the summary's figures only when
        ``final``, so a running batch spends no CPU on drawing beside its graders."""
        now = time.monotonic()
        if throttle and now - self.last < max(REBUILD_EVERY_S, 3 * self.cost):
            return self.result
        current = None
        if self.plan is not None:
            current = {j.entry.student for j in self.plan if is_current(self.out, j, self.config, self.with_training)}
        self.result = build_gradebook(self.out, self.roster, current, with_figures=final)
        self.last = time.monotonic()
        self.cost = self.last - now
        return self.result

    def rebuild_on_the_way_out(self) -> tuple[list, Path, Path] | None:
        """The final rebuild, with stop signals held back until both files are written."""
        for _ in range(3):
            try:
                old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                try:
                    return self.rebuild(final=True)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
            except KeyboardInterrupt:  # a second signal landed before the mask: try again, masked
                continue
        return self.result


def build_gradebook(out: Path, roster: Roster, current: set[str] | None = None,
                    with_figures: bool = True) -> tuple[list, Path, Path]:
    """Rows for every roster entry, read back from RESULTS/<student>/results.json.

    ``current``: the students whose results match their submission now; any other results (left by an
    earlier run, the regrade interrupted) are shown with status ``stale``, never as if up to date.
    """
    from .gradebook import feedback_link, write_outputs
    from .rows import missing_row, read_results, row_from_results
    rows = []
    for e in roster.entries:
        data, why = read_results(out / e.student / "results.json")
        if data is None:
            rows.append(missing_row(e.student, f"not graded yet ({why}); rerun the batch", status="pending",
                                    late=e.late, name=e.name, sid=e.sid, email=e.email))
            continue
        row = row_from_results(e.student, data, feedback_link(out, e.student))
        if current is not None and e.student not in current and row.status != "grader_error":
            row.status = "stale"
            row.note = "; ".join(filter(None, ["these results are from an earlier submission or grader version "
                                               "(the regrade was interrupted): rerun the batch", row.note]))
        rows.append(row)
    subtitle = f"{roster.kind} {roster.origin.name}"
    gradebook, summary = write_outputs(out, rows, roster.issues, title="Class summary", subtitle=subtitle,
                                       with_figures=with_figures)
    return rows, gradebook, summary


def _check_paths(submissions: Path, out: Path) -> None:
    if not submissions.exists():
        raise UserError(f"{submissions} does not exist; give a folder of submissions or an LMS export zip")
    subs = submissions.resolve()
    if subs == out or (subs in out.parents and not out.relative_to(subs).parts[0].startswith(".")):
        raise UserError(f"--out {out} is inside the submissions folder, so it would be graded as a student; "
                        "choose a results folder outside it")


def _write_unreadable(out: Path, job: Job, config: CourseConfig, with_training: bool) -> dict[str, Any]:
    """The per-student boundary for an unreadable entry: its zero report, committed with its state."""
    report = unreadable_report(job, config)
    write_student(out, job.entry.student, report, job.entry.meta(), state_for(job, config, with_training))
    log_event(out, "unreadable", job.entry.student, job.digest[:16])
    return {"student": job.entry.student, "score": 0.0, "max_score": report.max_score, "status": "unreadable",
            "diagnoses": ["unreadable"], "seconds": 0.0}


def run_batch(submissions: Path | str, out: Path | str, jobs: int | None = None, activation: str | None = None,
              force: bool = False, with_training: bool = True, progress: str = "auto",
              config: CourseConfig | None = None, stream=None,
              prepare_progress: Callable[[str], None] | None = None) -> BatchOutcome:
    """Grade every student of ``submissions`` into ``out``; see the module docstring for the layout."""
    started = time.monotonic()
    stream = stream or sys.stdout
    config = config or load_config(activation=activation)
    submissions = Path(submissions)
    out = Path(out).resolve()
    _check_paths(submissions, out)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(jobs)) if jobs else max(1, os.cpu_count() or 1)
    with exclusive(out), stop_signals_interrupt():
        recover(out)
        roster = discover(submissions, out / INPUTS)
        outcome = BatchOutcome(roster, out)
        books = Books(out, roster, config, with_training)
        reporter: Reporter | None = None
        try:
            plan = [plan_job(e) for e in roster.entries]
            books.plan = plan
            for job in plan:
                if not force and is_current(out, job, config, with_training):
                    job.action = "skip"
                    outcome.skipped.append(job.entry.student)
            books.rebuild()                       # the gradebook of everyone finished so far, before any work
            to_grade = [j for j in plan if j.action == "grade"]
            unreadable = [j for j in plan if j.action == "unreadable"]
            print(f"{len(roster.entries)} students in {submissions} ({roster.kind}); "
                  f"{len(outcome.skipped)} unchanged since the last run (skipped; --force regrades)"
                  + (f"; grading {len(to_grade)} with {min(workers, len(to_grade))} worker(s)" if to_grade else ""),
                  file=stream, flush=True)
            iso = None
            if to_grade:
                from ..grade import prepare
                # calibrate (once per machine, cached) HERE, so the pool workers find it in the cache;
                # the workers take this isolation level (and its allowlists) instead of probing again
                iso = prepare(config, with_training=with_training,
                              progress=prepare_progress or (lambda m: print(m, file=sys.stderr, flush=True))).iso
            reporter = Reporter(len(to_grade) + len(unreadable), progress, stream)

            def done(result: dict[str, Any]) -> None:
                outcome.graded.append(result)
                reporter.finished(result["student"], result.get("score"), result.get("max_score"),
                                  result["status"], result.get("seconds", 0.0))
                try:
                    books.rebuild(throttle=True)
                except Exception:  # noqa: BLE001 - a failed interim rebuild is retried; the final one reports
                    pass

            for job in unreadable:
                try:
                    result = _write_unreadable(out, job, config, with_training)
                except Exception as exc:  # noqa: BLE001 - one student's folder never stops the class
                    result = {"student": job.entry.student, "score": None, "max_score": None,
                              "status": "grader_error", "diagnoses": ["grader_error"], "seconds": 0.0,
                              "why": f"{exc.__class__.__name__}: {exc}"}
                done(result)
            if to_grade:
                run_pool(to_grade, workers, config, with_training, out, done, iso=iso)
        finally:
            if reporter is not None:
                reporter.close()
            final = books.rebuild_on_the_way_out()
            if final is not None:
                outcome.rows, outcome.gradebook, outcome.summary = final
        from ..similarity.batch import add_pairs_section
        add_pairs_section(out, roster, config, sys.stderr)
    outcome.seconds = time.monotonic() - started
    return outcome


def cli_batch(args) -> int:
    outcome = run_batch(args.submissions, args.out, jobs=args.jobs, activation=args.activation, force=args.force)
    print_outcome(outcome)
    return 0
