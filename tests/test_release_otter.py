"""The otter-grader version, with the real tools: ``otter assign`` (in the build), ``otter check`` on the
skeleton and on the reference, and ``otter run -a autograder.zip`` (no Docker) whose per-question scores
must equal the backprop-lab grader's per-check scores, on the reference and on mutants."""
from __future__ import annotations

import importlib.util
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from autograder.mutants import mutant_sources
from autograder.reference import reference_source
from autograder.release.expected import build_tests
from autograder.release.handout import folder_files, leaks_in_files
from autograder.release.nbchecks import pack
from autograder.release.otter import build_otter, results_by_question, run_otter, submission_notebook
from autograder.release.yearly import bind_secret, plan_release

# find_spec, not importorskip: importing otter costs every xdist worker seconds of CPU at collection
if importlib.util.find_spec("otter") is None:
    pytest.skip("otter-grader 7 is a test dependency (pip install -e '.[test]')", allow_module_level=True)
# its module fixtures: made once, on one worker; MNIST for the tools' training tests (tests/conftest.py)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release_otter"), pytest.mark.usefixtures("mnist_for_the_tools")]


SECRET = "course-secret-for-the-otter-test-2291"
MUTANTS = ("naive_softmax",)  # loses forward points, keeps training (nbgrader's test takes one that loses it)
NOTEBOOK = "backprop_lab.ipynb"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("otter")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", SECRET)
        plan = plan_release(2027, "relu")
        config = bind_secret(plan, tmp / "secret")
        tests = build_tests(config)
        build_otter(config, tests, tmp / "otter", self_test=False)  # otter run grades the reference below
        yield config, tests, tmp / "otter", plan


@pytest.fixture(scope="module")
def grader_scores(built):
    """The backprop-lab grader's per-check scores, MNIST training included."""
    from autograder.grade import grade_source, prepare
    config = built[0]
    env = prepare(config)
    sources = {"reference": reference_source("relu"), **{m: mutant_sources("relu")[m] for m in MUTANTS}}
    return {name: grade_source(src, env).by_check() for name, src in sources.items()}


def test_master_notebook_has_otters_format(built):
    config, tests, folder, _ = built
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    raw = [c.source for c in nb.cells if c.cell_type == "raw"]
    assert raw[0].startswith("# ASSIGNMENT CONFIG")
    assert [r.split("name: ")[1].strip() for r in raw if r.startswith("# BEGIN QUESTION")] == list(config.rubric)
    assert raw.count("# BEGIN TESTS") == raw.count("# END TESTS") == len(config.rubric)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "# BEGIN SOLUTION NO PROMPT" in code and "# END SOLUTION" in code and '""" # BEGIN PROMPT' in code
    assert code.count("# BEGIN TEST CONFIG") == len(tests)
    assert (folder / "autograder.zip").is_file() and (folder / "dist" / "student" / NOTEBOOK).is_file()


def test_student_folder_has_no_solution_no_hidden_test_no_secret(built):
    config, tests, folder, plan = built
    student = folder / "dist" / "student"
    hidden = [pack(t.data) for t in tests if t.hidden]
    assert leaks_in_files(folder_files(student), [SECRET, plan.release_secret], forbidden=hidden) == []
    public_tests = "".join(p.read_text() for p in (student / "tests").glob("*.py"))
    assert "hidden=True" not in public_tests and "hidden=False" in public_tests
    all_tests = "".join(p.read_text() for p in (folder / "dist" / "autograder" / "tests").glob("*.py"))
    assert all_tests.count("hidden=True") == sum(t.hidden for t in tests)


def _student_copy(folder: Path, dst: Path, source: str | None) -> Path:
    shutil.copytree(folder / "dist" / "student", dst)
    if source is not None:
        submission_notebook(dst / NOTEBOOK, source, dst / NOTEBOOK)
    return dst


def test_otter_check_fails_the_skeleton_and_passes_the_reference(built, tmp_path):
    config, _, folder, _ = built
    skeleton = _student_copy(folder, tmp_path / "skeleton", None)
    reference = _student_copy(folder, tmp_path / "reference", reference_source("relu"))
    with ThreadPoolExecutor(2) as pool:
        skel, ref = pool.map(lambda d: run_otter(["check", NOTEBOOK], d), (skeleton, reference))
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert "All tests passed!" in ref.stdout, ref.stdout[-3000:]
    for check_id in config.rubric:
        assert f"{check_id} results:" in skel.stdout
    assert skel.stdout.count("not implemented yet") >= len(config.rubric), skel.stdout[-3000:]
    assert "All tests passed!" not in skel.stdout


def test_otter_check_fails_a_sign_flip(built, tmp_path):
    """The public self-checks are worth a point in the student's tests/ (0 in autograder.zip), so
    `otter check` no longer says "All tests passed!" when only a 0-point public test fails."""
    config, tests, folder, _ = built
    flip = _student_copy(folder, tmp_path / "flip", mutant_sources("relu")["grad_sign_flip"])
    proc = run_otter(["check", NOTEBOOK], flip)
    assert "All tests passed!" not in proc.stdout, proc.stdout[-3000:]
    assert "gradients results:" in proc.stdout and "relative error" in proc.stdout
    assert "forward results: All test cases passed!" in proc.stdout  # the flip only breaks backward
    graded = "".join(p.read_text() for p in (folder / "dist" / "autograder" / "tests").glob("*.py"))
    assert graded.count("points=0.0, hidden=False") == sum(1 for t in tests if not t.hidden and t.points == 0)


def test_otter_run_agrees_with_the_grader(built, grader_scores, tmp_path):
    config, _, folder, _ = built
    student = folder / "dist" / "student" / NOTEBOOK
    sources = {"reference": reference_source("relu"), **{m: mutant_sources("relu")[m] for m in MUTANTS}}

    def grade(name: str) -> dict[str, float]:
        work = tmp_path / name
        (work / "out").mkdir(parents=True)
        submission_notebook(student, sources[name], work / NOTEBOOK)
        proc = run_otter(["run", "-a", str(folder / "autograder.zip"), "-o", "out", NOTEBOOK], work)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return results_by_question(work / "out" / "results.json")

    with ThreadPoolExecutor(2) as pool:
        otter = dict(zip(sources, pool.map(grade, sources)))
    assert otter["reference"] == {c: config.rubric[c] for c in config.rubric}
    for name in sources:
        assert otter[name] == pytest.approx(grader_scores[name]), name
    lost = {name: {c for c in config.rubric if otter[name][c] < config.rubric[c]} for name in MUTANTS}
    assert lost == {"naive_softmax": {"forward"}}
    json.dumps(otter)  # plain numbers
