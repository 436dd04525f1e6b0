"""The worker pool of a batch run: spawned processes (one-thread BLAS, dying with the batch), each with a
grading slot of its own, grading one student per task and committing its folder; a dead pool is rebuilt."""
from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable

from ..blas import one_thread_env, one_thread_for_children
from ..config import CourseConfig
from ..errors import UserError
from .commit import LOG, grader_error_report, log_event, write_student
from .plan import Job, is_current, state_for

WORKERS_LOCK = ".workers.lock"
MAX_POOL_RESTARTS = 3
PR_SET_PDEATHSIG = 1
MAX_SLOTS = 256

_ENV = None
_OUT: Path | None = None
_WORKER_LOCK_FD: int | None = None
_SLOT_FD: int | None = None


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
                 out: str, iso=None, allowlists=None) -> None:
    """One pool process: dies with the batch, ignores the signals the parent handles, and grades with
    the isolation level and allowlists the parent detected (``iso``, ``allowlists``; probed here
    when absent) instead of probing the machine once more per worker."""
    global _ENV, _OUT, _WORKER_LOCK_FD
    os.environ.update(one_thread_env())
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C and SIGTERM are the parent's business:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # it kills the pool once the gradebook is safe
    _OUT = Path(out)
    _WORKER_LOCK_FD = os.open(_OUT / WORKERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(_WORKER_LOCK_FD, fcntl.LOCK_SH)  # a rerun waits until no worker of this run is left
    from dataclasses import replace
    from ..grade import prepare
    from ..sandbox.level import with_slot
    _ENV = prepare(config, with_training=with_training, iso=iso)
    slot_iso = with_slot(_ENV.iso, _claim_slot(_OUT))
    if allowlists:  # the same interpreter's files, whichever grading-slot user reads them
        from ..sandbox.allowlist import adopt
        same_user = (_ENV.iso.uid, _ENV.iso.gid)
        adopt({**allowlists, **{(py, slot_iso.uid, slot_iso.gid): allow for (py, uid, gid), allow in allowlists.items()
                                if (uid, gid) == same_user}})
    _ENV = replace(_ENV, iso=slot_iso)
    if _ENV.data is not None:
        from ..report import plots
        plots.set_test_images(_ENV.data.test.X, _ENV.data.test.y)


def _grade_task(task: dict[str, Any]) -> dict[str, Any]:
    """Grade one student in this pool worker and commit its folder; returns a small summary."""
    from ..grade import grade_source
    assert _ENV is not None and _OUT is not None
    student = task["student"]
    started = time.perf_counter()
    log_event(_OUT, "start", student)
    report = grade_source(task["source"], _ENV, task["origin"], task["notes"])
    write_student(_OUT, student, report, task["meta"], task["state"])
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


def run_pool(jobs: list[Job], workers: int, config: CourseConfig, with_training: bool,
             out: Path, on_done: Callable[[dict[str, Any]], None], iso=None) -> None:
    """Grade ``jobs`` in ``workers`` processes; ``on_done`` gets each student's summary as it finishes.
    ``iso``: the isolation level this process detected, handed to the workers with its allowlists."""
    from ..sandbox.allowlist import derived
    import multiprocessing
    todo = {j.entry.student: j for j in jobs}
    blamed: dict[str, int] = {}
    restarts = 0
    ctx = multiprocessing.get_context("spawn")
    while todo:
        since = time.time()
        broken = False
        with one_thread_for_children():
            executor = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                           initializer=_init_worker,
                                           initargs=(os.getpid(), config, with_training, str(out), iso,
                                                     derived() if iso is not None else None))
            try:
                futures: dict[Future, Job] = {}
                for job in todo.values():
                    futures[executor.submit(_grade_task, task_for(job, config, with_training))] = job
            except BaseException:
                kill_pool(executor)
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
                        result = grader_error(job, config, out, f"{exc.__class__.__name__}: {exc}")
                    todo.pop(job.entry.student, None)
                    on_done(result)
        except BaseException:
            kill_pool(executor)
            raise
        executor.shutdown(wait=True)
        if broken and todo:
            restarts += 1
            for student, job in list(todo.items()):  # finished, but its answer was lost with the pool
                if is_current(out, job, config, with_training):
                    todo.pop(student)
                    on_done(finished_result(out, student))
            for student in _started_not_done(out, since):
                blamed[student] = blamed.get(student, 0) + 1
                if blamed[student] >= 2 and student in todo:
                    on_done(grader_error(todo.pop(student), config, out,
                                         "the grading process died twice while grading this submission"))
            if restarts > MAX_POOL_RESTARTS:
                raise UserError("grading worker processes keep dying (out of memory?); finished students are "
                                f"kept in {out}: rerun with fewer --jobs")


def finished_result(out: Path, student: str) -> dict[str, Any]:
    from .rows import read_results
    data, _ = read_results(out / student / "results.json")
    data = data or {}
    extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    return {"student": student, "score": data.get("score"), "max_score": data.get("max_score"),
            "status": str(extra.get("status", "graded")), "diagnoses": extra.get("diagnoses", []), "seconds": 0.0}


def kill_pool(executor: ProcessPoolExecutor) -> None:
    for proc in list(getattr(executor, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()
    with contextlib.suppress(Exception):
        executor.shutdown(wait=False, cancel_futures=True)


def task_for(job: Job, config: CourseConfig, with_training: bool) -> dict[str, Any]:
    return {"student": job.entry.student, "source": job.source, "origin": job.origin, "notes": job.notes,
            "meta": job.entry.meta(), "state": state_for(job, config, with_training)}


def grader_error(job: Job, config: CourseConfig, out: Path, why: str) -> dict[str, Any]:
    """A grader-side failure: reported for this student, no state written (a rerun tries again)."""
    report = grader_error_report(config, why)
    try:
        write_student(out, job.entry.student, report, job.entry.meta(), None)
    except Exception:  # noqa: BLE001 - the row still says grader_error (pending, with the reason, in the gradebook)
        pass
    return {"student": job.entry.student, "score": 0.0, "max_score": report.max_score, "status": "grader_error",
            "diagnoses": ["grader_error"], "seconds": 0.0}
