"""The standalone modules the otter-grader and nbgrader versions ship next to their notebook, verbatim:
``bplab_checks.py`` (the tests' calls), ``bplab_judges.py`` and ``bplab_extension_judges.py`` (the
verdicts: the grader's own judges), ``bplab_training.py`` (training on MNIST with the grader's rules)
and ``gradcheck.py`` (relative errors and scale fits they use; the walkthrough's finite differences)."""
from __future__ import annotations

import shutil
from pathlib import Path

from .. import extension_judges, gradcheck, judges
from . import nbchecks, nbtraining
from .notebook import CHECKS_MODULE, TRAINING_MODULE

JUDGES_MODULE = "bplab_judges"
FILES: dict[str, Path] = {f"{CHECKS_MODULE}.py": Path(nbchecks.__file__), f"{JUDGES_MODULE}.py": Path(judges.__file__),
                          "bplab_extension_judges.py": Path(extension_judges.__file__),
                          f"{TRAINING_MODULE}.py": Path(nbtraining.__file__),
                          "gradcheck.py": Path(gradcheck.__file__)}


def copy_to(folder: Path) -> list[str]:
    """Copy every shipped module into ``folder``; their names, in order."""
    for name, source in FILES.items():
        shutil.copyfile(source, Path(folder) / name)
    return list(FILES)
