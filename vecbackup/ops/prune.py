"""Prune: apply a retention policy (vecbackup.retention) to a store's backups and delete the rest.

Deletion follows docs/FORMAT.md, "Write and read ordering": first the manifests of every removed
backup (each backup ceases to exist), then the data objects that no remaining manifest references,
then the leftovers of failed backups older than the gc safety age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vecbackup.errors import CorruptData
from vecbackup.format import layout
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.commit import pending_records
from vecbackup.ops.delete import bury, digests_size, remove_object, unused_objects
from vecbackup.ops.gc import GcResult, collect_garbage
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.retention import (
    GUARD,
    Candidate,
    Decision,
    Policy,
    apply_policy,
    format_duration,
    longest_kept,
    require_rules,
)
from vecbackup.stores.base import BlobStore, object_lock
from vecbackup.times import iso_z, parse_z
from vecbackup.words import either, plural


@dataclass
class PruneResult:
    policy: Policy
    decisions: list[Decision]
    manifests: dict[str, Manifest]  # the decided backups, by manifest key
    dry_run: bool
    now: datetime
    objects_deleted: int = 0  # data objects only removed backups used (with dry_run: would be deleted)
    objects_kept: int = 0  # data objects of removed backups still used by a kept backup
    bytes_freed: int = 0
    gc: GcResult | None = None
    notes: list[str] = field(default_factory=list)
    object_lock: ObjectLock | None = None  # the store's: its deletes only add delete markers

    @property
    def kept(self) -> list[str]:
        """The ids of the backups the policy keeps, in the order of :meth:`backups` (``decisions`` says why)."""
        return [d.candidate.backup_id for d in self.decisions if d.keep]

    @property
    def removed(self) -> list[str]:
        """The ids of the backups removed (with ``dry_run``: that would be), in the order of :meth:`backups`."""
        return [d.candidate.backup_id for d in self.decisions if not d.keep]

    def backups(self) -> list[dict[str, Any]]:
        """Every backup judged: collections in name order, each newest first."""
        out = []
        for d in self.decisions:
            m = self.manifests[_key(d.candidate)]
            out.append({"backup_id": d.candidate.backup_id, "collection": d.candidate.collection,
                        "completed_at": m.completed_at, "keep": d.keep, "reasons": list(d.reasons),
                        "objects": len(m.objects), "bytes": m.size})
        return out

    def to_dict(self) -> dict[str, object]:
        gc_bytes = self.gc.bytes_freed if self.gc else 0
        return {"dry_run": self.dry_run, "now": iso_z(self.now),
                "policy": self.policy.to_dict(), "backups": self.backups(),
                "kept": self.kept, "removed": self.removed,
                "objects_deleted": self.objects_deleted, "objects_kept": self.objects_kept,
                "bytes_freed": self.bytes_freed,
                "gc": self.gc.to_dict() if self.gc else None,
                "total_bytes_freed": self.bytes_freed + gc_bytes,
                "object_lock": None if self.object_lock is None else self.object_lock.to_dict(),
                "bytes_still_billed": self.bytes_freed + gc_bytes if self.object_lock is not None else 0,
                "notes": self.notes}


def _key(c: Candidate) -> str:
    return layout.manifest_key(c.collection, c.backup_id)


def _time(manifest: Manifest) -> datetime:
    try:
        t = parse_z(manifest.completed_at)
    except (TypeError, ValueError):
        t = None
    if t is None or t.tzinfo is None:
        raise CorruptData(f"manifest of backup {manifest.backup_id} has no valid completed_at "
                          f"({manifest.completed_at!r}), so prune cannot judge it; nothing deleted")
    return t.astimezone(UTC)




def lock_notes(lock: ObjectLock, policy: Policy | None) -> list[str]:
    """What prune or gc says on a store with object lock: that its deletes only add delete markers, and, where the
    ``policy`` keeps backups longer than the lock lasts, the numbers (a warning)."""
    notes = []
    longest = longest_kept(policy) if policy is not None else None
    if longest is not None and longest[0] > lock.days * 86400:
        notes.append(f"object lock {lock} keeps a backup's manifest {lock.days} days, but this policy keeps backups "
                     f"up to {longest[0] / 86400:g} days ({longest[1]}): a kept backup older than {lock.days} days "
                     "can be deleted by anyone who may delete in the bucket (its data objects stay locked while newer "
                     f"backups use them); make a new store with --object-lock {lock.mode}:"
                     f"{-(-int(longest[0]) // 86400)}d or more, or keep fewer")
    notes.append(f"object lock {lock}: a delete only adds a delete marker; the bytes deleted stay stored, and billed, "
                 "as noncurrent versions until each one's lock ends and a lifecycle rule expires them "
                 "(docs/STORES.md, \"Object lock\")")
    return notes


def prune(store: BlobStore, policy: Policy, *, collection: str | None = None, dry_run: bool = False,
          now: datetime | None = None, gc_min_age: float = 86400.0, progress: Progress | None = None,
          ) -> PruneResult:
    """Keep the backups ``policy`` keeps (of ``collection``, or of every collection, each on its own),
    delete the others and the data only they used, then collect leftovers of failed backups older than
    ``gc_min_age`` seconds. ``now`` is when retention is judged from (the backups' times are their
    ``completed_at``); the gc safety age always uses the real clock, since store objects carry real times.

    Refuses (CorruptData, nothing deleted) if any manifest in the store is unreadable: what it references
    cannot be known, and a policy cannot be judged without every backup."""
    require_rules(policy)
    progress = progress or NullProgress()
    now = (now or datetime.now(UTC)).astimezone(UTC)

    # the caller holds the store's exclusive lock (vecbackup.ops.lock; the CLI takes it): the deletions and
    # gc below assume no backup commits or uploads meanwhile

    every, problems = catalog.list_manifests(store)  # all collections: chunks may be shared between them
    if problems:
        raise CorruptData(f"{plural(len(problems), 'manifest')} in {store.display} cannot be read, so prune "
                          f"cannot tell what is in use; nothing deleted. First: {problems[0]}")
    mine = [m for m in every if collection is None or m.collection.name == collection]
    by_key = {layout.manifest_key(m.collection.name, m.backup_id): m for m in mine}
    candidates = [Candidate(m.backup_id, m.collection.name, _time(m)) for m in mine]
    decisions = apply_policy(candidates, policy, now)
    result = PruneResult(policy, decisions, by_key, dry_run, now)
    dropped = [d for d in decisions if not d.keep]
    removed = [by_key[_key(d.candidate)] for d in dropped]

    result.object_lock = object_lock(store)
    if result.object_lock is not None:
        result.notes.extend(lock_notes(result.object_lock, policy))
    if collection is not None and not mine:
        result.notes.append(f"no backups of collection {collection!r} in {store.display}")
    for d in decisions:  # keep-within alone, and a collection with no backup in the window: say so
        if d.keep and GUARD in d.reasons:
            result.notes.append(f"no backup of collection {d.candidate.collection!r} is newer than "
                                f"{format_duration(policy.keep_within)}; its newest ({d.candidate.backup_id}) "
                                f"is kept anyway")
    for note in result.notes:
        progress.warn(note)

    records, unreadable = pending_records(store)  # sharded backups not committed yet use their objects too
    if unreadable:
        raise CorruptData(f"{plural(len(unreadable), 'shard record')} in {store.display} cannot be read, so prune "
                          f"cannot tell what is in use; nothing deleted. First: {unreadable[0]}",
                          hint=f"{either('abandon()', '`vecbackup commit --abandon`')} removes a run's records")
    pending = [r.manifest for r in records]

    if dry_run:
        removed_keys = {_key(d.candidate) for d in dropped}
        remaining = [m for m in every if layout.manifest_key(m.collection.name, m.backup_id) not in removed_keys]
        unused, result.objects_kept = unused_objects(removed, [*remaining, *pending])
        result.objects_deleted = len(unused)
        result.bytes_freed = sum(size + digests_size(store, key) for key, size in unused.items())
        result.gc = collect_garbage(store, min_age=gc_min_age, dry_run=True, manifests=every)
        return result

    # 1. the tombstones and manifests: each removed backup ceases to exist
    progress.start("prune: delete manifests", len(removed))
    for m in removed:
        bury(store, m, "prune")
        progress.advance(1)
    progress.finish()

    # 2. data only removed backups used, against what remains now (listed once, after the deletions)
    remaining, problems = catalog.list_manifests(store)
    if problems:
        # a manifest appeared or broke meanwhile: what it references is unknown, so keep all data (safe)
        note = (f"{plural(len(problems), 'manifest')} could not be read after removing backups, so the "
                f"removed backups' data objects were kept (`vecbackup gc` removes them once every manifest reads). "
                f"First: {problems[0]}")
        result.notes.append(note)
        progress.warn(note)
        return result
    unused, result.objects_kept = unused_objects(removed, [*remaining, *pending])
    progress.start("prune: delete data objects", len(unused))
    for key in sorted(unused):
        freed = unused[key] + remove_object(store, key)
        result.objects_deleted += 1
        result.bytes_freed += freed
        progress.advance(1, freed)
    progress.finish()

    # 3. leftovers of failed or interrupted backups, past the safety age
    result.gc = collect_garbage(store, min_age=gc_min_age, manifests=remaining)
    return result
