"""One gradebook row per student, read back from a Gradescope-schema results.json (ours or another grader's).

Shared by gradebook.csv, summary.html and ``backprop-lab gradebook``; it imports neither of them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..config import CHECK_IDS

QUIET_DIAGNOSES = {"not_checked"}                       # bookkeeping tags, not bugs
ATTENTION_STATUS = {"crashed", "timeout", "unreadable", "clash", "grader_error", "import_error", "syntax_error",
                    "pending", "stale", "missing", "memory", "no_functions"}
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
