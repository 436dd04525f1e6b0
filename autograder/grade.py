"""Grade one submission: load it, run the five checks against a sandboxed worker, write the reports."""
from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import __version__
from .config import CHECK_IDS, CourseConfig, load_config
from .errors import SubmissionError
from .reference import load_reference
from .results import CheckResult, GradeReport, to_gradescope, write_json_atomic, write_text_atomic
from .sandbox.level import Isolation, detect
from .submission import load_submission, syntax_error
from .worker.session import WorkerSession
from .checks import common, forward, gradients, minibatch, sgd_step, training
from .checks import extensions as ext_checks
from .checks.common import Context, zero_results

CHECK_LABELS = {
    "forward": forward.LABELS,
    "gradients": ["W", "b", "V", "c"],
    "minibatch": minibatch.LABELS,
    "sgd_step": sgd_step.LABELS,
    "training": ["MNIST test error within the time budget"],
}


@dataclass
class Environment:
    """What stays the same across a class: config, isolation, reference, data and the budget."""
    config: CourseConfig
    iso: Isolation
    data: object | None
    budget: float
    budget_statement: str
    masked: list[Path]


def masked_paths(extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """What the worker must never see: solutions, held-out MNIST splits, reports, other submissions.

    The whole project is masked (its git history holds the solutions, tests/ holds bug variants);
    the worker session binds the harness and the training split back, read-only."""
    from .mnist import mnist_dir
    from .paths import PROJECT_ROOT, SOLUTIONS_DIR
    base = [PROJECT_ROOT, SOLUTIONS_DIR, mnist_dir() / "test", mnist_dir() / "valid", Path("/root")]
    return base + [Path(p).resolve() for p in extra]


def restrict_permissions(masks: list[Path]) -> None:
    """Without bubblewrap ("user" level) the masks are file permissions: "other" (the sandbox user)
    loses all access to the masked paths and to everything in the project except the harness and
    the training split, which stay reachable through directories it may traverse but not list."""
    from .mnist import mnist_dir
    from .paths import PROJECT_ROOT
    from .worker.session import HARNESS

    def close(path: Path, keep_traversal: bool = False) -> None:
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
                return
            os.chmod(path, (st.st_mode & ~0o007) | (0o001 if keep_traversal and stat.S_ISDIR(st.st_mode) else 0))
        except OSError:
            pass

    for path in masks:
        if path != PROJECT_ROOT:
            close(path)
    keep = [p for p in (HARNESS, mnist_dir() / "train") if PROJECT_ROOT in p.parents]
    chains = {a for k in keep for a in [k, *k.parents] if a == PROJECT_ROOT or PROJECT_ROOT in a.parents}
    for folder in sorted(chains - set(keep), key=lambda p: len(p.parts)):
        close(folder, keep_traversal=True)
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry not in chains:
                close(entry)


def prepare(config: CourseConfig, with_training: bool = True, extra_masks: tuple[Path, ...] = (),
            progress: Callable[[str], None] | None = None) -> Environment:
    """Detect isolation, load MNIST and calibrate the training budget (cached per machine)."""
    from .calibration import budget_for, reference_time
    from .mnist import load_mnist
    iso = detect()
    masks = masked_paths(extra_masks)
    if iso.level == "user":
        restrict_permissions(masks)
    if not with_training:
        return Environment(config, iso, None, 0.0, "training not graded", masks)
    data = load_mnist(fetch=True)

    def measure() -> float:
        if progress:
            progress(f"calibrating the training budget: training the reference ({config.activation}) once")
        return _reference_time_to_target(config, iso, data, masks)

    t_ref, _ = reference_time(config, iso.level, measure)
    budget, statement = budget_for(config, t_ref)
    return Environment(config, iso, data, budget, statement, masks)


def _reference_time_to_target(config: CourseConfig, iso: Isolation, data, masks: list[Path]) -> float:
    from .reference import reference_source
    ref = load_reference(config.activation)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mlp.py"
        src.write_text(reference_source(config.activation))
        with WorkerSession(src, iso, config.activation, masks) as session:
            ctx = Context(config, ref, session)
            result = training.run(ctx, data, budget=600.0, budget_statement="calibration", seed=config.seed("calibration"))[0]
    seconds = result.evidence.get("time_to_target_s")
    if seconds is None:
        raise RuntimeError(f"calibration failed: the reference did not reach the target ({result.message})")
    return float(seconds)


def _run_check(check_id: str, fn: Callable[[], list[CheckResult]], config: CourseConfig) -> list[CheckResult]:
    """Run one check; a grader-side crash becomes a zero result that says so (never hidden)."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - reported, not swallowed
        trace = traceback.format_exc(limit=-3)
        return zero_results(check_id, CHECK_LABELS[check_id], config.rubric[check_id],
                            f"internal grader error while running this check; tell the course staff.\n{trace}",
                            ["grader_error"])


def _all_zero(config: CourseConfig, message: str, tags: list[str]) -> list[CheckResult]:
    """Zero on every test of every check (and of every enabled extension), for one shared reason."""
    results = []
    for check_id in CHECK_IDS:
        results += zero_results(check_id, CHECK_LABELS[check_id], config.rubric[check_id], message, tags)
    for ext in ext_checks.enabled_extensions(config):
        results += zero_results(ext, ext_checks.LABELS[ext], float(config.extension_points[ext]), message, tags)
    return results


def grade_source(source: str, env: Environment, origin: str = "mlp.py",
                 notes: list[str] | None = None) -> GradeReport:
    """Grade ``source`` (the text of an mlp.py) under ``env``."""
    config = env.config
    started = time.perf_counter()
    notes = list(notes or [])
    _, dev = config.secret()
    if dev:
        notes.append("hidden cases use the public development secret (set BACKPROP_LAB_SECRET for a real course)")
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
        with WorkerSession(src, env.iso, config.activation, env.masked) as session:
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
                ctx = Context(config, ref, session, results=report.results)  # later checks see earlier ones
                report.results += _run_check("forward", lambda: forward.run(ctx), config)
                report.results += _run_check("gradients", lambda: gradients.run(ctx), config)
                report.results += _run_check("minibatch", lambda: minibatch.run(ctx), config)
                report.results += _run_check("sgd_step", lambda: sgd_step.run(ctx), config)
                if env.data is not None:
                    report.results += _run_check(
                        "training", lambda: training.run(ctx, env.data, env.budget, env.budget_statement), config)
                else:
                    report.results += zero_results("training", CHECK_LABELS["training"], config.rubric["training"],
                                                   "training was not graded in this run (no MNIST).", ["not_checked"])
                if ext_checks.enabled_extensions(config):  # optional parts: only those course.toml enables
                    report.results += ext_checks.run(ctx)
                tags = report.diagnoses()
                if tags and all(r.score == 0 for r in report.results) and "not_implemented" in tags:
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


def print_table(report: GradeReport, stream=sys.stdout) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"score {report.score:g} / {report.max_score:g}  ({report.status})")
    table.add_column("test")
    table.add_column("points", justify="right")
    table.add_column("feedback", overflow="fold")
    for r in report.results:
        mark = "[green]" if r.passed else "[red]"
        table.add_row(r.name, f"{mark}{r.score:g}/{r.max_score:g}", r.message.splitlines()[0][:160])
    console = Console(file=stream, width=140)
    console.print(table)
    console.print(f"isolation: {report.isolation}")
    if report.budget.get("statement"):
        console.print(report.budget["statement"])


def cli_grade(args) -> int:
    config = load_config(activation=args.activation)
    path = Path(args.submission)
    sub = load_submission(path)  # unusable input: SubmissionError -> exit 2 with one line
    env = prepare(config, progress=lambda m: print(m, file=sys.stderr))
    report = grade_source(sub.source, env, sub.origin, sub.notes)
    write_reports(report, Path(args.out))
    print_table(report)
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'feedback.html'}")
    return 0


__all__ = ["Environment", "prepare", "grade_source", "grade_path", "write_reports", "cli_grade",
           "SubmissionError"]
