"""``backprop-lab release --year 2027``: all five artifacts behind a passing gate; ``--dry-run``; replacing."""
from __future__ import annotations

import json
import re
import zipfile

import nbformat
import numpy as np
import pytest

from autograder.cli import main
from autograder.errors import UserError
from autograder.release import hiddenscan, nbchecks
from autograder.release.build import ARTIFACTS, replace_dir
from autograder.release.expected import load_expected

pytestmark = [pytest.mark.slow,  # the gate trains the reference and grades ~25 mutants; otter assign and
              pytest.mark.timeout(600),  # nbgrader generate_assignment run, and the student view trains in both
              pytest.mark.xdist_group("release_2027")]  # one worker builds the shared release

def test_release_builds_all_five_artifacts_behind_a_passing_gate(release_2027):
    out = release_2027.out
    for name in ARTIFACTS:
        assert (out / name).exists(), name
    record = json.loads((out / "release.json").read_text())
    assert record["year"] == 2027 and record["activation"] == "relu"
    assert record["gate"]["passed"] and record["gate"]["trained_reference"]
    assert record["secret"]["development"] is False and release_2027.secret not in json.dumps(record)
    assert set(record["artifacts"]) == {"handout.zip", "gradescope/autograder.zip"}
    assert record["tampering"] and all("UNNOTICED" not in line for line in record["tampering"])
    assert "PASSED" in (out / "gate.txt").read_text()
    assert not list(out.parent.glob(".2027.*"))  # no staging folder left behind


def test_artifacts_hold_what_they_promise(release_2027):
    out = release_2027.out
    with zipfile.ZipFile(out / "handout.zip") as zf:
        assert "backprop-lab-2027/mlp.py" in zf.namelist()
    with zipfile.ZipFile(out / "gradescope" / "autograder.zip") as zf:
        assert {"setup.sh", "run_autograder", "release.secret"} <= set(zf.namelist())
    local = out / "autograder"
    assert (local / "backprop-lab.sh").stat().st_mode & 0o111
    assert oct((local / "release.secret").stat().st_mode & 0o777) == "0o600"
    data = load_expected(local / "expected.npz")
    assert int(data["meta/year"]) == 2027 and all(v.dtype != np.dtype(object) for v in data.values())
    tests = json.loads((local / "tests.json").read_text())
    assert sum(t["points"] for t in tests) == 100
    assert (out / "otter" / "autograder.zip").is_file() and (out / "otter" / "dist" / "student").is_dir()
    assert (out / "nbgrader" / "source" / "backprop-lab" / "backprop_lab.ipynb").is_file()
    assert (out / "nbgrader" / "release" / "backprop-lab" / "backprop_lab.ipynb").is_file()
    assert not (out / "nbgrader" / "gradebook.db").exists()


def test_dry_run_shows_the_gate_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dist" / "2027"
    assert main(["release", "--year", "2027", "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "release gate 2027 (relu): PASSED" in printed and "mutant sgd_ascends" in printed
    assert "nothing was written" in printed
    assert not out.exists()


def test_replacing_an_earlier_release_only(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "release.json").write_text("{}")
    new.mkdir()
    (new / "marker").write_text("2")
    replace_dir(new, old)
    assert (old / "marker").read_text() == "2" and not new.exists()
    other, stage = tmp_path / "notes", tmp_path / "stage"
    other.mkdir()
    stage.mkdir()
    with pytest.raises(UserError, match="not a backprop-lab release"):
        replace_dir(stage, other)


def test_the_real_student_view_holds_no_hidden_value(release_2027):
    # here, not in test_release_hidden.py: that module's own xdist group would join this one's name
    # ("release_2027_release_hidden") and a second worker would build the whole release again
    """What the release's student-view step received from the real tools (nbgrader autograde +
    generate_feedback, otter run) for the failing gate subjects and the tampering subjects."""
    from autograder.release.nbgrader import assignment_id
    from autograder.release.studentview import SUBJECTS
    build, out = release_2027.build, release_2027.out
    tests, config = build.tests, release_2027.config
    aid = assignment_id(config)
    source = nbformat.read(out / "nbgrader" / "source" / aid / "backprop_lab.ipynb", as_version=4)
    assert all(nbchecks.pack(t.data) not in c.source for t in tests if t.hidden for c in source.cells)
    view = build.student_view
    feedback = [k for k in view if k.startswith("nbgrader feedback/") and k.endswith(".html")]
    assert len(feedback) == len(SUBJECTS) + len(build.tamper_sources)
    assert hiddenscan.scan(view, tests) == []
    # the hidden tests did run (they read the hidden file): a mutant keeps its hidden gradient points
    results = json.loads(view["otter naive_softmax/results.json"])
    scores = {r["name"]: r.get("score") for r in results["tests"]}
    assert scores["gradients"] == config.rubric["gradients"] and scores["forward"] < config.rubric["forward"]
    html = re.sub(r"<[^>]+>", "", view[next(k for k in feedback if "grad_sign_flip" in k)].decode())
    assert "bplab_checks.hidden(" in html and "relative error" in html
    assert not (out / "otter" / "dist" / "student" / nbchecks.HIDDEN_FILE).exists()
    assert not list((out / "nbgrader" / "release").rglob("*.npz"))
