"""Agreement by construction, proven (issue 11): for every zoo entry that is our own code (correct work
and bugs; hostile entries never run in this process) and every mutant of autograder/mutants.py,

* the public self-tests (the handout's selftest_helpers.py, run in-process as a student's pytest would)
  and the grader (autograder/checks/public.py: the sandboxed worker, the boundary, the same judges)
  give the same pass/fail and the same diagnosis ids on the same public case, and
* the otter/nbgrader checks (bplab_checks on the release's hidden expected values) give the same score
  per check as the grader on the hidden cases (training aside: another test trains).

Fast: synthetic cases only, no training, no otter/nbgrader tools.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import verdict_cache
from autograder import gradcheck, judges
from autograder.checks import public
from autograder.checks.common import Context
from autograder.handout.writer import render_assignment
from autograder.mutants import MUTANTS, mutant_sources
from autograder.reference import load_reference
from autograder.release.expected import build_tests
from autograder.release.gate import _agreement
from autograder.worker.session import WorkerSession
from zoo import ZOO
from zoo.support import environment

#: subjects whose otter/nbgrader run cannot mirror the sandbox, and why (they are graded, not compared)
NOT_COMPARABLE = {
    "syntax_error": "the otter/nbgrader notebook does not run at all: every cell fails, nothing to compare",
    "imports_matplotlib": "the grader's sandbox offers numpy only; an otter/nbgrader kernel has what its image has",
}
#: stateful sgd_step: otter/nbgrader run the public sgd self-check (3 calls) before the hidden sgd tests in
#: the same kernel, the grader's worker calls sgd_step first in its sgd check: the hidden sequence then
#: starts with state, its first call is wrong too, and "gradients left unchanged" is not credited there
ORDER_DEPENDENT = {"momentum_sgd": "sgd_step 0≠5", "step_counter_sgd": "sgd_step 0≠5"}
#: subjects the public self-tests judge in the student's own Python, where the grader's sandbox differs
PUBLIC_ELSEWHERE = {
    "imports_matplotlib": "matplotlib imports in the student's Python: test_mlp_imports_only_what_the_grader_offers "
                          "fails instead, saying the grader does not offer it",
}
SUBJECTS = [(e.name, e.activation, e.build(None)) for e in ZOO if e.kind in ("correct", "bug")]
SUBJECTS += [(f"mutant {m.mutant_id}", "relu" if "relu" in m.activations else m.activations[0],
              mutant_sources("relu" if "relu" in m.activations else m.activations[0])[m.mutant_id]) for m in MUTANTS]
IDS = [name for name, _, _ in SUBJECTS]


@pytest.fixture(scope="module", autouse=True)
def shipped_modules():
    """``import gradcheck`` / ``import bplab_judges`` work as next to a handout or an otter notebook (the
    shipped files are verbatim copies of these modules)."""
    saved = {name: sys.modules.get(name) for name in ("bplab_judges", "gradcheck")}
    sys.modules["bplab_judges"], sys.modules["gradcheck"] = judges, gradcheck
    yield
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.fixture(scope="module")
def handouts(tmp_path_factory) -> dict[str, object]:
    """The public self-tests' helpers of each activation's handout, imported like a student's pytest does."""
    out = {}
    for activation in {a for _, a, _ in SUBJECTS}:
        folder = tmp_path_factory.mktemp(f"handout_{activation}")
        for name, text in render_assignment(environment(None, activation).config).items():
            (folder / name).write_text(text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"selftest_helpers_{activation}", folder / "selftest_helpers.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out[activation] = module
    return out


def _student_module(source: str, folder: Path):
    path = folder / "mlp.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"agreement_mlp_{abs(hash(source))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own code: zoo entries of kind correct/bug and mutants
    return module


def public_outcomes(helpers, source: str) -> dict[str, tuple[bool, tuple[str, ...] | None]]:
    """(passed, diagnosis ids) per public verdict of the self-tests; ids None where a self-test failed on
    the shape or type of a result before reaching the judge (its sentence names the problem)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            mlp = _student_module(source, Path(tmp))
        except Exception:  # noqa: BLE001 - an mlp.py that does not import fails every self-test
            return {}
        verdicts = {"forward": lambda: helpers.forward_verdict(mlp)[0], "rows": lambda: helpers.rows_verdict(mlp)[0],
                    "batch_mean": lambda: helpers.batch_mean_verdict(mlp),
                    **{f"gradients:{k}": (lambda k=k: helpers.gradient_verdict(mlp, k)[0]) for k in "WbVc"},
                    "sgd": lambda: helpers.sgd_verdict(mlp)[0]}
        out = {}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for name, verdict in verdicts.items():
                try:
                    v = verdict()
                    out[name] = (v.passed, tuple(sorted(v.diagnoses)))
                except pytest.fail.Exception:
                    out[name] = (False, None)
        return out


def grader_outcomes(env, source: str) -> dict[str, tuple[bool, tuple[str, ...]]]:
    config = env.config
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mlp.py"
        src.write_text(source, encoding="utf-8")
        with WorkerSession(src, env.iso, config.activation, config.sandbox) as session:
            if not session.ensure_started().ok:
                return {}
            found = public.verdicts(Context(config, load_reference(config.activation), session))
    return {k: (passed, tuple(sorted(tags))) for k, (passed, tags) in found.items()}


@pytest.mark.parametrize("name, activation, source", [s for s in SUBJECTS if s[0] not in PUBLIC_ELSEWHERE],
                         ids=[i for i in IDS if i not in PUBLIC_ELSEWHERE])
def test_public_self_tests_and_grader_agree_on_the_public_cases(name, activation, source, handouts):
    ours = public_outcomes(handouts[activation], source)
    theirs = grader_outcomes(environment(None, activation), source)
    if not ours or not theirs:  # it does not import: every self-test and every grader test fails
        assert not ours and not theirs, (name, ours, theirs)
        return
    differ = {}
    for key, (passed, tags) in theirs.items():
        mine, my_tags = ours[key]
        if mine != passed or (not passed and my_tags is not None and set(my_tags) != set(tags)):
            differ[key] = {"self-tests": ours[key], "grader": theirs[key]}
    assert not differ, f"{name}: the public self-tests and the grader disagree on the public cases: {differ}"


@pytest.fixture(scope="module")
def release_tests() -> dict[str, list]:
    return {a: build_tests(environment(None, a).config) for a in {a for _, a, _ in SUBJECTS}}


@pytest.mark.parametrize("name, activation, source", [s for s in SUBJECTS if s[0] not in NOT_COMPARABLE],
                         ids=[i for i in IDS if i not in NOT_COMPARABLE])
def test_otter_nbgrader_checks_and_grader_agree_on_the_hidden_cases(name, activation, source, release_tests,
                                                                   prepared_env):
    # a mutant under the course's own config, as the release gate and test_mutants grade it; a zoo entry
    # as the zoo grades it: both graded once per session (tests/verdict_cache.py)
    env = prepared_env(activation) if name.startswith("mutant ") else environment(None, activation)
    report = verdict_cache.graded(source, env)
    ok, text = _agreement(report, release_tests[activation], source, name.replace(" ", "_"), include_training=False)
    if name in ORDER_DEPENDENT:  # still exactly the known difference (remove the entry once it is gone)
        assert not ok and text == f"differ: {ORDER_DEPENDENT[name]}", f"{name}: {text}"
        return
    assert ok, f"{name}: {text}"


def test_the_exceptions_are_real_subjects():
    assert set(NOT_COMPARABLE) | set(PUBLIC_ELSEWHERE) | set(ORDER_DEPENDENT) <= set(IDS)
    assert len(SUBJECTS) >= 60 and len({m.mutant_id for m in MUTANTS}) == len(MUTANTS)


def test_a_sum_instead_of_mean_bug_is_charged_once_in_minibatch():
    """The batch-size judge credits gradients that are exactly N (or 1/N) times the truth for every key,
    naming the bug and the test that charges it; any other wrong gradient still fails it."""
    from autograder import judges
    rng = np.random.default_rng(5)
    truth = {k: rng.standard_normal(shape) for k, shape in (("W", (3, 4)), ("b", (3,)), ("V", (2, 3)), ("c", (2,)))}
    t32 = {k: v.astype(np.float32) for k, v in truth.items()}
    summed = judges.batch_size({k: 7 * v for k, v in truth.items()}, truth, t32, 7)
    twice = judges.batch_size({k: v / 7 for k, v in truth.items()}, truth, t32, 7)
    assert summed.passed and summed.diagnoses == ("explained_by_other_check",) and "SUM" in summed.message
    assert twice.passed and "twice" in twice.message
    partly = judges.batch_size({**{k: 7 * v for k, v in truth.items()}, "c": truth["c"]}, truth, t32, 7)
    flipped = judges.batch_size({k: -v for k, v in truth.items()}, truth, t32, 7)
    single = judges.batch_size({k: 2 * v for k, v in truth.items()}, truth, t32, 1)
    assert not partly.passed and not flipped.passed and not single.passed
    assert judges.batch_size(truth, truth, t32, 7).passed
