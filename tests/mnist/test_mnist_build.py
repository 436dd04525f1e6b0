"""Building the cache (autograder.mnist.build): layout, permissions, and atomic replacement."""
from __future__ import annotations

import json
import os

import pytest

from autograder import mnist
from autograder.errors import DataError
from autograder.mnist import build
from autograder.paths import cache_dir
from mnist_fakes import SIZES, fake_arrays, sha256, tree_digest, trust_idx, write_idx, write_pkl


def test_cache_layout_and_manifest(pkl_source):
    root = mnist.fetch_mnist(progress=False)
    assert root == cache_dir() / "mnist"
    manifest = json.loads((root / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(f"{s}/{k}.npy" for s in ("train", "valid", "test")
                                               for k in ("X", "y"))
    for split in mnist.SPLITS:
        X_path, y_path = mnist.split_paths(split)
        assert X_path == root / split / "X.npy" and y_path == root / split / "y.npy"
        for path, shape, dtype in ((X_path, [SIZES[split], 784], "float32"),
                                   (y_path, [SIZES[split]], "int64")):
            entry = manifest["files"][f"{split}/{path.name}"]
            assert entry["sha256"] == sha256(path)
            assert entry["shape"] == shape and entry["dtype"] == dtype
            assert entry["bytes"] == path.stat().st_size
            assert path.stat().st_mode & 0o777 == 0o644
    assert (root / "test").stat().st_mode & 0o777 == 0o755
    assert manifest["splits"] == SIZES
    assert not list(cache_dir().glob(".mnist-tmp-*"))


def test_failure_mid_convert_keeps_the_old_cache(monkeypatch, tmp_path, pkl_source):
    root = mnist.fetch_mnist(progress=False)
    before = tree_digest(root)

    folder = tmp_path / "idx"
    write_idx(folder)
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    real_write, calls = build.write_npy, []

    def crashing_write(path, arr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, arr)

    monkeypatch.setattr(build, "write_npy", crashing_write)
    with pytest.raises(DataError, match="could not write the MNIST cache .*No space left on device"):
        mnist.fetch_mnist(progress=False)
    assert len(calls) == 3
    assert tree_digest(root) == before
    assert sorted(p.name for p in cache_dir().iterdir()) == [".mnist.lock", "mnist"]
    mnist.verify_cache()


def test_bad_source_keeps_the_old_cache(monkeypatch, tmp_path, pkl_source):
    root = mnist.fetch_mnist(progress=False)
    before = tree_digest(root)
    bad = write_pkl(tmp_path / "other" / "mnist.pkl.gz", fake_arrays(seed=7))
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(bad))
    with pytest.raises(DataError, match="sha256"):
        mnist.fetch_mnist(progress=False)
    assert tree_digest(root) == before


def test_crash_between_renames_is_recovered(pkl_source):
    root = mnist.fetch_mnist(progress=False)
    before = tree_digest(root)
    os.rename(root, cache_dir() / ".mnist-old-deadbeef")
    (cache_dir() / ".mnist-tmp-stale").mkdir()
    mnist.fetch_mnist(progress=False)
    assert tree_digest(root) == before
    assert sorted(p.name for p in cache_dir().iterdir()) == [".mnist.lock", "mnist"]
