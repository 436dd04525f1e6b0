#!/usr/bin/env python3
"""Fetch, verify and cache MNIST without the CLI: ``python data/fetch.py``.

Same as ``backprop-lab data fetch``. Honours BACKPROP_LAB_MNIST (a local mnist.pkl.gz or IDX folder)
and BACKPROP_LAB_CACHE (where the cache goes); see data/README.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works without `pip install -e .`

from autograder.errors import UserError  # noqa: E402
from autograder.mnist import SPLITS, fetch_mnist, load_split  # noqa: E402


def main() -> int:
    try:
        root = fetch_mnist(progress=True)
        sizes = {split: len(load_split(split, fetch=False)) for split in SPLITS}
    except UserError as exc:
        print(f"fetch.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"MNIST cache: {root}")
    print(", ".join(f"{split} {n}" for split, n in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
