"""Scratch folders the grader (often root) creates and removes without following anything the
worker could have planted: created fresh for every worker start, removed through directory fds,
iteratively (a 100,000-deep tree neither recurses nor holds more than two fds open)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .cgroups import process_alive

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


# ---- a size cap for the whole scratch folder (root only): a tmpfs of its own per worker start -------
MOUNT_SOURCE = "backprop-lab-scratch"   # + "-<pid of the grader>" in /proc/self/mountinfo
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH, _UMOUNT_NOFOLLOW = 2, 8
_swept = False


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def mount_quota(path: Path, size_bytes: int, uid: int | None, gid: int | None, mode: int = 0o700) -> bool:
    """Mount a fresh tmpfs of ``size_bytes`` on the new, empty folder ``path`` (root only): every
    file the worker writes counts against that size (and, as shared memory, against its cgroup),
    nothing in it can be executed, and unmounting removes it all at once. False where mounting is
    not allowed (not root, a container without CAP_SYS_ADMIN): the folder stays a plain one."""
    global _swept
    if os.geteuid() != 0 or os.environ.get("BACKPROP_LAB_NO_SCRATCH_TMPFS"):
        return False
    if not _swept:
        _swept = True
        sweep_stale_mounts()
    options = f"size={int(size_bytes)},mode={mode:o}" + (f",uid={uid},gid={gid}" if uid is not None else "")
    rc = _libc().mount(f"{MOUNT_SOURCE}-{os.getpid()}".encode(), os.fsencode(path), b"tmpfs",
                       _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options.encode())
    return rc == 0


def unmount(path: Path) -> bool:
    """Detach the scratch tmpfs on ``path`` (never following a link); its files go with it."""
    return _libc().umount2(os.fsencode(path), _MNT_DETACH | _UMOUNT_NOFOLLOW) == 0


def quota_available() -> bool:
    """Whether this process can give each worker start its own size-capped tmpfs (probed once)."""
    import tempfile
    probe = Path(tempfile.mkdtemp(prefix="backprop-lab-probe-"))
    try:
        if not mount_quota(probe, 1024**2, None, None):
            return False
        unmount(probe)
        return True
    finally:
        os.rmdir(probe)


def _mounts() -> list[tuple[str, str]]:
    """(source, mount point) of this mount namespace's mounts, from /proc/self/mountinfo."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields, rest = left.split(), right.split()
                if len(fields) > 4 and len(rest) > 1:
                    point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
                    found.append((rest[1], point.replace("\\134", "\\")))
    except OSError:
        pass
    return found


def sweep_stale_mounts() -> list[str]:
    """Unmount scratch tmpfs left behind by grader processes that are gone (``kill -9``); a live
    grader's are never touched. Returns the mount points unmounted."""
    done = []
    for source, point in _mounts():
        pid = source[len(MOUNT_SOURCE) + 1:]
        if not (source.startswith(MOUNT_SOURCE + "-") and pid.isdigit()) or process_alive(int(pid)):
            continue
        if unmount(Path(point)):
            done.append(point)
            try:
                os.rmdir(point)
            except OSError:
                pass
    return done
