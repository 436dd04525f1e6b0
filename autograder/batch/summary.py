"""The class summary page: score histogram, per-check averages, most common bugs, who needs a look."""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import jinja2

from .. import __version__
from ..checks.common import SYMPTOM_TAGS
from .rows import Row, check_columns, fmt

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("autograder", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = fmt


def class_stats(rows: list[Row]) -> dict[str, Any]:
    scored = [r for r in rows if r.total is not None]
    totals = [r.total for r in scored]
    max_score = max((r.max_score for r in scored if r.max_score), default=100.0)
    checks = check_columns(rows)
    averages: dict[str, tuple[float, float]] = {}
    for c in checks:
        values = [r.by_check[c] for r in scored if c in r.by_check]
        top = max((r.max_by_check.get(c, 0.0) for r in scored), default=0.0)
        if values and top:
            averages[c] = (round(sum(values) / len(values), 2), top)
    full = sum(1 for r in scored if r.max_score and r.total is not None and r.total >= r.max_score - 1e-9)
    return {"n": len(rows), "scored": len(scored), "max_score": max_score, "averages": averages, "full": full,
            "mean": round(statistics.fmean(totals), 1) if totals else None,
            "median": round(statistics.median(totals), 1) if totals else None}


def common_bugs(rows: list[Row]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    students: dict[str, list[Row]] = {}
    hints: dict[str, str] = {}
    for r in rows:
        for bug in [b for b in r.bugs if b not in SYMPTOM_TAGS]:  # symptoms are not bugs
            counts[bug] += 1
            students.setdefault(bug, []).append(r)
            if bug not in hints and r.hints.get(bug):
                hints[bug] = r.hints[bug]
    return [{"id": bug, "count": n, "students": students[bug], "hint": hints.get(bug, "")}
            for bug, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def render_summary(rows: list[Row], issues: list[str], title: str = "", subtitle: str = "",
                   with_figures: bool = True) -> str:
    """The class summary page. ``with_figures=False`` (the pages a running batch rewrites as students
    finish) leaves the two matplotlib figures out: drawing them would take CPU from the graders."""
    from ..report import plots
    rows = sorted(rows, key=lambda r: (r.student.casefold(), r.student))
    stats = class_stats(rows)
    figures = {}
    makers = (("histogram", lambda: plots.score_histogram([r.total for r in rows if r.total is not None],
                                                           stats["max_score"])),
              ("averages", lambda: plots.check_averages(stats["averages"])))
    for name, make in makers if with_figures else ():
        try:
            uri = make()
        except Exception:  # noqa: BLE001 - the page is written even if a figure cannot be drawn
            uri = None
        if uri:
            figures[name] = uri
    attention = [(r, r.attention()) for r in rows]
    attention = [(r, why) for r, why in attention if why]
    statuses = Counter(r.status for r in rows)
    return _ENV.get_template("summary.html.j2").render(
        title=title or "Class summary", subtitle=subtitle, rows=rows, stats=stats, figures=figures,
        bugs=common_bugs(rows), attention=attention, issues=issues, checks=check_columns(rows),
        statuses=sorted(statuses.items()), version=__version__)
