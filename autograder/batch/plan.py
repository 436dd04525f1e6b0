"""The plan of a batch run: what each student's submission is (read in the parent, no student code runs),
its digest, and whether the results already in RESULTS are current for it (``.state.json``)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import CourseConfig
from ..errors import SubmissionError
from ..submission import walk_files
from .discover import Entry

STATE = ".state.json"
RAW_HASH_CAP = 4 * 1024**2
RAW_HASH_FILES = 200


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


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


def _raw_digest(path: Path | None) -> str:
    """A capped content hash of an unreadable entry (so a fixed upload is noticed); never raises."""
    if path is None:
        return ""
    h = hashlib.sha256()
    try:
        files = [path] if path.is_file() else walk_files(path)[0]
        for f in files[:RAW_HASH_FILES]:
            st = f.stat()
            h.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}|".encode("utf-8", "surrogateescape"))
            with open(f, "rb") as fh:
                h.update(fh.read(RAW_HASH_CAP))
    except Exception as exc:  # noqa: BLE001 - the digest then records why the entry could not be read
        h.update(f"{exc.__class__.__name__}: {exc}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def plan_job(entry: Entry) -> Job:
    """Read the submission in the parent (cheap, no student code runs) and hash what will be graded.

    The per-student boundary of planning: any exception (a damaged file, a bug of ours) makes this student
    ``unreadable`` with the reason; it never stops the class."""
    from ..submission import load_submission
    if not entry.problem and entry.path is not None:
        try:
            sub = load_submission(entry.path)
            digest = _sha({"source": sub.source, "origin": sub.origin, "notes": sub.notes, "entry": entry.meta()})
            return Job(entry, digest, sub.source, sub.origin, list(sub.notes))
        except SubmissionError as exc:
            entry.problem = str(exc)
        except OSError as exc:
            entry.problem = f"{entry.source} cannot be read ({exc.strerror or exc})"
        except (RecursionError, MemoryError) as exc:
            entry.problem = f"{entry.source} is too deeply nested or too large to read ({exc.__class__.__name__})"
        except Exception as exc:  # noqa: BLE001 - one student's file never stops the class
            entry.problem = f"{entry.source} could not be read ({exc.__class__.__name__}: {str(exc)[:200]})"
    if not entry.problem:
        entry.problem = "nothing to grade"
    return Job(entry, _sha({"raw": _raw_digest(entry.path), "entry": entry.meta()}), problem=entry.problem,
               action="unreadable")


def settings_digest(config: CourseConfig) -> str:
    """Every course setting (extensions, bounds, rubric, ...), not only those in ``fingerprint()``."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


def state_for(job: Job, config: CourseConfig, with_training: bool) -> dict[str, Any]:
    return {"student": job.entry.student, "sha256": job.digest, "config": config.fingerprint(),
            "settings": settings_digest(config), "grader": __version__, "training": with_training}


def is_current(out: Path, job: Job, config: CourseConfig, with_training: bool) -> bool:
    """True when RESULTS/<student> holds finished results of exactly this submission, config and grader."""
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
