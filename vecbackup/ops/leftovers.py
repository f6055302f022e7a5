"""Collections that restores and drills which died left on an engine: found by their leases (format/lease.py),
dropped when their owner is gone, shown always. ``vecbackup gc ENGINE_URL`` looks at every collection; a restore
(and a drill) at the ones a dead run of itself left before it starts.

Whether a collection is a leftover is decided by its lease, never by its name: a collection without a lease is
never dropped, however it is named (one named like vecbackup's staging collections is shown, so a leftover of an
older vecbackup is seen). A lease's owner is gone when it ran on this machine and that process no longer runs, or,
from anywhere, when the lease ran out more than SKEW_MARGIN seconds ago (the renewing owner's clock against ours).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from vecbackup.errors import NotFound
from vecbackup.format.lease import (
    SKEW_MARGIN,
    Lease,
    Owner,
    UnreadableLease,
    drill_scratch,
    parse_lease,
    restore_staging,
    staging_kind,
)
from vecbackup.ops.leases import owner_alive
from vecbackup.times import iso_z

#: what is done with a collection: dropped, its lease cleared (the restore had completed it), or kept
DROP, CLEAR, KEEP = "drop", "clear", "keep"
_WHAT = {"restore": "restore", "drill": "drill", "run": "restore by several workers"}


class LeaseEngine(Protocol):
    """What finding and dropping leftovers asks of an engine (Milvus and Qdrant have it)."""

    display: str

    def list_collections(self) -> list[str]: ...

    def read_lease(self, name: str) -> str | None:
        """The value under LEASE_KEY of collection ``name`` (None without one); NotFound if there is no such
        collection."""
        ...

    def resolve(self, name: str) -> str | None:
        """The collection ``name`` answers to (itself, or the collection an alias of that name points at), or
        None if nothing has that name."""
        ...

    def clear_lease(self, name: str) -> None: ...

    def drop_collection(self, name: str) -> None: ...


@dataclass
class Leftover:
    """A collection a restore or drill filled (or one named like it), and what is done with it."""

    collection: str
    action: str  # DROP | CLEAR | KEEP
    reason: str
    kind: str | None  # the lease's kind, or the kind its name suggests
    lease: Lease | None = None
    value: str | None = None  # the lease as read (to check it is unchanged before dropping)
    done: bool = False  # dropped or cleared (False with dry_run, and for KEEP)

    def to_dict(self) -> dict[str, object]:
        lease = self.lease
        return {"collection": self.collection, "action": self.action, "done": self.done, "reason": self.reason,
                "kind": self.kind, "target": lease.target if lease else None,
                "backup_id": lease.backup_id if lease else None, "run": lease.run if lease else None,
                "state": lease.state if lease else None,
                "owner": None if lease is None else {"host": lease.owner.host, "pid": lease.owner.pid},
                "expires": None if lease is None or lease.expires is None else iso_z(lease.expires, "seconds")}


@dataclass
class LeftoverResult:
    """What ``gc`` on an engine (or a restore before it starts) found and did."""

    engine: str
    dry_run: bool
    leftovers: list[Leftover] = field(default_factory=list)

    def _names(self, action: str) -> list[str]:
        return [x.collection for x in self.leftovers if x.action == action]

    @property
    def dropped(self) -> list[str]:
        """Dropped (with dry_run: would be)."""
        return self._names(DROP)

    @property
    def cleared(self) -> list[str]:
        return self._names(CLEAR)

    @property
    def kept(self) -> list[str]:
        return self._names(KEEP)

    def notes(self) -> list[str]:
        """One line for each collection, as a restore reports them."""
        verbs = {DROP: "would drop" if self.dry_run else "dropped",
                 CLEAR: "would clear the lease of" if self.dry_run else "cleared the lease of", KEEP: "kept"}
        return [f"{verbs[x.action]} {x.collection!r}: {x.reason}" for x in self.leftovers]

    def to_dict(self) -> dict[str, object]:
        return {"engine": self.engine, "dry_run": self.dry_run, "dropped": self.dropped, "cleared": self.cleared,
                "kept": self.kept, "collections": [x.to_dict() for x in self.leftovers]}


def judge(name: str, value: str | None, now: float, *, alive: Callable[[Owner], bool | None],
          resolve: Callable[[str], str | None], superseded: bool = False) -> Leftover | None:
    """What to do with collection ``name`` whose LEASE_KEY value is ``value``: None for an ordinary collection
    (no lease, no staging name). ``alive`` tells whether a lease's owner still runs (ops.leases.owner_alive);
    ``resolve`` what a name answers to (LeaseEngine.resolve). ``superseded``: a restore into the lease's target is
    starting, so a complete copy the target lacks is replaced, not kept. Pure but for the two callables."""
    by_name = staging_kind(name)
    try:
        lease = parse_lease(value)
    except UnreadableLease as e:
        return Leftover(name, KEEP, f"carries a vecbackup lease this version cannot read ({e}); not dropped",
                        by_name, value=value)
    if lease is None:
        if by_name is None:
            return None
        if by_name == "run":
            return Leftover(name, KEEP, "staging collection of a restore by several workers, kept between them: "
                            "`vecbackup restore ... --run RUN --abandon` drops it", by_name)
        return Leftover(name, KEEP, f"named like a {_WHAT[by_name]}'s collection but carries no lease (a "
                        "collection of yours, one a drill kept with --keep, or a leftover of a vecbackup before "
                        "leases): not dropped; drop it yourself if it is a leftover", by_name)
    what, owner = _WHAT[lease.kind], lease.owner.describe()
    if lease.kind == "run":
        return Leftover(name, KEEP, f"staging collection of restore run {lease.run!r} of backup {lease.backup_id} "
                        f"into {lease.target!r}, kept between its workers: `vecbackup restore STORE ENGINE --backup "
                        f"{lease.backup_id} --as {lease.target} --run {lease.run} --abandon` drops it", lease.kind,
                        lease, value)
    assert lease.expires is not None  # parse_lease: only a run has none
    running = alive(lease.owner)
    if running:
        return Leftover(name, KEEP, f"a {what} into {lease.target!r} is running ({owner})", lease.kind, lease, value)
    if running is None:
        if now <= lease.expires:
            return Leftover(name, KEEP, f"a {what} into {lease.target!r} holds it ({owner}, lease renewed until "
                            f"{iso_z(lease.expires, 'seconds')})", lease.kind, lease, value)
        if now <= lease.expires + SKEW_MARGIN:
            return Leftover(name, KEEP, f"the lease of a {what} into {lease.target!r} ({owner}) ran out at "
                            f"{iso_z(lease.expires, 'seconds')}, less than {SKEW_MARGIN:.0f} s ago: kept in case "
                            "that machine's clock is behind ours", lease.kind, lease, value)
        cause = f"its lease ran out at {iso_z(lease.expires, 'seconds')} ({owner})"
    else:
        cause = f"{owner} is gone"
    if lease.kind == "drill":
        return Leftover(name, DROP, f"scratch collection of a drill of {lease.collection!r} that died ({cause})",
                        lease.kind, lease, value)
    if lease.state == "filling":
        return Leftover(name, DROP, f"left {'half-filled ' if name == lease.target else ''}by a restore into "
                        f"{lease.target!r} that died ({cause})", lease.kind, lease, value)
    holder = name if name == lease.target else resolve(lease.target)
    if holder == name:
        return Leftover(name, CLEAR, f"the restore into {lease.target!r} died ({cause}) after the copy was complete "
                        f"and under the target's name; only its lease is removed", lease.kind, lease, value)
    if holder is not None or superseded:
        whose = f"{lease.target!r} is as it was" if holder is not None else "this restore replaces it"
        return Leftover(name, DROP, f"a complete copy of {lease.target!r} that a restore which died ({cause}) had not "
                        f"put in place; {whose}", lease.kind, lease, value)
    return Leftover(name, KEEP, f"the only copy of {lease.target!r}: the restore died ({cause}) while replacing it, "
                    f"after dropping the old collection; give it the name {lease.target!r} (a rename on Milvus, an "
                    "alias on Qdrant) or run the restore again, which drops it", lease.kind, lease, value)


@dataclass(frozen=True)
class Scope:
    """Which leftovers a caller takes care of: collections whose names ``names`` accepts (only those are looked at,
    one describe each) and, of those, the ones whose verdict ``select`` accepts. The name only narrows where to look;
    the lease still decides."""

    names: Callable[[str], bool]
    select: Callable[[Leftover], bool]


def find_leftovers(engine: LeaseEngine, *, scope: Scope | None = None, superseded: bool = False,
                   now: float | None = None) -> list[Leftover]:
    """Every collection of ``engine`` a restore or drill filled (or named like one), judged (within ``scope``)."""
    now = time.time() if now is None else now
    found: list[Leftover] = []
    for name in engine.list_collections():
        if scope is not None and not scope.names(name):
            continue
        try:
            value = engine.read_lease(name)
        except NotFound:  # dropped while we looked
            continue
        verdict = judge(name, value, now, alive=owner_alive, resolve=engine.resolve, superseded=superseded)
        if verdict is not None and (scope is None or scope.select(verdict)):
            found.append(verdict)
    return found


def reap(engine: LeaseEngine, *, scope: Scope | None = None, superseded: bool = False, dry_run: bool = False,
         now: float | None = None) -> LeftoverResult:
    """Find the leftovers (find_leftovers), drop the dead ones and clear the leases of complete ones, unless
    ``dry_run``. Each lease is read again just before: one renewed since (its owner came back) is kept."""
    result = LeftoverResult(engine.display, dry_run)
    for x in find_leftovers(engine, scope=scope, superseded=superseded, now=now):
        if x.action != KEEP and not dry_run:
            try:
                renewed = engine.read_lease(x.collection) != x.value
            except NotFound:
                continue  # gone while we looked
            if renewed:
                x.action, x.reason = KEEP, "its lease was renewed while we looked: its owner is running"
            elif x.action == DROP:
                engine.drop_collection(x.collection)
                x.done = True
            else:
                engine.clear_lease(x.collection)
                x.done = True
        result.leftovers.append(x)
    return result


def of_restores_into(target: str) -> Scope:
    """What restores into ``target`` left: its staging collections, or (Qdrant) the target itself; a restore into it
    looks at these before it starts."""
    prefix = restore_staging(target, "")
    return Scope(names=lambda n: n == target or n.startswith(prefix),
                 select=lambda x: x.lease is not None and x.lease.kind == "restore" and x.lease.target == target)


def of_drills_of(collection: str) -> Scope:
    """What drills of the backups of ``collection`` left (a drill of it looks at these before it starts)."""
    prefix = drill_scratch(collection, "")
    return Scope(names=lambda n: n.startswith(prefix),
                 select=lambda x: x.lease is not None and x.lease.kind == "drill" and x.lease.collection == collection)


__all__ = ["CLEAR", "DROP", "KEEP", "LeaseEngine", "Leftover", "LeftoverResult", "Scope", "find_leftovers",
           "judge", "of_drills_of", "of_restores_into", "reap"]
