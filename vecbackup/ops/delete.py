"""Delete a backup: the manifest first (the backup ceases to exist), then data no other backup uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from vecbackup.format import layout
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.stores.base import BlobStore


@dataclass
class DeleteResult:
    backup_id: str
    collection: str
    objects_deleted: int
    objects_kept: int  # still used by other backups
    bytes_freed: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "collection": self.collection,
                "objects_deleted": self.objects_deleted, "objects_kept": self.objects_kept,
                "bytes_freed": self.bytes_freed, "notes": self.notes}


def delete_backup(store: BlobStore, manifest: Manifest) -> DeleteResult:
    store.delete(layout.manifest_key(manifest.collection.name, manifest.backup_id))
    others, problems = catalog.list_manifests(store)
    result = DeleteResult(manifest.backup_id, manifest.collection.name, 0, 0, 0)
    if problems:
        # we cannot tell what an unreadable manifest references: keep all data (safe), say so
        result.objects_kept = len(manifest.objects)
        result.notes.append(f"{len(problems)} other manifest(s) could not be read; data objects kept")
        return result
    used = {o.key for m in others for o in m.objects}
    seen: set[str] = set()
    for obj in manifest.objects:
        if obj.key in seen:
            continue
        seen.add(obj.key)
        if obj.key in used:
            result.objects_kept += 1
        else:
            store.delete(obj.key)
            result.objects_deleted += 1
            result.bytes_freed += obj.size
    return result
