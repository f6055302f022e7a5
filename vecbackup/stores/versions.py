"""A versioned store as it was at a past time (``--as-of``), and the removal of delete markers (``undelete``).

On a bucket with versioning (S3; required by Object Lock), a delete does not remove an object: it adds a *delete
marker* on top of its versions, and an overwrite adds a version. So the store as it was at any past time can still be
read: for every key, the newest of its versions and delete markers written at or before that time is what the key
held then (nothing, if that is a marker or there is none). :class:`PointInTimeStore` reads a store that way and
writes nothing; every command that only reads (list, show, verify, restore, stats) can then run on it, and an
encrypted store's settings and key files are read as they were too.

Azure's blob versioning keeps a deleted blob's versions too, but no delete marker: nothing records when the blob was
deleted. Its store lists such a key with a marker of unknown time (:data:`UNKNOWN_TIME`, later than any time given),
so that the key holds, at any time after its newest version was written, that version, deleted since or not. For
vecbackup's keys that is what the store held then but for objects deleted before that time: a deleted backup stays
deleted through its tombstone, written before its manifest was removed; a data object that ``gc`` removed is read
only by a backup that names it, and none that is not deleted does.

The choice of versions is pure (:func:`visible_at`, :func:`plan_undelete`); the stores give the listing
(:class:`VersionedStore`: ``versions``, ``get_version``, ``undelete``).

Times: S3 records a version's time (LastModified) to the second. Versions of one key written within the same second
are ordered by the listing (newest first, as S3 lists them), and a time given to the second takes every version of
that second. Azure's version ids are the times the versions were written, to the 100 ns.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast, runtime_checkable

from vecbackup.errors import UsageError
from vecbackup.format import layout
from vecbackup.stores.base import BlobStore, ObjectInfo, ObjectNotFound, layers
from vecbackup.times import iso_z, parse_duration, utc_now


@dataclass(frozen=True)
class ObjectVersion:
    """One version of a key, or one of its delete markers (``deleted``)."""

    key: str
    version_id: str
    size: int
    mtime: float  # seconds since the epoch, as the store records it (S3: whole seconds)
    deleted: bool = False
    latest: bool = False  # the key's current entry


@runtime_checkable
class VersionedStore(Protocol):
    """A store that keeps every version of every key (S3 or Azure with versioning)."""

    display: str

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix``: keys in order, each key's entries newest first."""
        ...

    def get_version(self, key: str, version_id: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """One version's bytes (or ``length`` of them from ``offset``). ObjectNotFound if that version is gone."""
        ...

    def undelete(self, version: ObjectVersion, markers: Sequence[ObjectVersion]) -> None:
        """Make ``version`` current again, ``markers`` being the delete markers written over it since (one entry of
        :attr:`UndeletePlan.restored` and its markers): S3 removes them, Azure (whose markers only stand for a
        deletion) copies the version over the blob."""
        ...


#: the time of a delete marker that stands for a deletion the store did not record (Azure): after every time
UNKNOWN_TIME = math.inf


def versioned(store: BlobStore) -> VersionedStore | None:
    """The outermost of ``store`` and the stores it wraps (``inner``: retries, encryption) that reads versions all
    the way down (a RetryingStore around an S3 or Azure store, not one around a folder), else None. Under an encrypted
    store that is the raw store: versions are of the objects as stored."""
    found: BlobStore | None = None
    for s in reversed(list(layers(store))):
        if not (callable(getattr(s, "versions", None)) and callable(getattr(s, "get_version", None))):
            break
        found = s
    return cast(VersionedStore | None, found)


# -- times ------------------------------------------------------------------------------------------------------

_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


def parse_as_of(text: str, now: datetime | None = None) -> datetime:
    """``--as-of``: an ISO 8601 time with ``Z`` or an offset (``2026-12-07T05:00:00Z``), or a duration before now
    (``90m``, ``2h``, ``3d``: as long ago). UsageError otherwise, and for a time without a zone (whose zone would be
    a guess) or in the future."""
    text = text.strip()
    now = now or utc_now()
    if not text:
        raise UsageError("--as-of is empty", hint="give a time such as 2026-12-07T05:00:00Z, or 3h for 3 hours ago")
    if text[0].isdigit() and "-" not in text:
        when = now - timedelta(seconds=parse_duration(text))
    else:
        if _NAIVE.match(text):
            raise UsageError(f"--as-of {text!r} has no time zone", hint=f"add Z for UTC: {text}Z"
                             if "T" in text or " " in text else f"give a time, e.g. {text}T00:00:00Z")
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"bad --as-of time {text!r}", hint="use ISO 8601 with a zone, e.g. "
                             "2026-12-07T05:00:00Z, or a duration such as 3h for 3 hours ago") from None
        if when.tzinfo is None:  # a form the pattern above did not catch
            raise UsageError(f"--as-of {text!r} has no time zone", hint="add Z for UTC")
    when = when.astimezone(UTC)
    if when > now + timedelta(seconds=1):
        raise UsageError(f"--as-of {iso_z(when)} is in the future", hint="give a time before now")
    return when


# -- the choice of versions (pure) --------------------------------------------------------------------------------


def _entries_by_key(versions: Iterable[ObjectVersion]) -> Iterator[list[ObjectVersion]]:
    """Each key's entries together, in the order given (keys may come in any order, each key's entries newest
    first)."""
    groups: dict[str, list[ObjectVersion]] = {}
    for v in versions:
        groups.setdefault(v.key, []).append(v)
    for key in sorted(groups):
        yield groups[key]


def at(entries: Sequence[ObjectVersion], when: float) -> ObjectVersion | None:
    """Of one key's entries (newest first), the version it held at ``when``: the first written at or before it,
    None if that is a delete marker or there is none."""
    for v in entries:
        if v.mtime <= when:
            return None if v.deleted else v
    return None


def visible_at(versions: Iterable[ObjectVersion], when: datetime) -> list[ObjectVersion]:
    """The versions the store held at ``when``, one per key, in key order."""
    t = when.timestamp()
    return [v for entries in _entries_by_key(versions) if (v := at(entries, t)) is not None]


#: keys undelete leaves alone: a store lock put back would hold every run off until it expires
UNDELETE_SKIPS = (layout.LOCKS,)


@dataclass
class UndeletePlan:
    """What ``undelete --as-of T`` changes: the delete markers to remove (each makes the version the key held at T
    current again), and what it leaves, with why."""

    markers: list[ObjectVersion] = field(default_factory=list)  # to remove (newest first within a key)
    restored: list[ObjectVersion] = field(default_factory=list)  # the versions that become current again
    tombstones: list[str] = field(default_factory=list)  # written since T: to delete (a marker over them)
    overwritten: list[str] = field(default_factory=list)  # keys rewritten since T: left as they are
    skipped: list[str] = field(default_factory=list)  # locks


def plan_undelete(versions: Iterable[ObjectVersion], when: datetime) -> UndeletePlan:
    """For every key that held a version at ``when`` and is deleted now (its current entry a delete marker written
    after ``when``, with no version written since): remove those markers. A key written again since ``when`` is left
    as it is (its newer version may be a backup's; ``--as-of`` still reads the old one). Tombstones written since
    ``when`` (format/tombstone.py: ``delete`` and ``prune`` write one before removing a manifest, and a backup with
    one stays deleted) are deleted, so the backups deleted since come back whichever way they went. Keys under
    :data:`UNDELETE_SKIPS` are left out."""
    from vecbackup.format.tombstone import TOMBSTONES

    t = when.timestamp()
    plan = UndeletePlan()
    for entries in _entries_by_key(versions):
        then = at(entries, t)
        if then is None:
            if entries[0].key.startswith(TOMBSTONES) and not entries[0].deleted:
                plan.tombstones.append(entries[0].key)  # absent at T, present now
            continue
        if not entries[0].deleted:
            if entries[0] is not then and not entries[0].key.startswith(UNDELETE_SKIPS):
                plan.overwritten.append(entries[0].key)  # another version now (vecbackup never rewrites one)
            continue
        if entries[0].key.startswith(UNDELETE_SKIPS):
            plan.skipped.append(entries[0].key)
            continue
        newer = entries[:entries.index(then)]  # all written after `when`
        if any(not v.deleted for v in newer):
            plan.overwritten.append(entries[0].key)
            continue
        plan.markers.extend(newer)
        plan.restored.append(then)
    return plan


# -- the store as it was ----------------------------------------------------------------------------------------


class ReadOnlyView(UsageError):
    """A write to a store read as of a past time."""


class PointInTimeStore:
    """``inner`` (a VersionedStore) as it was at ``when``: every read picks the version each key held then; writes
    and deletes are refused."""

    def __init__(self, inner: VersionedStore, when: datetime) -> None:
        self.inner = inner
        self.when = when
        self.display = f"{inner.display} as of {iso_z(when, 'seconds')}"
        self.concurrency = int(getattr(inner, "concurrency", 2))
        self._known: dict[str, ObjectVersion] = {}  # key -> its version at `when`, of the keys listed
        self._listed: set[str] = set()  # prefixes whose every key held at `when` is in _known
        self._listing = threading.Lock()  # readers on several threads: each prefix listed once

    def _version(self, key: str) -> ObjectVersion:
        """The version ``key`` held at ``when``. The first key asked for under a top-level prefix (``data/``,
        ``digests/``, ...) lists that whole prefix's versions once, and every later key under it is found there:
        a listing per key made ``verify --read-data --as-of`` of 800 objects take 1.8 times as long as without
        (benchmarks/RESULTS.md). Memory: one entry per key of the prefixes read."""
        if key not in self._known:
            head, slash, _ = key.partition("/")
            prefix = head + slash
            with self._listing:
                if prefix not in self._listed:
                    self.list(prefix)  # every key there held at `when` goes into _known
                    self._listed.add(prefix)
        v = self._known.get(key)  # None: absent at `when`
        if v is None:
            raise ObjectNotFound(f"{key} not found in {self.display}")
        return v

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        v = self._version(key)
        return self.inner.get_version(key, v.version_id, offset=offset, length=length)

    def stat(self, key: str) -> ObjectInfo:
        v = self._version(key)
        return ObjectInfo(key, v.size, v.mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        listed = visible_at(self.inner.versions(prefix), self.when)
        for v in listed:
            self._known[v.key] = v
        return iter([ObjectInfo(v.key, v.size, v.mtime) for v in listed])

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        raise ReadOnlyView(f"{self.display} is the store as it was: nothing is written there",
                           hint="run without --as-of to write")

    def delete(self, key: str) -> None:
        raise ReadOnlyView(f"{self.display} is the store as it was: nothing is deleted there",
                           hint="run without --as-of; `vecbackup undelete` brings deleted objects back")

    def __repr__(self) -> str:
        return f"PointInTimeStore({self.display!r})"


def as_of(store: BlobStore, when: datetime) -> PointInTimeStore:
    """``store`` as it was at ``when``; Unsupported (exit 9) for a store that keeps no versions."""
    from vecbackup.errors import Unsupported

    inner = versioned(store)
    if inner is None:
        raise Unsupported(f"{store.display} keeps no object versions, so it cannot be read as of a past time",
                          hint="--as-of reads S3 buckets and Azure containers with versioning (or object lock) "
                               "enabled")
    check_versioning(inner)
    return PointInTimeStore(inner, when)


def check_versioning(store: VersionedStore) -> None:
    """Unsupported (exit 9) when the bucket under ``store`` has never had versioning turned on: its deleted objects
    are gone, and its one version of each key is today's."""
    from vecbackup.errors import Unsupported

    status = getattr(store, "versioning", lambda: "Enabled")()
    if status not in ("Enabled", "Suspended"):
        raise Unsupported(f"{store.display}: versioning is off, so nothing it deleted or overwrote can be read "
                          "back", hint="turn on versioning before it is needed (S3: on the bucket, or create it with "
                          "Object Lock; Azure: blob versioning on the storage account): it keeps what is deleted "
                          "from then on")


def present(store: BlobStore) -> BlobStore:
    """The store as it is now, for a store read as of a past time (:func:`as_of`): every wrapper above the past view
    (an encrypted store's key, an object lock's refusal: each offers ``over(inner)``) put again over the current
    objects. Any other store is returned as it is."""
    if isinstance(store, PointInTimeStore):
        return cast(BlobStore, store.inner)  # a RetryingStore or an S3Store
    inner = getattr(store, "inner", None)
    over = getattr(store, "over", None)
    if inner is None or not callable(over):
        return store
    below = present(inner)
    return store if below is inner else cast(BlobStore, over(below))
