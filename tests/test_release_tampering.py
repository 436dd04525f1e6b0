"""No unnoticed credit for tampering: with the real otter and nbgrader, each tampering subject scores 0
or is flagged; `crosscheck` regrades a class in the sandbox and flags exactly the tampered notebooks."""
from __future__ import annotations

import csv

import pytest

from autograder.mutants import mutant_sources
from autograder.release import crosscheck as cc
from autograder.release.otter import submission_notebook
from autograder.release.tampering import SUBJECTS, sandboxed_scores, tamper_rows

HONEST = "sgd_ascends"  # loses sgd_step and training in every grader: recorded == sandboxed without training


@pytest.mark.slow
@pytest.mark.xdist_group("release_2027")
def test_every_tampering_subject_scores_zero_or_is_flagged(release_2027):
    """The release's tampering step: every subject, in both real tools, scores 0 or is flagged."""
    build = release_2027.build
    rows = build.tamper_rows
    assert len(rows) == 2 * len(SUBJECTS)
    assert all(r.ok for r in rows), [r.text() for r in rows]
    # the tampering is real: the tools recorded credit the sandboxed grader does not give
    for version in ("otter", "nbgrader"):
        assert build.recorded[(version, "tamper_checks_module")] > 50, build.recorded
        assert build.recorded[(version, "tamper_builtins")] > 50, build.recorded
        assert any(r.flagged for r in rows if r.version == version)
    assert all(r.sandboxed == 0 for r in rows if r.subject != "tamper_numpy")
    # and what the tampering step recomputes matches what the release recorded
    tampers = {k: v for k, v in build.tamper_sources.items() if k in SUBJECTS}
    again = tamper_rows({k: v for k, v in build.recorded.items() if k[1] in SUBJECTS},
                        sandboxed_scores(release_2027.config, release_2027.out, tampers))
    assert [r.text() for r in again] == build.tampering


@pytest.mark.slow
@pytest.mark.xdist_group("release_2027")
def test_crosscheck_flags_the_tampered_notebooks_of_a_class(release_2027, tmp_path):
    build, out, config = release_2027.build, release_2027.out, release_2027.config
    sources = {**build.tamper_sources, HONEST: mutant_sources("relu")[HONEST]}
    klass = tmp_path / "class"
    klass.mkdir()
    student_nb = out / "otter" / "dist" / "student" / "backprop_lab.ipynb"
    for name, source in sources.items():
        submission_notebook(student_nb, source, klass / f"{name}.ipynb")
    recorded = tmp_path / "final_grades.csv"
    with recorded.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "forward", "total_points_earned", "percent_correct"])
        writer.writerow(["points-per-question", 15, 100, 1])
        for name in sources:
            writer.writerow([f"/subs/{name}.ipynb", 0, build.recorded[("otter", name)], 0])
    rows = cc.crosscheck(klass, recorded, tmp_path / "out", with_training=False, config=config, jobs=2)
    got = {r.student: r for r in rows}
    expected_flags = {n for n in SUBJECTS if build.recorded[("otter", n)] > 0.5}
    assert {r.student for r in rows if r.flagged} == expected_flags
    assert not got[HONEST].flagged and got[HONEST].recorded == pytest.approx(got[HONEST].sandboxed)
    text = (tmp_path / "out" / cc.CSV_NAME).read_text()
    assert text.splitlines()[0] == "student,recorded,sandboxed,flagged,note"


def test_recorded_formats(tmp_path):
    nbg = tmp_path / "grades.csv"
    nbg.write_text("assignment,duedate,timestamp,student_id,last_name,first_name,email,raw_score,"
                   "late_submission_penalty,score,max_score\nbackprop-lab,,,alice,,,,97.5,0,97.5,100\n")
    assert [(r.key, r.score, r.origin) for r in cc.read_recorded(nbg)] == [("alice", 97.5, "nbgrader")]
    gs = tmp_path / "gs.csv"
    gs.write_text("Name,SID,Email,Total Score,Max Points,Status\nBob B,123,bob@x.org,88,100,Graded\n")
    assert [(r.key, r.score) for r in cc.read_recorded(gs)] == [("123", 88.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("who,points\nx,1\n")
    with pytest.raises(cc.UserError, match="none of nbgrader"):
        cc.read_recorded(bad)


def test_compare_flags_higher_recorded_and_missing_submissions():
    from autograder.batch.gradebook import Row
    sandboxed = [Row("alice", 40.0), Row("bob", 100.0), Row("=cmd", 10.0)]
    recorded = [cc.Recorded("alice", 100.0, "otter"), cc.Recorded("bob", 100.0, "otter"),
                cc.Recorded("carol", 90.0, "otter")]
    rows = {r.student: r for r in cc.compare(recorded, sandboxed)}
    assert rows["alice"].flagged and not rows["bob"].flagged
    assert rows["carol"].flagged and rows["carol"].sandboxed is None
    assert not rows["=cmd"].flagged and rows["=cmd"].recorded is None
    assert cc._cell("=cmd") == "'=cmd"
