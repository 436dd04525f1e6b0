"""What a check declares about itself (:class:`CheckSpec`) and the two helpers every check's points
use. Each check module under ``autograder/checks/`` declares its ``SPEC`` (or ``SPECS``) with this
class, next to its runner; ``registry.py`` collects them. Imports nothing of the grader but the result
type, so the check modules, the registry and ``config`` can all import it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..results import CheckResult


@dataclass(frozen=True)
class CheckSpec:
    """One check id. ``labels`` are its tests (results.json names ``"<id>: <label>"``); ``runner`` is
    ``"module:function"`` under ``autograder.checks``; core runners take ``(ctx)`` (plus
    ``(data, budget, statement)`` when ``needs_data``), extension runners ``(ctx, points)``."""
    check_id: str
    title: str
    labels: tuple[str, ...]
    default_points: float
    runner: str
    functions: tuple[str, ...] = ()
    extension: bool = False
    needs_data: bool = False
    readme: str = ""
    prompt: str = ""
    order: int = 0  # position in results, feedback and the gradebook (core checks first, then extensions)

    def points(self, config: Any) -> float:
        """This check's points in ``config`` (the rubric, or ``extension_points`` for an extension)."""
        table = getattr(config, "extension_points" if self.extension else "rubric", None) or {}
        return float(table.get(self.check_id, self.default_points))

    def zero(self, config: Any, message: str, tags: list[str] | None = None) -> list[CheckResult]:
        """Every test of this check at zero, for one shared reason."""
        return zero_results(self.check_id, list(self.labels), self.points(config), message, tags)

    def run(self, *args: Any) -> list[CheckResult]:
        module, _, name = self.runner.partition(":")
        fn: Callable[..., list[CheckResult]] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return fn(*args)


def split_points(total: float, labels: list[str]) -> list[float]:
    """Split a check's points evenly over its tests (last one takes the rounding)."""
    if not labels:
        return []
    each = round(total / len(labels), 4)
    return [each] * (len(labels) - 1) + [round(total - each * (len(labels) - 1), 4)]


def zero_results(check_id: str, labels: list[str], total: float, message: str,
                 diagnoses: list[str] | None = None) -> list[CheckResult]:
    """Every test of a check failed for the same reason (not implemented, crash, ...)."""
    return [CheckResult(check_id, label, 0.0, pts, message, list(diagnoses or []))
            for label, pts in zip(labels, split_points(total, labels))]
