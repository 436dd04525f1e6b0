"""Extensions everywhere: an enabled extension is a question in the otter and nbgrader versions with its
points, counts in the handout README's total, in the gate's agreement, and scores the same in otter
(real `otter run`) and in nbgrader (real `nbgrader autograde`) as in the backprop-lab grader."""
from __future__ import annotations

import contextlib
from dataclasses import replace

import nbformat
import pytest

from autograder.config import load_config
from autograder.handout.readme import build_readme
from autograder.handout.writer import render_assignment
from autograder.release.expected import build_tests, by_check, run_tests
from autograder.release.gate import gate_reference, run_gate
from autograder.release.nbgrader import source_notebook
from autograder.release.otter import master_notebook

pytestmark = pytest.mark.xdist_group("release_extensions")  # its module fixtures: made once, on one worker

ALL = {"l2": True, "early_stopping": True, "dropout": True}
POINTS = {"l2": 8.0, "early_stopping": 5.0, "dropout": 6.0}


def config(extensions=ALL):
    return replace(load_config(activation="relu"), extensions=dict(extensions), extension_points=POINTS)


def test_each_enabled_extension_is_a_question_with_its_points():
    cfg = config({"l2": True, "early_stopping": False, "dropout": True})
    tests = build_tests(cfg)
    assert {t.check_id for t in tests} >= {"l2", "dropout"} and "early_stopping" not in {t.check_id for t in tests}
    assert sum(t.points for t in tests if t.check_id == "l2") == 8.0
    otter = nbformat.writes(master_notebook(cfg, tests))
    assert "name: l2" in otter and "name: dropout" in otter and "name: early_stopping" not in otter
    nb = source_notebook(cfg, tests)
    graded = [c.metadata["nbgrader"] for c in nb.cells if c.metadata["nbgrader"].get("grade")]
    assert sum(m["points"] for m in graded) == pytest.approx(cfg.max_score + 8 + 6)
    assert "(total 114)" in nb.cells[0].source
    readme = build_readme(cfg)
    assert "## What is graded (114 points)" in readme and "| `l2` | 8 |" in readme and "`early_stopping` |" not in readme


def test_extension_checks_pass_the_reference_and_fail_the_skeleton():
    cfg = config()
    tests = [t for t in build_tests(cfg) if t.check_id in ALL]
    namespace: dict = {}
    exec(compile(gate_reference(cfg), "reference", "exec"), namespace)  # our own reference: trusted
    assert by_check(run_tests(tests, namespace)) == POINTS
    skeleton: dict = {}
    exec(compile(render_assignment(cfg)["mlp.py"], "skeleton", "exec"), skeleton)
    assert all(v == 0 for v in by_check(run_tests(tests, skeleton)).values())


@pytest.mark.sandbox
def test_the_gate_covers_the_extensions_and_their_agreement():
    """With the optional parts switched on, the gate grades the reference WITH its extension functions
    (full marks on them, the extensions' own points) and the extension mutants, each losing points on its
    own extension; the otter/nbgrader checks agree on every subject."""
    cfg = config()
    gate = run_gate(cfg, render_assignment(cfg)["mlp.py"], with_training=False, tests=build_tests(cfg))
    assert gate.passed, [(r.subject, r.got, r.problems) for r in gate.misses]
    assert {"mutant dropout_not_rescaled", "mutant l2_grad_missing", "mutant early_stop_late"} <= {r.subject for r in gate.rows}
    reference = next(r for r in gate.rows if r.subject == "reference")
    assert reference.got.endswith(f"/{cfg.max_score + sum(POINTS.values()):g}"), reference.got
    assert reference.other_graders == f"agree ({cfg.max_score - cfg.rubric['training'] + sum(POINTS.values()):g})"
    assert all(r.other_graders.startswith("agree") for r in gate.rows), \
        [(r.subject, r.other_graders) for r in gate.rows if not r.other_graders.startswith("agree")]


@pytest.fixture()
def no_mnist(tmp_path):
    """These tests compare the extensions only: in the tools' kernels the training tests fail at once (no
    MNIST) instead of training for tens of seconds (tests/test_release_otter.py and
    test_release_nbgrader.py train). A context: the grader itself keeps its cache."""
    @contextlib.contextmanager
    def context():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BPLAB_MNIST", str(tmp_path / "no-mnist-here"))
            mp.delenv("BACKPROP_LAB_CACHE", raising=False)
            yield
    return context


def _extension_subjects(cfg) -> dict[str, str]:
    """The reference with its extension functions, and one submission with a mutant of every enabled
    extension applied (each extension loses points there; two notebooks keep the tools' runs short)."""
    from autograder.mutants import gate_mutants
    reference = gate_reference(cfg)
    buggy, applied = reference, []
    for m in gate_mutants(cfg.extensions):
        if m.expected_check in ALL and m.expected_check not in {a.expected_check for a in applied}:
            buggy = m.apply(buggy)
            applied.append(m)
    assert {m.expected_check for m in applied} == set(ALL)
    return {"reference": reference, "+".join(m.mutant_id for m in applied): buggy}


@pytest.mark.slow
def test_nbgrader_autograde_grades_the_extensions_like_the_grader(tmp_path, no_mnist):
    """A real `nbgrader autograde` of an extension-enabled release: per extension, the gradebook's scores
    equal the backprop-lab grader's, on the reference and on one mutant of each extension."""
    pytest.importorskip("nbgrader")
    from autograder.grade import grade_source, prepare
    from autograder.release.nbgrader import assignment_id, build_nbgrader, run_nbgrader, scores_from_gradebook
    from autograder.release.otter import submission_notebook
    cfg = config()
    aid = assignment_id(cfg)
    build_nbgrader(cfg, build_tests(cfg), tmp_path / "course")
    proc = run_nbgrader(["generate_assignment", aid, "--force"], tmp_path / "course")  # the build drops its db
    assert proc.returncode == 0, proc.stderr[-2000:]
    subjects = _extension_subjects(cfg)
    for i, source in enumerate(subjects.values()):
        folder = tmp_path / "course" / "submitted" / f"student{i}" / aid
        folder.mkdir(parents=True)
        submission_notebook(tmp_path / "course" / "release" / aid / "backprop_lab.ipynb", source,
                            folder / "backprop_lab.ipynb")
    with no_mnist():
        proc = run_nbgrader(["autograde", aid, "--create"], tmp_path / "course")
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = prepare(cfg, with_training=False)
    for i, (name, source) in enumerate(subjects.items()):
        grades = scores_from_gradebook(tmp_path / "course", aid, f"student{i}")
        nbgrader = {ext: sum(v for k, v in grades.items() if k.split("__")[0] == ext) for ext in ALL}
        grader = grade_source(source, env).by_check()
        assert nbgrader == pytest.approx({ext: grader[ext] for ext in ALL}), name
        if name == "reference":
            assert nbgrader == POINTS
        else:
            assert all(nbgrader[ext] < POINTS[ext] for ext in ALL), (name, nbgrader)


@pytest.mark.slow
def test_otter_run_grades_the_extensions_like_the_grader(tmp_path, no_mnist):
    pytest.importorskip("otter")
    from autograder.grade import grade_source, prepare
    from autograder.release.otter import build_otter, results_by_question, run_otter, submission_notebook
    cfg = config()
    tests = build_tests(cfg)
    build_otter(cfg, tests, tmp_path / "otter", self_test=False)
    work = tmp_path / "run"
    (work / "out").mkdir(parents=True)
    source = gate_reference(cfg)
    submission_notebook(tmp_path / "otter" / "dist" / "student" / "backprop_lab.ipynb", source,
                        work / "backprop_lab.ipynb")
    with no_mnist():
        proc = run_otter(["run", "-a", str(tmp_path / "otter" / "autograder.zip"), "-o", "out",
                          "backprop_lab.ipynb"], work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    otter = results_by_question(work / "out" / "results.json")
    grader = grade_source(source, prepare(cfg, with_training=False)).by_check()
    for ext, points in POINTS.items():
        assert otter[ext] == grader[ext] == points


@pytest.mark.slow
def test_local_and_gradescope_graders_score_the_extensions_like_grade(tmp_path, monkeypatch):
    """The release's local autograder (`backprop-lab.sh grade`) and Gradescope's `run_autograder`, built
    from an extension-enabled course.toml, score every extension as `backprop-lab grade` does, on a
    submission with a mutant of each extension (one run each: they train on MNIST)."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from autograder.grade import grade_source, prepare
    from autograder.paths import COURSE_TOML, cache_dir
    from autograder.release.gradescope import build_gradescope, build_local, write_grader_copy
    from autograder.release.yearly import bind_secret, plan_release
    from autograder.release.zipping import extract_zip
    text = COURSE_TOML.read_text()
    for ext in ALL:
        text = text.replace(f"\n{ext} = false", f"\n{ext} = true")
    course = tmp_path / "course.toml"
    course.write_text(text)
    monkeypatch.setenv("BACKPROP_LAB_SECRET", "course-secret-for-the-extensions-test-4410")
    plan = plan_release(2027, "relu", course)
    cfg = bind_secret(plan, tmp_path / "secret")
    assert all(cfg.extensions[e] for e in ALL)
    subjects = {k: v for k, v in _extension_subjects(cfg).items() if k != "reference"}
    grade = {name: grade_source(src, prepare(cfg, with_training=False)).by_check() for name, src in subjects.items()}
    # outside /tmp: under bubblewrap the worker has a private /tmp (tests/test_release_gradescope.py)
    work = Path(tempfile.mkdtemp(prefix="bplab-ext-test-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    work.chmod(0o755)
    try:
        write_grader_copy(plan, tmp_path / "copy")
        manifest = {"year": 2027, "activation": "relu"}
        build_gradescope(plan, tmp_path / "copy", manifest, tmp_path / "autograder.zip")
        build_local(plan, tmp_path / "copy", work / "local", manifest)
        root = work / "autograder"
        (root / "source").mkdir(parents=True)
        extract_zip(tmp_path / "autograder.zip", root / "source")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_LAB_")}
        env.update(BACKPROP_LAB_CACHE=str(cache_dir()), BACKPROP_LAB_PYTHON=sys.executable)
        for name, source in subjects.items():
            for folder in ("submission", "results"):
                shutil.rmtree(root / folder, ignore_errors=True)
                (root / folder).mkdir()
            (root / "submission" / "mlp.py").write_text(source)
            proc = subprocess.run([str(root / "source" / "run_autograder")], cwd="/", capture_output=True, text=True,
                                  env={**env, "BACKPROP_LAB_AUTOGRADER_ROOT": str(root)}, timeout=300)
            assert proc.returncode == 0, proc.stderr[-3000:]
            gradescope = json.loads((root / "results" / "results.json").read_text())["extra_data"]["by_check"]
            (work / "sub.py").write_text(source)
            out = work / f"local-{len(name)}"
            proc = subprocess.run([str(work / "local" / "backprop-lab.sh"), "grade", str(work / "sub.py"), "--out",
                                   str(out)], capture_output=True, text=True, env=env, timeout=300)
            assert proc.returncode == 0, proc.stderr[-2000:]
            local = json.loads((out / "results.json").read_text())["extra_data"]["by_check"]
            for ext in ALL:
                assert gradescope[ext] == local[ext] == grade[name][ext], (name, ext)
            assert all(grade[name][ext] < 5.0 for ext in ALL), grade[name]
            assert gradescope["gradients"] == local["gradients"] == 35.0  # the core parts are untouched
    finally:
        shutil.rmtree(work, ignore_errors=True)
