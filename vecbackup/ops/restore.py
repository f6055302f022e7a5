"""Restore a backup into a collection, staged under a temporary name until complete."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from vecbackup.errors import AlreadyExists, UsageError, VecbackupError
from vecbackup.format.manifest import Manifest
from vecbackup.ops.fetch import iter_chunks
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.sources.base import RestorePlan, Sink
from vecbackup.stores.base import BlobStore, in_flight


@dataclass
class RestoreResult:
    backup_id: str
    source_collection: str
    collection: str
    rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "source_collection": self.source_collection,
                "collection": self.collection, "rows": self.rows, "seconds": round(self.seconds, 3),
                "notes": self.notes}


def plan_restore(
    manifest: Manifest,
    sink: Sink,
    *,
    target: str | None = None,
    drop_existing: bool = False,
    new_ids: bool = False,
    index_params: dict[str, dict[str, Any]] | None = None,
    index_fallback: bool = False,
) -> RestorePlan:
    """Decide names and options, and check the target can take the collection; writes nothing."""
    spec = manifest.collection
    name = target or spec.name
    for field_name in index_params or {}:
        if not any(i.field_name == field_name for i in spec.indexes):
            raise UsageError(f"--index-params names field {field_name!r}, which has no index in the backup",
                             hint="indexed fields: " + ", ".join(i.field_name for i in spec.indexes))
    exists = sink.has_collection(name)
    if exists and not drop_existing:
        raise AlreadyExists(f"collection {name!r} already exists in {sink.display}",
                            hint="restore --as NEW_NAME, or --drop-existing to replace it")
    plan = RestorePlan(
        target=name,
        staging=f"{name[:200]}_vbrestore_{secrets.token_hex(4)}",
        replace=exists,
        keep_ids=not new_ids,
        index_params=dict(index_params or {}),
        index_fallback=index_fallback,
        aliases=spec.aliases if name == spec.name else (),
    )
    if spec.primary.auto_id and new_ids:
        plan.notes.append(f"primary key {spec.primary.name!r} is auto-id: the server assigned new ids (--new-ids)")
    sink.check(spec, plan)
    return plan


def restore_backup(
    store: BlobStore, manifest: Manifest, sink: Sink, plan: RestorePlan, *, progress: Progress | None = None
) -> RestoreResult:
    """Create the staging collection, insert every chunk (each checked against its SHA-256 first),
    build indexes, load, and only then give it the target name. On any failure the staging
    collection is dropped and an existing target is untouched."""
    progress = progress or NullProgress()
    spec = manifest.collection
    t0 = time.monotonic()
    sink.create(spec, plan)
    try:
        progress.start(f"restore {plan.target}", manifest.rows)
        written = 0
        for obj, chunk in iter_chunks(store, manifest.objects, read_ahead=in_flight(store)):
            written += sink.write(spec, plan, chunk)
            progress.advance(chunk.num_rows, obj.size)
        progress.finish()
        if written != manifest.rows:
            raise VecbackupError(f"inserted {written} rows, the backup holds {manifest.rows}")
        sink.finish(spec, plan)
    except BaseException:
        sink.abort(plan)
        raise
    count = sink.count(plan.target)
    if count != manifest.rows:
        raise VecbackupError(f"restored collection {plan.target!r} holds {count} rows, the backup {manifest.rows}"
                             " (duplicate primary keys in the backup?)")
    return RestoreResult(backup_id=manifest.backup_id, source_collection=spec.name, collection=plan.target,
                         rows=count, seconds=time.monotonic() - t0, notes=plan.notes)
