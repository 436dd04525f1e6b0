"""Several named arrays in one ``.npy`` file: how arrays cross the worker boundary, both ways.

The file holds one 0-d structured array with a field per array: field ``name`` has the array's dtype
and shape as a sub-array, so ``{"W": (5, 10) float64, "b": (5,) float64}`` is saved as a record of
dtype ``[("W", "<f8", (5, 10)), ("b", "<f8", (5,))]``. It is written with ``np.save`` and read with
``np.load(..., allow_pickle=False)``: no pickles, no zip container, one header per file instead of one
zip entry and one header per array (``np.savez``), which made the file round trips most of the
grader's own time per submission (docs/design.md, "Issue 10: the array files").

Used by the parent (``autograder.worker.session``) and by the harness, which loads this file by path
(numpy and the standard library only). Reading a file the WORKER wrote goes through
``protocol.read_arrays``, which checks the header before ``np.load`` allocates anything.
"""
import os

import numpy as np

SUFFIX = ".npy"


def pack(arrays):
    """``{name: array}`` -> a 0-d structured array with one field per array (dtype and shape kept)."""
    plain = {str(k): np.asarray(v) for k, v in arrays.items()}
    record = np.zeros((), dtype=np.dtype([(k, v.dtype, v.shape) for k, v in plain.items()]))
    for name, value in plain.items():
        record[name] = value
    return record


def unpack(record, limit=None):
    """The inverse of :func:`pack`: ``{name: plain ndarray copy}`` (at most ``limit`` fields)."""
    names = record.dtype.names or ()
    return {name: np.array(record[name]) for name in names[:limit]}


def write(path, arrays):
    """Save ``arrays`` at ``path`` (an open binary file or a path)."""
    np.save(path, pack(arrays), allow_pickle=False)


def write_atomic(path, arrays):
    """Save at ``path`` through a temporary name and a rename, so a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        write(fh, arrays)
    os.replace(tmp, path)


def read_trusted(path):
    """Arrays from a file this side's partner wrote (the worker reading the grader's inputs)."""
    return unpack(np.load(path, allow_pickle=False))
