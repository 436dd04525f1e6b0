"""Which isolation level this machine offers, detected once per process and named in every report."""
from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

SANDBOX_USER = os.environ.get("BACKPROP_LAB_SANDBOX_USER", "grader-sandbox")
SANDBOX_PREFIX = Path(os.environ.get("BACKPROP_LAB_SANDBOX_PREFIX", "/opt/backprop-lab"))
SANDBOX_VENV = SANDBOX_PREFIX / "sandbox-venv"

LEVEL_TEXT = {
    "full": "full: bubblewrap (no network, separate PID/IPC namespaces, solutions, test data and other "
            "submissions masked) + unprivileged user {user} + rlimits",
    "user": "user: unprivileged user {user} + rlimits + file permissions (no bubblewrap: network not blocked)",
    "bwrap": "bwrap: bubblewrap (no network, masked files, read-only system) + rlimits, as the grader's own "
             "user (no separate sandbox user: run `backprop-lab sandbox setup` as root for it)",
    "rlimits": "rlimits only: resource limits and kill of every started process; no user drop, no network "
               "or file isolation (run `backprop-lab sandbox setup` as root for more)",
}


@dataclass(frozen=True)
class Isolation:
    """The isolation in force: level id, the python the worker runs, and who it runs as."""
    level: str
    python: str
    uid: int | None = None
    gid: int | None = None
    bwrap: str | None = None

    @property
    def description(self) -> str:
        return LEVEL_TEXT[self.level].format(user=SANDBOX_USER)


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
        proc = subprocess.run(cmd, capture_output=True, timeout=20, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _dropper(uid: int, gid: int):
    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


@functools.lru_cache(maxsize=1)
def detect() -> Isolation:
    """Probe the machine (cached): root + sandbox user + its python, and a working bubblewrap.

    ``BACKPROP_LAB_ISOLATION`` (full, user, bwrap, rlimits) caps the level, e.g. for tests.
    """
    cap = os.environ.get("BACKPROP_LAB_ISOLATION")
    order = ["full", "user", "bwrap", "rlimits"]
    allowed = order[order.index(cap):] if cap in order else order
    bwrap = shutil.which("bwrap")
    bwrap_args = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
                  "--proc", "/proc"] if bwrap else []
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(SANDBOX_USER)
        except KeyError:
            entry = None
        py = sandbox_python()
        if entry is not None and py.exists():
            drop = _dropper(entry.pw_uid, entry.pw_gid)
            if _probe([str(py), "-I", "-c", "import numpy"], preexec=drop):
                if "full" in allowed and bwrap and _probe(bwrap_args + [str(py), "-I", "-c", "import numpy"],
                                                          preexec=drop):
                    return Isolation("full", str(py), entry.pw_uid, entry.pw_gid, bwrap)
                if "user" in allowed:
                    return Isolation("user", str(py), entry.pw_uid, entry.pw_gid)
    if "bwrap" in allowed and bwrap and _probe(bwrap_args + [sys.executable, "-c", "pass"]):
        return Isolation("bwrap", sys.executable, bwrap=bwrap)
    return Isolation("rlimits", sys.executable)
