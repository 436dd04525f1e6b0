"""The parent side of the grading boundary: one sandboxed worker per submission, requests with deadlines.

Everything that comes back is untrusted: replies are size-capped JSON lines, arrays are loaded with
``allow_pickle=False`` and validated by ``autograder.boundary`` before any check looks at them.
"""
from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..sandbox.launch import LaunchSpec, Limits, become_subreaper, descendants, kill_tree, start
from ..sandbox.level import Isolation

HARNESS = Path(__file__).with_name("harness.py")
GRADCHECK = Path(__file__).parents[1] / "gradcheck.py"   # copied verbatim into the handout as assignment/gradcheck.py
MAX_LINE = 256 * 1024
MAX_NPZ = 64 * 1024**2
LOG_TAIL = 3000
START_RETRY_DELAYS = (1.0, 4.0, 10.0)  # seconds between attempts to start a worker that died before any student code
RETRY_TIMEOUT = 3.0     # a call after one has already timed out in this session gets this long
WATCHED_OPS = {"forward": None, "forward_backward": None, "sgd_step": "g_"}  # op -> input prefix checked


class WorkerStartError(UserError):
    """The sandboxed worker died or hung before it ran any student code: the installation is broken."""


def _open_regular(path: Path, flags: int = os.O_RDONLY) -> int | None:
    """An fd on ``path`` if it is a plain file (never through a symlink, never blocking on a FIFO)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def _display_name(key: str) -> str:
    """An input's name as the feedback says it: params.W, grads.b, X, Y."""
    if key[:2] in ("p_", "g_"):
        return ("params." if key[0] == "p" else "grads.") + key[2:]
    return f"params.{key}" if key in ("W", "b", "V", "c") else key


def _changed(sent: np.ndarray, after: np.ndarray | None) -> bool:
    if after is None or after.shape != sent.shape:
        return True
    try:
        with np.errstate(all="ignore"):
            return not bool(np.array_equal(after, sent, equal_nan=True))
    except (TypeError, ValueError):  # e.g. a string array came back
        return True


@dataclass
class Reply:
    """One answer from the worker. ``kind`` is ok, not_implemented, exception, syntax, memory,
    timeout, crashed or protocol; ``arrays`` holds what the worker wrote (unvalidated)."""
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


class WorkerSession:
    """Runs the student's ``mlp.py`` in a sandboxed worker and calls into it.

    A call that times out or crashes the worker kills the whole process tree; the next call
    starts a fresh worker (re-importing the submission), so one hang costs one check, not all.
    """

    def __init__(self, submission: Path, iso: Isolation, activation: str, masked: list[Path],
                 limits: Limits | None = None, load_timeout: float = 20.0):
        self.iso = iso
        self.activation = activation
        self.masked = masked
        self.limits = limits or Limits()
        self.load_timeout = load_timeout
        self.root = Path(tempfile.mkdtemp(prefix="backprop-lab-"))
        os.chmod(self.root, 0o711)
        self.scratch = self.root / "scratch"
        self.scratch.mkdir(mode=0o700)
        (self.scratch / "submission").mkdir()
        shutil.copy2(submission, self.scratch / "submission" / "mlp.py")
        shutil.copy2(GRADCHECK, self.scratch / "submission" / "gradcheck.py")  # the handout's helper, importable
        self.proc = None
        self.selector: selectors.BaseSelector | None = None
        self.buffer = b""
        self.counter = 0
        self.load_reply: Reply | None = None
        self.ready = False           # the harness said hello (before any student code ran)
        self.timeouts = 0
        self.events: list[str] = []  # what happened (timeouts, crashes, restarts), for the report
        become_subreaper()
        self.spared = frozenset(descendants(os.getpid()))

    # ---- life cycle -----------------------------------------------------------------------
    def _exposed(self) -> list[Path]:
        """Read-only paths bound back over the masks: the harness, the training split and, when the
        worker runs the grader's own interpreter (bwrap/rlimits levels), that interpreter's prefix."""
        from ..mnist import mnist_dir
        paths = [HARNESS, mnist_dir() / "train"]
        if self.iso.python == sys.executable:
            paths += sorted({Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)})
        return paths

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
        spec = LaunchSpec(scratch=self.scratch, harness=HARNESS, masked=self.masked + [self.root.parent],
                          limits=self.limits, exposed=self._exposed())
        # masking the temp root hides other students' scratch folders; ours is bound back on top
        try:
            self.proc = start(self.iso, spec)
        except OSError as exc:
            raise WorkerStartError(f"the sandboxed worker ({self.iso.level} isolation) could not be started: {exc}; "
                                   "run `backprop-lab sandbox check`") from None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.ready = False
        reply = self._request({"op": "load", "activation": self.activation}, self.load_timeout)
        if not self.ready and reply.kind in ("timeout", "crashed", "protocol"):
            raise WorkerStartError(f"the sandboxed worker ({self.iso.level} isolation) did not start: {reply.error}. "
                                   "This is not the submission's fault; run `backprop-lab sandbox check`")
        self.load_reply = reply
        return reply

    def ensure_started(self) -> Reply:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.events.append("worker restarted after it ended")
            return self._start()
        assert self.load_reply is not None
        return self.load_reply

    def stop(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc, self.spared)
            if self.selector is not None:
                self.selector.close()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None

    def close(self) -> None:
        """Kill everything and remove the scratch folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "WorkerSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def output_tail(self) -> str:
        """The last lines the student's code printed (capped). The worker owns the folder, so the log
        is opened without following links: a symlink to a solution must not be read back."""
        fd = _open_regular(self.scratch / "student_output.log")
        if fd is None:
            return ""
        try:
            size = os.fstat(fd).st_size
            with os.fdopen(fd, "rb") as fh:
                fh.seek(max(0, size - LOG_TAIL))
                text = fh.read(LOG_TAIL).decode("utf-8", errors="replace")
        except OSError:
            return ""
        return ("... (earlier output cut)\n" if size > LOG_TAIL else "") + text

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
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # garbage written to the protocol fd by student code: ignore
                if isinstance(msg, dict):
                    return msg
                continue
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
        self.stop()
        if kind == "timeout":
            self.timeouts += 1
            text = f"{what} did not finish within {timeout:.0f} s (infinite loop, or far too slow); it was stopped"
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
            if msg.get("event") == "ready":
                self.ready = True
            if msg.get("id") == rid:
                break
        if not msg.get("ok"):
            return Reply(str(msg.get("kind", "exception"))[:20], error=str(msg.get("error", ""))[:4000],
                         traceback=str(msg.get("traceback", ""))[:4000])
        meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else {}
        return Reply("ok", meta=meta, seconds=float(msg.get("seconds", 0.0) or 0.0))

    def load_npz(self, name: str) -> dict[str, np.ndarray]:
        """Plain arrays from a worker-written npz: no pickles, no links or FIFOs, size capped (also
        uncompressed, against zip bombs), missing means empty."""
        path = self.scratch / name
        fd = _open_regular(path)
        try:
            if fd is None:
                return {}
            with os.fdopen(fd, "rb") as fh:
                fd = None
                if os.fstat(fh.fileno()).st_size > MAX_NPZ:
                    return {}
                with zipfile.ZipFile(fh) as zf:
                    if sum(i.file_size for i in zf.infolist()) > MAX_NPZ:
                        return {}
                fh.seek(0)
                with np.load(fh, allow_pickle=False) as data:
                    return {k: np.array(data[k]) for k in data.files[:64]}
        except Exception:  # noqa: BLE001 - any malformed file is simply "nothing came back"
            return {}
        finally:
            if fd is not None:
                os.close(fd)
            try:
                path.unlink()
            except OSError:
                pass

    def _write_input(self, tag: str, arrays: dict[str, np.ndarray]) -> str:
        """Write the call's inputs under an unguessable name, refusing to follow anything the worker
        planted in its folder (a symlink there would make this root process write elsewhere)."""
        name = f"in_{tag}_{secrets.token_hex(8)}.npz"
        fd = os.open(self.scratch / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            if self.iso.uid is not None:
                os.fchown(fh.fileno(), self.iso.uid, self.iso.gid)
        return name

    @staticmethod
    def _mutations(op: str, sent: dict[str, np.ndarray], back: dict[str, np.ndarray]) -> list[str]:
        """Which inputs the student's call changed, judged here from the copies the worker sent back
        after the call (the worker's own comparison could be monkeypatched)."""
        prefix = WATCHED_OPS[op]
        changed = []
        for key, value in sent.items():
            if (prefix is None or key.startswith(prefix)) and _changed(value, back.get("after_" + key)):
                changed.append(_display_name(key))
        return changed

    def call(self, op: str, arrays: dict[str, np.ndarray] | None = None, timeout: float = 20.0,
             **args: Any) -> Reply:
        """Run one operation in the worker: inputs as npz, outputs read back as plain arrays."""
        loaded = self.ensure_started()
        if not loaded.ok:
            return loaded
        tag = f"{op}_{self.counter + 1}"
        message: dict[str, Any] = {"op": op, "out": f"out_{tag}.npz", **args}
        if arrays is not None:
            message["in"] = self._write_input(tag, arrays)
        if self.timeouts:
            timeout = min(timeout, RETRY_TIMEOUT)  # one hang costs its full time once, not once per call
        reply = self._request(message, timeout)
        if reply.ok:
            reply.arrays = self.load_npz(message["out"])
            if arrays is not None and op in WATCHED_OPS:
                reply.meta["mutated"] = self._mutations(op, arrays, reply.arrays)
        if arrays is not None:
            try:
                (self.scratch / message["in"]).unlink()
            except OSError:
                pass
        return reply

    # ---- training (streamed checkpoints) --------------------------------------------------
    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the worker's process tree has used so far: every live process
        below the worker plus what they have reaped (cutime/cstime). 0 when no worker runs."""
        from ..sandbox.launch import descendants
        if self.proc is None:
            return 0.0
        ticks = 0
        for pid in {self.proc.pid} | descendants(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime (fields 14-17)
            except (OSError, ValueError, IndexError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")

    def run_delay_seconds(self) -> float:
        """Seconds the worker's live processes spent runnable but waiting for a CPU (/proc/PID/schedstat):
        time the machine's load took from the student, as opposed to time the student's code slept."""
        from ..sandbox.launch import descendants
        if self.proc is None:
            return 0.0
        total = 0
        for pid in {self.proc.pid} | descendants(self.proc.pid):
            try:
                total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9

    def train(self, args: dict[str, Any], schedule: list[int], on_checkpoint, budget: float,
              wall_cap: float, grace: float = 3.0) -> Reply:
        """Start the grader's training loop in the worker with checkpoints at the steps ``schedule``.

        The parent owns the schedule: the i-th checkpoint that arrives is taken as ``schedule[i]``
        (read from ``ckpt_{i}.npz``), one claiming another step is ignored, and the stream ends
        after ``len(schedule)`` checkpoints, whatever the worker sends. ``on_checkpoint(i, step,
        arrays, cpu_used, meta)`` returns True to continue. Student time is the worker tree's CPU
        seconds (``cpu_seconds()``), so other load on the machine costs the student nothing; the
        worker is stopped past ``budget`` (+ ``grace``) CPU seconds or ``wall_cap`` wall seconds.
        """
        loaded = self.ensure_started()
        if not loaded.ok:
            return loaded
        self.counter += 1
        rid = self.counter
        if not self._send({**args, "eval_steps": list(schedule), "op": "train", "id": rid}):
            return self._fail("crashed", "training", budget)
        cpu0, delay0, wall0 = self.cpu_seconds(), self.run_delay_seconds(), time.monotonic()
        wall_deadline = wall0 + wall_cap
        received = ignored = 0
        stopped = False
        parent_time = 0.0
        while True:
            msg = self._read_line(min(wall_deadline, time.monotonic() + 0.5))
            if msg == "timeout":
                # the worker's own wall time: minus the parent's evaluations and minus waiting for a CPU
                # (load from elsewhere), so sleeping counts against the student and load does not
                worker_wall = time.monotonic() - wall0 - parent_time
                delay = self.run_delay_seconds() - delay0
                at_wall_cap = time.monotonic() >= wall_deadline
                if at_wall_cap or worker_wall - delay > budget + grace:
                    spent = {"wall_cap_hit": True, "cap": "wall" if at_wall_cap else "budget",
                             "cpu_seconds": self.cpu_seconds() - cpu0, "run_delay_seconds": delay,
                             "wall_seconds": worker_wall}
                    reply = self._fail("timeout", "training", wall_cap if at_wall_cap else budget)
                    reply.meta.update(spent)
                    return reply
                if self.cpu_seconds() - cpu0 > budget + grace:
                    return self._fail("timeout", "training", budget)
                continue
            if isinstance(msg, str):
                return self._fail(msg, "training", budget)
            if msg.get("event") == "ckpt":
                if stopped:  # told to stop, still sending: end it here
                    self.stop()
                    self.events.append("training: the worker kept sending checkpoints after it was told to stop")
                    return Reply("ok", meta={"stopped": True})
                if received >= len(schedule) or msg.get("step") != schedule[received]:
                    ignored += 1  # not a checkpoint the parent asked for: never evaluated
                    if received >= len(schedule) or ignored > 10 or not self._send({"continue": True}):
                        return self._fail("protocol", "training", budget)
                    continue
                used = self.cpu_seconds() - cpu0
                arrays = self.load_npz(f"ckpt_{received}.npz")
                meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else {}
                step = schedule[received]
                received += 1
                evaluating = time.monotonic()
                go_on = bool(on_checkpoint(received - 1, step, arrays, used, meta)) and received < len(schedule)
                parent_time += time.monotonic() - evaluating
                stopped = not go_on
                if not self._send({"continue": go_on}):
                    return self._fail("crashed", "training", budget)
                continue
            if msg.get("id") == rid:
                if not msg.get("ok"):
                    return Reply(str(msg.get("kind", "exception"))[:20], error=str(msg.get("error", ""))[:4000],
                                 traceback=str(msg.get("traceback", ""))[:4000])
                return Reply("ok", meta=msg.get("meta") if isinstance(msg.get("meta"), dict) else {})
