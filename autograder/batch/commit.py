"""Committing one student's results: results.json, feedback.html and ``.state.json`` land together.

Everything is rendered first, then written (each file fsynced) into a fresh staging folder
``RESULTS/.stage.<student>.<pid>``, state last, and the folder is swapped in as ``RESULTS/<student>``
by one rename (``renameat2(RENAME_EXCHANGE)`` when a previous folder exists; where the kernel lacks it,
two renames with the old folder parked as ``.old.<student>.<pid>``, put back by :func:`recover` if a
kill lands between them). A ``kill -9`` at any moment therefore leaves a student either finished
(all three files, skipped on rerun) or exactly as before; nobody finished is graded again.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import html
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import CourseConfig
from .plan import STATE, Job

LOG = ".batch.log"
STAGE_PREFIX = ".stage."
OLD_PREFIX = ".old."
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def log_event(out: Path, event: str, student: str, extra: str = "") -> None:
    """Append one line to RESULTS/.batch.log (a single write on an O_APPEND fd: lines never interleave)."""
    line = f"{time.time():.3f}\t{os.getpid()}\t{event}\t{student}\t{extra}\n".encode("utf-8", "surrogateescape")
    fd = os.open(out / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2); False where that is not available."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def commit_folder(out: Path, student: str, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> text, in order: put STATE last) as RESULTS/<student>, all at once."""
    out = Path(out)
    target = out / student
    stage = out / f"{STAGE_PREFIX}{student}.{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name, text in files.items():
        _write(stage / name, text)
    _fsync_dir(stage)
    if target.is_dir() and not target.is_symlink():
        if _exchange(stage, target):
            shutil.rmtree(stage, ignore_errors=True)    # now holds the previous results
        else:
            old = out / f"{OLD_PREFIX}{student}.{os.getpid()}"
            os.replace(target, old)
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
    else:
        if target.is_symlink() or target.exists():
            target.unlink()
        os.replace(stage, target)
    _fsync_dir(out)
    return target


def recover(out: Path) -> list[str]:
    """Undo what a killed run left half-way: staging folders are dropped; a previous folder parked by
    the two-rename fallback is put back when its student has no folder. Returns what was done."""
    done = []
    for p in sorted(Path(out).glob(".*.*")):
        if p.is_file() and p.name.endswith(".tmp"):      # half-written gradebook.csv / summary.html
            with contextlib.suppress(OSError):
                p.unlink()
            continue
        if not p.is_dir() or p.is_symlink():
            continue
        if p.name.startswith(STAGE_PREFIX):
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name}")
        elif p.name.startswith(OLD_PREFIX):
            student = p.name[len(OLD_PREFIX):].rsplit(".", 1)[0]
            target = Path(out) / student
            if student and not target.exists():
                os.replace(p, target)
                done.append(f"restored {student}")
            else:
                shutil.rmtree(p, ignore_errors=True)
    return done


def _page(report, student: str, figures: dict[str, str] | None) -> str:
    """The feedback page; if rendering fails (a grader bug), a plain page that still says the score."""
    try:
        from ..report.feedback import render_feedback
        return render_feedback(report, student, figures)
    except Exception as exc:  # noqa: BLE001 - the student's results are still committed
        rows = "".join(f"<li>{html.escape(r.name)}: {r.score:g}/{r.max_score:g}<pre>{html.escape(r.message)}</pre></li>"
                       for r in report.results)
        return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(student)}</title>"
                f"<h1>{html.escape(student)}: {report.score:g} / {report.max_score:g}</h1>"
                f"<p>The full page could not be drawn ({html.escape(exc.__class__.__name__)}); tell the course "
                f"staff.</p><ul>{rows}</ul>")


def write_student(out: Path, student: str, report, meta: dict[str, Any], state: dict[str, Any] | None,
                  figures: dict[str, str] | None = None) -> Path:
    """Render results.json and feedback.html, then commit them (with ``.state.json`` last) in one swap.
    ``state`` None (a grader error): no state, so the next run grades this student again."""
    from ..results import _jsonable, to_gradescope
    from .rows import first_paragraph
    data = to_gradescope(report)
    findings = [{"name": r.name, "diagnoses": list(r.diagnoses), "hint": first_paragraph(r.message)}
                for r in report.results if r.diagnoses and not r.passed]
    data["extra_data"]["batch"] = {**meta, "findings": findings}
    files = {"results.json": json.dumps(data, indent=2, default=_jsonable),
             "feedback.html": _page(report, meta.get("student", student), figures)}
    if state is not None:
        files[STATE] = json.dumps({**state, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid()})
    return commit_folder(out, student, files)


def unreadable_report(job: Job, config: CourseConfig):
    """A zero report that says, in one place per check, why the submission could not be graded."""
    from ..grade import unreadable_report as zero_report
    return zero_report(config, job.problem)


def grader_error_report(config: CourseConfig, why: str):
    """A zero report for a grader-side failure on one student (reported, never hidden)."""
    from ..checks.registry import all_zero
    from ..results import GradeReport
    report = GradeReport([], "unknown", config.activation, config.year, status="grader_error",
                         grader_version=__version__)
    report.results += all_zero(config, f"internal grader error; tell the course staff ({why})", ["grader_error"])
    return report
