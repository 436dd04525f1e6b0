"""Property-based tests (hypothesis, issue 14): whatever a class sends — random notebooks, zips, folder
trees, Gradescope metadata, Canvas file names — nothing raises past the per-student boundary.

Each target runs EXAMPLES examples: 200 by default (twice hypothesis's own default; a second or two
each), 2,000 with BACKPROP_LAB_LONG_TESTS=1 (the release checklist, docs/release.md), or
BATCH_PROPERTY_EXAMPLES=N;
no example touches the sandbox."""
from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.batch.discover import Entry, discover
from autograder.batch.plan import plan_job
from autograder.batch.safezip import safe_extract
from autograder.errors import SubmissionError, UserError
from autograder.submission import load_submission, notebook_to_source

EXAMPLES = int(os.environ.get("BATCH_PROPERTY_EXAMPLES", "2000" if os.environ.get("BACKPROP_LAB_LONG_TESTS") else "200"))
FAST = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
SAFE_ID = set("-_.@+~")
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None   # tmpfs: file churn costs little


def scratch():
    return tempfile.TemporaryDirectory(dir=SCRATCH)

ALPHABET = st.sampled_from(list("ab_.-=+@ü é\t\r\n[]{}\"'\\/:*&%!"))
short_text = st.text(ALPHABET, max_size=12)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=16), short_text)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(short_text, inner, max_size=3)),
                          max_leaves=5)
source_value = st.one_of(short_text, st.lists(st.one_of(short_text, json_leaf), max_size=3), json_value)
cell = st.one_of(json_value, st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", "raw", 3]),
                                                    "source": source_value}))
notebook = st.one_of(json_value, st.fixed_dictionaries({"cells": st.one_of(st.lists(cell, max_size=5), json_value),
                                                        "nbformat": json_leaf}))
names = st.one_of(st.text(ALPHABET, min_size=1, max_size=8),
                  st.sampled_from(["Zoë Ünicode", "=1+2", "-rf", "日本語", "\u202emlp.py", "con", "a" * 200]))
member_name = st.one_of(
    names,
    st.lists(st.sampled_from(["a", "..", ".", "", "mlp.py", "b.ipynb", "x.zip", "__MACOSX", "ü", "C:", "\\"]),
             min_size=1, max_size=40).map("/".join),
    st.builds(lambda n, d: "d/" * d + n, st.sampled_from(["mlp.py", "hw.ipynb", "x"]), st.integers(0, 60)))


def _nest(depth: int) -> str:
    return '{"cells": ' + "[" * depth + "]" * depth + "}"


def _check_loaded(path: Path) -> None:
    """load_submission: a Submission, or SubmissionError; plan_job: never raises."""
    try:
        sub = load_submission(path)
    except SubmissionError:
        pass
    else:
        assert isinstance(sub.source, str)
    job = plan_job(Entry("s", path, path.name))
    assert job.action in ("grade", "unreadable")
    assert job.action == "grade" or job.problem


@FAST
@given(nb=notebook, depth=st.one_of(st.just(0), st.integers(1, 3000)), raw=st.binary(max_size=200),
       kind=st.sampled_from(["json", "deep", "bytes"]))
def test_random_notebooks_never_raise_past_the_boundary(nb, depth, raw, kind):
    with scratch() as tmp:
        path = Path(tmp) / "hw.ipynb"
        if kind == "json":
            path.write_text(json.dumps(nb))
        elif kind == "deep":
            path.write_text(_nest(depth))
        else:
            path.write_bytes(raw)
        _check_loaded(path)
        try:
            notebook_to_source(path.read_bytes().decode("latin-1"), "hw.ipynb")
        except SubmissionError:
            pass


def _write_zip(path: Path, members: list[tuple[str, bytes, int]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name or "x")
            info.external_attr = mode << 16
            zf.writestr(info, data)


zip_members = st.lists(st.tuples(member_name, st.binary(max_size=64),
                                 st.sampled_from([0, 0o644 | stat.S_IFREG, 0o777 | stat.S_IFLNK, stat.S_IFDIR | 0o755,
                                                  stat.S_IFIFO | 0o644])), max_size=8)


@FAST
@given(members=zip_members, garbage=st.one_of(st.none(), st.binary(max_size=64)))
def test_random_zips_extract_safely_and_load_or_refuse(members, garbage):
    with scratch() as tmp:
        base = Path(tmp)
        z = base / "sub.zip"
        if garbage is not None:
            z.write_bytes(garbage)
        else:
            _write_zip(z, members)
        _check_loaded(z)
        dest = base / "dest"
        dest.mkdir()
        try:
            result = safe_extract(z, dest)
        except SubmissionError:
            return
        real = dest.resolve()
        for root, dirs, files in os.walk(dest):
            for name in dirs + files:
                p = Path(root) / name
                assert not p.is_symlink(), p
                assert real in p.resolve().parents
        for rel in result.files:
            assert (dest / rel).is_file()


NAMES = ["mlp.py", "a.ipynb", "b.zip", ".hidden", "__MACOSX", "Zoë Ünicode", "=1+2", "-rf", "日本語",
         "\u202emlp.py", "con", "a" * 200, "results.json", "x.txt", "sub", "d", "alice", "bob.py"]
piece = st.one_of(st.sampled_from(NAMES), st.text(ALPHABET, min_size=1, max_size=6))
content = st.one_of(st.sampled_from([b"import numpy as np\n", b"def forward(:\n", b"", b"PK\x03\x04junk",
                                     b'{"cells": [{"cell_type": "code", "source": [1, 2]}]}']),
                    st.binary(max_size=24))
layout_strategy = st.lists(st.tuples(st.lists(piece, min_size=1, max_size=4), content), min_size=1, max_size=8)


def _build(root: Path, layout) -> None:
    for parts, data in layout:
        parts = ["_" if p in (".", "..") else p.replace("/", "_").replace("\x00", "_") for p in parts]
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(data)
        except OSError:
            continue  # a name the file system refuses (too long in bytes, a file where a folder should be)


@FAST
@given(layout=layout_strategy, deep=st.one_of(st.just(0), st.integers(6, 12)),
       link=st.booleans())
def test_random_folder_trees_discover_and_plan_without_raising(layout, deep, link):
    with scratch() as tmp:
        base = Path(tmp)
        subs = base / "class"
        subs.mkdir()
        _build(subs, layout)
        if deep:
            path = str(subs / "deep")
            for _ in range(deep):
                path += "/d"
                os.makedirs(path, exist_ok=True)
            Path(path, "mlp.py").write_text("x = 1\n")
        if link:
            (subs / "link").symlink_to(base)
        try:
            roster = discover(subs, base / "inputs")
        except UserError:
            return
        for e in roster.entries:
            assert e.student and "/" not in e.student and not e.student.startswith(".")
            assert all(ch.isalnum() or ch in SAFE_ID for ch in e.student), e.student
            job = plan_job(e)
            assert job.action in ("grade", "unreadable")


BOMB_START = "a: &a [x, x]\n"
yaml_text = st.one_of(
    json_value.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.text(max_size=200),
    st.builds(lambda n: BOMB_START + "".join(f"k{i}: &k{i} [*{'a' if i == 0 else f'k{i - 1}'}, "
                                                   f"*{'a' if i == 0 else f'k{i - 1}'}]\n" for i in range(n)),
              st.integers(0, 30)),
    st.integers(1, 400).map(lambda d: "a: " + "[" * d + "]" * d + "\n"),
    st.dictionaries(st.sampled_from(["submission_1", "submission_2", ":submission_3", "x"]),
                    st.one_of(json_value, st.fixed_dictionaries({":submitters:": st.one_of(
                        json_value, st.lists(st.dictionaries(st.sampled_from([":name", ":sid", ":email", "x"]),
                                                             json_leaf), max_size=3))})),
                    max_size=3).map(lambda v: yaml.safe_dump(v, allow_unicode=True)))


@FAST
@given(meta=yaml_text, folders=st.lists(st.sampled_from(["submission_1", "submission_2", "x", "y"]), unique=True,
                                        max_size=4))
def test_random_gradescope_metadata_never_raises_past_discovery(meta, folders):
    with scratch() as tmp:
        base = Path(tmp)
        export = base / "export"
        export.mkdir()
        (export / "submission_metadata.yml").write_text(meta, encoding="utf-8", errors="surrogatepass")
        for f in folders:
            (export / f).mkdir()
            (export / f / "mlp.py").write_text("x = 1\n")
        try:
            roster = discover(export, base / "inputs")
        except UserError:
            assert not folders
            return
        assert roster.kind == "gradescope"
        assert {e.source.rstrip("/") for e in roster.entries} >= set(folders)
        if meta.startswith(BOMB_START) and "*" in meta:   # an alias is refused, never expanded
            assert any("aliases are not accepted" in issue for issue in roster.issues), roster.issues
        for e in roster.entries:
            assert all(ch.isalnum() or ch in SAFE_ID for ch in e.student), e.student
            plan_job(e)


canvas_name = st.builds(lambda n, late, uid, sub, f: f"{n}{'_LATE' if late else ''}_{uid}_{sub}{f}",
                        st.text(st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=6),
                        st.booleans(), st.integers(0, 99), st.one_of(st.just(""), st.integers(0, 9).map(lambda i: f"{i}_")),
                        st.sampled_from(["mlp.py", "hw.ipynb", "a.zip", "notes.txt", "mlp-1.py"]))


@FAST
@given(files=st.lists(st.tuples(canvas_name, st.binary(max_size=30)), min_size=1, max_size=6))
def test_random_canvas_exports_never_raise_past_discovery(files):
    with scratch() as tmp:
        base = Path(tmp)
        subs = base / "canvas"
        subs.mkdir()
        for name, data in files:
            (subs / name).write_bytes(data)
        roster = discover(subs, base / "inputs")
        for e in roster.entries:
            assert all(ch.isalnum() or ch in SAFE_ID for ch in e.student), e.student
            plan_job(e)
