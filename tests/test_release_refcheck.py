"""A broken reference is named as such by the gate, not reported as an internal grader error."""
from __future__ import annotations

import types

import pytest

from autograder import reference
from autograder.config import load_config
from autograder.mutants import mutant_sources
from autograder.release.gate import render_gate, run_gate
from autograder.release.refcheck import reference_problems

CONFIG = load_config(activation="relu")


def _module(source: str) -> types.ModuleType:
    module = types.ModuleType("broken_reference")
    exec(compile(source, "solutions/mlp.py", "exec"), module.__dict__)  # our own mutant: trusted
    return module


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_the_reference_passes(activation):
    assert reference_problems(load_config(activation=activation)) == []


@pytest.mark.parametrize("mutant, words", [
    ("grad_sign_flip", "the reference's backward disagrees with finite differences"),
    ("naive_softmax", None),  # agrees on ordinary cases: not a reference-sanity matter
    ("missing_c", "the reference's forward disagrees"),
    ("sgd_ascends", "the reference's sgd_step is not params - learning_rate * grads"),
])
def test_broken_references_are_named(mutant, words):
    problems = reference_problems(CONFIG, _module(mutant_sources("relu")[mutant]))
    if words is None:
        assert problems == []
    else:
        assert problems and words in problems[0] and "fix solutions/mlp.py" in problems[0]


def test_the_gate_names_a_sign_flipped_reference(monkeypatch):
    broken = _module(mutant_sources("relu")["grad_sign_flip"])
    monkeypatch.setattr(reference, "load_reference", lambda activation: broken)
    gate = run_gate(CONFIG, "", with_training=False)
    assert not gate.passed and len(gate.rows) == 1
    from rich.console import Console
    console = Console(record=True, width=200)
    render_gate(gate, console)
    text = console.export_text()
    assert "the reference's backward disagrees with finite differences" in text and "fix solutions/mlp.py" in text
    assert "internal grader error" not in text
