"""The training run streamed from the worker: checkpoints at the parent's schedule, the student's
time counted in the worker tree's CPU seconds (a mixin of WorkerSession; it uses the session's
process, cgroup, protocol reader and failure reporting)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..sandbox.launch import descendants
from .protocol import Reply


class TrainingStream:
    """The training part of :class:`autograder.worker.session.WorkerSession`."""

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the worker's process tree has used so far: its cgroup's count
        (every process that ever ran in it) where there is one, else every live process below the
        worker plus what they have reaped (cutime/cstime). 0 when no worker runs."""
        if self.proc is None:
            return 0.0
        if self.group is not None:
            counted = self.group.cpu_seconds()
            if counted is not None:
                return counted
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
        (read from ``ckpt_{i}.npy``), one claiming another step is ignored, and the stream ends
        after ``len(schedule)`` checkpoints, whatever the worker sends. ``on_checkpoint(i, step,
        arrays, cpu_used, meta)`` returns True to continue. Student time is the worker tree's CPU
        seconds (``cpu_seconds()``), so other load on the machine costs the student nothing; the
        worker is stopped past ``budget`` (+ ``grace``) CPU seconds or ``wall_cap`` wall seconds.
        """
        capped = self._capped("training")
        if capped is not None:
            return capped
        budget = min(budget, max(self.remaining() - grace, 0.0))
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
                arrays = self.load_arrays(f"ckpt_{received}.npy")
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
