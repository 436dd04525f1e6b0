"""Session-wide fixtures: the installed sandbox (its isolation level), the MNIST data and prepared grading
environments, each made once per test session instead of once per module or per test.

``prepared_env(activation, with_training)`` is the general form; ``grading_env`` (relu, no training)
and ``trained_env`` (relu, MNIST loaded and the training budget calibrated) are the two most tests need.
Preparing detects the isolation level and, with training, loads MNIST and calibrates the budget
(cached per machine in the MNIST cache folder).
Tests must not modify what these fixtures return: every test of the session shares it.

Under pytest-xdist (``-n auto`` in pyproject.toml) each worker process has its own session, so these
are made once per worker; what workers share on disk (the MNIST cache, the calibration table) is
written under a file lock (tests/shared_cache.py).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

from autograder.blas import one_thread_env  # imports no numpy: the variables are set before numpy loads

#: One BLAS thread in every process of the suite (its workers, the CLIs and tools they start, their kernels),
#: set before numpy is first imported here: three xdist workers share two cores, and an idle OpenBLAS pool
#: spins on the core another worker needs. Measured on the quiet 2-core machine: one reference grading
#: costs its parent 0.130 CPU s with the default pool and 0.065 with one thread; the whole suite used 747
#: machine CPU s (381 s) with the default and 700 (357 s) with one thread (docs/design.md, issue 16).
os.environ.update(one_thread_env())
if "numpy" in sys.modules:  # a plugin imported numpy first: its pool is already sized, limit it in place
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1)
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from autograder.config import load_config
from autograder.grade import Environment
from autograder.mnist import MNIST
from autograder.sandbox.launch import reap_children
from autograder.sandbox.level import Isolation, detect
from shared_cache import load_mnist_shared, prepare_shared
import verdict_cache

PreparedEnv = Callable[..., Environment]

if TYPE_CHECKING:
    from autograder.config import CourseConfig
    from autograder.release.build import Build


def pytest_configure(config) -> None:
    """The session's controller (not an xdist worker) makes the folder of shared grade reports
    (tests/verdict_cache.py); its workers inherit its name through the environment."""
    if hasattr(config, "workerinput") or os.environ.get(verdict_cache.FOLDER_ENV):
        return
    folder = tempfile.mkdtemp(prefix="backprop-lab-test-verdicts-")
    os.environ[verdict_cache.FOLDER_ENV] = folder
    config.add_cleanup(lambda: (shutil.rmtree(folder, ignore_errors=True), os.environ.pop(verdict_cache.FOLDER_ENV, None)))


#: modules collected first, in this order: the zoo's reports are read back by test_agreement
#: (tests/verdict_cache.py), and its hang entries are the longest waits of the suite
FIRST = ("test_grader_zoo.py",)


def pytest_collection_modifyitems(config, items) -> None:
    """The modules of FIRST ahead of the rest (a stable sort: the same order on every xdist worker)."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per CPU this process may run on (its affinity, not the host's count) plus
    one, at least 3: many tests wait (sandbox wall limits, pip downloads, kill-test polling), and with one
    worker per core the 2-core machine ran at 1.5 cores (529 s); with 3 workers it ran at 1.97 (445 s).
    BACKPROP_LAB_TEST_WORKERS=N overrides (docs/design.md, issue 16)."""
    wanted = os.environ.get("BACKPROP_LAB_TEST_WORKERS")
    if wanted:
        return max(0, int(wanted))
    return max(3, len(os.sched_getaffinity(0)) + 1)


@pytest.fixture(autouse=True)
def reap_adopted_orphans():
    """Grading makes this process a child subreaper, so processes orphaned by a test's killed batch
    (``kill -9`` tests) end up here as zombies. Each still counts against its uid's process limit, so
    they are reaped after every test, as a grading process reaps after every worker."""
    yield
    reap_children()


@pytest.fixture(scope="session")
def isolation() -> Isolation:
    """The best isolation level this machine offers (``backprop-lab sandbox setup`` installs the full one)."""
    return detect()


@pytest.fixture(scope="session")
def mnist_data() -> MNIST:
    """The classic split from the cache (``BACKPROP_LAB_CACHE``), fetched first when it is missing."""
    return load_mnist_shared()


@pytest.fixture(scope="session")
def prepared_env() -> PreparedEnv:
    """``prepared_env(activation="relu", with_training=False)``: the course config with that activation,
    prepared at the best isolation level; one Environment per (activation, with_training) per session."""
    made: dict[tuple[str, bool], Environment] = {}

    def get(activation: str = "relu", with_training: bool = False) -> Environment:
        key = (activation, with_training)
        if key not in made:
            made[key] = prepare_shared(load_config(activation=activation), with_training)
        return made[key]

    return get


@pytest.fixture(scope="session")
def grading_env(prepared_env: PreparedEnv) -> Environment:
    """relu, training not graded: forward, gradients, minibatch and sgd_step against a real worker."""
    return prepared_env("relu", with_training=False)


@pytest.fixture(scope="session")
def trained_env(prepared_env: PreparedEnv) -> Environment:
    """relu with training graded: MNIST loaded, the budget calibrated on this machine."""
    return prepared_env("relu", with_training=True)


@pytest.fixture(scope="module")
def mnist_for_the_tools():
    """(Used by the otter and nbgrader test modules.) The training tests read the grader's MNIST cache (the
    .npy split) through BPLAB_MNIST; the kernels have one BLAS thread, as every process of the suite
    (one_thread_env above) and as the grader's worker."""
    from autograder.mnist import load_mnist, mnist_dir
    load_mnist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BPLAB_MNIST", str(mnist_dir()))
        yield


#: The course secret of the one full release the release tests share (any secret must pass the gate).
RELEASE_SECRET = "course-secret-for-the-release-tests-6606"


@dataclass
class ReleaseRun:
    """The one full ``release --year 2027`` of the session: what each step made (``build``: gate,
    student view, tampering rows, tests), the published folder, and a config reading its secret."""
    build: "Build"
    out: Path
    config: "CourseConfig"
    tmp: Path
    secret: str = RELEASE_SECRET


@pytest.fixture(scope="session")
def release_2027(tmp_path_factory) -> ReleaseRun:
    """A full release with the real otter and nbgrader (gate with training, student view, tampering),
    run ONCE per session and shared by test_release_build, _hidden and _tampering: each used to make
    its own, minutes each. Tests must not modify it."""
    pytest.importorskip("otter")
    pytest.importorskip("nbgrader")
    from autograder.release.build import run_release
    from autograder.release.yearly import bind_secret, plan_release
    tmp = tmp_path_factory.mktemp("release")
    out = tmp / "dist" / "2027"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_LAB_SECRET", RELEASE_SECRET)
        build = run_release(2027, out, progress=lambda m: print(m, file=sys.stderr, flush=True))  # -s shows it
        config = bind_secret(plan_release(2027, "relu"), tmp / "secret")
    return ReleaseRun(build, out, config, tmp)
