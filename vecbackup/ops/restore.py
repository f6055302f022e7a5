"""Restore a backup into a collection, staged under a temporary name until complete."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from vecbackup.errors import AlreadyExists, Unsupported, UsageError, VecbackupError
from vecbackup.format.manifest import Manifest
from vecbackup.mapping import Mapping, plan_mapping, transform_chunk
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


def restore_mapping(manifest: Manifest, sink: Sink) -> Mapping:
    """How the backup's collection maps onto the sink's engine (the identity for the same kind of engine)."""
    return plan_mapping(manifest.collection, manifest.source.engine, sink.info().engine)


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
    """Decide names and options, and check the target can take the collection; writes nothing.

    Across engines (a Milvus backup into Qdrant or back) every field that cannot be mapped is refused here,
    all of them in one Unsupported, before anything is created."""
    mapping = restore_mapping(manifest, sink)
    if mapping.problems:
        raise mapping.error()
    name = target or mapping.spec.name
    return _plan(mapping, sink, name, sink.has_collection(name), drop_existing=drop_existing, new_ids=new_ids,
                 index_params=index_params, index_fallback=index_fallback)


def _plan(mapping: Mapping, sink: Sink, name: str, exists: bool, *, drop_existing: bool, new_ids: bool,
          index_params: dict[str, dict[str, Any]] | None, index_fallback: bool) -> RestorePlan:
    """The plan for a mappable backup whose target's existence is known (shared by plan_restore and
    preview_restore, so neither asks the target twice)."""
    spec = mapping.spec
    for field_name in index_params or {}:
        if not any(i.field_name == field_name for i in spec.indexes):
            raise UsageError(f"--index-params names field {field_name!r}, which has no index in the backup",
                             hint="indexed fields: " + ", ".join(i.field_name for i in spec.indexes))
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
        mapping=mapping,
    )
    plan.notes.extend(mapping.notes)
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
    mapping = plan.mapping if plan.mapping is not None else restore_mapping(manifest, sink)
    spec = mapping.spec
    t0 = time.monotonic()
    sink.create(spec, plan)
    try:
        progress.start(f"restore {plan.target}", manifest.rows)
        written = 0
        for obj, chunk in iter_chunks(store, manifest.objects, read_ahead=in_flight(store)):
            written += sink.write(spec, plan, transform_chunk(mapping, chunk))
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


@dataclass
class RestorePreview:
    """What `restore --dry-run` reports: the target, the field mapping, and why the restore would fail."""

    backup_id: str
    source_collection: str
    collection: str
    target_exists: bool
    mapping: Mapping
    problems: list[str] = field(default_factory=list)  # one line each, mapping problems first
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0  # what the real restore would exit with: 0, 5 (target exists) or 9 (cannot be mapped)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.exit_code == 0, "dry_run": True, "backup_id": self.backup_id,
                "source_collection": self.source_collection, "collection": self.collection,
                "target_exists": self.target_exists, **self.mapping.to_dict(), "problems": self.problems,
                "notes": self.notes, "exit_code": self.exit_code}


def preview_restore(
    manifest: Manifest,
    sink: Sink,
    *,
    target: str | None = None,
    drop_existing: bool = False,
    new_ids: bool = False,
    index_params: dict[str, dict[str, Any]] | None = None,
    index_fallback: bool = False,
) -> RestorePreview:
    """Everything plan_restore checks, collected instead of raised; reads the target, writes nothing."""
    mapping = restore_mapping(manifest, sink)
    name = target or mapping.spec.name
    exists = sink.has_collection(name)
    preview = RestorePreview(backup_id=manifest.backup_id, source_collection=manifest.collection.name,
                             collection=name, target_exists=exists, mapping=mapping,
                             problems=[str(p) for p in mapping.problems])
    if mapping.problems:
        preview.exit_code = Unsupported.exit_code
        return preview
    if exists and not drop_existing:
        preview.problems.append(f"collection {name!r} already exists in {sink.display} (--drop-existing replaces "
                                "it)")
        preview.exit_code = AlreadyExists.exit_code
        return preview
    try:
        plan = _plan(mapping, sink, name, exists, drop_existing=drop_existing, new_ids=new_ids,
                     index_params=index_params, index_fallback=index_fallback)
    except Unsupported as e:
        preview.problems.append(str(e))
        preview.exit_code = e.exit_code
        return preview
    preview.notes = list(plan.notes)
    return preview
