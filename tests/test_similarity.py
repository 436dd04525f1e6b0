"""The similarity report: planted copies rank above honest pairs; template never counts; pages and CSV.

The test class: honest students are the zoo's correct variants and the known-bug mutants (all derived
from the reference, so they share most of its text: in this class that text is "what everyone
shares"); planted copies are built from the reference (the copiers took it from a public corpus, given
with --against) and from zoo variants, with each disguise alone, all of them combined, and as a
notebook; and one function of a zoo variant transplanted into otherwise independent code.
"""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.config import ConfigError, load_config
from autograder.mutants import mutant_sources
from autograder.similarity.cli import run_similarity
from autograder.similarity.documents import default_templates
from autograder.similarity.fingerprints import fingerprint, template_hashes
from autograder.similarity.regions import regions
from autograder.similarity.scoring import Document, score_pairs
from zoo import disguise as G
from zoo import independent
from zoo import sources as Z

# xdist: every test of this module runs on one worker, so the `report` module fixture (the similarity
# run over the planted class) is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("similarity")

VARIANTS = ["column_major", "float32", "einsum", "inplace_sgd", "hidden_unit_loops", "per_example_loop",
            "cache_extra_keys", "logsumexp_softmax"]
BASES = ["einsum", "hidden_unit_loops", "logsumexp_softmax", "activation_table"]
TRANSPLANTS = [("fc_backward", "einsum", "backward", independent.CS231N_STYLE),
               ("fc_forward", "logsumexp_softmax", "forward", independent.LOOPY_STYLE)]


def _variant(name: str) -> str:
    return Z.activation_table("relu") if name == "activation_table" else Z.strip_markers(getattr(Z, name)())


def build_class(folder: Path) -> tuple[dict[str, str], set[str]]:
    """Write the test class; return {student: lineage} and the set of honest students."""
    lineage, honest = {}, set()
    folder.mkdir(parents=True)

    def put(name: str, source: str, line: str, notebook: bool = False) -> None:
        (folder / (name + (".ipynb" if notebook else ".py"))).write_text(G.to_notebook(source) if notebook
                                                                           else source, encoding="utf-8")
        lineage[name] = line

    for v in VARIANTS + ["activation_table"]:
        put(v, _variant(v), v)
        honest.add(v)
    for m, src in mutant_sources("relu", Z.ref("relu")).items():
        put(f"mut_{m}", src, f"mut_{m}")
        honest.add(f"mut_{m}")
    ref = Z.strip_markers(Z.ref("relu"))
    for k, (d, f) in enumerate(G.DISGUISES.items()):
        put(f"ref--{d}", f(ref), "reference")
    put("ref--combined--notebook", G.combined(ref, seed=3), "reference", notebook=True)
    for b_i, base in enumerate(BASES):
        for d, f in G.DISGUISES.items():
            put(f"{base}--{d}", f(_variant(base)), base)
        put(f"{base}--combined--notebook", G.combined(_variant(base), seed=b_i), base, notebook=True)
    for name, base, function, own in TRANSPLANTS:
        put(name, G.transplant(own, _variant(base), function), base)
    return lineage, honest


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity")
    lineage, honest = build_class(root / "class")
    (root / "public").mkdir()
    (root / "public" / "reference.py").write_text(Z.strip_markers(Z.ref("relu")), encoding="utf-8")
    lineage["public/reference"] = "reference"
    outcome = run_similarity(root / "class", root / "out", against=[root / "public"])
    return root, lineage, honest, outcome


def _kind(pair, lineage, honest) -> str:
    a, b = pair.a.name, pair.b.name
    if lineage[a] == lineage[b]:
        return "planted"
    return "honest" if a in honest and b in honest else "other"


def test_every_planted_pair_ranks_above_every_honest_pair(report):
    _, lineage, honest, outcome = report
    pairs = outcome.ranking.pairs
    planted = [p for p in pairs if _kind(p, lineage, honest) == "planted"]
    fair = [p for p in pairs if _kind(p, lineage, honest) == "honest"]
    assert len(planted) > 100 and len(fair) > 200
    worst = min(planted, key=lambda p: p.score)
    best = max(fair, key=lambda p: p.score)
    assert worst.score > best.score, (worst.a.name, worst.b.name, worst.score, best.a.name, best.b.name, best.score)
    ranks = {id(p): i for i, p in enumerate(pairs)}
    assert max(ranks[id(p)] for p in planted) < min(ranks[id(p)] for p in fair)


def test_precision_and_recall_at_the_default_threshold(report, capsys):
    _, lineage, honest, outcome = report
    threshold = load_config().similarity.threshold
    pairs = outcome.ranking.pairs
    flagged = [p for p in pairs if p.score >= threshold]
    planted = [p for p in pairs if _kind(p, lineage, honest) == "planted"]
    hits = [p for p in flagged if _kind(p, lineage, honest) == "planted"]
    precision, recall = len(hits) / max(len(flagged), 1), len(hits) / len(planted)
    others = [p for p in pairs if _kind(p, lineage, honest) == "other"]
    with capsys.disabled():
        print(f"\nsimilarity @ {threshold}: {len(pairs)} pairs, {len(planted)} planted, precision {precision:.3f}, "
              f"recall {recall:.3f}; best honest {max(p.score for p in pairs if _kind(p, lineage, honest) == 'honest'):.3f}, "
              f"best copy-vs-honest {max(p.score for p in others):.3f}, worst planted {min(p.score for p in planted):.3f}")
    assert recall == 1.0
    assert precision == 1.0


@pytest.mark.parametrize("disguise", [*G.DISGUISES, "combined--notebook"])
def test_each_disguise_alone_is_found(report, disguise):
    _, _, _, outcome = report
    threshold = load_config().similarity.threshold
    by_pair = {(p.a.name, p.b.name): p for p in outcome.ranking.pairs}
    for base in BASES:
        pair = by_pair.get((base, f"{base}--{disguise}")) or by_pair[(f"{base}--{disguise}", base)]
        assert pair.score >= threshold, (base, disguise, pair.score)
    against = by_pair[(f"ref--{disguise}", "public/reference")]
    assert against.source == "public" and against.score >= threshold


def test_one_function_copied_into_own_code_is_found_and_named(report):
    _, _, _, outcome = report
    threshold = load_config().similarity.threshold
    by_pair = {frozenset((p.a.name, p.b.name)): p for p in outcome.ranking.pairs}
    for name, base, function, _ in TRANSPLANTS:
        pair = by_pair[frozenset((name, base))]
        assert pair.file_score < threshold < pair.score, pair   # the whole file alone would miss it
        assert {pair.unit_a, pair.unit_b} == {function}


def test_template_and_docstrings_never_count():
    template = template_hashes(default_templates())
    skeleton = Z.skeleton("relu")
    docs = [Document(f"s{i}", "class", "", fingerprint(src, template)) for i, src in
            enumerate([skeleton, G.redocstring(skeleton, drop=False), G.recomment(skeleton), Z.skeleton("tanh")])]
    assert all(not d.fp.hashes() for d in docs)
    assert all(p.score == 0 for p in score_pairs(docs).pairs)
    # identical docstrings on different code: no fingerprint comes from a docstring
    a = 'def f(x):\n    """' + "shared words " * 30 + '"""\n    return x + 1\n'
    b = 'def f(x):\n    """' + "shared words " * 30 + '"""\n    return [x] * 3\n'
    assert not (fingerprint(a).hashes() & fingerprint(b).hashes())


def test_operand_order_is_not_renaming():
    """copydetect writes every name V, so (probs - Y) and (Y - probs) would be the same code."""
    ref = Z.strip_markers(Z.ref("relu"))
    same = fingerprint(G.rename(ref)).hashes()
    assert same == fingerprint(ref).hashes()
    for m, src in mutant_sources("relu", Z.ref("relu")).items():
        assert fingerprint(src).hashes() != fingerprint(ref).hashes(), m


def test_highlights_cover_code_only(report):
    _, _, _, outcome = report
    pair = outcome.ranking.pairs[0]
    shared = pair.a.fp.hashes() & pair.b.fp.hashes()
    marks = regions(pair.a.fp, shared, outcome.ranking.weight)
    assert marks
    for r in marks:
        piece = pair.a.fp.text[r.start:r.end]
        assert piece.strip() and "#" not in piece and '"""' not in piece, piece


def test_csv_is_sorted_formula_safe_and_pages_exist(report):
    root, _, _, outcome = report
    out = root / "out"
    with open(out / "similarity.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:4] == ["a", "b", "score", "source"]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert {r["source"] for r in rows} == {"class", "public"}
    assert len(rows) == len(outcome.ranking.pairs)
    for r in rows:
        if r["page"]:
            assert (out / r["page"]).is_file()
    index = (out / "similarity.html").read_text(encoding="utf-8")
    assert "pairs/0001.html" in index


def test_student_text_is_escaped_everywhere(tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    evil = _variant("einsum") + "\n# </pre><script>alert(1)</script>\nX_TAG = '<img src=x onerror=alert(1)>'\n"
    (cls / "=HYPERLINK(1).py").write_text(evil)
    (cls / "bob.py").write_text(G.rename(evil))
    outcome = run_similarity(cls, tmp_path / "out", threshold=0.5)
    page = (tmp_path / "out" / outcome.written.pages[0]).read_text(encoding="utf-8")
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
    text = (tmp_path / "out" / "similarity.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text or "'_HYPERLINK" in text or "HYPERLINK" not in text.split(",")[0]
    for line in text.splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))


def test_against_a_batch_results_folder_and_the_summary_section(tmp_path):
    from autograder.batch.discover import discover
    from autograder.similarity.batch import add_pairs_section
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "alice.py").write_text(_variant("einsum"))
    (cls / "bob.py").write_text(G.combined(_variant("einsum")))
    (cls / "carol.py").write_text(_variant("logsumexp_softmax"))
    results = tmp_path / "RESULTS"
    results.mkdir()
    (results / "summary.html").write_text('<html><body><nav><a href="#scores">Scores</a></nav>'
                                          '<h2 id="scores">Scores</h2></body></html>')
    add_pairs_section(results, discover(cls, results / ".inputs"), load_config())
    summary = (results / "summary.html").read_text(encoding="utf-8")
    assert summary.index("Pairs to look at") < summary.index('<h2 id="scores">')
    listed = summary.split('<h2 id="scores">')[0]
    assert "alice · bob" in listed and "carol" not in listed, listed
    link = summary.split('href="similarity/pairs/')[1].split('"')[0]
    assert (results / "similarity" / "pairs" / link).is_file()
    assert sorted(p.name for p in (results / "similarity" / "sources").iterdir()) == ["alice.py", "bob.py", "carol.py"]
    # next year: this year's RESULTS as --against
    new = tmp_path / "new"
    new.mkdir()
    (new / "dave.py").write_text(G.rename(_variant("logsumexp_softmax")))
    (new / "erin.py").write_text(_variant("per_example_loop"))
    outcome = run_similarity(new, tmp_path / "out", against=[results])
    top = outcome.ranking.pairs[0]
    assert (top.a.name, top.b.name, top.source) == ("dave", "RESULTS/carol", "RESULTS") and top.score >= 0.8


def test_a_class_of_one_adds_no_section(tmp_path):
    from autograder.batch.discover import discover
    from autograder.similarity.batch import add_pairs_section
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "alice.py").write_text(_variant("einsum"))
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "summary.html").write_text('<body><h2 id="scores">Scores</h2></body>')
    add_pairs_section(tmp_path / "R", discover(cls, tmp_path / "R" / ".inputs"), load_config())
    assert "Pairs to look at" not in (tmp_path / "R" / "summary.html").read_text()


def test_cli(tmp_path, capsys):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "alice.py").write_text(_variant("einsum"))
    (cls / "bob").mkdir()
    (cls / "bob" / "hw.ipynb").write_text(G.to_notebook(G.combined(_variant("einsum"))))
    tmpl = tmp_path / "starter.py"
    tmpl.write_text("def helper_given_in_class(x):\n    return [v * 2 + 1 for v in x if v is not None]\n")
    assert main(["similarity", str(cls), "--out", str(tmp_path / "out"), "--template", str(tmpl)]) == 0
    printed = capsys.readouterr().out
    assert "alice  bob" in printed and "similarity.html" in printed
    assert main(["similarity", str(cls), "--out", str(tmp_path / "out"), "--threshold", "2"]) == 2
    assert main(["similarity", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert main(["similarity", str(cls), "--out", str(cls / "inside")]) == 2
    assert main(["similarity", str(cls), "--out", str(tmp_path / "out"), "--against", str(cls)]) == 2
    assert main(["similarity", str(cls), "--out", str(tmp_path / "out"), "--against", str(tmp_path / "x")]) == 2


def test_help_has_an_example_for_every_argument(capsys):
    with pytest.raises(SystemExit):
        main(["similarity", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for arg in ("SUBMISSIONS", "--out", "--against", "--template", "--threshold"):
        block = text.split(arg, 1)[1]
        assert "example" in block.split("--", 1)[0] or arg == "SUBMISSIONS" or "example" in block[:400], arg
    assert text.count("example") >= 6


def test_template_files_given_with_template_do_not_count(tmp_path):
    helper = "def load_mnist_batches(path, size):\n" + "".join(
        f"    part_{i} = [row[{i}] * {i} + {i * 3} for row in open(path).read().split()[:size]]\n" for i in range(8))
    a = _variant("einsum").replace("import numpy as np\n", "import numpy as np\n" + helper, 1)
    b = _variant("logsumexp_softmax").replace("import numpy as np\n", "import numpy as np\n" + helper, 1)
    plain = score_pairs([Document(n, "class", "", fingerprint(s)) for n, s in (("a", a), ("b", b))]).pairs[0]
    t = template_hashes([helper])
    with_template = score_pairs([Document(n, "class", "", fingerprint(s, t)) for n, s in (("a", a), ("b", b))]).pairs[0]
    assert with_template.file_score < plain.file_score - 0.1
    assert plain.shared - with_template.shared > 150 and with_template.unit_a != "load_mnist_batches"


def test_similarity_threshold_in_course_toml(tmp_path):
    text = Path("course.toml").read_text() if Path("course.toml").is_file() else ""
    assert "[similarity]" in text
    bad = tmp_path / "course.toml"
    for value in ("1.5", "-0.1", '"high"', "true"):
        bad.write_text(text.split("[similarity]")[0] + f"[similarity]\nthreshold = {value}\n")
        with pytest.raises(ConfigError):
            load_config(bad)
    bad.write_text(text.split("[similarity]")[0] + "[similarity]\nthreshold = 0.5\n")
    cfg = load_config(bad)
    assert cfg.similarity.threshold == 0.5
    from autograder.batch.runner import settings_digest
    assert settings_digest(cfg) == settings_digest(load_config())  # a report threshold regrades nobody


def test_json_notebook_and_zip_inputs_use_the_project_loader(tmp_path):
    import zipfile
    cls = tmp_path / "class"
    cls.mkdir()
    src = _variant("hidden_unit_loops")
    with zipfile.ZipFile(cls / "zed.zip", "w") as zf:
        zf.writestr("hw/mlp.py", G.reorder(src))
    (cls / "yan.ipynb").write_text(json.dumps(json.loads(G.to_notebook(G.rename(src)))))
    outcome = run_similarity(cls, tmp_path / "out", threshold=0.8)
    (pair,) = outcome.ranking.pairs
    assert pair.score >= 0.95 and {pair.a.origin, pair.b.origin} == {"zed.zip:hw/mlp.py", "yan.ipynb"}


def test_pairs_are_every_class_pair_and_every_student_against_each_folder(report):
    root, lineage, _, outcome = report
    students = [n for n in lineage if "/" not in n]
    pairs = {(p.a.name, p.b.name) for p in outcome.ranking.pairs}
    assert len(pairs) == len(outcome.ranking.pairs)
    expected = len(list(itertools.combinations(students, 2))) + len(students)
    assert len(pairs) == expected
    assert not any(a.startswith("public/") for a, _ in pairs)


def test_side_by_side_page_in_headless_chromium(report, tmp_path):
    from test_pages import check_page, screenshot
    root, _, _, outcome = report
    page = root / "out" / outcome.written.pages[0]
    parsed = check_page(page)
    html = page.read_text(encoding="utf-8")
    assert html.count('<mark class="rare">') >= 5
    png = tmp_path / "pair.png"
    screenshot(page, png, tmp_path / "profile")
    from PIL import Image
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        # the rare-match highlight colour (#ffb3b3) is on screen
        assert any(abs(r - 0xFF) < 8 and abs(g - 0xB3) < 8 and abs(b - 0xB3) < 8 for _, (r, g, b) in
                   (rgb.resize((300, 600)).getcolors(maxcolors=1 << 18) or []))
    assert parsed.links


def test_a_file_with_a_syntax_error_is_still_compared():
    broken = G.rename(_variant("einsum")) + "\ndef oops(:\n    pass\n"
    template = template_hashes(default_templates())
    docs = [Document(v, "class", "", fingerprint(_variant(v), template)) for v in VARIANTS + ["activation_table"]]
    docs.append(Document("broken", "class", "", fingerprint(broken, template)))
    assert not docs[-1].fp.parsed
    top = max(score_pairs(docs).pairs, key=lambda p: p.file_score)
    assert {top.a.name, top.b.name} == {"einsum", "broken"} and top.score >= load_config().similarity.threshold
    assert top.file_score > 0.8


def test_methods_of_a_class_are_compared_one_by_one():
    fp = fingerprint("class Net:\n    W = 1\n\n    def forward(self, X):\n        return X @ self.W + self.b * 2 - 1\n\n"
                     "    def backward(self, g):\n        return g.T @ self.cache_x + 0.5 * g.sum(axis=0) - g.mean()\n")
    assert [u.name for u in fp.units if u.hashes] == ["Net.forward", "Net.backward"]


def test_an_enormous_submission_is_cut_not_slow():
    import time
    from autograder.similarity.fingerprints import MAX_TEXT, MAX_UNITS
    started = time.process_time()   # CPU of this process: the same on a busy machine
    fp = fingerprint("def f(x):\n    return x + 1 * 2 - 3 / 4 + x ** 5\n" * 20000)
    assert fp.truncated and fp.parsed and len(fp.text) <= MAX_TEXT and len(fp.units) <= MAX_UNITS
    assert time.process_time() - started < 20
