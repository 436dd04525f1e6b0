"""Which source fetch_mnist uses (autograder.mnist.fetch): a good cache is kept, the env source wins."""
from __future__ import annotations

import json

from autograder import mnist
from mnist_fakes import trust_idx, write_idx


def test_second_fetch_reuses_the_cache(pkl_source):
    mnist.fetch_mnist(progress=False)
    before = (mnist.mnist_dir() / "manifest.json").stat().st_mtime_ns
    mnist.fetch_mnist(progress=False)
    assert (mnist.mnist_dir() / "manifest.json").stat().st_mtime_ns == before


def test_env_source_wins_over_a_cache_from_other_data(monkeypatch, tmp_path, pkl_source):
    mnist.fetch_mnist(progress=False)
    folder = tmp_path / "idx"
    write_idx(folder)
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    mnist.fetch_mnist(progress=False)
    assert json.loads((mnist.mnist_dir() / "manifest.json").read_text())["source"]["kind"] == "idx"
