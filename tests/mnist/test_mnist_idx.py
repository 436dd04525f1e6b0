"""The IDX source (autograder.mnist.idx): four .gz files parsed with numpy into the classic split."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from autograder import mnist
from autograder.errors import DataError
from mnist_fakes import idx_images, idx_labels, trust_idx, write_idx


def test_idx_folder_is_parsed_and_split(monkeypatch, tmp_path):
    folder = tmp_path / "idx"
    tr_px, tr_lb, te_px, te_lb = write_idx(folder)
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("IDX must not be unpickled"))

    assert mnist.fetch_mnist(progress=False) == mnist.mnist_dir()
    data = mnist.load_mnist(fetch=False)

    expected_X = tr_px.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(data.train.X, expected_X[:50])   # first 50k -> train
    np.testing.assert_array_equal(data.valid.X, expected_X[50:])   # last 10k -> valid
    np.testing.assert_array_equal(data.train.y, tr_lb[:50])
    np.testing.assert_array_equal(data.valid.y, tr_lb[50:])
    np.testing.assert_array_equal(data.test.X, te_px.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(data.test.y, te_lb)
    assert data.train.X.dtype == np.float32 and data.train.y.dtype == np.int64
    assert float(data.train.X.max()) <= 1.0 and float(data.train.X.min()) >= 0.0
    manifest = json.loads((mnist.mnist_dir() / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "idx" and manifest["source"]["path"] == str(folder.resolve())


@pytest.mark.parametrize("name, raw, words", [
    ("train-images-idx3-ubyte.gz", idx_images(np.zeros((60, 784)), magic=0x801), "magic number"),
    ("train-labels-idx1-ubyte.gz", idx_labels(np.zeros(60), magic=0x803), "magic number"),
    ("t10k-images-idx3-ubyte.gz", idx_images(np.zeros((10, 784)), count=11), "holds 11 images"),
    ("t10k-labels-idx1-ubyte.gz", idx_labels(np.zeros(9), count=10), "label bytes"),
    ("t10k-images-idx3-ubyte.gz", idx_images(np.zeros((9, 784)), count=10), "bytes of pixels"),
    ("t10k-labels-idx1-ubyte.gz", idx_labels(np.full(10, 10)), "outside 0..9"),
    ("train-images-idx3-ubyte.gz", b"\x00\x00", "too short"),
])
def test_idx_validation(monkeypatch, tmp_path, name, raw, words):
    folder = tmp_path / "idx"
    write_idx(folder, overrides={name: raw})
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    with pytest.raises(DataError, match=words) as err:
        mnist.fetch_mnist(progress=False)
    assert name in str(err.value)
    assert not mnist.mnist_dir().exists()


def test_idx_wrong_sha_names_the_file(monkeypatch, tmp_path):
    folder = tmp_path / "idx"
    write_idx(folder)   # not trusted: the canonical sha256 values do not match synthetic files
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz has sha256 .* expected 440fcabf"):
        mnist.fetch_mnist(progress=False)


def test_missing_idx_file(monkeypatch, tmp_path):
    folder = tmp_path / "idx"
    write_idx(folder)
    (folder / mnist.IDX_TEST_LABELS).unlink()
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        mnist.fetch_mnist(progress=False)
