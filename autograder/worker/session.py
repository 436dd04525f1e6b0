"""The parent side of the grading boundary: one sandboxed worker per submission, requests with deadlines.

Everything that comes back is untrusted: replies are size-capped JSON lines, arrays are loaded with
``allow_pickle=False`` and validated by ``autograder.boundary`` before any check looks at them.
"""
from __future__ import annotations

import json
import os
import secrets
import selectors
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SandboxLimits
from ..errors import UserError
from ..sandbox import cgroups
from ..sandbox.allowlist import Allowlist, derive
from ..sandbox.cgroups import WorkerGroup
from ..sandbox.launch import LaunchSpec, become_subreaper, descendants, kill_tree, start
from ..sandbox.level import Isolation
from ..sandbox.scratch import fresh_folder, mount_quota, remove_tree, unmount, write_new_file
from ..sandbox.stage import harness_copy, training_split
from .training_stream import TrainingStream
from ..checks.registry import EXTENSION_FUNCTIONS
from . import arrayfile
from .protocol import Reply, MAX_LINE, MAX_ARRAY_FILE, changed, display_name, open_regular, parse_reply, read_arrays

__all__ = ["CONFINE", "HARNESS", "MAX_LINE", "MAX_ARRAY_FILE", "Reply", "WorkerSession", "WorkerStartError", "parse_reply"]

HARNESS = Path(__file__).with_name("harness.py")
CONFINE = Path(__file__).with_name("confine.py")
ARRAYFILE = Path(__file__).with_name("arrayfile.py")   # loaded by the harness by path, like confine.py
STUDENTLOG = Path(__file__).with_name("studentlog.py")
GRADCHECK = Path(__file__).parents[1] / "gradcheck.py"   # copied verbatim into the handout as assignment/gradcheck.py
LOG_TAIL = 3000
START_RETRY_DELAYS = (1.0, 4.0, 10.0)  # seconds between attempts to start a worker that died before any student code
#: the optional parts' functions the grader may call in the worker (one list: checks/registry.py)
EXTENSION_CALLS = sorted({f for fns in EXTENSION_FUNCTIONS.values() for f in fns})
WATCHED_OPS = {"forward": None, "forward_backward": None, "sgd_step": "g_"}  # op -> input prefix checked


class WorkerStartError(UserError):
    """The sandboxed worker died or hung before it ran any student code: the installation is broken."""


class WorkerSession(TrainingStream):
    """Runs the student's ``mlp.py`` in a sandboxed worker and calls into it.

    A call that times out or crashes the worker kills the whole process tree; the next call
    starts a fresh worker (re-importing the submission), so one hang costs one check, not all.
    """

    def __init__(self, submission: Path, iso: Isolation, activation: str, limits: SandboxLimits | None = None,
                 extra_files: dict[str, bytes] | None = None):
        self.iso = iso
        self.activation = activation
        self.limits = limits or SandboxLimits()
        self.load_timeout = self.limits.load_timeout_s
        # the handout's helper is importable next to mlp.py, as in assignment/
        self.files = {"mlp.py": Path(submission).read_bytes(), "gradcheck.py": GRADCHECK.read_bytes(),
                      **(extra_files or {})}
        self.root = Path(tempfile.mkdtemp(prefix="backprop-lab-"))  # only the grader writes here
        os.chmod(self.root, 0o711)
        self.starts = 0
        self.scratch = self.root / "scratch-0"   # made fresh by every worker start
        self.group: WorkerGroup | None = None
        self._allowlist: Allowlist | None = None
        self.earlier_output = ""                 # what earlier (restarted) workers printed
        self.proc = None
        self.selector: selectors.BaseSelector | None = None
        self.buffer = b""
        self.counter = 0
        self.load_reply: Reply | None = None
        self.ready = False           # the harness said hello (before any student code ran)
        self.layers: list[str] = []  # what the harness applied to itself (Landlock, seccomp)
        self.timeouts = 0
        self.deadline: float | None = None  # time.monotonic() past which nothing more runs (per-student cap)
        self.events: list[str] = []  # what happened (timeouts, crashes, restarts), for the report
        self.scratch_used = False    # a worker ran in the current scratch: the next start gets a new one
        self.scratch_mounted = False  # the current scratch is a tmpfs of its own (unmounted on stop)
        self._fresh_scratch()
        # the harness runs from a copy every user can read: the project may sit in a closed home folder
        self.harness = harness_copy(self.root, [HARNESS, CONFINE, ARRAYFILE, STUDENTLOG], self.allowlist_base().cache_tag)
        self._train: Path | None = None
        become_subreaper()
        self.spared = frozenset(descendants(os.getpid()))

    # ---- life cycle -----------------------------------------------------------------------
    def allowlist(self) -> Allowlist:
        """Everything the worker may read: its interpreter's own files (derived from it), the harness,
        confine.py and the training split. Nothing else of the host. (Empty where no layer enforces
        it: the user and rlimits levels.)"""
        if self._allowlist is None:
            base = self.allowlist_base()   # empty exactly where no layer enforces a list
            self._allowlist = base.with_paths([self.harness.parent, self.train_split()]) if base.read_only else base
        return self._allowlist

    def allowlist_base(self) -> Allowlist:
        """The interpreter's own files (derived from it; empty where no layer enforces a list)."""
        if self.iso.bwrap or self.iso.landlock:
            return derive(self.iso.python, self.iso.uid, self.iso.gid)
        return Allowlist(())

    def train_split(self) -> Path:
        """The folder holding the training split's X.npy and y.npy, readable by the worker's user."""
        if self._train is None:
            from ..mnist import mnist_dir
            self._train = training_split(mnist_dir() / "train", self.iso.uid is not None)
        return self._train

    def _fresh_scratch(self) -> None:
        """A new scratch folder and a new copy of the submission for this start: nothing the previous
        worker planted is ever opened, chowned or followed by this (root) process."""
        self.starts += 1
        self.scratch = fresh_folder(self.root, f"scratch-{self.starts}", self.iso.uid, self.iso.gid)
        self.scratch_used = False
        if self.iso.scratch_quota:   # the whole folder size-capped: a tmpfs of its own
            self.scratch_mounted = mount_quota(self.scratch, self.limits.scratch_mib * 1024**2, self.iso.uid,
                                               self.iso.gid)
            if not self.scratch_mounted:
                raise WorkerStartError("the worker's scratch tmpfs could not be mounted; run `backprop-lab sandbox check`")
        sub = fresh_folder(self.scratch, "submission", self.iso.uid, self.iso.gid)
        for name, data in self.files.items():
            write_new_file(sub, name, data, self.iso.uid, self.iso.gid)

    def _start(self) -> Reply:
        """Start the worker; a start that fails before any student code ran is retried with back-off
        (another student's fork bomb can hold the sandbox uid's process limit for a few seconds)."""
        for delay in START_RETRY_DELAYS:
            try:
                return self._start_once()
            except WorkerStartError:
                self.stop()
                self.events.append(f"the sandboxed worker did not start; retrying in {delay:g} s")
                time.sleep(delay)
        return self._start_once()

    def _start_once(self) -> Reply:
        if self.scratch_used or not self.scratch.exists():
            self._drop_scratch()
            self._fresh_scratch()
        self.scratch_used = True
        lim = self.limits
        self.group = cgroups.create(lim.memory_mib * 1024**2, lim.processes) if self.iso.cgroups else None
        if self.iso.cgroups and self.group is None:
            raise WorkerStartError("the worker's cgroup could not be created; run `backprop-lab sandbox check`")
        spec = LaunchSpec(scratch=self.scratch, harness=self.harness, allowlist=self.allowlist(), limits=lim,
                          group=self.group)
        try:
            self.proc = start(self.iso, spec)
        except OSError as exc:
            raise WorkerStartError(f"the sandboxed worker ({self.iso.level} isolation) could not be started: {exc}; "
                                   "run `backprop-lab sandbox check`") from None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.ready = False
        reply = self._request({"op": "load", "activation": self.activation,
                               "extension_functions": EXTENSION_CALLS}, self.load_timeout)
        if not self.ready and reply.kind in ("timeout", "crashed", "protocol"):
            raise WorkerStartError(f"the sandboxed worker ({self.iso.level} isolation) did not start: {reply.error}. "
                                   "This is not the submission's fault; run `backprop-lab sandbox check`")
        self.load_reply = reply
        return reply

    def _check_layers(self, layers: object) -> None:
        """The harness's own word (sent before any student code) on what it applied, against the promise."""
        self.layers = [str(x)[:20] for x in layers] if isinstance(layers, list) else []
        want = (["seccomp"] if self.iso.seccomp else []) + ([f"landlock:{self.iso.landlock}"] if self.iso.landlock else [])
        missing = [w for w in want if w not in self.layers]
        if missing:
            self.stop()
            raise WorkerStartError(f"the sandboxed worker could not apply {', '.join(missing)} "
                                   f"({self.iso.level} isolation promised it); run `backprop-lab sandbox check`")

    def ensure_started(self) -> Reply:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.events.append("worker restarted after it ended")
                self.stop()
            return self._start()
        assert self.load_reply is not None
        return self.load_reply

    def stop(self) -> None:
        """Kill the worker tree, keep what it printed, remove its group and its scratch folder."""
        if self.proc is not None:
            if self.group is not None:
                self.group.kill_all()
            kill_tree(self.proc, self.spared)
            if self.selector is not None:
                self.selector.close()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None
        if self.group is not None:
            self.group.remove()
            self.group = None
        if self.scratch.exists():
            self.earlier_output = (self.earlier_output + self._log_tail())[-LOG_TAIL:]
            self._drop_scratch()

    def _drop_scratch(self) -> None:
        """Remove the current scratch folder: unmount its tmpfs (all its files at once), then the
        (now empty) folder; without a tmpfs, the fd-based iterative removal."""
        if self.scratch_mounted:
            unmount(self.scratch)
            self.scratch_mounted = False
        if self.scratch.exists():
            remove_tree(self.scratch)

    def close(self) -> None:
        """Kill everything and remove the session's folder."""
        self.stop()
        remove_tree(self.root)

    def __enter__(self) -> "WorkerSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def output_tail(self) -> str:
        """The last lines the student's code printed, across restarts (capped)."""
        text = self.earlier_output + (self._log_tail() if self.scratch.exists() else "")
        return ("... (earlier output cut)\n" + text[-LOG_TAIL:]) if len(text) > LOG_TAIL else text

    def _log_tail(self) -> str:
        """The current worker's log tail. The worker owns the folder, so the log is opened without
        following links: a symlink to a solution must not be read back."""
        fd = open_regular(self.scratch / "student_output.log")
        if fd is None:
            return ""
        try:
            size = os.fstat(fd).st_size
            with os.fdopen(fd, "rb") as fh:
                fh.seek(max(0, size - LOG_TAIL - 1))   # one byte more: the caller sees it was cut
                text = fh.read(LOG_TAIL + 1).decode("utf-8", errors="replace")
        except OSError:
            return ""
        return text

    # ---- protocol -------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> bool:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def _read_line(self, deadline: float) -> dict[str, Any] | str:
        """The next JSON object line, or 'timeout' / 'crashed' / 'protocol'."""
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                msg = parse_reply(line)
                if msg is not None:
                    return msg
                continue  # garbage written to the protocol fd by student code: ignore
            if len(self.buffer) > MAX_LINE:
                return "protocol"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if not self.selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return "crashed"
            self.buffer += chunk

    def _fail(self, kind: str, what: str, timeout: float) -> Reply:
        code = self.proc.poll() if self.proc else None
        out_of_memory = kind == "crashed" and self.group is not None and self.group.hit_memory_limit()
        self.stop()
        if kind == "timeout":
            self.timeouts += 1
            text = f"{what} did not finish within {timeout:.0f} s (infinite loop, or far too slow); it was stopped"
        elif out_of_memory:
            kind = "memory"
            text = (f"your code used more than the {self.limits.memory_mib} MiB memory limit during {what} "
                    "and was stopped (avoid huge intermediate arrays)")
        elif kind == "crashed":
            text = f"the worker running your code ended during {what}" + (
                f" (exit status {code})" if code is not None else "") + \
                " (os._exit, a crash, or a resource limit: memory, CPU time, processes)"
        else:
            text = f"the worker sent an unreadable reply during {what}"
        self.events.append(text)
        return Reply(kind, error=text)

    def _request(self, message: dict[str, Any], timeout: float) -> Reply:
        self.counter += 1
        rid = self.counter
        message = {**message, "id": rid}
        what = message["op"]
        deadline = time.monotonic() + timeout
        if not self._send(message):
            return self._fail("crashed", what, timeout)
        while True:
            msg = self._read_line(deadline)
            if isinstance(msg, str):
                return self._fail(msg, what, timeout)
            if msg.get("event") == "ready" and not self.ready:
                self.ready = True
                self._check_layers(msg.get("layers"))
            if msg.get("id") == rid:
                break
        if not msg.get("ok"):
            return Reply(str(msg.get("kind", "exception"))[:20], error=str(msg.get("error", ""))[:4000],
                         traceback=str(msg.get("traceback", ""))[:4000])
        meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else {}
        return Reply("ok", meta=meta, seconds=float(msg.get("seconds", 0.0) or 0.0))

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        """Plain arrays from a worker-written array file (see ``protocol.read_arrays``); the file is removed."""
        return read_arrays(self.scratch / name)

    def _write_input(self, tag: str, arrays: dict[str, np.ndarray]) -> str:
        """Write the call's inputs under an unguessable name, refusing to follow anything the worker
        planted in its folder (a symlink there would make this root process write elsewhere)."""
        name = f"in_{tag}_{secrets.token_hex(8)}{arrayfile.SUFFIX}"
        fd = os.open(self.scratch / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            arrayfile.write(fh, arrays)
            if self.iso.uid is not None:
                os.fchown(fh.fileno(), self.iso.uid, self.iso.gid)
        return name

    @staticmethod
    def _mutations(op: str, sent: dict[str, np.ndarray], back: dict[str, np.ndarray]) -> list[str]:
        """Which inputs the student's call changed, judged here from the copies the worker sent back
        after the call (the worker's own comparison could be monkeypatched)."""
        prefix = WATCHED_OPS[op]
        return [display_name(key) for key, value in sent.items()
                if (prefix is None or key.startswith(prefix)) and changed(value, back.get("after_" + key))]

    def remaining(self) -> float:
        """Seconds left of the per-student wall-clock cap (infinite when none was set)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def _capped(self, what: str) -> Reply | None:
        if self.remaining() > 0:
            return None
        text = (f"{what} was not run: grading this submission reached the per-student time cap of "
                f"{self.limits.student_wall_s:.0f} s")
        self.events.append(text)
        return Reply("timeout", error=text)

    def call(self, op: str, arrays: dict[str, np.ndarray] | None = None, timeout: float | None = None,
             **args: Any) -> Reply:
        """Run one operation in the worker: inputs as an array file, outputs read back as plain arrays.
        ``timeout`` defaults to the course's ``call_timeout_s``; never beyond the per-student cap."""
        capped = self._capped(op)
        if capped is not None:
            return capped
        timeout = min(self.limits.call_timeout_s if timeout is None else timeout, self.remaining())
        loaded = self.ensure_started()
        if not loaded.ok:
            return loaded
        tag = f"{op}_{self.counter + 1}"
        message: dict[str, Any] = {"op": op, "out": f"out_{tag}{arrayfile.SUFFIX}", **args}
        if arrays is not None:
            message["in"] = self._write_input(tag, arrays)
        if self.timeouts:
            timeout = min(timeout, self.limits.retry_timeout_s)  # one hang costs its full time once, not once per call
        reply = self._request(message, timeout)
        if reply.ok:
            reply.arrays = self.load_arrays(message["out"])
            if arrays is not None and op in WATCHED_OPS:
                reply.meta["mutated"] = self._mutations(op, arrays, reply.arrays)
        if arrays is not None:
            try:
                (self.scratch / message["in"]).unlink()
            except OSError:
                pass
        return reply
