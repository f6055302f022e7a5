"""Restore a backup into a collection, staged under a temporary name until complete."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vecbackup.engines.base import BinlogImportSink, ImportSink, RestorePlan, Sink, StagingSink
from vecbackup.errors import (
    AlreadyExists,
    TargetRejected,
    Unsupported,
    UsageError,
    VecbackupError,
    check_whole,
)
from vecbackup.format.codec import Chunk
from vecbackup.format.lease import LEASE_KEY, UnreadableLease, parse_lease, restore_staging
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.index_types import describe, plan_indexes
from vecbackup.limits import MAX_CAPACITY, MAX_LENGTH, applicable
from vecbackup.ops.duplicates import (
    Choice,
    DuplicatePlan,
    check_restored,
    plan_duplicates,
    unrecorded_note,
    waves,
)
from vecbackup.ops.fetch import iter_chunks
from vecbackup.ops.leases import HeldLease, new_lease
from vecbackup.ops.leftovers import LeftoverResult
from vecbackup.ops.mapping import Mapping, plan_mapping, transform_chunk
from vecbackup.ops.progress import Progress, with_phases
from vecbackup.schema import CollectionSpec, Index
from vecbackup.stores.base import BlobStore, in_flight
from vecbackup.times import iso_z
from vecbackup.words import either, param

#: what inserts one chunk into a plan's staging collection and returns the rows written (Sink.write)
Writer = Callable[[CollectionSpec, RestorePlan, Chunk], int]
#: the phases a restore reports (Progress.phase) after the sink's own (flushing, building index ..., loading)
COUNTING = "counting rows"
RENAMING = "renaming"


@dataclass
class RestoreResult:
    backup_id: str
    source_collection: str
    collection: str
    rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    import_tasks: int | None = None  # restores through the server's import (--bulk-import-via): its tasks
    import_format: str | None = None  # and what it imported: "files" or "binlog"
    dropped: list[str] = field(default_factory=list)  # leftovers of dead restores into the target, dropped first

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"backup_id": self.backup_id, "source_collection": self.source_collection,
                                "collection": self.collection, "rows": self.rows, "seconds": round(self.seconds, 3),
                                "notes": self.notes, "dropped": self.dropped}
        if self.import_tasks is not None:
            d["import_tasks"] = self.import_tasks
        if self.import_format is not None:
            d["import_format"] = self.import_format
        return d


#: insert requests a restore keeps in flight unless told otherwise: on the 2-core test machine K = 2 and 4 were no
#: faster than 1 (server and client share the cores; benchmarks/RESULTS.md, "Restore with K insert requests")
DEFAULT_PARALLEL = 1


#: what the server may import (BulkImport.format, --bulk-import-format): numpy or row-JSON files, its own binlogs, or
#: (auto) its binlogs where it takes them for this collection (Milvus 2.3), else files
IMPORT_FORMATS = ("auto", "files", "binlog")


@dataclass(frozen=True)
class RestoreOptions:
    """Everything a restore can be asked to do differently from the backup; a plan is built from all of it."""

    target: str | None = None  # --as: the collection name (default: the backup's)
    drop_existing: bool = False  # replace an existing collection of that name, once the new copy is complete
    new_ids: bool = False  # let the server assign new primary keys to auto-id collections
    index_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per field, over the recorded ones
    index_types: dict[str, str] = field(default_factory=dict)  # per field, instead of the recorded index type
    index_fallback: bool = False  # build the engine's default index where the recorded one cannot be built
    field_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per field: max_length, ... (FIELD_PARAMS)
    collection_params: dict[str, Any] = field(default_factory=dict)  # COLLECTION_PARAMS
    shards: int | None = None  # Milvus num_shards / Qdrant shard_number instead of the recorded one
    replication_factor: int | None = None  # Qdrant: replicas of each shard instead of the recorded number
    parallel: int = DEFAULT_PARALLEL  # insert requests in flight at once (at most the sink's max_writers)
    #: plan for the server's own import of staged files (ops/bulk_restore.py): a restore given
    #: ``bulk_import=BulkImport(...)`` sets it; in a plan() it checks the target can take one
    server_import: bool = False
    #: which files the server imports: "files" (numpy or row JSON), "binlog" (its own insert binlogs) or "auto"
    import_format: str = "auto"
    #: keys held by more than one partition: "keep" every copy (refused where the target keeps one per key),
    #: "shown" (the copy the source's collection-level reads showed) or "partition:A,B" (ops/duplicates.py)
    duplicate_keys: str = "keep"
    #: restore without the collection's functions (e.g. BM25) and their output fields, onto a target that has none
    drop_functions: bool = False

    def __post_init__(self) -> None:
        """UsageError naming the option that is out of range, when the options are made (not after a restore has
        begun)."""
        of = "RestoreOptions"
        if self.target is not None and (not isinstance(self.target, str) or not self.target):
            raise UsageError(f"{param('target', self.target, flag='--as', quoted=True, of=of)} is not a collection "
                             "name")
        check_whole("parallel", self.parallel, 1, of=of)
        check_whole("shards", self.shards, 1, of=of, optional=True)
        check_whole("replication_factor", self.replication_factor, 1, of=of, optional=True)
        for name in ("index_params", "field_params"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                      for k, v in value.items()):
                raise UsageError(f"{param(name, value, of=of)} is not a parameter dict per field",
                                 hint=either(f"e.g. {name}={{'embedding': {{'M': 16}}}}",
                                             "e.g. FIELD:K=V,K=V"))
        if not isinstance(self.collection_params, dict):
            raise UsageError(f"{param('collection_params', self.collection_params, of=of)} is not a dict",
                             hint=either("e.g. collection_params={'consistency_level': 'Bounded'}",
                                         "e.g. consistency_level=Bounded"))
        Choice.parse(self.duplicate_keys)
        if self.import_format not in IMPORT_FORMATS:
            said = param("import_format", self.import_format, flag="--bulk-import-format", quoted=True, of=of)
            raise UsageError(f"{said} is not an import format", hint=f"use one of {', '.join(IMPORT_FORMATS)}")


#: what --field-params may set, and the type of each value
FIELD_PARAMS: dict[str, type] = {"max_length": int, "max_capacity": int, "description": str}
#: what --collection-params may set, and the type of each value
COLLECTION_PARAMS: dict[str, type] = {"description": str, "consistency_level": str, "num_partitions": int}
#: --collection-params properties.KEY=VALUE sets collection property KEY; properties.KEY= leaves it out
PROPERTY_PREFIX = "properties."
CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")


def restore_mapping(manifest: Manifest, sink: Sink, options: RestoreOptions | None = None) -> Mapping:
    """How the backup's collection maps onto the sink's engine (the identity for the same kind of engine)."""
    return plan_mapping(manifest.collection, manifest.source.engine, sink.info().engine,
                        drop_functions=options is not None and options.drop_functions)


def _value(option: str, key: str, value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{option}: {key} must be a whole number of at least 1, not {value!r}")
        return value
    return str(value)


def _of_field(option: str, name: str) -> str:
    """``field_params['text']`` / ``--field-params text``: one field's entry of a per-field option."""
    return either(f"{option}[{name!r}]", f"{param(option)} {name}")


def apply_overrides(spec: CollectionSpec, field_params: dict[str, dict[str, Any]],
                    collection_params: dict[str, Any]) -> tuple[CollectionSpec, list[str]]:
    """``spec`` with the user's --field-params and --collection-params applied, and a note for each change (and
    for each limit the backup measured instead of recording it). Pure; UsageError names a bad option."""
    notes: list[str] = []
    fields = {f.name: f for f in spec.fields}
    for name, params in field_params.items():
        if name not in fields:
            raise UsageError(f"{param('field_params')} names field {name!r}, which the collection does not have",
                             hint="fields: " + ", ".join(fields))
        f = fields[name]
        changes: dict[str, Any] = {}
        for key, raw in params.items():
            if key not in FIELD_PARAMS:
                raise UsageError(f"{_of_field('field_params', name)}: unknown parameter {key!r}",
                                 hint="known: " + ", ".join(FIELD_PARAMS))
            value = _value(_of_field("field_params", name), key, raw, FIELD_PARAMS[key])
            if key in (MAX_LENGTH, MAX_CAPACITY) and key not in applicable(f):
                raise UsageError(f"{_of_field('field_params', name)}: a {f.type_name} field has no {key}")
            if value != getattr(f, key):
                notes.append(f"field {name!r}: {key} {getattr(f, key)!r} -> {value!r} (--field-params)")
            changes[key] = value
        fields[name] = dataclasses.replace(f, inferred=tuple(a for a in f.inferred if a not in changes), **changes)
    for f in fields.values():
        for attr in f.inferred:
            notes.append(f"field {f.name!r}: {attr} {getattr(f, attr)} was measured from the backup's data (the "
                         f"source did not report it); --field-params {f.name}:{attr}=N sets another")
    changes = {}
    extra = dict(spec.extra)
    properties = dict(spec.properties)
    for key, raw in collection_params.items():
        if key.startswith(PROPERTY_PREFIX):
            notes.append(_property(properties, key[len(PROPERTY_PREFIX):], raw))
            continue
        if key not in COLLECTION_PARAMS:
            raise UsageError(f"{param('collection_params')}: unknown parameter {key!r}",
                             hint="known: " + ", ".join(COLLECTION_PARAMS) + ", properties.KEY")
        value = _value(param("collection_params"), key, raw, COLLECTION_PARAMS[key])
        if key == "consistency_level":
            level = next((lv for lv in CONSISTENCY_LEVELS if lv.lower() == value.lower()), None)
            if level is None:
                raise UsageError(f"{param('collection_params')}: consistency_level {value!r} is not one of "
                                 + ", ".join(CONSISTENCY_LEVELS))
            value = level
        if key == "num_partitions":
            if not any(f.is_partition_key for f in fields.values()):
                raise UsageError(f"{param('collection_params')}: num_partitions applies to collections with a "
                                 "partition key")
            old = extra.get(key)
            extra[key] = value
        else:
            old = getattr(spec, key)
            changes[key] = value
        if value != old:
            notes.append(f"collection {key} {old!r} -> {value!r} (--collection-params)")
    if properties != spec.properties:
        changes["properties"] = properties
    return dataclasses.replace(spec, fields=tuple(fields.values()), extra=extra, **changes), notes


def _property(properties: dict[str, Any], key: str, raw: Any) -> str:
    """Set (or, given an empty value, leave out) collection property ``key`` in ``properties``; the note saying so.
    Values are strings, as servers report them (true/false for a JSON boolean)."""
    option = either(f"collection_params[{PROPERTY_PREFIX + key!r}]", f"--collection-params {PROPERTY_PREFIX}{key}")
    if not key or key == LEASE_KEY:
        raise UsageError(f"{option}: not a property a restore can set", hint="properties.KEY=VALUE, e.g. "
                         "properties.collection.ttl.seconds=86400")
    value = None if raw is None or raw == "" else str(raw).lower() if isinstance(raw, bool) else str(raw)
    old = properties.get(key)
    if value is None:
        if old is None:
            raise UsageError(f"{option}{either(' = None', '=')} leaves out a property the backup does not have",
                             hint="its properties: " + (", ".join(properties) or "none"))
        del properties[key]
        return f"collection property {key!r} {old!r} -> left out (--collection-params)"
    properties[key] = value
    return f"collection property {key!r} {'(none)' if old is None else repr(old)} -> {value!r} (--collection-params)"


@dataclass(frozen=True)
class Plan:
    """A restore decided before any data moves: how the backup maps onto the target's engine (the mapping, whose
    spec the sink creates), what the sink is asked to do, and the notes of the decisions. A value: built once by
    :func:`plan_restore` from every option, shown by ``--dry-run``, executed by :func:`restore_backup`."""

    mapping: Mapping
    sink: RestorePlan
    notes: tuple[str, ...] = ()
    writers: int = 1  # insert requests in flight at once
    duplicates: DuplicatePlan | None = None  # keys held by more than one partition (ops/duplicates.py)
    import_format: str | None = None  # through the server's import: "files" or "binlog" (check_bulk decided)

    @property
    def spec(self) -> CollectionSpec:
        return self.mapping.spec

    @property
    def target(self) -> str:
        return self.sink.target


def plan_restore(manifest: Manifest, sink: Sink, options: RestoreOptions | None = None) -> Plan:
    """Decide names and options, and check the target can take the collection; writes nothing.

    Across engines (a Milvus backup into Qdrant or back) every field that cannot be mapped is refused here,
    all of them in one Unsupported, before anything is created."""
    options = options or RestoreOptions()
    mapping = restore_mapping(manifest, sink, options)
    if mapping.problems:
        raise mapping.error()
    name = options.target or mapping.spec.name
    _check_name(sink, name, options)
    return _with_duplicates(_plan(mapping, sink, name, sink.has_collection(name), options), manifest, sink, options)


def _check_name(sink: Sink, name: str, options: RestoreOptions) -> None:
    problem = sink.name_problem(name)
    if problem is None:
        return
    if options.target is not None:
        raise UsageError(f"{param('target', name, flag='--as', quoted=True)} is not a valid collection name on "
                         f"{sink.display}: {problem}")
    raise TargetRejected(f"the backup's collection name {name!r} is not valid on {sink.display}: {problem}",
                         hint=f"restore {param('target', 'NEW_NAME', flag='--as')}")


def _plan(mapping: Mapping, sink: Sink, name: str, exists: bool, options: RestoreOptions) -> Plan:
    """The plan for a mappable backup whose target's existence is known (shared by plan_restore and
    preview_restore, so neither asks the target twice)."""
    spec, index_notes = plan_indexes(mapping.spec, mapping.target_family, options.index_types, options.index_params)
    if exists and not options.drop_existing:
        raise AlreadyExists(_exists(sink, name), hint=f"restore {param('target', 'NEW_NAME', flag='--as')}, or "
                            f"{param('drop_existing', True)} to replace it")
    spec, notes = apply_overrides(spec, options.field_params, options.collection_params)
    notes += index_notes
    mapping = dataclasses.replace(mapping, spec=spec)
    if spec.primary.auto_id and options.new_ids:
        notes.append(f"primary key {spec.primary.name!r} is auto-id: the server assigned new ids (--new-ids)")
    sink_plan = RestorePlan(
        target=name,
        staging=restore_staging(name, secrets.token_hex(4)) if exists or sink.renames else name,
        replace=exists,
        keep_ids=not options.new_ids,
        index_params=dict(options.index_params),
        index_types={i.field_name: i.index_type for i in spec.indexes if i.field_name in options.index_types},
        index_fallback=options.index_fallback,
        aliases=spec.aliases if name == spec.name else (),
        shards=options.shards,
        replication_factor=options.replication_factor,
    )
    checked = sink.check(spec, sink_plan)
    plan = Plan(mapping, sink_plan, notes=(*mapping.notes, *notes, *checked),
                writers=min(options.parallel, sink.max_writers))
    if options.server_import:
        chosen = check_bulk(sink, plan, options.import_format)
        said = "its own binlogs" if chosen == "binlog" else "numpy or row-JSON files"
        plan = dataclasses.replace(plan, import_format=chosen,
                                   notes=(*plan.notes, f"the server imports the rows from {said} ({chosen})"))
    return plan


def _with_duplicates(plan: Plan, manifest: Manifest, sink: Sink, options: RestoreOptions) -> Plan:
    """``plan`` with what it does about keys held by more than one partition; Unsupported where the target cannot
    hold them as asked (before anything is created)."""
    found = plan_duplicates(manifest, sink.key_copies(plan.spec), Choice.parse(options.duplicate_keys), sink.display,
                            plan.mapping.partition_names)
    return dataclasses.replace(plan, duplicates=found, notes=(*plan.notes, *found.notes))


def _exists(sink: Sink, name: str) -> str:
    """Why the target is in the way: it exists, and (Qdrant fills a new target under its own name) a restore that
    holds a lease on it may still be filling it (one that died has had it dropped before the plan)."""
    what = f"collection {name!r} already exists in {sink.display}"
    try:
        lease = parse_lease(sink.read_lease(name))
    except (UnreadableLease, VecbackupError):
        return what
    if lease is None:
        return what
    if lease.kind == "restore" and lease.state == "filling" and lease.target == name:
        return (f"{what}, half-filled: a restore into it holds its lease ({lease.owner.describe()}"
                + (f", renewed until {iso_z(lease.expires, 'seconds')}" if lease.expires is not None else "")
                + "); if that restore died on another machine, a re-run drops it once the lease has run out")
    return f"{what} (it carries the lease of a {lease.kind} into {lease.target!r}: `vecbackup gc` on it says more)"


def own_lease(sink: Sink, manifest: Manifest, plan: Plan, lease: HeldLease | None) -> HeldLease:
    """The lease a restore keeps on its staging collection: ``lease`` (a drill's, held beyond the restore), or a
    new one of this restore."""
    if lease is not None:
        return lease
    return HeldLease(sink, new_lease("restore", plan.target, manifest.collection.name, manifest.backup_id))


def check_bulk(sink: Sink, plan: Plan, import_format: str = "auto") -> str:
    """What this restore stages for ``sink``'s own import (restore --bulk-import-via, --bulk-import-format):
    "files" (numpy or row JSON) or "binlog" (the server's own binlogs); "auto" is the binlogs where the server takes
    them for this collection, else files. Unsupported when the format asked for cannot carry it."""
    why = {name: _bulk_refusal(sink, plan, name) for name in ("files", "binlog")}
    if import_format == "auto":
        chosen = "binlog" if why["binlog"] is None else "files"
        if why[chosen] is None:
            return chosen
        raise Unsupported(f"cannot restore through the import of {sink.display}: {why['files']}",
                          hint=f"restore without {either('bulk_import', '--bulk-import-via')}")
    if why[import_format] is None:
        return import_format
    what = "binlog import" if import_format == "binlog" else "import"
    other = "files" if import_format == "binlog" else "binlog"
    alternative = (f", or with {either(f'BulkImport(format={other!r})', f'--bulk-import-format {other}')}"
                   if why[other] is None else "")
    raise Unsupported(f"cannot restore through the {what} of {sink.display}: {why[import_format]}",
                      hint=f"restore without {either('bulk_import', '--bulk-import-via')}{alternative}")


def _bulk_refusal(sink: Sink, plan: Plan, import_format: str) -> str | None:
    if import_format == "binlog":
        if not isinstance(sink, BinlogImportSink):
            return "it has no import of binlogs"
        return sink.binlog_refusal(plan.spec, plan.sink)
    if not isinstance(sink, ImportSink):
        return "it has no import of files"
    return sink.import_refusal(plan.spec, plan.sink)


def restore_backup(
    store: BlobStore, manifest: Manifest, sink: Sink, plan: Plan, *, progress: Progress | None = None,
    lease: HeldLease | None = None,
) -> RestoreResult:
    """Create the staging collection, insert every chunk (each checked against its SHA-256 first),
    build indexes, load, and only then give it the target name. On any failure the staging
    collection is dropped and an existing target is untouched.

    ``progress`` counts the rows written, then hears each phase that follows (Progress.phase) and its end.

    The staging collection carries a lease from its creation, renewed while the restore runs, marked complete
    once every row is in and counted, and cleared at the end: a restore that dies (SIGKILL) leaves a collection
    whose lease says so (ops/leftovers.py). A drill passes its own ``lease``, which it keeps beyond the restore."""
    progress = with_phases(progress)
    spec, to_do = plan.spec, plan.sink
    notes = list(plan.notes)
    t0 = time.monotonic()
    held = own_lease(sink, manifest, plan, lease)
    notes.extend(sink.create(spec, to_do, lease=held.value(to_do.staging)))
    held.start()
    try:
        progress.start(f"restore {plan.target}", manifest.rows)
        written = 0
        for i, wave in enumerate(waves(manifest.objects, plan.duplicates or DuplicatePlan())):
            if i and plan.duplicates is not None and plan.duplicates.settle:
                sink.settle(to_do)  # the copies written so far stay beside those written next
            written += insert_objects(store, wave, plan, sink.write, progress)
        progress.finish()
        if written != manifest.rows:
            raise VecbackupError(f"inserted {written} rows, the backup holds {manifest.rows}")
        if isinstance(sink, StagingSink):  # counted before it takes the target's place
            count = publish(sink, spec, to_do, manifest, plan, held, progress, notes)
        else:
            held.complete()
            notes.extend(sink.finish(spec, to_do, progress.phase))
    except BaseException:
        held.stop()
        sink.abort(to_do)
        raise
    if lease is None:
        cleared = held.release()
        if cleared is not None:
            notes.append(cleared)
    if not isinstance(sink, StagingSink):
        progress.phase(COUNTING)
        count = _counted(sink, plan.target, manifest, plan)
    progress.finish()
    notes.extend(unrecorded_note(manifest, plan.duplicates, count))
    return RestoreResult(backup_id=manifest.backup_id, source_collection=spec.name, collection=plan.target,
                         rows=count, seconds=time.monotonic() - t0, notes=notes)


def _counted(sink: Sink, name: str, manifest: Manifest, plan: Plan) -> int:
    return check_restored(sink, plan.spec, name, manifest, plan.duplicates)


def publish(sink: StagingSink, spec: CollectionSpec, to_do: RestorePlan, manifest: Manifest, plan: Plan,
            held: HeldLease, progress: Progress, notes: list[str]) -> int:
    """The end of every restore into a staging collection, once its rows are in: the sink prepares it (flush, index,
    load), its rows are counted, and it takes the target's name; the rows counted. Notes are added to ``notes``."""
    notes.extend(sink.prepare(spec, to_do, progress.phase))
    progress.phase(COUNTING)
    count = _counted(sink, to_do.staging, manifest, plan)
    held.complete()
    progress.phase(RENAMING)
    with held.moving(plan.target):
        notes.extend(sink.publish(spec, to_do))
    return count


def insert_objects(store: BlobStore, objects: Sequence[DataObject], plan: Plan, write: Writer, progress: Progress,
                   ) -> int:
    """Insert the rows of ``objects`` with ``write`` (a sink's), ``plan.writers`` requests in flight (fetching and
    decoding run ahead of them on their own threads); memory is about (writers + read-ahead) chunks. The first
    failure stops the rest; requests already sent finish before it is raised, so the caller's abort drops a
    collection nothing writes to any more."""
    writers = max(1, plan.writers)
    written = 0
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="vecbackup-insert") as pool:
        inflight: deque[tuple[DataObject, Future[int]]] = deque()

        def drain(limit: int) -> None:
            nonlocal written
            while len(inflight) > limit:
                obj, fut = inflight.popleft()
                written += fut.result()
                progress.advance(obj.rows, obj.size)

        try:
            for obj, chunk in iter_chunks(store, objects, read_ahead=in_flight(store)):
                inflight.append((obj, pool.submit(write, plan.spec, plan.sink, transform_chunk(plan.mapping, chunk))))
                drain(writers - 1)
            drain(0)
        except BaseException:
            for _, fut in inflight:
                fut.cancel()
            raise
    return written


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
    target_display: str = ""  # the target server, as it may be shown
    #: the indexes the restore builds (type, metric, parameters: recorded, or --index-type / --index-params), once
    #: the plan is made
    indexes: list[Index] = field(default_factory=list)

    def index_lines(self) -> list[str]:
        """One line per index the restore builds: ``index on 'v': IVF_FLAT (COSINE) nlist=64``."""
        return [f"index on {i.field_name!r}: {describe(i)}" for i in self.indexes]

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.exit_code == 0, "dry_run": True, "backup_id": self.backup_id,
                "source_collection": self.source_collection, "collection": self.collection,
                "target_exists": self.target_exists, **self.mapping.to_dict(),
                "indexes": [i.to_dict() for i in self.indexes], "problems": self.problems,
                "notes": self.notes, "exit_code": self.exit_code}

    def raise_for_problems(self) -> None:
        """The error the real restore would raise, with the exit code it would have (``restore --dry-run`` exits
        with it): Unsupported (9) for a field that cannot be mapped, AlreadyExists (5), TargetRejected; nothing
        for a restorable plan."""
        if self.exit_code == Unsupported.exit_code:
            raise self.mapping.error() if self.mapping.problems else Unsupported(self.problems[-1])
        if self.exit_code == AlreadyExists.exit_code:
            raise AlreadyExists(self.problems[-1])
        if self.exit_code == TargetRejected.exit_code:
            raise TargetRejected(self.problems[-1])


def preview_restore(manifest: Manifest, sink: Sink, options: RestoreOptions | None = None, *,
                    leftovers: LeftoverResult | None = None) -> RestorePreview:
    """Everything plan_restore checks, collected instead of raised; reads the target, writes nothing.
    ``leftovers``: what the restore would drop before it starts (a dry run of it), said in the notes; a target it
    would drop does not count as existing."""
    options = options or RestoreOptions()
    mapping = restore_mapping(manifest, sink, options)
    name = options.target or mapping.spec.name
    _check_name(sink, name, options)
    gone = leftovers.dropped if leftovers is not None else []
    exists = sink.has_collection(name) and name not in gone
    preview = RestorePreview(backup_id=manifest.backup_id, source_collection=manifest.collection.name,
                             collection=name, target_exists=exists, mapping=mapping,
                             problems=[str(p) for p in mapping.problems], target_display=sink.display,
                             notes=leftovers.notes() if leftovers is not None else [])
    if mapping.problems:
        preview.exit_code = Unsupported.exit_code
        return preview
    if exists and not options.drop_existing:
        preview.problems.append(f"{_exists(sink, name)} (--drop-existing replaces it)")
        preview.exit_code = AlreadyExists.exit_code
        return preview
    try:
        plan = _with_duplicates(_plan(mapping, sink, name, exists, options), manifest, sink, options)
    except (Unsupported, TargetRejected) as e:
        preview.problems.append(str(e))
        preview.exit_code = e.exit_code
        return preview
    preview.notes.extend(plan.notes)
    preview.indexes = list(plan.spec.indexes)
    return preview
