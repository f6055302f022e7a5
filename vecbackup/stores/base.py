"""The storage protocol every store implements, and the errors it may raise.

Keys are relative, '/'-separated, and built only by :mod:`vecbackup.format.layout`.
A store translates its SDK's errors into these few: ObjectNotFound,
ObjectExists, and the generic Unreachable / VecbackupError of :mod:`vecbackup.errors`.

A store that can lock objects (S3 Object Lock) also implements :class:`Retaining`, an optional capability the
wrappers pass through; the others raise Unsupported through :func:`lock_objects` and report no retention.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from vecbackup.errors import AlreadyExists, NotFound, Unreachable, Unsupported
from vecbackup.format.crypto import ObjectLock


class ObjectNotFound(NotFound):
    """The key does not exist in the store."""


class ObjectExists(AlreadyExists):
    """A conditional create found the key already there."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: float  # seconds since the epoch


@runtime_checkable
class BlobStore(Protocol):
    """A flat namespace of immutable objects."""

    display: str  # URL safe to print

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically: readers see all of it or nothing.

        With ``if_absent`` the write fails with ObjectExists when ``key`` exists
        (the commit point of a backup relies on this)."""

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """Read an object, or ``length`` bytes of it from ``offset``. ObjectNotFound if absent."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size and time of an object. ObjectNotFound if absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""


@dataclass(frozen=True)
class Retention:
    """An object's lock as its store reports it: ``mode`` (compliance or governance) until ``until`` (aware)."""

    mode: str
    until: datetime


@runtime_checkable
class Retaining(Protocol):
    """A store that writes objects with a retention date and extends it (S3 Object Lock): docs/STORES.md."""

    @property
    def object_lock(self) -> ObjectLock | None:
        """The lock every object the store keeps is written with from now on (None: none)."""
        ...

    def lock_objects(self, lock: ObjectLock) -> None:
        """Write every object but the transient ones (format/layout.is_transient) with ``lock``'s mode, retained
        until ``lock.days`` after it is written (the client's clock)."""

    def check_object_lock(self) -> None:
        """Unsupported (one line naming what to enable) unless the store can lock objects (the bucket has Object Lock
        enabled)."""

    def retention(self, key: str) -> Retention | None:
        """The lock of the object under ``key`` (its current version), None if it has none; ObjectNotFound if
        absent."""
        ...

    def retain(self, key: str, retention: Retention) -> None:
        """Lock the object under ``key`` until ``retention.until`` in ``retention.mode``: only ever to extend it (the
        store refuses to shorten a compliance lock)."""


def cannot_lock(display: str) -> Unsupported:
    """What a store that cannot lock objects (shown as ``display``) answers when asked to."""
    return Unsupported(f"object lock is not supported on {display} yet",
                       hint="use an S3 (or S3-compatible) bucket with Object Lock enabled, or an Azure container "
                            "with version-level immutability support")


def lock_objects(store: BlobStore, lock: ObjectLock) -> None:
    """``store.lock_objects(lock)``, or Unsupported for a store that cannot lock objects."""
    if not isinstance(store, Retaining):
        raise cannot_lock(store.display)
    store.lock_objects(lock)


def check_object_lock(store: BlobStore) -> None:
    """``store.check_object_lock()``, or Unsupported for a store that cannot lock objects."""
    if not isinstance(store, Retaining):
        raise cannot_lock(store.display)
    store.check_object_lock()


def object_lock(store: BlobStore) -> ObjectLock | None:
    """The lock a store writes objects with (None: none, or a store that cannot lock objects)."""
    return store.object_lock if isinstance(store, Retaining) else None


def retention(store: BlobStore, key: str) -> Retention | None:
    """The lock of an object (None: none, or a store that cannot lock objects); ObjectNotFound if absent."""
    return store.retention(key) if isinstance(store, Retaining) else None


def retain(store: BlobStore, key: str, until: Retention) -> None:
    """``store.retain(key, until)``, or Unsupported for a store that cannot lock objects."""
    if not isinstance(store, Retaining):
        raise cannot_lock(store.display)
    store.retain(key, until)


def layers(store: BlobStore) -> Iterator[BlobStore]:
    """``store`` and the stores it wraps, outermost first (each wrapper's ``inner``: retries, encryption, a past
    view, an object lock's refusal)."""
    s: BlobStore | None = store
    while s is not None:
        yield s
        s = getattr(s, "inner", None)


class PermissionDenied(Unreachable):
    """The store refused our credentials or lacks a permission (HTTP 401/403): never retried."""


class TransientError(Unreachable):
    """A failure worth retrying: timeout, connection reset, throttling, 5xx."""


def valid_key(key: str) -> bool:
    """A key (or key prefix) every store accepts: relative, '/'-separated, no '..' segment, no backslash or NUL.
    The stores check every key with it, so no name can reach outside the store (a folder, a bucket prefix)."""
    return bool(key) and not key.startswith("/") and "\\" not in key and ".." not in key.split("/") \
        and "\0" not in key


def check_key(key: str) -> str:
    """``key`` if :func:`valid_key`, else ValueError (a bug: keys come only from vecbackup.format.layout)."""
    if not valid_key(key):
        raise ValueError(f"invalid store key {key!r}")
    return key


def content_hash(store: BlobStore, data: bytes) -> str:
    """The name of an object's content (64 hex digits): its SHA-256, or in an encrypted store the keyed MAC of its
    plaintext (stores/encrypted.py), so the store does not reveal content hashes."""
    named = getattr(store, "content_hash", None)
    return named(data) if named is not None else hashlib.sha256(data).hexdigest()


def in_flight(store: BlobStore, default: int = 2, cap: int = 8) -> int:
    """How many objects to keep in flight against a store: its ``concurrency`` setting if it has one
    (S3, Azure: ``?concurrency=N``), else ``default``. Each slot costs about one batch of memory."""
    return max(1, min(cap, int(getattr(store, "concurrency", default))))
