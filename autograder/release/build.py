"""``backprop-lab release --year YYYY``: build every artifact of a year behind the gate.

The release is a pipeline declared as data (:data:`STEPS`): each step names what it needs and what it
makes, and :func:`check_order` asserts that every need is made by an earlier step, so the order is
checked, not commented. Everything is built in a staging folder next to ``--out`` and moved into
place only when every step (the gate first among those that write) has passed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..config import CourseConfig
from ..errors import UserError
from ..results import swap_in_dir
from .expected import ReleaseTest, build_tests, save_expected
from .gate import GateReport, render_gate, run_gate
from .yearly import ReleasePlan, bind_secret, plan_release

#: The five artifacts of a release, relative to ``dist/<year>/``.
ARTIFACTS = ("handout.zip", "autograder", "gradescope/autograder.zip", "otter", "nbgrader")


@dataclass
class Build:
    """The state a release accumulates, step by step."""
    year: int
    activation: str | None
    out: Path
    dry_run: bool = False
    with_training: bool = True
    course: Path | None = None
    progress: Callable[[str], None] = lambda message: None
    plan: ReleasePlan | None = None
    config: CourseConfig | None = None
    secret_dir: Path | None = None
    tests: list[ReleaseTest] = field(default_factory=list)
    skeleton: str = ""
    gate: GateReport | None = None
    stage: Path | None = None
    copy: Path | None = None
    manifest: dict = field(default_factory=dict)
    student_view: dict[str, bytes] = field(default_factory=dict)
    recorded: dict[tuple[str, str], float] = field(default_factory=dict)
    tamper_sources: dict[str, str] = field(default_factory=dict)
    tampering: list[str] = field(default_factory=list)
    tamper_rows: list = field(default_factory=list)   # tampering.TamperRow per (tool, subject)
    made: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Step:
    """One step: ``run(build)`` may use what ``needs`` names and must provide what ``makes`` names."""
    name: str
    needs: tuple[str, ...]
    makes: tuple[str, ...]
    run: Callable[[Build], None]
    writes: bool  # True when the step writes into the staging folder
    doc: str


# ---- the steps -------------------------------------------------------------------------------------
def _plan(b: Build) -> None:
    if not b.dry_run:  # fail before the gate's minutes, not after them
        from .nbgrader import nbgrader_command
        from .otter import otter_command
        otter_command()
        nbgrader_command()
    b.plan = plan_release(b.year, b.activation, b.course)
    b.secret_dir = Path(tempfile.mkdtemp(prefix="backprop-lab-release-secret-"))
    b.config = bind_secret(b.plan, b.secret_dir)
    b.progress(f"release {b.year}: activation {b.config.activation} ({b.plan.activation_reason}); "
               + ("DEVELOPMENT secret in force (public): set BACKPROP_LAB_SECRET for a real course"
                  if b.plan.dev_secret else f"release secret {b.plan.secret_fingerprint}"))


def _expected(b: Build) -> None:
    from ..handout.writer import render_assignment
    b.tests = build_tests(b.config)
    b.skeleton = render_assignment(b.config)["mlp.py"]


def _gate(b: Build) -> None:
    b.gate = run_gate(b.config, b.skeleton, with_training=b.with_training, tests=b.tests, progress=b.progress)


def _refuse_on_miss(b: Build) -> None:
    if not b.gate.passed:
        raise GateFailed(b.gate)


def _stage(b: Build) -> None:
    b.out.parent.mkdir(parents=True, exist_ok=True)
    b.stage = Path(tempfile.mkdtemp(prefix=f".{b.out.name}.new-", dir=b.out.parent))
    b.stage.chmod(0o755)
    b.manifest = manifest(b)


def _handout(b: Build) -> None:
    from .handout import build_handout
    build_handout(b.config, b.stage / "handout.zip", secrets=secrets_of(b))


def _grader_copy(b: Build) -> None:
    from .gradescope import write_grader_copy
    b.copy = b.secret_dir / "grader-copy"
    write_grader_copy(b.plan, b.copy)


def _local(b: Build) -> None:
    from .gradescope import build_local
    dst = b.stage / "autograder"
    build_local(b.plan, b.copy, dst, b.manifest)
    save_expected(dst / "expected.npz", b.tests, b.config)
    (dst / "tests.json").write_text(json.dumps(
        [{"test_id": t.test_id, "check": t.check_id, "label": t.label, "points": t.points, "hidden": t.hidden}
         for t in b.tests], indent=2) + "\n", encoding="utf-8")


def _gradescope(b: Build) -> None:
    from .gradescope import build_gradescope
    build_gradescope(b.plan, b.copy, b.manifest, b.stage / "gradescope" / "autograder.zip")


def _otter(b: Build) -> None:
    from .otter import build_otter
    b.progress("otter: writing the master notebook and running `otter assign`")
    build_otter(b.config, b.tests, b.stage / "otter", self_test=b.with_training)


def _nbgrader(b: Build) -> None:
    from .nbgrader import build_nbgrader
    b.progress("nbgrader: writing the course and running `nbgrader generate_assignment`")
    build_nbgrader(b.config, b.tests, b.stage / "nbgrader")


def _student_view(b: Build) -> None:
    from .studentview import student_view, subject_sources
    from .tampering import tamper_sources
    b.progress("student view: nbgrader autograde + generate_feedback and otter run on gate and tampering subjects")
    b.tamper_sources = tamper_sources(b.config, b.skeleton)
    view = student_view(b.stage, b.config, subject_sources(b.config) | b.tamper_sources)
    b.student_view, b.recorded = view.files, view.scores


def _tampering(b: Build) -> None:
    from .tampering import sandboxed_scores, tamper_rows
    rows = tamper_rows({k: v for k, v in b.recorded.items() if k[1] in b.tamper_sources},
                       sandboxed_scores(b.config, b.stage, b.tamper_sources))
    b.tamper_rows = rows
    b.tampering = [r.text() for r in rows]
    for line in b.tampering:
        b.progress(f"tampering: {line}")
    bad = [r.text() for r in rows if not r.ok]
    if bad:
        raise UserError("refusing to release: tampering would earn unnoticed credit: " + "; ".join(bad))


def _leak_scan(b: Build) -> None:
    from .hiddenscan import scan
    problems = student_facing_leaks(b.stage, secrets_of(b), b.tests)
    problems += scan(student_files(b.stage) | b.student_view, b.tests)
    if problems:
        raise UserError("refusing to release: student-facing files would leak " + "; ".join(problems[:6]))


def _publish(b: Build) -> None:
    files = sorted(p for p in b.stage.rglob("*") if p.is_file())
    top = dict(b.manifest, tampering=b.tampering, artifacts={str(p.relative_to(b.stage)): _sha256(p) for p in files
                                      if p.relative_to(b.stage).parts[0] in ("handout.zip", "gradescope")})
    (b.stage / "release.json").write_text(json.dumps(top, indent=2) + "\n", encoding="utf-8")
    (b.stage / "gate.txt").write_text(gate_text(b.gate), encoding="utf-8")
    replace_dir(b.stage, b.out)


STEPS: tuple[Step, ...] = (
    Step("plan", ("course.toml", "year"), ("plan", "config"), _plan, False,
         "year, activation (and why) and the release secret derived from the course secret"),
    Step("expected", ("config", "solutions/mlp.py"), ("tests", "skeleton"), _expected, False,
         "the year's cases through the reference: expected values of every otter/nbgrader test; the skeleton"),
    Step("gate", ("config", "tests", "skeleton"), ("gate",), _gate, False,
         "grade reference (with training), skeleton and every mutant; cross-check the otter/nbgrader checks"),
    Step("refuse-on-miss", ("gate",), ("gate-passed",), _refuse_on_miss, False,
         "stop with exit 1 and the gate table unless every row is as expected"),
    Step("stage", ("gate-passed",), ("stage", "manifest"), _stage, True,
         "a staging folder next to --out; nothing is written before this step"),
    Step("handout", ("stage", "config"), ("handout.zip",), _handout, True,
         "the student handout, scanned for solution lines and secrets"),
    Step("grader-copy", ("plan", "stage"), ("grader-copy",), _grader_copy, True,
         "the grader package + reference + the year's course.toml (instructor-side only)"),
    Step("local", ("grader-copy", "tests", "manifest"), ("autograder",), _local, True,
         "autograder/: wrapper script, grader copy, release.secret, expected.npz, tests.json"),
    Step("gradescope", ("grader-copy", "manifest"), ("gradescope/autograder.zip",), _gradescope, True,
         "setup.sh, run_autograder, the grader copy and its requirements"),
    Step("otter", ("stage", "tests"), ("otter",), _otter, True,
         "master notebook + bplab_checks.py, then the real `otter assign`"),
    Step("nbgrader", ("stage", "tests"), ("nbgrader",), _nbgrader, True,
         "nbgrader course source, then the real `nbgrader generate_assignment`"),
    Step("student-view", ("otter", "nbgrader"), ("student-view",), _student_view, True,
         "what a student receives back: nbgrader feedback and otter results of failing gate subjects"),
    Step("tampering", ("student-view",), ("tampering-checked",), _tampering, True,
         "each tampering subject (checks module, numpy, builtins.__import__ patched from a cell) scores 0 in "
         "otter and nbgrader or is flagged: recorded above the sandboxed grader's score"),
    Step("leak-scan", ("handout.zip", "otter", "nbgrader", "student-view", "tampering-checked"), ("scanned",), _leak_scan, True,
         "every student-facing file and the student view: no solution line, no secret, no hidden value "
         "(raw, in decoded base64 blobs, or as numbers)"),
    Step("publish", ("scanned", "autograder", "gradescope/autograder.zip"), ("dist",), _publish, True,
         "release.json and gate.txt, then the staging folder replaces --out in one rename"),
)

INITIAL = frozenset({"course.toml", "year", "solutions/mlp.py"})


def check_order(steps: tuple[Step, ...] = STEPS) -> None:
    """Every need is an initial input or made by an earlier step; nothing writes before the gate."""
    made = set(INITIAL)
    gate_passed = False
    for step in steps:
        missing = [n for n in step.needs if n not in made]
        if missing:
            raise AssertionError(f"release step {step.name!r} needs {missing} before any step makes them")
        if step.writes and not gate_passed:
            raise AssertionError(f"release step {step.name!r} writes before the gate passed")
        made.update(step.makes)
        gate_passed = gate_passed or "gate-passed" in step.makes
    missing = [a for a in ARTIFACTS if a not in made]
    if missing:
        raise AssertionError(f"no release step makes {missing}")


check_order()


class GateFailed(Exception):
    def __init__(self, gate: GateReport):
        super().__init__(f"release gate failed: {len(gate.misses)} miss(es)")
        self.gate = gate


# ---- helpers ---------------------------------------------------------------------------------------
def secrets_of(b: Build) -> list[str]:
    """Strings that must never reach a student: the release secret and the course secret (unless public)."""
    from ..config import load_config
    out = [b.plan.release_secret] if b.plan.release_secret else []
    master, dev = load_config(b.course).secret()
    return out if dev else out + [master]


def student_facing_leaks(stage: Path, secrets: list[str], tests: list[ReleaseTest]) -> list[str]:
    """Leaks in handout.zip, otter's student folder and nbgrader's release folder."""
    from . import nbchecks
    from .handout import leaks_in_files
    hidden = [nbchecks.pack(t.data) for t in tests if t.hidden]
    return leaks_in_files(student_files(stage), secrets, forbidden=hidden)


def student_files(stage: Path) -> dict[str, bytes]:
    """handout.zip's files, otter's student folder and nbgrader's release folder: {name: bytes}."""
    from .handout import zip_files
    from .zipping import folder_files
    files = {f"handout.zip:{k}": v for k, v in zip_files(stage / "handout.zip").items()}
    for folder in (stage / "otter" / "dist" / "student", stage / "nbgrader" / "release"):
        if folder.is_dir():
            files.update({f"{folder.relative_to(stage)}/{k}": v for k, v in folder_files(folder).items()})
    return files


def manifest(b: Build) -> dict:
    return {
        "year": b.year, "activation": b.config.activation, "activation_reason": b.plan.activation_reason,
        "assignment": b.config.assignment, "rubric": b.config.rubric,
        "secret": {"development": b.plan.dev_secret, "fingerprint": b.plan.secret_fingerprint},
        "grader_version": __version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gate": b.gate.to_dict() if b.gate else None,
        "otter_nbgrader_tests": [{"test_id": t.test_id, "points": t.points, "hidden": t.hidden} for t in b.tests],
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gate_text(gate: GateReport) -> str:
    from rich.console import Console
    console = Console(record=True, width=160, file=open(os.devnull, "w"))
    render_gate(gate, console)
    return console.export_text()


def replace_dir(stage: Path, out: Path) -> None:
    """Move ``stage`` to ``out``; an existing ``out`` must be an earlier release (it has release.json)."""
    if out.exists() and not (out / "release.json").is_file():
        raise UserError(f"refusing to replace {out}: it exists and is not a backprop-lab release "
                        "(no release.json); choose another --out")
    swap_in_dir(stage, out)


def run_release(year: int, out: Path, activation: str | None = None, dry_run: bool = False,
                with_training: bool = True, course: Path | None = None,
                progress: Callable[[str], None] | None = None) -> Build:
    """Run the pipeline (up to the gate with ``dry_run``). Raises GateFailed or UserError."""
    b = Build(int(year), activation, Path(out).resolve(), dry_run, with_training, course,
              progress or (lambda message: None))
    try:
        for step in STEPS:
            if dry_run and step.writes:
                break
            started = time.perf_counter()
            step.run(b)
            b.made.update(step.makes)
            b.progress(f"step {step.name}: done in {time.perf_counter() - started:.1f} s")
    finally:
        if b.stage is not None and b.stage.exists():
            shutil.rmtree(b.stage, ignore_errors=True)
        if b.secret_dir is not None:
            shutil.rmtree(b.secret_dir, ignore_errors=True)
    return b


def cli_release(args: argparse.Namespace) -> int:
    """``backprop-lab release --year YYYY [--activation A] [--out DIR] [--dry-run]``."""
    from rich.console import Console
    out = Path(args.out) if args.out else Path("dist") / str(args.year)
    console = Console(width=160)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        b = run_release(args.year, out, args.activation, args.dry_run, progress=progress)
    except GateFailed as failed:
        render_gate(failed.gate, console)
        print(f"backprop-lab: the release gate failed; nothing was written to {out}", file=sys.stderr)
        return 1
    render_gate(b.gate, console)
    if args.dry_run:
        print(f"dry run: the gate passed; nothing was written (a release would go to {out})")
        return 0
    print(f"released {args.year} ({b.config.activation}) to {out}:")
    for name in ARTIFACTS:
        print(f"  {out / name}")
    return 0
