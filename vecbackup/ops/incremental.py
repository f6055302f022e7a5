"""Incremental uploads: find the rows an earlier backup already stored, so a backup uploads only what changed.

Every backup stays full (its manifest lists every object it needs); only the upload is incremental. The *base* is
the newest backup of the collection in the store. For each partition, the base's row digests (``digests/`` objects,
one per data object, format/digests.py) are loaded into one sorted array; a row read from the database whose digest
is there is not stored again: the new manifest selects it in the object that holds it (``DataObject.select``).
Order does not matter, so this works whatever order the engine returns rows in, with ``--parallel`` and with
shards.

Memory: 25 bytes per row of the base's largest partition (about 24 MiB per million rows), on top of the batches.

An object the base uses less than half of is not reused: its rows still in the collection are stored again, so a
backup never makes a restore download more than about twice the bytes it needs.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vecbackup.errors import CorruptData, VecbackupError
from vecbackup.format import layout
from vecbackup.format.digests import DIGEST, decode_digests
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.format.ranges import ranges_of
from vecbackup.ops import catalog
from vecbackup.schema import CollectionSpec
from vecbackup.stores.base import BlobStore, ObjectNotFound, in_flight
from vecbackup.words import plural

#: an object of the base whose used rows are fewer than this share of its rows is not reused
REUSE_AT_LEAST = 0.5


def digest_layout(spec: CollectionSpec) -> tuple[Any, ...]:
    """What a row's digest depends on: the columns' names, types, dimensions and element types, in order."""
    return tuple((f.name, f.type.value, f.dim, f.element_type.value if f.element_type else None)
                 for f in spec.columns)


def find_base(store: BlobStore, spec: CollectionSpec) -> tuple[Manifest | None, list[str]]:
    """The newest readable backup of ``spec``'s collection whose rows are digested like ``spec``'s (None if there is
    none), and notes on why an earlier backup cannot serve."""
    notes: list[str] = []
    for ref in reversed(catalog.list_refs(store, spec.name)):
        try:
            base = catalog.load(store, ref)
        except VecbackupError as e:
            notes.append(f"backup {ref.backup_id} could not be read to reuse its rows ({e}); trying an older one")
            continue
        if digest_layout(base.collection) != digest_layout(spec):
            notes.append(f"the fields changed since backup {base.backup_id}: every row is uploaded")
            return None, notes
        return base, notes
    return None, notes


class PartitionRows:
    """The rows one partition of the base holds, by digest, and which of them this backup has reused so far."""

    def __init__(self, objects: Sequence[DataObject], digests: Sequence[np.ndarray | None]) -> None:
        self.objects = list(objects)
        self.totals = [0 if d is None else len(d) for d in digests]
        parts, owners, positions = [], [], []
        for j, (obj, d) in enumerate(zip(objects, digests, strict=True)):
            if d is None:
                continue
            held = obj.positions()
            parts.append(d[held])
            owners.append(np.full(obj.rows, j, dtype=np.uint32))
            positions.append(held.astype(np.uint32))
        all_digests = np.concatenate(parts) if parts else np.empty(0, dtype=DIGEST)
        order = np.argsort(all_digests, kind="stable")
        self.digests = all_digests[order]
        self.owner = np.concatenate(owners)[order] if owners else np.empty(0, dtype=np.uint32)
        self.position = np.concatenate(positions)[order] if positions else np.empty(0, dtype=np.uint32)
        self.used = np.zeros(len(self.digests), dtype=bool)

    def __len__(self) -> int:
        return len(self.digests)

    def match(self, digests: np.ndarray) -> np.ndarray:
        """Which of the rows (by digest) the base holds, each claimed once: True = reused, not stored again."""
        if not len(self.digests) or not len(digests):
            return np.zeros(len(digests), dtype=bool)
        at, hit = self._find(digests)
        rows = np.flatnonzero(hit)
        _, first = np.unique(at[rows], return_index=True)  # the same row twice in one batch: reuse it once
        keep = np.zeros(len(digests), dtype=bool)
        keep[rows[first]] = True
        self.used[at[keep]] = True
        return keep

    def _find(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each digest would stand among the base's (sorted), and whether a row of the base not yet claimed is
        there."""
        at = np.minimum(np.searchsorted(self.digests, digests), len(self.digests) - 1)
        return at, (self.digests[at] == digests) & ~self.used[at]

    def claim_all(self, digests: np.ndarray, max_runs: int) -> list[tuple[DataObject, np.ndarray]] | None:
        """Where the base holds every one of these rows (by digest; each row of the base claimed once) in at most
        ``max_runs`` runs, a run being rows held in one object at ascending positions: those runs in order (the
        object, the positions), and the rows are claimed. Otherwise None, and nothing is claimed (a segment
        backup stores such a batch anew: ops/segment_backup.py)."""
        n = len(digests)
        if not n or not len(self.digests):
            return None
        at, hit = self._find(digests)
        if not hit.all() or len(np.unique(at)) != n:
            return None  # a row the base does not hold (or not once more)
        owner, position = self.owner[at], self.position[at].astype(np.int64)
        starts = np.concatenate(([0], np.flatnonzero((owner[1:] != owner[:-1]) | (position[1:] <= position[:-1])) + 1))
        if len(starts) > max_runs:
            return None
        self.used[at] = True
        ends = [*starts[1:].tolist(), n]
        return [(self.objects[int(owner[a])], position[a:b]) for a, b in zip(starts.tolist(), ends, strict=True)]

    def reused(self) -> list[DataObject]:
        """The base's objects this backup uses, each with the rows it uses (``select``; none when it uses all)."""
        owner, position = self.owner[self.used], self.position[self.used]
        order = np.lexsort((position, owner))
        owner, position = owner[order], position[order]
        bounds = np.flatnonzero(np.diff(owner)) + 1
        out = []
        for own, pos in zip(np.split(owner, bounds), np.split(position, bounds), strict=True):
            if not len(own):
                continue
            obj = self.objects[int(own[0])]
            whole = len(pos) == self.totals[int(own[0])]
            out.append(DataObject(obj.key, obj.partition, len(pos), obj.size, obj.sha256,
                                  None if whole else ranges_of(pos.tolist())))
        return out


def load_partition(store: BlobStore, base: Manifest, partition: str, notes: list[str],
                   keys: Container[str] | None = None) -> PartitionRows:
    """The base's rows of ``partition`` (of its objects ``keys`` only, when given): the row digests of each of its
    objects there, fetched ``in_flight`` at a time. An object without readable digests (written before vecbackup
    kept them, or damaged) or mostly unused is not reused."""
    objects = [o for o in base.objects if o.partition == partition and (keys is None or o.key in keys)]

    damaged: list[str] = []

    def digests_of(obj: DataObject) -> np.ndarray | None:
        try:  # an unreachable store is the backup's error, not a reason to upload everything again
            d = decode_digests(store.get(layout.digests_key(obj.sha256)), where=f"digests of {obj.key}")
        except ObjectNotFound:
            return None
        except CorruptData:
            damaged.append(obj.key)
            return None
        if (obj.select is None and len(d) != obj.rows) or \
                (obj.select is not None and obj.select[-1][0] + obj.select[-1][1] > len(d)):
            damaged.append(obj.key)  # not the digests of this object's rows: do not trust them
            return None
        if obj.rows < REUSE_AT_LEAST * len(d):
            return None
        return d

    with ThreadPoolExecutor(max_workers=in_flight(store, 4), thread_name_prefix="vecbackup-digests") as pool:
        digests = list(pool.map(digests_of, objects))
    if damaged:
        notes.append(f"the row digests of {plural(len(damaged), 'object')} of backup {base.backup_id} are damaged "
                     "(first: "
                     f"{min(damaged)}): their rows are uploaded again; `vecbackup verify --read-data` names them all")
    missing = sum(1 for o, d in zip(objects, digests, strict=True)
                  if d is None and o.select is None and o.key not in damaged)
    if missing:
        notes.append(f"{plural(missing, 'object')} of backup {base.backup_id} {'has' if missing == 1 else 'have'} "
                     "no row digests (written by an earlier "
                     "vecbackup): their rows are uploaded again, once")
    return PartitionRows(objects, digests)
