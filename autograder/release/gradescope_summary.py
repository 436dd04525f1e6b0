"""A per-check summary a student can read on Gradescope (``output_format: "md"``).

Gradescope shows results.json's top-level ``output``; the grader's plots live in feedback.html, which
Gradescope never shows. This renders, from the results.json the grader wrote: the score, a table of
points per check, and each failed test with its diagnosis (the first paragraph of its message and its
diagnosis ids). Every piece of text may hold the student's own words (an exception message), so it is
escaped for Markdown and HTML: student text is data, never markup.
"""
from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_escape(text: str) -> str:
    """``text`` shown literally in Markdown (HTML escaped too, line breaks kept as spaces)."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _first_paragraph(text: str, limit: int = 400) -> str:
    para = str(text).strip().split("\n\n", 1)[0]
    return para if len(para) <= limit else para[: limit - 1] + "…"


def summary_markdown(data: dict) -> str:
    """The Markdown summary of a results.json dict (keys score, max_score, output, tests, extra_data)."""
    extra = data.get("extra_data") or {}
    lines = [f"## Score {data.get('score', 0):g} / {data.get('max_score', 0):g}", ""]
    for line in str(data.get("output", "")).splitlines():
        if line.strip():
            lines.append(f"- {md_escape(line)}")
    checks: dict[str, list[dict]] = {}
    for test in data.get("tests", []):
        checks.setdefault(str(test.get("name", "")).split(":", 1)[0].strip(), []).append(test)
    lines += ["", "| part | points | max | |", "|---|---:|---:|---|"]
    for check, tests in checks.items():
        got = sum(float(t.get("score") or 0) for t in tests)
        top = sum(float(t.get("max_score") or 0) for t in tests)
        mark = "passed" if all(t.get("status") == "passed" for t in tests) else "**to fix**"
        lines.append(f"| {md_escape(check)} | {got:g} | {top:g} | {mark} |")
    failed = [t for t in data.get("tests", []) if t.get("status") != "passed"]
    if failed:
        lines += ["", "### What to fix", ""]
        for t in failed:
            tags = ", ".join(f"`{md_escape(tag)}`" for tag in t.get("tags") or [])
            lines.append(f"- **{md_escape(t.get('name', ''))}** ({float(t.get('score') or 0):g}/"
                         f"{float(t.get('max_score') or 0):g}){' ' + tags if tags else ''}: "
                         f"{md_escape(_first_paragraph(t.get('output', '')))}")
    if extra.get("status") and extra.get("status") != "graded":
        lines += ["", f"Status: {md_escape(extra['status'])}."]
    return "\n".join(lines) + "\n"


def with_summary(data: dict) -> dict:
    """``data`` with its top-level output replaced by the Markdown summary (tests stay plain text)."""
    return dict(data, output=summary_markdown(data), output_format="md", test_output_format="text")
