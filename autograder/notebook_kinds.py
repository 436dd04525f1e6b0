"""Which code cells of a submitted notebook are the student's implementation.

Three notebooks of this project are not plain "all my code" notebooks:

- the otter-grader and nbgrader versions of a release: their grading cells (``otter`` init and
  ``grader.check`` cells, nbgrader's locked test cells calling ``bplab_checks``) are not the
  student's code and import modules the sandbox does not have; the implementation is in the cells
  marked ``metadata.backprop_lab.role`` = ``implementation`` / ``helpers`` / ``extensions`` (kept by
  Jupyter), or,
  when that metadata was lost, in every cell that is not a grading cell;
- the handout's walkthrough notebook (``assignment/backprop_lab.ipynb``): it imports the student's
  ``mlp.py`` rather than holding it. If it defines the graded functions itself, those cells are
  graded; otherwise the student is told to submit ``mlp.py``.

:func:`select_cells` works on the parsed JSON only; nothing of the notebook runs here.
"""
from __future__ import annotations

import ast
import re

from .checks.registry import CORE, EXTENSIONS
from .errors import SubmissionError

ROLES = ("implementation", "helpers", "extensions")
#: functions a submission is graded on (core, then the optional extensions of solutions/extensions.py)
GRADED_FUNCTIONS = tuple(dict.fromkeys(("init_params",) + tuple(f for s in CORE + EXTENSIONS
                                                                  for f in s.functions)))
GRADING_CELL = re.compile(r"^\s*(import otter\b|from otter\b|grader\s*=\s*otter\.|grader\.check(_all)?\(|"
                          r"import bplab_checks\b|from bplab_checks\b)", re.M)
IMPORTS_MLP = re.compile(r"^\s*(import mlp\b|from mlp import\b)", re.M)
#: the first line of every walkthrough code cell of the otter notebook (autograder/release/walkthrough.py)
WALKTHROUGH_MARK = "# Walkthrough cell (not graded"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _defines(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in GRADED_FUNCTIONS}


def _is_grading_cell(cell: dict) -> bool:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    if nbg.get("grade") and not nbg.get("solution"):
        return True
    return bool(GRADING_CELL.search(_source(cell)))


def _is_walkthrough(cell: dict) -> bool:
    """A walkthrough cell of the otter notebook (tagged ``otter_ignore``, or its first-line mark)."""
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    return "otter_ignore" in tags or _source(cell).lstrip().startswith(WALKTHROUGH_MARK)


def _role(cell: dict):
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    lab = meta.get("backprop_lab") if isinstance(meta.get("backprop_lab"), dict) else {}
    return lab.get("role")


def select_cells(cells: list[dict], name: str) -> tuple[list[dict], list[str]]:
    """(the code cells to grade, notes). Raises SubmissionError for a walkthrough notebook without code."""
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    marked = [c for c in code if _role(c) in ROLES]
    if marked:
        return marked, [f"{name} is the otter/nbgrader notebook: graded its implementation and helpers cells, "
                        f"ignored its {len(code) - len(marked)} other code cell(s) (tests and grading)"]
    grading = [c for c in code if _is_grading_cell(c) or _is_walkthrough(c)]
    if grading:
        kept = [c for c in code if c not in grading]
        return kept, [f"{name} looks like an otter/nbgrader notebook: ignored its {len(grading)} grading and "
                      "walkthrough cell(s)"]
    if any(IMPORTS_MLP.search(_source(c)) for c in code):
        defining = [c for c in code if _defines(_source(c))]
        if not defining:
            raise SubmissionError(f"{name} is the handout's walkthrough notebook: it imports your mlp.py and "
                                  "holds none of the graded functions; submit mlp.py (or a zip with mlp.py)")
        found = sorted(set().union(*(_defines(_source(c)) for c in defining)))
        return defining, [f"{name} is the handout's walkthrough notebook: graded the {len(defining)} cell(s) "
                          f"defining {', '.join(found)}; the cells that use mlp.py were ignored"]
    return code, []
