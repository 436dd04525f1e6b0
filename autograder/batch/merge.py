"""``backprop-lab gradebook RESULTS... --out DIR``: merge results.json files produced elsewhere (the
Gradescope autograder, otter-grader, several batch runs) into one gradebook and summary.

In a Gradescope export only Gradescope's own results file of each submission is read
(``<submission>/results/results.json``, where its autograder writes it): a ``results.json`` the student
uploaded anywhere else in the submission folder is never taken for a grade.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from ..errors import UserError
from .gradebook import FORMATS, feedback_link, write_outputs
from .rows import Row, missing_row, read_results, row_from_results

GRADESCOPE_RESULTS = ("results", "results.json")   # /autograder/results/results.json, inside the export
MAX_SCAN_DEPTH = 4


def find_results(paths: Iterable[Path | str], meta: dict[str, dict] | None = None
                 ) -> tuple[list[tuple[str, Path]], list[str]]:
    """(student, results.json) pairs from folders (one per student, or one level of them) and files.

    ``meta`` (filled in): Gradescope's name/sid/email/late per results file, keyed by its resolved path."""
    found: list[tuple[str, Path]] = []
    issues: list[str] = []
    meta = {} if meta is None else meta
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"{p} does not exist; give results folders (one per student) or results.json files")
        if p.is_file():
            found.append((_student_of(p), p))
        elif (p / "results.json").is_file():
            found.append((p.resolve().name, p / "results.json"))
        elif (root := _gradescope_root(p)) is not None:
            found += _gradescope_results(root, issues, meta)
        else:
            hits = _scan(p)
            if not hits:
                issues.append(f"{p}: no results.json found in it")
            for q in hits:
                parts = q.relative_to(p).parts
                found.append((parts[0] if len(parts) > 1 else p.resolve().name, q))
    return found, issues


def _scan(root: Path) -> list[Path]:
    """results.json files at most MAX_SCAN_DEPTH levels below ``root`` (no hidden folders, no links),
    found without recursion."""
    hits, stack = [], [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for c in children:
            if c.name.startswith(".") or c.is_symlink():
                continue
            if c.is_dir() and depth + 1 < MAX_SCAN_DEPTH:
                stack.append((c, depth + 1))
            elif c.name == "results.json" and c.is_file():
                hits.append(c)
    return sorted(hits)


def _gradescope_root(p: Path) -> Path | None:
    """The folder holding submission_metadata.yml (p itself or its single sub-folder), if any."""
    from .discover import GRADESCOPE_METADATA
    if (p / GRADESCOPE_METADATA).is_file():
        return p
    subdirs = [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
    if len(subdirs) == 1 and (subdirs[0] / GRADESCOPE_METADATA).is_file():
        return subdirs[0]
    return None


def _gradescope_results(root: Path, issues: list[str], meta: dict[str, dict]) -> list[tuple[str, Path]]:
    """A Gradescope export with results: students named as `batch` names them (sid, else email, else name)."""
    from .discover import _gradescope
    found = []
    for entry in _gradescope(root, {}, "").entries:
        own = entry.path.joinpath(*GRADESCOPE_RESULTS) if entry.path is not None else None
        if own is None or own.is_symlink() or not own.is_file():
            issues.append(f"{entry.source}: no {'/'.join(GRADESCOPE_RESULTS)} (Gradescope's results file) in this "
                          "submission folder")
            continue
        found.append((entry.student, own))
        meta[str(own.resolve())] = {"name": entry.name, "sid": entry.sid, "email": entry.email, "late": entry.late}
    return found


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
    meta: dict[str, dict] = {}
    found, issues = find_results(paths, meta)
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
            for key, value in meta.get(str(path.resolve()), {}).items():
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
    layout = getattr(args, "format", None) or "default"
    if layout not in FORMATS:
        raise UserError(f"--format {layout}: choose one of {', '.join(FORMATS)}")
    csv_path, summary = write_outputs(out, rows, issues, title="Class summary",
                                      subtitle=f"merged from {len(args.results)} location(s)", layout=layout,
                                      assignment=getattr(args, "assignment", None) or "backprop-lab")
    print(f"{len(rows)} students -> {csv_path}" + ("" if layout == "default" else f" ({layout} import layout)"))
    for issue in issues:
        print(f"note: {issue}")
    print(f"summary: {summary}")
    return 0
