"""Loading (autograder.mnist.load, .layout): memory-mapped, read-only, quick checks, fetch on demand."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from autograder import mnist
from autograder.errors import DataError


def test_load_is_memory_mapped_and_read_only(pkl_source):
    mnist.fetch_mnist(progress=False)
    split = mnist.load_split("valid")
    assert isinstance(split.X, np.memmap) and not split.X.flags.writeable
    with pytest.raises(ValueError):
        split.X[0, 0] = 1.0
    Y = split.onehot()
    assert Y.shape == (10, 10) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.argmax(1), split.y)
    assert split.onehot(np.float32).dtype == np.float32
    assert len(split) == 10


def test_load_fetches_when_missing(pkl_source):
    assert not mnist.mnist_dir().exists()
    with pytest.raises(DataError, match="backprop-lab data fetch"):
        mnist.load_split("train", fetch=False)
    data = mnist.load_mnist()   # fetch=True: builds the cache from BACKPROP_LAB_MNIST
    assert data.train.X.shape == (50, 784)


def test_train_loads_when_test_is_masked(pkl_source):
    """The grader's sandbox hides test/: the other splits must still load without fetching."""
    mnist.fetch_mnist(progress=False)
    shutil.rmtree(mnist.mnist_dir() / "test")
    assert mnist.load_split("train", fetch=False).X.shape == (50, 784)
    with pytest.raises(DataError, match="test/X.npy is missing"):
        mnist.load_split("test", fetch=False)


def test_load_checks_size_and_header(pkl_source):
    mnist.fetch_mnist(progress=False)
    X_path, _ = mnist.split_paths("train")
    with open(X_path, "ab") as f:
        f.write(b"\0" * 16)
    with pytest.raises(DataError, match=r"train/X.npy has \d+ bytes, the manifest says"):
        mnist.load_split("train", fetch=False)
    mnist.load_split("train")   # fetch=True repairs it
    assert mnist.load_split("train", fetch=False).X.shape == (50, 784)


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown MNIST split"):
        mnist.split_paths("validation")
