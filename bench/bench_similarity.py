#!/usr/bin/env python3
"""Similarity benchmark: `backprop-lab similarity` on a generated class of N students (default 200).

Run from the project root:  python bench/bench_similarity.py [--n 200] [--keep DIR]

The class is generated from the reference, the zoo's correct variants and the known-bug mutants, each
student with its own disguises (renamed with its own seed, reordered, recommented, reformatted; every
fifth a notebook), plus a reference copy in an --against folder. The clock covers the whole command:
discovering and loading the class through the project's loaders, fingerprinting, scoring every pair,
and writing similarity.csv, similarity.html and the side-by-side pages. Prints each phase's seconds.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from autograder.mutants import MUTANTS, MutationError  # noqa: E402
from autograder.similarity import cli, report, scoring  # noqa: E402
from zoo import disguise as G  # noqa: E402
from zoo import sources as Z  # noqa: E402

TARGET_S = 30.0
VARIANTS = ["column_major", "float32", "einsum", "inplace_sgd", "hidden_unit_loops", "per_example_loop",
            "cache_extra_keys", "logsumexp_softmax"]


def make_class(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    bases = [Z.strip_markers(Z.ref("relu"))] + [Z.strip_markers(getattr(Z, v)()) for v in VARIANTS]
    bases.append(Z.activation_table("relu"))
    for i in range(n):
        src = bases[i % len(bases)]
        m = MUTANTS[(i // len(bases)) % len(MUTANTS)]
        if i % 3:
            try:
                src = m.apply(src)
            except MutationError:
                pass
        src = G.rename(src, seed=i)
        if i % 2:
            src = G.reorder(src, seed=i)
        if i % 4 == 1:
            src = G.recomment(src)
        if i % 7 == 3:
            src = G.reformat(src)
        if i % 5 == 4:
            (folder / f"student{i:03d}.ipynb").write_text(G.to_notebook(src), encoding="utf-8")
        else:
            (folder / f"student{i:03d}.py").write_text(src, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--keep", default=None, help="write the class and the report here (default: a temp folder)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    try:
        make_class(root / "class", args.n)
        (root / "public").mkdir(exist_ok=True)
        (root / "public" / "reference.py").write_text(Z.strip_markers(Z.ref("relu")), encoding="utf-8")
        phases: dict[str, float] = {}

        def timed(name, fn):
            def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
            return wrapper

        cli.score_pairs = timed("score every pair", scoring.score_pairs)
        cli.write_report = timed("write csv + html pages", report.write_report)
        cli.from_sources = timed("fingerprint", cli.from_sources)
        started = time.perf_counter()
        outcome = cli.run_similarity(root / "class", root / "out", against=[root / "public"])
        total = time.perf_counter() - started
        phases["load (discover + load_submission) and template"] = total - sum(phases.values())
        pairs = outcome.ranking.pairs
        print(f"students: {outcome.students} (+{sum(outcome.against.values())} --against); pairs: {len(pairs)}; "
              f"pages written: {len(outcome.written.pages)}")
        for name, seconds in phases.items():
            print(f"  {name:<48} {seconds:6.2f} s")
        verdict = "meets target" if total <= TARGET_S else "MISSES target"
        print(f"total: {total:.2f} s for {args.n} students (target <= {TARGET_S:.0f} s): {verdict}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
