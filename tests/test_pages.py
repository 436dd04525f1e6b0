"""`backprop-lab demo` end to end, and its pages in headless Chromium: screenshots render, every image is
an inline PNG, every link points at an existing file or anchor."""
from __future__ import annotations

import base64
import contextlib
import csv
import io
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from autograder.batch.demo import SAMPLE_CLASS
from autograder.cli import main
from autograder.config import load_config
from autograder.mutants import mutant
from timing import wall_bound

# xdist: every test of this module runs on one worker, so the `demo` module fixture (a whole demo run)
# is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("pages")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "a" and "href" in a:
            self.links.append(a["href"] or "")


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def check_page(path: Path) -> Page:
    """Images are data: PNGs; links are existing relative files or anchors of this page."""
    page = parse(path)
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), f"{path.name}: image not inlined: {src[:60]}"
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        from PIL import Image
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    for href in page.links:
        url = urlparse(href)
        assert not url.scheme and not url.netloc, f"{path.name}: external link {href}"
        if href.startswith("#"):
            assert href[1:] in page.ids, f"{path.name}: broken anchor {href}"
            continue
        target = (path.parent / unquote(url.path)).resolve()
        assert target.is_file(), f"{path.name}: broken link {href}"
        if url.fragment:
            assert url.fragment in parse(target).ids
    return page


def screenshot(html: Path, png: Path, profile: Path) -> None:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,2400", html.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=90)
    assert png.is_file(), f"no screenshot of {html}"
    from PIL import Image, ImageStat
    with Image.open(png) as im:
        gray = im.convert("L")
        assert gray.size == (1200, 2400)
        stat = ImageStat.Stat(gray)
        assert stat.stddev[0] > 10, f"{html.name} rendered blank"
        colors = im.convert("RGB").resize((300, 600)).getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 50, f"{html.name}: almost no content"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-results"
    buf = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--out", str(out), "--jobs", "2"]) == 0
    return out, buf.getvalue(), time.monotonic() - started


def test_demo_grades_the_sample_class(demo):
    out, printed, seconds = demo
    assert "summary.html" in printed and str(out / "summary.html") in printed
    with open(out / "gradebook.csv", newline="", encoding="utf-8-sig") as fh:
        book = {r["student"]: r for r in csv.DictReader(fh)}
    assert sorted(book) == sorted(s for s, _, _ in SAMPLE_CLASS)
    assert book["01-reference"]["total"] == "100" and book["11-notebook"]["total"] == "100"
    assert book["02-skeleton"]["total"] == "0" and book["02-skeleton"]["status"] == "not_implemented"
    for student, what, _ in SAMPLE_CLASS:
        if what in ("reference", "skeleton"):
            continue
        m = mutant(what)
        row = book[student]
        assert float(row[m.expected_check]) < load_config().rubric[m.expected_check], row
        assert m.expected_diagnosis in row["diagnoses"].split(), (student, row["diagnoses"])
        assert float(row["total"]) < 100
    assert (out / ".sample_class").is_dir()
    assert seconds < wall_bound(120), f"the demo took {seconds:.0f} s"


def test_rerunning_the_demo_regrades_nothing(demo):
    out, _, _ = demo
    before = {p: p.read_bytes() for p in out.glob("*/.state.json")}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--out", str(out), "--jobs", "2"]) == 0
    assert "graded 0" in buf.getvalue()
    assert {p: p.read_bytes() for p in out.glob("*/.state.json")} == before


def test_pages_are_self_contained_with_working_links(demo):
    out, _, _ = demo
    summary = check_page(out / "summary.html")
    assert len(summary.images) >= 2
    feedback_links = [h for h in summary.links if h.endswith("feedback.html")]
    assert len(set(feedback_links)) == len(SAMPLE_CLASS)
    for href in sorted(set(feedback_links)):
        check_page(out / unquote(href))
    ref = parse(out / "01-reference" / "feedback.html")
    assert len(ref.images) >= 4  # gradient errors, learning curve, confusion matrix, misclassified digits
    size = (out / "01-reference" / "feedback.html").stat().st_size
    assert size < 400_000, f"feedback page is {size} bytes"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium")
def test_pages_render_in_headless_chromium(demo, tmp_path):
    out, _, _ = demo
    for name in ("summary.html", "01-reference/feedback.html", "03-grad_factor_n/feedback.html",
                 "02-skeleton/feedback.html"):
        screenshot(out / name, tmp_path / (name.replace("/", "_") + ".png"), tmp_path / "profile")
