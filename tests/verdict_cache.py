"""Grade reports shared by the tests of one session, across its xdist workers (issue 16).

Several modules grade the same submission under the same environment: the agreement tests grade every
zoo entry of kind correct/bug (the zoo grades each once already) and every mutant (test_mutants grades
each already). A grading costs about 0.34 s of machine CPU (worker start, numpy import, the checks), and
the suite is CPU-bound, so :func:`graded` grades a (source, environment) once per session and later
callers read the report back.

Only the tests' own code reaches this cache (zoo entries of kind correct/bug, mutants of the reference):
hostile entries are never stored or read. A report is stored as JSON (never pickle) and read back into
the same dataclasses; the key covers everything a verdict depends on: the source, the whole course
config, the secret in force, the isolation level, the training budget, whether MNIST is loaded, and the
grader version. Tests that judge how a grading ran (time, processes, scratch folders: the zoo) grade
afresh and only :func:`remember` what they got.

The folder is made by the session's controller (tests/conftest.py: ``pytest_configure``) and named by
:data:`FOLDER_ENV`, which every xdist worker inherits; with no folder, nothing is cached.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from autograder import __version__
from autograder.grade import Environment, grade_source
from autograder.results import CheckResult, GradeReport, write_json_atomic

FOLDER_ENV = "BACKPROP_LAB_TEST_VERDICTS"


def _folder() -> Path | None:
    named = os.environ.get(FOLDER_ENV)
    return Path(named) if named else None


def key(source: str, env: Environment) -> str:
    """The sha256 of everything the report of grading ``source`` under ``env`` depends on."""
    secret, dev = env.config.secret()
    parts = (source, repr(env.config), secret, str(dev), repr(env.iso), f"{env.budget!r}", env.budget_statement,
             str(env.data is None), __version__)
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _from_json(data: dict) -> GradeReport:
    results = [CheckResult(**r) for r in data.pop("results")]
    return GradeReport(results=results, **data)


def remember(source: str, env: Environment, report: GradeReport) -> None:
    """Store ``report`` as the grading of ``source`` under ``env`` (atomically: readers never see half)."""
    folder = _folder()
    if folder is not None:
        write_json_atomic(folder / f"{key(source, env)}.json", asdict(report))


def graded(source: str, env: Environment) -> GradeReport:
    """``grade_source(source, env)``, graded once per session: a stored report when there is one."""
    folder = _folder()
    if folder is not None:
        path = folder / f"{key(source, env)}.json"
        try:
            return _from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            pass
    report = grade_source(source, env)
    remember(source, env, report)
    return report
