"""gradebook.csv and summary.html from per-student results.json files.

Used at the end of every ``backprop-lab batch`` (rebuilt from the per-student results, so it is
always complete and consistent) and by ``backprop-lab gradebook RESULTS... --out DIR``, which merges
results.json files produced elsewhere (the Gradescope autograder, otter-grader, several batch runs).
The CSV holds verdicts only (no timings), so two runs over the same submissions give the same bytes.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from ..config import CHECK_IDS
from ..errors import UserError
from ..results import write_text_atomic

GRADEBOOK = "gradebook.csv"
SUMMARY = "summary.html"
TAIL_COLUMNS = ["isolation", "status", "late", "diagnoses", "note", "name", "sid", "email"]
QUIET_DIAGNOSES = {"not_checked"}                       # bookkeeping tags, not bugs
ATTENTION_STATUS = {"crashed", "timeout", "unreadable", "clash", "grader_error", "import_error", "syntax_error",
                    "pending", "stale", "missing", "memory"}
ATTENTION_DIAGNOSES = {"timeout": "timed out", "crashed": "the worker crashed", "memory": "ran out of memory",
                       "hostile_protocol": "tampered with the grading protocol (hostile behaviour)",
                       "grader_error": "internal grader error", "too_slow": "training too slow for the budget"}


@dataclass
class Row:
    """One student's line of the gradebook, plus what the summary page needs."""
    student: str
    total: float | None = None
    max_score: float | None = None
    by_check: dict[str, float] = field(default_factory=dict)
    max_by_check: dict[str, float] = field(default_factory=dict)
    isolation: str = ""
    status: str = "graded"
    late: bool = False
    diagnoses: list[str] = field(default_factory=list)
    note: str = ""
    name: str = ""
    sid: str = ""
    email: str = ""
    link: str = ""                                        # relative href of the feedback page, if any
    events: list[str] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)   # diagnosis id -> the TA sentence shown to the student

    @property
    def bugs(self) -> list[str]:
        return [d for d in self.diagnoses if d not in QUIET_DIAGNOSES]

    def attention(self) -> list[str]:
        """Why a TA should look at this student (empty: nothing unusual)."""
        why = []
        if self.status in ATTENTION_STATUS:
            why.append(self.status.replace("_", " ") + (f": {self.note}" if self.note else ""))
        why += [text for d, text in ATTENTION_DIAGNOSES.items() if d in self.diagnoses and d != self.status]
        if self.events and not why:
            why.append("during grading: " + self.events[0])
        return why


def _num(x: Any) -> float | None:
    try:
        return round(float(x), 4)
    except (TypeError, ValueError):
        return None


def fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def short_isolation(text: str) -> str:
    return str(text).split(":", 1)[0].strip() if text else ""


def read_results(path: Path) -> tuple[dict | None, str]:
    """(results.json as a dict, "") or (None, why it cannot be used)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no results.json"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"results.json is unreadable ({exc.__class__.__name__}: {str(exc)[:120]})"
    if not isinstance(data, dict):
        return None, "results.json is not a JSON object"
    return data, ""


def row_from_results(student: str, data: dict, link: str = "") -> Row:
    """A gradebook row from a Gradescope-schema results.json (ours, or another grader's)."""
    extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    batch = extra.get("batch") if isinstance(extra.get("batch"), dict) else {}
    by_check: dict[str, float] = {}
    max_by_check: dict[str, float] = {}
    hints: dict[str, str] = {}
    for test in data.get("tests") or []:
        if not isinstance(test, dict):
            continue
        name = str(test.get("name", ""))
        check = name.split(":", 1)[0].strip() if ":" in name else (name.strip() or "tests")
        by_check[check] = round(by_check.get(check, 0.0) + (_num(test.get("score")) or 0.0), 4)
        max_by_check[check] = round(max_by_check.get(check, 0.0) + (_num(test.get("max_score")) or 0.0), 4)
        for tag in test.get("tags") or []:
            if isinstance(tag, str) and tag not in hints:
                hints[tag] = first_paragraph(test.get("output", ""))
    for finding in batch.get("findings") or []:
        if isinstance(finding, dict):
            for tag in finding.get("diagnoses") or []:
                if isinstance(tag, str) and tag not in hints:
                    hints[tag] = str(finding.get("hint", ""))
    total = _num(data.get("score"))
    if total is None and by_check:
        total = round(sum(by_check.values()), 4)
    max_score = _num(data.get("max_score"))
    if max_score is None and max_by_check:
        max_score = round(sum(max_by_check.values()), 4)
    diagnoses = [str(d) for d in (extra.get("diagnoses") or []) if isinstance(d, str)]
    for tag in hints:
        if tag not in diagnoses:
            diagnoses.append(tag)
    status = str(batch.get("status") or extra.get("status") or "graded")
    return Row(student=student, total=total, max_score=max_score, by_check=by_check, max_by_check=max_by_check,
               isolation=short_isolation(extra.get("isolation", "")), status=status, late=bool(batch.get("late")),
               diagnoses=diagnoses, note=str(batch.get("note", "")), name=str(batch.get("name", "")),
               sid=str(batch.get("sid", "")), email=str(batch.get("email", "")), link=link,
               events=[str(e) for e in (extra.get("events") or [])][:5], hints=hints)


def first_paragraph(text: Any, limit: int = 400) -> str:
    """The TA sentence of a message: its first paragraph, without any traceback."""
    text = str(text or "").strip().split("\n\n", 1)[0].split("\nTraceback", 1)[0].split("Traceback (most", 1)[0]
    return text.strip()[:limit]


def missing_row(student: str, why: str, status: str = "missing", **meta: Any) -> Row:
    return Row(student=student, status=status, note=why, **meta)


def check_columns(rows: Iterable[Row]) -> list[str]:
    """The five check ids first (always), then any other check a foreign results.json had."""
    rows = list(rows)
    extra = sorted({c for r in rows for c in r.by_check} - set(CHECK_IDS))
    return list(CHECK_IDS) + extra


def gradebook_csv(rows: list[Row]) -> str:
    checks = check_columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "total", *checks, *TAIL_COLUMNS])
    for r in sorted(rows, key=lambda r: (r.student.casefold(), r.student)):
        writer.writerow([r.student, fmt(r.total), *(fmt(r.by_check.get(c)) for c in checks), r.isolation, r.status,
                         "yes" if r.late else "", " ".join(r.bugs), r.note, r.name, r.sid, r.email])
    return buf.getvalue()


def write_outputs(out: Path, rows: list[Row], issues: list[str] | None = None, title: str = "",
                  subtitle: str = "") -> tuple[Path, Path]:
    """Write ``gradebook.csv`` and ``summary.html`` into ``out`` (each atomically)."""
    from .summary import render_summary
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / GRADEBOOK, gradebook_csv(rows))
    write_text_atomic(out / SUMMARY, render_summary(rows, issues or [], title=title, subtitle=subtitle))
    return out / GRADEBOOK, out / SUMMARY


def feedback_link(out: Path, student: str) -> str:
    return f"{quote(student)}/feedback.html" if (Path(out) / student / "feedback.html").is_file() else ""


# ---- backprop-lab gradebook RESULTS... --out DIR ---------------------------------------------

def find_results(paths: Iterable[Path | str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """(student, results.json) pairs from folders (one per student, or one level of them) and files."""
    found: list[tuple[str, Path]] = []
    issues: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"{p} does not exist; give results folders (one per student) or results.json files")
        if p.is_file():
            found.append((_student_of(p), p))
        elif (p / "results.json").is_file():
            found.append((p.resolve().name, p / "results.json"))
        elif _gradescope_root(p) is not None:
            found += _gradescope_results(_gradescope_root(p), issues)
        else:
            hits = sorted(q for q in p.rglob("results.json") if len(q.relative_to(p).parts) <= 4
                          and not any(part.startswith(".") for part in q.relative_to(p).parts))
            if not hits:
                issues.append(f"{p}: no results.json found in it")
            for q in hits:
                found.append((q.relative_to(p).parts[0] if len(q.relative_to(p).parts) > 1 else p.resolve().name, q))
    return found, issues


def _gradescope_root(p: Path) -> Path | None:
    """The folder holding submission_metadata.yml (p itself or its single sub-folder), if any."""
    from .discover import GRADESCOPE_METADATA
    if (p / GRADESCOPE_METADATA).is_file():
        return p
    subdirs = [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
    if len(subdirs) == 1 and (subdirs[0] / GRADESCOPE_METADATA).is_file():
        return subdirs[0]
    return None


def _gradescope_results(root: Path, issues: list[str]) -> list[tuple[str, Path]]:
    """A Gradescope export with results: students named as `batch` names them (sid, else email, else name)."""
    from .discover import _gradescope
    found = []
    for entry in _gradescope(root, {}, "").entries:
        hits = sorted(entry.path.rglob("results.json")) if entry.path is not None else []
        if not hits:
            issues.append(f"{entry.source}: no results.json in this submission folder")
            continue
        found.append((entry.student, hits[0]))
        _GRADESCOPE_META[str(hits[0].resolve())] = {"name": entry.name, "sid": entry.sid, "email": entry.email,
                                                     "late": entry.late}
    return found


_GRADESCOPE_META: dict[str, dict] = {}


def _student_of(path: Path) -> str:
    """Gradescope writes results/results.json: the student is the folder above ``results``."""
    parent = path.resolve().parent
    if parent.name == "results" and parent.parent.name:
        return parent.parent.name
    return parent.name or path.stem


def merge(paths: Iterable[Path | str], out: Path | str) -> tuple[list[Row], list[str]]:
    """Copy every results.json (and its feedback.html) into OUT/<student>/ and return the rows."""
    from .discover import student_id
    out = Path(out)
    found, issues = find_results(paths)
    if not found and not issues:
        raise UserError("no results.json files found")
    by_id: dict[str, list[Path]] = {}
    for raw_student, path in found:
        by_id.setdefault(student_id(raw_student), []).append(path)
    rows: list[Row] = []
    for sid, paths_ in sorted(by_id.items()):
        clash = len(paths_) > 1
        for n, path in enumerate(sorted(paths_), 1):
            student = f"{sid}~{n}" if clash else sid
            data, why = read_results(path)
            target = out / student
            if data is None:
                rows.append(missing_row(student, f"{path}: {why}", status="unreadable"))
                continue
            target.mkdir(parents=True, exist_ok=True)
            if path.resolve() != (target / "results.json").resolve():
                shutil.copyfile(path, target / "results.json")
            feedback = path.parent / "feedback.html"
            if feedback.is_file() and feedback.resolve() != (target / "feedback.html").resolve():
                shutil.copyfile(feedback, target / "feedback.html")
            row = row_from_results(student, data, feedback_link(out, student))
            for key, value in _GRADESCOPE_META.get(str(path.resolve()), {}).items():
                if value and not getattr(row, key):
                    setattr(row, key, value)
            if clash:
                row.status = "clash"
                row.note = "; ".join(filter(None, [f"{len(paths_)} results map to student {sid!r} "
                                                   f"({', '.join(map(str, sorted(paths_)))})", row.note]))
            rows.append(row)
    return rows, issues


def cli_gradebook(args) -> int:
    out = Path(args.out)
    rows, issues = merge(args.results, out)
    if not rows:
        raise UserError("; ".join(issues) or "no results found")
    csv_path, summary = write_outputs(out, rows, issues, title="Class summary",
                                      subtitle=f"merged from {len(args.results)} location(s)")
    print(f"{len(rows)} students -> {csv_path}")
    for issue in issues:
        print(f"note: {issue}")
    print(f"summary: {summary}")
    return 0
