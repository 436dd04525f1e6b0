"""Every check the grader knows, collected from the check modules themselves (issue 11).

Each module under ``autograder/checks/`` that is a check declares, next to its runner, a module-level
``SPEC`` (or ``SPECS`` for several) built with :class:`~autograder.checks.spec.CheckSpec`: id, title,
labels, default points, the student functions it calls, its runner and its words for the README and
the notebook. This module imports every module of the package once and collects those declarations,
ordered by ``order``. ``CHECK_IDS``, the labels of every zero result (grade, batch, Gradescope),
gradebook columns, feedback titles, the README's points table, the notebook prompts and the
otter/nbgrader tests all read it.

Adding a check is one new file, ``autograder/checks/<id>.py`` with its ``SPEC`` and runner (plus its
tests): nothing here or elsewhere lists check ids. Check modules never import this module, ``config``
or the worker at run time (tests/test_registry.py holds them to it), so ``config`` can import it.
"""
from __future__ import annotations

import importlib
import pkgutil
import traceback
from pathlib import Path
from typing import Any

from ..results import CheckResult
from .spec import CheckSpec, split_points, zero_results

_NOT_CHECKS = {"registry", "spec"}


def _collect() -> tuple[CheckSpec, ...]:
    """Every ``SPEC``/``SPECS`` declared by a module of this package, in ``order``; ids are unique and
    each runner lives in the module that declares it."""
    found: dict[str, CheckSpec] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name in _NOT_CHECKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        declared = getattr(module, "SPECS", ()) + ((module.SPEC,) if hasattr(module, "SPEC") else ())
        for one in declared:
            if not isinstance(one, CheckSpec):
                raise TypeError(f"{module.__name__}: SPEC must be a CheckSpec, not {type(one).__name__}")
            if one.check_id in found:
                raise ValueError(f"check id {one.check_id!r} is declared twice ({module.__name__})")
            if one.runner.partition(":")[0] != info.name:
                raise ValueError(f"{module.__name__}: the runner of {one.check_id!r} ({one.runner}) is not in "
                                 "the module that declares it")
            found[one.check_id] = one
    return tuple(sorted(found.values(), key=lambda s: (s.extension, s.order, s.check_id)))


ALL: tuple[CheckSpec, ...] = _collect()
CORE: tuple[CheckSpec, ...] = tuple(s for s in ALL if not s.extension)
EXTENSIONS: tuple[CheckSpec, ...] = tuple(s for s in ALL if s.extension)

BY_ID: dict[str, CheckSpec] = {s.check_id: s for s in ALL}
CHECK_IDS: tuple[str, ...] = tuple(s.check_id for s in CORE)
EXTENSION_IDS: tuple[str, ...] = tuple(s.check_id for s in EXTENSIONS)
LABELS: dict[str, list[str]] = {s.check_id: list(s.labels) for s in CORE + EXTENSIONS}
TITLES: dict[str, str] = {s.check_id: s.title for s in CORE + EXTENSIONS}
EXTENSION_FUNCTIONS: dict[str, tuple[str, ...]] = {s.check_id: s.functions for s in EXTENSIONS}


def spec(check_id: str) -> CheckSpec:
    return BY_ID[check_id]


def enabled_extensions(config: Any) -> list[str]:
    """The extension ids course.toml switches on (none when the config predates extensions)."""
    flags = getattr(config, "extensions", None) or {}
    return [e for e in EXTENSION_IDS if flags.get(e)]


def graded(config: Any) -> list[CheckSpec]:
    """The checks a submission is graded on in ``config``: every core check, then the enabled extensions."""
    return list(CORE) + [BY_ID[e] for e in enabled_extensions(config)]


def max_score(config: Any) -> float:
    return round(sum(s.points(config) for s in graded(config)), 4)


def run_extensions(ctx: Any, only: list[str] | None = None) -> list[CheckResult]:
    """Every enabled extension's results (``only`` overrides the config's choice, e.g. in tests); a grader
    bug in one is reported as that check's zero with ``grader_error``, not hidden."""
    results: list[CheckResult] = []
    for ext in (only if only is not None else enabled_extensions(ctx.config)):
        one = spec(ext)
        try:
            results += one.run(ctx, one.points(ctx.config))
        except Exception:  # noqa: BLE001 - a grader bug is reported, not hidden
            trace = traceback.format_exc(limit=-3)
            results += one.zero(ctx.config, "internal grader error while running this check; tell the course "
                                            f"staff.\n{trace}", ["grader_error"])
    return results


def all_zero(config: Any, message: str, tags: list[str] | None = None) -> list[CheckResult]:
    """Zero on every test of every graded check (core and enabled extensions), for one shared reason:
    the one builder behind grade's syntax/import/unreadable reports, batch's grader-error report and
    Gradescope's failure results, so all of them are out of the same maximum."""
    return [r for s in graded(config) for r in s.zero(config, message, tags)]


__all__ = ["BY_ID", "CHECK_IDS", "CORE", "CheckSpec", "EXTENSIONS", "EXTENSION_FUNCTIONS", "EXTENSION_IDS", "LABELS",
           "TITLES", "all_zero", "enabled_extensions", "graded", "max_score", "run_extensions", "spec", "split_points", "zero_results"]
