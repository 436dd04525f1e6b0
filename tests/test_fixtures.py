"""The session fixtures of tests/conftest.py are what they say: one prepared environment per kind, at the
machine's isolation level, with MNIST and a budget only when training is graded."""
from __future__ import annotations

import numpy as np

from autograder.mnist import SPLIT_SIZES


def test_environments_are_made_once_per_kind(prepared_env, grading_env, trained_env):
    assert prepared_env("relu", with_training=False) is grading_env
    assert prepared_env("relu", with_training=True) is trained_env
    assert prepared_env("tanh") is not grading_env and prepared_env("tanh").config.activation == "tanh"


def test_environments_run_at_the_installed_isolation_level(isolation, grading_env, trained_env):
    assert grading_env.iso == isolation and trained_env.iso == isolation
    assert grading_env.config.sandbox == trained_env.config.sandbox


def test_only_the_trained_environment_has_data_and_a_budget(grading_env, trained_env, mnist_data):
    assert grading_env.data is None and grading_env.budget == 0.0
    assert trained_env.budget > 0 and "training not graded" not in trained_env.budget_statement
    for split in ("train", "valid", "test"):
        ours, theirs = getattr(trained_env.data, split), getattr(mnist_data, split)
        assert len(ours) == len(theirs) == SPLIT_SIZES[split]
        assert np.array_equal(ours.y, theirs.y)
