"""Exact top-k nearest neighbours of a few query vectors, over a collection streamed chunk by chunk.

A recovery drill measures an index's recall against this exact ground truth, computed from the backup's own
vectors, instead of comparing one approximate search with another. Pure: numpy arrays in, scores out, no I/O.

Scores, smaller is better, computed in float64 from the stored values (16-bit floats decoded from their raw bits):

* ``L2``: squared euclidean distance;
* ``IP``: the negated inner product (dense, and sparse over the indices both vectors hold);
* ``COSINE``: the negated cosine similarity; a zero vector has similarity 0 with everything;
* ``MANHATTAN``: the L1 distance;
* ``HAMMING`` (binary): the number of differing bits;
* ``JACCARD`` (binary): ``1 - |a AND b| / |a OR b|``, 0 when both vectors are all zero.

A row whose score is undefined (NaN in the data) ranks after every other row.

Recall: the first ``k`` distinct keys a search returned are compared with the exact scores. A returned key is a hit
when its exact score is known (it is in the exact top k, or it was *watched*: give the keys the search returned as
``watch``) and is no worse than the exact k-th best score plus ``rel_tol * max(1, |kth|)``. So a key tied with the
k-th best counts even when the arbitrary tie-break left it out of ``top``, and float32-versus-float64 rounding never
counts as a miss; a key that is not in the data, or has no vector, is a miss. Recall is hits / min(k, rows with a
vector), and 1.0 when no row has a vector.

Memory does not grow with the collection: besides the chunk being scanned (its Q x n score matrix and one float64
copy of its vectors), only the k best (key, score) pairs of each of the Q queries and the watched scores are kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecbackup.errors import Unsupported
from vecbackup.schema import FieldType

#: metrics each kind of vector takes; the first is the default
_DENSE_METRICS = ("L2", "IP", "COSINE", "MANHATTAN")
_BINARY_METRICS = ("HAMMING", "JACCARD")
_SPARSE_METRICS = ("IP",)
#: other engines' names for the same metrics (Qdrant: Euclid, Dot)
_ALIASES = {"EUCLID": "L2", "DOT": "IP"}

#: number of set bits of every byte value
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

_F8 = np.dtype(np.float64)


def _metrics_for(ftype: FieldType) -> tuple[str, ...]:
    if ftype is FieldType.BINARY_VECTOR:
        return _BINARY_METRICS
    if ftype is FieldType.SPARSE_FLOAT_VECTOR:
        return _SPARSE_METRICS
    if ftype.is_dense_vector:
        return _DENSE_METRICS
    return ()


def canonical_metric(metric: str | None, ftype: FieldType) -> str:
    """The metric's canonical name for a field of type ``ftype``; None (or "") is the type's default.

    Defaults: L2 for dense float and int8 vectors, HAMMING for binary, IP for sparse. Aliases: EUCLID is L2, DOT is
    IP. Raises Unsupported for an unknown metric, or one that does not apply to the type.
    """
    ftype = FieldType(ftype)
    allowed = _metrics_for(ftype)
    if not allowed:
        raise Unsupported(f"{ftype.value} is not a vector type: it has no nearest neighbours")
    name = (metric or "").strip().upper()
    if not name:
        return allowed[0]
    name = _ALIASES.get(name, name)
    if name not in allowed:
        raise Unsupported(f"metric {metric!r} does not apply to {ftype.value} (it takes {', '.join(allowed)})")
    return name


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


@dataclass(frozen=True)
class QueryTruth:
    """The exact answer for one query: its best rows, the watched keys' scores, and how many rows were scanned."""

    #: exact best (key, score) pairs, best first, at most k; ties at the boundary broken arbitrarily
    top: tuple[tuple[Any, float], ...]
    #: exact score of every watched key that was seen with a vector
    watched: dict[Any, float]
    #: rows with a vector that were scanned
    rows: int

    def kth(self, k: int | None = None) -> float | None:
        """Score of the k-th best row (default: the last one kept), or of the worst row when there are fewer.

        None when no row was scanned. Raises ValueError when ``k`` exceeds the k this truth was computed for.
        """
        if not self.top:
            return None
        if k is None:
            return self.top[-1][1]
        _check_k(k)
        if k > len(self.top) and len(self.top) < self.rows:
            raise ValueError(f"the {k}-th best is unknown: only the best {len(self.top)} rows were kept")
        return self.top[min(k, len(self.top)) - 1][1]

    def recall(self, returned: Sequence[Any], k: int, rel_tol: float = 1e-4) -> float:
        """Share of the first ``k`` distinct ``returned`` keys that are among the exact best (see the module doc).

        The denominator is min(k, rows); 1.0 when no row was scanned. Raises ValueError for a ``k`` larger than the
        one this truth was computed with (when more rows than that were scanned).
        """
        _check_k(k)
        if rel_tol < 0:
            raise ValueError(f"rel_tol must not be negative, got {rel_tol!r}")
        kth = self.kth(k)
        if self.rows == 0 or kth is None:
            return 1.0
        limit = kth + rel_tol * max(1.0, abs(kth)) if math.isfinite(kth) else kth
        known = {**self.watched, **dict(self.top)}
        chosen: dict[Any, None] = {}
        for key in returned:
            if len(chosen) == k:
                break
            chosen.setdefault(key)
        hits = sum(1 for key in chosen if key in known and known[key] <= limit)
        return hits / min(k, self.rows)


def _to_float64(ftype: FieldType, arr: np.ndarray, what: str) -> np.ndarray:
    """Dense non-binary vectors as float64 (16-bit floats arrive as their raw bit patterns)."""
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if ftype in (FieldType.FLOAT16_VECTOR, FieldType.BFLOAT16_VECTOR):
        if kind != "u" or size != 2:
            raise ValueError(f"{what}: {ftype.value} values are raw 16-bit patterns (uint16), got {arr.dtype}")
        bits = arr.astype("<u2", copy=False)
        if ftype is FieldType.FLOAT16_VECTOR:
            return bits.view("<f2").astype(_F8)
        return (bits.astype("<u4") << 16).view("<f4").astype(_F8)
    if kind not in "iuf":
        raise ValueError(f"{what}: {ftype.value} values must be numbers, got {arr.dtype}")
    return arr.astype(_F8)


def _to_bits(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind != "u" or arr.dtype.itemsize != 1:
        raise ValueError(f"{what}: BINARY_VECTOR values are packed bytes (uint8), got {arr.dtype}")
    return arr


def _popcount(arr: np.ndarray) -> np.ndarray:
    """Set bits of each row of a (n, bytes) uint8 array, as float64."""
    return _POPCOUNT[arr].sum(axis=1, dtype=np.int64).astype(_F8)


def _sparse_queries(queries: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Sparse queries as (every index any query holds, sorted; a (queries, indices) matrix of their values)."""
    for i, q in enumerate(queries):
        if not isinstance(q, Mapping):
            raise ValueError(f"query {i}: a sparse query is a dict index -> value, got {type(q).__name__}")
    index = np.array(sorted({int(j) for q in queries for j in q}), dtype=np.int64)
    weights = np.zeros((len(queries), index.size), dtype=_F8)
    for i, q in enumerate(queries):
        if q:
            weights[i, np.searchsorted(index, np.array(list(q.keys()), dtype=np.int64))] = list(q.values())
    return index, weights


class ExactTopK:
    """Streams chunks of a vector column and keeps, per query, the exact k best rows (smallest scores).

    ``queries`` are one vector each in the form one row of the column has (a 1-D ndarray of the stored dtype and
    width, or a sparse dict); ``metric`` is any name :func:`canonical_metric` accepts; ``watch`` optionally gives,
    per query, the keys whose exact score should be recorded (e.g. the keys a search returned).
    """

    def __init__(self, ftype: FieldType, metric: str, queries: Sequence[Any], k: int,
                 watch: Sequence[Collection[Any]] | None = None) -> None:
        self.ftype = FieldType(ftype)
        self.metric = canonical_metric(metric, self.ftype)
        _check_k(k)
        self.k = k
        nq = len(queries)
        if watch is not None and len(watch) != nq:
            raise ValueError(f"watch must have one collection of keys per query ({nq}), got {len(watch)}")
        self._watch = [frozenset(w) for w in watch] if watch is not None else [frozenset[Any]()] * nq
        self._watch_any: frozenset[Any] = frozenset().union(*self._watch)
        self._sparse_index = np.empty(0, dtype=np.int64)
        self._sparse_weights = np.empty((nq, 0), dtype=_F8)
        self._dense = np.empty((0, 0))
        self._width: int | None = None
        if self.ftype is FieldType.SPARSE_FLOAT_VECTOR:
            self._sparse_index, self._sparse_weights = _sparse_queries(queries)
        elif nq:
            arrays = [np.asarray(q) for q in queries]
            widths = {a.shape for a in arrays}
            if len(widths) != 1 or arrays[0].ndim != 1:
                raise ValueError(f"queries must be 1-D arrays of one width, got shapes {sorted(widths)}")
            stacked = np.stack(arrays)
            self._width = stacked.shape[1]
            if self.ftype is FieldType.BINARY_VECTOR:
                self._dense = _to_bits(stacked, "queries")
            else:
                self._dense = _to_float64(self.ftype, stacked, "queries")
        self._nq = nq
        self._rows = 0
        self._best_scores = [np.empty(0, dtype=_F8) for _ in range(nq)]
        self._best_keys: list[list[Any]] = [[] for _ in range(nq)]
        self._watched: list[dict[Any, float]] = [{} for _ in range(nq)]

    def add(self, keys: Sequence[Any], values: Any, valid: np.ndarray | None = None) -> None:
        """Scan one chunk: its primary keys, the vector column's values and optional validity mask."""
        key_list: list[Any] = keys.tolist() if isinstance(keys, np.ndarray) else list(keys)
        n = len(key_list)
        if len(values) != n:
            raise ValueError(f"chunk has {n} keys but {len(values)} vector values")
        mask = None
        if valid is not None:
            mask = np.asarray(valid)
            if mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(f"valid must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
        if self.ftype is FieldType.SPARSE_FLOAT_VECTOR:
            ok = mask.tolist() if mask is not None else [True] * n
            present = [i for i, v in enumerate(values) if v is not None and ok[i]]
            rows: list[Any] = [values[i] for i in present]
            for i, v in zip(present, rows, strict=True):
                if not isinstance(v, Mapping):
                    raise ValueError(f"chunk row {i}: a sparse vector is a dict index -> value, got {type(v).__name__}")
            if len(present) < n:
                key_list = [key_list[i] for i in present]
            self._rows += len(rows)
            if rows and self._nq:
                self._merge(self._sparse_scores(rows), key_list)
            return
        arr = np.asarray(values)
        if n == 0:
            return
        if arr.ndim != 2 or (self._width is not None and arr.shape[1] != self._width):
            raise ValueError(f"chunk values must have shape ({n}, {self._width}), got {arr.shape}")
        if mask is not None and not mask.all():
            arr = arr[mask]
            key_list = [key for key, ok in zip(key_list, mask.tolist(), strict=True) if ok]
        self._rows += len(key_list)
        if key_list and self._nq:
            self._merge(self._dense_scores(arr), key_list)

    def results(self) -> list[QueryTruth]:
        """The exact answer of every query, in query order."""
        out = []
        for scores, keys, watched in zip(self._best_scores, self._best_keys, self._watched, strict=True):
            order = np.argsort(scores, kind="stable").tolist()
            top = tuple((keys[j], float(scores[j])) for j in order)
            out.append(QueryTruth(top=top, watched=dict(watched), rows=self._rows))
        return out

    # ----------------------------------------------------------------------- scoring

    def _dense_scores(self, arr: np.ndarray) -> np.ndarray:
        """(queries, rows) scores of a chunk's dense vectors."""
        q = self._dense
        out = np.empty((self._nq, arr.shape[0]), dtype=_F8)
        if self.ftype is FieldType.BINARY_VECTOR:
            x = _to_bits(arr, "chunk values")
            for i, qv in enumerate(q):
                if self.metric == "HAMMING":
                    out[i] = _popcount(x ^ qv)
                else:  # JACCARD
                    union = _popcount(x | qv)
                    inter = _popcount(x & qv)
                    out[i] = 1.0 - np.divide(inter, union, out=np.ones_like(union), where=union > 0)
            return out
        x = _to_float64(self.ftype, arr, "chunk values")
        if self.metric == "IP":
            return -(q @ x.T)
        if self.metric == "COSINE":
            dots = q @ x.T
            norms = np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(x, axis=1))
            return -np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        if self.metric == "L2":
            # |q|^2 - 2 q.x + |x|^2 in float64: its cancellation error (~1e-13 of |x|^2) is far below recall's
            # tolerance, and one matrix product is ~6x faster than forming every difference
            sq = np.einsum("ij,ij->i", x, x)[None, :] + np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ x.T)
            return np.maximum(sq, 0.0)
        for i, qv in enumerate(q):
            out[i] = np.abs(x - qv).sum(axis=1)
        return out

    def _sparse_scores(self, rows: list[Mapping[int, float]]) -> np.ndarray:
        """(queries, rows) negated dot products, via the chunk's flat (row, index, value) entries that a query holds."""
        m = len(rows)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=m)
        total = int(lengths.sum())
        idx = np.fromiter(itertools.chain.from_iterable(r.keys() for r in rows), dtype=np.int64, count=total)
        val = np.fromiter(itertools.chain.from_iterable(r.values() for r in rows), dtype=_F8, count=total)
        row_of = np.repeat(np.arange(m), lengths)
        out = np.zeros((self._nq, m), dtype=_F8)
        index = self._sparse_index
        if index.size == 0 or total == 0:
            return out
        pos = np.minimum(np.searchsorted(index, idx), index.size - 1)
        shared = index[pos] == idx
        row_of, val, pos = row_of[shared], val[shared], pos[shared]
        for i, weights in enumerate(self._sparse_weights):
            out[i] = -np.bincount(row_of, weights=val * weights[pos], minlength=m)
        return out

    # ----------------------------------------------------------------------- bookkeeping

    def _merge(self, scores: np.ndarray, keys: list[Any]) -> None:
        """Fold a chunk's (queries, rows) scores into the kept bests and the watched scores."""
        scores = scores + 0.0  # -0.0 -> 0.0
        scores[np.isnan(scores)] = np.inf
        k = self.k
        for i in range(self._nq):
            best, best_keys = self._best_scores[i], self._best_keys[i]
            kept = best.size
            cand = np.concatenate([best, scores[i]])
            pick = np.argpartition(cand, k - 1)[:k] if cand.size > k else np.arange(cand.size)
            self._best_keys[i] = [best_keys[j] if j < kept else keys[j - kept] for j in pick.tolist()]
            self._best_scores[i] = cand[pick]
        if not self._watch_any:
            return
        for j in [j for j, key in enumerate(keys) if key in self._watch_any]:
            key = keys[j]
            for i, watch in enumerate(self._watch):
                if key in watch:
                    score = float(scores[i, j])
                    self._watched[i][key] = min(score, self._watched[i].get(key, score))


def query_value(ftype: FieldType, values: Any, row: int) -> Any:
    """One row of a vector column as a query for :class:`ExactTopK`: an ndarray copy, or a dict (None if null).

    The caller checks the column's validity mask: a null dense row holds zeros, not a vector.
    """
    if FieldType(ftype) is FieldType.SPARSE_FLOAT_VECTOR:
        value = values[row]
        return None if value is None else dict(value)
    return np.array(np.asarray(values)[row], copy=True)


__all__ = ["ExactTopK", "QueryTruth", "canonical_metric", "query_value"]
