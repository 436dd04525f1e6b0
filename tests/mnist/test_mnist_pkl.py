"""The pickle source (autograder.mnist.pkl): sha256 first, then an unpickler that only knows numpy."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from autograder import mnist
from autograder.errors import DataError
from autograder.mnist import pkl
from mnist_fakes import SIZES, fake_arrays, sha256, trust_pkl, write_pkl


def test_pkl_source_file(pkl_source):
    path, arrays = pkl_source
    mnist.fetch_mnist(progress=False)
    data = mnist.load_mnist(fetch=False)
    for split in mnist.SPLITS:
        got = getattr(data, split)
        np.testing.assert_array_equal(got.X, arrays[split][0])
        np.testing.assert_array_equal(got.y, arrays[split][1])
        assert got.X.shape == (SIZES[split], 784) and got.y.shape == (SIZES[split],)
    source = json.loads((mnist.mnist_dir() / "manifest.json").read_text())["source"]
    assert source == {"kind": "pkl", "path": str(path.resolve()), "via": "BACKPROP_LAB_MNIST",
                      "id": sha256(path)}


def test_pkl_source_folder(monkeypatch, tmp_path):
    path = write_pkl(tmp_path / "src" / "mnist.pkl.gz")
    trust_pkl(monkeypatch, path)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path.parent))
    mnist.fetch_mnist(progress=False)
    assert mnist.load_split("test", fetch=False).X.shape == (10, 784)


def test_pkl_wrong_sha_is_never_unpickled(monkeypatch, tmp_path):
    path = write_pkl(tmp_path / "mnist.pkl.gz")  # expected sha256 stays the real one
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path))
    monkeypatch.setattr(pkl, "parse_pkl", lambda *a, **k: pytest.fail("unpickled an untrusted file"))
    with pytest.raises(DataError) as err:
        mnist.fetch_mnist(progress=False)
    msg = str(err.value)
    assert str(path) in msg and "sha256" in msg and mnist.EXPECTED_PKL_SHA256 in msg
    assert not mnist.mnist_dir().exists()


def test_pkl_unpickler_only_knows_numpy(monkeypatch, tmp_path):
    path = write_pkl(tmp_path / "evil.pkl.gz", payload=(os.getpid, ()))   # a global outside numpy
    trust_pkl(monkeypatch, path)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path))
    with pytest.raises(DataError, match="not allowed"):
        mnist.fetch_mnist(progress=False)


def test_pkl_with_wrong_shapes(monkeypatch, tmp_path):
    arrays = fake_arrays()
    arrays["valid"] = (arrays["valid"][0][:5], arrays["valid"][1][:5])
    path = write_pkl(tmp_path / "mnist.pkl.gz", arrays)
    trust_pkl(monkeypatch, path)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path))
    with pytest.raises(DataError, match="valid split has shapes"):
        mnist.fetch_mnist(progress=False)


def test_truncated_pkl_with_real_sha_fails_the_sha_check(monkeypatch, tmp_path):
    bad = write_pkl(tmp_path / "mnist.pkl.gz")
    bad.write_bytes(bad.read_bytes()[:100])
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(bad))
    with pytest.raises(DataError, match="truncated, corrupt or a different dataset"):
        mnist.fetch_mnist(progress=False)
