"""Store locks: a running backup and a prune (or delete, or gc) must never overlap.

A lock is an object ``locks/<lock-id>.json`` in the store (see docs/FORMAT.md, "Locks"). Backups take
*shared* locks: any number may run at once. Operations that delete data — delete, prune, gc — take an
*exclusive* lock: data objects are shared by every backup in the store (content addressing), so they
exclude every other run, whatever its collection. A lock expires unless its owner refreshes it; an
expired lock is stale and ignored (``vecbackup unlock`` removes it).

Acquiring: write our lock, then list the others; if one conflicts, remove ours and wait (up to
``wait`` seconds, with jitter) or raise Locked (exit 11). Two runs racing for exclusive locks both see
each other and both back off, so neither proceeds on a conflict.
"""

from __future__ import annotations

import getpass
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import orjson

from vecbackup.errors import CorruptData, Locked
from vecbackup.format import layout
from vecbackup.format.sealed import refuse_sealed
from vecbackup.stores.base import BlobStore, ObjectNotFound
from vecbackup.times import iso_z
from vecbackup.words import either

LOCKS = layout.LOCKS
#: a lock not refreshed for this long is stale
DEFAULT_TTL = 300.0


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    kind: str  # "backup" | "delete" | "prune" | "gc" | ...
    exclusive: bool
    user: str
    host: str
    pid: int
    created_at: float
    expires_at: float
    #: how many times the owner refreshed it: each refresh writes the lock under a new key (create-if-absent) and
    #: removes the previous one, so no lock object is rewritten (an old one put back is one more, expired, lock)
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{LOCKS}{self.lock_id}{f'.r{self.generation}' if self.generation else ''}.json"

    def stale(self, now: float) -> bool:
        return self.expires_at < now

    def conflicts_with(self, other: LockInfo) -> bool:
        return self.exclusive or other.exclusive

    def describe(self) -> str:
        return (f"{'exclusive' if self.exclusive else 'shared'} {self.kind} lock of {self.user}@{self.host} "
                f"pid {self.pid}, since {iso_z(self.created_at, 'seconds')}, "
                f"expires {iso_z(self.expires_at, 'seconds')}")

    def to_json(self) -> bytes:
        return orjson.dumps({"lock_id": self.lock_id, "kind": self.kind, "exclusive": self.exclusive,
                             "user": self.user, "host": self.host, "pid": self.pid,
                             "created_at": self.created_at, "expires_at": self.expires_at,
                             "generation": self.generation})

    @classmethod
    def from_json(cls, data: bytes, key: str) -> LockInfo:
        refuse_sealed(data, f"lock {key}")
        try:
            d = orjson.loads(data)
            return cls(lock_id=str(d["lock_id"]), kind=str(d["kind"]), exclusive=bool(d["exclusive"]),
                       user=str(d.get("user", "")), host=str(d.get("host", "")), pid=int(d.get("pid", 0)),
                       created_at=float(d["created_at"]), expires_at=float(d["expires_at"]),
                       generation=int(d.get("generation", 0)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CorruptData(f"lock {key} is not a valid lock object") from None


def list_locks(store: BlobStore) -> list[LockInfo]:
    """Every lock in the store; unreadable ones are returned as never-expiring exclusive locks would be
    unsafe to ignore, so they raise CorruptData naming the key (remove it with `unlock --all`)."""
    out = []
    for info in store.list(LOCKS):
        if not info.key.endswith(".json"):
            continue
        try:
            out.append(LockInfo.from_json(store.get(info.key), info.key))
        except ObjectNotFound:
            continue  # released while we listed
    return out


class StoreLock:
    """A lock we hold; refreshed in the background until released."""

    def __init__(self, store: BlobStore, info: LockInfo, ttl: float) -> None:
        self.store = store
        self.info = info
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="vecbackup-lock", daemon=True)
        self.refresh_error: Exception | None = None

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.refresh()
            except Exception as e:  # kept for the owner to see; the lock may expire
                self.refresh_error = e

    def refresh(self) -> None:
        """Extend the lock: the next generation written (create-if-absent), then the previous one removed."""
        old = self.info
        new = replace(old, expires_at=time.time() + self.ttl, generation=old.generation + 1)
        self.store.put(new.key, new.to_json(), if_absent=True)
        self.info = new
        self.store.delete(old.key)

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.store.delete(self.info.key)


def acquire(store: BlobStore, kind: str, *, exclusive: bool, wait: float = 0.0, ttl: float = DEFAULT_TTL,
            sleep: float = 1.0) -> StoreLock:
    """Take a lock, waiting up to ``wait`` seconds for conflicting ones to go; Locked if they don't."""
    deadline = time.monotonic() + wait
    while True:
        now = time.time()
        info = LockInfo(lock_id=f"{layout.new_backup_id()}-{secrets.token_hex(2)}", kind=kind, exclusive=exclusive,
                        user=_user(), host=socket.gethostname(), pid=os.getpid(), created_at=now,
                        expires_at=now + ttl)
        store.put(info.key, info.to_json(), if_absent=True)
        try:
            others = [o for o in list_locks(store) if o.lock_id != info.lock_id and not o.stale(time.time())]
        except BaseException:
            store.delete(info.key)
            raise
        conflicts = [o for o in others if info.conflicts_with(o)]
        if not conflicts:
            lock = StoreLock(store, info, ttl)
            lock._thread.start()
            return lock
        store.delete(info.key)
        if time.monotonic() >= deadline:
            raise Locked(f"{store.display} is locked: {conflicts[0].describe()}",
                         hint=f"wait for it ({either('lock_wait=SECONDS', '--lock-wait SECONDS')}), or "
                              "if that run is gone, `vecbackup unlock` removes stale locks")
        time.sleep(min(max(0.0, deadline - time.monotonic()), sleep * (0.5 + random.random())))


@contextmanager
def locked(store: BlobStore, kind: str, *, exclusive: bool, wait: float = 0.0,
           ttl: float = DEFAULT_TTL) -> Iterator[StoreLock]:
    lock = acquire(store, kind, exclusive=exclusive, wait=wait, ttl=ttl)
    try:
        yield lock
    finally:
        lock.release()


def remove_locks(store: BlobStore, *, all_locks: bool = False, now: float | None = None) -> list[LockInfo]:
    """Remove stale locks (or, with ``all_locks``, every lock, even live ones); returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    for info in store.list(LOCKS):
        try:
            lock = LockInfo.from_json(store.get(info.key), info.key)
        except ObjectNotFound:
            continue
        except CorruptData:
            if not all_locks:
                continue
            store.delete(info.key)
            continue
        if all_locks or lock.stale(now):
            store.delete(info.key)
            removed.append(lock)
    return removed


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return str(os.getuid())
