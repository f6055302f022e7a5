"""Object lock as the stores apply it (docs/STORES.md, "Object lock"; docs/FORMAT.md, "Object lock").

A store whose settings (``vecbackup.json``) carry ``object_lock`` writes every object it keeps with that retention
(:func:`with_object_lock`, when it is opened); a backup extends the retention of every object its manifest names to
at least its own before it commits (:func:`retain_all`). Where the store cannot lock objects (a folder holding a copy
of a bucket) it is opened for reading, and every write of an object it would keep is refused
(:class:`Unlockable`): nothing is written there without the lock its settings ask for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vecbackup.errors import AuthenticationFailed, Unsupported
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.layout import is_transient
from vecbackup.format.manifest import Manifest
from vecbackup.stores.base import (
    BlobStore,
    ObjectInfo,
    ObjectNotFound,
    Retention,
    in_flight,
    layers,
    lock_objects,
    object_lock,
    retain,
    retention,
)


def with_object_lock(raw: BlobStore, lock: ObjectLock | None) -> BlobStore:
    """``raw`` writing every object it keeps with ``lock`` (None: as it is); :class:`Unlockable` where it cannot."""
    if lock is None:
        return raw
    try:
        lock_objects(raw, lock)
    except Unsupported:
        return Unlockable(raw, lock)
    return raw


class Unlockable:
    """A store whose settings ask for object lock, opened where it cannot be applied: read as usual, transient
    objects (store locks) written and removed as usual, every other write refused (Unsupported, exit 9)."""

    def __init__(self, inner: BlobStore, lock: ObjectLock) -> None:
        self.inner = inner
        self.display = inner.display
        self.lock = lock

    def __repr__(self) -> str:
        return f"Unlockable({self.display!r})"

    @property
    def concurrency(self) -> int:
        return int(getattr(self.inner, "concurrency", 2))

    def over(self, inner: BlobStore) -> BlobStore:
        """The same settings over another store under it (``undelete``: the current objects of a store that was read
        as of a past time, which can lock objects where the past view could not)."""
        return with_object_lock(inner, self.lock)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        if not is_transient(key):
            raise Unsupported(f"the settings of {self.display} (vecbackup.json) ask for object lock {self.lock}, "
                              f"which this store cannot apply: {key} is not written",
                              hint="write to the S3 bucket with Object Lock the store was made in; a copy elsewhere "
                                   "can be read (list, verify, restore) but not written")
        self.inner.put(key, data, if_absent=if_absent)

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.get(key, offset=offset, length=length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


@dataclass(frozen=True)
class Retained:
    """What :func:`retain_all` did: objects whose retention it read, and those it extended, to ``until`` (the date
    every object checked is now locked until, at least)."""

    checked: int = 0
    extended: int = 0
    until: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {"objects_lock_checked": self.checked, "objects_lock_extended": self.extended,
                "retain_until": None if self.until is None else self.until.strftime("%Y-%m-%dT%H:%M:%SZ")}


def retention_end(store: BlobStore, start: datetime) -> datetime | None:
    """When the lock of a backup started at ``start`` ends: its store's retention after ``start`` (None: no lock)."""
    lock = object_lock(store)
    return None if lock is None else start + timedelta(days=lock.days)


#: the member of a manifest's ``options`` that records the lock it was written under (``compliance:35d``)
MANIFEST_OPTION = "object_lock"


def lock_option(store: BlobStore) -> dict[str, str]:
    """What a backup records in its manifest's ``options`` about its store's lock (nothing without one)."""
    lock = object_lock(store)
    return {} if lock is None else {MANIFEST_OPTION: str(lock)}


def check_lock_kept(store: BlobStore, newest: Manifest | None) -> None:
    """AuthenticationFailed (exit 14) when ``newest`` (the store's newest backup, of any collection: ops/catalog.py
    newest()) was written under object lock and ``store`` now writes without one. A lock is chosen once
    (``vecbackup.json`` is written once), so its loss means the settings were deleted or rewritten by someone who may
    write the bucket: every backup from then on would write unlocked objects, and extend no lock. The store's newest,
    not the collection's: the first backup of a collection new to the store is written after the others."""
    if newest is None:
        return
    was = newest.options.get(MANIFEST_OPTION)
    if was and object_lock(store) is None and not _unlockable(store):
        raise AuthenticationFailed(
            f"backup {newest.backup_id} of {newest.collection.name!r} was written under object lock {was}, but the "
            f"settings of {store.display} (vecbackup.json) now ask for none: they were deleted or rewritten; nothing "
            "written", hint="put the earlier version of vecbackup.json back (it is still in the bucket: `vecbackup "
            "undelete --as-of TIME` if it was deleted, or copy its previous version with the S3 API)")


def _unlockable(store: BlobStore) -> bool:
    """Whether ``store`` is, or wraps, a store whose settings ask for a lock it cannot set (it refuses every write:
    exit 9, the truer answer there)."""
    return any(isinstance(s, Unlockable) for s in layers(store))


def extended_until(until: datetime) -> datetime:
    """The date a lock that must last until ``until`` is extended to: the next UTC midnight at or after it. Every
    reused object's lock ends before a new backup's (it was written earlier), so each backup would extend every
    object it reuses; rounded up to a day, the backups of one day extend each object once, for at most a day more."""
    day = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if day == until else day + timedelta(days=1)


def retain_all(store: BlobStore, keys: Iterable[str], until: datetime) -> Retained:
    """Every object under ``keys`` locked at least until ``until``: its retention read (a HEAD each) and, where it
    ends sooner or there is none, extended to :func:`extended_until` (a PUT of its retention), ``concurrency`` at a
    time; never shortened. In the store's mode, or compliance where the object has it already (S3 does not turn
    compliance into governance). An object not in the store is skipped (the backup checks its data objects itself;
    an old backup's data object may have no row digests)."""
    lock = object_lock(store)
    if lock is None:
        return Retained()
    todo = sorted(set(keys))
    target = extended_until(until)

    def one(key: str) -> bool:
        try:
            now = retention(store, key)
        except ObjectNotFound:
            return False
        if now is not None and now.until >= until:
            return False
        mode = "compliance" if lock.mode == "compliance" or (now is not None and now.mode == "compliance") \
            else "governance"
        retain(store, key, Retention(mode, target))
        return True

    if not todo:
        return Retained(0, 0, target)
    with ThreadPoolExecutor(max_workers=min(len(todo), in_flight(store)), thread_name_prefix="vecbackup-retain") \
            as pool:
        extended = sum(pool.map(one, todo))
    return Retained(len(todo), extended, target)


__all__ = ["MANIFEST_OPTION", "Retained", "Unlockable", "check_lock_kept", "extended_until", "lock_option",
           "retain_all", "retention_end", "with_object_lock"]
