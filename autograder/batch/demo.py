"""``backprop-lab demo``: batch-grade a bundled sample class generated from the reference.

The class (about a dozen students) is GENERATED on every run, so it always matches the current
reference: the reference itself, the bare skeleton, known-bug mutants from
:mod:`autograder.mutants`, a notebook submission and a zip. Rerunning the demo regrades nothing
that did not change.
"""
from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

from ..config import CourseConfig, load_config

SAMPLE_DIR = ".sample_class"

# (student id, mutant id or "reference"/"skeleton", how it is handed in)
SAMPLE_CLASS: list[tuple[str, str, str]] = [
    ("01-reference", "reference", "py"),
    ("02-skeleton", "skeleton", "py"),
    ("03-grad_factor_n", "grad_factor_n", "py"),
    ("04-grad_sign_flip", "grad_sign_flip", "py"),
    ("05-wrong_activation_derivative", "wrong_activation_derivative", "py"),
    ("06-bias_not_summed", "bias_not_summed", "folder"),
    ("07-naive_softmax", "naive_softmax", "py"),
    ("08-sgd_ascends", "sgd_ascends", "py"),
    ("09-sgd_skips_key", "sgd_skips_key", "py"),
    ("10-forward_mutates_X", "forward_mutates_X", "py"),
    ("11-notebook", "reference", "ipynb"),
    ("12-zip-dV_from_preactivation", "dV_from_preactivation", "zip"),
]


def skeleton_source(activation: str) -> str:
    """The handout's skeleton (``backprop-lab assign``'s generator), else the reference with stubbed bodies."""
    from ..reference import REFERENCE_PATH
    text = REFERENCE_PATH.read_text(encoding="utf-8")
    try:
        from ..handout.markers import parse
        from ..handout.skeleton import build_skeleton
        return build_skeleton(parse(text, str(REFERENCE_PATH)), activation)
    except ImportError:
        return stub_functions(text, activation)


def stub_functions(source: str, activation: str) -> str:
    """Fallback skeleton: each API function's body becomes ``raise NotImplementedError``."""
    import ast

    from ..reference import set_activation_line
    tree = ast.parse(source)
    lines = source.splitlines()
    api = {"init_params", "forward", "backward", "sgd_step"}
    for node in sorted((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in api),
                       key=lambda n: n.lineno, reverse=True):
        body = node.body
        first = body[1] if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                                         ast.Constant) and len(body) > 1 else body[0]
        indent = " " * first.col_offset
        lines[first.lineno - 1: node.end_lineno] = [f'{indent}raise NotImplementedError("{node.name}: not implemented yet")']
    return set_activation_line("\n".join(lines) + "\n", activation)


def notebook_text(source: str) -> str:
    """The source as a Jupyter notebook: one code cell per top-level block, plus a magic and markdown."""
    blocks, current = [], []
    for line in source.splitlines():
        if (line.startswith("def ") or line.startswith("# BEGIN SOLUTION")) and current:
            blocks.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if current:
        blocks.append("\n".join(current).strip("\n"))
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# My MLP (handed in as a notebook)"]},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": ["%matplotlib inline"]}]
    cells += [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
               "source": [ln + "\n" for ln in b.splitlines()]} for b in blocks if b.strip()]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


def zip_bytes(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("hw2/mlp.py", source), ("hw2/README.txt", "my submission for the MLP homework\n")):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same bytes every run
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return
    path.write_bytes(data)


def build_sample_class(dest: Path | str, config: CourseConfig) -> Path:
    """Write the sample class into ``dest`` (one file or folder per student) and return it."""
    from ..mutants import mutant_sources
    from ..reference import reference_source
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    act = config.activation
    sources = {"reference": reference_source(act), "skeleton": skeleton_source(act), **mutant_sources(act)}
    wanted = set()
    for student, what, kind in SAMPLE_CLASS:
        src = sources[what]
        if kind == "py":
            path, data = dest / f"{student}.py", src.encode()
        elif kind == "folder":
            path, data = dest / student / "mlp.py", src.encode()
        elif kind == "ipynb":
            path, data = dest / f"{student}.ipynb", notebook_text(src).encode()
        else:
            path, data = dest / f"{student}.zip", zip_bytes(src)
        _write_if_changed(path, data)
        wanted.add(path.relative_to(dest).parts[0])
    for stale in dest.iterdir():  # a previous grader version's sample students
        if stale.name not in wanted:
            import shutil
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return dest


def cli_demo(args) -> int:
    from .runner import print_outcome, run_batch
    out = Path(args.out or "demo-results")
    config = load_config(activation=getattr(args, "activation", None))
    sample = build_sample_class(out / SAMPLE_DIR, config)
    print(f"sample class of {len(SAMPLE_CLASS)} students generated from the reference in {sample}", flush=True)
    outcome = run_batch(sample, out, jobs=args.jobs, config=config)
    print_outcome(outcome)
    print(f"\nopen {outcome.summary.resolve().as_uri()}", file=sys.stdout)
    return 0
