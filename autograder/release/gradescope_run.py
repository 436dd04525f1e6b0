"""What Gradescope's ``run_autograder`` runs: grade ``<root>/submission`` into ``<root>/results/results.json``.

``<root>`` is ``BACKPROP_LAB_AUTOGRADER_ROOT`` (default ``/autograder``), so a test can run the whole
thing in a fake tree. The submission is graded by the same grader and sandbox as ``backprop-lab
grade``; student code never runs in this process. ``results.json`` is written once, by this
process, atomically, after grading: a file planted by the submission is deleted first and replaced
at the end, and stdout is never redirected into it. Any failure still yields a valid results.json.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

SECRET_FILE = "release.secret"
SECRET_ENV = "BACKPROP_LAB_RELEASE_SECRET"


def autograder_root() -> Path:
    return Path(os.environ.get("BACKPROP_LAB_AUTOGRADER_ROOT", "/autograder"))


def _failure(message: str, status: str) -> dict:
    """A schema-valid results.json giving 0 with ``message`` (every check listed)."""
    from types import SimpleNamespace
    from ..checks.registry import CHECK_IDS, all_zero
    from ..config import load_config
    from ..results import GradeReport, to_gradescope
    try:
        config = load_config()
    except Exception:  # noqa: BLE001 - even a broken config must give Gradescope a results.json
        config = SimpleNamespace(rubric={c: 0.0 for c in CHECK_IDS}, extensions={}, extension_points={}, year=0,
                                 activation="?")
    report = GradeReport([], "not started", config.activation, config.year, status=status, notes=[message])
    report.results += all_zero(config, message, [status])  # the enabled extensions too: out of the same maximum
    return to_gradescope(report)


def grade_submission(root: Path) -> dict:
    from ..config import load_config
    from ..errors import SubmissionError, UserError
    from ..grade import grade_source, prepare
    from ..results import to_gradescope
    from ..submission import load_submission
    try:
        config = load_config()
        submission = load_submission(root / "submission")
    except SubmissionError as exc:
        return _failure(f"your submission could not be graded: {exc}", "unusable_submission")
    except UserError as exc:
        return _failure(f"the autograder is misconfigured; tell the course staff: {exc}", "grader_error")
    env = prepare(config, progress=lambda m: print(m, flush=True))
    report = grade_source(submission.source, env, submission.origin, submission.notes)
    return to_gradescope(report)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def main() -> int:
    root = autograder_root()
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    _remove(results)  # whatever was there before is not ours
    secret = root / "source" / SECRET_FILE
    if secret.is_file():
        os.environ[SECRET_ENV] = secret.read_text().strip()  # this process only: the worker's env is clean
    else:
        os.environ.pop(SECRET_ENV, None)
    started = time.perf_counter()
    try:
        data = grade_submission(root)
    except Exception:  # noqa: BLE001 - reported in results.json, never a missing file
        data = _failure("internal grader error; tell the course staff.\n" + traceback.format_exc(limit=-4),
                        "grader_error")
    data["execution_time"] = round(time.perf_counter() - started, 3)
    from ..results import write_json_atomic
    from .gradescope_summary import with_summary
    data = with_summary(data)  # Gradescope shows this Markdown; feedback.html it never shows
    _remove(results)
    write_json_atomic(results, data)
    print(f"backprop-lab: score {data['score']:g} / {data['max_score']:g}; wrote {results}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
