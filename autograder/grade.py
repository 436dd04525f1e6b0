"""Grade one submission: load it, run the five checks against a sandboxed worker, write the reports."""
from __future__ import annotations

import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import __version__
from .config import CHECK_IDS, CourseConfig, load_config
from .errors import IsolationError, SubmissionError
from .reference import load_reference
from .results import CheckResult, GradeReport, to_gradescope, write_json_atomic, write_text_atomic
from .sandbox.level import Isolation, detect
from .submission import load_submission, syntax_error
from .worker.session import WorkerSession
from .checks import common, registry, training
from .checks.common import Context

API_FUNCTIONS = registry.spec("training").functions  # the four functions of the student API
CHECK_LABELS = {check_id: registry.LABELS[check_id] for check_id in CHECK_IDS}


@dataclass
class Environment:
    """What stays the same across a class: config, isolation, reference, data and the budget."""
    config: CourseConfig
    iso: Isolation
    data: object | None
    budget: float
    budget_statement: str


def prepare(config: CourseConfig, with_training: bool = True,
            progress: Callable[[str], None] | None = None, iso: Isolation | None = None) -> Environment:
    """Detect isolation (or take ``iso``, detected by the batch's parent), load MNIST and calibrate the
    training budget (cached per machine).

    Refuses (IsolationError, exit 2) when the machine offers less than ``[sandbox] minimum_isolation``."""
    from .calibration import budget_for, reference_time
    from .mnist import load_mnist
    iso = iso or detect()
    minimum = config.sandbox.minimum_isolation
    if not iso.at_least(minimum):
        raise IsolationError(f"this machine offers {iso.level} isolation, below the course's minimum "
                             f"({minimum}, course.toml [sandbox] minimum_isolation); run `backprop-lab sandbox "
                             "setup` as root, or lower the minimum")
    if not with_training:
        return Environment(config, iso, None, 0.0, "training not graded")
    data = load_mnist(fetch=True)

    def measure() -> float:
        if progress:
            progress(f"calibrating the training budget: training the reference ({config.activation}) once")
        return _reference_time_to_target(config, iso, data)

    t_ref, _ = reference_time(config, iso.level, measure)
    budget, statement = budget_for(config, t_ref)
    return Environment(config, iso, data, budget, statement)


def _reference_time_to_target(config: CourseConfig, iso: Isolation, data) -> float:
    from .reference import reference_source
    ref = load_reference(config.activation)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mlp.py"
        src.write_text(reference_source(config.activation))
        with WorkerSession(src, iso, config.activation, config.sandbox) as session:
            ctx = Context(config, ref, session)
            result = training.run(ctx, data, budget=600.0, budget_statement="calibration", seed=config.seed("calibration"))[0]
    seconds = result.evidence.get("time_to_target_s")
    if seconds is None:
        raise RuntimeError(f"calibration failed: the reference did not reach the target ({result.message})")
    return float(seconds)


def _run_check(check_id: str, fn: Callable[[], list[CheckResult]], config: CourseConfig,
               session: WorkerSession | None = None) -> list[CheckResult]:
    """Run one check; a grader-side crash becomes a zero result that says so (never hidden); past the
    per-student wall-clock cap the check is not run and scores zero, saying why."""
    spec = registry.spec(check_id)
    if session is not None and session.remaining() <= 0:
        return spec.zero(config, f"not run: grading this submission reached the per-student time cap of "
                                 f"{config.sandbox.student_wall_s:.0f} s (course.toml [sandbox] student_wall_s)",
                         ["wall_cap"])
    try:
        return fn()
    except Exception:  # noqa: BLE001 - reported, not swallowed
        trace = traceback.format_exc(limit=-3)
        return spec.zero(config, f"internal grader error while running this check; tell the course staff.\n{trace}",
                         ["grader_error"])


def _all_zero(config: CourseConfig, message: str, tags: list[str]) -> list[CheckResult]:
    """Zero on every test of every check (and of every enabled extension), for one shared reason."""
    return registry.all_zero(config, message, tags)


def _run_all(ctx: Context, env: Environment, session: WorkerSession) -> None:
    """Every graded check of the registry, in order, appended to ``ctx.results`` as each finishes
    (later checks see the earlier ones' results: ``Context.root_cause``)."""
    results = ctx.results
    for spec in registry.graded(env.config):
        if spec.needs_data and env.data is None:
            results += spec.zero(env.config, "training was not graded in this run (no MNIST).", ["not_checked"])
            continue
        if spec.extension:
            args: tuple = (ctx, spec.points(env.config))
        elif spec.needs_data:
            args = (ctx, env.data, env.budget, env.budget_statement)
        else:
            args = (ctx,)
        results += _run_check(spec.check_id, lambda: spec.run(*args), env.config, session)


def grade_source(source: str, env: Environment, origin: str = "mlp.py",
                 notes: list[str] | None = None) -> GradeReport:
    """Grade ``source`` (the text of an mlp.py) under ``env``."""
    config = env.config
    started = time.perf_counter()
    notes = list(notes or [])
    _, dev = config.secret()
    if dev:
        notes.append("hidden cases use the public development secret (set BACKPROP_LAB_SECRET for a real course)")
    notes.append(f"grading stops after {config.sandbox.student_wall_s:.0f} s per student (wall clock); "
                 f"the worker's memory limit is {config.sandbox.memory_mib} MiB")
    report = GradeReport([], env.iso.description, config.activation, config.year, notes=notes,
                         budget={"seconds": env.budget, "statement": env.budget_statement},
                         grader_version=__version__)
    error = syntax_error(source)
    if error:
        report.results += _all_zero(config, f"mlp.py does not compile, so nothing could run: {error}. "
                                            "Run `python mlp.py` to see the error.", ["syntax_error"])
        report.status = "syntax_error"
        report.seconds = time.perf_counter() - started
        return report
    ref = load_reference(config.activation)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mlp.py"
        src.write_text(source, encoding="utf-8")
        with WorkerSession(src, env.iso, config.activation, config.sandbox) as session:
            session.deadline = time.monotonic() + config.sandbox.student_wall_s
            loaded = session.ensure_started()
            if not loaded.ok:
                why = common.explain_failure("importing mlp.py", loaded)
                report.results += _all_zero(config, f"mlp.py could not be imported: {why}",
                                            common.failure_tag(loaded))
                report.status = "import_error" if loaded.kind not in ("timeout", "crashed") else loaded.kind
            else:
                missing = loaded.meta.get("missing") or []
                if missing:
                    report.notes.append(f"mlp.py does not define {', '.join(map(str, missing))}")
                if set(API_FUNCTIONS) <= {str(m) for m in missing}:  # an empty notebook or file: a TA should look
                    report.status = "no_functions"
                ctx = Context(config, ref, session, results=report.results)  # later checks see earlier ones
                _run_all(ctx, env, session)  # extensions: only those course.toml enables
                tags = report.diagnoses()
                if (tags and all(r.score == 0 for r in report.results) and "not_implemented" in tags
                        and report.status != "no_functions"):
                    report.status = "not_implemented"
            report.student_output = session.output_tail()
            report.events = list(session.events)
    report.seconds = time.perf_counter() - started
    return report


def grade_path(submission: Path | str, env: Environment) -> GradeReport:
    """Grade a .py/.ipynb/.zip/folder. Raises SubmissionError for unusable input."""
    sub = load_submission(submission)
    return grade_source(sub.source, env, sub.origin, sub.notes)


def write_reports(report: GradeReport, out_dir: Path, student: str = "") -> None:
    """``results.json`` (Gradescope schema) and ``feedback.html``, each written atomically."""
    from .report.feedback import render_feedback
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / "results.json", to_gradescope(report))
    write_text_atomic(out_dir / "feedback.html", render_feedback(report, student))


def unreadable_report(config: CourseConfig, problem: str) -> GradeReport:
    """A zero report that says, in every check, why the submission could not be graded (nothing ran)."""
    report = GradeReport([], "not run (the submission could not be read)", config.activation, config.year,
                         status="unreadable", grader_version=__version__)
    report.results += _all_zero(config, f"The submission could not be graded: {problem}. Nothing was run. Submit "
                                        "your mlp.py (or the notebook, or a zip holding mlp.py) again.", ["unreadable"])
    return report


def print_table(report: GradeReport, stream=None) -> None:
    """The report as a table as wide as the terminal; student text is escaped (never rich markup)."""
    from rich.markup import escape
    from rich.table import Table
    from .terminal import console_for, first_line
    console = console_for(stream or sys.stdout)
    table = Table(title=f"score {report.score:g} / {report.max_score:g}  ({escape(report.status)})")
    table.add_column("test", overflow="fold")
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("feedback", overflow="fold", ratio=1)
    for r in report.results:
        mark = "[green]" if r.passed else "[red]"
        table.add_row(escape(r.name), f"{mark}{r.score:g}/{r.max_score:g}", escape(first_line(r.message, 160)))
    console.print(table)
    console.print(f"isolation: {escape(report.isolation)}", highlight=False)
    if report.budget.get("statement"):
        console.print(escape(str(report.budget["statement"])), highlight=False)


def cli_grade(args) -> int:
    config = load_config(activation=args.activation)
    path = Path(args.submission)
    try:
        sub = load_submission(path)
    except SubmissionError as exc:  # unusable input: a zero report with the reason, then exit 2 with one line
        if path.exists():
            try:
                write_reports(unreadable_report(config, str(exc)), Path(args.out))
            except OSError:
                pass  # --out not writable: the one stderr line about the input still comes first
        raise
    env = prepare(config, progress=lambda m: print(m, file=sys.stderr))
    report = grade_source(sub.source, env, sub.origin, sub.notes)
    write_reports(report, Path(args.out))
    print_table(report)
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'feedback.html'}")
    return 0


__all__ = ["Environment", "prepare", "grade_source", "grade_path", "write_reports", "cli_grade",
           "unreadable_report", "SubmissionError"]
