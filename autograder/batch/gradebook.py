"""gradebook.csv (and summary.html beside it) from per-student gradebook rows.

Used at the start, during and at the end of every ``backprop-lab batch`` (always rebuilt from the
per-student results, so it is complete and consistent) and by ``backprop-lab gradebook``.
The CSV holds verdicts only (no timings), so two runs over the same submissions give the same bytes.

Spreadsheet safety: the file is UTF-8 with a byte-order mark (so Excel and LibreOffice read "Zoë"
as "Zoë"), and every text cell that a spreadsheet would read as a formula or a command (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with ``'`` (OWASP's CSV
injection rule). Number cells are written by the grader itself and are left as numbers.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import quote

from ..results import write_text_atomic
from .rows import Row, check_columns, fmt

__all__ = ["Row", "GRADEBOOK", "SUMMARY", "FORMATS", "safe_cell", "gradebook_csv", "canvas_csv", "write_gradebook",
           "write_outputs", "feedback_link"]   # Row: re-exported for callers of the old module layout

GRADEBOOK = "gradebook.csv"
SUMMARY = "summary.html"
TAIL_COLUMNS = ["isolation", "status", "late", "diagnoses", "note", "name", "sid", "email"]
FORMATS = ("default", "canvas")
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_ASSIGNMENT = "backprop-lab"


def safe_cell(text: object) -> str:
    """A text cell a spreadsheet shows as text: formula-like starts get a leading ``'``."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.student.casefold(), r.student))


def gradebook_csv(rows: list[Row], layout: str = "default", assignment: str = CANVAS_ASSIGNMENT) -> str:
    """The gradebook as CSV text (no BOM; :func:`write_gradebook` adds it).

    ``default``: DESIGN §7's columns (student, total, one per check, then TAIL_COLUMNS).
    ``canvas``: Canvas's gradebook import layout (its own export's columns and "Points Possible" row).
    """
    if layout == "canvas":
        return canvas_csv(rows, assignment)
    if layout != "default":
        raise ValueError(f"unknown gradebook layout {layout!r}; one of {', '.join(FORMATS)}")
    checks = check_columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "total", *checks, *TAIL_COLUMNS])
    for r in _sorted(rows):
        writer.writerow([safe_cell(r.student), fmt(r.total), *(fmt(r.by_check.get(c)) for c in checks),
                         *map(safe_cell, (r.isolation, r.status, "yes" if r.late else "", " ".join(r.bugs), r.note,
                                          r.name, r.sid, r.email))])
    return buf.getvalue()


def canvas_csv(rows: list[Row], assignment: str = CANVAS_ASSIGNMENT) -> str:
    """Canvas "Import" layout: Student, ID (Canvas user id), SIS User ID, SIS Login ID, Section, then one
    column named after the assignment (``Name (canvas id)`` updates that assignment; a new name creates one).
    Students without a score (pending, unreadable input scored 0 is a score) get an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, safe_cell(assignment)])
    top = max((r.max_score for r in rows if r.max_score), default=None)
    writer.writerow(["    Points Possible", "", "", "", "", fmt(top)])
    for r in _sorted(rows):
        writer.writerow([safe_cell(r.name or r.student), safe_cell(r.sid), "", safe_cell(r.email), "", fmt(r.total)])
    return buf.getvalue()


def write_gradebook(path: Path, rows: list[Row], layout: str = "default",
                    assignment: str = CANVAS_ASSIGNMENT) -> Path:
    """Write the gradebook atomically, UTF-8 with a BOM."""
    write_text_atomic(Path(path), BOM + gradebook_csv(rows, layout, assignment))
    return Path(path)


def write_outputs(out: Path, rows: list[Row], issues: list[str] | None = None, title: str = "",
                  subtitle: str = "", layout: str = "default", assignment: str = CANVAS_ASSIGNMENT,
                  with_figures: bool = True) -> tuple[Path, Path]:
    """Write ``gradebook.csv`` and ``summary.html`` into ``out`` (each atomically)."""
    from .summary import render_summary
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_gradebook(out / GRADEBOOK, rows, layout, assignment)
    write_text_atomic(out / SUMMARY, render_summary(rows, issues or [], title=title, subtitle=subtitle,
                                                    with_figures=with_figures))
    return out / GRADEBOOK, out / SUMMARY


def feedback_link(out: Path, student: str) -> str:
    return f"{quote(student)}/feedback.html" if (Path(out) / student / "feedback.html").is_file() else ""
