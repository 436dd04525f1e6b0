"""A control group per worker: memory (shared memory and tmpfs pages included), processes and CPU for
the whole worker tree, whatever it forks.

cgroup v2 where the unified hierarchy has the controllers (memory.max, pids.max, cpu.max); else v1 as
on Debian containers of this era (memory.limit_in_bytes + memsw, pids.max, cpu.cfs_quota_us and
cpuacct.usage). Each group is created below the grader's own group, so the host's limits still apply
above it. Where no hierarchy is writable (not root, read-only /sys), ``create`` returns None and the
report says that only rlimits bound the worker.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(os.environ.get("BACKPROP_LAB_CGROUP_ROOT", "/sys/fs/cgroup"))
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
PERIOD_US = 100_000


def _own_paths() -> dict[str, str]:
    """This process's group per v1 controller ("" for the v2 unified one), from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


@dataclass
class WorkerGroup:
    """The groups of one worker (one folder per hierarchy), made fresh for it."""
    folders: dict[str, Path]
    version: int
    procs_files: list[Path] = field(default_factory=list)

    def attach(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the calling process, as used in a preexec hook) into every group."""
        pid = pid or os.getpid()
        for procs in self.procs_files:
            _write(procs, str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                found |= {int(x) for x in procs.read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) of every process that ever ran in the group."""
        try:
            if self.version == 2:
                for line in (self.folders["unified"] / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec"):
                        return int(line.split()[1]) / 1e6
                return None
            return int((self.folders["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError, KeyError):
            return None

    def hit_memory_limit(self) -> bool:
        """True when the group's memory limit refused an allocation or OOM-killed a process."""
        try:
            if self.version == 2:
                events = (self.folders["unified"] / "memory.events").read_text()
                return any(line.split()[0] in ("oom_kill", "max") and int(line.split()[1]) > 0
                           for line in events.splitlines())
            mem = self.folders["memory"]
            oom = dict(line.split() for line in (mem / "memory.oom_control").read_text().splitlines())
            return int(oom.get("oom_kill", 0)) > 0 or int((mem / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError, KeyError, IndexError):
            return False

    def kill_all(self, seconds: float = 5.0) -> None:
        """SIGKILL every process in the group until it is empty (or ``seconds`` pass)."""
        deadline = time.monotonic() + seconds
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)

    def remove(self) -> None:
        """Kill what is left and remove the groups (a group with processes cannot be removed)."""
        self.kill_all()
        for folder in self.folders.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)


def _v2_usable() -> Path | None:
    for base in (ROOT, ROOT / "unified"):
        controllers = base / "cgroup.controllers"
        if controllers.exists() and {"memory", "pids"} <= set(controllers.read_text().split()):
            return base
    return None


PREFIX = "backprop-lab-"        # group names: PREFIX + creating pid + "-" + random hex
_swept = False


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(parents: list[Path]) -> list[Path]:
    """Remove worker groups below ``parents`` whose creating grader process is gone (a batch killed
    with ``kill -9`` leaves them behind, processes included). A live creator's groups are never
    touched, so parallel grader processes do not disturb each other. Returns the folders removed."""
    removed = []
    for parent in parents:
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for folder in entries:
            pid_text = folder.name[len(PREFIX):].split("-", 1)[0]
            if not (folder.name.startswith(PREFIX) and pid_text.isdigit() and folder.is_dir()):
                continue
            if process_alive(int(pid_text)):
                continue
            group = WorkerGroup({"stale": folder}, 1, procs_files=[folder / "cgroup.procs"])
            group.remove()
            if not folder.exists():
                removed.append(folder)
    return removed


def create(memory_bytes: int, processes: int, cpus: float = 1.0) -> WorkerGroup | None:
    """A fresh group for one worker with the given limits, or None where cgroups are not writable.
    The first call of a process first sweeps the groups dead grader processes left behind."""
    global _swept
    if os.geteuid() != 0 or os.environ.get("BACKPROP_LAB_NO_CGROUPS"):
        return None
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    own = _own_paths()
    if not _swept:
        _swept = True
        v2 = _v2_usable()
        if v2 is not None and "" in own and not (ROOT / "memory").is_dir():
            sweep_stale([v2 / own[""].lstrip("/")])
        else:
            sweep_stale([ROOT / c / own.get(c, "/").lstrip("/") for c in V1_CONTROLLERS if (ROOT / c).is_dir()])
    made: dict[str, Path] = {}
    try:
        base = _v2_usable()
        if base is not None and "" in own and not (ROOT / "memory").is_dir():
            folder = base / own[""].lstrip("/") / name
            folder.mkdir()
            made["unified"] = folder
            _write(folder / "memory.max", str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(processes))
            if (folder / "cpu.max").exists():
                _write(folder / "cpu.max", f"{int(cpus * PERIOD_US)} {PERIOD_US}")
            return WorkerGroup(made, 2, procs_files=[folder / "cgroup.procs"])
        for controller in V1_CONTROLLERS:
            if not (ROOT / controller).is_dir():
                raise OSError(f"no {controller} hierarchy")
            folder = ROOT / controller / own.get(controller, "/").lstrip("/") / name
            folder.mkdir()
            made[controller] = folder
        mem = made["memory"]
        _write(mem / "memory.limit_in_bytes", str(memory_bytes))
        if (mem / "memory.memsw.limit_in_bytes").exists():
            try:
                _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))  # no escape into swap
            except OSError:
                pass
        _write(made["pids"] / "pids.max", str(processes))
        _write(made["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
        _write(made["cpu"] / "cpu.cfs_quota_us", str(int(cpus * PERIOD_US)))
        procs = [made[c] / "cgroup.procs" for c in V1_CONTROLLERS]
        return WorkerGroup(made, 1, procs_files=procs)
    except OSError:
        WorkerGroup(made, 1).remove()
        return None


def available() -> bool:
    """Whether this process can create worker groups (probed with a throwaway group)."""
    group = create(64 * 1024**2, 8)
    if group is None:
        return False
    group.remove()
    return True
