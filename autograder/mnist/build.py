"""Building the cache atomically: write into a temporary folder, fsync, rename into place, under a lock."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .constants import LOCK_NAME, MANIFEST, MANIFEST_FORMAT, OLD_PREFIX, SPLITS, TMP_PREFIX
from .files import fsync_dir, sha256_file
from .layout import rel_files
from .progress import Progress


def write_npy(path: Path, arr: np.ndarray) -> None:
    """``np.save`` without pickles, fsync'ed."""
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def build_tmp(root: Path, arrays: dict[str, tuple[np.ndarray, np.ndarray]], source: dict,
              prog: Progress) -> Path:
    """Write every array and the manifest into a fresh temporary folder inside ``root``."""
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    try:
        files = {}
        with prog.step("write cache", total=len(rel_files())) as advance:
            for split, kind, rel in rel_files():
                arr = arrays[split][0 if kind == "X" else 1]
                (tmp / split).mkdir(exist_ok=True)
                path = tmp / rel
                write_npy(path, arr)
                files[rel] = {"sha256": sha256_file(path), "shape": list(arr.shape),
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
            fsync_dir(d)
        for p in tmp.rglob("*"):
            if p.is_file():
                os.chmod(p, 0o644)
        return tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def install(root: Path, tmp: Path) -> Path:
    """Swap ``tmp`` into ``root/mnist``; the old cache is removed only after the new one is in place."""
    final = root / "mnist"
    old = None
    if final.exists() or final.is_symlink():
        old = root / f"{OLD_PREFIX}{secrets.token_hex(4)}"
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(root)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    return final


def recover(root: Path) -> None:
    """Clean up after a crashed fetch (the caller holds the lock)."""
    final = root / "mnist"
    olds = sorted(root.glob(OLD_PREFIX + "*"))
    if not final.exists() and olds:
        os.rename(olds.pop(), final)  # crashed between the two renames: put the old cache back
    for leftover in [*olds, *root.glob(TMP_PREFIX + "*")]:
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """An exclusive lock on ``root`` so that parallel workers fetch only once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / LOCK_NAME, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
