"""Back up one collection: stream chunks, store them content-addressed, commit the manifest last."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from vecbackup import limits
from vecbackup.errors import MissingData, UsageError
from vecbackup.format import layout
from vecbackup.format.codec import Chunk, encode_chunk
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.format.shard import Shard, ShardRecord, record_key
from vecbackup.ops.commit import CommitResult
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.ops.streams import merged
from vecbackup.schema import Field
from vecbackup.sources.base import Source
from vecbackup.stores.base import BlobStore, ObjectNotFound, in_flight
from vecbackup.times import now_z
from vecbackup.version import __version__

#: chunks encoded and uploaded while the next one is read, unless the store asks for more (its
#: ``concurrency``); memory stays bounded at about (in flight + 2) batches
PIPELINE = 2


@dataclass
class BackupResult:
    backup_id: str
    collection: str
    rows: int
    objects: int
    bytes_stored: int  # total size of the backup's objects
    bytes_uploaded: int  # new bytes written (objects already in the store are reused)
    seconds: float
    manifest_key: str  # or, for a shard, its shard record's key
    notes: list[str] = field(default_factory=list)
    shard: Shard | None = None  # a shard of a sharded backup: backup_id is "" until the run is committed
    run: str | None = None
    commit: CommitResult | None = None  # the commit tried after this shard (backup --commit)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "backup_id": self.backup_id, "collection": self.collection, "rows": self.rows,
            "objects": self.objects, "bytes_stored": self.bytes_stored, "bytes_uploaded": self.bytes_uploaded,
            "seconds": round(self.seconds, 3), "manifest": self.manifest_key, "notes": self.notes,
        }
        if self.shard is not None:
            d.update(backup_id=self.commit.backup_id if self.commit and self.commit.committed else None,
                     manifest=None, shard=self.shard.label, run=self.run, record=self.manifest_key)
            if self.commit is not None:
                d["commit"] = self.commit.to_dict()
        return d


def _store_chunk(store: BlobStore, columns: tuple[Field, ...], chunk: Chunk, level: int) -> tuple[DataObject, int]:
    data = encode_chunk(columns, chunk, level=level)
    sha = hashlib.sha256(data).hexdigest()
    key = layout.data_key(sha)
    try:
        uploaded = 0 if store.stat(key).size == len(data) else -1
    except ObjectNotFound:
        uploaded = -1
    if uploaded < 0:
        store.put(key, data)
        uploaded = len(data)
    return DataObject(key=key, partition=chunk.partition, rows=chunk.num_rows, size=len(data), sha256=sha), uploaded


def backup_collection(
    source: Source,
    store: BlobStore,
    collection: str,
    *,
    batch_size: int = 5000,
    compression_level: int = 3,
    progress: Progress | None = None,
    shard: Shard | None = None,
    run: str | None = None,
    parallel: int = 1,
) -> BackupResult:
    """Back up ``collection``. Data objects are written first; the manifest last, with a conditional
    create, is the commit point: until it exists the backup does not exist.

    With ``shard`` (and ``run``): only the rows the shard owns, and a shard record instead of the manifest; the
    backup exists once ``commit`` has joined every shard of the run (ops/commit.py).

    ``parallel`` K > 1 reads K streams at once (the rows of shard 0/K, 1/K, ...; capped by the source's
    ``max_readers``); the manifest lists each partition's objects stream by stream, so the same rows give the same
    backup whatever order the streams finish in."""
    if (shard is None) != (run is None):
        raise UsageError("a shard of a sharded backup needs both --shard and --run")
    if parallel > 1 and shard is not None:
        raise UsageError("--parallel and --shard do not combine", hint="run more shards (--shard I/N) instead")
    progress = progress or NullProgress()
    t0 = time.monotonic()
    started_at = now_z()
    backup_id = run if run is not None else layout.new_backup_id()
    described = source.describe(collection)
    spec = described.spec
    notes = list(described.notes)
    columns = spec.columns
    meter = limits.LimitMeter(limits.unset(spec))  # what the source did not report, measured from the rows
    partitions = source.read_partitions(spec)
    expected = source.count(spec)  # whole collection: Milvus Lite ignores partitions in count(*)
    if shard is None:
        progress.start(f"backup {collection}", expected)
    else:
        progress.start(f"backup {collection} shard {shard.label}", -(-expected // shard.count))

    streams = min(parallel, source.max_readers)
    if streams < parallel:
        notes.append(f"read {streams} stream(s) at once, not {parallel}: the most {source.display} serves")

    slots: list[list[DataObject]] = []  # per partition, then per stream: the manifest's order
    partition_rows: dict[str, int] = {p: 0 for p in partitions}
    uploaded = 0
    width = in_flight(store, PIPELINE) + streams - 1
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="vecbackup-encode") as pool:
        inflight: deque[tuple[int, Future[tuple[DataObject, int]]]] = deque()

        def drain(limit: int) -> None:
            nonlocal uploaded
            while len(inflight) > limit:
                slot, fut = inflight.popleft()
                obj, n = fut.result()
                slots[slot].append(obj)
                uploaded += n
                partition_rows[obj.partition] += obj.rows
                progress.advance(obj.rows, obj.size)

        try:
            for p in partitions:
                first = len(slots)
                slots.extend([] for _ in range(streams))
                reads = [source.read(spec, p, batch_size, shard)] if streams == 1 else \
                    [source.read(spec, p, batch_size, Shard(i, streams)) for i in range(streams)]
                for i, chunk in merged(reads, depth=streams):
                    meter.add(spec, chunk)
                    inflight.append((first + i, pool.submit(_store_chunk, store, columns, chunk, compression_level)))
                    drain(width)
            drain(0)
        except BaseException:
            for _, fut in inflight:
                fut.cancel()
            raise
    progress.finish()
    objects = [obj for slot in slots for obj in slot]

    info = source.info()
    notes.extend(n for n in source.read_notes(spec) if n not in notes)
    if meter.wanted and shard is None:  # a shard records what it measured; commit infers from every shard's
        spec, inferred = limits.with_inferred(spec, meter.largest, info.engine)
        notes.extend(inferred)
    read = sum(partition_rows.values())
    if read != expected and shard is None:
        notes.append(f"counted {expected} rows before the backup and read {read}: the collection changed "
                     "while it was backed up; the backup holds the rows read")
    # read-after-write: every object the manifest will reference must be in the store
    for obj in objects:
        try:
            if store.stat(obj.key).size != obj.size:
                raise MissingData(f"{obj.key} in {store.display} changed size while backing up; not committed")
        except ObjectNotFound:
            raise MissingData(f"{obj.key} vanished from {store.display} before commit; not committed") from None

    manifest = Manifest(
        backup_id=backup_id,
        collection=spec,
        source=info,
        objects=tuple(objects),
        partition_rows={p or "": n for p, n in partition_rows.items()},
        started_at=started_at,
        completed_at=now_z(),
        tool_version=__version__,
        options={"batch_size": batch_size, "compression_level": compression_level},
        notes=tuple(notes),
    )
    if shard is not None and run is not None:
        key = record_key(collection, run, shard)
        store.put(key, ShardRecord(run, shard, manifest, dict(meter.largest)).to_json())  # a re-run replaces it
    else:
        key = layout.manifest_key(collection, backup_id)
        store.put(key, manifest.to_json(), if_absent=True)
    return BackupResult(
        backup_id="" if shard is not None else backup_id, collection=collection, rows=manifest.rows,
        objects=len(objects),
        bytes_stored=manifest.size, bytes_uploaded=uploaded, seconds=time.monotonic() - t0,
        manifest_key=key, notes=notes, shard=shard, run=run,
    )
