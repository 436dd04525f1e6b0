"""``backprop-lab batch``: grade a class in parallel, resumably, and write the gradebook and summary.

Layout of RESULTS::

    RESULTS/gradebook.csv            rebuilt from the per-student results at the end of every run
    RESULTS/summary.html             the class summary (links to every feedback page)
    RESULTS/<student>/results.json   Gradescope schema (+ extra_data.batch: source, late, clash, ...)
    RESULTS/<student>/feedback.html  self-contained, with the figures inlined
    RESULTS/<student>/.state.json    sha256 of the submission, config fingerprint, grader version; LAST
    RESULTS/.batch.log               one line per grading start/finish (pid, time), append-only
    RESULTS/.inputs/                 LMS exports, unpacked safely

Every file is written atomically (temp file + fsync + rename) and ``.state.json`` is written after
the reports, so a ``kill -9`` at any moment leaves each student either finished (skipped on rerun)
or not (graded again on rerun); nobody is graded twice and nothing finished is lost.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import resource
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..config import CourseConfig, load_config
from ..errors import SubmissionError, UserError
from .discover import Entry, Roster, discover

STATE = ".state.json"
LOG = ".batch.log"
LOCK = ".batch.lock"
WORKERS_LOCK = ".workers.lock"
INPUTS = ".inputs"
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
RAW_HASH_CAP = 4 * 1024**2
MAX_POOL_RESTARTS = 3
PR_SET_PDEATHSIG = 1


# ---- plan -------------------------------------------------------------------------------------

@dataclass
class Job:
    """One student of this run: what to grade (or why it cannot be), its digest, and what to do."""
    entry: Entry
    digest: str
    source: str = ""
    origin: str = ""
    notes: list[str] = field(default_factory=list)
    problem: str = ""
    action: str = "grade"            # grade, unreadable, skip


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


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


def _raw_digest(path: Path | None) -> str:
    """A capped content hash of an unreadable entry (so a fixed upload is noticed)."""
    if path is None:
        return ""
    h = hashlib.sha256()
    try:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        for f in files[:200]:
            st = f.stat()
            h.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}|".encode("utf-8", "surrogateescape"))
            with open(f, "rb") as fh:
                h.update(fh.read(RAW_HASH_CAP))
    except OSError as exc:
        h.update(str(exc).encode())
    return h.hexdigest()


def plan_job(entry: Entry) -> Job:
    """Read the submission in the parent (cheap, no student code runs) and hash what will be graded."""
    from ..submission import load_submission
    if not entry.problem and entry.path is not None:
        try:
            sub = load_submission(entry.path)
        except SubmissionError as exc:
            entry.problem = str(exc)
        except OSError as exc:
            entry.problem = f"{entry.source} cannot be read ({exc.strerror or exc})"
        else:
            digest = _sha({"source": sub.source, "origin": sub.origin, "notes": sub.notes, "entry": entry.meta()})
            return Job(entry, digest, sub.source, sub.origin, list(sub.notes))
    if not entry.problem:
        entry.problem = "nothing to grade"
    return Job(entry, _sha({"raw": _raw_digest(entry.path), "entry": entry.meta()}), problem=entry.problem,
               action="unreadable")


def state_for(job: Job, config: CourseConfig, with_training: bool) -> dict[str, Any]:
    return {"student": job.entry.student, "sha256": job.digest, "config": config.fingerprint(),
            "settings": settings_digest(config), "grader": __version__, "training": with_training}


def settings_digest(config: CourseConfig) -> str:
    """Every course setting (extensions, bounds, rubric, ...), not only those in ``fingerprint()``."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


def is_current(out: Path, job: Job, config: CourseConfig, with_training: bool) -> bool:
    folder = out / job.entry.student
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict):
        return False
    wanted = state_for(job, config, with_training)
    return (all(state.get(k) == v for k, v in wanted.items())
            and (folder / "results.json").is_file() and (folder / "feedback.html").is_file())


# ---- per-student writing (pool workers, and the parent for unreadable entries) ------------------

def _clean_tmp(folder: Path) -> None:
    """Temp files a killed run left behind (``.name.<pid>.tmp``)."""
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()


def write_student(folder: Path, report, meta: dict[str, Any], state: dict[str, Any] | None,
                  figures: dict[str, str] | None = None) -> None:
    """results.json and feedback.html (atomically), then ``.state.json`` last."""
    from ..report.feedback import render_feedback
    from ..results import to_gradescope, write_json_atomic, write_text_atomic
    folder.mkdir(parents=True, exist_ok=True)
    _clean_tmp(folder)
    data = to_gradescope(report)
    from .gradebook import first_paragraph
    findings = [{"name": r.name, "diagnoses": list(r.diagnoses), "hint": first_paragraph(r.message)}
                for r in report.results if r.diagnoses and not r.passed]
    data["extra_data"]["batch"] = {**meta, "findings": findings}
    write_json_atomic(folder / "results.json", data)
    write_text_atomic(folder / "feedback.html", render_feedback(report, meta.get("student", ""), figures))
    if state is not None:
        write_json_atomic(folder / STATE, {**state, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                           "pid": os.getpid()})


def unreadable_report(job: Job, config: CourseConfig):
    """A zero report that says, in one place per check, why the submission could not be graded."""
    from ..checks.common import zero_results
    from ..config import CHECK_IDS
    from ..grade import CHECK_LABELS
    from ..results import GradeReport
    report = GradeReport([], "not run (the submission could not be read)", config.activation, config.year,
                         status="unreadable", grader_version=__version__)
    message = (f"The submission could not be graded: {job.problem}. Nothing was run. Submit your mlp.py "
               "(or the notebook, or a zip holding mlp.py) again.")
    for check_id in CHECK_IDS:
        report.results += zero_results(check_id, CHECK_LABELS[check_id], config.rubric[check_id], message,
                                       ["unreadable"])
    return report


def log_event(out: Path, event: str, student: str, extra: str = "") -> None:
    """Append one line to RESULTS/.batch.log (a single write on an O_APPEND fd: lines never interleave)."""
    line = f"{time.time():.3f}\t{os.getpid()}\t{event}\t{student}\t{extra}\n".encode("utf-8", "surrogateescape")
    fd = os.open(out / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# ---- pool workers --------------------------------------------------------------------------------

_ENV = None
_OUT: Path | None = None
_WORKER_LOCK_FD: int | None = None
_SLOT_FD: int | None = None
MAX_SLOTS = 256


def _claim_slot(out: Path) -> int:
    """A grading slot no other live pool worker of this batch holds (an flock per slot, released when
    the process dies), so each worker can run its students as a sandbox user of its own."""
    global _SLOT_FD
    folder = out / ".slots"
    folder.mkdir(exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(folder / str(slot), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _SLOT_FD = fd
        return slot
    return 0


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this worker when the batch process dies (kill -9 included): no orphan keeps grading."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(parent_pid: int, config: CourseConfig, with_training: bool,
                 out: str) -> None:
    global _ENV, _OUT, _WORKER_LOCK_FD
    for var in BLAS_VARS:
        os.environ[var] = "1"
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    _OUT = Path(out)
    _WORKER_LOCK_FD = os.open(_OUT / WORKERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(_WORKER_LOCK_FD, fcntl.LOCK_SH)  # a rerun waits until no worker of this run is left
    from dataclasses import replace
    from ..grade import prepare
    from ..sandbox.level import with_slot
    _ENV = prepare(config, with_training=with_training)
    _ENV = replace(_ENV, iso=with_slot(_ENV.iso, _claim_slot(_OUT)))
    if _ENV.data is not None:
        from ..report import plots
        plots.set_test_images(_ENV.data.test.X, _ENV.data.test.y)


def _grade_task(task: dict[str, Any]) -> dict[str, Any]:
    """Grade one student in this pool worker and write its folder; returns a small summary."""
    from ..grade import grade_source
    assert _ENV is not None and _OUT is not None
    student = task["student"]
    started = time.perf_counter()
    log_event(_OUT, "start", student)
    report = grade_source(task["source"], _ENV, task["origin"], task["notes"])
    write_student(_OUT / student, report, task["meta"], task["state"])
    log_event(_OUT, "done", student, task["state"]["sha256"][:16])
    return {"student": student, "score": report.score, "max_score": report.max_score, "status": report.status,
            "diagnoses": report.diagnoses(), "seconds": time.perf_counter() - started, "pid": os.getpid(),
            "worker_peak_rss_kb": _peak_rss_kb(), "worker_cpu_s": _cpu_seconds(),
            "sandbox_peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def _cpu_seconds() -> float:
    """CPU time of this pool worker and of every sandboxed process it has reaped so far (cumulative)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---- the parent ---------------------------------------------------------------------------------

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


@contextlib.contextmanager
def _blas_pinned():
    """Children inherit one-thread BLAS (set before numpy is imported in them); the parent's env is restored."""
    saved = {v: os.environ.get(v) for v in BLAS_VARS}
    os.environ.update({v: "1" for v in BLAS_VARS})
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


class Reporter:
    """A rich progress bar on a terminal; one plain line per finished student otherwise."""

    def __init__(self, total: int, mode: str = "auto", stream=None):
        self.stream = stream or sys.stdout
        self.total, self.done, self.failed = total, 0, 0
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.started = time.monotonic()
        self.progress = None
        if mode == "bar" and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn
            self.progress = Progress(TextColumn("grading"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                     TextColumn("[red]{task.fields[failed]} failed"), TextColumn("ETA"),
                                     TimeRemainingColumn(), TimeElapsedColumn(), TextColumn("{task.fields[last]}", markup=False),
                                     console=Console(file=self.stream))
            self.task = self.progress.add_task("grading", total=total, failed=0, last="")
            self.progress.start()

    def finished(self, student: str, score: float | None, max_score: float | None, status: str, seconds: float) -> None:
        self.done += 1
        bad = status not in ("graded", "not_implemented")
        self.failed += bad
        shown = "-" if score is None else f"{score:g}/{max_score:g}"
        if self.progress is not None:
            if bad:
                from rich.markup import escape
                self.progress.console.print(f"[red]{escape(student)}[/red]: {escape(status)} ({shown})",
                                            highlight=False)
            name = student if len(student) <= 24 else student[:23] + "…"
            self.progress.update(self.task, advance=1, failed=self.failed, last=f"{name}: {shown}")
        elif self.mode == "lines":
            rate = (time.monotonic() - self.started) / self.done
            eta = rate * (self.total - self.done)
            width = len(str(self.total))
            print(f"[{self.done:>{width}}/{self.total}] {student}  {shown}  {status}  ({seconds:.1f} s)  "
                  f"failed {self.failed}  ETA {eta:.0f} s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _started_not_done(out: Path, since: float) -> set[str]:
    started: dict[str, int] = {}
    try:
        for line in (out / LOG).read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 4 and float(parts[0]) >= since:
                started[parts[3]] = started.get(parts[3], 0) + (1 if parts[2] == "start" else -1)
    except (OSError, ValueError):
        pass
    return {s for s, n in started.items() if n > 0}


def _run_pool(jobs: list[Job], workers: int, config: CourseConfig, with_training: bool,
              out: Path, on_done: Callable[[dict[str, Any]], None]) -> None:
    import multiprocessing
    todo = {j.entry.student: j for j in jobs}
    blamed: dict[str, int] = {}
    restarts = 0
    ctx = multiprocessing.get_context("spawn")
    while todo:
        since = time.time()
        broken = False
        with _blas_pinned():
            executor = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                           initializer=_init_worker,
                                           initargs=(os.getpid(), config, with_training, str(out)))
            try:
                futures: dict[Future, Job] = {}
                for job in todo.values():
                    futures[executor.submit(_grade_task, _task(job, config, with_training))] = job
            except BaseException:
                _kill_pool(executor)
                raise
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    except Exception as exc:  # noqa: BLE001 - a grader bug costs one student, reported
                        result = _grader_error(job, config, out, f"{exc.__class__.__name__}: {exc}")
                    todo.pop(job.entry.student, None)
                    on_done(result)
        except BaseException:
            _kill_pool(executor)
            raise
        executor.shutdown(wait=True)
        if broken and todo:
            restarts += 1
            for student, job in list(todo.items()):  # finished, but its answer was lost with the pool
                if is_current(out, job, config, with_training):
                    todo.pop(student)
                    on_done(_finished_result(out, student))
            for student in _started_not_done(out, since):
                blamed[student] = blamed.get(student, 0) + 1
                if blamed[student] >= 2 and student in todo:
                    on_done(_grader_error(todo.pop(student), config, out,
                                          "the grading process died twice while grading this submission"))
            if restarts > MAX_POOL_RESTARTS:
                raise UserError("grading worker processes keep dying (out of memory?); finished students are "
                                f"kept in {out}: rerun with fewer --jobs")


def _finished_result(out: Path, student: str) -> dict[str, Any]:
    from .gradebook import read_results
    data, _ = read_results(out / student / "results.json")
    data = data or {}
    extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    return {"student": student, "score": data.get("score"), "max_score": data.get("max_score"),
            "status": str(extra.get("status", "graded")), "diagnoses": extra.get("diagnoses", []), "seconds": 0.0}


def _kill_pool(executor: ProcessPoolExecutor) -> None:
    for proc in list(getattr(executor, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()
    with contextlib.suppress(Exception):
        executor.shutdown(wait=False, cancel_futures=True)


def _task(job: Job, config: CourseConfig, with_training: bool) -> dict[str, Any]:
    return {"student": job.entry.student, "source": job.source, "origin": job.origin, "notes": job.notes,
            "meta": job.entry.meta(), "state": state_for(job, config, with_training)}


def _grader_error(job: Job, config: CourseConfig, out: Path, why: str) -> dict[str, Any]:
    """A grader-side failure: reported for this student, no state written (a rerun tries again)."""
    from ..checks.common import zero_results
    from ..config import CHECK_IDS
    from ..grade import CHECK_LABELS
    from ..results import GradeReport
    report = GradeReport([], "unknown", config.activation, config.year, status="grader_error",
                         grader_version=__version__)
    for check_id in CHECK_IDS:
        report.results += zero_results(check_id, CHECK_LABELS[check_id], config.rubric[check_id],
                                       f"internal grader error; tell the course staff ({why})", ["grader_error"])
    write_student(out / job.entry.student, report, job.entry.meta(), None)
    return {"student": job.entry.student, "score": 0.0, "max_score": report.max_score, "status": "grader_error",
            "diagnoses": ["grader_error"], "seconds": 0.0}


def build_gradebook(out: Path, roster: Roster, current: set[str] | None = None) -> tuple[list, Path, Path]:
    """Rows for every roster entry, read back from RESULTS/<student>/results.json.

    ``current``: the students whose results match their submission now; any other results (left by an
    earlier run, the regrade interrupted) are shown with status ``stale``, never as if up to date.
    """
    from .gradebook import feedback_link, missing_row, read_results, row_from_results, write_outputs
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
    origin = roster.origin
    subtitle = f"{roster.kind} {origin.name}"
    gradebook, summary = write_outputs(out, rows, roster.issues, title="Class summary", subtitle=subtitle)
    return rows, gradebook, summary


def run_batch(submissions: Path | str, out: Path | str, jobs: int | None = None, activation: str | None = None,
              force: bool = False, with_training: bool = True, progress: str = "auto",
              config: CourseConfig | None = None, stream=None,
              prepare_progress: Callable[[str], None] | None = None) -> BatchOutcome:
    """Grade every student of ``submissions`` into ``out``; see the module docstring for the layout."""
    started = time.monotonic()
    stream = stream or sys.stdout
    config = config or load_config(activation=activation)
    submissions = Path(submissions)
    if not submissions.exists():
        raise UserError(f"{submissions} does not exist; give a folder of submissions or an LMS export zip")
    out = Path(out).resolve()
    subs = submissions.resolve()
    if subs == out or (subs in out.parents and not out.relative_to(subs).parts[0].startswith(".")):
        raise UserError(f"--out {out} is inside the submissions folder, so it would be graded as a student; "
                        "choose a results folder outside it")
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(jobs)) if jobs else max(1, os.cpu_count() or 1)
    with exclusive(out):
        roster = discover(submissions, out / INPUTS)
        outcome = BatchOutcome(roster, out)
        plan = [plan_job(e) for e in roster.entries]
        for job in plan:
            if not force and is_current(out, job, config, with_training):
                job.action = "skip"
                outcome.skipped.append(job.entry.student)
        to_grade = [j for j in plan if j.action == "grade"]
        unreadable = [j for j in plan if j.action == "unreadable"]
        total = len(to_grade) + len(unreadable)
        print(f"{len(roster.entries)} students in {submissions} ({roster.kind}); "
              f"{len(outcome.skipped)} unchanged since the last run (skipped; --force regrades)"
              + (f"; grading {len(to_grade)} with {min(workers, len(to_grade))} worker(s)" if to_grade else ""),
              file=stream, flush=True)
        if to_grade:
            from ..grade import prepare
            # calibrate (once per machine, cached) HERE, so the pool workers find it in the cache
            prepare(config, with_training=with_training,
                    progress=prepare_progress or (lambda m: print(m, file=sys.stderr, flush=True)))
        reporter = Reporter(total, progress, stream)

        def done(result: dict[str, Any]) -> None:
            outcome.graded.append(result)
            reporter.finished(result["student"], result.get("score"), result.get("max_score"), result["status"],
                              result.get("seconds", 0.0))

        try:
            for job in unreadable:
                report = unreadable_report(job, config)
                write_student(out / job.entry.student, report, job.entry.meta(), state_for(job, config, with_training))
                log_event(out, "unreadable", job.entry.student, job.digest[:16])
                done({"student": job.entry.student, "score": 0.0, "max_score": report.max_score,
                      "status": "unreadable", "diagnoses": ["unreadable"], "seconds": 0.0})
            if to_grade:
                _run_pool(to_grade, workers, config, with_training, out, done)
        finally:
            reporter.close()
            current = {j.entry.student for j in plan if is_current(out, j, config, with_training)}
            outcome.rows, outcome.gradebook, outcome.summary = build_gradebook(out, roster, current)
        from ..similarity.batch import add_pairs_section
        add_pairs_section(out, roster, config, sys.stderr)
    outcome.seconds = time.monotonic() - started
    return outcome


def cli_batch(args) -> int:
    outcome = run_batch(args.submissions, args.out, jobs=args.jobs, activation=args.activation, force=args.force)
    print_outcome(outcome)
    return 0


def print_outcome(outcome: BatchOutcome, stream=None) -> None:
    stream = stream or sys.stdout
    rows = outcome.rows
    look = [r for r in rows if r.attention()]
    graded = len(outcome.graded)
    print(f"graded {graded}, skipped {len(outcome.skipped)} unchanged, in {outcome.seconds:.1f} s", file=stream)
    if look:
        print(f"{len(look)} need a look: " + ", ".join(f"{r.student} ({r.status})" for r in look[:10])
              + (" ..." if len(look) > 10 else ""), file=stream)
    print(f"gradebook: {outcome.gradebook}", file=stream)
    print(f"summary:   {outcome.summary}", file=stream)
