"""The cache's manifest and its checks: a quick one on every load (sizes, headers), a full one (sha256) on verify."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .constants import FETCH_HINT, MANIFEST, MANIFEST_FORMAT
from .files import sha256_file
from .layout import expected_dtype, expected_shape, mnist_dir, rel_files
from .progress import Progress


def read_manifest(root: Path) -> dict:
    """The parsed ``root/manifest.json``; DataError saying what to do when it is missing or unreadable."""
    path = root / MANIFEST
    if not root.is_dir():
        raise DataError(f"no MNIST cache at {root}; {FETCH_HINT} (or set BACKPROP_LAB_CACHE)")
    if not path.is_file():
        raise DataError(f"MNIST cache manifest {path} is missing; {FETCH_HINT} to rebuild the cache")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("unknown format")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"MNIST cache manifest {path} is unreadable ({exc}); {FETCH_HINT} to rebuild "
                        "the cache") from None
    return manifest


def entry(manifest: dict, rel: str, root: Path) -> dict:
    """The manifest's entry for ``rel`` ("train/X.npy"): sha256, shape, dtype, bytes."""
    found = manifest["files"].get(rel)
    if not isinstance(found, dict) or not {"sha256", "shape", "dtype", "bytes"} <= set(found):
        raise DataError(f"MNIST cache manifest {root / MANIFEST} has no valid entry for {rel}; "
                        f"{FETCH_HINT} to rebuild the cache")
    return found


def open_checked(path: Path, entry: dict, split: str, kind: str) -> np.ndarray:
    """Memory-map ``path`` after checking its size and header against the manifest entry."""
    if not path.is_file():
        raise DataError(f"MNIST cache file {path} is missing; {FETCH_HINT} to repair the cache")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DataError(f"MNIST cache file {path} has {size} bytes, the manifest says {entry['bytes']} "
                        f"(truncated or replaced); {FETCH_HINT} to repair the cache")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"MNIST cache file {path} is not a valid .npy file ({exc}); {FETCH_HINT} to "
                        "repair the cache") from None
    want_shape, want_dtype = expected_shape(split, kind), expected_dtype(kind)
    if (arr.shape != tuple(entry["shape"]) or str(arr.dtype) != entry["dtype"]
            or arr.shape != want_shape or arr.dtype != want_dtype):
        raise DataError(f"MNIST cache file {path} holds {arr.dtype}{arr.shape}, expected "
                        f"{want_dtype}{want_shape}; {FETCH_HINT} to repair the cache")
    return arr


def verify_files(root: Path, report: Callable[[Path, str], None] | None = None,
                 prog: Progress | None = None, full: bool = True) -> dict:
    """Check of the cache at ``root``: sizes and headers, and (``full``) the sha256 of every file."""
    manifest = read_manifest(root)
    prog = prog or Progress(False)
    for split, kind, rel in rel_files():
        found = entry(manifest, rel, root)
        path = root / rel
        open_checked(path, found, split, kind)
        if not full:
            continue
        with prog.step(f"sha256 {rel}", total=found["bytes"]) as advance:
            got = sha256_file(path, advance)
        if got != found["sha256"]:
            raise DataError(f"MNIST cache file {path} is corrupt: sha256 {got}, the manifest says "
                            f"{found['sha256']}; {FETCH_HINT} to repair the cache")
        if report is not None:
            report(path, got)
    return manifest


def verify_cache(report: Callable[[Path, str], None] | None = None) -> None:
    """Re-hash every cached array against the manifest.

    Raises DataError naming the first bad file and what to do. ``report(path, sha256)`` is called for
    each good file (the CLI prints OK lines with it).
    """
    verify_files(mnist_dir(), report)


def cache_ok(root: Path) -> tuple[dict | None, str | None]:
    """(manifest, None) when the cache at root/mnist passes the full check, else (None, why)."""
    if not (root / "mnist").exists():
        return None, None
    try:
        return verify_files(root / "mnist"), None
    except DataError as exc:
        return None, str(exc)
