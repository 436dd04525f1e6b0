"""Loading: each split memory-mapped read-only from the cache after the quick manifest check."""
from __future__ import annotations

from ..errors import DataError
from .cache import entry, open_checked, read_manifest
from .constants import SPLITS
from .dataset import MNIST, Split
from .fetch import fetch_mnist
from .layout import check_split_name, mnist_dir


def _open_split(split: str) -> Split:
    root = mnist_dir()
    manifest = read_manifest(root)
    arrays = []
    for kind in ("X", "y"):
        rel = f"{split}/{kind}.npy"
        arrays.append(open_checked(root / rel, entry(manifest, rel, root), split, kind))
    return Split(X=arrays[0], y=arrays[1])


def load_split(split: str, fetch: bool = True) -> Split:
    """One split, memory-mapped read-only from the cache (fetched first when missing and ``fetch``)."""
    check_split_name(split)
    try:
        return _open_split(split)
    except DataError:
        if not fetch:
            raise
    fetch_mnist(progress=True)
    return _open_split(split)


def load_mnist(fetch: bool = True) -> MNIST:
    """All three splits (see :func:`load_split`)."""
    return MNIST(**{s: load_split(s, fetch=fetch) for s in SPLITS})
