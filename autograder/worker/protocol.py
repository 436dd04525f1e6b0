"""What crosses the boundary back from the worker, read without trusting it: protocol lines (size
and nesting capped), array files (no pickles, no links, no FIFOs, headers checked before allocating), changed inputs."""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import arrayfile

MAX_DEPTH = 8             # JSON nesting a reply may have
MAX_LINE = 256 * 1024
MAX_ARRAY_FILE = 64 * 1024**2


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int | None:
    """An fd on ``path`` if it is a plain file (never through a symlink, never blocking on a FIFO)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def _depth_ok(line: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether brackets outside strings nest at most ``limit`` deep (checked before json parses it:
    a 50,000-deep line would exhaust the parser's recursion)."""
    depth = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:     # backslash
                escaped = True
            elif byte == 0x22:     # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def parse_reply(line: bytes) -> dict[str, Any] | None:
    """One protocol line as a dict, or None for anything else (too deep, not JSON, not an object)."""
    if len(line) > MAX_LINE or not _depth_ok(line):
        return None
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return msg if isinstance(msg, dict) else None


def display_name(key: str) -> str:
    """An input's name as the feedback says it: params.W, grads.b, X, Y."""
    if key[:2] in ("p_", "g_"):
        return ("params." if key[0] == "p" else "grads.") + key[2:]
    return f"params.{key}" if key in ("W", "b", "V", "c") else key


def changed(sent: np.ndarray, after: np.ndarray | None) -> bool:
    if after is None or after.shape != sent.shape:
        return True
    try:
        with np.errstate(all="ignore"):
            return not bool(np.array_equal(after, sent, equal_nan=True))
    except (TypeError, ValueError):  # e.g. a string array came back
        return True


MAX_FIELDS = 64           # arrays one file may hold


def _header_ok(fh, size: int) -> bool:
    """Whether the .npy header describes what ``arrayfile.pack`` writes (a 0-d record of at most
    MAX_FIELDS plain fields) and data that fits in the file: checked before np.load allocates it."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        return False
    return (shape == () and dtype.names is not None and len(dtype.names) <= MAX_FIELDS
            and not dtype.hasobject and dtype.itemsize <= size - fh.tell())


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Plain arrays from a worker-written array file (``arrayfile``): no pickles, no links or FIFOs,
    size capped, the header checked before anything is allocated; missing or malformed means empty.
    The file is removed afterwards."""
    fd = open_regular(path)
    try:
        if fd is None:
            return {}
        with os.fdopen(fd, "rb") as fh:
            fd = None
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ARRAY_FILE or not _header_ok(fh, size):
                return {}
            fh.seek(0)
            return arrayfile.unpack(np.load(fh, allow_pickle=False), MAX_FIELDS)
    except Exception:  # noqa: BLE001 - any malformed file is simply "nothing came back"
        return {}
    finally:
        if fd is not None:
            os.close(fd)
        try:
            path.unlink()
        except OSError:
            pass


@dataclass
class Reply:
    """One answer from the worker. ``kind`` is ok, not_implemented, exception, syntax, memory,
    timeout, crashed or protocol; ``arrays`` holds what the worker wrote (unvalidated)."""
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "ok"
