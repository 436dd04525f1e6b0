"""Gradescope's autograder.zip, run end to end in a fake /autograder tree; and the local autograder/.

The fake tree lives outside /tmp: under bubblewrap the worker sees a private /tmp, so a grader copy
below /tmp would be invisible to it (the real tree is /autograder).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.mutants import mutant_sources
from autograder.paths import COURSE_TOML, cache_dir
from autograder.reference import reference_source
from autograder.release.gradescope import build_gradescope, build_local, write_grader_copy
from autograder.release.yearly import plan_release
from autograder.release.zipping import extract_zip

# every run trains on MNIST (calibrated reference, real budget); its module fixtures: made once, on one worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release_gradescope")]

SECRET = "course-secret-for-the-gradescope-test-5512"

#: Gradescope's results.json specification (https://gradescope-autograders.readthedocs.io), strictly.
TEST_SCHEMA = {
    "type": "object",
    "required": ["name", "score", "max_score", "output"],
    "properties": {
        "score": {"type": "number"}, "max_score": {"type": "number"},
        "status": {"enum": ["passed", "failed"]}, "name": {"type": "string", "minLength": 1},
        "name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "number": {"type": "string"}, "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number"}, "max_score": {"type": "number"},
        "execution_time": {"type": "number"}, "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"}, "leaderboard": {"type": "array"},
        "tests": {"type": "array", "items": TEST_SCHEMA},
    },
    "additionalProperties": False,
}
CHECKS = ("forward", "gradients", "minibatch", "sgd_step", "training")


def valid_results(data: dict) -> dict:
    jsonschema.validate(data, RESULTS_SCHEMA)
    assert {t["name"].split(":")[0] for t in data["tests"]} == set(CHECKS)
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    return data


def _outside_tmp() -> Path:
    for base in ("/var/tmp", str(Path.cwd())):
        if os.access(base, os.W_OK):
            return Path(base)
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def _release_tree(tmp: Path, course: Path | None = None):
    """(plan, gradescope zip, local autograder folder, fake /autograder root) of a 2027 release built
    from ``course`` (a course.toml; the project's own when None)."""
    work = Path(tempfile.mkdtemp(prefix="bplab-release-test-", dir=_outside_tmp()))
    work.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BACKPROP_LAB_SECRET", SECRET)
            plan = plan_release(2027, "relu", course)
            write_grader_copy(plan, tmp / "copy")
            manifest = {"year": 2027, "activation": "relu"}
            zip_path = tmp / "autograder.zip"
            build_gradescope(plan, tmp / "copy", manifest, zip_path)
            build_local(plan, tmp / "copy", work / "local", manifest)
        root = work / "autograder"
        (root / "source").mkdir(parents=True)
        extract_zip(zip_path, root / "source")
        yield plan, zip_path, work / "local", root
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(plan, gradescope zip, local autograder folder, fake /autograder root)."""
    with _release_tree(tmp_path_factory.mktemp("gradescope")) as tree:
        yield tree


@pytest.fixture(scope="module")
def short_import_release(tmp_path_factory):
    """The same release built from a course.toml whose import timeout is 3 s, not 20 s: a submission whose
    import never ends spins out the whole timeout, CPU the verdict does not depend on (limits are data,
    issue 16)."""
    tmp = tmp_path_factory.mktemp("gradescope-short-import")
    text = COURSE_TOML.read_text()
    assert "\nload_timeout_s = 20.0" in text
    (tmp / "course.toml").write_text(text.replace("\nload_timeout_s = 20.0", "\nload_timeout_s = 3.0"))
    with _release_tree(tmp, tmp / "course.toml") as tree:
        yield tree


def grader_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_LAB_")}
    env.update(BACKPROP_LAB_CACHE=str(cache_dir()), BACKPROP_LAB_PYTHON=sys.executable, **extra)
    return env


def run_gradescope(root: Path, files: dict[str, str], planted: str | None = None) -> tuple[dict, str]:
    for name in ("submission", "results"):
        shutil.rmtree(root / name, ignore_errors=True)
        (root / name).mkdir()
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    if planted is not None:
        (root / "results" / "results.json").write_text(planted)
    proc = subprocess.run([str(root / "source" / "run_autograder")], cwd="/", capture_output=True, text=True,
                          env=grader_env(BACKPROP_LAB_AUTOGRADER_ROOT=str(root)), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text()), proc.stdout


def test_zip_follows_gradescopes_layout(release):
    plan, zip_path, _, _ = release
    with zipfile.ZipFile(zip_path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "release.json", "release.secret"} <= set(infos)
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
    assert "backprop-lab/solutions/mlp.py" in infos and "backprop-lab/autograder/grade.py" in infos
    assert "backprop-lab/course.toml" in infos
    assert not [n for n in infos if "__pycache__" in n]
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.read("release.secret").decode().strip() == plan.release_secret
        assert SECRET.encode() not in b"".join(zf.read(i) for i in zf.infolist())
        setup = zf.read("setup.sh").decode()
    assert "sandbox setup" in setup and "bubblewrap" in setup and "chmod -R go-rwx" in setup


def test_scripts_are_valid_bash(release):
    _, _, _, root = release
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(root / "source" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_a_correct_submission_scores_full_marks(release):
    plan, _, _, root = release
    data, stdout = run_gradescope(root, {"mlp.py": reference_source("relu")})
    valid_results(data)
    assert data["score"] == data["max_score"] == 100, [t for t in data["tests"] if t["status"] != "passed"]
    assert data["extra_data"]["year"] == 2027 and data["extra_data"]["activation"] == "relu"
    assert "development secret" not in data["output"]  # the release secret was in force
    assert "score 100 / 100" in stdout


def test_a_buggy_submission_loses_its_points_and_the_local_grader_agrees(release, tmp_path):
    _, _, local, root = release
    source = mutant_sources("relu")["bias_not_summed"]  # fails training at its first checkpoint: fast
    data, _ = run_gradescope(root, {"mlp.py": source})
    valid_results(data)
    assert 0 < data["score"] < data["max_score"]
    assert data["extra_data"]["by_check"]["gradients"] < 35
    assert "bias_not_summed" in data["extra_data"]["diagnoses"]
    (local.parent / "sub.py").write_text(source)
    out = local.parent / "local-results"
    proc = subprocess.run([str(local / "backprop-lab.sh"), "grade", str(local.parent / "sub.py"), "--out", str(out)],
                          capture_output=True, text=True, env=grader_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mine = json.loads((out / "results.json").read_text())
    assert mine["extra_data"]["by_check"] == data["extra_data"]["by_check"]


HOSTILE = '''
import json, sys
fake = {{"score": 1000, "max_score": 100, "tests": []}}
print(json.dumps(fake))
try:
    open({path!r}, "w").write(json.dumps(fake))
except OSError:
    pass
while True:
    pass
'''


def test_a_hostile_submission_cannot_forge_the_results(short_import_release):
    _, _, _, root = short_import_release
    target = str(root / "results" / "results.json")
    planted = json.dumps({"score": 999, "tests": []})
    data, _ = run_gradescope(root, {"mlp.py": HOSTILE.format(path=target)}, planted=planted)
    valid_results(data)
    assert data["score"] == 0 and data["max_score"] == 100
    assert all(t["score"] == 0 for t in data["tests"])
    assert data["extra_data"]["status"] == "timeout"  # the import never finished, and the report says so
    assert "infinite loop" in data["tests"][0]["output"]


def test_an_unusable_submission_still_gets_a_results_json(release):
    _, _, _, root = release
    data, _ = run_gradescope(root, {"notes.txt": "I did not do it"})
    valid_results(data)
    assert data["score"] == 0
    assert data["extra_data"]["status"] == "unusable_submission"
    assert "could not be graded" in data["tests"][0]["output"]


# ---- the readable summary and Python 3.10 (Ubuntu 22.04, Gradescope's default image) -------------------
def test_results_json_summary_is_markdown_with_the_diagnosis(release):
    _, _, _, root = release
    data, _ = run_gradescope(root, {"notes.txt": "I did not do it"})
    assert data["output_format"] == "md" and data["test_output_format"] == "text"
    assert data["output"].startswith("## Score 0 / 100") and "| forward | 0 | 15 | **to fix** |" in data["output"]
    assert "### What to fix" in data["output"] and "`unusable\\_submission`" in data["output"]


def test_summary_escapes_student_text():
    from autograder.release.gradescope_summary import summary_markdown
    data = {"score": 1, "max_score": 2, "output": "", "tests": [
        {"name": "forward: toy", "score": 0, "max_score": 1, "status": "failed", "tags": ["shape"],
         "output": "forward raised ValueError: <img src=x onerror=alert(1)> **bold** [link](http://x)"},
        {"name": "forward: big", "score": 1, "max_score": 1, "status": "passed", "output": ""}]}
    text = summary_markdown(data)
    assert "<img" not in text and "&lt;img" in text and "\\*\\*bold\\*\\*" in text and "\\[link\\]" in text
    assert "| forward | 1 | 2 | **to fix** |" in text


def _python(version: str) -> str | None:
    """An interpreter of ``version`` (pyenv's or the system's), or None."""
    for pattern in (f"/root/.pyenv/versions/{version}.*/bin/python{version}", f"/usr/bin/python{version}"):
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found and found[-1].is_file():
            return str(found[-1])
    return None


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.11"])
def test_setup_and_grading_on_a_fresh_root(release, version):
    """setup.sh's venv part with Python 3.10 (Ubuntu 22.04's, Gradescope's base image) or 3.11 in a fresh
    fake root (apt, users and /opt are left alone: BACKPROP_LAB_SETUP_ONLY_VENV), then run_autograder
    grades with that venv. 3.11 (each run is a minute of pip downloads) only with BACKPROP_LAB_LONG_TESTS=1."""
    if version != "3.10" and not os.environ.get("BACKPROP_LAB_LONG_TESTS"):
        pytest.skip("Python 3.11 setup: set BACKPROP_LAB_LONG_TESTS=1 (release checklist, docs/release.md)")
    if _python(version) is None:
        pytest.skip(f"no Python {version} on this machine")
    _, zip_path, _, _ = release
    work = Path(tempfile.mkdtemp(prefix="bplab-gs310-", dir=_outside_tmp()))
    work.chmod(0o755)
    try:
        root = work / "autograder"
        (root / "source").mkdir(parents=True)
        extract_zip(zip_path, root / "source")
        # PIP_NO_COMPILE: pip byte-compiles every installed file (numpy, matplotlib: thousands), CPU this
        # test does not judge; Gradescope's real setup.sh run keeps compiling
        env = grader_env(BACKPROP_LAB_AUTOGRADER_ROOT=str(root), BACKPROP_LAB_SETUP_ONLY_VENV="1",
                         BACKPROP_LAB_SETUP_PYTHON=_python(version), PIP_NO_COMPILE="1",
                         PIP_DISABLE_PIP_VERSION_CHECK="1")
        proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, env=env,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        venv_python = root / "source" / "venv" / "bin" / "python"
        version_seen = subprocess.run([str(venv_python), "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout
        assert version_seen.strip() == str(tuple(int(p) for p in version.split(".")))
        env = grader_env(BACKPROP_LAB_AUTOGRADER_ROOT=str(root))
        env.pop("BACKPROP_LAB_PYTHON")  # run_autograder picks source/venv/bin/python
        for name in ("submission", "results"):
            (root / name).mkdir()
        (root / "submission" / "mlp.py").write_text(mutant_sources("relu")["bias_not_summed"])
        proc = subprocess.run([str(root / "source" / "run_autograder")], cwd="/", capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        data = json.loads((root / "results" / "results.json").read_text())
        valid_results(data)
        assert 0 < data["score"] < data["max_score"] and "bias_not_summed" in data["extra_data"]["diagnoses"]
        assert data["output_format"] == "md" and "bias\\_not\\_summed" in data["output"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
