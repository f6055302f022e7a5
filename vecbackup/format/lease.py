"""The lease a restore or drill keeps on the collection it fills (docs/FORMAT.md, "Leases on the target"). Pure.

A restore creates its staging collection with a lease, a JSON document under :data:`LEASE_KEY` (a Milvus collection
property, a key of a Qdrant collection's ``metadata``), and renews it in the background until it is done: who owns it
(host, pid, and what tells that process apart on its machine), what it restores into, whether the data is complete
yet, and until when it holds. A collection whose lease has run out (or whose owner is known to be gone) is the
leftover of a restore that died; the lease, never the collection's name, says so (ops/leftovers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

#: the collection property (Milvus) / metadata key (Qdrant) holding the lease
LEASE_KEY = "vecbackup.lease"
#: the document's version; a reader refuses (keeps, never drops) a collection whose lease has another
VERSION = 1
#: seconds a lease holds after each renewal
TTL = 300.0
#: seconds between renewals: five tries before a lease runs out
RENEW_EVERY = 60.0
#: seconds a lease of another machine must have run out for before its collection counts as left over: the clocks
#: of the owner (who wrote the expiry) and of the reader (who compares it with its now) may differ by this much
SKEW_MARGIN = 300.0

#: what fills the collection: a restore (``restore``), a drill's scratch copy (``drill``), or the workers of a
#: restore by several (``run``: kept between workers on purpose, never judged by expiry; it has none)
KINDS = ("restore", "drill", "run")
#: ``filling``: rows are going in; ``complete``: every row is in and counted, the collection is being given its name
STATES = ("filling", "complete")

#: names vecbackup gives the collections it fills (ops/restore.py, ops/drill/run.py, ops/restore_shard.py); a name
#: alone decides nothing, it only makes a collection without a lease worth showing
STAGING_NAMES = {
    "restore": re.compile(r"_vbrestore_[0-9a-f]{8}$"),
    "drill": re.compile(r"_drill_[0-9a-f]{8}$"),
    "run": re.compile(r"_vb(run|commit)_[0-9a-f]{12}$"),
}


@dataclass(frozen=True)
class Owner:
    """The process holding a lease. ``boot`` (the kernel's boot id), ``pidns`` (its pid namespace) and ``start``
    (the process's start time in clock ticks since boot) let a reader on the same machine tell whether that process
    still runs; each is ``""`` where the platform does not have it."""

    host: str
    pid: int
    boot: str = ""
    pidns: str = ""
    start: str = ""

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Lease:
    kind: str  # KINDS
    state: str  # STATES
    target: str  # the collection name the data is restored into (a drill's: its scratch collection)
    collection: str  # the backup's collection
    backup_id: str
    owner: Owner
    lease_id: str  # random, one per lease
    created: float  # Unix seconds, the owner's clock
    expires: float | None  # Unix seconds, the owner's clock; None for a run (kept until committed or abandoned)
    run: str | None = None  # the run id of a restore by several workers

    def renewed(self, now: float, ttl: float = TTL) -> Lease:
        return replace(self, expires=None if self.kind == "run" else now + ttl)

    def to_json(self) -> str:
        o = self.owner
        doc: dict[str, Any] = {"v": VERSION, "kind": self.kind, "state": self.state, "target": self.target,
                               "collection": self.collection, "backup_id": self.backup_id, "run": self.run,
                               "host": o.host, "pid": o.pid, "boot": o.boot, "pidns": o.pidns, "start": o.start,
                               "lease_id": self.lease_id, "created": self.created, "expires": self.expires}
        return orjson.dumps(doc).decode()


class UnreadableLease(ValueError):
    """A value under LEASE_KEY that is not a lease this vecbackup reads."""


def parse_lease(text: str | None) -> Lease | None:
    """The lease a collection's LEASE_KEY value holds: None for no value or ``""`` (a cleared lease: a Milvus 2.3
    server cannot delete a property, so a lease is cleared by emptying it); UnreadableLease for anything else that
    is not a lease of VERSION."""
    if text is None or text == "":
        return None
    try:
        d = orjson.loads(text)
        if not isinstance(d, dict) or d.get("v") != VERSION:
            raise UnreadableLease(f"not a version-{VERSION} lease")
        kind, state = str(d["kind"]), str(d["state"])
        if kind not in KINDS or state not in STATES:
            raise UnreadableLease(f"unknown kind {kind!r} or state {state!r}")
        expires = d.get("expires")
        if expires is None and kind != "run":
            raise UnreadableLease("no expiry")
        return Lease(kind=kind, state=state, target=str(d["target"]), collection=str(d["collection"]),
                     backup_id=str(d["backup_id"]), run=None if d.get("run") is None else str(d["run"]),
                     owner=Owner(host=str(d["host"]), pid=int(d["pid"]), boot=str(d.get("boot", "")),
                                 pidns=str(d.get("pidns", "")), start=str(d.get("start", ""))),
                     lease_id=str(d["lease_id"]), created=float(d["created"]),
                     expires=None if expires is None else float(expires))
    except UnreadableLease:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UnreadableLease(f"{type(e).__name__}: {e}") from None


def restore_staging(target: str, token: str) -> str:
    """The staging collection a restore into ``target`` fills (``token``: 8 random hex digits; "" gives the prefix
    every such name starts with)."""
    return f"{target[:200]}_vbrestore_{token}"


def drill_scratch(collection: str, token: str) -> str:
    """The scratch collection a drill of ``collection`` restores into (``token`` as in restore_staging)."""
    return f"{collection[:180]}_drill_{token}"


def staging_kind(name: str) -> str | None:
    """The kind of collection vecbackup gives a name like ``name`` (STAGING_NAMES), or None."""
    for kind, pattern in STAGING_NAMES.items():
        if pattern.search(name):
            return kind
    return None


__all__ = ["KINDS", "LEASE_KEY", "RENEW_EVERY", "SKEW_MARGIN", "STAGING_NAMES", "STATES", "TTL", "VERSION", "Lease",
           "Owner", "UnreadableLease", "drill_scratch", "parse_lease", "restore_staging", "staging_kind"]
