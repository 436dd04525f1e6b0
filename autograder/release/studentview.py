"""What a student receives from the otter and nbgrader versions, produced with the real tools.

The release grades gate subjects (our own mutants: trusted code) with ``nbgrader autograde`` +
``nbgrader generate_feedback`` and with ``otter run -a autograder.zip``, and returns the files a
student would get back (feedback HTML; otter's results.json and printed output) for
:mod:`.hiddenscan`. A failing subject is used on purpose: tracebacks are where hidden data used to
surface.
"""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CourseConfig
from ..errors import UserError
from .notebook import NOTEBOOK
from .zipping import folder_files

#: gate subjects whose feedback is scanned: one fails hidden gradient/minibatch/training tests, one forward's,
#: one sgd_step's and training's (in every grader, so its recorded score is the sandboxed one: the honest
#: subject of the crosscheck test)
SUBJECTS = ("grad_sign_flip", "naive_softmax", "sgd_ascends")


def subject_sources(config: CourseConfig, names=SUBJECTS) -> dict[str, str]:
    from ..mutants import mutant_sources
    catalogue = mutant_sources(config.activation)
    return {name: catalogue[name] for name in names}


def _tail(proc) -> str:
    return "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-10:])


def _run_nbgrader(args: list[str], course: Path) -> None:
    from .nbgrader import run_nbgrader
    proc = run_nbgrader(args, course)
    if proc.returncode != 0:
        raise UserError(f"`nbgrader {' '.join(args)}` failed on the gate subjects (exit {proc.returncode}):\n"
                        f"{_tail(proc)}")


@dataclass
class StudentView:
    files: dict[str, bytes] = field(default_factory=dict)            # what students get back
    scores: dict[tuple[str, str], float] = field(default_factory=dict)  # (otter|nbgrader, subject) -> total


def nbgrader_view(built: Path, config: CourseConfig, sources: dict[str, str], work: Path) -> StudentView:
    """Autograde ``sources`` in a copy of the nbgrader course ``built``: feedback files and totals."""
    from .nbgrader import assignment_id, scores_from_gradebook
    from .otter import submission_notebook
    aid = assignment_id(config)
    course = Path(work) / "nbgrader-course"
    shutil.copytree(built, course, ignore=shutil.ignore_patterns("release"))
    _run_nbgrader(["generate_assignment", aid, "--force"], course)  # the gradebook the release dropped
    released = course / "release" / aid / NOTEBOOK
    for student, source in sources.items():
        folder = course / "submitted" / student / aid
        folder.mkdir(parents=True)
        submission_notebook(released, source, folder / NOTEBOOK)
    for args in (["autograde", aid, "--create"], ["generate_feedback", aid, "--force"]):
        _run_nbgrader(args, course)
    feedback = course / "feedback"
    files = {f"nbgrader feedback/{k}": v for k, v in folder_files(feedback).items()} if feedback.is_dir() else {}
    if len(files) < len(sources):
        raise UserError(f"`nbgrader generate_feedback` wrote {len(files)} file(s) for {len(sources)} subjects")
    scores = {("nbgrader", s): round(sum(scores_from_gradebook(course, aid, s).values()), 4) for s in sources}
    return StudentView(files, scores)


def otter_view(otter_dir: Path, sources: dict[str, str], work: Path) -> StudentView:
    """``otter run`` each of ``sources`` against ``otter_dir/autograder.zip``: results.json, output, totals."""
    from .otter import results_by_question, run_otter, submission_notebook
    student_nb = Path(otter_dir) / "dist" / "student" / NOTEBOOK

    def one(name: str) -> dict[str, bytes]:
        folder = Path(work) / f"otter-{name}"
        (folder / "out").mkdir(parents=True)
        submission_notebook(student_nb, sources[name], folder / NOTEBOOK)
        proc = run_otter(["run", "-a", str(Path(otter_dir) / "autograder.zip"), "-o", "out", NOTEBOOK], folder)
        if proc.returncode != 0 or not (folder / "out" / "results.json").is_file():
            raise UserError(f"`otter run` failed on the gate subject {name} (exit {proc.returncode}):\n{_tail(proc)}")
        files = {f"otter {name}/{k}": v for k, v in folder_files(folder / "out").items()} | {
            f"otter {name}/stdout": (proc.stdout + proc.stderr).encode()}
        return StudentView(files, {("otter", name): round(sum(results_by_question(folder / "out" / "results.json")
                                                              .values()), 4)})

    view = StudentView()
    with ThreadPoolExecutor(2) as pool:
        for part in pool.map(one, sources):
            view.files.update(part.files)
            view.scores.update(part.scores)
    return view


def student_view(stage: Path, config: CourseConfig, sources: dict[str, str] | None = None) -> StudentView:
    """Every file a student would receive back from the staged otter/ and nbgrader/ versions, and the
    total each tool recorded per subject."""
    sources = sources or subject_sources(config)
    with tempfile.TemporaryDirectory(prefix="backprop-lab-student-view-") as work:
        with ThreadPoolExecutor(2) as pool:
            nb = pool.submit(nbgrader_view, Path(stage) / "nbgrader", config, sources, Path(work))
            ot = pool.submit(otter_view, Path(stage) / "otter", sources, Path(work))
            a, b = nb.result(), ot.result()
    return StudentView(a.files | b.files, a.scores | b.scores)
