"""Start a worker process under the isolation in force, and kill everything it started."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..blas import one_thread_env
from ..config import SandboxLimits
from .allowlist import Allowlist
from .cgroups import WorkerGroup
from .isolation import Isolation

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process adopt orphans of its descendants (so a setsid'd fork cannot escape)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` in the process tree."""
    tree = _children_map()
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def kill_tree(proc: subprocess.Popen, spared: set[int] | frozenset[int] = frozenset()) -> None:
    """SIGKILL the worker, its process group, and every descendant of this process not in ``spared``.

    Orphans of the worker (double forks, ``setsid``) are re-parented to us because we are a
    subreaper, so walking our own descendants finds them. Repeats until none is left.
    """
    deadline = time.monotonic() + 5.0
    while True:
        targets = {proc.pid} | (descendants(os.getpid()) - set(spared))
        targets.discard(os.getpid())
        alive = False
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
                alive = True
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reap_children()
        if not alive or time.monotonic() > deadline:
            break
        # A dying PID namespace hands its processes (as zombies) to us, the subreaper, over a few
        # milliseconds: wait for them instead of spinning through the rounds before they arrive.
        time.sleep(0.002)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def reap_children() -> None:
    """Collect zombies adopted as subreaper so they do not pile up."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@dataclass
class LaunchSpec:
    """What one worker sees and may use. ``allowlist``: read-only host paths (the interpreter, numpy,
    the harness, the training split); ``scratch``: its one writable folder; ``limits``: the course's
    sandbox limits; ``group``: its control group (None where cgroups are not writable)."""
    scratch: Path
    harness: Path
    allowlist: Allowlist
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    group: WorkerGroup | None = None


def worker_env(scratch: Path) -> dict[str, str]:
    """A clean environment: no secrets of the grader leak into the worker."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "TMPDIR": str(scratch), "MPLBACKEND": "Agg", **one_thread_env()}


@functools.lru_cache(maxsize=1)
def _sonames() -> dict[str, str]:
    """The C library's and libseccomp's names as the loader knows them (found here, where ldconfig is)."""
    return {name: found for name in ("c", "seccomp") if (found := ctypes.util.find_library(name))}


def confinement(iso: Isolation, spec: LaunchSpec) -> dict:
    """What the harness applies to itself before the submission is imported (worker/confine.py)."""
    return {"landlock": iso.landlock > 0, "seccomp": iso.seccomp, "sonames": _sonames(),
            "read_only": [str(p) for p in spec.allowlist.read_only] + ["/dev/null", "/dev/urandom", "/dev/zero"]
            + (["/proc"] if iso.bwrap else []),   # its own PID namespace's /proc; never the host's
            "writable": [str(spec.scratch)] + (["/dev/shm"] if iso.bwrap else []),
            "listable": ["/"] if iso.bwrap else []}   # bubblewrap's root holds the allowlist alone


def _bwrap_root(iso: Isolation, spec: LaunchSpec) -> list[str]:
    """bubblewrap arguments that build the worker's root from nothing but the allowlist."""
    size = str(spec.limits.scratch_mib * 1024**2)
    argv = [iso.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    linked = {link for _, link in spec.allowlist.symlinks}
    for target, link in spec.allowlist.symlinks:
        argv += ["--symlink", target, link]
    # the private mounts first: a bind below /tmp (the session's harness copy, scratch) goes on top
    argv += ["--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--proc", "/proc", "--size", size, "--tmpfs", "/tmp"]
    for path in spec.allowlist.read_only:
        if "/" + path.parts[1] in linked:
            continue  # reached through a top-level symlink: its real path is listed as well
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(spec.scratch), str(spec.scratch),
             "--remount-ro", "/", "--remount-ro", "/dev", "--remount-ro", "/tmp", "--chdir", str(spec.scratch), "--"]
    return argv


def command(iso: Isolation, spec: LaunchSpec) -> list[str]:
    """The argv that starts the harness under ``iso``."""
    inner = [iso.python, "-I", "-B", str(spec.harness), "--confine", json.dumps(confinement(iso, spec))]
    return (_bwrap_root(iso, spec) + inner) if iso.bwrap else inner


def nproc_limit(limits: SandboxLimits, in_cgroup: bool) -> int:
    """RLIMIT_NPROC for the worker's uid. It counts every process of that uid on the machine (zombies
    too), so with a cgroup (pids.max = ``processes`` for this worker alone) it is only a second line,
    wide enough that a previous student's dying processes never block the next start."""
    return max(8 * limits.processes, 512) if in_cgroup else limits.processes


def _preexec(iso: Isolation, spec: LaunchSpec):
    limits = spec.limits
    memory = limits.memory_mib * 1024**2
    group = spec.group
    nproc = nproc_limit(limits, group is not None)

    def setup() -> None:
        os.setsid()
        if group is not None:
            group.attach()  # before anything else runs: every descendant is born inside the group
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_rlimit_s, limits.cpu_rlimit_s + 5))
        size = limits.file_size_mib * 1024**2
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if iso.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            os.setgroups([])
            os.setgid(iso.gid)
            os.setuid(iso.uid)
    return setup


def start(iso: Isolation, spec: LaunchSpec) -> subprocess.Popen:
    """Start the harness in ``spec.scratch`` under ``iso``; stdin/stdout are the protocol pipes.

    Nothing here touches a path: the session prepared a fresh scratch folder before this call."""
    # bwrap as an unprivileged user needs a user namespace, which an RLIMIT_AS of a few GiB allows.
    return subprocess.Popen(command(iso, spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=spec.scratch, env=worker_env(spec.scratch),
                            preexec_fn=_preexec(iso, spec), close_fds=True)
