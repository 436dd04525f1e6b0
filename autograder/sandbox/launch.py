"""Start a worker process under the isolation in force, and kill everything it started."""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .level import Isolation

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Limits:
    """OS limits for one worker. Sizes in bytes, times in seconds."""
    address_space: int = 2 * 1024**3
    cpu_seconds: int = 600
    processes: int = 256      # per uid; only enforced for an unprivileged uid
    file_size: int = 64 * 1024**2
    open_files: int = 64


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
        _reap()
        if not alive or time.monotonic() > deadline:
            break
        # A dying PID namespace hands its processes (as zombies) to us, the subreaper, over a few
        # milliseconds: wait for them instead of spinning through the rounds before they arrive.
        time.sleep(0.002)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _reap() -> None:
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
    """What one worker sees: its scratch dir (writable), paths to mask (hidden) under bwrap, and paths
    inside the masks to bind back read-only (the harness, the training split)."""
    scratch: Path
    harness: Path
    masked: list[Path] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    exposed: list[Path] = field(default_factory=list)


def worker_env(scratch: Path) -> dict[str, str]:
    """A clean environment: no secrets of the grader leak into the worker."""
    threads = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
    return {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "TMPDIR": str(scratch), "MPLBACKEND": "Agg", **threads}


def command(iso: Isolation, spec: LaunchSpec) -> list[str]:
    """The argv that starts the harness under ``iso``."""
    inner = [iso.python, "-I", "-B", str(spec.harness)]
    if not iso.bwrap:
        return inner
    argv = [iso.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    emptied = ["/tmp"]
    for path in sorted(spec.masked, key=lambda p: len(p.parts)):
        if any(path == Path(e) or Path(e) in path.parents for e in emptied):
            continue  # already hidden by an emptied parent (e.g. anything under /tmp)
        if path.exists() and path.is_dir():
            argv += ["--tmpfs", str(path)]
            emptied.append(str(path))
        elif path.exists():
            argv += ["--ro-bind", "/dev/null", str(path)]
    for path in spec.exposed:
        if path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(spec.scratch), str(spec.scratch)]
    # The masks are empty tmpfs: read-only, or they would be memory the worker can fill without limit.
    for path in emptied:
        argv += ["--remount-ro", path]
    return argv + ["--chdir", str(spec.scratch), "--"] + inner


def _preexec(iso: Isolation, limits: Limits):
    def setup() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if iso.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            os.setgroups([])
            os.setgid(iso.gid)
            os.setuid(iso.uid)
    return setup


def start(iso: Isolation, spec: LaunchSpec) -> subprocess.Popen:
    """Start the harness in ``spec.scratch`` under ``iso``; stdin/stdout are the protocol pipes."""
    if iso.uid is not None:
        # Only what the parent itself put there, never through a link: on a restart the folder holds
        # whatever the worker planted (a symlink to /etc/passwd must not make us chown that).
        for path in (spec.scratch, spec.scratch / "submission", spec.scratch / "submission" / "mlp.py"):
            try:
                os.chown(path, iso.uid, iso.gid, follow_symlinks=False)
            except OSError:
                pass
    # bwrap as an unprivileged user needs a user namespace, which an RLIMIT_AS of a few GiB allows.
    return subprocess.Popen(command(iso, spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=spec.scratch, env=worker_env(spec.scratch),
                            preexec_fn=_preexec(iso, spec.limits), close_fds=True)
