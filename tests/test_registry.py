"""The registry of checks (autograder/checks/registry.py): every list of check ids, labels, points and
zero results derives from it, so the grader, the batch runner and Gradescope agree on the maximum."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.checks import registry
from autograder.config import CHECK_IDS, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ext_config(tmp_path, monkeypatch):
    """A class with every extension enabled: 100 + 3 x 5 points."""
    text = (ROOT / "course.toml").read_text()
    for ext in registry.EXTENSION_IDS:
        text = text.replace(f"\n{ext} = false", f"\n{ext} = true")
    toml = tmp_path / "course.toml"
    toml.write_text(text)
    monkeypatch.setenv("BACKPROP_LAB_COURSE", str(toml))
    cfg = load_config(toml)
    assert registry.enabled_extensions(cfg) == list(registry.EXTENSION_IDS)
    return cfg


def test_ids_labels_and_points_come_from_the_registry():
    from autograder.checks import forward, gradients, minibatch, sgd_step, training
    from autograder.checks import extension_dropout, extension_early_stopping, extension_l2
    from autograder.grade import CHECK_LABELS
    from autograder.report.feedback import CHECK_TITLES
    assert CHECK_IDS == registry.CHECK_IDS == ("forward", "gradients", "minibatch", "sgd_step", "training")
    assert registry.EXTENSION_IDS == ("l2", "early_stopping", "dropout")
    declared = [forward, gradients, minibatch, sgd_step, training, extension_l2, extension_early_stopping,
                extension_dropout]
    assert [m.SPEC for m in declared] == list(registry.ALL)   # each check's module declares it, in order
    assert forward.LABELS == registry.LABELS["forward"] and minibatch.LABELS == registry.LABELS["minibatch"]
    assert sgd_step.LABELS == registry.LABELS["sgd_step"] and [training.LABEL] == registry.LABELS["training"]
    assert CHECK_LABELS == {c: registry.LABELS[c] for c in CHECK_IDS}
    assert CHECK_TITLES is registry.TITLES and set(CHECK_TITLES) == set(registry.BY_ID)
    cfg = load_config()
    assert cfg.rubric == {s.check_id: s.default_points for s in registry.CORE}
    assert registry.max_score(cfg) == cfg.max_score == 100
    for spec in registry.CORE + registry.EXTENSIONS:
        assert spec.labels and spec.title and spec.functions and spec.readme, spec.check_id
        module, _, fn = spec.runner.partition(":")
        assert callable(getattr(__import__(f"autograder.checks.{module}", fromlist=[fn]), fn)), spec.runner


def test_split_points_sum_to_the_total():
    for total in (0, 5, 10, 15, 20, 35, 7.5):
        for n in range(1, 6):
            assert round(sum(registry.split_points(total, ["x"] * n)), 4) == total


def test_every_zero_report_counts_the_enabled_extensions(ext_config, tmp_path):
    """An unreadable zip, a grader error in batch and a Gradescope failure are out of 115 like a graded
    submission in a class with three 5-point extensions (before issue 11 two of them said 100)."""
    from autograder.batch.commit import grader_error_report
    from autograder.grade import unreadable_report
    from autograder.release.gradescope_run import _failure
    assert registry.max_score(ext_config) == 115
    ids = lambda results: [r.check_id for r in results]  # noqa: E731
    want = list(CHECK_IDS) + ["l2", "early_stopping", "dropout"]
    for report in (unreadable_report(ext_config, "bad zip"), grader_error_report(ext_config, "boom")):
        assert report.max_score == 115 and dict.fromkeys(ids(report.results)) == dict.fromkeys(want)
        assert report.score == 0
    data = _failure("your submission could not be graded", "unusable_submission")
    assert data["max_score"] == 115 and data["score"] == 0
    assert [t["name"].split(":")[0] for t in data["tests"]][-2:] == ["dropout", "dropout"]
    json.dumps(data)


def test_gradescope_failure_survives_a_broken_config(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_COURSE", str(tmp_path / "missing.toml"))
    from autograder.release.gradescope_run import _failure
    data = _failure("broken", "grader_error")
    assert data["score"] == 0 and {t["name"].split(":")[0] for t in data["tests"]} == set(CHECK_IDS)


def test_no_other_module_lists_the_check_ids_or_labels():
    """Each check's labels are spelled once, in its own module's ``CheckSpec(...)``; no module spells out
    the five ids or a check's labels anywhere else."""
    spelled = []
    for path in (ROOT / "autograder").rglob("*.py"):
        if "sandbox" in path.parts or "worker" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declared = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == "CheckSpec" for arg in node.args}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in declared:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if set(CHECK_IDS) <= set(values) or "rows independent" in values or "penalty value" in values:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not spelled, spelled


def test_judges_are_standalone_and_shipped_verbatim():
    """autograder/judges.py imports numpy, the standard library and gradcheck only (no grader module, no
    reference), and the handout and the otter/nbgrader versions ship it unchanged."""
    import sys
    from autograder.paths import ASSIGNMENT_DIR, PACKAGE_DIR
    from autograder.release import shipped
    for module in ("judges.py", "extension_judges.py", "release/nbchecks.py"):
        tree = ast.parse((PACKAGE_DIR / module).read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        relative = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level for a in n.names}
        assert names - {"__future__", "numpy", "gradcheck", "bplab_judges", "bplab_extension_judges"} \
            <= set(sys.stdlib_module_names), names
        assert relative <= {"gradcheck", "judges", "extension_judges", "Verdict", "nbtraining"}, (module, relative)
    source = (PACKAGE_DIR / "judges.py").read_text(encoding="utf-8")
    shipped_copy = (ASSIGNMENT_DIR / "bplab_judges.py").read_text(encoding="utf-8")
    assert shipped_copy.endswith(source) and shipped_copy.count("\n") == source.count("\n") + 1
    assert shipped.FILES["bplab_judges.py"].read_text(encoding="utf-8") == source
    assert set(shipped.FILES) == {"bplab_checks.py", "bplab_judges.py", "bplab_extension_judges.py", "bplab_training.py",
                                  "gradcheck.py"}


def test_public_cases_hold_public_cases_only():
    """public_cases.json: the public toy and the public sgd calls, nothing of a hidden case."""
    from autograder.checks.judge_data import public_data
    from autograder.reference import load_reference
    from autograder.release.expected import build_tests
    cfg = load_config()
    public = public_data(load_reference(cfg.activation), cfg)
    assert {k.split(".")[0] for k in public} == {"toy", "sgd"}
    hidden = {v.tobytes() for t in build_tests(cfg) if t.hidden for v in t.data.values()
              if v.dtype.kind == "f" and v.size > 8 and not np.all(v == v.flat[0])}
    public_bytes = {v.tobytes() for v in public.values()}
    hidden_only = hidden - {v.tobytes() for t in build_tests(cfg) if not t.hidden for v in t.data.values()}
    assert not (hidden_only & public_bytes)


def test_a_check_module_imports_neither_config_nor_the_worker_nor_the_registry_at_run_time():
    """The registry imports every module of autograder/checks to collect their SPECs, and config imports
    the registry: so no module there may import config, the worker or the registry when it runs (type
    hints under ``if TYPE_CHECKING`` are fine), or importing config would be circular."""
    import grimp
    graph = grimp.build_graph("autograder", exclude_type_checking_imports=True, cache_dir=None)
    checks = sorted(m for m in graph.modules if m.startswith("autograder.checks.") and m != "autograder.checks.registry")
    assert "autograder.checks.forward" in checks
    for module in checks:
        for forbidden in ("autograder.config", "autograder.worker.session", "autograder.checks.registry"):
            chain = graph.find_shortest_chain(importer=module, imported=forbidden)
            assert chain is None, f"{module} imports {forbidden} at run time: {' -> '.join(chain)}"


def test_a_new_check_is_one_file(tmp_path, monkeypatch):
    """Adding a check is one module with its SPEC and runner: the registry finds it with nothing else
    edited, in the order its SPEC asks for, and refuses a duplicate id or a runner in another module."""
    import shutil
    from autograder.checks import spec as spec_module
    package = tmp_path / "autograder"
    shutil.copytree(Path(registry.__file__).parents[1], package,
                    ignore=shutil.ignore_patterns("__pycache__", "solutions", "*.pyc"))
    (package / "checks" / "shapes.py").write_text(
        "from .spec import CheckSpec\n"
        "SPEC = CheckSpec('shapes', 'Shapes', ('every output has its shape',), 5, 'shapes:run', ('forward',), order=35)\n"
        "def run(ctx):\n    return SPEC.zero(ctx.config, 'not written yet')\n")
    script = ("import autograder.checks.registry as r, autograder.config as c\n"
              "print([s.check_id for s in r.CORE]); print(c.CourseConfig().rubric['shapes'])")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["['forward', 'gradients', 'minibatch', 'shapes', 'sgd_step', 'training']",
                                          "5"]
    (package / "checks" / "shapes.py").write_text(
        "from .spec import CheckSpec\nSPEC = CheckSpec('forward', 'x', ('y',), 5, 'shapes:run')\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0 and "declared twice" in out.stderr
    assert spec_module.CheckSpec is registry.CheckSpec
