"""Choosing and reading a source (autograder.mnist.sources, .files): BACKPROP_LAB_MNIST and checked reads."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder import mnist
from autograder.errors import DataError
from mnist_fakes import trust_idx, trust_pkl, write_idx, write_pkl


@pytest.mark.parametrize("kind", ["pkl", "idx"])
def test_truncated_gz(monkeypatch, tmp_path, kind):
    if kind == "pkl":
        bad = write_pkl(tmp_path / "mnist.pkl.gz")
        source = bad
    else:
        source = tmp_path / "idx"
        write_idx(source)
        bad = source / mnist.IDX_TEST_IMAGES
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    # Even with a matching sha256 (so that the gzip layer is reached) a truncated stream is reported.
    trust_pkl(monkeypatch, bad) if kind == "pkl" else trust_idx(monkeypatch, source)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(source))
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        mnist.fetch_mnist(progress=False)
    assert str(bad) in str(err.value)


def test_unreadable_source(monkeypatch, pkl_source):
    path, _ = pkl_source
    real_open = open

    def deny(file, *args, **kwargs):
        if Path(file) == path.resolve():
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(DataError, match="cannot read MNIST pickle .*Permission denied"):
        mnist.fetch_mnist(progress=False)


def test_env_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"BACKPROP_LAB_MNIST=.*nope does not exist"):
        mnist.fetch_mnist(progress=False)


def test_empty_env_folder(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="folder without train-images-idx3-ubyte.gz"):
        mnist.fetch_mnist(progress=False)
