"""Batch discovery and safe extraction (no grading): folders, Gradescope and Canvas exports, hostile zips,
name clashes, non-UTF-8 names, oversized files; gradebook rows and merging; the CLI's exit status."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.batch import safezip
from autograder.batch.discover import discover, load_gradescope_metadata, student_id
from autograder.batch.gradebook import gradebook_csv
from autograder.batch.merge import merge
from autograder.batch.rows import row_from_results
from autograder.errors import UserError

SRC = "import numpy as np\nHYPERPARAMS = {}\n"


def make_zip(path: Path, members: dict[str, bytes | str], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def by_id(roster):
    return {e.student: e for e in roster.entries}


# ---- folders ------------------------------------------------------------------------------------

def test_folder_one_entry_per_student(tmp_path):
    subs = tmp_path / "subs"
    (subs / "carol").mkdir(parents=True)
    (subs / "carol" / "mlp.py").write_text(SRC)
    (subs / "alice.py").write_text(SRC)
    (subs / "bob.ipynb").write_text("{}")
    make_zip(subs / "dave.zip", {"mlp.py": SRC})
    (subs / "roster.txt").write_text("not a submission")
    (subs / ".DS_Store").write_text("")
    (subs / "__MACOSX").mkdir()
    roster = discover(subs, tmp_path / "inputs")
    ids = by_id(roster)
    assert roster.kind == "folder"
    assert sorted(ids) == ["alice", "bob", "carol", "dave", "roster.txt"]
    assert ids["carol"].path == subs / "carol"
    assert "unsupported" in ids["roster.txt"].problem and ids["roster.txt"].path is None
    assert all(not e.problem for k, e in ids.items() if k != "roster.txt")


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no submissions found"):
        discover(tmp_path / "empty", tmp_path / "inputs")
    with pytest.raises(UserError, match="does not exist"):
        discover(tmp_path / "nope", tmp_path / "inputs")


def test_cli_empty_folder_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "batch", str(tmp_path / "empty"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no submissions found" in lines[0]


def test_duplicate_student_ids_are_kept_apart_and_reported(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "mlp.py").write_text(SRC)
    (subs / "alice.py").write_text(SRC)
    (subs / "Bob.py").write_text(SRC)
    make_zip(subs / "bob.zip", {"mlp.py": SRC})
    ids = by_id(discover(subs, tmp_path / "inputs"))
    assert sorted(ids) == ["Bob~1", "Bob~2", "alice~1", "alice~2"]
    for e in ids.values():
        assert e.status == "clash" and "decide which one counts" in e.notes[0]
        assert e.path is not None  # both are graded, not merged, not dropped
    assert ids["alice~1"].source == "alice.py" and ids["alice~2"].source == "alice/"


def test_non_utf8_and_odd_names_become_safe_ids(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    with open(os.path.join(os.fsencode(subs), b"m\xfcller.py"), "w") as fh:  # Latin-1 bytes, not UTF-8
        fh.write(SRC)
    (subs / "José Núñez.py").write_text(SRC)
    (subs / "weird;name$.py").write_text(SRC)
    (subs / "summary.html.py").write_text(SRC)
    ids = by_id(discover(subs, tmp_path / "inputs"))
    assert "müller" in ids and ids["müller"].path.exists()
    assert "José_Núñez" in ids
    assert "weird_name" in ids
    assert "_summary.html" in ids  # never collides with RESULTS/summary.html
    for sid in ids:
        assert "/" not in sid and not sid.startswith(".")
    assert student_id("") == "unnamed"


def test_huge_sparse_file_is_reported_not_read(tmp_path):
    from autograder.batch.runner import plan_job
    subs = tmp_path / "subs"
    subs.mkdir()
    with open(subs / "big.py", "wb") as fh:
        fh.truncate(200 * 1024**2)
    (subs / "ok.py").write_text(SRC)
    ids = by_id(discover(subs, tmp_path / "inputs"))
    job = plan_job(ids["big"])
    assert job.action == "unreadable" and "MiB" in job.problem
    assert plan_job(ids["ok"]).action == "grade"


def test_symlinked_entry_is_not_followed(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (tmp_path / "secret.py").write_text("SECRET")
    (subs / "mallory.py").symlink_to(tmp_path / "secret.py")
    (subs / "ok.py").write_text(SRC)
    ids = by_id(discover(subs, tmp_path / "inputs"))
    assert "symbolic link" in ids["mallory"].problem and ids["mallory"].path is None


# ---- hostile zips -------------------------------------------------------------------------------

def test_zip_traversal_symlink_and_bomb_are_refused(tmp_path):
    outside = tmp_path / "evil.py"
    z = make_zip(tmp_path / "class.zip", {
        "alice/mlp.py": SRC,
        "../evil.py": "pwned",
        "/abs/evil.py": "pwned",
        "bob/../../evil.py": "pwned",
        "carol/mlp.py": b"\0" * (50 * 1024**2),   # 50 MB of zeros: compresses ~1000:1
        "carol/README": "hi",
    }, symlinks={"dave/mlp.py": "/etc/passwd"})
    roster = discover(z, tmp_path / "inputs")
    ids = by_id(roster)
    assert not outside.exists()
    assert not any(p.is_symlink() for p in (tmp_path / "inputs").rglob("*"))
    assert ids["alice"].path is not None and not ids["alice"].problem
    assert "traversal" in ids["evil"].problem
    assert "zip bomb" in " ".join(ids["carol"].notes)          # carol still has README: graded, with a note
    assert "symbolic link" in ids["dave"].problem and ids["dave"].path is None
    assert "traversal" in (ids["bob"].problem + " ".join(ids["bob"].notes))
    extracted = [p for p in (tmp_path / "inputs").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in extracted) < 1024**2


def test_member_lying_about_its_size_is_stopped(tmp_path):
    z = make_zip(tmp_path / "c.zip", {"bob/mlp.py": "x" * 5000})
    dest = tmp_path / "d"
    dest.mkdir()
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("bob/mlp.py")
        info.file_size = 100          # the header lies: the stream is cut (and the CRC fails), nothing kept
        problem = safezip._extract_member(zf, info, dest / "bob.py", dest)
    assert problem and not (dest / "bob.py").exists()


def test_non_utf8_zip_member_names(tmp_path):
    z = tmp_path / "c.zip"
    make_zip(z, {"m_ller/mlp.py": SRC, "ok/mlp.py": SRC})
    data = bytearray(z.read_bytes())
    # turn "m_ller" into cp1252 "m\xfcller" (same length) in the local and central headers; no UTF-8 flag
    assert data.count(b"m_ller") == 2
    z.write_bytes(bytes(data).replace(b"m_ller", b"m\xfcller"))
    ids = by_id(discover(z, tmp_path / "inputs"))
    assert len(ids) == 2
    odd = [k for k in ids if k != "ok"][0]
    assert odd.startswith("m") and odd.endswith("ller") and ids[odd].path.is_dir()


def test_not_a_zip_is_a_clear_error(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(UserError, match="not a readable zip"):
        discover(tmp_path / "x.zip", tmp_path / "inputs")


def test_extraction_is_reused_for_the_same_zip(tmp_path):
    z = make_zip(tmp_path / "c.zip", {"alice/mlp.py": SRC, "../x.py": "x"})
    a = safezip.extract_once(z, tmp_path / "inputs")
    b = safezip.extract_once(z, tmp_path / "inputs")
    assert a.root == b.root and a.problems == b.problems and a.files == b.files == ["alice/mlp.py"]


# ---- LMS exports --------------------------------------------------------------------------------

GRADESCOPE_YML = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  :created_at: 2026-03-01 10:00:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: Alan Turing
    :sid: '1912'
    :email: alan@example.edu
  - :name: Grace Hopper
    :sid: '1906'
    :email: grace@example.edu
submission_103:
  :submitters:
  - :name: Ghost Student
    :sid: '0000'
submission_104: !ruby/object:Submission
  submitters:
  - name: Plain Keys
    email: plain@example.edu
"""


def test_gradescope_export(tmp_path):
    z = make_zip(tmp_path / "gs.zip", {
        "assignment_42_export/submission_metadata.yml": GRADESCOPE_YML,
        "assignment_42_export/submission_101/mlp.py": SRC,
        "assignment_42_export/submission_102/hw/mlp.py": SRC,
        "assignment_42_export/submission_104/mlp.py": SRC,
        "assignment_42_export/submission_105/mlp.py": SRC,
    })
    roster = discover(z, tmp_path / "inputs")
    assert roster.kind == "gradescope"
    ids = by_id(roster)
    assert set(ids) == {"1815", "1912+1906", "0000", "plain", "submission_105"}
    ada = ids["1815"]
    assert ada.name == "Ada Lovelace" and ada.email == "ada@example.edu" and ada.sid == "1815"
    assert "group submission" in " ".join(ids["1912+1906"].notes)
    assert "missing" in ids["0000"].problem
    assert "not listed" in " ".join(ids["submission_105"].notes)


def test_gradescope_metadata_both_key_styles():
    meta = load_gradescope_metadata(":a:\n  :submitters:\n  - :name: X\nb:\n  submitters:\n  - name: Y\n")
    assert meta["a"]["submitters"][0]["name"] == "X"
    assert meta["b"]["submitters"][0]["name"] == "Y"


def test_canvas_export_late_multifile_and_clash(tmp_path):
    z = make_zip(tmp_path / "submissions.zip", {
        "lovelaceada_1815_9001_mlp.py": SRC,
        "turingalan_LATE_1912_9002_mlp.py": SRC,
        "turingalan_LATE_1912_9002_notes.txt": "notes",
        "hoppergrace_1906_9003_mlp-1.py": SRC,
        "hoppergrace_1906_9004_mlp.py": SRC,       # a second submission id for the same student
    })
    roster = discover(z, tmp_path / "inputs")
    assert roster.kind == "canvas"
    ids = by_id(roster)
    assert set(ids) == {"lovelaceada_1815", "turingalan_1912", "hoppergrace_1906~1", "hoppergrace_1906~2"}
    assert ids["turingalan_1912"].late and not ids["lovelaceada_1815"].late
    assert ids["turingalan_1912"].path.is_dir()
    assert sorted(p.name for p in ids["turingalan_1912"].path.iterdir()) == ["mlp.py", "notes.txt"]
    assert ids["lovelaceada_1815"].sid == "1815"
    assert all(ids[k].status == "clash" for k in ids if k.startswith("hopper"))


# ---- gradebook ------------------------------------------------------------------------------------

def results_json(score_by_check: dict[str, float], status="graded", diagnoses=(), batch=None) -> dict:
    tests = [{"name": f"{c}: x", "score": s, "max_score": 20, "output": f"{c} said something.\n\nmore",
              "status": "passed" if s == 20 else "failed"} for c, s in score_by_check.items()]
    return {"score": sum(score_by_check.values()), "max_score": 20 * len(tests), "tests": tests,
            "extra_data": {"status": status, "diagnoses": list(diagnoses), "isolation": "full: bwrap",
                           "execution_time": 1.23, **({"batch": batch} if batch else {})}}


def test_gradebook_columns_and_no_timings():
    rows = [row_from_results("bob", results_json({"forward": 20, "gradients": 10}, diagnoses=["grad_factor_n",
                                                                                                "not_checked"])),
            row_from_results("al", results_json({"forward": 0, "q1": 5}, status="crashed",
                                                batch={"late": True, "note": "n", "name": "Al"}))]
    text = gradebook_csv(rows)
    header = text.splitlines()[0].split(",")
    assert header[:7] == ["student", "total", "forward", "gradients", "minibatch", "sgd_step", "training"]
    assert header[7:] == ["q1", "isolation", "status", "late", "diagnoses", "note", "name", "sid", "email"]
    assert text.splitlines()[1].startswith("al,5,0,,,,,5,full,crashed,yes,,n,Al")
    assert "bob,30,20,10,,,,,full,graded,,grad_factor_n," in text
    assert "1.23" not in text
    assert rows[1].attention() and not rows[0].attention()


def test_gradebook_command_merges_foreign_results(tmp_path):
    runs = tmp_path / "gradescope"
    for student, scores in (("ann", {"forward": 20}), ("ben", {"forward": 5})):
        (runs / student / "results").mkdir(parents=True)
        (runs / student / "results" / "results.json").write_text(json.dumps(results_json(scores)))
    (tmp_path / "other" / "ann").mkdir(parents=True)
    (tmp_path / "other" / "ann" / "results.json").write_text(json.dumps(results_json({"forward": 1})))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    rows, issues = merge([runs, tmp_path / "other", tmp_path / "broken"], tmp_path / "book")
    by = {r.student: r for r in rows}
    assert set(by) == {"ann~1", "ann~2", "ben", "broken"}
    assert by["ann~1"].status == "clash" and by["broken"].status == "unreadable"
    assert by["ben"].total == 5
    assert (tmp_path / "book" / "ben" / "results.json").is_file()
    from autograder.cli import main
    assert main(["gradebook", str(runs), "--out", str(tmp_path / "book2")]) == 0
    text = (tmp_path / "book2" / "gradebook.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[1].startswith("ann,20,20") and "ben,5,5" in text
    assert (tmp_path / "book2" / "summary.html").read_text().count("<img") >= 1


def test_gradebook_merges_a_gradescope_export_with_results(tmp_path):
    root = tmp_path / "export" / "assignment_9_export"
    (root / "submission_101" / "results").mkdir(parents=True)
    (root / "submission_metadata.yml").write_text(GRADESCOPE_YML)
    (root / "submission_101" / "results" / "results.json").write_text(json.dumps(results_json({"forward": 20})))
    (root / "submission_102").mkdir()
    rows, issues = merge([tmp_path / "export"], tmp_path / "book")
    assert [(r.student, r.name, r.email, r.total) for r in rows] == [("1815", "Ada Lovelace", "ada@example.edu", 20)]
    assert any("submission_102" in i for i in issues)


def test_state_matches_only_the_same_submission_config_and_grader(tmp_path, monkeypatch):
    import dataclasses

    from autograder.batch import plan as runner
    from autograder.batch.discover import Entry
    from autograder.config import load_config
    config = load_config()
    (tmp_path / "a.py").write_text(SRC)
    job = runner.plan_job(Entry("a", tmp_path / "a.py", "a.py"))
    folder = tmp_path / "out" / "a"
    folder.mkdir(parents=True)
    for name in ("results.json", "feedback.html"):
        (folder / name).write_text("{}")
    (folder / runner.STATE).write_text(json.dumps(runner.state_for(job, config, True)))
    assert runner.is_current(tmp_path / "out", job, config, True)
    assert not runner.is_current(tmp_path / "out", job, config, False)
    assert not runner.is_current(tmp_path / "out", job, config.with_activation("tanh" if config.activation != "tanh"
                                                                                else "relu"), True)
    changed = dataclasses.replace(config, rubric={**config.rubric, "forward": 16.0})
    assert not runner.is_current(tmp_path / "out", job, changed, True)
    if hasattr(config, "extensions"):
        ext = dataclasses.replace(config, extensions={k: True for k in config.extensions})
        assert not runner.is_current(tmp_path / "out", job, ext, True)
    monkeypatch.setattr(runner, "__version__", "9.9.9")
    assert not runner.is_current(tmp_path / "out", job, config, True)
    monkeypatch.undo()
    (tmp_path / "a.py").write_text(SRC + "# edited\n")
    assert not runner.is_current(tmp_path / "out", runner.plan_job(Entry("a", tmp_path / "a.py", "a.py")), config, True)
    (folder / "feedback.html").unlink()
    assert not runner.is_current(tmp_path / "out", job, config, True)


def test_results_left_by_an_interrupted_regrade_are_marked_stale(tmp_path):
    from autograder.batch.discover import Entry, Roster
    from autograder.batch.runner import build_gradebook
    out = tmp_path / "out"
    (out / "ann").mkdir(parents=True)
    (out / "ann" / "results.json").write_text(json.dumps(results_json({"forward": 20})))
    roster = Roster("folder", tmp_path, [Entry("ann", tmp_path / "ann.py", "ann.py"),
                                         Entry("bob", tmp_path / "bob.py", "bob.py")])
    rows, book, summary = build_gradebook(out, roster, current=set())
    by = {r.student: r for r in rows}
    assert by["ann"].status == "stale" and by["ann"].total == 20 and "rerun" in by["ann"].note
    assert by["bob"].status == "pending"
    rows, _, _ = build_gradebook(out, roster, current={"ann"})
    assert {r.student: r.status for r in rows}["ann"] == "graded"
    assert "ann" in summary.read_text(encoding="utf-8")
