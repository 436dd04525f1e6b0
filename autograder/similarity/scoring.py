"""Score every pair of documents from their fingerprints, weighting each by how rare it is in the corpus.

A fingerprint found in many submissions is code the task forces on everyone (the obvious ``sgd_step``
line, the stable softmax): sharing it says nothing. Each fingerprint ``h`` therefore weighs
``w(h) = log((N - 1) / (m + 1)) / log(N - 1)`` with ``m = df(h) - 2`` the documents besides a sharing pair
that contain it (``df``: how many of the N documents, class and every ``--against`` folder, contain
``h``): 1 when no third document has it, 0 when all do (in a class of 2, every weight is 1).

For documents A and B (masses ``W_A``, ``W_B``: the sum of their fingerprints' weights):

* ``file_score = shared(A, B) / max(W_A, W_B)``, damped by ``min(1, n_shared / MIN_SHARED)`` (a pair
  sharing only a few fingerprints, e.g. two almost empty skeletons, cannot score high);
* ``function_score``: the best pair of units (functions) u of A and v of B, scored
  ``shared(u, v) / max(W_u, W_v)``, among unit pairs sharing at least ``MIN_UNIT_MASS`` of weight;
* ``score = max(file_score, (file_score + function_score) / 2)``: one copied function lifts a pair
  halfway to 1, a copied file reaches it.

All pair sums are sparse matrix products (scipy), so a class of 200 costs well under a second here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from .fingerprints import Fingerprint

MIN_SHARED = 60         # shared fingerprints (unweighted) below which a file score is damped
MIN_UNIT_MASS = 25.0    # weight two functions must share before their match counts
FUNCTION_WEIGHT = 0.9    # one function copied whole scores 0.9: a file copy ranks above it


@dataclass
class Document:
    """One file to compare: a student of the class, or an entry of an ``--against`` folder."""
    name: str                  # student id (class) or "<folder>/<entry>"
    source: str                # "class" or the --against folder's name
    origin: str                # where the text came from (file, zip member, notebook)
    fp: Fingerprint
    notes: list[str] = field(default_factory=list)


@dataclass
class Pair:
    a: Document
    b: Document
    score: float
    file_score: float
    function_score: float
    share_a: float             # weighted fraction of a's fingerprints found in b
    share_b: float
    shared: int                # fingerprints in common (unweighted)
    unit_a: str = ""           # the best-matching functions
    unit_b: str = ""

    @property
    def source(self) -> str:
        return self.b.source


def _matrix(rows: list[dict[int, list[int]] | set[int]], vocab: dict[int, int]) -> sparse.csr_matrix:
    indptr, indices = [0], []
    for hashes in rows:
        indices.extend(vocab[h] for h in hashes)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    return sparse.csr_matrix((data, np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                             shape=(len(rows), len(vocab)))


def weights(doc_matrix: sparse.csr_matrix) -> np.ndarray:
    """w(h) for every column of the (documents x fingerprints) 0/1 matrix; shape (n_fingerprints,).

    ``m = df - 2`` is how many documents besides a pair that shares h also contain it:
    ``w = log((N - 1) / (m + 1)) / log(N - 1)``, 1 when no third document has h, 0 when every one does.
    """
    n = doc_matrix.shape[0]
    df = np.asarray(doc_matrix.sum(axis=0)).ravel()
    if n <= 2:
        return np.ones_like(df, dtype=np.float64)
    others = np.maximum(df - 2, 0)
    return np.log((n - 1) / (others + 1)) / math.log(n - 1)


def wanted(docs: list[Document]) -> np.ndarray:
    """(n, n) bool: which pairs to compare: class x class (a before b), and class x every --against."""
    is_class = np.array([d.source == "class" for d in docs])
    n = len(docs)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    return (upper & is_class[:, None] & is_class[None, :]) | (is_class[:, None] & ~is_class[None, :])


@dataclass
class Ranking:
    """Every wanted pair, best first, and the weight of each fingerprint (for highlighting)."""
    pairs: list[Pair]
    weight: dict[int, float]


def score_pairs(docs: list[Document]) -> Ranking:
    """Every wanted pair (see :func:`wanted`), best first."""
    if len(docs) < 2:
        return Ranking([], {})
    doc_hashes = [d.fp.hashes() for d in docs]
    vocab: dict[int, int] = {}
    for hs in doc_hashes:
        for h in hs:
            vocab.setdefault(h, len(vocab))
    D = _matrix(doc_hashes, vocab)
    w = weights(D)
    Dw = D.multiply(w[None, :]).tocsr()
    shared_w = (Dw @ D.T).toarray()
    shared_n = (D @ D.T).toarray()
    mass = np.diag(shared_w).copy()
    big = np.maximum(np.maximum(mass[:, None], mass[None, :]), 1e-12)
    damp = np.minimum(1.0, shared_n / MIN_SHARED)
    file_score = np.clip(shared_w / big * damp, 0.0, 1.0)
    func, ua, ub = _function_scores(docs, vocab, w)
    score = np.maximum(file_score, FUNCTION_WEIGHT * func)
    mask = wanted(docs)
    pairs = []
    for i, j in zip(*np.nonzero(mask)):
        pairs.append(Pair(docs[i], docs[j], float(score[i, j]), float(file_score[i, j]), float(func[i, j]),
                          float(shared_w[i, j] / mass[i]) if mass[i] else 0.0,
                          float(shared_w[i, j] / mass[j]) if mass[j] else 0.0, int(shared_n[i, j]),
                          *(_unit_names(docs, i, j, ua, ub))))
    pairs.sort(key=lambda p: (-p.score, -p.file_score, p.a.name, p.b.name))
    return Ranking(pairs, dict(zip(vocab, w.tolist())))


def _unit_names(docs, i, j, ua, ub) -> tuple[str, str]:
    u, v = ua[i, j], ub[i, j]
    if u < 0 or v < 0:
        return "", ""
    return docs[i].fp.units[u].name, docs[j].fp.units[v].name


def _function_scores(docs: list[Document], vocab: dict[int, int], w: np.ndarray):
    """(n, n) best unit-pair score, and (n, n) indices of the units of a and of b behind it (-1: none)."""
    n = len(docs)
    owner, index, rows = [], [], []
    for d_i, d in enumerate(docs):
        for u_i, unit in enumerate(d.fp.units):
            if unit.hashes:
                owner.append(d_i)
                index.append(u_i)
                rows.append(unit.hashes)
    best = np.zeros((n, n))
    ua = np.full((n, n), -1, dtype=np.int64)
    ub = np.full((n, n), -1, dtype=np.int64)
    if not rows:
        return best, ua, ub
    U = _matrix(rows, vocab)
    Uw = U.multiply(w[None, :]).tocsr()
    mass = np.asarray(Uw.sum(axis=1)).ravel()
    S = (Uw @ U.T).tocoo()
    owner_a, index_a = np.array(owner), np.array(index)
    r, c, v = S.row, S.col, S.data
    keep = (owner_a[r] != owner_a[c]) & (v >= MIN_UNIT_MASS)
    r, c, v = r[keep], c[keep], v[keep]
    if not len(v):
        return best, ua, ub
    value = v / np.maximum(mass[r], mass[c])
    a, b = owner_a[r], owner_a[c]
    key = a * n + b
    order = np.lexsort((value, key))           # by document pair, then score: the last of a run is the best
    last = order[np.flatnonzero(np.r_[key[order][1:] != key[order][:-1], True])]
    best[a[last], b[last]] = value[last]
    ua[a[last], b[last]] = index_a[r[last]]
    ub[a[last], b[last]] = index_a[c[last]]
    return best, ua, ub
