"""``backprop-lab crosscheck SUBMISSIONS --recorded GRADES.csv --out DIR``: catch credit nobody earned.

otter-grader and nbgrader run student code in the grading kernel, so a notebook can disarm their tests
(replace ``bplab_checks``' functions, patch numpy or ``builtins.__import__``) and record full marks.
This re-grades every submission with the normal sandboxed grader (``backprop-lab batch``: the
student's implementation only, the checks in the grader's own process, out of the student's reach),
reads the scores the course recorded, and writes ``DIR/crosscheck.csv``
(student, recorded, sandboxed, flagged, note): flagged = the recorded score is higher than the
sandboxed one by more than ``--tolerance`` points (default 0.5), or there is no submission to back it.

Recorded scores understood (the format is recognised from the header):

- nbgrader ``nbgrader export`` grades.csv: ``student_id``, ``raw_score`` (``--assignment`` picks one
  assignment when the file has several);
- otter ``otter grade`` final_grades.csv: ``file``, ``total_points_earned`` (the
  ``points-per-question`` row skipped); the student is the file's stem;
- Gradescope "Download Grades" CSV: ``SID``/``Email``/``Name``, ``Total Score``;
- any CSV with ``student`` and ``score`` (or ``total``) columns.

SUBMISSIONS is what ``batch`` takes (a folder with one entry per student, a Gradescope export, a
Canvas zip) or an nbgrader course root (its ``submitted/`` is used).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..errors import UserError

CSV_NAME = "crosscheck.csv"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Recorded:
    key: str
    score: float
    origin: str  # nbgrader, otter, gradescope, generic


@dataclass
class Row:
    student: str
    recorded: float | None
    sandboxed: float | None
    flagged: bool
    note: str = ""


def _number(text: str, where: str) -> float:
    try:
        return float(str(text).strip() or "nan")
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a score") from None


def read_recorded(path: Path, assignment: str | None = None) -> list[Recorded]:
    """The recorded scores of ``path`` (nbgrader, otter, Gradescope or generic CSV)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--recorded {path} does not exist; give nbgrader's grades.csv, otter's final_grades.csv "
                        "or a Gradescope grades export")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header = set(rows[0]) if rows else set()
    out: list[Recorded] = []
    if {"student_id", "raw_score"} <= header:
        if "assignment" in header:
            names = sorted({r["assignment"] for r in rows})
            if assignment is None and len(names) > 1:
                raise UserError(f"{path} holds several assignments ({', '.join(names)}); pick one with --assignment")
            rows = [r for r in rows if assignment is None or r["assignment"] == assignment]
        out = [Recorded(r["student_id"], _number(r["raw_score"], f"{path} {r['student_id']}"), "nbgrader")
               for r in rows]
    elif {"file", "total_points_earned"} <= header:
        out = [Recorded(PurePath(r["file"].replace("\\", "/")).stem,
                        _number(r["total_points_earned"], f"{path} {r['file']}"), "otter")
               for r in rows if r["file"] != "points-per-question"]
    elif "Total Score" in header and header & {"SID", "Email", "Name"}:
        for r in rows:
            key = next((r[k] for k in ("SID", "Email", "Name") if r.get(k)), "")
            if key:
                out.append(Recorded(key, _number(r["Total Score"] or "0", f"{path} {key}"), "gradescope"))
    elif "student" in header and header & {"score", "total"}:
        column = "score" if "score" in header else "total"
        out = [Recorded(r["student"], _number(r[column], f"{path} {r['student']}"), "generic") for r in rows]
    else:
        raise UserError(f"{path}: columns {', '.join(sorted(header)) or '(none)'} are none of nbgrader's "
                        "(student_id, raw_score), otter's (file, total_points_earned), Gradescope's "
                        "(SID/Email, Total Score) or (student, score)")
    return out


def _keys(row) -> list[str]:
    return [k.strip().casefold() for k in (row.student, row.sid, row.email, row.name) if k and k.strip()]


def compare(recorded: list[Recorded], sandboxed: list, tolerance: float = 0.5) -> list[Row]:
    """One Row per student of either side; ``sandboxed``: gradebook rows (student, total, sid, email, name)."""
    from ..batch.discover import student_id
    index = {}
    for row in sandboxed:
        for key in _keys(row):
            index.setdefault(key, row)
    matched: set[str] = set()
    rows = []
    for rec in recorded:
        row = index.get(rec.key.strip().casefold()) or index.get(student_id(rec.key).casefold())
        if row is None:
            rows.append(Row(rec.key, rec.score, None, rec.score > tolerance,
                            "no submission found to regrade" if rec.score > tolerance else "no submission found"))
            continue
        matched.add(row.student)
        total = row.total
        if total is None:
            rows.append(Row(row.student, rec.score, None, True, f"the sandboxed grading did not finish ({row.status})"))
            continue
        flagged = rec.score > total + tolerance
        note = (f"recorded {rec.score:g} > sandboxed {total:g}: the tests may have been disarmed; read the notebook"
                if flagged else "")
        rows.append(Row(row.student, rec.score, float(total), flagged, note))
    for row in sandboxed:
        if row.student not in matched:
            rows.append(Row(row.student, None, row.total, False, "no recorded score"))
    return sorted(rows, key=lambda r: (not r.flagged, r.student.casefold()))


def _cell(value) -> str:
    """A CSV cell that a spreadsheet shows as text (a student id is data, never a formula)."""
    text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(path: Path, rows: list[Row]) -> None:
    from ..results import write_text_atomic
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "recorded", "sandboxed", "flagged", "note"])
    for r in rows:
        writer.writerow([_cell(r.student), _cell(r.recorded), _cell(r.sandboxed), "yes" if r.flagged else "",
                         _cell(r.note)])
    write_text_atomic(Path(path), buf.getvalue())


def submissions_folder(path: Path) -> Path:
    """An nbgrader course root means its ``submitted/``; anything else is used as given."""
    path = Path(path)
    return path / "submitted" if (path / "submitted").is_dir() and (path / "nbgrader_config.py").is_file() else path


def crosscheck(submissions: Path, recorded: Path, out: Path, tolerance: float = 0.5, jobs: int | None = None,
               assignment: str | None = None, with_training: bool = True, config=None, stream=None) -> list[Row]:
    """Regrade ``submissions`` into ``out/sandboxed`` and write ``out/crosscheck.csv``; the rows, flagged first."""
    from ..batch.runner import run_batch
    scores = read_recorded(recorded, assignment)
    out = Path(out)
    outcome = run_batch(submissions_folder(submissions), out / "sandboxed", jobs=jobs, with_training=with_training,
                        config=config, progress="lines", stream=stream or sys.stderr)
    rows = compare(scores, outcome.rows, tolerance)
    write_csv(out / CSV_NAME, rows)
    return rows


def cli_crosscheck(args: argparse.Namespace) -> int:
    """Exit 0 when nobody is flagged, 1 when someone is (the CSV lists them first)."""
    rows = crosscheck(Path(args.submissions), Path(args.recorded), Path(args.out), args.tolerance, args.jobs,
                      args.assignment)
    flagged = [r for r in rows if r.flagged]
    print(f"{len(rows)} students, {len(flagged)} flagged (recorded score above the sandboxed one): "
          f"{Path(args.out) / CSV_NAME}")
    for r in flagged[:20]:
        print(f"  {r.student}: recorded {_cell(r.recorded) or '-'}, sandboxed {_cell(r.sandboxed) or '-'}")
    return 1 if flagged else 0
