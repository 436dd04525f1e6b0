"""The isolation in force: its level, the worker's Python and user, and the layers applied."""
from __future__ import annotations

import os
from dataclasses import dataclass
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
    scratch_quota: bool = False  # each worker start's scratch folder is its own size-capped tmpfs

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
        if self.scratch_quota:
            out.append("scratch folder: its own size-capped tmpfs per worker start, nothing in it executable")
        out.append("rlimits")
        return out

    @property
    def description(self) -> str:
        gap = GAPS[self.level].format(user_or_nobody="nobody" if self.uid == NOBODY else "the grader's own user")
        return f"{self.level}: " + " + ".join(self.layers) + f". Not protected at this level: {gap}."

    def at_least(self, minimum: str) -> bool:
        return LEVELS.index(self.level) <= LEVELS.index(minimum)
