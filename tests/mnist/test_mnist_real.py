"""Real MNIST (network or BACKPROP_LAB_MNIST, and the real cache), through the normal path."""
from __future__ import annotations

import time

import numpy as np
import pytest

from autograder import mnist


@pytest.mark.slow
def test_real_mnist():
    root = mnist.fetch_mnist(progress=False)
    mnist.verify_cache()
    t0 = time.perf_counter()
    data = mnist.load_mnist()
    elapsed = time.perf_counter() - t0
    assert root == mnist.mnist_dir()
    for split, n in (("train", 50_000), ("valid", 10_000), ("test", 10_000)):
        s = getattr(data, split)
        assert s.X.shape == (n, 784) and s.X.dtype == np.float32
        assert s.y.shape == (n,) and s.y.dtype == np.int64
        assert float(s.X.min()) == 0.0 and 0.99 < float(s.X.max()) <= 1.0
        assert set(np.unique(s.y)) == set(range(10))
        assert not s.X.flags.writeable
    assert elapsed <= 0.1, f"cached load_mnist() took {elapsed:.3f} s"
