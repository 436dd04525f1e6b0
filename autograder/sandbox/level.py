"""Which isolation level this machine offers, detected once per process and named in every report."""
from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from .isolation import GAPS, LEVELS, NOBODY, SANDBOX_PREFIX, SANDBOX_USER, SANDBOX_VENV, Isolation

__all__ = ["GAPS", "LEVELS", "NOBODY", "SANDBOX_PREFIX", "SANDBOX_USER", "SANDBOX_VENV", "Isolation", "detect",
           "sandbox_python", "slot_user", "with_slot"]


def slot_user(slot: int) -> str:
    """The sandbox user of a parallel grading slot: slot 0 is SANDBOX_USER, slot k is SANDBOX_USER-k."""
    return SANDBOX_USER if slot == 0 else f"{SANDBOX_USER}-{slot}"


def with_slot(iso: Isolation, slot: int) -> Isolation:
    """``iso`` running as the user of grading slot ``slot``, so parallel workers do not share a uid
    (a process limit, or at the user level a scratch folder). Falls back to ``iso`` when that user
    does not exist (created by `backprop-lab sandbox setup`, one per core)."""
    if iso.uid is None or slot == 0:
        return iso
    try:
        entry = pwd.getpwnam(slot_user(slot))
    except KeyError:
        return iso
    return replace(iso, uid=entry.pw_uid, gid=entry.pw_gid)


def sandbox_python() -> Path:
    return SANDBOX_VENV / "bin" / "python"


def _probe(cmd: list[str], preexec=None) -> bool:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=30, preexec_fn=preexec, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _dropper(uid: int, gid: int):
    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


def _allowlist(python: str, uid: int | None, gid: int | None):
    """``python``'s allowlist (``allowlist.derive``: it runs ``python`` as ``uid``, numpy and every
    lib-dynload module imported), or None when it cannot describe itself."""
    from .allowlist import AllowlistError, derive
    try:
        return derive(python, uid, gid)
    except AllowlistError:
        return None


def _bwrap_works(bwrap: str, python: str, uid: int | None, gid: int | None) -> bool:
    """Start ``python`` inside a root built from its own allowlist, as it will run for students."""
    from ..config import SandboxLimits
    from .launch import LaunchSpec, _bwrap_root
    allow = _allowlist(python, uid, gid)
    if allow is None:
        return False
    spec = LaunchSpec(scratch=Path("/tmp"), harness=Path("/dev/null"), allowlist=allow, limits=SandboxLimits())
    iso = Isolation("full", python, uid, gid, bwrap)
    argv = _bwrap_root(iso, spec) + [python, "-I", "-c", "import numpy"]
    return _probe(argv, preexec=_dropper(uid, gid) if uid is not None else None)


def _seccomp_in(python: str, uid: int | None, gid: int | None) -> bool:
    allow = _allowlist(python, uid, gid)
    return allow is not None and allow.seccomp_available


@functools.lru_cache(maxsize=1)
def detect() -> Isolation:
    """Probe the machine (cached): root, the sandbox user and its python, bubblewrap, Landlock,
    seccomp, cgroups and a size-capped tmpfs per scratch folder; see :func:`_level`."""
    from .scratch import quota_available
    return replace(_level(), scratch_quota=quota_available())


def _level() -> Isolation:
    """The strongest level this machine offers: root, the sandbox user and its python, bubblewrap,
    Landlock, seccomp and cgroups. ``BACKPROP_LAB_ISOLATION`` (a level name) caps the level, e.g. for tests:
    ``landlock`` disables bubblewrap, ``rlimits`` every layer but the limits."""
    from ..worker.confine import landlock_abi
    from . import cgroups
    cap = os.environ.get("BACKPROP_LAB_ISOLATION")
    allowed = LEVELS[LEVELS.index(cap):] if cap in LEVELS else LEVELS
    bwrap = shutil.which("bwrap")
    abi = landlock_abi()
    groups = cgroups.available()
    root = os.geteuid() == 0
    entry = None
    if root:
        try:
            entry = pwd.getpwnam(SANDBOX_USER)
        except KeyError:
            entry = None
    py = sandbox_python()
    # deriving its allowlist runs the sandbox python as that user, numpy and every lib-dynload module
    # imported: the proof that it works (a separate `import numpy` run cost every grader process 0.2 CPU s)
    if entry is not None and py.exists() and _allowlist(str(py), entry.pw_uid, entry.pw_gid) is not None:
        uid, gid, python = entry.pw_uid, entry.pw_gid, str(py)
        sec = _seccomp_in(python, uid, gid)
        if "full" in allowed and bwrap and _bwrap_works(bwrap, python, uid, gid):
            return Isolation("full", python, uid, gid, bwrap, abi, sec, groups)
        if "landlock" in allowed and abi:
            return Isolation("landlock", python, uid, gid, None, abi, sec, groups)
    python = sys.executable
    uid, gid = (NOBODY, NOBODY) if root else (None, None)
    if "bwrap" in allowed and bwrap and _bwrap_works(bwrap, python, uid, gid):
        return Isolation("bwrap", python, uid, gid, bwrap, abi, _seccomp_in(python, uid, gid), groups)
    if "landlock" in allowed and abi and not root:
        return Isolation("landlock", python, None, None, None, abi, _seccomp_in(python, None, None), groups)
    if "user" in allowed and entry is not None and py.exists():
        return Isolation("user", str(py), entry.pw_uid, entry.pw_gid, None, 0,
                         _seccomp_in(str(py), entry.pw_uid, entry.pw_gid), groups)
    return Isolation("rlimits", python, cgroups=groups)
