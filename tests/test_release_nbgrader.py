"""The nbgrader version, with the real tools: ``nbgrader generate_assignment`` and ``nbgrader autograde``
in a temporary course; scores read from its gradebook must equal the backprop-lab grader's per-check
scores on the reference and on mutants, and the skeleton scores 0."""
from __future__ import annotations

import importlib.util
import json
import shutil

import nbformat
import pytest

from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from autograder.release.expected import build_tests
from autograder.release.handout import folder_files, leaks_in_files
from autograder.release.nbchecks import pack
from autograder.release.nbgrader import assignment_id, build_nbgrader, run_nbgrader, scores_from_gradebook
from autograder.release.otter import submission_notebook
from autograder.release.yearly import bind_secret, plan_release

# find_spec, not importorskip: importing nbgrader costs every xdist worker seconds of CPU at collection
if importlib.util.find_spec("nbgrader") is None:
    pytest.skip("nbgrader 0.9 is a test dependency (pip install -e '.[test]')", allow_module_level=True)
# its module fixtures: made once, on one worker; MNIST for the tools' training tests (tests/conftest.py)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release_nbgrader"), pytest.mark.usefixtures("mnist_for_the_tools")]


SECRET = "course-secret-for-the-nbgrader-test-8830"
MUTANTS = ("sgd_ascends",)  # loses sgd_step and training (otter's test takes one that keeps training)
NOTEBOOK = "backprop_lab.ipynb"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course built from the release's nbgrader/ folder, with four autograded submissions."""
    tmp = tmp_path_factory.mktemp("nbgrader")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", SECRET)
        plan = plan_release(2027, "relu")
        config = bind_secret(plan, tmp / "secret")
        tests = build_tests(config)
        build_nbgrader(config, tests, tmp / "built")
    aid = assignment_id(config)
    root = tmp / "course"
    shutil.copytree(tmp / "built", root, ignore=shutil.ignore_patterns("release"))
    proc = run_nbgrader(["generate_assignment", aid, "--force"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    released = root / "release" / aid / NOTEBOOK
    sources = {"reference": reference_source("relu"), **{m: mutant_sources("relu")[m] for m in MUTANTS}}
    for student in [*sources, "skeleton"]:
        folder = root / "submitted" / student / aid
        folder.mkdir(parents=True)
        if student == "skeleton":
            shutil.copyfile(released, folder / NOTEBOOK)
        else:
            submission_notebook(released, sources[student], folder / NOTEBOOK)
    proc = run_nbgrader(["autograde", aid, "--create"], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, tests, plan, tmp / "built", root, aid


@pytest.fixture(scope="module")
def grader_scores(course):
    from autograder.grade import grade_source, prepare
    env = prepare(course[0])
    sources = {"reference": reference_source("relu"), **{m: mutant_sources("relu")[m] for m in MUTANTS}}
    return {name: grade_source(src, env).by_check() for name, src in sources.items()}


def per_check(scores: dict[str, float]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for grade_id, score in scores.items():
        check = grade_id.split("__")[0]
        totals[check] = round(totals.get(check, 0.0) + score, 4)
    return totals


def test_source_notebook_has_nbgraders_metadata(course):
    config, tests, _, built, _, aid = course
    nb = nbformat.read(built / "source" / aid / NOTEBOOK, as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)) and all(m["schema_version"] == 3 for m in meta)
    solutions = [c for c, m in zip(nb.cells, meta) if m["solution"]]
    assert [m["grade_id"] for m in meta if m["solution"]] == ["implementation", "helpers"]
    assert all("### BEGIN SOLUTION" in c.source for c in solutions)
    graded = [(c, m) for c, m in zip(nb.cells, meta) if m["grade"]]
    assert all(m["locked"] and m["points"] >= 0 for _, m in graded)
    assert all(m["grade"] for c, m in zip(nb.cells, meta) if c.cell_type == "code" and not m["solution"])
    assert sum(m["points"] for _, m in graded) == pytest.approx(config.max_score)
    hidden = [pack(t.data) for t in tests if t.hidden]
    for c, m in graded:  # hidden data only inside hidden-test blocks
        for blob in hidden:
            if blob in c.source:
                inside = c.source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
                assert blob in inside


def test_released_notebook_has_no_solution_no_hidden_test_no_secret(course):
    _, tests, plan, built, root, aid = course
    hidden = [pack(t.data) for t in tests if t.hidden]
    for folder in (built / "release", root / "release"):
        files = folder_files(folder)
        assert files and leaks_in_files(files, [SECRET, plan.release_secret], forbidden=hidden) == []
        text = "".join(v.decode() for v in files.values())
        assert "BEGIN HIDDEN TESTS" not in text and "raise NotImplementedError()" in text


def test_autograde_scores_agree_with_the_grader(course, grader_scores):
    config, _, _, _, root, aid = course
    scores = {s: per_check(scores_from_gradebook(root, aid, s)) for s in [*grader_scores, "skeleton"]}
    assert scores["reference"] == {c: config.rubric[c] for c in config.rubric}
    assert all(v == 0 for v in scores["skeleton"].values())
    for name, theirs in grader_scores.items():
        assert scores[name] == pytest.approx(theirs), name
    assert {c for c, v in scores["sgd_ascends"].items() if v < config.rubric[c]} == {"sgd_step", "training"}


def test_nbgrader_export_has_the_same_totals(course, grader_scores):
    import csv
    _, _, _, _, root, _ = course
    proc = run_nbgrader(["export"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader((root / "grades.csv").open())}
    expected = {name: sum(v.values()) for name, v in grader_scores.items()} | {"skeleton": 0.0}
    assert rows == pytest.approx(expected)
    json.dumps(rows)


def test_nbgrader_validate_fails_a_sign_flip_and_passes_the_reference(course, tmp_path):
    """The public self-checks are 0-point grade cells: `nbgrader validate` fails one that raises."""
    _, _, _, _, root, aid = course
    out = {}
    for name, source in (("flip", mutant_sources("relu")["grad_sign_flip"]), ("reference", reference_source("relu"))):
        folder = tmp_path / name
        shutil.copytree(root / "release" / aid, folder)
        submission_notebook(folder / NOTEBOOK, source, folder / NOTEBOOK)
        out[name] = run_nbgrader(["validate", NOTEBOOK], folder)
    flip = out["flip"].stdout + out["flip"].stderr
    assert "VALIDATION FAILED" in flip and "gradients: public self-check" in flip, flip[-3000:]
    assert "relative error" in flip
    reference = out["reference"].stdout + out["reference"].stderr
    assert "Success! Your notebook passes all the tests." in reference, reference[-3000:]
