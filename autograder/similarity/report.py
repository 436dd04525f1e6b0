"""similarity.csv, similarity.html (ranked pairs) and pairs/NNNN.html (side by side, matches highlighted).

Student text is data: every piece of it reaches the pages through jinja2's autoescaping or
``markupsafe.escape``, and every CSV cell that a spreadsheet would run as a formula is quoted.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from .. import __version__
from ..results import write_text_atomic
from .regions import paint, regions, unit_matches
from .scoring import Pair, Ranking

CSV_NAME = "similarity.csv"
HTML_NAME = "similarity.html"
PAIRS = "pairs"
MIN_PAGES = 50                 # side-by-side pages written: every pair above the threshold, at least this many
MAX_PAGES = 500
COLUMNS = ["a", "b", "score", "source", "file_score", "function_score", "a_share", "b_share",
           "shared_fingerprints", "a_function", "b_function", "page", "a_origin", "b_origin"]

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("autograder", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (never runs it as a formula)."""
    text = value if isinstance(value, str) else (f"{value:.4f}" if isinstance(value, float) else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass
class Written:
    csv: Path
    html: Path
    pages: dict[int, str]      # index in ranking.pairs -> page path relative to the report folder


def _write(path: Path, text: str) -> None:
    """Atomic (temp file + rename) but not fsynced: a page is rebuilt by every run, and there are hundreds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def page_name(rank: int) -> str:
    return f"{PAIRS}/{rank:04d}.html"


def pages_for(ranking: Ranking, threshold: float) -> list[int]:
    above = sum(1 for p in ranking.pairs if p.score >= threshold)
    return list(range(min(len(ranking.pairs), MAX_PAGES, max(above, MIN_PAGES))))


def to_csv(ranking: Ranking, pages: dict[int, str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, p in enumerate(ranking.pairs):
        writer.writerow([cell(x) for x in (p.a.name, p.b.name, round(p.score, 4), p.source, round(p.file_score, 4),
                                           round(p.function_score, 4), round(p.share_a, 4), round(p.share_b, 4),
                                           p.shared, p.unit_a, p.unit_b, pages.get(i, ""), p.a.origin, p.b.origin)])
    return buf.getvalue()


def _code(text: str, marks) -> Markup:
    """The text as escaped HTML with <mark> around matched regions, and a line-number gutter."""
    body = "".join(f'<mark class="{kind}">{escape(piece)}</mark>' if kind else str(escape(piece))
                   for piece, kind in paint(text, marks))
    return Markup(body)


def render_pair(pair: Pair, rank: int, ranking: Ranking, threshold: float, back: str) -> str:
    shared = pair.a.fp.hashes() & pair.b.fp.hashes()
    sides = []
    for doc, other in ((pair.a, pair.b), (pair.b, pair.a)):
        marks = regions(doc.fp, shared, ranking.weight)
        sides.append({"doc": doc, "code": _code(doc.fp.text, marks), "gutter": "\n".join(str(i) for i in range(1, doc.fp.text.count("\n") + 2)),
                      "rare": sum(1 for m in marks if m.kind == "rare"),
                      "functions": unit_matches(doc.fp, other.fp, ranking.weight)})
    return _ENV.get_template("similarity_pair.html.j2").render(
        pair=pair, rank=rank + 1, sides=sides, threshold=threshold, back=back, version=__version__)


def render_index(ranking: Ranking, pages: dict[int, str], threshold: float, title: str, notes: list[str]) -> str:
    rows = [(i + 1, p, pages.get(i, "")) for i, p in enumerate(ranking.pairs) if i in pages]
    return _ENV.get_template("similarity.html.j2").render(
        title=title, rows=rows, total=len(ranking.pairs), threshold=threshold, notes=notes,
        above=sum(1 for p in ranking.pairs if p.score >= threshold), version=__version__,
        sources=sorted({p.source for p in ranking.pairs}))


def write_report(out: Path, ranking: Ranking, threshold: float, title: str = "Similarity",
                 notes: list[str] | None = None) -> Written:
    """Write the CSV, the index and the side-by-side pages under ``out`` (each file atomically)."""
    out = Path(out)
    pages = {i: page_name(i + 1) for i in pages_for(ranking, threshold)}
    folder = out / PAIRS
    if folder.is_dir():  # pages of an earlier run that this ranking does not have
        for old in folder.glob("*.html"):
            if f"{PAIRS}/{old.name}" not in pages.values() and old.is_file() and not old.is_symlink():
                old.unlink()
    for i, name in pages.items():
        _write(out / name, render_pair(ranking.pairs[i], i, ranking, threshold, f"../{HTML_NAME}"))
    write_text_atomic(out / CSV_NAME, to_csv(ranking, pages))
    write_text_atomic(out / HTML_NAME, render_index(ranking, pages, threshold, title, notes or []))
    return Written(out / CSV_NAME, out / HTML_NAME, pages)
