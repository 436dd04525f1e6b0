"""The optional extensions: config switches, grader checks on the reference and on known bugs, handout stubs
and public self-tests.

The checks run against a real worker (isolation level "rlimits", this interpreter), exactly the protocol
grading uses; known-bug variants are the reference with one line changed.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.checks import registry as ext
from autograder.checks.common import Context
from autograder.config import CourseConfig, load_config
from autograder.errors import ConfigError
from autograder.handout import extensions as ext_handout
from autograder.paths import PACKAGE_DIR, SOLUTIONS_DIR
from autograder.reference import load_reference
from autograder.sandbox.level import Isolation
from autograder.worker.session import WorkerSession

EXT_SOURCE = (SOLUTIONS_DIR / "extensions.py").read_text()
ALL_ON = {"l2": True, "early_stopping": True, "dropout": True}


def config(**flags) -> CourseConfig:
    return dataclasses.replace(CourseConfig(), extensions={**CourseConfig().extensions, **flags})


def reference_with(ext_source: str, activation: str = "relu") -> str:
    base = ext_handout.reference_source_with_extensions(activation)
    return base.replace(EXT_SOURCE.rstrip("\n"), ext_source.rstrip("\n")) if ext_source != EXT_SOURCE else base


def variant(old: str, new: str) -> str:
    assert EXT_SOURCE.count(old) == 1, old
    return EXT_SOURCE.replace(old, new)


def grade_extensions(tmp_path: Path, source: str, cfg: CourseConfig | None = None, only=None):
    cfg = cfg or config(**ALL_ON)
    path = tmp_path / "mlp.py"
    path.write_text(source)
    with WorkerSession(path, Isolation("rlimits", sys.executable), cfg.activation) as session:
        ctx = Context(cfg, load_reference(cfg.activation), session)
        return {r.name: r for r in ext.run_extensions(ctx, only=only)}


# ---------------------------------------------------------------------------------------------
# course.toml

def test_extensions_are_off_by_default_and_config_reads_them(tmp_path):
    cfg = load_config()
    assert cfg.extensions == {"l2": False, "early_stopping": False, "dropout": False}
    assert cfg.extension_points == {"l2": 5.0, "early_stopping": 5.0, "dropout": 5.0}
    assert ext.enabled_extensions(cfg) == []
    toml = tmp_path / "course.toml"
    toml.write_text('[course]\nyear = 2026\n[extensions]\ndropout = true\n[extension_points]\ndropout = 7\n')
    cfg = load_config(toml)
    assert ext.enabled_extensions(cfg) == ["dropout"]
    assert cfg.extension_points["dropout"] == 7.0 and cfg.extension_points["l2"] == 5.0
    toml.write_text('[extensions]\nbatchnorm = true\n')
    with pytest.raises(ConfigError, match="batchnorm"):
        load_config(toml)
    toml.write_text('[extensions]\nl2 = "yes"\n')
    with pytest.raises(ConfigError, match="true or false"):
        load_config(toml)


def test_no_extension_results_unless_enabled(tmp_path):
    results = grade_extensions(tmp_path, reference_with(EXT_SOURCE), cfg=config())
    assert results == {}
    results = grade_extensions(tmp_path, reference_with(EXT_SOURCE), cfg=config(l2=True))
    assert {r.split(":")[0] for r in results} == {"l2"}


# ---------------------------------------------------------------------------------------------
# the grader's checks

def test_reference_extensions_get_full_marks(tmp_path):
    results = grade_extensions(tmp_path, reference_with(EXT_SOURCE))
    assert len(results) == 6
    for r in results.values():
        assert r.passed, (r.name, r.message)
    assert sum(r.max_score for r in results.values()) == pytest.approx(15.0)


def test_reference_extensions_pass_for_every_activation(tmp_path):
    for activation in ("sigmoid", "tanh"):
        cfg = dataclasses.replace(config(**ALL_ON), activation=activation)
        results = grade_extensions(tmp_path, reference_with(EXT_SOURCE, activation), cfg=cfg, only=["l2"])
        assert all(r.passed for r in results.values()), [r.message for r in results.values()]


BUGS = [
    # (name, old, new, failing test, diagnosis tag, words the message must contain)
    ("dropout not rescaled", "return h * mask / (1.0 - rate), mask", "return h * mask, mask",
     "dropout: expected value of the hidden layer", "dropout_not_rescaled", "not rescaled by 1/(1-rate)"),
    ("dropout backward not rescaled", "return dh_dropped * mask / (1.0 - rate)", "return dh_dropped * mask",
     "dropout: gradient with a fixed mask", "dropout_not_rescaled", "not rescaled by 1/(1-rate)"),
    ("dropout rate used as keep probability", "(rng.random(h.shape) >= rate)", "(rng.random(h.shape) < rate)",
     "dropout: expected value of the hidden layer", "dropout_rate_is_keep", "probability of DROPPING"),
    ("dropout ignores its rng", "mask = (rng.random(h.shape) >= rate)", "mask = (np.random.random(h.shape) >= rate)",
     "dropout: expected value of the hidden layer", "dropout_ignores_rng", "rng argument"),
    ("dropout mask inverted in backward", "return dh_dropped * mask / (1.0 - rate)",
     "return dh_dropped * (1 - mask) / (1.0 - rate)", "dropout: gradient with a fixed mask", "dropout_mask_inverted",
     "inverted"),
    ("L2 gradient missing the factor", "out[key] = grads[key] + weight_decay * params[key]",
     "out[key] = grads[key] + 0.5 * weight_decay * params[key]", "l2: gradient of the penalized loss",
     "l2_grad_factor", "missing its factor"),
    ("L2 gradient with factor 2", "out[key] = grads[key] + weight_decay * params[key]",
     "out[key] = grads[key] + 2 * weight_decay * params[key]", "l2: gradient of the penalized loss",
     "l2_grad_factor", "2 * weight_decay"),
    ("L2 gradient not added", "out[key] = grads[key] + weight_decay * params[key]", "out[key] = grads[key]",
     "l2: gradient of the penalized loss", "l2_grad_missing", "no penalty term"),
    ("L2 decays the biases", 'for key in ("W", "V"):\n        out[key]', 'for key in ("W", "b", "V", "c"):\n        out[key]',
     "l2: gradient of the penalized loss", "l2_penalizes_biases", "bias"),
    ("L2 penalty without the 1/2", "return 0.5 * weight_decay * float(", "return weight_decay * float(",
     "l2: penalty value", "l2_penalty_factor", "twice too large"),
    ("early stopping one epoch late", "elif epoch - best_epoch >= patience:", "elif epoch - best_epoch > patience:",
     "early_stopping: stop epoch on given validation curves", "early_stop_late", "one epoch too late"),
    ("early stopping one epoch early", "elif epoch - best_epoch >= patience:", "elif epoch - best_epoch >= patience - 1:",
     "early_stopping: stop epoch on given validation curves", "early_stop_early", "one epoch too early"),
    ("early stopping counts ties", "if float(valid_errors[epoch]) < best:", "if float(valid_errors[epoch]) <= best:",
     "early_stopping: best epoch on given validation curves", "early_stop_ties", "strictly lower"),
    ("early stopping 1-based", "            return epoch, best_epoch\n", "            return epoch + 1, best_epoch + 1\n",
     "early_stopping: stop epoch on given validation curves", "early_stop_one_based", "1-based"),
]


@pytest.mark.parametrize("name, old, new, test, tag, words", BUGS, ids=[b[0] for b in BUGS])
def test_known_bug_fails_with_a_message_naming_it(tmp_path, name, old, new, test, tag, words):
    if name == "early stopping 1-based":  # both returns shift
        new_source = variant(old, new).replace("    return len(valid_errors) - 1, best_epoch",
                                               "    return len(valid_errors), best_epoch + 1")
    else:
        new_source = variant(old, new)
    results = grade_extensions(tmp_path, reference_with(new_source))
    r = results[test]
    assert not r.passed, (name, r.message)
    assert tag in r.diagnoses, (name, r.diagnoses, r.message)
    assert words in r.message, (name, r.message)
    # the bug costs only the test it breaks (the other extensions keep their points)
    others = [x for x in results.values() if x.check_id != r.check_id]
    assert all(x.passed for x in others), [(x.name, x.message) for x in others if not x.passed]


def test_stubs_and_missing_functions_are_not_implemented(tmp_path):
    stubbed = ext_handout._stub_source(EXT_SOURCE, "solutions/extensions.py")
    results = grade_extensions(tmp_path, reference_with(stubbed))
    assert results and all(r.score == 0 and "not_implemented" in r.diagnoses for r in results.values())
    assert all("not implemented yet" in r.message for r in results.values())
    bare = ext_handout.reference_source_with_extensions("relu").replace(EXT_SOURCE.rstrip("\n"), "")
    results = grade_extensions(tmp_path, bare)
    assert all(r.score == 0 and "does not define" in r.message for r in results.values())


def test_hostile_return_values_are_refused(tmp_path):
    source = variant("    return h * mask / (1.0 - rate), mask", "    return 'h', None")
    source = source.replace("    return len(valid_errors) - 1, best_epoch", "    return 'last', None")
    results = grade_extensions(tmp_path, reference_with(source))
    assert not results["dropout: expected value of the hidden layer"].passed
    assert "must return the pair" in results["dropout: expected value of the hidden layer"].message


# ---------------------------------------------------------------------------------------------
# the handout: stubs appended to mlp.py, public self-tests

def test_handout_unchanged_when_no_extension_enabled():
    files = {"mlp.py": "x = 1\n"}
    assert ext_handout.add_extensions(config(), files) is files


def test_handout_adds_only_enabled_stubs_without_leaking():
    files = ext_handout.add_extensions(config(dropout=True), {"mlp.py": "import numpy as np\n"})
    mlp = files["mlp.py"]
    assert "def dropout_forward(h, rate, rng):" in mlp and "def dropout_backward(" in mlp
    assert "def l2_penalty" not in mlp and "def early_stopping" not in mlp
    assert "raise NotImplementedError(" in mlp and "rng.random(h.shape) >= rate" not in mlp
    assert "EXTENSIONS = {'l2': False, 'early_stopping': False, 'dropout': True}" in files["test_extensions.py"]
    compile(mlp, "mlp.py", "exec")


def _run_public_tests(tmp_path: Path, source: str, cfg: CourseConfig) -> subprocess.CompletedProcess:
    folder = tmp_path / "handout"
    folder.mkdir(parents=True)
    (folder / "mlp.py").write_text(source)
    (folder / "test_extensions.py").write_text(ext_handout.public_tests(cfg))
    shutil.copy(PACKAGE_DIR / "gradcheck.py", folder / "gradcheck.py")
    shutil.copy(PACKAGE_DIR / "judges.py", folder / "bplab_judges.py")  # the shipped judges (issue 11)
    shutil.copy(PACKAGE_DIR / "extension_judges.py", folder / "bplab_extension_judges.py")
    shutil.copy(PACKAGE_DIR / "handout" / "templates" / "public_conftest.py", folder / "conftest.py")
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -ra\n")
    env = {k: v for k, v in os.environ.items() if k != "MLP_PATH"} | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # start-up: see test_public_tests
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_extensions.py"],
                          cwd=folder, capture_output=True, text=True, timeout=120, env=env)


def test_public_tests_pass_on_the_reference_and_catch_a_bug(tmp_path):
    cfg = config(**ALL_ON)
    ok = _run_public_tests(tmp_path / "ok", reference_with(EXT_SOURCE), cfg)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "passed" in ok.stdout and "skipped" not in ok.stdout
    bug = reference_with(variant("return h * mask / (1.0 - rate), mask", "return h * mask, mask"))
    bad = _run_public_tests(tmp_path / "bad", bug, cfg)
    assert bad.returncode != 0
    assert "not rescaled by 1/(1-rate)" in bad.stdout  # the grader's own sentence


def test_public_tests_skip_disabled_and_report_stubs(tmp_path):
    cfg = config(early_stopping=True)
    files = ext_handout.add_extensions(cfg, {"mlp.py": ext_handout.reference_source_with_extensions("relu")
                                             .replace(EXT_SOURCE.rstrip("\n"), "")})
    run = _run_public_tests(tmp_path, files["mlp.py"], cfg)
    assert run.returncode != 0
    assert "early_stopping is not implemented yet" in run.stdout
    assert "skipped" in run.stdout
