"""Tampering subjects of the release gate: notebooks that disarm the otter/nbgrader tests from a cell.

otter and nbgrader run the student's cells and their tests in one kernel, so the tests cannot be made
safe from the student's code; what the release proves instead is that tampering earns nothing
unnoticed: each subject, run through the real ``otter run`` and ``nbgrader autograde``, either scores 0
or is flagged by the crosscheck rule (its recorded score is above the sandboxed grader's score of the
same notebook, :mod:`.crosscheck`).

Each subject is a base implementation (the skeleton, or a mutant) with tampering lines appended to
its implementation cell. The bases score 0 on training in any grader (the skeleton raises; the sign
flip climbs the loss), so the sandboxed score is graded without the MNIST training.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config import CourseConfig

#: replace every public function of the checks module with a no-op (the issue's "four lines")
CHECKS_MODULE = '''
import bplab_checks as _checks
for _name in dir(_checks):
    if not _name.startswith("_") and callable(getattr(_checks, _name)):
        setattr(_checks, _name, lambda *args, **kwargs: None)
'''
#: make every relative error 0 and numpy.testing's assertions no-ops
NUMPY = '''
import numpy as _np
import numpy.testing as _npt
_np.linalg.norm = lambda *args, **kwargs: 0.0
_npt.assert_allclose = lambda *args, **kwargs: None
_npt.assert_array_almost_equal = lambda *args, **kwargs: None
'''
#: every later ``import bplab_checks`` gets a module whose every attribute is a no-op
BUILTINS = '''
import builtins as _builtins
import types as _types
_real_import = _builtins.__import__
class _Disarmed(_types.ModuleType):
    def __getattr__(self, name):
        return lambda *args, **kwargs: None
def _import(name, *args, **kwargs):
    return _Disarmed(name) if name == "bplab_checks" else _real_import(name, *args, **kwargs)
_builtins.__import__ = _import
'''

#: subject -> (base: "skeleton" or a mutant id, tampering lines)
SUBJECTS = {
    "tamper_checks_module": ("skeleton", CHECKS_MODULE),
    "tamper_numpy": ("grad_sign_flip", NUMPY),
    "tamper_builtins": ("skeleton", BUILTINS),
}


def tamper_sources(config: CourseConfig, skeleton: str) -> dict[str, str]:
    """{subject: the source of its implementation cell}."""
    from ..mutants import mutant_sources
    catalogue = mutant_sources(config.activation)
    return {name: (skeleton if base == "skeleton" else catalogue[base]).rstrip("\n") + "\n" + lines
            for name, (base, lines) in SUBJECTS.items()}


@dataclass
class TamperRow:
    version: str        # otter or nbgrader
    subject: str
    recorded: float     # what the tool recorded
    sandboxed: float    # the sandboxed grader on the same notebook (training not graded)
    tolerance: float = 0.5

    @property
    def flagged(self) -> bool:
        return self.recorded > self.sandboxed + self.tolerance

    @property
    def ok(self) -> bool:
        return self.recorded <= self.tolerance or self.flagged

    def text(self) -> str:
        verdict = ("scores 0" if self.recorded <= self.tolerance else
                   "flagged by crosscheck" if self.flagged else "UNNOTICED CREDIT")
        return (f"{self.version} {self.subject}: recorded {self.recorded:g}, sandboxed {self.sandboxed:g}: "
                f"{verdict}")


def sandboxed_scores(config: CourseConfig, stage: Path, sources: dict[str, str]) -> dict[tuple[str, str], float]:
    """The sandboxed grader's total for each subject's otter and nbgrader notebook (no training)."""
    from ..grade import grade_path, prepare
    from .nbgrader import assignment_id
    from .notebook import NOTEBOOK
    from .otter import submission_notebook
    env = prepare(config, with_training=False)
    students = {"otter": Path(stage) / "otter" / "dist" / "student" / NOTEBOOK,
                "nbgrader": Path(stage) / "nbgrader" / "release" / assignment_id(config) / NOTEBOOK}
    out = {}
    with tempfile.TemporaryDirectory(prefix="backprop-lab-tamper-") as tmp:
        for version, student_nb in students.items():
            for name, source in sources.items():
                path = Path(tmp) / f"{version}-{name}.ipynb"
                submission_notebook(student_nb, source, path)
                out[(version, name)] = float(sum(grade_path(path, env).by_check().values()))
    return out


def tamper_rows(recorded: dict[tuple[str, str], float], sandboxed: dict[tuple[str, str], float]) -> list[TamperRow]:
    return [TamperRow(version, name, recorded[(version, name)], sandboxed[(version, name)])
            for version, name in sorted(sandboxed)]
