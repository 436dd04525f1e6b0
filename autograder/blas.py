"""One BLAS thread: the environment that makes numpy's BLAS (OpenBLAS, MKL, BLIS, Accelerate) and
OpenMP/numexpr start with a single thread. It must be in place before numpy is imported in a process,
so it is set for children (their environment) and never needs numpy here.

Every process of the grader that computes on one core uses it: the sandboxed worker, the batch pool's
workers, the experiments' runners, the reference step timer, and the test suite (tests/conftest.py).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

#: the variables each BLAS / threading library reads for its thread count
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


def one_thread_env() -> dict[str, str]:
    """``{variable: "1"}`` for every variable of THREAD_VARS."""
    return {var: "1" for var in THREAD_VARS}


@contextlib.contextmanager
def one_thread_for_children() -> Iterator[None]:
    """Processes started inside the block import numpy with one BLAS thread; this process's own
    environment is restored afterwards."""
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    os.environ.update(one_thread_env())
    try:
        yield
    finally:
        for var, old in saved.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old
