"""Wall-clock bounds that hold on a busy machine (issue 16): a bound written for a quiet machine is
stretched by how oversubscribed the CPUs are right now, never shrunk below what it says."""
from __future__ import annotations

import os


def load_factor() -> float:
    """max(1, one-minute load average / CPUs this process may use): 1 on a quiet machine, 4 when
    eight runnable processes share two cores (xdist's own workers count as at most one each)."""
    return max(1.0, os.getloadavg()[0] / len(os.sched_getaffinity(0)))


def wall_bound(seconds: float) -> float:
    """``seconds`` on a quiet machine, scaled by :func:`load_factor` under load."""
    return seconds * load_factor()
