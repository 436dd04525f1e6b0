"""nbgrader/: the assignment as an nbgrader course, checked by running the real ``nbgrader generate_assignment``.

Layout (course root = ``nbgrader/``): ``nbgrader_config.py``, ``source/<assignment>/backprop_lab.ipynb``
(solution cells between ``### BEGIN SOLUTION``/``### END SOLUTION``; one locked grade cell per test
with its points and ``grade_id``; hidden cases and their expected values only between ``### BEGIN
HIDDEN TESTS``/``### END HIDDEN TESTS``, which generate_assignment strips), ``source/<assignment>/
bplab_checks.py``, and ``release/<assignment>/`` (what generate_assignment made: the student version).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat

from ..config import CourseConfig
from ..errors import UserError
from . import nbchecks, shipped
from .expected import ReleaseTest, save_hidden
from .tooling import tool_command
from .notebook import CHECKS_MODULE, NOTEBOOK, extension_cell, intro, module_cells, questions

SCHEMA = 3


class NbgraderMarkers:
    """Solution regions the way nbgrader's ClearSolutions replaces them (with ``raise NotImplementedError()``)."""

    def block(self, indent: str, lines: list[str], stub: str | None) -> list[str]:
        hint = [f"{indent}# Hint: {stub.split(' — ', 1)[-1]}"] if stub else []
        return hint + [f"{indent}### BEGIN SOLUTION"] + lines + [f"{indent}### END SOLUTION"]


def assignment_id(config: CourseConfig) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", config.assignment).strip("-") or "backprop-lab"


def _meta(cell, grade_id: str, *, solution=False, grade=False, locked=False, points=None):
    meta = {"schema_version": SCHEMA, "grade_id": grade_id, "solution": solution, "grade": grade,
            "locked": locked, "task": False}
    if grade:
        meta["points"] = float(points)
    cell.metadata["nbgrader"] = meta
    return cell


def test_source(test: ReleaseTest) -> str:
    if test.hidden:  # the values stay in the instructor-side hidden file (feedback shows cell sources)
        body = [f"data = {CHECKS_MODULE}.hidden({json.dumps(test.test_id)})", test.call(CHECKS_MODULE, "data")]
    else:
        body = [f"data = {CHECKS_MODULE}.unpack({json.dumps(nbchecks.pack(test.data))})",
                test.call(CHECKS_MODULE, "data")]
    if test.hidden:
        body = ["### BEGIN HIDDEN TESTS"] + body + ["### END HIDDEN TESTS"]
    return "\n".join([f"# {test.check_id}: {test.label}", f"import {CHECKS_MODULE}"] + body)


def source_notebook(config: CourseConfig, tests: list[ReleaseTest]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    implementation, helpers = module_cells(config, NbgraderMarkers())
    cells = [_meta(nbformat.v4.new_markdown_cell(intro(config)), "intro", locked=True),
             _meta(nbformat.v4.new_code_cell(implementation, metadata={"backprop_lab": {"role": "implementation"}}),
                   "implementation", solution=True),
             _meta(nbformat.v4.new_code_cell(helpers, metadata={"backprop_lab": {"role": "helpers"}}),
                   "helpers", solution=True)]
    extensions = extension_cell(config, NbgraderMarkers())
    if extensions is not None:
        cells.append(_meta(nbformat.v4.new_code_cell(extensions, metadata={"backprop_lab": {"role": "extensions"}}),
                           "extensions", solution=True))
    for q in questions(config, tests):
        cells.append(_meta(nbformat.v4.new_markdown_cell(f"## {q.check_id} ({q.points:g} points)\n\n{q.prompt}"),
                           f"prompt_{q.check_id}", locked=True))
        for t in q.tests:
            # Every test is a grade cell, the 0-point public self-checks too: `nbgrader validate` fails a
            # grade cell worth 0 that raised, and ignores a failing cell that is merely locked.
            cell = nbformat.v4.new_code_cell(test_source(t))
            cells.append(_meta(cell, t.test_id, grade=True, locked=True, points=t.points))
    nb.cells = cells
    return nb


CONFIG = """import os
import pathlib

c = get_config()
# The hidden cases live outside source/ and release/ (never in a cell, never released); the grading
# kernel reads them through this variable (bplab_checks.hidden).
os.environ.setdefault("BPLAB_HIDDEN", str(pathlib.Path(__file__).resolve().parent / "hidden" / {hidden!r}))
c.CourseDirectory.course_id = {course!r}
c.CourseDirectory.root = "."
# MNIST for the training tests: the backprop-lab cache's .npy split (train/, valid/, test/); set BPLAB_MNIST
# to it before running nbgrader (or uncomment and edit the next line)
# os.environ.setdefault("BPLAB_MNIST", "/path/to/data/cache/mnist")
# one BLAS thread in the grading kernel, as the backprop-lab grader's worker (the budget is in CPU seconds)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# a training test trains on MNIST for up to its budget of {budget:.0f} CPU seconds, plus the evaluations
c.ExecutePreprocessor.timeout = {timeout}
"""


def nbgrader_command() -> list[str]:
    return tool_command("nbgrader", "nbgrader", "nbgrader is not installed, and the release checks nbgrader/ "
                        "with `nbgrader generate_assignment`: pip install 'nbgrader==0.9.*' (or pip install -e "
                        "'.[release]')")


def run_nbgrader(args: list[str], course: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(nbgrader_command() + args, cwd=course, capture_output=True, text=True, timeout=timeout)


def build_nbgrader(config: CourseConfig, tests: list[ReleaseTest], dst: Path) -> list[str]:
    """Write the course into ``dst`` and run ``nbgrader generate_assignment`` there (the gradebook is dropped)."""
    dst = Path(dst)
    aid = assignment_id(config)
    source = dst / "source" / aid
    source.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(config, tests), source / NOTEBOOK)
    shipped.copy_to(source)  # bplab_checks.py, the judges it calls and bplab_training.py
    budget = max(float(t.data["budget_s"]) for t in tests if t.check_id == "training")
    (dst / "nbgrader_config.py").write_text(CONFIG.format(course=f"{aid}-{config.year}", hidden=f"{aid}.npz",
                                                          budget=budget, timeout=int(4 * budget + 120)),
                                            encoding="utf-8")
    save_hidden(dst / "hidden" / f"{aid}.npz", tests)
    proc = run_nbgrader(["generate_assignment", aid, "--force"], dst)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise UserError(f"`nbgrader generate_assignment {aid}` failed (exit {proc.returncode}):\n{tail}")
    for leftover in ("gradebook.db", ".nbgrader.log"):
        (dst / leftover).unlink(missing_ok=True)
    (dst / "README.md").write_text(README.format(year=config.year, aid=aid, notebook=NOTEBOOK), encoding="utf-8")
    return sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())


README = """# nbgrader version of the {year} release

This folder is an nbgrader course root (`nbgrader_config.py`). Copy `source/{aid}/` into your course's
`source/` (or use this folder as the course), then:

```bash
nbgrader generate_assignment {aid}        # release/{aid}/: hidden tests stripped (already done once here)
# collect submissions into submitted/<student>/{aid}/{notebook}
nbgrader autograde {aid}                  # runs each notebook; scores go to gradebook.db
nbgrader generate_feedback {aid}
nbgrader export                           # grades.csv
```

One locked grade cell per test, with the grader's points (the public self-checks are grade cells
worth 0, so `nbgrader validate` fails them). The hidden cases and their expected values are in
`hidden/{aid}.npz` only, read at grading time through `BPLAB_HIDDEN` (set by `nbgrader_config.py`);
no cell holds them, so feedback cannot show them. If you copy `source/{aid}/` into another course,
copy `hidden/{aid}.npz` too and set `BPLAB_HIDDEN` to it.

**MNIST.** The training tests train on real MNIST with the grader's loop, schedule, target and
partial-credit scale, in CPU seconds of the grading kernel. They read the backprop-lab cache's `.npy`
split (`train/`, `valid/`, `test/`, each `X.npy` and `y.npy`; `backprop-lab data fetch` makes it under
`data/cache/mnist`): set `BPLAB_MNIST` to that folder before `nbgrader autograde` (or in
`nbgrader_config.py`), or put its path into `bplab_mnist.txt` next to the notebook, or copy it there
as `mnist/`; `BACKPROP_LAB_CACHE` is tried last. Without it the training tests fail with a message
naming the paths they tried. nbgrader runs student code unsandboxed, one notebook at a time; the
backprop-lab grader (`../gradescope/`, `../autograder/`) is the sandboxed one.
"""


def scores_from_gradebook(course: Path, aid: str, student: str, notebook: str = NOTEBOOK) -> dict[str, float]:
    """{grade_id: score} of one autograded submission, read with nbgrader's Gradebook API."""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(Path(notebook).stem, aid, student)
        return {g.name: float(g.score or 0.0) for g in nb.grades}
