"""The public self-tests (assignment/test_mlp.py) judged as students meet them.

They run in a subprocess, exactly as `python -m pytest` would, against the bare skeleton (all fail,
each saying "not implemented yet"), the reference for every activation (all pass) and known-bug
mutants of the reference (autograder/mutants.py, the one catalogue: each one with ``public_words`` is
caught, with a message that names the bug).
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.config import ACTIVATIONS, load_config
from autograder.handout.writer import render_assignment
from autograder.mutants import MUTANTS, mutant_sources
from autograder.paths import ASSIGNMENT_DIR
from autograder.reference import reference_source

# xdist: every test of this module runs on one worker, so the `runs` module fixture (every public-test run)
# is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("public_tests")

PUBLIC_TESTS = ASSIGNMENT_DIR / "test_mlp.py"
#: The public tests need no plugin; the ones installed here for this suite (xdist, hypothesis, otter's,
#: nbgrader's ...) would triple each run's start-up (about 3 s of 4 on 2 cores) and judge nothing.
NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@dataclass
class Run:
    """One run of the public tests: outcome and message per test, and the full console output."""

    outcomes: dict[str, str]
    messages: dict[str, str]
    output: str

    def failed(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome != "passed"]


def run_public_tests(mlp_path: Path, workdir: Path, tests: Path = PUBLIC_TESTS) -> Run:
    """``python -m pytest assignment/test_mlp.py`` with MLP_PATH=mlp_path, parsed from JUnit XML."""
    report = workdir / f"{mlp_path.stem}.xml"
    env = dict(os.environ, MLP_PATH=str(mlp_path), PYTHONDONTWRITEBYTECODE="1", **NO_PLUGINS)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tests), "-p", "no:cacheprovider",
                           f"--junitxml={report}", "-o", "junit_family=xunit2"],
                          env=env, capture_output=True, text=True, timeout=300)
    outcomes, messages = {}, {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name")
        problem = next((case.find(tag) for tag in ("failure", "error") if case.find(tag) is not None), None)
        outcomes[name] = "passed" if problem is None else problem.tag
        messages[name] = "" if problem is None else (problem.get("message") or "")
    return Run(outcomes, messages, proc.stdout + proc.stderr)


#: each mutant the public self-tests must name, in one year it applies to (relu where it applies to all)
PUBLIC = [("relu" if "relu" in m.activations else m.activations[0], m) for m in MUTANTS if m.public_words]


YEAR_ACTIVATION = load_config().activation  # the committed assignment/ is this year's


def handouts(work: Path) -> dict[str, Path]:
    """The public tests of a handout per activation: assignment/ for this year's, rendered copies else
    (the public cases' expected values are the year's activation's)."""
    out = {YEAR_ACTIVATION: PUBLIC_TESTS}
    for activation in ACTIVATIONS:
        if activation != YEAR_ACTIVATION:
            folder = work / f"handout_{activation}"
            folder.mkdir()
            for name, text in render_assignment(load_config().with_activation(activation)).items():
                (folder / name).write_text(text, encoding="utf-8")
            out[activation] = folder / "test_mlp.py"
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Every run this module judges, done in parallel: skeleton, references (each in its own year's
    handout, and one in another year's), mutants."""
    work = tmp_path_factory.mktemp("public")
    tests = handouts(work)
    targets = {"skeleton": (ASSIGNMENT_DIR / "mlp.py", PUBLIC_TESTS)}
    for activation in ACTIVATIONS:
        path = work / f"reference_{activation}.py"
        path.write_text(reference_source(activation))
        targets[f"reference_{activation}"] = (path, tests[activation])
    other = next(a for a in ACTIVATIONS if a != YEAR_ACTIVATION)
    targets["other_year"] = (work / f"reference_{other}.py", PUBLIC_TESTS)
    for activation, m in PUBLIC:
        path = work / f"mutant_{activation}_{m.mutant_id}.py"
        path.write_text(mutant_sources(activation)[m.mutant_id])
        targets[f"{activation}/{m.mutant_id}"] = (path, tests[activation])
    reports = {name: work / "reports" / name.replace("/", "_") for name in targets}  # one folder per run
    for folder in reports.values():
        folder.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run_public_tests, path, reports[name], test_file)
                   for name, (path, test_file) in targets.items()}
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


def test_another_years_activation_fails_naming_it(runs):
    """tanh in a relu year (say) passed every public test before issue 11 and lost 75 grader points."""
    run = runs["other_year"]
    assert "test_forward_matches_the_reference_on_the_public_toy" in run.failed(), run.output
    message = run.messages["test_forward_matches_the_reference_on_the_public_toy"]
    assert f"this year's activation is {YEAR_ACTIVATION}" in message, message


@pytest.mark.parametrize("activation, m", PUBLIC, ids=[f"{a}-{m.mutant_id}" for a, m in PUBLIC])
def test_mutant_is_caught_with_a_message_naming_the_bug(runs, activation, m):
    run = runs[f"{activation}/{m.mutant_id}"]
    assert run.failed(), f"{m.mutant_id} ({activation}) passed every public test:\n{run.output}"
    messages = "\n".join(run.messages[name] for name in run.failed()).lower()
    missing = [word for word in m.public_words if word.lower() not in messages]
    assert not missing, f"{m.mutant_id} ({activation}): failure messages lack {missing}:\n{messages}"
    assert "not implemented yet" not in messages


def test_the_catalogue_is_one():
    """tests/buggy_variants, the public tests' own copy of the bugs, is gone (issue 11)."""
    from pathlib import Path
    assert not (Path(__file__).resolve().parent / "buggy_variants").exists()
    assert len({m.mutant_id for m in MUTANTS}) == len(MUTANTS)
