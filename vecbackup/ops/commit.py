"""Join the shards of a sharded backup into one backup (docs/FORMAT.md, "Sharded backups").

``backup --shard I/N --run RUN`` workers each write their data objects and a shard record; :func:`commit_run`
writes the backup's manifest (the commit point, create-if-absent) once all N records of the run are there, then
the run's closed mark, then removes the records. While one is missing nothing is committed. The backup id is
derived from the run (the earliest shard start and a digest of collection and run), so committing twice (two
workers racing, or a re-run after a crash between the manifest and the clean-up) finds the same manifest and is not
an error.

A run id is used once: a committed or abandoned run is closed (``closed.json``, or for a run committed by a
vecbackup before 0.3 its manifest), and neither a worker nor commit accepts it again. Records are never rewritten:
a re-run of a shard writes a new attempt that names the ones it replaces, and commit refuses a shard whose records
do not say which one is current. So a record put back from an earlier use of the run id, or beside the current one,
is refused instead of joined.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from vecbackup.errors import AlreadyExists, CorruptData, MissingData, NotFound, UsageError, VecbackupError
from vecbackup.format import layout
from vecbackup.format.duplicates import DuplicateKeys
from vecbackup.format.manifest import Incremental, Manifest, merge_objects
from vecbackup.format.shard import (
    ClosedRun,
    Shard,
    ShardRecord,
    closed_key,
    parse_record_key,
    run_prefix,
    runs_prefix,
)
from vecbackup.format.tombstone import parse_tombstone_key, tombstones_prefix
from vecbackup.limits import with_inferred
from vecbackup.ops import catalog
from vecbackup.ops.duplicates import duplicate_note
from vecbackup.schema import CollectionSpec
from vecbackup.stores.base import BlobStore, ObjectNotFound
from vecbackup.stores.objectlock import Retained, check_lock_kept, retain_all, retention_end
from vecbackup.times import now_z, parse_z
from vecbackup.words import either, param, plural


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
    retained: Retained | None = None  # object lock: what the commit extended (None: no lock, or not committed now)

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.shards) if i not in self.present]

    def to_dict(self) -> dict[str, object]:
        return {"collection": self.collection, "run": self.run, "shards": self.shards, "committed": self.committed,
                "already": self.already, "backup_id": self.backup_id or None, "rows": self.rows,
                "objects": self.objects, "bytes_stored": self.bytes_stored,
                "manifest": self.manifest_key or None, "present": self.present, "missing": self.missing,
                "notes": self.notes, **(self.retained or Retained()).to_dict()}


def derived_backup_id(collection: str, run: str, started_at: str) -> str:
    """The id of the backup a run commits: its earliest shard start, and 8 hex digits of SHA-256 of
    ``<collection> NUL <run>`` (docs/FORMAT.md, "Sharded backups")."""
    return layout.make_backup_id(parse_z(started_at), _run_digest(collection, run))


def _run_digest(collection: str, run: str) -> str:
    return hashlib.sha256(f"{collection}\0{run}".encode()).hexdigest()[:8]


def current_records(records: list[ShardRecord], run: str) -> list[ShardRecord]:
    """One record per shard (pure): the only one, or the one that supersedes every other of its shard. CorruptData
    (nothing committed) for a shard with records that do not say which is current: two workers of one shard ran at
    once, or a record was put back (someone who can write the store replaying an earlier one)."""
    by_shard: dict[Shard, list[ShardRecord]] = {}
    for r in records:
        by_shard.setdefault(r.shard, []).append(r)
    current = []
    for shard, group in sorted(by_shard.items(), key=lambda kv: (kv[0].count, kv[0].index)):
        if len(group) == 1:
            current.append(group[0])
            continue
        winners = [r for r in group if {o.attempt for o in group if o is not r} <= set(r.supersedes)]
        if len(winners) != 1:
            attempts = ", ".join(sorted(r.attempt or "(unnamed)" for r in group))
            raise CorruptData(f"run {run!r}: shard {shard.label} has {len(group)} records ({attempts}) and none "
                              "replaces the others: two workers of that shard ran at once, or a record was put "
                              "back; nothing committed",
                              hint=f"back up shard {shard.label} again (its new record replaces them all), then "
                                   "commit; or start over under a new --run")
        current.append(winners[0])
    return current


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
                         hint=f"every worker of a run takes the same N in {either('Shard(I, N)', '--shard I/N')}; "
                              f"start again with a new {param('run')}")
    n = counts[0]
    by_index = {r.shard.index: r for r in records}
    missing = [i for i in range(n) if i not in by_index]
    if missing:
        raise MissingData(f"run {run!r} of {collection!r}: shard {', '.join(f'{i}/{n}' for i in missing)} missing "
                          f"({len(by_index)} of {n} present); nothing committed",
                          hint=either(f"back up each missing shard I with BackupOptions(shard=Shard(I, {n}), "
                                      f"run={run!r})", f"run `vecbackup backup ... --shard I/{n} --run {run}` for "
                                      "each missing I") + ", then commit again")
    ordered = [by_index[i] for i in range(n)]
    first = ordered[0].manifest
    base = _comparable(first.collection)
    for r in ordered[1:]:
        other = _comparable(r.manifest.collection)
        if other != base:
            differ = sorted(k for k in {*base, *other} if base.get(k) != other.get(k))
            raise VecbackupError(f"run {run!r}: shard {r.shard.label} saw a different definition of {collection!r} "
                                 f"than shard {ordered[0].shard.label} ({', '.join(differ)}: it changed during the "
                                 "run); nothing committed",
                                 hint=f"back up every shard again under a new {param('run')}")
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
        spec, inferred = with_inferred(spec, largest, first.source.engine)
        notes.extend(inferred)
    duplicates = DuplicateKeys.join(r.manifest.duplicate_keys for r in ordered)  # a key's copies: in one shard
    if duplicates is not None and duplicates.keys:
        notes.append(duplicate_note(duplicates))
    notes.append(f"written by {plural(n, 'shard')} (run {run}), joined by vecbackup commit")
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


def _read_record(store: BlobStore, key: str) -> ShardRecord:
    """The record stored under ``key``, checked against its key (ObjectNotFound if it went meanwhile)."""
    parsed = parse_record_key(key)
    if parsed is None:
        raise ValueError(f"not a shard record key: {key}")
    record = ShardRecord.from_json(store.get(key), where=f"shard record {key}")
    if (record.collection, record.run, record.shard, record.attempt) != parsed:
        raise CorruptData(f"shard record {key} names attempt {record.attempt or '(unnamed)'} of shard "
                          f"{record.shard.label} of run {record.run!r} of {record.collection!r}")
    return record


def record_keys(store: BlobStore, collection: str, run: str) -> list[str]:
    """The keys of a run's shard records (nothing read)."""
    return [info.key for info in store.list(run_prefix(collection, run))
            if (p := parse_record_key(info.key)) is not None and p[0] == collection and p[1] == run]


def read_records(store: BlobStore, collection: str, run: str) -> list[ShardRecord]:
    records = []
    for key in record_keys(store, collection, run):
        try:
            records.append(_read_record(store, key))
        except ObjectNotFound:  # removed by a commit racing this one, or replaced by a re-run of its shard
            continue
    return records


def pending_records(store: BlobStore) -> tuple[list[ShardRecord], list[str]]:
    """Every shard record in the store (runs not committed yet), and a message per unreadable one. Their data
    objects are in use: gc and delete keep them."""
    records, problems = [], []
    for info in store.list(runs_prefix()):
        if parse_record_key(info.key) is None:
            continue
        try:
            records.append(_read_record(store, info.key))
        except ObjectNotFound:
            continue
        except VecbackupError as e:
            problems.append(f"{info.key}: {e}")
    return records, problems


def closed_run(store: BlobStore, collection: str, run: str) -> ClosedRun | None:
    """How run ``run`` of ``collection`` was closed (committed or abandoned), or None while it is open. A run
    committed by a vecbackup before 0.3 has no closed mark: its manifest (or the tombstone of its deletion) tells."""
    key = closed_key(collection, run)
    try:
        closed = ClosedRun.from_json(store.get(key), where=key)
    except ObjectNotFound:
        closed = None
    if closed is not None:
        if (closed.collection, closed.run) != (collection, run):
            raise CorruptData(f"{key} names run {closed.run!r} of {closed.collection!r}")
        return closed
    suffix = "-" + _run_digest(collection, run)
    for ref in catalog.list_refs(store, collection):
        if ref.backup_id.endswith(suffix) and catalog.load(store, ref).options.get("run") == run:
            return ClosedRun(collection, run, ref.backup_id, "")
    for info in store.list(tombstones_prefix(collection)):
        parsed = parse_tombstone_key(info.key)
        if parsed is not None and parsed[1].endswith(suffix) and \
                catalog.read_tombstone(store, info.key).run == run:
            return ClosedRun(collection, run, parsed[1], "")
    return None


def check_open(store: BlobStore, collection: str, run: str) -> None:
    """AlreadyExists (nothing written) if run ``run`` was committed or abandoned: a run id is used once."""
    closed = closed_run(store, collection, run)
    if closed is not None:
        how = f"committed as backup {closed.backup_id}" if closed.backup_id else "abandoned"
        raise AlreadyExists(f"run {run!r} of {collection!r} was {how}: a run id is used once",
                            hint=f"give this sharded backup a new {param('run')} (e.g. the Kubernetes Job's name, "
                                 "which is new for every scheduled run)")


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
    every = read_records(store, collection, run)
    closed = closed_run(store, collection, run)
    if closed is not None:
        if not closed.backup_id:
            raise AlreadyExists(f"run {run!r} of {collection!r} was abandoned; nothing committed",
                                hint=f"a run id is used once: back up again under a new {param('run')}")
        return _committed_already(store, closed, every, CommitResult(collection, run, 0))
    records = current_records(every, run)
    n = max((r.shard.count for r in records), default=0)
    result = CommitResult(collection, run, n, present=sorted({r.shard.index for r in records}))
    try:
        manifest = join(records, collection, run)
    except MissingData:
        if if_complete:
            return result
        raise
    _check_objects(store, manifest)
    check_lock_kept(store, catalog.newest(store))
    until = retention_end(store, datetime.now(UTC))  # the backup exists from now on: its objects are kept from now
    if until is not None:
        result.retained = retain_all(store, [k for o in manifest.objects for k in o.stored_keys], until)
    key = layout.manifest_key(collection, manifest.backup_id)
    try:
        store.put(key, manifest.to_json(), if_absent=True)
    except AlreadyExists:
        existing = catalog.load(store, catalog.BackupRef(collection, manifest.backup_id, key))
        if [o.key for o in existing.objects] != [o.key for o in manifest.objects]:
            raise AlreadyExists(f"backup {manifest.backup_id} of {collection!r} exists with other data objects "
                                f"than run {run!r} holds; nothing changed", hint=f"use a new {param('run')}") from None
        result.already = True
    _close(store, ClosedRun(collection, run, manifest.backup_id, now_z()))
    for r in every:  # the superseded records too
        store.delete(r.key)
    result.committed = True
    result.backup_id, result.manifest_key = manifest.backup_id, key
    result.rows, result.objects, result.bytes_stored = manifest.rows, len(manifest.objects), manifest.size
    result.notes = list(manifest.notes)
    return result


def _committed_already(store: BlobStore, closed: ClosedRun, records: list[ShardRecord],
                       result: CommitResult) -> CommitResult:
    """Committing a run that was committed before. Records still there whose objects the backup holds are left over
    (a commit racing this one, or one that stopped before removing them) and are removed; others are refused."""
    ref = next((r for r in catalog.list_refs(store, closed.collection) if r.backup_id == closed.backup_id), None)
    if ref is None:
        if records:
            raise _late(closed, records)
        raise NotFound(f"run {closed.run!r} of {closed.collection!r} was committed as backup {closed.backup_id}, "
                       "which is no longer in the store (deleted or pruned)", hint="`vecbackup list` shows the "
                       "backups; a run id is used once")
    manifest = catalog.load(store, ref)
    held = {o.key for o in manifest.objects}
    if not all({o.key for o in r.manifest.objects} <= held for r in records):
        raise _late(closed, records)
    for r in records:
        store.delete(r.key)
    result.shards = int(manifest.options.get("shards", 0) or 0)
    result.present = list(range(result.shards))
    result.committed = result.already = True
    result.backup_id, result.manifest_key = manifest.backup_id, ref.key
    result.rows, result.objects, result.bytes_stored = manifest.rows, len(manifest.objects), manifest.size
    result.notes = list(manifest.notes)
    return result


def _late(closed: ClosedRun, records: list[ShardRecord]) -> AlreadyExists:
    return AlreadyExists(f"run {closed.run!r} of {closed.collection!r} was committed already as backup "
                         f"{closed.backup_id}; its {plural(len(records), 'shard record')} now in the store "
                         f"{'is' if len(records) == 1 else 'are'} not that backup's (a worker that finished after "
                         "the commit, or a record put back) and not joined",
                         hint=either(f"abandon(store, {closed.collection!r}, {closed.run!r})",
                                     f"`vecbackup commit --abandon --run {closed.run}`") + " removes them; a run id "
                         "is used once")


def _close(store: BlobStore, closed: ClosedRun) -> None:
    try:
        store.put(closed.key, closed.to_json(), if_absent=True)
    except AlreadyExists:
        pass  # closed already (a commit racing this one, or a re-run after a crash)


def abandon_run(store: BlobStore, collection: str, run: str) -> int:
    """Remove the shard records of a run that will not be committed; its data objects become garbage (gc). The run
    is closed first: its id is not used again."""
    keys = record_keys(store, collection, run)
    if not keys:
        raise NotFound(f"run {run!r} of collection {collection!r} has no shard records in {store.display}")
    closed = closed_run(store, collection, run)
    if closed is None:
        _close(store, ClosedRun(collection, run, "", now_z()))
    for key in keys:
        store.delete(key)
    return len(keys)


__all__ = ["CommitResult", "abandon_run", "check_open", "closed_run", "commit_run", "current_records",
           "derived_backup_id", "join", "pending_records", "read_records", "record_keys"]
