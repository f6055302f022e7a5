"""Restore through the server's own import (``restore --bulk-import-via URL``): the backup's chunks are written as
import files where the server reads them (the bucket of its own object store), imported by the server's tasks into
the staging collection, and deleted again; then the staging collection is indexed, loaded, counted and renamed as
in any Milvus restore (ops/restore.py). Which collections can go this way and how the files look:
engines/milvus/bulk.py."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vecbackup.engines.base import BinlogImportSink, ImportSink, Sink
from vecbackup.engines.milvus.binlog_import import INSERT_DIR, BinlogGroup
from vecbackup.engines.milvus.bulk import DEFAULT_FILE_BYTES, PREFIX, Group, import_path, task_dir, task_keys
from vecbackup.errors import RowCountMismatch, TargetRejected, VecbackupError
from vecbackup.format.binlog_write import hybrid_ts
from vecbackup.format.manifest import Manifest
from vecbackup.ops.fetch import iter_chunks
from vecbackup.ops.mapping import transform_chunk
from vecbackup.ops.progress import Progress, with_phases
from vecbackup.ops.restore import Plan, RestoreResult, check_bulk, own_lease, publish
from vecbackup.stores.base import BlobStore, in_flight
from vecbackup.urls import StoreURL
from vecbackup.words import either, param, plural

#: import tasks started and not yet finished while the next group is encoded: they cost no memory here, only
#: staged files in the bucket, and let a cluster's data nodes import several at once (2.3 runs one at a time per
#: data node)
PENDING = 4
#: seconds between two looks at a running task
POLL = 0.25
#: the phase of a restore through the import after the last rows are handed over (Progress.phase)
IMPORTING = "importing rows"
#: seconds a task may take from its start (2.3 itself stops a task that runs 900 s; one may wait before it runs)
TASK_SECONDS = 3600.0


@dataclass(frozen=True)
class Staging:
    """Where the import files go: a store in the bucket (or, for a server with local storage, the folder) the
    server reads, opened without encryption (the server must read the files), and its URL (import paths are
    relative to the bucket)."""

    store: BlobStore
    url: StoreURL
    file_bytes: int = DEFAULT_FILE_BYTES  # raw bytes of one task's files (--bulk-import-mb)

    def path(self, key: str) -> str:
        return import_path(self.url.scheme, self.url.location, self.url.prefix, key)


def _where() -> str:
    """What a failed task most likely means (worded for the API or the command line, as the call is)."""
    return (f"{either('BulkImport.via', '--bulk-import-via')} must be the bucket (or, for local storage, the "
            "folder) this Milvus stores its data in, writable with the credentials given")


@dataclass
class _Task:
    id: int
    rows: int
    keys: list[str]
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Importer:
    """The tasks of one restore: started group by group, at most PENDING unfinished, each checked for its row
    count when done and its files deleted."""

    sink: ImportSink
    plan: Plan
    staging: Staging
    pending: deque[_Task] = field(default_factory=deque)
    staged: list[str] = field(default_factory=list)  # every key written and not deleted yet
    started: int = 0
    imported: int = 0

    def start(self, group: Group | BinlogGroup) -> None:
        files = group.encode(self.staging.file_bytes)
        keys = task_keys(self.plan.sink.staging, self.started, files)
        for name, data in files.items():
            self.staged.append(keys[name])
            self.staging.store.put(keys[name], data)
        del files
        if isinstance(group, BinlogGroup):
            assert isinstance(self.sink, BinlogImportSink)
            insert_dir = self.staging.path(task_dir(self.plan.sink.staging, self.started) + INSERT_DIR + "/")
            task = self.sink.start_binlog_import(self.plan.sink, group.partition, insert_dir)
        else:
            task = self.sink.start_import(self.plan.sink, group.partition,
                                          [self.staging.path(k) for k in keys.values()])
        self.started += 1
        self.pending.append(_Task(task, group.rows, list(keys.values())))
        while len(self.pending) > PENDING - 1:
            self.finish_one()

    def finish_one(self, report: Callable[[int], None] | None = None) -> None:
        """Wait for the oldest pending task, telling ``report`` the rows imported so far (finished tasks and this
        one) at each look."""
        task = self.pending.popleft()
        while True:
            state = self.sink.import_state(task.id)
            if report is not None:
                report(self.imported + state.rows)
            if not state.done and state.failure is None and time.monotonic() - task.started > TASK_SECONDS:
                raise TargetRejected(f"Milvus at {self.sink.display}: import task {task.id} has not finished "
                                     f"{TASK_SECONDS / 60:.0f} minutes after it was started "
                                     f"({plural(state.rows, 'row')} in)",
                                     hint="check the cluster's data nodes; a smaller "
                                          f"{param('file_mb', flag='--bulk-import-mb')} makes tasks smaller")
            if state.failure is not None:
                raise TargetRejected(f"Milvus at {self.sink.display}: import task {task.id} failed: {state.failure}",
                                     hint=_where())
            if state.done:
                break
            time.sleep(POLL)
        if state.rows == 0 and task.rows:  # the binlog import finds no files where it cannot look, and says done
            raise TargetRejected(f"Milvus at {self.sink.display}: import task {task.id} imported no rows of "
                                 f"{task.rows}: the server found none of its files", hint=_where())
        if state.rows != task.rows:
            raise RowCountMismatch(f"Milvus at {self.sink.display}: import task {task.id} imported {state.rows} "
                                   f"rows of {task.rows}", rows=state.rows, expected=task.rows)
        self.imported += state.rows
        self.delete(task.keys)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.staging.store.delete(key)
            self.staged.remove(key)

    def cleanup(self) -> list[str]:
        """Delete what is still staged (after a failure); the keys that could not be."""
        left = []
        for key in list(self.staged):
            try:
                self.delete([key])
            except Exception:  # the failure that got us here is the one to report
                left.append(key)
        return left


def remove_staged(staging: Staging, collections: list[str]) -> list[str]:
    """Delete the files restores that died staged for ``collections`` (their staging collections, which the restore
    that runs now found dead and dropped: ``vecbackup-import/<staging collection>/...``); one note per collection
    that had any. Only those: another restore's files, live or on another server, are never touched."""
    notes = []
    for name in collections:
        keys = [o.key for o in staging.store.list(f"{PREFIX}/{name}/")]
        for key in keys:
            staging.store.delete(key)
        if keys:
            notes.append(f"deleted {plural(len(keys), 'import file')} the restore that left {name!r} had staged in "
                         f"{staging.store.display}")
    return notes


def _groups(sink: Sink, plan: Plan, import_format: str) -> Callable[[str], Group | BinlogGroup]:
    """What makes a new group of a partition's chunks for one task: of import files, or of binlogs of one segment
    (the staging collection's field ids read once, every row written at the restore's start time)."""
    if import_format != "binlog":
        return lambda partition: Group(plan.spec, partition, plan.sink.keep_ids)
    assert isinstance(sink, BinlogImportSink)
    field_ids = sink.binlog_field_ids(plan.sink.staging)
    ts = hybrid_ts(int(time.time() * 1000))
    made = itertools.count(1)  # each group its own segment id and range of row ids

    def new_group(partition: str) -> BinlogGroup:
        n = next(made)
        return BinlogGroup(plan.spec, partition, field_ids, segment_id=n, first_row_id=n << 32, ts=ts)

    return new_group


def bulk_restore(store: BlobStore, manifest: Manifest, sink: Sink, plan: Plan, staging: Staging, *,
                 progress: Progress | None = None) -> RestoreResult:
    """Create the staging collection, import the backup's rows through the server's tasks group by group (each
    group's files staged, imported, row-counted and deleted), then flush, index, load, count and rename as any
    Milvus restore. On failure the staging collection and the staged files are deleted and an existing target is
    untouched. Memory: about two groups of ``staging.file_bytes`` (one encoded, one being filled) and the
    chunks read ahead."""
    import_format = check_bulk(sink, plan, plan.import_format or "auto")
    assert isinstance(sink, ImportSink)
    progress = with_phases(progress)
    spec, to_do = plan.spec, plan.sink
    notes = list(plan.notes)
    t0 = time.monotonic()
    held = own_lease(sink, manifest, plan, None)  # as in restore_backup: a dead restore's collection says so
    notes.extend(sink.create(spec, to_do, lease=held.value(to_do.staging)))
    held.start()
    importer = _Importer(sink, plan, staging)
    try:
        new_group = _groups(sink, plan, import_format)
        progress.start(f"restore {plan.target} (import)", manifest.rows)
        open_groups: dict[str, Group | BinlogGroup] = {}
        for obj, chunk in iter_chunks(store, manifest.objects, read_ahead=in_flight(store)):
            chunk = transform_chunk(plan.mapping, chunk)
            group = open_groups.get(chunk.partition)
            if group is None:
                group = open_groups[chunk.partition] = new_group(chunk.partition)
            if not group.offer(chunk, staging.file_bytes):
                importer.start(group)
                group = open_groups[chunk.partition] = new_group(chunk.partition)
                group.offer(chunk, staging.file_bytes)
            if sum(g.size for g in open_groups.values()) > staging.file_bytes:  # many partitions: one group's worth
                biggest = max(open_groups.values(), key=lambda g: g.size)
                importer.start(open_groups.pop(biggest.partition))
            progress.advance(obj.rows, obj.size)
        for group in open_groups.values():
            importer.start(group)
        open_groups.clear()
        while importer.pending:  # the rows are handed over: the server's last tasks are what is waited on
            importer.finish_one(lambda rows: progress.phase(IMPORTING, rows, manifest.rows))
        if importer.imported != manifest.rows:
            raise RowCountMismatch(f"imported {plural(importer.imported, 'row')}, the backup holds {manifest.rows}",
                                   rows=importer.imported, expected=manifest.rows)
        count = publish(sink, spec, to_do, manifest, plan, held, progress, notes)
        progress.finish()
    except BaseException as e:
        held.stop()
        sink.abort(to_do)
        left = importer.cleanup()
        if left and isinstance(e, VecbackupError):  # said with the error, the one line the user reads
            e.message += (f"; {plural(len(left), 'staged import file')} could not be deleted from "
                          f"{staging.url.display}: "
                          f"delete {left[0].rsplit('/', 2)[0]}/")
        raise
    cleared = held.release()
    if cleared is not None:
        notes.append(cleared)
    return RestoreResult(backup_id=manifest.backup_id, source_collection=spec.name, collection=plan.target,
                         rows=count, seconds=time.monotonic() - t0, notes=notes, import_tasks=importer.started,
                         import_format=import_format)
