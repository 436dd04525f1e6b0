"""`backprop-lab grade` accepts the otter and nbgrader notebooks of a release (grading cells ignored,
implementation graded) and the handout's walkthrough notebook (its code, or a clear message)."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from autograder.config import load_config
from autograder.errors import SubmissionError
from autograder.paths import PROJECT_ROOT
from autograder.reference import reference_source
from autograder.release.expected import build_tests
from autograder.release.nbgrader import source_notebook
from autograder.release.otter import master_notebook
from autograder.submission import load_submission

pytestmark = pytest.mark.xdist_group("release_notebooks")  # its module fixtures: made once, on one worker

CONFIG = load_config(activation="relu")


@pytest.fixture(scope="module")
def tests():
    return build_tests(CONFIG)


def _filled(nb, source: str, keep_metadata: bool = True) -> nbformat.NotebookNode:
    """A student's notebook: the implementation cell holds ``source``; otter's init/check cells added."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        role = cell.metadata.get("backprop_lab", {}).get("role")
        if role == "implementation":
            cell.source = source
        elif role == "helpers":
            cell.source = "# nothing"
        if not keep_metadata:
            cell.metadata.pop("backprop_lab", None)
    nb.cells.insert(0, nbformat.v4.new_code_cell('import otter\ngrader = otter.Notebook("backprop_lab.ipynb")'))
    nb.cells.append(nbformat.v4.new_code_cell('grader.check("forward")'))
    return nb


@pytest.mark.parametrize("kind", ["otter", "nbgrader"])
@pytest.mark.parametrize("keep_metadata", [True, False])
def test_release_notebooks_yield_the_implementation_only(tmp_path, tests, kind, keep_metadata):
    nb = master_notebook(CONFIG, tests) if kind == "otter" else source_notebook(CONFIG, tests)
    path = tmp_path / "backprop_lab.ipynb"
    nbformat.write(_filled(nb, reference_source("relu"), keep_metadata), path)
    sub = load_submission(path)
    assert "otter" not in sub.source and "bplab_checks" not in sub.source and "grader.check" not in sub.source
    namespace: dict = {}
    exec(compile(sub.source, "mlp.py", "exec"), namespace)  # our own reference: trusted
    assert all(callable(namespace.get(f)) for f in ("init_params", "forward", "backward", "sgd_step"))
    assert any("otter/nbgrader notebook" in n for n in sub.notes)


def test_handout_notebook_without_code_says_submit_mlp_py(tmp_path):
    with pytest.raises(SubmissionError, match="walkthrough notebook.*submit mlp.py"):
        load_submission(PROJECT_ROOT / "assignment" / "backprop_lab.ipynb")


def test_handout_notebook_with_the_functions_grades_those_cells(tmp_path):
    nb = nbformat.read(PROJECT_ROOT / "assignment" / "backprop_lab.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(reference_source("relu")))
    path = tmp_path / "backprop_lab.ipynb"
    nbformat.write(nb, path)
    sub = load_submission(path)
    assert "import mlp" not in sub.source and re.search(r"(?m)^def backward", sub.source)
    assert "graded the 1 cell(s) defining" in sub.notes[0]


def test_a_plain_notebook_is_unchanged(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import numpy as np"), nbformat.v4.new_code_cell("def forward(p, X):\n    pass")]
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    sub = load_submission(path)
    assert "import numpy as np" in sub.source and "def forward" in sub.source
    assert sub.notes == ["graded the code cells of notebook mine.ipynb"]


@pytest.mark.sandbox
def test_grade_scores_the_otter_notebook_like_mlp_py(tmp_path, tests):
    """The sandboxed grader used to score the otter notebook 0 ("No module named 'otter'")."""
    from autograder.grade import grade_path, grade_source, prepare
    env = prepare(CONFIG, with_training=False)
    path = tmp_path / "backprop_lab.ipynb"
    nbformat.write(_filled(master_notebook(CONFIG, tests), reference_source("relu")), path)
    from_notebook = grade_path(path, env).by_check()
    assert from_notebook == grade_source(reference_source("relu"), env).by_check()
    assert all(from_notebook[c] == CONFIG.rubric[c] for c in ("forward", "gradients", "minibatch", "sgd_step"))
