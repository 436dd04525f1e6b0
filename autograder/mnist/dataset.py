"""The loaded dataset: :class:`Split` (X, y) and :class:`MNIST` (train, valid, test)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import N_CLASSES


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
