"""Put what the worker needs where its user can read it, wherever the project is cloned.

A checkout under a home folder (``/root/...``, ``/home/ta/...`` with mode 700) is closed to the sandbox
user, so the worker could not read the harness or the training split there. The harness (two small
files) is copied into each session's own folder; the training split, when its folder is not open to
other users, is copied once per machine into the sandbox prefix (checked against the cache's
manifest, installed with one rename) and reused.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import py_compile
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from .isolation import SANDBOX_PREFIX
from .scratch import fresh_folder, write_new_file


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can get to ``path``: every folder above it o+x."""
    try:
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in Path(path).resolve().parents)
    except OSError:
        return False


def open_to_others(path: Path) -> bool:
    """Whether a user other than the owner can read ``path``: reachable (:func:`reachable_by_others`)
    and the path itself o+r (o+rx for a folder)."""
    path = Path(path).resolve()
    if not reachable_by_others(path):
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    want = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & want == want


def harness_copy(root: Path, files: list[Path], cache_tag: str = "") -> Path:
    """Copies of ``files`` (harness.py, confine.py, arrayfile.py) in a new folder ``root/harness``
    that every user can read; ``root`` is the session's own folder (mode 0711, written by the grader
    only). Returns the path the worker runs: ``harness.py``, or, when the worker's interpreter has this
    interpreter's bytecode tag, ``harness.pyc`` with the siblings' .pyc in ``__pycache__`` (compiled
    here once per process: the worker then compiles nothing at each start)."""
    folder = fresh_folder(root, "harness", None, None, mode=0o755)
    for path in files:
        write_new_file(folder, path.name, path.read_bytes(), None, None, mode=0o644)
    main = folder / files[0].name
    if not cache_tag or cache_tag != sys.implementation.cache_tag:
        return main
    cache = fresh_folder(folder, "__pycache__", None, None, mode=0o755)
    for path in files[1:]:
        write_new_file(cache, f"{path.stem}.{cache_tag}.pyc", _bytecode(path), None, None, mode=0o644)
    write_new_file(folder, f"{files[0].stem}.pyc", _bytecode(files[0]), None, None, mode=0o644)
    return folder / f"{files[0].stem}.pyc"


@functools.lru_cache(maxsize=8)
def _bytecode(path: Path) -> bytes:
    """``path`` compiled to an unchecked-hash .pyc (the copies never change: nothing to check)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = py_compile.compile(str(path), cfile=os.path.join(tmp, "out.pyc"), doraise=True,
                                 invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        return Path(out).read_bytes()


def _manifest_key(train: Path) -> str:
    """The sha256 of X.npy in the cache manifest (so a rebuilt cache is staged again)."""
    try:
        manifest = json.loads((train.parent / "manifest.json").read_text())
        return manifest["files"]["train/X.npy"]["sha256"][:16]
    except (OSError, ValueError, KeyError, TypeError):
        st = (train / "X.npy").stat()
        return f"{st.st_size}-{int(st.st_mtime)}"


def training_split(train: Path, sandboxed_user: bool) -> Path:
    """A folder with the training split's X.npy and y.npy that the worker's user can read: ``train``
    itself when it is open to others (or the worker runs as the grader's user), else a copy under
    the sandbox prefix, made once per machine and cache version."""
    if not sandboxed_user or open_to_others(train / "X.npy"):
        return train
    if os.geteuid() != 0:
        return train  # nothing better can be done without root; the worker start will say so
    target = SANDBOX_PREFIX / "data" / _manifest_key(train) / "train"
    if (target / "X.npy").is_file() and (target / "y.npy").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o755)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "y.npy").is_file():
            tmp = target.parent / f".train-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(mode=0o755)
            for name in ("X.npy", "y.npy"):
                shutil.copyfile(train / name, tmp / name)
                os.chmod(tmp / name, 0o644)
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
    return target
