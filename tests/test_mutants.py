"""Known-bug mutants: generated from the reference, they fail loudly when the reference changes, and
each one loses points on its expected check with its expected diagnosis (graded without training)."""
from __future__ import annotations

import pytest

import verdict_cache
from autograder.config import ACTIVATIONS
from autograder.mutants import MUTANTS, MutationError, Mutant, for_activation, mutant, mutant_sources, substitute
from autograder.reference import reference_source

REQUIRED = {"grad_sign_flip", "grad_factor_n", "grad_factor_1_over_n", "grad_transposed", "wrong_activation_derivative",
            "bias_not_summed", "bias_first_example", "naive_softmax", "softmax_axis0", "sgd_ascends", "sgd_skips_key",
            "sgd_ignores_lr", "forward_mutates_X", "missing_c", "dV_from_preactivation"}


def test_catalogue_covers_the_required_bugs():
    ids = [m.mutant_id for m in MUTANTS]
    assert len(ids) == len(set(ids))
    assert REQUIRED <= set(ids)
    for m in MUTANTS:
        assert m.expected_check in ("forward", "gradients", "minibatch", "sgd_step", "training")
        assert m.description and m.expected_diagnosis and m.activations and set(m.activations) <= set(ACTIVATIONS)
    for activation in ACTIVATIONS:  # the public self-tests must name the bug of at least six per year
        assert len([m for m in for_activation(activation) if m.public_words]) >= 6


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_mutant_applies_compiles_and_changes_the_reference(activation):
    ref = reference_source(activation)
    sources = mutant_sources(activation)
    assert set(sources) == {m.mutant_id for m in for_activation(activation)}
    for mid, src in sources.items():
        assert src != ref, mid
        compile(src, f"{mid}.py", "exec")
        assert f'ACTIVATION = "{activation}"' in src


def test_a_changed_reference_fails_loudly():
    ref = reference_source("relu")
    changed = ref.replace("d_logits = (probs - Y) / n", "d_logits = (probs - Y) / float(n)")
    with pytest.raises(MutationError, match="grad_factor_n"):
        mutant("grad_factor_n").apply(changed)
    with pytest.raises(MutationError, match="not found"):
        mutant_sources("relu", reference=changed)
    with pytest.raises(MutationError, match="occurs 2 times"):
        substitute("x = 1\nx = 1\n", [("x = 1", "x = 2")], "dup")
    with pytest.raises(KeyError):
        mutant("no_such_bug")
    assert isinstance(mutant("sgd_ascends"), Mutant)


@pytest.fixture(scope="module", params=ACTIVATIONS)
def env(request, prepared_env):
    """Every activation a year can choose: the release gate grades the mutants of that year's."""
    return prepared_env(request.param, with_training=False)


def test_reference_scores_full_marks_without_training(env):
    report = verdict_cache.graded(reference_source(env.config.activation), env)
    assert all(r.passed for r in report.results if r.check_id != "training"), \
        [r.message for r in report.results if not r.passed]


@pytest.mark.parametrize("m", MUTANTS, ids=lambda m: m.mutant_id)
def test_mutant_gets_its_expected_verdict(env, m):
    if env.config.activation not in m.activations:
        pytest.skip(f"{m.mutant_id} is a bug of {', '.join(m.activations)} years only")
    source = mutant_sources(env.config.activation)[m.mutant_id]
    report = verdict_cache.graded(source, env)
    lost = [r for r in report.results if r.check_id == m.expected_check and not r.passed]
    assert lost, f"{m.mutant_id} lost no points on {m.expected_check}"
    diagnoses = {d for r in lost for d in r.diagnoses}
    assert m.expected_diagnosis in diagnoses, (m.mutant_id, diagnoses, [r.message for r in lost])
    assert report.by_check()[m.expected_check] < env.config.rubric[m.expected_check]
