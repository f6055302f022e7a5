"""Join the shards of a sharded backup into one backup (docs/FORMAT.md, "Sharded backups").

``backup --shard I/N --run RUN`` workers each write their data objects and a shard record; :func:`commit_run`
writes the backup's manifest (the commit point, create-if-absent) once all N records of the run are there, then
removes the records. While one is missing nothing is committed. The backup id is derived from the run (the
earliest shard start and a digest of collection and run), so committing twice (two workers racing, or a re-run
after a crash between the manifest and the clean-up) finds the same manifest and is not an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from vecbackup import limits
from vecbackup.errors import AlreadyExists, CorruptData, MissingData, NotFound, UsageError, VecbackupError
from vecbackup.format import layout
from vecbackup.format.duplicates import DuplicateKeys
from vecbackup.format.manifest import Incremental, Manifest, merge_objects
from vecbackup.format.shard import ShardRecord, parse_record_key, record_key, run_prefix, runs_prefix
from vecbackup.ops import catalog
from vecbackup.ops.duplicates import duplicate_note
from vecbackup.schema import CollectionSpec
from vecbackup.stores.base import BlobStore, ObjectNotFound
from vecbackup.times import parse_z


@dataclass
class CommitResult:
    collection: str
    run: str
    shards: int
    backup_id: str = ""  # empty while the run is incomplete
    rows: int = 0
    objects: int = 0
    bytes_stored: int = 0
    manifest_key: str = ""
    committed: bool = False  # a backup exists for the run (now, or already)
    already: bool = False  # it existed before this call
    present: list[int] = field(default_factory=list)  # shard indexes whose records were found
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.shards) if i not in self.present]

    def to_dict(self) -> dict[str, object]:
        return {"collection": self.collection, "run": self.run, "shards": self.shards, "committed": self.committed,
                "already": self.already, "backup_id": self.backup_id or None, "rows": self.rows,
                "objects": self.objects, "bytes_stored": self.bytes_stored,
                "manifest": self.manifest_key or None, "present": self.present, "missing": self.missing,
                "notes": self.notes}


def derived_backup_id(collection: str, run: str, started_at: str) -> str:
    """The id of the backup a run commits: its earliest shard start, and 8 hex digits of SHA-256 of
    ``<collection> NUL <run>`` (docs/FORMAT.md, "Sharded backups")."""
    digest = hashlib.sha256(f"{collection}\0{run}".encode()).hexdigest()[:8]
    return parse_z(started_at).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + digest


def _comparable(spec: CollectionSpec) -> dict[str, Any]:
    """The definition, with the lists whose order an engine does not keep (indexes, aliases) sorted."""
    d = spec.to_dict()
    for key in ("indexes", "aliases"):
        if isinstance(d.get(key), list):
            d[key] = sorted(d[key], key=lambda x: orjson.dumps(x, option=orjson.OPT_SORT_KEYS))
    return d


def join(records: list[ShardRecord], collection: str, run: str) -> Manifest:
    """One manifest from the records of every shard of a run (pure). MissingData while a shard is missing;
    VecbackupError when the shards saw different collections (the schema changed during the run)."""
    if not records:
        raise NotFound(f"run {run!r} of collection {collection!r} has no shard records",
                       hint="no shard of it has finished, or it was committed already (`vecbackup list`)")
    counts = sorted({r.shard.count for r in records})
    if len(counts) > 1:
        raise UsageError(f"the shards of run {run!r} were started with different counts "
                         f"({', '.join(map(str, counts))})",
                         hint="every worker of a run takes the same N in --shard I/N; start again with a new --run")
    n = counts[0]
    by_index = {r.shard.index: r for r in records}
    missing = [i for i in range(n) if i not in by_index]
    if missing:
        raise MissingData(f"run {run!r} of {collection!r}: shard {', '.join(f'{i}/{n}' for i in missing)} missing "
                          f"({len(by_index)} of {n} present); nothing committed",
                          hint=f"run `vecbackup backup ... --shard I/{n} --run {run}` for each missing I, then "
                               "commit again")
    ordered = [by_index[i] for i in range(n)]
    first = ordered[0].manifest
    base = _comparable(first.collection)
    for r in ordered[1:]:
        other = _comparable(r.manifest.collection)
        if other != base:
            differ = sorted(k for k in {*base, *other} if base.get(k) != other.get(k))
            raise VecbackupError(f"run {run!r}: shard {r.shard.label} saw a different definition of {collection!r} "
                                 f"than shard {ordered[0].shard.label} ({', '.join(differ)}: it changed during the "
                                 "run); nothing committed", hint="back up every shard again under a new --run")
        if r.manifest.source.engine != first.source.engine:
            raise VecbackupError(f"run {run!r}: shard {r.shard.label} read from {r.manifest.source.engine}, shard "
                                 f"{ordered[0].shard.label} from {first.source.engine}; nothing committed")
    notes: list[str] = []
    for r in ordered:
        notes.extend(x for x in r.manifest.notes if x not in notes)
    largest: dict[tuple[str, str], int] = {}
    for r in ordered:
        for k, size in r.measured.items():
            largest[k] = max(largest.get(k, 0), size)
    spec = first.collection
    if largest:
        spec, inferred = limits.with_inferred(spec, largest, first.source.engine)
        notes.extend(inferred)
    duplicates = DuplicateKeys.join(r.manifest.duplicate_keys for r in ordered)  # a key's copies: in one shard
    if duplicates is not None and duplicates.keys:
        notes.append(duplicate_note(duplicates))
    notes.append(f"written by {n} shards (run {run}), joined by vecbackup commit")
    partition_rows: dict[str, int] = {}
    for r in ordered:
        for p, rows in r.manifest.partition_rows.items():
            partition_rows[p] = partition_rows.get(p, 0) + rows
    started = min(r.manifest.started_at for r in ordered)
    return Manifest(
        backup_id=derived_backup_id(collection, run, started),
        collection=spec,
        source=first.source,
        objects=merge_objects(o for r in ordered for o in r.manifest.objects),
        partition_rows=partition_rows,
        started_at=started,
        completed_at=max(r.manifest.completed_at for r in ordered),
        tool_version=first.tool_version,
        options={**first.options, "shards": n, "run": run},
        notes=tuple(notes),
        incremental=_joined_uploads([r.manifest.incremental for r in ordered]),
        duplicate_keys=duplicates,
    )


def _joined_uploads(parts: list[Incremental | None]) -> Incremental | None:
    """What the shards uploaded, together (the base: the one most shards reused, usually all the same)."""
    known = [p for p in parts if p is not None]
    if not known:
        return None
    bases = [p.base for p in known if p.base is not None]
    return Incremental(base=max(set(bases), key=bases.count) if bases else None,
                       new_objects=sum(p.new_objects for p in known), new_bytes=sum(p.new_bytes for p in known),
                       reused_rows=sum(p.reused_rows for p in known))


def read_records(store: BlobStore, collection: str, run: str) -> list[ShardRecord]:
    records = []
    for info in store.list(run_prefix(collection, run)):
        parsed = parse_record_key(info.key)
        if parsed is None or parsed[0] != collection or parsed[1] != run:
            continue
        try:
            data = store.get(info.key)
        except ObjectNotFound:  # removed by a commit racing this one
            continue
        record = ShardRecord.from_json(data, where=f"shard record {info.key}")
        if record.run != run or record.shard != parsed[2] or record.manifest.collection.name != collection:
            raise CorruptData(f"shard record {info.key} names shard {record.shard.label} of run {record.run!r} of "
                              f"{record.manifest.collection.name!r}")
        records.append(record)
    return records


def pending_records(store: BlobStore) -> tuple[list[ShardRecord], list[str]]:
    """Every shard record in the store (runs not committed yet), and a message per unreadable one. Their data
    objects are in use: gc and delete keep them."""
    records, problems = [], []
    for info in store.list(runs_prefix()):
        if parse_record_key(info.key) is None:
            continue
        try:
            records.append(ShardRecord.from_json(store.get(info.key), where=f"shard record {info.key}"))
        except ObjectNotFound:
            continue
        except VecbackupError as e:
            problems.append(f"{info.key}: {e}")
    return records, problems


def _check_objects(store: BlobStore, manifest: Manifest) -> None:
    for obj in manifest.objects:
        try:
            if store.stat(obj.key).size != obj.size:
                raise MissingData(f"{obj.key} in {store.display} does not have the size a shard recorded; not "
                                  "committed", hint="back up that shard again, then commit")
        except ObjectNotFound:
            raise MissingData(f"{obj.key}, written by a shard, is not in {store.display}; not committed",
                              hint="back up that shard again (a gc or delete may have removed it), then commit"
                              ) from None


def commit_run(store: BlobStore, collection: str, run: str, *, if_complete: bool = False) -> CommitResult:
    """Commit run ``run`` of ``collection``. With ``if_complete`` an incomplete run is not an error: the result
    says which shards are present (what a worker does after its own shard: the last one to finish commits)."""
    records = read_records(store, collection, run)
    n = max((r.shard.count for r in records), default=0)
    result = CommitResult(collection, run, n, present=sorted({r.shard.index for r in records}))
    try:
        manifest = join(records, collection, run)
    except MissingData:
        if if_complete:
            return result
        raise
    _check_objects(store, manifest)
    key = layout.manifest_key(collection, manifest.backup_id)
    try:
        store.put(key, manifest.to_json(), if_absent=True)
    except AlreadyExists:
        existing = catalog.load(store, catalog.BackupRef(collection, manifest.backup_id, key))
        if [o.key for o in existing.objects] != [o.key for o in manifest.objects]:
            raise AlreadyExists(f"backup {manifest.backup_id} of {collection!r} exists with other data objects "
                                f"than run {run!r} holds; nothing changed", hint="use a new --run") from None
        result.already = True
    for r in records:
        store.delete(record_key_of(r))
    result.committed = True
    result.backup_id, result.manifest_key = manifest.backup_id, key
    result.rows, result.objects, result.bytes_stored = manifest.rows, len(manifest.objects), manifest.size
    result.notes = list(manifest.notes)
    return result


def record_key_of(record: ShardRecord) -> str:
    return record_key(record.manifest.collection.name, record.run, record.shard)


def abandon_run(store: BlobStore, collection: str, run: str) -> int:
    """Remove the shard records of a run that will not be committed; its data objects become garbage (gc)."""
    records = read_records(store, collection, run)
    if not records:
        raise NotFound(f"run {run!r} of collection {collection!r} has no shard records in {store.display}")
    for r in records:
        store.delete(record_key_of(r))
    return len(records)


__all__ = ["CommitResult", "abandon_run", "commit_run", "derived_backup_id", "join", "pending_records",
           "read_records"]
