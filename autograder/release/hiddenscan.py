"""Find a release's hidden values in what a student receives: raw bytes, decoded base64 blobs, numbers.

A hidden test's arrays (inputs and the reference's outputs of the year's hidden cases) must never
reach a student: not in a released notebook, not in nbgrader's feedback HTML, not in otter's
results. :func:`scan` looks for them three ways in each file:

- the arrays' raw bytes (float64, and float32 for a student who casts), in the file and in every
  base64 blob of the file once decoded (and, when a blob is an .npz, in its arrays);
- the base64 text of the packed test data itself (``bplab_checks.pack``);
- hidden values written as decimal numbers (``repr`` and 8-significant-digit forms); two distinct
  ones from the hidden set are needed, since a single 8-digit coincidence is possible.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile

import numpy as np

from .expected import ReleaseTest

BLOB = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")
NUMBER = re.compile(rb"-?\d+\.\d{5,}(?:e[-+]?\d+)?")
MIN_BYTES = 32  # arrays smaller than 4 float64 values are too short to be evidence


class Fingerprints:
    """What identifies a release's hidden data: raw byte strings and decimal forms of its values."""

    def __init__(self, tests: list[ReleaseTest]):
        from . import nbchecks
        self.raw: list[tuple[str, bytes]] = []
        self.numbers: dict[bytes, str] = {}
        self.packed = [(t.test_id, nbchecks.pack(t.data).encode()) for t in tests if t.hidden]
        # a hidden test may also run a public case (the toy case in every gradient test): public arrays
        # and values are no evidence
        public = {np.ascontiguousarray(a, dtype=np.float64).tobytes() for t in tests if not t.hidden
                  for a in t.data.values() if np.asarray(a).dtype.kind == "f"}
        public_numbers = {text for t in tests if not t.hidden for a in t.data.values()
                          if np.asarray(a).dtype.kind == "f" for v in np.asarray(a).ravel()
                          for text in _decimal_forms(float(v))}
        for test in (t for t in tests if t.hidden):
            for name, array in test.data.items():
                arr = np.asarray(array)
                if arr.dtype.kind != "f" or np.ascontiguousarray(arr, dtype=np.float64).tobytes() in public:
                    continue
                where = f"{test.test_id}/{name}"
                for dtype in (np.float64, np.float32):
                    data = np.ascontiguousarray(arr, dtype=dtype).tobytes()
                    if len(data) >= MIN_BYTES and not _constant(arr):  # zeros (a known bug's gradient) are no evidence
                        self.raw.append((where, data))
                        if arr.ndim == 2 and arr.shape[1] * np.dtype(dtype).itemsize >= MIN_BYTES and \
                                not _constant(arr[0]):
                            self.raw.append((f"{where}[0]", np.ascontiguousarray(arr[0], dtype=dtype).tobytes()))
                for value in arr.ravel()[:256]:
                    for text in _decimal_forms(float(value)):
                        if text not in public_numbers:
                            self.numbers[text.encode()] = where

    def in_bytes(self, data: bytes) -> list[str]:
        """Hidden arrays whose raw bytes occur in ``data``."""
        return [where for where, raw in self.raw if raw in data]


def _constant(arr: np.ndarray) -> bool:
    """One value repeated (a row of zeros, say): such bytes occur anywhere and identify nothing."""
    flat = np.asarray(arr).ravel()
    return flat.size > 0 and bool(np.all(flat == flat[0]))


def _decimal_forms(value: float) -> list[str]:
    if not np.isfinite(value) or value == round(value) or abs(value) < 1e-4:
        return []
    forms = {repr(value), f"{value:.8g}", np.format_float_positional(value, precision=8, unique=False, trim="-")}
    return [f for f in forms if len(f.lstrip("-0.").replace(".", "").split("e")[0]) >= 7]


def _decoded_blobs(data: bytes) -> list[bytes]:
    out = []
    for match in BLOB.finditer(data):
        text = match.group(0)
        text = text[: len(text) - len(text) % 4] if not text.endswith(b"=") else text
        try:
            out.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


def _npz_arrays(blob: bytes) -> list[bytes]:
    if not blob.startswith(b"PK"):
        return []
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            return [np.ascontiguousarray(data[k]).tobytes() for k in data.files]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        return []


def scan(files: dict[str, bytes], tests: list[ReleaseTest]) -> list[str]:
    """``"<file>: <what>"`` for every hidden value found in ``files`` (names -> contents)."""
    prints = Fingerprints(tests)
    found: list[str] = []
    for name, data in sorted(files.items()):
        hits = set(prints.in_bytes(data))
        hits |= {test_id for test_id, packed in prints.packed if packed in data}
        for blob in _decoded_blobs(data):
            hits |= {f"{w} (in a decoded base64 blob)" for w in prints.in_bytes(blob)}
            for arr in _npz_arrays(blob):
                hits |= {f"{w} (an array of a decoded .npz blob)" for w in prints.in_bytes(arr)}
        numbers = {m.group(0) for m in NUMBER.finditer(data)} & set(prints.numbers)
        if len(numbers) >= 2:
            hits |= {f"{prints.numbers[n]} (as the number {n.decode()})" for n in sorted(numbers)[:3]}
        if hits:
            shown = sorted(hits)
            more = f" (and {len(shown) - 3} more)" if len(shown) > 3 else ""
            found.append(f"{name}: hidden data {', '.join(shown[:3])}{more}")
    return found
