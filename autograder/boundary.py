"""Validate arrays that came back from student code: type, then shape, then dtype, then finiteness."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .judges import dtype_tolerance

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass(frozen=True)
class Checked:
    """A validated array (``value``) or the reason it was refused (``problem``), naming it."""
    value: np.ndarray | None
    problem: str | None = None
    nonfinite: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_array(name: str, arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...],
                allow_nonfinite: bool = False, type_info: dict | None = None) -> Checked:
    """Validate ``arrays[key]`` as the student's ``name``: exact ndarray, ``shape``, float32/64, finite."""
    if type_info is not None and not type_info.get("exact_ndarray", True):
        return Checked(None, f"{name} is a {type_info.get('type')}, a subclass of numpy.ndarray; "
                             "return a plain numpy array (np.asarray(...))")
    if key not in arrays:
        told = _told_shape(type_info)
        if told is not None and told != tuple(shape):  # too large to send back: its shape is the problem
            return Checked(None, f"{name} has shape {told}, expected {tuple(shape)} (far too large to return)")
        what = f" (it was a {type_info.get('type')})" if type_info else ""
        return Checked(None, f"{name} is missing or is not a numpy array{what}")
    arr = arrays[key]
    if type(arr) is not np.ndarray:  # cannot happen after np.load, kept as the rule
        return Checked(None, f"{name} is not a plain numpy array")
    if arr.shape != tuple(shape):
        hint = ""
        if arr.shape == tuple(shape)[::-1] and len(shape) == 2:
            hint = " (transposed: you have the axes the other way round)"
        elif len(arr.shape) == len(shape) + 1 and arr.shape[1:] == tuple(shape):
            hint = " (one row per example: did you forget to sum over the batch axis?)"
        return Checked(None, f"{name} has shape {arr.shape}, expected {tuple(shape)}{hint}")
    if arr.dtype not in FLOAT_DTYPES:
        return Checked(None, f"{name} has dtype {arr.dtype}; return float64 (or float32)")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        problem = f"{name} contains {bad} NaN/inf value(s)"
        return Checked(arr if allow_nonfinite else None, None if allow_nonfinite else problem, nonfinite=True)
    return Checked(arr)


def _told_shape(type_info: dict | None) -> tuple[int, ...] | None:
    """The shape the worker reported for a value it did not send (untrusted: parsed defensively)."""
    try:
        return tuple(int(n) for n in type_info["shape"][:8])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


tolerance = dtype_tolerance  # the tolerance for an array of ``dtype`` (autograder/judges.py)
