"""No unnoticed credit for tampering: with the real otter and nbgrader, each tampering subject scores 0
or is flagged; `crosscheck` regrades a class in the sandbox and flags exactly the tampered notebooks."""
from __future__ import annotations

import csv

import pytest

from autograder.handout.writer import render_assignment
from autograder.mutants import mutant_sources
from autograder.release import crosscheck as cc
from autograder.release.expected import build_tests
from autograder.release.otter import submission_notebook
from autograder.release.tampering import SUBJECTS, sandboxed_scores, tamper_rows, tamper_sources
from autograder.release.yearly import bind_secret, plan_release

SECRET = "course-secret-for-the-tamper-test-7781"
HONEST = "sgd_ascends"  # loses sgd_step and training in every grader: recorded == sandboxed without training


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    pytest.importorskip("otter")
    pytest.importorskip("nbgrader")
    from autograder.release.nbgrader import build_nbgrader
    from autograder.release.otter import build_otter
    from autograder.release.studentview import student_view
    tmp = tmp_path_factory.mktemp("tamper")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", SECRET)
        plan = plan_release(2027, "relu")
        config = bind_secret(plan, tmp / "secret")
        tests = build_tests(config)
        stage = tmp / "stage"
        build_otter(config, tests, stage / "otter", self_test=False)  # otter run grades the subjects below
        build_nbgrader(config, tests, stage / "nbgrader")
        sources = tamper_sources(config, render_assignment(config)["mlp.py"])
        sources[HONEST] = mutant_sources("relu")[HONEST]
        view = student_view(stage, config, sources)
        yield config, stage, sources, view, tmp


@pytest.mark.slow
def test_every_tampering_subject_scores_zero_or_is_flagged(tools):
    config, stage, sources, view, _ = tools
    tampers = {k: v for k, v in sources.items() if k in SUBJECTS}
    rows = tamper_rows({k: v for k, v in view.scores.items() if k[1] in SUBJECTS},
                       sandboxed_scores(config, stage, tampers))
    assert len(rows) == 2 * len(SUBJECTS)
    assert all(r.ok for r in rows), [r.text() for r in rows]
    # the tampering is real: the tools recorded credit the sandboxed grader does not give
    for version in ("otter", "nbgrader"):
        assert view.scores[(version, "tamper_checks_module")] > 50, view.scores
        assert view.scores[(version, "tamper_builtins")] > 50, view.scores
        assert any(r.flagged for r in rows if r.version == version)
    assert all(r.sandboxed == 0 for r in rows if r.subject != "tamper_numpy")


@pytest.mark.slow
def test_crosscheck_flags_the_tampered_notebooks_of_a_class(tools):
    config, stage, sources, view, tmp = tools
    klass = tmp / "class"
    klass.mkdir()
    student_nb = stage / "otter" / "dist" / "student" / "backprop_lab.ipynb"
    for name, source in sources.items():
        submission_notebook(student_nb, source, klass / f"{name}.ipynb")
    recorded = tmp / "final_grades.csv"
    with recorded.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "forward", "total_points_earned", "percent_correct"])
        writer.writerow(["points-per-question", 15, 100, 1])
        for name in sources:
            writer.writerow([f"/subs/{name}.ipynb", 0, view.scores[("otter", name)], 0])
    rows = cc.crosscheck(klass, recorded, tmp / "out", with_training=False, config=config, jobs=2)
    got = {r.student: r for r in rows}
    expected_flags = {n for n in SUBJECTS if view.scores[("otter", n)] > 0.5}
    assert {r.student for r in rows if r.flagged} == expected_flags
    assert not got[HONEST].flagged and got[HONEST].recorded == pytest.approx(got[HONEST].sandboxed)
    text = (tmp / "out" / cc.CSV_NAME).read_text()
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
