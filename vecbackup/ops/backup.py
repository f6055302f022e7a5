"""Back up one collection: stream chunks, store them content-addressed, commit the manifest last."""

from __future__ import annotations

import dataclasses
import random
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import numpy as np

from vecbackup.engines.base import Source
from vecbackup.errors import CorruptData, MissingData, UsageError
from vecbackup.format import layout
from vecbackup.format.codec import DEFAULT_LEVEL, Chunk, concat_chunks, take_rows
from vecbackup.format.digests import encode_digests, encode_with_digests, row_digests
from vecbackup.format.duplicates import KeyIndex
from vecbackup.format.manifest import DataObject, Incremental, Manifest, merge_objects
from vecbackup.format.shard import Shard, ShardRecord, new_attempt, parse_record_key
from vecbackup.limits import LimitMeter, unset, with_inferred
from vecbackup.ops import catalog
from vecbackup.ops.commit import CommitResult, check_open, record_keys
from vecbackup.ops.duplicates import duplicate_note, found_duplicates, key_index
from vecbackup.ops.fetch import fetch_object
from vecbackup.ops.incremental import PartitionRows, find_base, load_partition
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.ops.streams import merged
from vecbackup.schema import CollectionSpec, Field
from vecbackup.stores.base import BlobStore, ObjectNotFound, PermissionDenied, content_hash, in_flight
from vecbackup.stores.objectlock import Retained, check_lock_kept, lock_option, retain_all, retention_end
from vecbackup.times import now_z
from vecbackup.version import __version__
from vecbackup.words import either, param, plural

#: chunks encoded and uploaded while the next one is read, unless the store asks for more (its
#: ``concurrency``); memory stays bounded at about (in flight + 2) batches
PIPELINE = 2
#: the share of the objects a backup reuses that it reads back and checks first (at least one): a damaged object
#: is found within about 1 / CHECK_REUSED backups that reuse it (docs/OPERATIONS.md, "Damaged objects")
CHECK_REUSED = 0.02


@dataclass
class BackupResult:
    backup_id: str
    collection: str
    rows: int
    objects: int
    bytes_stored: int  # the size of the data objects the backup references, new or already in the store
    #: what this backup wrote: its new data objects and the row digests beside each (docs/OPERATIONS.md,
    #: "Incremental backups"), so a first backup uploads a little more than bytes_stored; 0 for unchanged data
    bytes_uploaded: int
    seconds: float
    manifest_key: str  # or, for a shard, its shard record's key
    notes: list[str] = field(default_factory=list)
    shard: Shard | None = None  # a shard of a sharded backup: backup_id is "" until the run is committed
    run: str | None = None
    commit: CommitResult | None = None  # the commit tried after this shard (backup --commit)
    objects_new: int = 0  # data objects uploaded; the others were in the store already
    rows_reused: int = 0  # rows found in the base backup and not uploaded again
    base: str | None = None  # the backup whose rows it reused
    objects_checked: int = 0  # reused objects read back and checked before the commit
    objects_repaired: list[str] = field(default_factory=list)  # damaged objects rewritten (backup --full)
    duplicate_keys: int = 0  # keys held by more than one partition (ops/duplicates.py)
    bytes_read: int | None = None  # bytes read from the server's storage (a segment backup; None: the query path)
    #: in a store with object lock: the objects it reuses whose lock was read, and extended to its own (retain_until)
    retained: Retained | None = None

    @property
    def objects_reused(self) -> int:
        return self.objects - self.objects_new

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "backup_id": self.backup_id, "collection": self.collection, "rows": self.rows,
            "objects": self.objects, "bytes_stored": self.bytes_stored, "bytes_uploaded": self.bytes_uploaded,
            "objects_new": self.objects_new, "objects_reused": self.objects_reused,
            "rows_reused": self.rows_reused, "base": self.base, "objects_checked": self.objects_checked,
            "objects_repaired": self.objects_repaired, "duplicate_keys": self.duplicate_keys,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3), "manifest": self.manifest_key, "notes": self.notes,
            **(self.retained or Retained()).to_dict(),
        }
        if self.shard is not None:
            d.update(backup_id=self.commit.backup_id if self.commit and self.commit.committed else None,
                     manifest=None, shard=self.shard.label, run=self.run, record=self.manifest_key)
            if self.commit is not None:
                d["commit"] = self.commit.to_dict()
        return d


def _put_new(store: BlobStore, key: str, data: bytes, *, repair: bool = False) -> tuple[int, bool]:
    """Write ``data`` unless the store holds it already (content-addressed: same name, same bytes): the bytes
    written, and whether an object that was there is rewritten. An object of that name and size is reused unread,
    unless ``repair`` (``backup --full``): then it is read back and rewritten if its bytes are not ``data`` (damaged,
    or failing authentication), which gives exactly the object a clean run writes."""
    try:
        if store.stat(key).size == len(data):
            if not repair:
                return 0, False
            try:
                if store.get(key) == data:
                    return 0, False
            except CorruptData:  # fails authentication, or its sealed bytes are damaged
                pass
            store.put(key, data)  # rewritten with the content its name stands for
            return len(data), True
    except ObjectNotFound:
        pass
    store.put(key, data)
    return len(data), False


@dataclass
class _Stored:
    """One chunk stored: its object, the bytes uploaded, whether the store lacked it, the keys it repaired."""

    obj: DataObject
    uploaded: int
    new: bool
    repaired: list[str]
    written: list[str]  # the keys it wrote (the others were in the store)


def _store_chunk(store: BlobStore, columns: tuple[Field, ...], chunk: Chunk, level: int,
                 repair: bool = False) -> _Stored:
    """Store a chunk and its row digests (``repair``: rewriting either where the store holds it damaged)."""
    data, digests = encode_with_digests(columns, chunk, level=level)
    sha = content_hash(store, data)  # SHA-256, or the keyed MAC in an encrypted store
    key = layout.data_key(sha)
    uploaded, fixed = _put_new(store, key, data, repair=repair)
    repaired = [key] if fixed else []
    written = [key] if uploaded else []
    new = uploaded > 0 and not fixed
    dkey = layout.digests_key(sha)
    n, fixed = _put_new(store, dkey, encode_digests(digests), repair=repair)
    repaired += [dkey] if fixed else []
    written += [dkey] if n else []
    obj = DataObject(key=key, partition=chunk.partition, rows=chunk.num_rows, size=len(data), sha256=sha)
    return _Stored(obj, uploaded + n, new, repaired, written)


def check_reused(store: BlobStore, objects: list[DataObject], fraction: float,
                 rng: random.Random | None = None) -> int:
    """Read back a random ``fraction`` of the objects a backup reuses (at least one, if any and ``fraction`` > 0)
    and check them as a restore would (size, SHA-256 or authentication): CorruptData / AuthenticationFailed, and
    nothing committed, for a damaged one. How many were checked."""
    if not objects or fraction <= 0:
        return 0
    sample = (rng or random.Random()).sample(objects, min(len(objects), max(1, round(fraction * len(objects)))))
    for obj in sample:
        try:
            fetch_object(store, obj)
        except MissingData:
            raise
        except CorruptData as e:
            hint = (f"{either('repair(store, verify(store, None))', '`vecbackup verify --all --repair`')} removes "
                    "the damaged objects (the next backup stores their rows again); "
                    f"{either('a backup with BackupOptions(full=True)', '`vecbackup backup --full`')} rewrites those "
                    "whose rows are unchanged")
            raise type(e)(f"{e.message}: it is one of the objects this backup would reuse; nothing committed",
                          hint=hint) from None
    return len(sample)


def _write_record(store: BlobStore, record: ShardRecord) -> str:
    """Write a shard's record as a new attempt (create-if-absent: never over another record) naming the records of
    the same shard it replaces, then remove those; its key. AlreadyExists if the run was closed meanwhile."""
    check_open(store, record.collection, record.run)
    earlier = [p[3] for key in record_keys(store, record.collection, record.run)
               if (p := parse_record_key(key)) is not None and p[2] == record.shard]
    record = dataclasses.replace(record, supersedes=tuple(earlier))
    store.put(record.key, record.to_json(), if_absent=True)
    for attempt in earlier:
        try:
            store.delete(dataclasses.replace(record, attempt=attempt).key)
        except PermissionDenied:
            break  # an identity that may not delete (docs/SECURITY.md): the commit removes them, superseded
    return record.key


class _NewRows:
    """The rows a stream has to store, gathered into chunks of ``size`` rows (memory: under two batches)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.waiting: list[Chunk] = []
        self.count = 0

    def add(self, chunk: Chunk) -> list[Chunk]:
        """The full chunks ``chunk`` completes (usually none)."""
        if self.count == 0 and chunk.num_rows == self.size:
            return [chunk]  # the common case of a first backup: the batch as read
        self.waiting.append(chunk)
        self.count += chunk.num_rows
        if self.count < self.size:
            return []
        rows = concat_chunks(self.waiting)
        cut = rows.num_rows - rows.num_rows % self.size
        out = [take_rows(rows, np.arange(a, a + self.size)) for a in range(0, cut, self.size)]
        self.waiting = [take_rows(rows, np.arange(cut, rows.num_rows))] if cut < rows.num_rows else []
        self.count = rows.num_rows - cut
        return out

    def rest(self) -> list[Chunk]:
        out = [concat_chunks(self.waiting)] if self.waiting else []
        self.waiting, self.count = [], 0
        return out


@dataclass(frozen=True)
class _Reads:
    """How a backup reads each partition: ``streams`` streams at once (the rows of shard i/streams each), or one
    stream of the rows ``shard`` owns (None: every row), ``batch_size`` rows at a time."""

    source: Source
    spec: CollectionSpec
    batch_size: int
    streams: int
    shard: Shard | None

    def open(self, partition: str) -> list[Iterator[Chunk]]:
        if self.streams == 1:
            return [self.source.read(self.spec, partition, self.batch_size, self.shard)]
        return [self.source.read(self.spec, partition, self.batch_size, Shard(i, self.streams))
                for i in range(self.streams)]


@dataclass
class _Tally:
    """What a backup's reads add up to: what the rows measured (limits the source does not report, keys held by
    more than one partition), each partition's objects in the manifest's order (``slots``), the rows of each
    partition, and what was uploaded, reused and repaired. Every row counted is reported to ``progress``."""

    progress: Progress
    meter: LimitMeter
    keys: KeyIndex | None
    partition_rows: dict[str, int]
    slots: list[list[DataObject]] = field(default_factory=list)  # per partition: reused, then one per stream
    uploaded: int = 0  # bytes
    objects_new: int = 0
    rows_reused: int = 0
    new_keys: set[str] = field(default_factory=set)
    repaired: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # every key written (data objects and row digests)

    def measure(self, spec: CollectionSpec, partition: str, chunk: Chunk) -> None:
        self.meter.add(spec, chunk)
        if self.keys is not None:
            self.keys.add(partition, chunk.columns[spec.primary.name].values)

    def open_slots(self, n: int) -> int:
        """``n`` new slots, after every slot so far; the index of the first."""
        self.slots.extend([] for _ in range(n))
        return len(self.slots) - n

    def reused(self, partition: str, rows: int) -> None:
        self.rows_reused += rows
        self.partition_rows[partition] += rows
        self.progress.advance(rows, 0)

    def stored(self, slot: int, done: _Stored) -> None:
        obj = done.obj
        self.slots[slot].append(obj)
        self.uploaded += done.uploaded
        self.objects_new += done.new
        if done.new:
            self.new_keys.add(obj.key)
        self.written.update(done.written)
        self.repaired.extend(done.repaired)
        self.partition_rows[obj.partition] += obj.rows
        self.progress.advance(obj.rows, obj.size)

    def objects(self) -> tuple[DataObject, ...]:
        return merge_objects(obj for slot in self.slots for obj in slot)


class _Uploads:
    """Chunks encoded and uploaded on a thread pool while the next ones are read: at most ``width`` in flight
    (memory: a few batches), each added to ``tally`` in the order submitted. Leaving the ``with`` on an error cancels
    the chunks not started; it always waits for those running."""

    def __init__(self, store: BlobStore, columns: tuple[Field, ...], level: int, repair: bool, width: int,
                 tally: _Tally) -> None:
        self.store, self.columns, self.level, self.repair = store, columns, level, repair
        self.width = width
        self.tally = tally
        self._pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="vecbackup-encode")
        self._inflight: deque[tuple[int, Future[_Stored]]] = deque()

    def __enter__(self) -> _Uploads:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None,
                 ) -> None:
        if kind is not None:
            for _, fut in self._inflight:
                fut.cancel()
        self._pool.shutdown(wait=True)

    def submit(self, slot: int, chunks: list[Chunk]) -> None:
        """Store ``chunks`` into ``slot``, waiting while ``width`` are in flight."""
        for chunk in chunks:
            fut = self._pool.submit(_store_chunk, self.store, self.columns, chunk, self.level, self.repair)
            self._inflight.append((slot, fut))
            self.drain(self.width)

    def drain(self, limit: int = 0) -> None:
        """Wait until at most ``limit`` chunks are in flight."""
        while len(self._inflight) > limit:
            slot, fut = self._inflight.popleft()
            self.tally.stored(slot, fut.result())


def _read_partition(reads: _Reads, partition: str, known: PartitionRows | None, uploads: _Uploads) -> None:
    """Read a partition and store the rows the base backup does not hold (``known``) in chunks of ``batch_size``
    rows, each stream's into a slot of its own; the objects holding the reused rows go into the slot before them."""
    tally = uploads.tally
    reused_slot = tally.open_slots(reads.streams + 1)
    new_rows = [_NewRows(reads.batch_size) for _ in range(reads.streams)]
    for i, chunk in merged(reads.open(partition), depth=reads.streams):
        tally.measure(reads.spec, partition, chunk)
        if known is not None and len(known):
            chunk = _without_reused(reads.spec, partition, chunk, known, tally)
        if chunk.num_rows:
            uploads.submit(reused_slot + 1 + i, new_rows[i].add(chunk))
    for i, rows in enumerate(new_rows):
        uploads.submit(reused_slot + 1 + i, rows.rest())
    if known is not None:
        tally.slots[reused_slot] = known.reused()


def _without_reused(spec: CollectionSpec, partition: str, chunk: Chunk, known: PartitionRows, tally: _Tally) -> Chunk:
    """The rows of ``chunk`` the base backup does not hold; the others are counted as reused."""
    keep = known.match(row_digests(spec.columns, chunk))
    reused = int(keep.sum())
    if not reused:
        return chunk
    tally.reused(partition, reused)
    return take_rows(chunk, np.flatnonzero(~keep))


def _check_options(shard: Shard | None, run: str | None, parallel: int) -> None:
    if (shard is None) != (run is None):
        raise UsageError(f"a shard of a sharded backup needs both {param('shard')} and {param('run')}")
    if parallel > 1 and shard is not None:
        raise UsageError(f"{param('parallel')} and {param('shard')} do not combine",
                         hint=f"run more shards instead: {either('Shard(I, N)', '--shard I/N')}")


def _check_stored(store: BlobStore, objects: tuple[DataObject, ...]) -> None:
    """Read-after-write: MissingData unless every object the manifest will reference is in the store, whole."""
    for obj in objects:
        try:
            if store.stat(obj.key).size != obj.size:
                raise MissingData(f"{obj.key} in {store.display} changed size while backing up; not committed")
        except ObjectNotFound:
            raise MissingData(f"{obj.key} vanished from {store.display} before commit; not committed") from None


def _commit(store: BlobStore, collection: str, manifest: Manifest, shard: Shard | None, run: str | None,
            meter: LimitMeter) -> str:
    """Write the manifest (create-if-absent: the commit point), or a shard's record; its key."""
    if shard is not None and run is not None:
        return _write_record(store, ShardRecord(run, shard, manifest, dict(meter.largest), new_attempt()))
    key = layout.manifest_key(collection, manifest.backup_id)
    store.put(key, manifest.to_json(), if_absent=True)
    return key


def backup_collection(
    source: Source,
    store: BlobStore,
    collection: str,
    *,
    batch_size: int = 5000,
    compression_level: int = DEFAULT_LEVEL,
    progress: Progress | None = None,
    shard: Shard | None = None,
    run: str | None = None,
    parallel: int = 1,
    full: bool = False,
    check_fraction: float = CHECK_REUSED,
    settings_checked: bool = False,
) -> BackupResult:
    """Back up ``collection``. Data objects are written first; the manifest last, with a conditional
    create, is the commit point: until it exists the backup does not exist.

    Before anything is written the store's settings are checked against its newest backup (an object lock lost:
    stores/objectlock.check_lock_kept); ``settings_checked``: the caller did that already for this run (api.backup
    does once for all its collections).

    With ``shard`` (and ``run``): only the rows the shard owns, and a shard record instead of the manifest; the
    backup exists once ``commit`` has joined every shard of the run (ops/commit.py).

    ``parallel`` K > 1 reads K streams at once (the rows of shard 0/K, 1/K, ...; capped by the source's
    ``max_readers``); the manifest lists each partition's objects stream by stream, so the same rows give the same
    backup whatever order the streams finish in.

    Rows the newest earlier backup of the collection already stored are not uploaded again (ops/incremental.py):
    the manifest selects them in the objects that hold them; a random ``check_fraction`` of the objects it reuses
    (at least one) is read back and checked first, and a damaged one fails the backup (nothing committed). ``full``
    stores every row anew, reading back every object already in the store that it would write and rewriting any that
    is damaged (a repair: content addressing makes the rewrite exact)."""
    _check_options(shard, run, parallel)
    progress = progress or NullProgress()
    t0 = time.monotonic()
    started_at = now_z()
    lock_until = retention_end(store, datetime.now(UTC))  # object lock: every object it names is kept till then
    if run is not None:
        check_open(store, collection, run)  # a run id is used once
    backup_id = run if run is not None else layout.new_backup_id()
    described = source.describe(collection)
    spec = described.spec
    notes = list(described.notes)
    partitions = source.read_partitions(spec)
    expected = source.count(spec)  # whole collection: Milvus Lite ignores partitions in count(*)
    if shard is None:
        progress.start(f"backup {collection}", expected)
    else:
        progress.start(f"backup {collection} shard {shard.label}", -(-expected // shard.count))
    reads = _Reads(source, spec, batch_size, min(parallel, source.max_readers), shard)
    if reads.streams < parallel:
        notes.append(f"read {plural(reads.streams, 'stream')} at once, not {parallel}: the most {source.display} "
                     "serves")
    base, base_notes = (None, []) if full else find_base(store, spec)
    notes.extend(base_notes)
    if not settings_checked:
        check_lock_kept(store, catalog.newest(store))  # before anything is written

    tally = _Tally(progress, LimitMeter(unset(spec)), key_index(spec, partitions), {p: 0 for p in partitions})
    width = in_flight(store, PIPELINE) + reads.streams - 1
    with _Uploads(store, spec.columns, compression_level, full, width, tally) as uploads:
        for p in partitions:  # (the base's rows of one partition in memory at a time)
            _read_partition(reads, p, load_partition(store, base, p, notes) if base is not None else None, uploads)
        uploads.drain()
    progress.finish()

    objects = tally.objects()
    if tally.repaired:
        notes.append(f"rewrote {plural(len(tally.repaired), 'damaged object')} of the store with the content their "
                     f"names stand for (first: {min(tally.repaired)}); every backup that uses them is whole again")
        progress.warn(notes[-1])
    checked = 0 if full else check_reused(store, [o for o in objects if o.key not in tally.new_keys], check_fraction)
    duplicates = found_duplicates(tally.keys, store, objects, spec, source)
    tally.keys = None  # (memory: every key read)
    if duplicates.keys and shard is None:  # (commit says it for a sharded backup)
        notes.append(duplicate_note(duplicates))
    info = source.info()
    notes.extend(n for n in source.read_notes(spec) if n not in notes)
    if tally.meter.wanted and shard is None:  # a shard records what it measured; commit infers from every shard's
        spec, inferred = with_inferred(spec, tally.meter.largest, info.engine)
        notes.extend(inferred)
    read = sum(tally.partition_rows.values())
    if read != expected and read - duplicates.copies != expected and shard is None:  # Lite counts each key once
        notes.append(f"counted {expected} rows before the backup and read {read}: the collection changed "
                     "while it was backed up; the backup holds the rows read")
    _check_stored(store, objects)
    retained = None if lock_until is None else retain_all(store, reused_keys(objects, tally.written), lock_until)

    manifest = Manifest(
        backup_id=backup_id,
        collection=spec,
        source=info,
        objects=objects,
        partition_rows={p or "": n for p, n in tally.partition_rows.items()},
        started_at=started_at,
        completed_at=now_z(),
        tool_version=__version__,
        options={"batch_size": batch_size, "compression_level": compression_level, **lock_option(store)},
        notes=tuple(notes),
        incremental=Incremental(base=base.backup_id if base is not None else None, new_objects=tally.objects_new,
                                new_bytes=tally.uploaded, reused_rows=tally.rows_reused),
        duplicate_keys=duplicates,
    )
    key = _commit(store, collection, manifest, shard, run, tally.meter)
    return BackupResult(
        backup_id="" if shard is not None else backup_id, collection=collection, rows=manifest.rows,
        objects=len(objects), bytes_stored=manifest.size, bytes_uploaded=tally.uploaded,
        seconds=time.monotonic() - t0, manifest_key=key, notes=notes, shard=shard, run=run,
        objects_new=tally.objects_new, rows_reused=tally.rows_reused, base=base.backup_id if base is not None else None,
        objects_checked=checked, objects_repaired=tally.repaired, duplicate_keys=duplicates.keys, retained=retained,
    )


def reused_keys(objects: tuple[DataObject, ...], written: set[str]) -> list[str]:
    """The keys of the objects a manifest names (each data object and its row digests) that the backup did not write
    itself: the ones whose object lock it must extend before it commits (stores/objectlock.retain_all)."""
    return [k for obj in objects for k in obj.stored_keys if k not in written]
