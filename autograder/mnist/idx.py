"""The four standard IDX ``.gz`` files, parsed with numpy (never pickle) into the classic 50k/10k/10k split."""
from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import constants
from .constants import (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDX_TEST_IMAGES, IDX_TEST_LABELS, IDX_TRAIN_IMAGES,
                        IDX_TRAIN_LABELS, IMAGE_SIDE, N_CLASSES, N_FEATURES, SPLITS, X_DTYPE, Y_DTYPE)
from .progress import Progress


def gunzip(blob: bytes, path: Path, limit: int) -> bytes:
    """Decompress ``blob`` (the bytes of ``path``), at most ``limit`` bytes (more is wrong anyway)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as f:
            return f.read(limit)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"IDX file {path} is truncated or corrupt ({exc}); download it again") from None


def parse_idx_images(blob: bytes, path: Path, n: int) -> np.ndarray:
    """(n, 784) float32 pixels / 255 from an IDX image file's gzipped bytes."""
    header = 16
    size = header + n * N_FEATURES
    raw = gunzip(blob, path, size + 1)
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


def parse_idx_labels(blob: bytes, path: Path, n: int) -> np.ndarray:
    """(n,) int64 labels in 0..9 from an IDX label file's gzipped bytes."""
    header = 8
    size = header + n
    raw = gunzip(blob, path, size + 1)
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


def parse_idx(blobs: dict[str, bytes], folder: Path, prog: Progress) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse the four IDX files (their sha256-checked bytes) into the classic split."""
    n_tr, n_va, n_te = (constants.SPLIT_SIZES[s] for s in SPLITS)
    with prog.step("parse IDX files", total=4) as advance:
        Xtrain = parse_idx_images(blobs[IDX_TRAIN_IMAGES], folder / IDX_TRAIN_IMAGES, n_tr + n_va)
        advance(1)
        ytrain = parse_idx_labels(blobs[IDX_TRAIN_LABELS], folder / IDX_TRAIN_LABELS, n_tr + n_va)
        advance(1)
        Xte = parse_idx_images(blobs[IDX_TEST_IMAGES], folder / IDX_TEST_IMAGES, n_te)
        advance(1)
        yte = parse_idx_labels(blobs[IDX_TEST_LABELS], folder / IDX_TEST_LABELS, n_te)
        advance(1)
    return {
        "train": (Xtrain[:n_tr], ytrain[:n_tr]),
        "valid": (Xtrain[n_tr:], ytrain[n_tr:]),
        "test": (Xte, yte),
    }
