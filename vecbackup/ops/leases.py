"""Holding a lease on a collection being filled (format/lease.py): written when the collection is created, renewed
from a background thread (as ops/lock.py's StoreLock refreshes a store lock), marked complete once every row is in,
and cleared when the restore is done; and telling whether the process holding one still runs."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from typing import Protocol

from vecbackup.errors import VecbackupError
from vecbackup.format.lease import RENEW_EVERY, TTL, Lease, Owner


class LeaseSink(Protocol):
    """What holding a lease asks of an engine (Milvus and Qdrant sinks have it)."""

    def write_lease(self, name: str, value: str) -> None: ...

    def clear_lease(self, name: str) -> None: ...


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if we cannot read it."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name, in parentheses, may hold spaces
    return fields if len(fields) >= 20 else None


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), None if unknown."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


@cache
def _machine() -> tuple[str, str]:
    """(boot id, pid namespace) of this machine and process: together they name the pid space our pids are in."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return _read("/proc/sys/kernel/random/boot_id"), pidns


def this_owner() -> Owner:
    boot, pidns = _machine()
    pid = os.getpid()
    return Owner(host=socket.gethostname(), pid=pid, boot=boot, pidns=pidns,
                 start=(_start_time(pid) or "") if boot else "")


def owner_alive(owner: Owner) -> bool | None:
    """Whether the process holding a lease still runs: True or False when it ran on this machine in our pid namespace
    (a pid that now belongs to a process started at another time is another process), None when that cannot be known
    here (another machine, another container's pids, a platform without /proc): then the lease's expiry decides."""
    boot, pidns = _machine()
    if not boot or not pidns or owner.boot != boot or owner.pidns != pidns or not owner.start:
        return None
    fields = _stat(owner.pid)
    if fields is not None:
        return fields[0] not in ("Z", "X") and fields[19] == owner.start  # a zombie is dead, not yet reaped
    try:  # not in /proc: no such process, or one /proc hides from us (mounted with hidepid)
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, another user's: we cannot see when it started
        return None
    return None


def new_lease(kind: str, target: str, collection: str, backup_id: str, *, run: str | None = None,
              now: float | None = None) -> Lease:
    """A lease of this process, filling, valid for TTL seconds from ``now``."""
    now = time.time() if now is None else now
    return Lease(kind=kind, state="filling", target=target, collection=collection, backup_id=backup_id,
                 owner=this_owner(), lease_id=secrets.token_hex(8), created=now, expires=None, run=run,
                 ).renewed(now)


class HeldLease:
    """A lease this process holds on collection ``name`` of ``sink``: renewed every ``every`` seconds from a daemon
    thread once :meth:`start` ed, until :meth:`stop` or :meth:`release`. A renewal that fails is retried at the next
    one (``renew_error`` keeps the last failure); the lease has TTL / ``every`` tries before it runs out."""

    def __init__(self, sink: LeaseSink, lease: Lease, *, ttl: float = TTL, every: float | None = None) -> None:
        self.sink = sink
        self.lease = lease
        self.name = lease.target  # the collection holding it (set by the restore that creates it)
        self.ttl = ttl
        self.every = RENEW_EVERY if every is None else every
        self.renew_error: Exception | None = None
        self._lock = threading.Lock()  # a renewal and a rename (moving) never overlap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value(self, name: str) -> str:
        """The lease's value for creating collection ``name`` with it, valid from now."""
        with self._lock:
            self.name = name
            self.lease = self.lease.renewed(time.time(), self.ttl)
            return self.lease.to_json()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vecbackup-lease", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.renew()
            except Exception as e:  # kept for the owner to see; retried next time
                self.renew_error = e

    def renew(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.lease = self.lease.renewed(time.time(), self.ttl)
            self.sink.write_lease(self.name, self.lease.to_json())

    def complete(self) -> None:
        """Every row is in and counted: say so before the collection takes its name (written now)."""
        with self._lock:
            self.lease = replace(self.lease, state="complete").renewed(time.time(), self.ttl)
            self.sink.write_lease(self.name, self.lease.to_json())

    @contextmanager
    def moving(self, to: str) -> Iterator[None]:
        """While the collection is renamed to ``to`` (no renewal in between); renewals go to ``to`` once it has
        been (a failure stops the restore, and its renewals with it)."""
        with self._lock:
            yield
            self.name = to

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def release(self) -> str | None:
        """Stop renewing and clear the lease from the collection (done: it is an ordinary collection now); a note if
        it could not be cleared (the restore is complete all the same: the lease runs out, and `gc` on the engine
        clears it then)."""
        self.stop()
        try:
            self.sink.clear_lease(self.name)
        except VecbackupError as e:
            return (f"could not clear vecbackup's lease from {self.name!r} ({e.message}); the collection is complete, "
                    "and `vecbackup gc` on the engine clears the lease once it has run out")
        return None


__all__ = ["HeldLease", "LeaseSink", "new_lease", "owner_alive", "this_owner"]
