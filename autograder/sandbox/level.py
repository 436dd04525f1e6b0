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

#: Strongest first; ``[sandbox] minimum_isolation`` and BACKPROP_LAB_ISOLATION use these names.
LEVELS = ("full", "landlock", "bwrap", "user", "rlimits")
NOBODY = 65534  # bwrap started as root before `sandbox setup`: student code runs as nobody, never as root

#: What each level cannot protect (stated in every report and by `sandbox check`).
GAPS = {
    "full": "nothing known outside the kernel itself",
    "landlock": "the network namespace and PID namespace (other processes are visible in /proc, but "
                "cannot be signalled or traced)",
    "bwrap": "a separate sandbox user per grading slot (it runs as {user_or_nobody})",
    "user": "files readable by every user on this machine, and the network (no bubblewrap, no Landlock)",
    "rlimits": "files, network and other processes of the grader's own user: only resource limits apply",
}


@dataclass(frozen=True)
class Isolation:
    """The isolation in force: level id, the python the worker runs, who it runs as, and its layers."""
    level: str
    python: str
    uid: int | None = None
    gid: int | None = None
    bwrap: str | None = None
    landlock: int = 0          # Landlock ABI applied by the worker to itself (0: none)
    seccomp: bool = False
    cgroups: bool = False

    @property
    def layers(self) -> list[str]:
        out = []
        if self.bwrap:
            out.append("bubblewrap (a root built from the allowlist only, no network, own PID/IPC namespaces)")
        if self.uid is not None:
            out.append(f"unprivileged user {'nobody' if self.uid == NOBODY else SANDBOX_USER}")
        if self.landlock:
            out.append(f"Landlock ABI {self.landlock} (files: the allowlist only"
                       + ("; no TCP" if self.landlock >= 4 else "")
                       + ("; no signals or abstract sockets outside the worker" if self.landlock >= 6 else "") + ")")
        if self.seccomp:
            out.append("seccomp (no network sockets, ptrace, mount, unshare, keyctl, bpf, perf_event_open)")
        out.append("cgroup (memory incl. shared memory, processes, one CPU for the whole worker tree)"
                   if self.cgroups else "no cgroup (not writable here: per-process rlimits only)")
        out.append("rlimits")
        return out

    @property
    def description(self) -> str:
        gap = GAPS[self.level].format(user_or_nobody="nobody" if self.uid == NOBODY else "the grader's own user")
        return f"{self.level}: " + " + ".join(self.layers) + f". Not protected at this level: {gap}."

    def at_least(self, minimum: str) -> bool:
        return LEVELS.index(self.level) <= LEVELS.index(minimum)


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


def _bwrap_works(bwrap: str, python: str, uid: int | None, gid: int | None) -> bool:
    """Start ``python`` inside a root built from its own allowlist, as it will run for students."""
    from ..config import SandboxLimits
    from .allowlist import AllowlistError, derive
    from .launch import LaunchSpec, _bwrap_root
    try:
        allow = derive(python, uid, gid)
    except AllowlistError:
        return False
    spec = LaunchSpec(scratch=Path("/tmp"), harness=Path("/dev/null"), allowlist=allow, limits=SandboxLimits())
    iso = Isolation("full", python, uid, gid, bwrap)
    argv = _bwrap_root(iso, spec) + [python, "-I", "-c", "import numpy"]
    return _probe(argv, preexec=_dropper(uid, gid) if uid is not None else None)


def _seccomp_in(python: str, uid: int | None, gid: int | None) -> bool:
    from .allowlist import AllowlistError, derive
    try:
        return derive(python, uid, gid).seccomp_available
    except AllowlistError:
        return False


@functools.lru_cache(maxsize=1)
def detect() -> Isolation:
    """Probe the machine (cached): root, the sandbox user and its python, bubblewrap, Landlock,
    seccomp and cgroups. ``BACKPROP_LAB_ISOLATION`` (a level name) caps the level, e.g. for tests:
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
    if entry is not None and py.exists() and _probe([str(py), "-I", "-c", "import numpy"],
                                                    preexec=_dropper(entry.pw_uid, entry.pw_gid)):
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
