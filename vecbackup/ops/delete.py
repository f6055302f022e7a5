"""Delete a backup: its tombstone, then the manifest (the backup ceases to exist), then data no other backup uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from vecbackup.format import layout
from vecbackup.format.manifest import Manifest
from vecbackup.format.tombstone import Tombstone
from vecbackup.ops import catalog
from vecbackup.ops.commit import pending_records
from vecbackup.stores.base import BlobStore, ObjectExists, ObjectNotFound
from vecbackup.times import now_z
from vecbackup.words import plural


@dataclass
class DeleteResult:
    backup_id: str
    collection: str
    objects_deleted: int
    objects_kept: int  # still used by other backups
    bytes_freed: int  # data objects and their row digests
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "collection": self.collection,
                "objects_deleted": self.objects_deleted, "objects_kept": self.objects_kept,
                "bytes_freed": self.bytes_freed, "notes": self.notes}


def unused_objects(removed: list[Manifest], remaining: list[Manifest]) -> tuple[dict[str, int], int]:
    """Data objects of the removed backups that no remaining backup references (key -> size), and how
    many of their objects are still referenced."""
    used = {o.key for m in remaining for o in m.objects}
    unused: dict[str, int] = {}
    still_used: set[str] = set()
    for m in removed:
        for o in m.objects:
            if o.key in used:
                still_used.add(o.key)
            else:
                unused[o.key] = o.size
    return unused, len(still_used)


def digests_size(store: BlobStore, key: str) -> int:
    """The bytes of the row digests of data object ``key`` (0 if it has none)."""
    sha = layout.parse_data_key(key)
    try:
        return store.stat(layout.digests_key(sha)).size if sha is not None else 0
    except ObjectNotFound:
        return 0


def remove_object(store: BlobStore, key: str) -> int:
    """Remove a data object, then its row digests (a crash between leaves digests of nothing: gc removes them);
    the bytes of the digests removed."""
    size = digests_size(store, key)
    store.delete(key)
    sha = layout.parse_data_key(key)
    if sha is not None:
        store.delete(layout.digests_key(sha))
    return size


def bury(store: BlobStore, manifest: Manifest, by: str) -> None:
    """Delete a backup: its tombstone first (create-if-absent; from then on the backup does not exist, and its
    manifest put back stays deleted), then its manifest."""
    run = manifest.options.get("run")
    tomb = Tombstone(manifest.collection.name, manifest.backup_id, now_z(), by,
                     run if isinstance(run, str) else None)
    try:
        store.put(tomb.key, tomb.to_json(), if_absent=True)
    except ObjectExists:
        pass  # deleted before (a delete that stopped before removing the manifest)
    store.delete(layout.manifest_key(manifest.collection.name, manifest.backup_id))


def delete_backup(store: BlobStore, manifest: Manifest) -> DeleteResult:
    bury(store, manifest, "delete")
    others, problems = catalog.list_manifests(store)
    records, unreadable = pending_records(store)  # sharded backups not committed yet use their objects too
    result = DeleteResult(manifest.backup_id, manifest.collection.name, 0, 0, 0)
    if problems or unreadable:
        # we cannot tell what an unreadable manifest references: keep all data (safe), say so
        result.objects_kept = len(manifest.objects)
        what = (plural(len(problems), "other manifest") if problems else plural(len(unreadable), "shard record"))
        result.notes.append(f"{what} could not be read; data objects kept")
        return result
    unused, result.objects_kept = unused_objects([manifest], [*others, *(r.manifest for r in records)])
    for key, size in unused.items():
        result.bytes_freed += size + remove_object(store, key)
        result.objects_deleted += 1
    return result
