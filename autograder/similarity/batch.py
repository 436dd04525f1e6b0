"""The "Pairs to look at" section that ``backprop-lab batch`` adds to RESULTS/summary.html.

One call at the end of a batch run (:func:`add_pairs_section`): the class is compared (template code
removed, as ``backprop-lab similarity`` does), the report goes to RESULTS/similarity/ (with the sources
it compared, so next year's ``--against RESULTS`` can use them), and the pairs at or above course.toml's
``[similarity] threshold`` are listed in summary.html, each linking to its side-by-side page.
A failure here is reported on stderr and in the page; it never fails the batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jinja2

from ..results import write_text_atomic
from .documents import SOURCES, from_sources, roster_sources, template_fingerprints
from .report import HTML_NAME, write_report
from .scoring import score_pairs

FOLDER = "similarity"
LISTED = 25                    # pairs shown in the summary; the rest are in similarity.html
ANCHOR = '<h2 id="scores">'    # the section goes before the summary's "Scores"

_SECTION = jinja2.Environment(autoescape=True).from_string("""<h2 id="pairs">Pairs to look at</h2>
{% if error %}<p class="status-bad">The similarity report could not be made: {{ error }}</p>
{% elif rows %}<p class="meta">{{ rows|length }}{% if more %} of {{ above }}{% endif %} pair(s) of students whose code
 scores at least {{ threshold }} (course.toml [similarity] threshold) once template code and code most of the
 class shares are left out; a reason to look, not a verdict. Every pair: <a href="{{ index }}">similarity report</a>.</p>
<table>
 <tr><th>students</th><th class="num">score</th><th>best function match</th><th>side by side</th></tr>
 {% for p, page in rows %}<tr><td>{{ p.a.name }} · {{ p.b.name }}</td><td class="num"><b>{{ "%.2f"|format(p.score) }}</b></td>
  <td>{% if p.unit_a %}{{ p.unit_a }} ↔ {{ p.unit_b }}{% endif %}</td><td><a href="{{ page }}">compare</a></td></tr>
 {% endfor %}
</table>
{% else %}<p class="empty">No pair scores {{ threshold }} or more{% if top %} (highest: {{ top.a.name }} · {{ top.b.name }},
 {{ "%.2f"|format(top.score) }}){% endif %}. Every pair: <a href="{{ index }}">similarity report</a>.</p>
{% endif %}
""")


def _save_sources(folder: Path, found: list[tuple[str, str, str]]) -> None:
    target = folder / SOURCES
    keep = set()
    for student, _, text in found:
        keep.add(f"{student}.py")
        write_text_atomic(target / f"{student}.py", text)
    for old in target.glob("*.py"):
        if old.name not in keep and old.is_file() and not old.is_symlink():
            old.unlink()


def section(out: Path, roster, threshold: float) -> str | None:
    """Compare the class; write RESULTS/similarity/; the summary's section (None: fewer than 2 students)."""
    found, notes = roster_sources(roster, note_unreadable=False)
    if len(found) < 2:
        return None
    folder = out / FOLDER
    _save_sources(folder, found)
    ranking = score_pairs(from_sources(found, "class", template_fingerprints()))
    written = write_report(folder, ranking, threshold, title="Similarity: the class", notes=notes)
    above = [i for i, p in enumerate(ranking.pairs) if p.score >= threshold]
    rows = [(ranking.pairs[i], f"{FOLDER}/{written.pages[i]}") for i in above[:LISTED] if i in written.pages]
    return _SECTION.render(rows=rows, above=len(above), more=len(above) > len(rows), threshold=threshold,
                           index=f"{FOLDER}/{HTML_NAME}", top=ranking.pairs[0] if ranking.pairs else None, error="")


def add_pairs_section(out: Path | str, roster, config, stream=None) -> None:
    """Insert "Pairs to look at" into RESULTS/summary.html (class of at least 2 readable students)."""
    out = Path(out)
    summary = out / "summary.html"
    try:
        html = section(out, roster, config.similarity.threshold)
    except Exception as exc:  # noqa: BLE001 - the grades are written; the report is an extra
        print(f"backprop-lab: similarity report failed: {exc.__class__.__name__}: {exc}", file=stream or sys.stderr)
        html = _SECTION.render(error=f"{exc.__class__.__name__}: {exc}")
    if html is None or not summary.is_file():
        return
    page = summary.read_text(encoding="utf-8")
    where = page.find(ANCHOR)
    if where < 0:
        where = page.rfind("</body>")
    if where < 0:
        return
    page = page[:where] + html + page[where:]
    page = page.replace('<a href="#scores">Scores</a>', '<a href="#pairs">Pairs to look at</a><a href="#scores">Scores</a>', 1)
    write_text_atomic(summary, page)


__all__ = ["add_pairs_section", "section"]
