"""The otter notebook carries the handout notebook's walkthrough ((a) derive ... (f) plot, optional work),
its code cells tagged ``otter_ignore`` (grading skips them), and they run: on the reference, with MNIST
read by bplab_training from a small real subset."""
from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest

from autograder.config import load_config
from autograder.handout.notebook import build_notebook
from autograder.reference import reference_source
from autograder.release import shipped
from autograder.release.expected import build_tests
from autograder.release.otter import master_notebook

pytestmark = pytest.mark.xdist_group("release_walkthrough")  # its module fixtures: made once, on one worker

CONFIG = load_config(activation="relu")


@pytest.fixture(scope="module")
def notebooks():
    handout = nbformat.reads(build_notebook(CONFIG), as_version=4)
    return handout, master_notebook(CONFIG, build_tests(CONFIG))


def _headings(nb) -> list[str]:
    return [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
            if re.match(r"## (\([a-f]\)|Optional)", line)]


def test_the_otter_notebook_has_every_section_of_the_handout_in_order(notebooks):
    handout, otter = notebooks
    want = _headings(handout)
    assert len(want) == 7 and want[0].startswith("## (a) Derive")
    got = _headings(otter)
    assert [h.split(" ", 2)[1] for h in got] == [h.split(" ", 2)[1] for h in want]  # (a) ... (f), Optional
    texts = {c.source for c in otter.cells if c.cell_type == "markdown"}
    for cell_id in ("derive", "gradcheck-text", "minibatch-text", "plot-text"):
        assert next(c.source for c in handout.cells if c.id == cell_id) in texts, cell_id
    codes = [c.source for c in otter.cells if c.cell_type == "code"]
    for cell_id in ("gradcheck", "minibatch", "train", "plot"):  # the handout's code, mlp.<name> read as <name>
        theirs = re.sub(r"\bmlp\.", "", next(c.source for c in handout.cells if c.id == cell_id))
        assert any(c.endswith("\n" + theirs) for c in codes), cell_id


def test_walkthrough_cells_are_skipped_by_grading_and_sit_between_implementation_and_tests(notebooks):
    _, otter = notebooks
    roles = [(c.cell_type, c.metadata.get("backprop_lab", {}).get("role"), c.metadata.get("tags", []))
             for c in otter.cells]
    code_walk = [tags for kind, role, tags in roles if kind == "code" and role == "walkthrough"]
    assert len(code_walk) == 6 and all(tags == ["otter_ignore"] for tags in code_walk)
    assert not any("otter_ignore" in tags for _, role, tags in roles if role != "walkthrough")
    order = [i for i, (_, role, _) in enumerate(roles) if role in ("implementation", "walkthrough")]
    first_question = next(i for i, c in enumerate(otter.cells) if c.source.startswith("# BEGIN QUESTION"))
    assert max(order) < first_question


def test_the_walkthrough_runs_on_the_reference(notebooks, mnist_data, tmp_path, monkeypatch, capsys):
    _, otter = notebooks
    data = tmp_path / "mnist"
    for split, n in (("train", 2000), ("valid", 500), ("test", 500)):
        (data / split).mkdir(parents=True)
        np.save(data / split / "X.npy", np.asarray(getattr(mnist_data, split).X[:n]))
        np.save(data / split / "y.npy", np.asarray(getattr(mnist_data, split).y[:n]))
    folder = tmp_path / "notebook"
    folder.mkdir()
    shipped.copy_to(folder)  # what otter ships beside the notebook: bplab_training.py, the judges, gradcheck.py
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("BPLAB_MNIST", str(data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__main__"}
    exec(compile(reference_source("relu"), "implementation", "exec"), namespace)  # noqa: S102 - our reference
    for cell in otter.cells:
        if cell.metadata.get("backprop_lab", {}).get("role") == "walkthrough" and cell.cell_type == "code":
            exec(compile(cell.source, "walkthrough", "exec"), namespace)  # noqa: S102 - our walkthrough
    out = capsys.readouterr().out
    assert "train (2000, 784) valid (500, 784) test (500, 784)" in out
    assert out.count(" ok") == 4 and "WRONG" not in out  # the gradient table: every parameter ok
    assert "test error of the checkpoint with the lowest validation error" in out
    assert namespace["final_test_error"] < 0.3


def test_grade_skips_the_walkthrough_even_when_the_metadata_is_gone(notebooks, tmp_path):
    """Some notebook tools drop cell metadata: the walkthrough cells' first-line mark still tells
    `backprop-lab grade` not to grade them (they import gradcheck and bplab_training and train)."""
    from autograder.release.otter import submission_notebook
    from autograder.submission import load_submission
    _, otter = notebooks
    path = tmp_path / "backprop_lab.ipynb"
    nbformat.write(otter, tmp_path / "student.ipynb")
    submission_notebook(tmp_path / "student.ipynb", reference_source("relu"), path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata = {}
    nbformat.write(nb, path)
    sub = load_submission(path)
    assert "import gradcheck" not in sub.source and "bplab_training" not in sub.source
    assert "def forward" in sub.source and "walkthrough cell(s)" in sub.notes[0]
