"""otter/: the assignment as an otter-grader master notebook, built by running the real ``otter assign``.

Layout written into ``otter/``: ``backprop_lab.ipynb`` (the master notebook: a raw ``# ASSIGNMENT
CONFIG`` cell, ``# BEGIN QUESTION`` blocks with ``# BEGIN TESTS`` test cells, solution regions between
``# BEGIN SOLUTION NO PROMPT`` and ``# END SOLUTION`` with the stub as a ``# BEGIN PROMPT`` block),
``bplab_checks.py``, and what ``otter assign`` made of it: ``dist/student/`` (the student notebook,
public tests only), ``dist/autograder/`` and ``autograder.zip`` (all tests, for ``otter run`` or
Gradescope). ``otter grade`` needs Docker; ``otter run -a autograder.zip SUBMISSION`` does not.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
import yaml

from ..config import CourseConfig
from ..errors import UserError
from . import nbchecks, nbtraining, shipped
from .expected import ReleaseTest, save_hidden
from .tooling import tool_command
from .walkthrough import IGNORE, walkthrough_cells, walkthrough_order
from .notebook import CHECKS_MODULE, NOTEBOOK, extension_cell, intro, module_cells, questions

DATA = f"{CHECKS_MODULE}.unpack"


class OtterMarkers:
    """Solution regions the way ``otter assign`` strips them; the stub survives as a prompt."""

    def block(self, indent: str, lines: list[str], stub: str | None) -> list[str]:
        if stub is None:
            prompt = [f"{indent}# (your helper functions here)"]
        else:
            prompt = [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError({json.dumps(stub, ensure_ascii=False)})"]
        return ([f'{indent}""" # BEGIN PROMPT'] + prompt + [f'{indent}""" # END PROMPT',
                f"{indent}# BEGIN SOLUTION NO PROMPT"] + lines + [f"{indent}# END SOLUTION"])


def _kernel_metadata(nb: nbformat.NotebookNode) -> None:
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}


def test_cell(test: ReleaseTest) -> str:
    """An exception-based otter test: config block, one test function (args from the notebook), its call."""
    name = f"test_{test.test_id}"
    data = (f"{CHECKS_MODULE}.hidden({json.dumps(test.test_id)})" if test.hidden  # values: bplab_hidden.npz
            else f"{DATA}({json.dumps(nbchecks.pack(test.data))})")
    config = yaml.safe_dump({"points": float(test.points), "hidden": bool(test.hidden)}, sort_keys=True).strip()
    return "\n".join([
        '""" # BEGIN TEST CONFIG', config, '""" # END TEST CONFIG',
        f"def {name}({', '.join(test.args)}):",
        f"    import {CHECKS_MODULE}",
        f"    data = {data}",
        f"    {test.call(CHECKS_MODULE, 'data')}",
        "", f"{name}({', '.join(test.args)})"])


def assignment_config(config: CourseConfig, self_test: bool = True) -> str:
    cfg = {"name": f"{config.assignment}-{config.year}", "requirements": ["numpy", "threadpoolctl"],
           "files": list(shipped.FILES), "export_cell": False, "init_cell": True,
           "check_all_cell": False, "run_tests": bool(self_test), "strip_solutions_from_all_cells": True,
           "tests": {"files": True, "ok_format": False}}
    return "# ASSIGNMENT CONFIG\n" + yaml.safe_dump(cfg, sort_keys=False)


def _walkthrough_cell(kind: str, cell_id: str, source: str) -> nbformat.NotebookNode:
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(source.rstrip("\n"), metadata={"backprop_lab": {"role": "walkthrough"}})
    return nbformat.v4.new_code_cell(source.rstrip("\n"), metadata=json.loads(json.dumps(IGNORE)))


def master_notebook(config: CourseConfig, tests: list[ReleaseTest], self_test: bool = True) -> nbformat.NotebookNode:
    """Config, intro, the handout's walkthrough around the implementation cells (its code cells tagged
    ``otter_ignore``), then one question per check with its tests."""
    nb = nbformat.v4.new_notebook()
    _kernel_metadata(nb)
    implementation, helpers = module_cells(config, OtterMarkers())
    before, after = walkthrough_cells(config)
    cells = [nbformat.v4.new_raw_cell(assignment_config(config, self_test)),
             nbformat.v4.new_markdown_cell(intro(config) + "\n\n" + walkthrough_order())]
    cells += [_walkthrough_cell(*c) for c in before]
    cells += [nbformat.v4.new_code_cell(implementation, metadata={"backprop_lab": {"role": "implementation"}}),
              nbformat.v4.new_code_cell(helpers, metadata={"backprop_lab": {"role": "helpers"}})]
    extensions = extension_cell(config, OtterMarkers())
    if extensions is not None:
        cells.append(nbformat.v4.new_code_cell(extensions, metadata={"backprop_lab": {"role": "extensions"}}))
    cells += [_walkthrough_cell(*c) for c in after]
    for q in questions(config, tests):
        cells += [nbformat.v4.new_raw_cell(f"# BEGIN QUESTION\nname: {q.check_id}\n"),
                  nbformat.v4.new_markdown_cell(f"## {q.check_id} ({q.points:g} points)\n\n{q.prompt}"),
                  nbformat.v4.new_raw_cell("# BEGIN TESTS")]
        cells += [nbformat.v4.new_code_cell(test_cell(t)) for t in q.tests]
        cells += [nbformat.v4.new_raw_cell("# END TESTS"), nbformat.v4.new_raw_cell("# END QUESTION")]
    nb.cells = cells
    return nb


def otter_command() -> list[str]:
    return tool_command("otter", "otter", "otter-grader is not installed, and the release builds otter/ with "
                        "`otter assign`: pip install 'otter-grader==7.*' (or pip install -e '.[release]')")


def run_otter(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    full = None if env is None else {**os.environ, **env}
    return subprocess.run(otter_command() + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full)


def build_otter(config: CourseConfig, tests: list[ReleaseTest], dst: Path, self_test: bool = True) -> list[str]:
    """Write the master notebook and the checks module into ``dst`` and run ``otter assign`` there.

    ``self_test``: otter assign grades the solutions with every test, so the reference trains on MNIST
    (tens of seconds); the release does it when it trains (its gate trained the reference already).
    """
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    nbformat.write(master_notebook(config, tests, self_test), dst / NOTEBOOK)
    shipped.copy_to(dst)  # bplab_checks.py, the judges it calls, bplab_training.py, gradcheck.py (walkthrough)
    hidden = dst / nbchecks.HIDDEN_FILE  # instructor-side; otter assign's own test run reads it via the env
    save_hidden(hidden, tests)
    from ..mnist import mnist_dir  # otter assign runs the tests on the solutions: MNIST from the grader's cache
    env = {nbchecks.HIDDEN_ENV: str(hidden), nbtraining.MNIST_ENV: os.environ.get(nbtraining.MNIST_ENV) or str(mnist_dir())}
    proc = run_otter(["assign", "-v", NOTEBOOK, "dist"], cwd=dst, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise UserError(f"`otter assign` failed on the master notebook (exit {proc.returncode}):\n{tail}")
    zips = sorted((dst / "dist" / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise UserError(f"`otter assign` made {len(zips)} autograder zips in {dst / 'dist/autograder'}, expected 1")
    with zipfile.ZipFile(zips[0], "a") as zf:  # files/ is copied next to the submission, by bplab_checks.py
        zf.write(hidden, f"files/{nbchecks.HIDDEN_FILE}")
    hidden.unlink()
    shutil.copyfile(zips[0], dst / "autograder.zip")
    honest_student_tests(dst / "dist" / "student" / "tests", tests)
    (dst / "README.md").write_text(README.format(year=config.year, notebook=NOTEBOOK), encoding="utf-8")
    return sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())


#: how ``otter assign`` 7 writes a public 0-point test case into the student's tests/ files
ZERO_POINT_PUBLIC = re.compile(r"@test_case\(points=0(?:\.0)?, hidden=False\)")


def honest_student_tests(folder: Path, tests: list[ReleaseTest]) -> None:
    """Make ``otter check`` fail when a public self-check fails.

    ``otter check`` says "All tests passed!" when the points passed equal the points possible, so a
    failing 0-point test (the public self-checks of gradients, minibatch, sgd_step and training)
    went unnoticed. In the student's copy of the tests only (what ``otter check`` and
    ``grader.check`` read; ``autograder.zip`` grades with its own copy, 0 points), each such test is
    worth 1 point. Raises UserError when otter wrote them in a form this does not recognise.
    """
    expected = sum(1 for t in tests if not t.hidden and t.points == 0)
    found = 0
    for path in sorted(Path(folder).glob("*.py")):
        text, n = ZERO_POINT_PUBLIC.subn("@test_case(points=1.0, hidden=False)", path.read_text(encoding="utf-8"))
        found += n
        path.write_text(text, encoding="utf-8")
    if found != expected:
        raise UserError(f"otter assign wrote {found} public 0-point test(s) into {folder}, expected {expected}; "
                        "this otter version writes tests differently (see autograder/release/otter.py)")


README = """# otter-grader version of the {year} release

- `{notebook}`: the master notebook (solutions, all tests, the handout's walkthrough). Rebuild with
  `otter assign {notebook} dist`.
- `dist/student/`: what students get (notebook with stubs, `bplab_checks.py`, `bplab_training.py`,
  `gradcheck.py`, public tests in `tests/`). Students check themselves with `otter check {notebook}`
  in that folder.
- `autograder.zip` (= `dist/autograder/*.zip`): every test, hidden ones included (instructor-side).

Grade one submission without Docker:  `otter run -a autograder.zip SUBMISSION.ipynb -o OUT`
(writes `OUT/results.json`). `otter grade` (a whole class) always runs in Docker containers, and the
zip can be uploaded to Gradescope as an otter autograder.

**MNIST.** The training test trains on real MNIST with the grader's loop, schedule, target and
partial-credit scale, in CPU seconds of the grading kernel. It reads the backprop-lab cache's `.npy`
split (`train/`, `valid/`, `test/`, each `X.npy` and `y.npy`; `backprop-lab data fetch` makes it
under `data/cache/mnist`): set `BPLAB_MNIST` to that folder (for `otter run` and `otter check`), or
put its path into `bplab_mnist.txt` next to the notebook, or copy (or link) it there as `mnist/`;
`BACKPROP_LAB_CACHE` is tried last. Without it the training tests fail with a message naming the
paths they tried. The budget is in CPU seconds of the kernel: grade with `OPENBLAS_NUM_THREADS=1`
(one BLAS thread, as the backprop-lab grader's worker). The walkthrough cells are tagged `otter_ignore` (not run when grading). otter runs
student code unsandboxed in its own kernel; the backprop-lab grader (`../gradescope/`) is the sandboxed one.
"""


def submission_notebook(student_nb: Path, source: str, out: Path) -> None:
    """A filled-in student notebook: the implementation cell holds ``source`` (a whole mlp.py), the
    helpers cell nothing (tests and mutants are written as one module)."""
    nb = nbformat.read(student_nb, as_version=4)
    roles = {c.metadata.get("backprop_lab", {}).get("role"): c for c in nb.cells if c.cell_type == "code"}
    if "implementation" not in roles or "helpers" not in roles:
        raise ValueError(f"{student_nb}: no implementation/helpers cells (metadata backprop_lab.role)")
    roles["implementation"].source = source
    roles["helpers"].source = "# (everything is in the cell above)"
    if "extensions" in roles:
        roles["extensions"].source = "# (the extensions, if any, are in the implementation cell)"
    nbformat.write(nb, out)


def results_by_question(results_json: Path) -> dict[str, float]:
    """``otter run``'s results.json: {question name: score} (the 'Public Tests' summary skipped)."""
    data = json.loads(Path(results_json).read_text())
    return {t["name"]: float(t.get("score") or 0.0) for t in data["tests"] if "max_score" in t}
