"""The per-student feedback page: one self-contained HTML file rendered with jinja2."""
from __future__ import annotations

from typing import Any

import jinja2

from ..checks.registry import TITLES
from ..results import GradeReport

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("autograder", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

CHECK_TITLES = TITLES  # one title per check id (autograder/checks/registry.py)


def figures_for(report: GradeReport) -> dict[str, str]:
    """Inline images (data URIs) for the report; empty when plotting is unavailable."""
    try:
        from .plots import report_figures
    except ImportError:
        return {}
    try:
        return report_figures(report)
    except Exception:  # noqa: BLE001 - a plot must never stop a report from being written
        return {}


def render_feedback(report: GradeReport, student: str = "", figures: dict[str, Any] | None = None) -> str:
    groups: dict[str, list] = {}
    for r in report.results:
        groups.setdefault(r.check_id, []).append(r)
    checks = [{"id": cid, "title": CHECK_TITLES.get(cid, cid), "results": rs,
               "score": round(sum(r.score for r in rs), 4), "max": round(sum(r.max_score for r in rs), 4)}
              for cid, rs in groups.items()]
    return _ENV.get_template("feedback.html.j2").render(
        report=report, student=student, checks=checks,
        figures=figures if figures is not None else figures_for(report))
