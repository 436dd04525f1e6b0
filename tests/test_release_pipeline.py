"""Release pipeline, yearly variation and the gate, without otter/nbgrader and without training."""
from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autograder.config import load_config
from autograder.paths import PROJECT_ROOT
from autograder.release import build, nbchecks
from autograder.release.expected import build_tests, by_check, load_expected, run_tests, save_expected
from autograder.release.gate import render_gate, run_gate
from autograder.release.yearly import (RELEASE_SECRET_ENV, bind_secret, course_toml, derive_release_secret,
                                       plan_release, shipped_config)
from autograder.reference import reference_source

pytestmark = pytest.mark.xdist_group("release_pipeline")  # its module fixtures: made once, on one worker

COURSE = (PROJECT_ROOT / "course.toml").read_text()


def course_file(tmp_path: Path, activation: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "course.toml"
    path.write_text(re.sub(r'(?m)^activation = ".*"$', f'activation = "{activation}"', COURSE))
    return path


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_SECRET", "a-test-course-secret-0451")
    monkeypatch.delenv(RELEASE_SECRET_ENV, raising=False)
    return "a-test-course-secret-0451"


def release_config(tmp_path: Path, year: int, activation_setting: str = "auto"):
    plan = plan_release(year, path=course_file(tmp_path, activation_setting))
    return plan, bind_secret(plan, tmp_path / f"secret-{year}")


# ---- the pipeline is data, and its order is asserted -------------------------------------------------
def test_steps_are_in_a_valid_order_and_nothing_writes_before_the_gate():
    build.check_order()
    names = [s.name for s in build.STEPS]
    assert names.index("gate") < names.index("refuse-on-miss") < names.index("stage")
    assert all(not s.writes for s in build.STEPS[:names.index("stage")])


def test_check_order_catches_a_misordered_pipeline():
    steps = list(build.STEPS)
    i, j = [s.name for s in steps].index("gate"), [s.name for s in steps].index("handout")
    steps[i], steps[j] = steps[j], steps[i]
    with pytest.raises(AssertionError, match="needs|writes before"):
        build.check_order(tuple(steps))
    early = build.Step("early-write", ("config",), ("x",), lambda b: None, True, "writes too early")
    with pytest.raises(AssertionError, match="writes before the gate"):
        build.check_order(build.STEPS[:1] + (early,) + build.STEPS[1:])
    with pytest.raises(AssertionError, match="needs"):
        build.check_order(tuple(s for s in build.STEPS if s.name != "nbgrader"))


def test_docs_list_the_steps_in_pipeline_order():
    text = (PROJECT_ROOT / "docs" / "release.md").read_text()
    section = text.split("## The pipeline", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"(?m)^\d+\. `([a-z-]+)`", section)
    assert documented == [s.name for s in build.STEPS]


# ---- which activation, which secret ----------------------------------------------------------------
def test_activation_rules(tmp_path, secret):
    fixed = plan_release(2027, path=course_file(tmp_path, "relu"))
    assert fixed.config.activation == "relu" and "fixes" in fixed.activation_reason
    assert plan_release(2028, path=course_file(tmp_path, "relu")).config.activation == "relu"
    auto = {y: plan_release(y, path=course_file(tmp_path, "auto")).config.activation for y in (2026, 2027, 2028)}
    assert sorted(auto.values()) == ["relu", "sigmoid", "tanh"]
    forced = plan_release(2027, "sigmoid", path=course_file(tmp_path, "auto"))
    assert forced.config.activation == "sigmoid" and forced.activation_reason == "--activation"
    with pytest.raises(Exception, match="four-digit"):
        plan_release(27, path=course_file(tmp_path, "auto"))


def test_release_secret_is_one_way_and_per_year(tmp_path, secret):
    plan = plan_release(2027, path=course_file(tmp_path, "auto"))
    assert not plan.dev_secret and plan.release_secret == derive_release_secret(secret, 2027)
    assert secret not in plan.release_secret
    assert derive_release_secret(secret, 2026) != plan.release_secret
    config = bind_secret(plan, tmp_path / "s")
    assert config.secret() == (plan.release_secret, False)
    assert oct((tmp_path / "s" / "release.secret").stat().st_mode & 0o777) == "0o600"


def test_development_secret_is_not_derived(tmp_path, monkeypatch):
    monkeypatch.delenv("BACKPROP_LAB_SECRET", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no secret file either
    plan = plan_release(2027, path=course_file(tmp_path, "auto"))
    assert plan.dev_secret and plan.release_secret is None
    assert bind_secret(plan, tmp_path / "s").secret()[1] is True


def test_shipped_course_toml_round_trips(tmp_path, secret, monkeypatch):
    plan, config = release_config(tmp_path, 2027)
    path = tmp_path / "shipped.toml"
    path.write_text(course_toml(plan))
    monkeypatch.setenv(RELEASE_SECRET_ENV, plan.release_secret)
    shipped = load_config(path)
    assert (shipped.year, shipped.activation, shipped.rubric) == (2027, config.activation, config.rubric)
    assert (shipped.training, shipped.bounds) == (config.training, config.bounds)
    assert shipped == shipped_config(plan)  # every field, extensions and sandbox included
    assert shipped.seed("forward") == config.seed("forward")  # same hidden cases as the gate


def test_shipped_course_toml_keeps_extensions_and_sandbox(tmp_path, secret, monkeypatch):
    """The hand-written writer dropped [extensions]; the tomli-w one writes every section."""
    path = course_file(tmp_path, "auto")
    path.write_text(path.read_text().replace("l2 = false", "l2 = true").replace("memory_mib = 2048", "memory_mib = 1536")
                    .replace("[extension_points]\nl2 = 5", "[extension_points]\nl2 = 8"))
    plan = plan_release(2027, path=path)
    (tmp_path / "shipped.toml").write_text(course_toml(plan))
    monkeypatch.setenv(RELEASE_SECRET_ENV, plan.release_secret)
    shipped = load_config(tmp_path / "shipped.toml")
    assert shipped.extensions["l2"] is True and shipped.extension_points["l2"] == 8.0
    assert shipped.sandbox.memory_mib == 1536
    assert shipped == shipped_config(plan)


# ---- yearly variation --------------------------------------------------------------------------------
def _hidden_inputs(tests):
    return {t.test_id: t.data for t in tests if t.hidden}


def test_a_new_year_changes_the_hidden_cases(tmp_path, secret):
    _, c26 = release_config(tmp_path, 2026)
    _, c27 = release_config(tmp_path, 2027)
    t26, t27 = _hidden_inputs(build_tests(c26)), _hidden_inputs(build_tests(c27))
    assert t26.keys() == t27.keys()

    def same(a, b):
        return a.shape == b.shape and np.allclose(a, b)

    for test_id in t26:  # every hidden test has new inputs (some also keep the public toy case)
        old, new = t26[test_id], t27[test_id]
        assert old.keys() != new.keys() or not all(same(old[k], new[k]) for k in old), test_id
    # the same year twice gives the same cases (expected values are reproducible)
    again = _hidden_inputs(build_tests(release_config(tmp_path / "again", 2027)[1]))
    assert all(np.array_equal(again[t][k], t27[t][k]) for t in t27 for k in t27[t])


def test_expected_npz_is_plain_arrays(tmp_path, secret):
    _, config = release_config(tmp_path, 2027)
    tests = build_tests(config)
    save_expected(tmp_path / "expected.npz", tests, config)
    data = load_expected(tmp_path / "expected.npz")
    assert int(data["meta/year"]) == 2027 and str(data["meta/activation"]) == config.activation
    assert all(v.dtype != object for v in data.values())
    first = tests[1]
    assert all(np.array_equal(data[f"{first.test_id}/{k}"], v) for k, v in first.data.items())
    assert sum(t.points for t in tests) == pytest.approx(config.max_score)


def _memoriser(old_tests) -> str:
    """An mlp.py that returns last year's expected probs for last year's inputs, and uniform otherwise."""
    table = [(t.data[f"{p}.X"].tolist(), t.data[f"{p}.probs"].tolist()) for t in old_tests
             if t.function == "forward_matches" for p in sorted({k.split(".")[0] for k in t.data})]
    return reference_source("relu") + f"""

_MEMO = {table!r}
_honest_forward = forward


def forward(params, X):
    for inputs, probs in _MEMO:
        if np.shape(inputs) == X.shape and np.allclose(inputs, X):
            return np.array(probs), None
    n_out = params["V"].shape[0]
    return np.full((X.shape[0], n_out), 1.0 / n_out), None
"""


def _grade(config, source):
    from autograder.grade import grade_source, prepare
    return grade_source(source, prepare(config, with_training=False))


def test_last_years_answers_do_not_pass_this_year(tmp_path, secret):
    """A submission tuned to 2026 (memorised outputs; 2026's activation hard-coded) fails 2027's cases."""
    _, c26 = release_config(tmp_path, 2026)
    _, c27 = release_config(tmp_path, 2027)
    assert c26.activation != c27.activation
    memo = _memoriser(build_tests(c26))
    hidden = "forward: hidden cases (incl. N=1)"
    last_year = {r.name: r for r in _grade(c26, memo).results}
    this_year = {r.name: r for r in _grade(c27, memo).results}
    assert last_year[hidden].passed and not this_year[hidden].passed
    hard_coded = reference_source(c26.activation).replace("if ACTIVATION ==", f'if "{c26.activation}" ==')
    report = _grade(c27, hard_coded)
    assert report.by_check()["forward"] < c27.rubric["forward"] and "wrong_activation" in report.diagnoses()
    assert _grade(c26, hard_coded).by_check()["forward"] == c26.rubric["forward"]


# ---- the pure-numpy checks shipped to otter/nbgrader ---------------------------------------------------
def test_shipped_checks_module_imports_only_numpy_and_the_standard_library():
    """bplab_checks, the judges and bplab_training shipped with it: numpy, the standard library and each
    other (issues 11 and 13); threadpoolctl is optional (one BLAS thread where it is installed)."""
    from autograder.release import shipped
    for path in shipped.FILES.values():
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.level == 0}
        relative = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
                    for alias in node.names}
        assert imported <= {"__future__", "base64", "io", "os", "numpy", "typing", "dataclasses", "functools",
                            "gradcheck", "bplab_judges", "bplab_extension_judges", "importlib", "sys",
                            "contextlib", "math", "time", "threadpoolctl"}, (path.name, imported)
        assert relative <= {"gradcheck", "judges", "extension_judges", "Verdict", "nbtraining"}, (path.name, relative)
        text = path.read_text()
        assert "solutions" not in text and "_activate" not in text


def test_pack_never_needs_pickle():
    packed = nbchecks.pack({"a": np.arange(3.0), "s": np.asarray(0.5)})
    assert nbchecks.unpack(packed)["a"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError):
        nbchecks.unpack(nbchecks.pack({"o": np.array([{"x": 1}], dtype=object)}))


# ---- the gate ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gate_2027(tmp_path_factory):
    from autograder.handout.writer import render_assignment
    tmp = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", "a-test-course-secret-0451")
        plan, config = release_config(tmp, 2027)
        skeleton = render_assignment(config)["mlp.py"]
        return config, skeleton, run_gate(config, skeleton, with_training=False)


def test_gate_passes_without_training_and_every_grader_agrees(gate_2027):
    from autograder.mutants import for_activation
    config, _, gate = gate_2027
    assert gate.passed, [r.to_dict() for r in gate.misses]
    subjects = [r.subject for r in gate.rows]
    assert subjects[:2] == ["reference", "skeleton"]
    assert subjects[2:] == [f"mutant {m.mutant_id}" for m in for_activation(config.activation)]
    assert all(r.other_graders.startswith("agree") for r in gate.rows)


def test_gate_reports_a_mutant_with_the_wrong_expectation(gate_2027, monkeypatch, capsys):
    from autograder import mutants
    from rich.console import Console
    config, skeleton, _ = gate_2027
    wrong = replace(mutants.mutant("sgd_ascends"), mutant_id="sgd_ascends_mislabelled", expected_check="forward",
                    expected_diagnosis="softmax_overflow")
    monkeypatch.setattr(mutants, "MUTANTS", [mutants.mutant("naive_softmax"), wrong])
    gate = run_gate(config, skeleton, with_training=False)
    assert not gate.passed and [r.subject for r in gate.misses] == ["mutant sgd_ascends_mislabelled"]
    render_gate(gate, Console(width=200, force_terminal=False))
    out = capsys.readouterr().out
    assert "FAILED (1 miss(es))" in out and "[softmax_overflow]" in out and "forward full marks" in out


def test_gate_fails_when_the_skeleton_scores(gate_2027, monkeypatch):
    from autograder import mutants
    monkeypatch.setattr(mutants, "MUTANTS", [])
    config, _, _ = gate_2027
    gate = run_gate(config, reference_source(config.activation), with_training=False)
    assert not gate.passed and "skeleton" in [r.subject for r in gate.misses]


def test_in_process_checks_agree_with_the_grader_for_every_activation(prepared_env):
    """The otter/nbgrader checks lose exactly the grader's points on every mutant (training aside).
    The grader's side is the session's shared report (tests/verdict_cache.py): test_mutants grades the
    same mutants under the same environment."""
    from autograder.mutants import mutant_sources
    from verdict_cache import graded
    for activation in ("sigmoid", "tanh"):
        env = prepared_env(activation, with_training=False)
        tests = build_tests(env.config)
        for mid, source in mutant_sources(activation).items():
            ns: dict = {}
            exec(compile(source, mid, "exec"), ns)
            ours, theirs = by_check(run_tests(tests, ns, with_training=False)), graded(source, env).by_check()
            assert {c: ours[c] for c in theirs if c != "training"} == \
                   {c: v for c, v in theirs.items() if c != "training"}, (activation, mid)


def test_release_stops_on_a_gate_miss_and_writes_nothing(tmp_path, secret, monkeypatch):
    from autograder import mutants
    wrong = replace(mutants.mutant("sgd_ascends"), mutant_id="mislabelled", expected_check="gradients")
    monkeypatch.setattr(mutants, "MUTANTS", [wrong])
    monkeypatch.setenv("BACKPROP_LAB_COURSE", str(course_file(tmp_path, "auto")))
    out = tmp_path / "dist" / "2027"
    with pytest.raises(build.GateFailed) as failed:
        build.run_release(2027, out, with_training=False)
    assert [r.subject for r in failed.value.gate.misses] == ["mutant mislabelled"]
    assert not out.exists()
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_every_secret_makes_a_naive_softmax_overflow(monkeypatch):
    from autograder.mutants import mutant_sources
    passed = []
    for activation in ("relu", "sigmoid"):
        namespace: dict = {}
        exec(compile(mutant_sources(activation)["naive_softmax"], "naive", "exec"), namespace)
        for i in range(12):
            monkeypatch.setenv("BACKPROP_LAB_SECRET", f"secret-{i}")
            config = replace(load_config(activation=activation), year=2027)
            large = [t for t in build_tests(config) if t.label.startswith("large logits")]
            if run_tests(large, namespace)[0][1] > 0:
                passed.append((activation, i))
    assert not passed, f"a naive softmax passes the large-logit test for {passed}"
