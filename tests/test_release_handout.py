"""handout.zip: the student files of the year, and nothing of the solution, the hidden cases or the secret."""
from __future__ import annotations

import zipfile

import pytest

from autograder.errors import UserError
from autograder.release import handout as handout_mod
from autograder.release.expected import build_tests
from autograder.release.handout import build_handout, leaks_in_files, solution_lines, zip_files
from autograder.release.nbchecks import pack
from autograder.release.yearly import bind_secret, plan_release

pytestmark = pytest.mark.xdist_group("release_handout")  # its module fixtures: made once, on one worker

SECRET = "course-secret-for-the-handout-test-7731"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handout")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", SECRET)
        plan = plan_release(2027, "tanh")
        config = bind_secret(plan, tmp / "secret")
        names = build_handout(config, tmp / "handout.zip", secrets=[SECRET, plan.release_secret])
        return plan, config, tmp / "handout.zip", names


def test_the_handout_has_the_student_files(built):
    plan, config, path, names = built
    assert set(names) >= {"mlp.py", "backprop_lab.ipynb", "test_mlp.py", "gradcheck.py", "README.md"}
    files = zip_files(path)
    assert all(name.startswith("backprop-lab-2027/") for name in files)
    skeleton = files["backprop-lab-2027/mlp.py"].decode()
    assert 'ACTIVATION = "tanh"' in skeleton and "NotImplementedError" in skeleton
    compile(skeleton, "mlp.py", "exec")


def test_the_handout_leaks_no_solution_line_and_no_secret(built):
    plan, config, path, _ = built
    lines = solution_lines()
    assert len(lines) > 10  # the scan has something to look for
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            text = handout_mod.readable_text(info.filename, zf.read(info))
            assert not [line for line in lines if line in text], info.filename
            assert SECRET not in text and plan.release_secret not in text, info.filename
            assert "solutions/" not in info.filename and not info.filename.endswith(".npz")


def test_the_handout_holds_no_hidden_case(built):
    plan, config, path, _ = built
    hidden = [pack(t.data) for t in build_tests(config) if t.hidden]
    text = "".join(handout_mod.readable_text(n, d) for n, d in zip_files(path).items())
    assert not [h for h in hidden if h in text]
    assert leaks_in_files(zip_files(path), [SECRET, plan.release_secret], forbidden=hidden) == []


def test_the_scan_finds_a_planted_leak():
    line = solution_lines()[0]
    files = {"mlp.py": f"x = 1\n    {line}\n".encode(),
             "nb.ipynb": ('{"cells": [{"cell_type": "code", "source": ["' + SECRET + '"]}]}').encode(),
             "solutions/mlp.py": b"pass\n"}
    found = leaks_in_files(files, [SECRET])
    assert any(f.startswith("mlp.py: solution line") for f in found)
    assert "nb.ipynb: a secret" in found and "solutions/mlp.py: a file from solutions/" in found


def test_build_refuses_when_the_handout_would_leak(tmp_path, monkeypatch):
    """A secret that happens to occur in a student file stops the build before the zip is written."""
    plan = plan_release(2027)
    with pytest.raises(UserError, match="leak"):  # a string every skeleton has plays the secret
        build_handout(plan.config, tmp_path / "handout.zip", secrets=["NotImplementedError"])
    assert not (tmp_path / "handout.zip").exists()
