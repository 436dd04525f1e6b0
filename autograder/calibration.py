"""The training budget: max(floor, factor x the reference's time-to-target measured on this machine),
in CPU seconds of the worker's process tree (``WorkerSession.cpu_seconds``), so load from other
processes does not shrink it; wall time is only the outer cap (checks/training.py).

The reference is trained once per machine and activation through the same sandboxed loop as a
student, and its time is cached in the MNIST cache folder (keyed by machine and grader version).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from . import __version__
from .config import CourseConfig
from .paths import cache_dir
from .results import write_json_atomic


def _machine_key(activation: str, level: str = "") -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}|{cpu}|numpy {np.__version__}|grader {__version__}|{activation}|{level}|cpu-seconds"


def calibration_file() -> Path:
    return cache_dir() / "calibration.json"


def reference_time(config: CourseConfig, level: str, measure) -> tuple[float, bool]:
    """(seconds, from_cache). ``measure()`` trains the reference and returns its time-to-target."""
    path = calibration_file()
    key = _machine_key(config.activation, level)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if isinstance(table.get(key), (int, float)) and table[key] > 0:
        return float(table[key]), True
    seconds = float(measure())
    table[key] = seconds
    write_json_atomic(path, table)
    return seconds, False


def budget_for(config: CourseConfig, t_ref: float) -> tuple[float, str]:
    """(budget seconds, the sentence stated in every report)."""
    t = config.training
    budget = max(t.budget_floor_s, t.budget_factor * t_ref)
    return budget, (f"training budget {budget:.1f} CPU seconds = max({t.budget_floor_s:g} s, {t.budget_factor:g} x "
                    f"{t_ref:.2f} s, the reference's CPU time to {t.target_error:.0%} on this machine)")
