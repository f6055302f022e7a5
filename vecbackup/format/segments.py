"""Where the rows of a segment backup came from (docs/FORMAT.md, "Segment backups"): pure.

A segment backup (``backup --segments-from URL``) reads a Milvus collection's sealed segments from the files the
server keeps (binlogs) instead of through its query path, and stores them as ordinary data objects. Each object
holds a run of consecutive rows of one segment, every row its insert binlogs hold (deleted ones too), and the
manifest selects the live ones (``DataObject.select``). The manifest's ``segments`` list records, per segment, the
files it was read from and the objects holding its rows in order, so that the next backup:

* reuses a segment whose insert binlogs are the same files (server path and size) without reading them again: only
  its primary keys and timestamps (two small binlogs) are read, to apply the deletes that arrived since;
* reads the segments that are new (inserts, upserts, compaction output), and uploads only the rows of them no
  earlier object holds: a compaction rewrites segments without changing their rows, and a piece with ``select``
  names such rows where the base stored them (the manifest's format version 4).

A row is live unless a delete of its primary key is newer than the row: its timestamp is at least the newest delete
timestamp of its key (a delete removes every copy of the key written before it; an upsert writes its delete and
its new row with one timestamp, and the new row stays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecbackup.format import layout
from vecbackup.format.ranges import Ranges, check_ranges, count, format_select, parse_select, select_positions


@dataclass(frozen=True)
class Piece:
    """The next ``rows`` rows of the segment, in order (every row, live or not): those of one data object, or
    (``select``) the rows of it at those positions, in the object's order. A piece with ``select`` holds rows an
    earlier backup stored, found again in a segment the server rewrote (a compaction: format/segments.py module
    doc)."""

    key: str
    sha256: str
    size: int
    rows: int
    select: Ranges | None = None

    def __post_init__(self) -> None:
        if self.select is not None:
            check_ranges(self.select, self.rows, f"segment piece {self.key}")

    def positions(self) -> np.ndarray:
        """The positions in the object of the piece's rows, in order."""
        return select_positions(self.select, self.rows)

    def to_list(self) -> list[Any]:
        out: list[Any] = [self.key, self.sha256, self.size, self.rows]
        return out if self.select is None else [*out, format_select(self.select)]

    @classmethod
    def from_list(cls, v: Any) -> Piece:
        """ValueError unless ``v`` is a piece whose key is a data object key (it goes to the store as it is)."""
        if not isinstance(v, list) or len(v) not in (4, 5):
            raise ValueError("a segment piece is [key, sha256, size, rows] or [key, sha256, size, rows, select]")
        key, sha, size, rows = v[:4]
        if not isinstance(key, str) or layout.parse_data_key(key) is None:
            raise ValueError(f"{key!r} is not a data object key (data/<aa>/<sha256>.vbc)")
        layout.data_key(sha)  # ValueError unless 64 hex digits
        return cls(key, sha, count(size), count(rows), parse_select(v[4]) if len(v) == 5 else None)


@dataclass(frozen=True)
class SegmentRecord:
    """A segment a backup read: its id and partition, the fingerprint of its insert binlogs, and its pieces."""

    segment_id: int
    partition: str
    fingerprint: str  # files_fingerprint of its insert binlogs
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pieces)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.segment_id, "partition": self.partition, "fingerprint": self.fingerprint,
                "rows": self.rows, "pieces": [p.to_list() for p in self.pieces]}

    @classmethod
    def from_dict(cls, d: Any) -> SegmentRecord:
        if not isinstance(d, dict) or not isinstance(d.get("pieces"), list):
            raise ValueError("a segment record is an object with pieces")
        fp = d["fingerprint"]
        if not isinstance(fp, str) or len(fp) != 64:
            raise ValueError("a segment fingerprint is 64 hex digits")
        r = cls(count(d["id"]), str(d["partition"]), fp, tuple(Piece.from_list(p) for p in d["pieces"]))
        if count(d.get("rows", r.rows)) != r.rows:
            raise ValueError(f"segment {r.segment_id}: rows does not match its pieces")
        return r


def files_fingerprint(files: Iterable[tuple[int, str, int]]) -> str:
    """SHA-256 of a segment's insert binlogs as (field id, server path, size), order-independent. Binlogs are
    written once under a new log id and never changed, so the same files are the same rows."""
    h = hashlib.sha256()
    for fid, path, size in sorted(files):
        h.update(f"{fid}\0{path}\0{size}\n".encode())
    return h.hexdigest()


class Deletes:
    """The newest delete timestamp of each primary key, from every delta log of the collection, as of ``until``
    (the flush's timestamp: the backup is the collection at that instant; None: every delete and row)."""

    def __init__(self, until: int | None = None) -> None:
        self.until = until
        self._int: dict[int, int] = {}
        self._str: dict[str, int] = {}

    def add(self, keys: Sequence[Any] | np.ndarray, timestamps: Sequence[int] | np.ndarray) -> None:
        """Record deletes; one after ``until`` is left out (an upsert after the flush deletes the old row at a time
        whose new row is not in the sealed segments: applying the delete would lose the key)."""
        for k, ts in zip(keys.tolist() if isinstance(keys, np.ndarray) else keys,
                         timestamps.tolist() if isinstance(timestamps, np.ndarray) else timestamps, strict=True):
            if self.until is not None and ts > self.until:
                continue
            table: dict[Any, int] = self._str if isinstance(k, str) else self._int
            if ts > table.get(k, -1):
                table[k] = int(ts)

    def __len__(self) -> int:
        return len(self._int) + len(self._str)

    def live(self, keys: np.ndarray | Sequence[Any], timestamps: np.ndarray) -> np.ndarray:
        """Which rows (primary keys with their insert timestamps) no delete removed, written by ``until``."""
        ts = np.asarray(timestamps, dtype=np.uint64)
        out = np.ones(len(ts), dtype=bool) if self.until is None else ts <= np.uint64(self.until)
        if not len(self):
            return out
        if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
            if not self._int:
                return out
            dk = np.fromiter(self._int.keys(), dtype=np.int64, count=len(self._int))
            dt = np.fromiter(self._int.values(), dtype=np.uint64, count=len(self._int))
            order = np.argsort(dk)
            dk, dt = dk[order], dt[order]
            pos = np.searchsorted(dk, keys)
            pos = np.minimum(pos, len(dk) - 1)
            hit = dk[pos] == keys
            out[hit] &= ts[hit] >= dt[pos[hit]]
            return out
        table: Mapping[Any, int] = self._str if self._str else self._int
        for i, k in enumerate(keys.tolist() if isinstance(keys, np.ndarray) else keys):
            d = table.get(k)
            if d is not None and ts[i] < d:
                out[i] = False
        return out


def join_keys(parts: Sequence[Any]) -> Any:
    """Primary keys read in parts, as one: an int64 array when every part is one, else a list (VARCHAR keys)."""
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [k for p in parts for k in p]


def reusable(base: Sequence[SegmentRecord], partition: str, segment_id: int, fingerprint: str,
             ) -> SegmentRecord | None:
    """The base's record of this segment if it was read from the same files."""
    for r in base:
        if r.segment_id == segment_id and r.partition == partition and r.fingerprint == fingerprint:
            return r
    return None
