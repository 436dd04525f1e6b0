"""The registry of checks (autograder/checks/registry.py): every list of check ids, labels, points and
zero results derives from it, so the grader, the batch runner and Gradescope agree on the maximum."""
from __future__ import annotations

import ast
import json
from pathlib import Path

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
    from autograder.checks import forward, minibatch, sgd_step
    from autograder.checks.extension_common import LABELS as EXT_LABELS
    from autograder.checks.training_rules import LABEL
    from autograder.grade import CHECK_LABELS
    from autograder.report.feedback import CHECK_TITLES
    assert CHECK_IDS == registry.CHECK_IDS == ("forward", "gradients", "minibatch", "sgd_step", "training")
    assert forward.LABELS is registry.LABELS["forward"] and minibatch.LABELS is registry.LABELS["minibatch"]
    assert sgd_step.LABELS is registry.LABELS["sgd_step"] and [LABEL] == registry.LABELS["training"]
    assert EXT_LABELS is registry.LABELS and CHECK_LABELS == {c: registry.LABELS[c] for c in CHECK_IDS}
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
    """The registry is the one place: no other module spells out the five ids or a check's labels."""
    spelled = []
    for path in (ROOT / "autograder").rglob("*.py"):
        if path.name == "registry.py" or "sandbox" in path.parts or "worker" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if set(CHECK_IDS) <= set(values) or "rows independent" in values or "penalty value" in values:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not spelled, spelled
