"""What crosses the boundary back from the worker, read without trusting it: protocol lines (size
and nesting capped), npz files (no pickles, no links, no FIFOs, no zip bombs), changed inputs."""
from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 8             # JSON nesting a reply may have
MAX_LINE = 256 * 1024
MAX_NPZ = 64 * 1024**2


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


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Plain arrays from a worker-written npz: no pickles, no links or FIFOs, size capped (also
    uncompressed, against zip bombs), missing means empty. The file is removed afterwards."""
    fd = open_regular(path)
    try:
        if fd is None:
            return {}
        with os.fdopen(fd, "rb") as fh:
            fd = None
            if os.fstat(fh.fileno()).st_size > MAX_NPZ:
                return {}
            with zipfile.ZipFile(fh) as zf:
                if sum(i.file_size for i in zf.infolist()) > MAX_NPZ:
                    return {}
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as data:
                return {k: np.array(data[k]) for k in data.files[:64]}
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
