"""What xdist workers share on disk: the MNIST cache and the training-budget calibration table in it.

Session fixtures are made once per xdist worker, so two workers can reach an empty cache at the same
moment; :func:`prepare_shared` lets one of them fetch MNIST and calibrate while the others wait, then
read what it wrote (``calibration.json`` is one table rewritten whole: two writers would each drop the
other's key, and both would spend a full reference training on the same measurement).
"""
from __future__ import annotations

from filelock import FileLock

from autograder.config import CourseConfig
from autograder.grade import Environment, prepare
from autograder.mnist import MNIST, load_mnist
from autograder.paths import cache_dir


def cache_lock() -> FileLock:
    """One lock file beside the cache, held while fetching MNIST or calibrating (at most a few minutes)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / ".tests.lock"), timeout=600)


def load_mnist_shared() -> MNIST:
    with cache_lock():
        return load_mnist(fetch=True)


def prepare_shared(config: CourseConfig, with_training: bool) -> Environment:
    """``prepare(config, with_training)``; with training, under the cache lock (see the module doc)."""
    if not with_training:
        return prepare(config, with_training=False)
    with cache_lock():
        return prepare(config, with_training=True)
