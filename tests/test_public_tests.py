"""The public self-tests (assignment/test_mlp.py) judged as students meet them.

They run in a subprocess, exactly as `python -m pytest` would, against the bare skeleton (all fail,
each saying "not implemented yet"), the reference for every activation (all pass) and known-bug
variants of the reference (each caught, with a message that names the bug).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.config import ACTIVATIONS
from autograder.paths import ASSIGNMENT_DIR, SOLUTIONS_DIR

# xdist: every test of this module runs on one worker, so the `runs` module fixture (every public-test run)
# is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("public_tests")

PUBLIC_TESTS = ASSIGNMENT_DIR / "test_mlp.py"
#: The public tests need no plugin; the ones installed here for this suite (xdist, hypothesis, otter's,
#: nbgrader's ...) would triple each run's start-up (about 3 s of 4 on 2 cores) and judge nothing.
NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _load_variants():
    path = Path(__file__).resolve().parent / "buggy_variants" / "__init__.py"
    spec = importlib.util.spec_from_file_location("buggy_variants", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("buggy_variants", module)
    spec.loader.exec_module(sys.modules["buggy_variants"])
    return sys.modules["buggy_variants"]


bv = _load_variants()


@dataclass
class Run:
    """One run of the public tests: outcome and message per test, and the full console output."""

    outcomes: dict[str, str]
    messages: dict[str, str]
    output: str

    def failed(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome != "passed"]


def run_public_tests(mlp_path: Path, workdir: Path) -> Run:
    """``python -m pytest assignment/test_mlp.py`` with MLP_PATH=mlp_path, parsed from JUnit XML."""
    report = workdir / f"{mlp_path.stem}.xml"
    env = dict(os.environ, MLP_PATH=str(mlp_path), PYTHONDONTWRITEBYTECODE="1", **NO_PLUGINS)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(PUBLIC_TESTS), "-p", "no:cacheprovider",
                           f"--junitxml={report}", "-o", "junit_family=xunit2"],
                          env=env, capture_output=True, text=True, timeout=300)
    outcomes, messages = {}, {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name")
        problem = next((case.find(tag) for tag in ("failure", "error") if case.find(tag) is not None), None)
        outcomes[name] = "passed" if problem is None else problem.tag
        messages[name] = "" if problem is None else (problem.get("message") or "")
    return Run(outcomes, messages, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Every run this module judges, done in parallel: skeleton, references, variants."""
    work = tmp_path_factory.mktemp("public")
    reference = (SOLUTIONS_DIR / "mlp.py").read_text()
    targets = {"skeleton": ASSIGNMENT_DIR / "mlp.py"}
    for activation in ACTIVATIONS:
        path = work / f"reference_{activation}.py"
        path.write_text(bv.with_activation(reference, activation))
        targets[f"reference_{activation}"] = path
    for variant in bv.VARIANTS:
        path = work / f"variant_{variant.name}.py"
        path.write_text(bv.make_variant(reference, variant))
        targets[variant.name] = path
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run_public_tests, path, work) for name, path in targets.items()}
        return {name: future.result() for name, future in futures.items()}


def test_skeleton_fails_every_public_test_saying_not_implemented_yet(runs):
    run = runs["skeleton"]
    assert len(run.outcomes) >= 12, run.output
    assert run.failed() == list(run.outcomes), f"these passed on the bare skeleton: " \
        f"{sorted(set(run.outcomes) - set(run.failed()))}"
    for name, message in run.messages.items():
        assert "is not implemented yet: " in message, f"{name}: {message!r}"
        assert "replace the `raise NotImplementedError`" in message, f"{name}: {message!r}"
    assert "During handling" not in run.output  # the student sees our message, not a chained traceback


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_passes_every_public_test(runs, activation):
    run = runs[f"reference_{activation}"]
    assert run.outcomes and not run.failed(), run.output
    assert len(run.outcomes) == len(runs["skeleton"].outcomes)


def test_there_are_at_least_six_variants_and_each_applies():
    assert len(bv.VARIANTS) >= 6
    reference = (SOLUTIONS_DIR / "mlp.py").read_text()
    for variant in bv.VARIANTS:
        assert bv.make_variant(reference, variant) != bv.with_activation(reference, variant.activation)
    with pytest.raises(AssertionError, match="occurs 0 times"):
        bv.make_variant(reference, bv.Variant("ghost", "no such text", "x", ()))


@pytest.mark.parametrize("variant", bv.VARIANTS, ids=lambda v: v.name)
def test_buggy_variant_is_caught_with_a_message_naming_the_bug(runs, variant):
    run = runs[variant.name]
    assert run.failed(), f"{variant.name} passed every public test:\n{run.output}"
    messages = "\n".join(run.messages[name] for name in run.failed()).lower()
    missing = [word for word in variant.expect if word.lower() not in messages]
    assert not missing, f"{variant.name}: failure messages lack {missing}:\n{messages}"
    assert "not implemented yet" not in messages
