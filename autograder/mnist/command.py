"""The ``backprop-lab data fetch | verify`` command."""
from __future__ import annotations

from pathlib import Path

from .cache import read_manifest, verify_cache
from .constants import SPLITS
from .fetch import fetch_mnist
from .layout import mnist_dir, split_paths


def cli_data(args) -> int:
    """Run ``args.data_command`` ("fetch" or "verify"); prints what it did, returns the exit status."""
    if args.data_command == "fetch":
        root = fetch_mnist(progress=True)
        manifest = read_manifest(root)
        src = manifest.get("source", {})
        print(f"MNIST cache: {root}")
        print(f"source: {src.get('path', '?')} (via {src.get('via', '?')})")
        for split in SPLITS:
            X, y = split_paths(split)
            shape = manifest["files"][f"{split}/X.npy"]["shape"]
            print(f"  {split:<5} {shape[0]:>6} examples  X {tuple(shape)} float32 in [0, 1]  y int64  "
                  f"({X.parent})")
        return 0
    if args.data_command == "verify":
        root = mnist_dir()

        def report(path: Path, sha: str) -> None:
            print(f"OK  {path.relative_to(root)}  sha256 {sha[:16]}...")

        verify_cache(report)
        print(f"MNIST cache OK: {root}")
        return 0
    raise AssertionError(args.data_command)
