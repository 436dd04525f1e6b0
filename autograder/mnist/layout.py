"""Where the cache keeps each split (``<cache>/mnist/<split>/{X,y}.npy``) and what each file must hold."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..paths import cache_dir
from . import constants
from .constants import N_FEATURES, SPLITS, X_DTYPE, Y_DTYPE


def mnist_dir() -> Path:
    """``<cache>/mnist``."""
    return cache_dir() / "mnist"


def check_split_name(split: str) -> None:
    """ValueError unless ``split`` is "train", "valid" or "test"."""
    if split not in SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; choose one of {', '.join(SPLITS)}")


def split_paths(split: str) -> tuple[Path, Path]:
    """``(X.npy, y.npy)`` of ``split`` ("train", "valid" or "test") in the cache."""
    check_split_name(split)
    d = mnist_dir() / split
    return d / "X.npy", d / "y.npy"


def rel_files() -> list[tuple[str, str, str]]:
    """[(split, "X"|"y", "split/X.npy"), ...] in a fixed order."""
    return [(s, k, f"{s}/{k}.npy") for s in SPLITS for k in ("X", "y")]


def expected_shape(split: str, kind: str) -> tuple[int, ...]:
    """(N, 784) for "X", (N,) for "y", N the split's size."""
    n = constants.SPLIT_SIZES[split]
    return (n, N_FEATURES) if kind == "X" else (n,)


def expected_dtype(kind: str) -> np.dtype:
    """float32 for "X", int64 for "y"."""
    return X_DTYPE if kind == "X" else Y_DTYPE
