"""Collect garbage: data objects no manifest (nor shard record of a sharded backup not committed yet) references
(left by failed or interrupted backups, or by deletes that could not finish), and the row digests of data objects
that are not referenced, once they are older than a safety age; and the manifests of deleted backups (ones with a
tombstone: a delete that stopped before removing its manifest, or a manifest put back)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vecbackup.errors import CorruptData
from vecbackup.format import layout
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.commit import pending_records
from vecbackup.stores.base import BlobStore, object_lock
from vecbackup.words import either, plural


@dataclass
class GcResult:
    referenced: int
    unreferenced: int
    deleted: int = 0
    bytes_freed: int = 0
    kept_young: int = 0  # unreferenced but younger than the safety age: maybe a running backup's
    dry_run: bool = False
    keys: list[str] = field(default_factory=list)  # what was (or, with dry_run, would be) deleted
    #: manifests of deleted backups (with a tombstone) that were (or would be) removed; also in ``keys``
    dead_manifests: int = 0
    object_lock: ObjectLock | None = None  # the store's: its deletes only add delete markers

    def to_dict(self) -> dict[str, object]:
        return {"referenced": self.referenced, "unreferenced": self.unreferenced, "deleted": self.deleted,
                "bytes_freed": self.bytes_freed, "kept_young": self.kept_young, "dry_run": self.dry_run,
                "dead_manifests": self.dead_manifests, "keys": self.keys,
                "object_lock": None if self.object_lock is None else self.object_lock.to_dict(),
                "bytes_still_billed": self.bytes_freed if self.object_lock is not None else 0}


def collect_garbage(store: BlobStore, *, min_age: float = 86400.0, dry_run: bool = False,
                    now: float | None = None, manifests: list[Manifest] | None = None) -> GcResult:
    """Delete unreferenced data objects older than ``min_age`` seconds. Refuses to run if any
    manifest is unreadable: what it references cannot be known, so nothing would be safe to delete.
    ``manifests``: every manifest in the store, when the caller (prune, under the lock) has just read them."""
    if manifests is None:
        manifests, problems = catalog.list_manifests(store)
        if problems:
            raise CorruptData(f"{plural(len(problems), 'manifest')} in {store.display} cannot be read, so gc "
                              f"cannot tell what is in use; nothing deleted. First: {problems[0]}")
    records, problems = pending_records(store)  # sharded backups not committed yet use their objects too
    if problems:
        raise CorruptData(f"{plural(len(problems), 'shard record')} in {store.display} cannot be read, so gc "
                          f"cannot tell what is in use; nothing deleted. First: {problems[0]}",
                          hint=f"{either('abandon()', '`vecbackup commit --abandon`')} removes a run's records")
    referenced = {o.key for m in [*manifests, *(r.manifest for r in records)] for o in m.objects}
    now = time.time() if now is None else now
    result = GcResult(referenced=len(referenced), unreferenced=0, dry_run=dry_run, object_lock=object_lock(store))
    for ref in catalog.deleted_refs(store):  # a deleted backup's manifest references nothing
        result.dead_manifests += 1
        result.keys.append(ref.key)
        if not dry_run:
            store.delete(ref.key)
            result.deleted += 1
    for info in [*store.list(layout.DATA), *store.list(layout.DIGESTS)]:
        sha = layout.parse_data_key(info.key) or layout.parse_digests_key(info.key)
        if sha is None or layout.data_key(sha) in referenced:
            continue
        result.unreferenced += 1
        if now - info.mtime < min_age:
            result.kept_young += 1
            continue
        result.keys.append(info.key)
        result.bytes_freed += info.size
        if not dry_run:
            store.delete(info.key)
            result.deleted += 1
    return result
