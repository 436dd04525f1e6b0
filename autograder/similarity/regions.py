"""The matched regions of one pair: character ranges of both texts to highlight, and per-function shares.

A region is a run of shared fingerprints (merged with copydetect's ``get_copied_slices``) mapped back
through the tokens behind it; gaps between tokens that hold a comment or a (blanked) docstring split a
region, so only code is ever highlighted. A region is ``rare`` when its fingerprints weigh at least
``RARE`` on average (code few others in the corpus share), else ``common``: code many submissions
share, shown pale, which counts (almost) nothing in the score.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fingerprints import K, Fingerprint, Unit

RARE = 0.5


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    kind: str                  # "rare" or "common"


@dataclass(frozen=True)
class UnitMatch:
    """How much of one function of a is found in b (weighted), and b's best-matching function."""
    name: str
    share: float
    other: str
    other_share: float


def _token_spans(unit: Unit, lo: int, hi: int, text: str) -> list[tuple[int, int]]:
    """Raw spans of the tokens behind filtered[lo:hi], merged across whitespace-only gaps."""
    spans: list[tuple[int, int]] = []
    for s, e in sorted(set(zip(unit.token_start[lo:hi].tolist(), unit.token_end[lo:hi].tolist()))):
        s, e = unit.start + s, unit.start + e
        if spans and not text[spans[-1][1]:s].strip():
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return spans


def regions(fp: Fingerprint, shared: set[int], weight: dict[int, float]) -> list[Region]:
    """The regions of ``fp`` covered by the fingerprints in ``shared``, in text order."""
    from copydetect.utils import get_copied_slices  # here: copydetect imports pyplot (0.6 CPU s)
    out: list[Region] = []
    for unit in fp.units:
        for kind in ("common", "rare"):
            picked = [h for h in unit.hashes if h in shared and (weight.get(h, 1.0) >= RARE) == (kind == "rare")]
            if not picked:
                continue
            idx = np.array([p for h in picked for p in unit.hashes[h]], dtype=np.int64)
            starts, ends = get_copied_slices(idx, K)
            for lo, hi in zip(starts.tolist(), ends.tolist()):
                out += [Region(s, e, kind) for s, e in _token_spans(unit, int(lo), int(hi), fp.text)]
    return sorted(out, key=lambda r: (r.start, r.kind != "rare"))


def unit_matches(a: Fingerprint, b: Fingerprint, weight: dict[int, float]) -> list[UnitMatch]:
    """For every function of ``a`` with fingerprints: its weighted share found in ``b``, best first."""
    in_b = b.hashes()
    b_units = [(v.name, v.hashes.keys()) for v in b.units if v.hashes]
    out = []
    for u in a.units:
        keys = u.hashes.keys()
        if not keys:
            continue
        total = sum(weight.get(h, 1.0) for h in keys)
        found = keys & in_b
        if total <= 0:     # every fingerprint of it is in every document: nothing to show
            continue
        best, best_share = "", 0.0
        if found:
            for name, other in b_units:
                got = sum(weight.get(h, 1.0) for h in found & other) / total
                if got > best_share:
                    best, best_share = name, got
        out.append(UnitMatch(u.name, sum(weight.get(h, 1.0) for h in found) / total, best, best_share))
    return sorted(out, key=lambda m: -m.share)


def paint(text: str, marks: list[Region]) -> list[tuple[str, str]]:
    """``text`` cut into (piece, kind) runs, kind "" outside every region; rare wins over common."""
    kind_at = np.zeros(len(text) + 1, dtype=np.int8)
    for r in marks:
        level = 2 if r.kind == "rare" else 1
        kind_at[r.start:r.end] = np.maximum(kind_at[r.start:r.end], level)
    names = ("", "common", "rare")
    levels = kind_at[: len(text)]
    cuts = [0, *(np.flatnonzero(np.diff(levels)) + 1).tolist(), len(text)]
    return [(text[i:j], names[levels[i]]) for i, j in zip(cuts, cuts[1:]) if j > i]
