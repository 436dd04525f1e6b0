"""Scratch folders the grader (often root) creates and removes without following anything the
worker could have planted: created fresh for every worker start, removed through directory fds,
iteratively (a 100,000-deep tree neither recurses nor holds more than two fds open)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def fresh_folder(parent: Path, name: str, uid: int | None, gid: int | None, mode: int = 0o700) -> Path:
    """``parent/name``, new (never an existing path), owned by ``uid`` when given. ``parent`` must be
    a folder only the grader can write (the session's own temp root)."""
    path = parent / name
    os.mkdir(path, mode)
    fd = os.open(path, DIR_FLAGS)
    try:
        if uid is not None:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return path


def write_new_file(folder: Path, name: str, data: bytes, uid: int | None, gid: int | None,
                   mode: int = 0o600) -> None:
    """Create ``folder/name`` (it must not exist; never through a link) with ``data``."""
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        if uid is not None:
            os.fchown(fh.fileno(), uid, gid)


def _open_child(parent_fd: int, name: str) -> int | None:
    """An fd on the sub-folder ``name`` of ``parent_fd`` (never a link), opening it up if its owner
    closed it (mode 000); None if it is not a folder."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=parent_fd)  # the entry is a real folder: O_NOFOLLOW passed ENOTDIR
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return None


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it; links are removed, never followed. Iterative: walks
    down with one fd at a time and back up through ``..`` (the worker is dead, the tree is still)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent_fd = os.open(path.parent, DIR_FLAGS)
    try:
        fd = _open_child(parent_fd, path.name)
    finally:
        os.close(parent_fd)
    if fd is None:
        return
    names: list[str] = []        # the path from ``path`` down to the folder ``fd`` is on
    while True:
        child = None
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    child = entry.name
                    break
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
        if child is not None:
            sub = _open_child(fd, child)
            if sub is None:
                os.unlink(child, dir_fd=fd)
                continue
            os.close(fd)
            fd = sub
            names.append(child)
            continue
        if not names:             # ``path`` itself is empty now
            os.close(fd)
            os.rmdir(path)
            return
        up = os.open("..", DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = up
        os.rmdir(names.pop(), dir_fd=fd)
