"""What a store holds and what each backup costs: the store's bytes (data, row digests, manifests, shard records),
the bytes unique to each backup (exactly what deleting it alone frees), the garbage gc would collect, and the
deduplication ratio.

:func:`store_stats` is pure (manifests and a listing in, numbers out); :func:`collect_stats` reads them from a
store. It takes no lock: a backup, delete or gc running at the same time may make the numbers a moment stale.
A manifest or shard record that cannot be read does not stop it: it is reported in ``unreadable``, and the numbers
that depend on knowing every reference (each backup's unique bytes, the unreferenced bytes) are then ``None``, as
``delete`` and ``gc`` would free nothing in that case either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vecbackup.format import layout
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.manifest import Manifest
from vecbackup.format.shard import SHARDS
from vecbackup.format.tombstone import TOMBSTONES
from vecbackup.ops import catalog
from vecbackup.ops.commit import pending_records
from vecbackup.stores.base import (
    BlobStore,
    ObjectInfo,
    ObjectNotFound,
    Retaining,
    Retention,
    cannot_lock,
    in_flight,
    object_lock,
    retention,
)

#: the prefixes whose objects are the store's contents (locks are transient and not counted)
PREFIXES = (layout.DATA, layout.DIGESTS, layout.MANIFESTS, SHARDS, TOMBSTONES)


@dataclass(frozen=True)
class BackupStats:
    backup_id: str
    collection: str
    completed_at: str
    rows: int
    objects: int
    referenced_bytes: int  # the manifest's size: every data object it uses, whole, shared or not
    uploaded_bytes: int | None  # what this backup uploaded (data and digests); None when the manifest does not say
    unique_bytes: int | None  # data objects (and their digests) no other backup nor shard record uses
    unique_objects: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "collection": self.collection, "completed_at": self.completed_at,
                "rows": self.rows, "objects": self.objects, "referenced_bytes": self.referenced_bytes,
                "uploaded_bytes": self.uploaded_bytes, "unique_bytes": self.unique_bytes,
                "unique_objects": self.unique_objects}


def _z(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Locks:
    """The objects of a store by their lock at one moment (``stats --locks``: a HEAD each): those locked then, which
    no one can delete (a delete only hides them behind a delete marker), and the others (no lock, or one that has
    ended), with the first and last end of the locks in force."""

    locked_objects: int = 0
    locked_bytes: int = 0
    unlocked_objects: int = 0
    unlocked_bytes: int = 0
    earliest_end: datetime | None = None
    latest_end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"locked_objects": self.locked_objects, "locked_bytes": self.locked_bytes,
                "unlocked_objects": self.unlocked_objects, "unlocked_bytes": self.unlocked_bytes,
                "earliest_end": _z(self.earliest_end), "latest_end": _z(self.latest_end)}


def lock_summary(objects: Iterable[tuple[ObjectInfo, Retention | None]], now: datetime) -> Locks:
    """:class:`Locks` of ``objects`` (each with its lock, None for none) at ``now``."""
    locked_n = locked_b = other_n = other_b = 0
    ends: list[datetime] = []
    for info, r in objects:
        if r is not None and r.until > now:
            locked_n, locked_b = locked_n + 1, locked_b + info.size
            ends.append(r.until)
        else:
            other_n, other_b = other_n + 1, other_b + info.size
    return Locks(locked_n, locked_b, other_n, other_b, min(ends, default=None), max(ends, default=None))


def read_locks(store: BlobStore, listing: Sequence[ObjectInfo]) -> Locks:
    """The lock of every object of ``listing`` (a HEAD each, ``concurrency`` at a time; one deleted meanwhile is not
    counted), summed up now. Unsupported on a store that cannot lock objects."""
    if not isinstance(store, Retaining):
        raise cannot_lock(store.display)

    def one(info: ObjectInfo) -> tuple[ObjectInfo, Retention | None] | None:
        try:
            return info, retention(store, info.key)
        except ObjectNotFound:
            return None

    if not listing:
        return Locks()
    with ThreadPoolExecutor(max_workers=min(len(listing), in_flight(store)),
                            thread_name_prefix="vecbackup-locks") as pool:
        read = [r for r in pool.map(one, listing) if r is not None]
    return lock_summary(read, datetime.now(UTC))


@dataclass
class StoreStats:
    """Store-wide: the ``*_bytes`` totals, ``data_objects``, ``unreferenced_*``, ``pending_records``. Of the
    backups listed (every backup, or those of ``collection``): ``backups``, ``referenced_bytes``,
    ``referenced_stored_bytes``, ``dedup_ratio`` and ``missing_objects``."""

    collection: str | None
    data_bytes: int  # everything under data/
    digests_bytes: int  # under digests/
    manifests_bytes: int  # under manifests/
    shard_records_bytes: int  # under shards/: sharded backups not committed yet
    data_objects: int
    backups: list[BackupStats]
    referenced_bytes: int  # sum of the listed backups' referenced bytes
    referenced_stored_bytes: int  # bytes stored for the distinct data objects the listed backups use
    unreferenced_bytes: int | None  # data objects (and digests) nothing uses: what gc collects once old enough
    unreferenced_objects: int | None
    missing_objects: int  # data objects the listed backups use that are not in the store (`vecbackup verify`)
    pending_records: int
    unreadable: list[str] = field(default_factory=list)  # a message per manifest or shard record not read
    store: str = ""
    tombstones_bytes: int = 0  # under tombstones/: the marks deleted backups leave (format/tombstone.py)
    #: the store's object lock: every object it keeps is locked from its write (and each backup that reuses it)
    #: for that many days; deleted ones stay billed as noncurrent versions till then (not counted here)
    object_lock: ObjectLock | None = None
    locks: Locks | None = None  # each object's lock, when asked for (read_locks)

    @property
    def total_bytes(self) -> int:
        return self.data_bytes + self.digests_bytes + self.manifests_bytes + self.shard_records_bytes + \
            self.tombstones_bytes

    @property
    def dedup_ratio(self) -> float | None:
        """What the listed backups would occupy stored separately, over what their data objects occupy."""
        if not self.referenced_stored_bytes:
            return None
        return self.referenced_bytes / self.referenced_stored_bytes

    def to_dict(self) -> dict[str, Any]:
        ratio = self.dedup_ratio
        return {"store": self.store, "collection": self.collection, "total_bytes": self.total_bytes,
                "data_bytes": self.data_bytes, "digests_bytes": self.digests_bytes,
                "manifests_bytes": self.manifests_bytes, "shard_records_bytes": self.shard_records_bytes,
                "tombstones_bytes": self.tombstones_bytes, "data_objects": self.data_objects,
                "referenced_bytes": self.referenced_bytes,
                "referenced_stored_bytes": self.referenced_stored_bytes,
                "dedup_ratio": None if ratio is None else round(ratio, 4),
                "unreferenced_bytes": self.unreferenced_bytes, "unreferenced_objects": self.unreferenced_objects,
                "missing_objects": self.missing_objects, "pending_records": self.pending_records,
                "unreadable": self.unreadable, "backups": [b.to_dict() for b in self.backups],
                "object_lock": None if self.object_lock is None else self.object_lock.to_dict(),
                **({} if self.locks is None else {"locks": self.locks.to_dict()})}


def store_stats(manifests: Sequence[Manifest], pending_manifests: Sequence[Manifest], listing: Iterable[ObjectInfo],
                *, collection: str | None = None, unreadable: Sequence[str] = ()) -> StoreStats:
    """The numbers for a store holding ``manifests`` (every committed backup, of every collection), the manifests
    of its shard records (``pending_manifests``: their objects are in use) and the objects ``listing`` names (any
    of data/, digests/, manifests/, shards/, tombstones/; other keys are ignored). ``collection`` lists only its
    backups; what is unique to one is still judged against every backup, since objects can be shared across
    collections.
    ``unreadable``: a message per manifest or shard record that could not be read (unique and unreferenced bytes
    are then unknown: None)."""
    data_size: dict[str, int] = {}  # data key -> stored bytes
    digests_size: dict[str, int] = {}  # data key (of the object they describe) -> stored bytes
    totals = dict.fromkeys(PREFIXES, 0)
    for info in listing:
        prefix = next((p for p in PREFIXES if info.key.startswith(p)), None)
        if prefix is None:
            continue
        totals[prefix] += info.size
        if layout.parse_data_key(info.key) is not None:
            data_size[info.key] = info.size
        elif (sha := layout.parse_digests_key(info.key)) is not None:
            digests_size[layout.data_key(sha)] = info.size

    def stored(key: str) -> int:
        """What removing a data object frees: it and its row digests, as listed (nothing if absent)."""
        return data_size.get(key, 0) + digests_size.get(key, 0)

    users: dict[str, int] = {}  # data key -> how many backups and shard records use it
    for m in [*manifests, *pending_manifests]:
        for key in {o.key for o in m.objects}:
            users[key] = users.get(key, 0) + 1
    known = not unreadable

    listed = [m for m in manifests if collection is None or m.collection.name == collection]
    backups = []
    for m in listed:
        unique = {o.key for o in m.objects if users.get(o.key) == 1}
        backups.append(BackupStats(
            backup_id=m.backup_id, collection=m.collection.name, completed_at=m.completed_at, rows=m.rows,
            objects=len(m.objects), referenced_bytes=m.size,
            uploaded_bytes=None if m.incremental is None else m.incremental.new_bytes,
            unique_bytes=sum(stored(k) for k in unique) if known else None,
            unique_objects=len(unique) if known else None))

    used = {o.key for m in listed for o in m.objects}
    garbage = {k for k in [*data_size, *digests_size] if k not in users}
    return StoreStats(
        collection=collection, data_bytes=totals[layout.DATA], digests_bytes=totals[layout.DIGESTS],
        manifests_bytes=totals[layout.MANIFESTS], shard_records_bytes=totals[SHARDS], data_objects=len(data_size),
        backups=backups, referenced_bytes=sum(m.size for m in listed),
        referenced_stored_bytes=sum(data_size.get(k, 0) for k in used),
        unreferenced_bytes=sum(stored(k) for k in garbage) if known else None,
        unreferenced_objects=sum((k in data_size) + (k in digests_size) for k in garbage) if known else None,
        missing_objects=sum(k not in data_size for k in used), pending_records=len(pending_manifests),
        unreadable=list(unreadable), tombstones_bytes=totals[TOMBSTONES])


def collect_stats(store: BlobStore, collection: str | None = None, *, locks: bool = False) -> StoreStats:
    """:func:`store_stats` of ``store``: its manifests and shard records, then its listing (in that order, as gc:
    an object a backup writes meanwhile is counted as unreferenced, never as missing). With ``locks``, the lock of
    every object listed too (read_locks: a HEAD each)."""
    manifests, problems = catalog.list_manifests(store)
    records, record_problems = pending_records(store)
    listing = [info for prefix in PREFIXES for info in store.list(prefix)]
    result = store_stats(manifests, [r.manifest for r in records], listing, collection=collection,
                         unreadable=[*problems, *record_problems])
    result.store = store.display
    result.object_lock = object_lock(store)
    if locks:
        result.locks = read_locks(store, listing)
    return result
