"""Back up one Milvus collection from its sealed segments' files instead of through the query path
(``backup --segments-from URL``; docs/FORMAT.md, "Segment backups"; format/segments.py).

The backup is an ordinary one (data objects, row digests, a manifest written last): every command reads it as any
other. What differs is where rows come from and what the next backup reads:

* the collection is flushed and its sealed segments listed; each segment's insert binlogs are read from the
  server's storage, decoded, and stored in pieces of ``batch_size`` consecutive rows, deleted rows included; the
  manifest selects the live ones (those no delete in the collection's delta logs removed);
* a segment the base backup read from the same files is not read again: only its primary keys and timestamps are,
  to apply the deletes that arrived since, and its pieces are reused;
* a segment read anew whose rows the base stored in segments that are gone (the server rewrote them: a compaction
  merged them or dropped their deleted rows) is read but not uploaded again: a batch whose every live row the base's
  objects hold, found by row digest, is named there, and only its rows deleted since are stored (_BaseRows); after
  a logical backup (a base without segment records) every segment is read anew, and its rows are looked up among all
  of the base's rows the same way.

Rows inserted after the flush (in growing segments) are not in the backup; the row count read is compared with the
collection's and a difference noted, as a logical backup does. A file that vanishes while it is read (the server's
garbage collection after a compaction) makes the backup list the segments again and start over, up to
``ATTEMPTS`` times; objects already stored are reused by name, so a retry uploads nothing twice.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, TypeAlias

import numpy as np

from vecbackup.engines.base import ENGINE_ROUTED, SegmentFiles, SegmentReader, Source
from vecbackup.errors import CorruptData, MissingData, Unsupported, VecbackupError
from vecbackup.format import layout
from vecbackup.format.codec import DEFAULT_LEVEL, Chunk, Packed, decode_chunk, take_rows
from vecbackup.format.digests import decode_digests, encode_digests, encode_with_digests
from vecbackup.format.manifest import DataObject, Incremental, Manifest, merge_objects
from vecbackup.format.ranges import Ranges, ranges_of
from vecbackup.format.segments import Deletes, Piece, SegmentRecord, files_fingerprint, join_keys, reusable
from vecbackup.ops import catalog
from vecbackup.ops.backup import PIPELINE, BackupResult, _put_new, _store_chunk, _Stored, check_reused, reused_keys
from vecbackup.ops.duplicates import duplicate_note, found_duplicates, key_index
from vecbackup.ops.fetch import check_rows, fetch_object
from vecbackup.ops.incremental import PartitionRows, find_base, load_partition
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.ops.segment_workers import Encoded, WorkerPool, default_workers, encode_batch, encode_group
from vecbackup.schema import CollectionSpec, Field
from vecbackup.stores.base import BlobStore, ObjectNotFound, content_hash, in_flight
from vecbackup.stores.objectlock import check_lock_kept, lock_option, retain_all, retention_end
from vecbackup.times import now_z
from vecbackup.version import __version__
from vecbackup.words import either, param, plural

#: listings tried before a backup whose segment files keep vanishing gives up
ATTEMPTS = 3
#: by default a backup decodes and encodes in worker processes, one per core, when it has at least WORKERS_FROM
#: bytes of segment files to read and at least WORKERS_CORES cores. With fewer it does so in its own process: zstd,
#: SHA-256 and the writes (about 60% of the work) run on its threads outside the interpreter lock, which keeps two
#: cores busy as well as two workers would, without their start and the chunks' way back (measured on 2 cores:
#: 5.0-5.7 s with threads against 6.5-7.8 s with 2 workers, 200,000 x 768-d; docs/SCALING.md)
WORKERS_FROM = 256 << 20
WORKERS_CORES = 4


class SegmentsChanged(MissingData):
    """A segment file listed a moment ago is gone (compacted and collected): list again."""


def _full() -> str:
    return f"{either('backup with BackupOptions(full=True)', '`vecbackup backup --full`')} reads every segment again"


def backup_segments(source: Source, reader: SegmentReader, store: BlobStore, collection: str, *,
                    batch_size: int = 5000, compression_level: int = DEFAULT_LEVEL, progress: Progress | None = None,
                    full: bool = False, check_fraction: float = 0.02, workers: int | None = None,
                    settings_checked: bool = False) -> BackupResult:
    """Back up ``collection`` from the files of its sealed segments (module doc). ``full`` reads every segment and
    stores every piece anew, rewriting damaged objects (as ``backup --full``). ``workers``: processes decoding and
    encoding the segments' log groups (ops/segment_workers.py), 1 for none (this process does it, on its threads);
    by default one per core on a machine of WORKERS_CORES cores or more when the segments to read hold at least
    WORKERS_FROM bytes, else none. The objects and the manifest are the same for any number. ``settings_checked``:
    as ops/backup.backup_collection's."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _backup(source, reader, store, collection, batch_size, compression_level,
                           progress or NullProgress(), full, check_fraction, workers, settings_checked)
        except SegmentsChanged as e:
            if attempt == ATTEMPTS:
                raise SegmentsChanged(f"{e.message}; gave up after {ATTEMPTS} listings, nothing committed",
                                      hint="compaction keeps replacing segments: back up when it is quieter, or "
                                           "raise the server's dataCoord.gc.dropTolerance") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _backup(source: Source, reader: SegmentReader, store: BlobStore, collection: str, batch_size: int,
            level: int, progress: Progress, full: bool, check_fraction: float, workers: int | None,
            settings_checked: bool) -> BackupResult:
    t0 = time.monotonic()
    started_at = now_z()
    lock_until = retention_end(store, datetime.now(UTC))  # object lock: every object it names is kept till then
    backup_id = layout.new_backup_id()
    described = source.describe(collection)
    spec = described.spec
    notes = list(described.notes)
    columns = spec.columns
    routed = any(f.is_partition_key for f in spec.fields)  # the engine routes rows: restored without partitions
    expected = source.count(spec)
    read_before = reader.bytes_read
    segments = reader.segments(spec)
    base, base_notes = (None, []) if full else find_base(store, spec)
    notes.extend(base_notes)
    if not settings_checked:
        check_lock_kept(store, catalog.newest(store))  # before anything is written
    base_records = (base.segments or ()) if base is not None else ()
    if base is not None and base.segments is None:
        notes.append(f"backup {base.backup_id} was not read from segments: every segment is read, and the rows it "
                     "holds are found in its objects instead of uploaded again")
    deletes = Deletes(until=reader.flush_ts)  # the collection as of the flush (format/segments.py)
    with _listed("a delta log vanished"):
        reader.deletes(spec, segments, deletes)
    partitions = sorted({ENGINE_ROUTED if routed else s.partition for s in segments})
    keys = key_index(spec, partitions)
    progress.start(f"backup {collection} (segments)", expected)

    records: list[SegmentRecord] = []
    objects: list[DataObject] = []
    partition_rows: dict[str, int] = {p: 0 for p in partitions}
    uploaded = objects_new = rows_reused = reused_segments = 0
    new_keys: set[str] = set()
    written: set[str] = set()
    repaired: list[str] = []
    samples: list[tuple[Piece, Any]] = []  # the pieces of reused segments, with the keys the server's files hold
    width = in_flight(store, PIPELINE) + 1
    slots: list[_Read | tuple[SegmentRecord, np.ndarray, Any]] = []
    unread = [seg for seg in segments
              if reusable(base_records, seg.partition, seg.segment_id, files_fingerprint(seg.files)) is None]
    if workers is None:  # worker processes pay for their start (about a second each) where they pay at all
        cores = default_workers()
        to_read = sum(size for seg in unread for _, _, size in seg.files)
        workers = cores if cores >= WORKERS_CORES and to_read >= WORKERS_FROM else 1
    found = _BaseRows.load(store, base, segments, unread, notes) if base is not None and unread else None
    pool = WorkerPool(workers) if workers > 1 else None
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="vecbackup-encode") as threads:
        groups = _Groups(pool, workers, threads, width, store, spec, columns, batch_size, level, full, deletes,
                         progress, found) if pool is not None else None
        try:
            for seg in segments:
                part = ENGINE_ROUTED if routed else seg.partition
                fingerprint = files_fingerprint(seg.files)
                known = reusable(base_records, seg.partition, seg.segment_id, fingerprint)
                if known is not None:
                    with _listed(f"segment {seg.segment_id}"):
                        pks, ts = reader.keys(spec, seg)
                    if len(ts) != known.rows:  # the same files cannot hold other rows: a record that lies
                        known = None
                if known is not None:
                    live = deletes.live(pks, ts)
                    samples.extend(pieces_in_use(known.pieces, pks, live))
                    rows_reused += int(live.sum())
                    reused_segments += 1
                    progress.advance(int(live.sum()), 0)
                    slots.append((known, live, pks))
                elif groups is not None:
                    slots.append(groups.read(reader, seg, part))
                else:
                    slots.append(_store_segment(threads, width, reader, store, spec, columns, seg, part,
                                                batch_size, level, full, deletes, progress, found))
            if groups is not None:
                groups.drain()
        except BaseException:
            if groups is not None:
                groups.cancel()
            if pool is not None:
                pool.shutdown(kill=True)  # nothing they would still return is wanted (and one may be dead)
            raise
        if pool is not None:
            pool.shutdown()
    rewritten = found_rows = 0
    for slot in slots:
        if isinstance(slot, _Read):
            uploaded += slot.uploaded
            objects_new += len(slot.new)
            new_keys |= slot.new
            written |= slot.written
            repaired += slot.repaired
            record, live, pks = slot.result(spec)
            if slot.found:
                rewritten += 1
                found_rows += int(live[slot.found_flags()].sum())
                samples.extend(slot.found_samples(pks, live))
        else:
            record, live, pks = slot
        part = ENGINE_ROUTED if routed else record.partition
        records.append(record)
        entries = objects_of(record, live)
        if routed:
            entries = [DataObject(o.key, part, o.rows, o.size, o.sha256, o.select) for o in entries]
        objects.extend(entries)
        partition_rows[part] += int(live.sum())
        if keys is not None:
            keys.add(part, np.asarray(pks)[live] if isinstance(pks, np.ndarray) else
                     [k for k, ok in zip(pks, live, strict=True) if ok])
    del slots
    rows_reused += found_rows
    objects = list(merge_objects(objects))  # an object whose rows two pieces hold: listed once
    if found is not None and rewritten:
        what = " the server rewrote (compacted) since" if base_records else ""  # else a logical base
        notes.append(f"{plural(found_rows, 'row')} of {plural(rewritten, 'segment')}{what} found in the objects of "
                     f"backup {found.base_id}: not uploaded again")
    why = reader.changed(spec, segments)
    if why is not None:
        notes.append(f"the segments changed while they were read ({why}); the backup holds the rows of the "
                     "segments as they were listed")
    progress.finish()
    if repaired:
        notes.append(f"rewrote {plural(len(repaired), 'damaged object')} of the store with the content their names "
                     f"stand for (first: {min(repaired)}); every backup that uses them is whole again")
    checked = 0 if full else check_reused(store, [o for o in objects if o.key not in new_keys], check_fraction)
    checked += _check_pieces(store, spec, samples, check_fraction)
    del samples
    duplicates = found_duplicates(keys, store, objects, spec, source)
    if duplicates.keys:
        notes.append(duplicate_note(duplicates))
    read = sum(partition_rows.values())
    if read != expected and read - duplicates.copies != expected:
        notes.append(f"counted {expected} rows before the backup and read {read} from the sealed segments: rows "
                     "written after the flush (or while the backup ran) are not in it")
    for obj in objects:  # read-after-write: every object the manifest references is in the store
        try:
            if store.stat(obj.key).size != obj.size:
                raise MissingData(f"{obj.key} in {store.display} changed size while backing up; not committed")
        except ObjectNotFound:
            raise MissingData(f"{obj.key} is not in {store.display} (the base backup's object is gone); not "
                              "committed", hint=_full()) from None
    retained = None if lock_until is None else retain_all(store, reused_keys(tuple(objects), written), lock_until)
    read_bytes = reader.bytes_read - read_before
    notes.append(f"read {plural(len(segments), 'sealed segment')} from {reader.display}: {reused_segments} "
                 f"unchanged since the base (their keys only), {read_bytes} bytes read")
    manifest = Manifest(
        backup_id=backup_id, collection=spec, source=source.info(), objects=tuple(objects),
        partition_rows=partition_rows, started_at=started_at, completed_at=now_z(), tool_version=__version__,
        options={"batch_size": batch_size, "compression_level": level, "mode": "segments",
                 **({} if reader.flush_ts is None else {"flush_ts": reader.flush_ts}), **lock_option(store)},
        notes=tuple(notes),
        incremental=Incremental(base=base.backup_id if base is not None else None, new_objects=objects_new,
                                new_bytes=uploaded, reused_rows=rows_reused),
        duplicate_keys=duplicates, segments=tuple(records),
    )
    key = layout.manifest_key(collection, backup_id)
    store.put(key, manifest.to_json(), if_absent=True)
    return BackupResult(
        backup_id=backup_id, collection=collection, rows=manifest.rows, objects=len(objects),
        bytes_stored=manifest.size, bytes_uploaded=uploaded, seconds=time.monotonic() - t0, manifest_key=key,
        notes=notes, objects_new=objects_new, rows_reused=rows_reused,
        base=base.backup_id if base is not None else None, objects_checked=checked, objects_repaired=repaired,
        duplicate_keys=duplicates.keys, bytes_read=read_bytes, retained=retained,
    )


def _check_pieces(store: BlobStore, spec: CollectionSpec, samples: list[tuple[Piece, Any]], fraction: float,
                  rng: random.Random | None = None) -> int:
    """Read back a random ``fraction`` of the objects that pieces of reused segments name (at least one, if any and
    ``fraction`` > 0), and compare the primary keys of each of their pieces with the keys the server's files hold
    at those rows: a base manifest whose segment record names other objects fails the backup (CorruptData, nothing
    committed). An object is read once for all of its pieces (a batch found in a logical backup's objects with
    deleted rows in between is a piece per stretch). How many objects were read."""
    if not samples or fraction <= 0:
        return 0
    by_object: dict[str, list[tuple[Piece, Any]]] = {}
    for piece, keys in samples:
        by_object.setdefault(piece.key, []).append((piece, keys))
    names = sorted(by_object)
    picked = (rng or random.Random()).sample(names, min(len(names), max(1, round(fraction * len(names)))))
    pk = spec.primary.name
    for name in picked:
        pieces = by_object[name]
        first = pieces[0][0]
        chunk = decode_chunk(fetch_object(store, DataObject(first.key, "", first.rows, first.size, first.sha256)))
        values = chunk.columns[pk].values
        if isinstance(values, Packed):
            values = values.tolist()  # (decoded once, not once a piece)
        for piece, keys in pieces:
            check_rows(DataObject(piece.key, "", piece.rows, piece.size, piece.sha256, piece.select), chunk.num_rows)
            at = piece.positions()
            held = values[at] if isinstance(values, np.ndarray) else [values[i] for i in at.tolist()]
            same = np.array_equal(np.asarray(held), np.asarray(keys)) if isinstance(keys, np.ndarray) else \
                list(held) == list(keys)
            if not same:
                raise CorruptData(f"data object {piece.key} does not hold the rows the base backup's segment record "
                                  "says it holds; nothing committed",
                                  hint=_full())
    return len(picked)


def _flagged(pieces: tuple[Piece, ...] | list[Piece], live: np.ndarray) -> Iterator[tuple[Piece, int, np.ndarray]]:
    """Each piece with where its rows start in the segment and their live flags (one flag per row, in order)."""
    start = 0
    for piece in pieces:
        yield piece, start, live[start:start + piece.rows]
        start += piece.rows


def pieces_in_use(pieces: tuple[Piece, ...] | list[Piece], keys: Any, live: np.ndarray) -> list[tuple[Piece, Any]]:
    """The pieces with a live row (those the manifest lists: objects_of), each with the keys of its rows in the
    server's files. A piece none of whose rows is live is never read again, and gc may remove its object."""
    return [(piece, keys[start:start + piece.rows]) for piece, start, flags in _flagged(pieces, live) if flags.any()]


def objects_of(record: SegmentRecord, live: np.ndarray) -> list[DataObject]:
    """The manifest entries of a segment's pieces given which of its rows are live (one flag per row, in segment
    order): each piece whose rows are all live whole, a piece with some live rows with ``select``, a piece without
    any left out."""
    if len(live) != record.rows:
        raise ValueError(f"segment {record.segment_id}: {len(live)} row flags for {record.rows} rows")
    out = []
    for p, _, flags in _flagged(record.pieces, live):
        n = int(flags.sum())
        if n == 0:
            continue
        select: Ranges | None
        if p.select is not None:  # rows of an earlier backup's object: the live ones among its positions
            select = p.select if n == p.rows else ranges_of(p.positions()[flags])
        else:
            select = None if n == p.rows else ranges_of(np.flatnonzero(flags))
        out.append(DataObject(key=p.key, partition=record.partition, rows=n, size=p.size, sha256=p.sha256,
                              select=select))
    return out


#: what storing a batch gives: the object it was stored as, or the pieces it was found as (and its deleted rows')
_Placed: TypeAlias = "_Stored | tuple[list[Piece], _Stored | None]"


class _Read:
    """A segment read and stored (or being): its pieces in order, which rows are live, their keys, and what storing
    them uploaded, repaired and added to the store."""

    def __init__(self, seg: SegmentFiles, partition: str) -> None:
        self.seg = seg
        self.partition = partition  # its chunks' (ENGINE_ROUTED for a partition-key collection)
        self.pieces: list[Piece] = []  # those with ``select``: rows an earlier backup stored (_BaseRows)
        self.flags: list[np.ndarray] = []
        self.key_parts: list[Any] = []
        self.uploaded = 0
        self.new: set[str] = set()
        self.written: set[str] = set()
        self.repaired: list[str] = []

    def rows_read(self, keys: Any, live: np.ndarray) -> None:
        self.key_parts.append(keys)
        self.flags.append(live)

    @property
    def found(self) -> bool:
        return any(p.select is not None for p in self.pieces)

    def placed(self, pieces: list[Piece], done: _Stored | None) -> None:
        """The next rows are these pieces, of objects an earlier backup stored and of ``done``, stored for them."""
        self.pieces.extend(pieces)
        if done is not None:
            self.uploaded += done.uploaded
            if done.new:
                self.new.add(done.obj.key)
            self.written.update(done.written)
            self.repaired.extend(done.repaired)

    def found_flags(self) -> np.ndarray:
        """Which rows, in order, are held by pieces found in the base."""
        return np.repeat(np.array([p.select is not None for p in self.pieces], dtype=bool),
                         [p.rows for p in self.pieces])

    def found_samples(self, keys: Any, live: np.ndarray) -> list[tuple[Piece, Any]]:
        """The pieces found in the base, each with the keys of its rows in the server's files."""
        return [(piece, k) for piece, k in pieces_in_use(self.pieces, keys, live) if piece.select is not None]

    def stored(self, done: _Placed) -> None:
        """The next rows are an object stored for them, or pieces found in the base (with their deleted rows')."""
        if isinstance(done, _Stored):
            o = done.obj
            self.placed([Piece(o.key, o.sha256, o.size, o.rows)], done)
        else:
            self.placed(*done)

    def result(self, spec: CollectionSpec) -> tuple[SegmentRecord, np.ndarray, Any]:
        """The segment's record, its rows' live flags and its keys, once every piece is stored; Unsupported if its
        binlogs held other rows than the server reports."""
        seg = self.seg
        live = np.concatenate(self.flags) if self.flags else np.zeros(0, dtype=bool)
        if len(live) != seg.rows:
            raise Unsupported(f"segment {seg.segment_id} of {spec.name!r}: its binlogs held {len(live)} rows, the "
                              f"server reports {seg.rows}",
                              hint=f"back up without {param('segments_from')} (through the query path)")
        record = SegmentRecord(seg.segment_id, seg.partition, files_fingerprint(seg.files), tuple(self.pieces))
        return record, live, join_keys(self.key_parts)


@contextmanager
def _listed(what: str) -> Iterator[None]:
    """Reading files of the listing: one that vanished (compacted and collected) is SegmentsChanged, naming ``what``
    was read (list again)."""
    try:
        yield
    except ObjectNotFound as e:
        raise SegmentsChanged(f"{what}: {e}") from None


def _store_segment(pool: ThreadPoolExecutor, width: int, reader: SegmentReader, store: BlobStore,
                   spec: CollectionSpec, columns: tuple[Field, ...], seg: SegmentFiles, partition: str,
                   batch_size: int, level: int, full: bool, deletes: Deletes, progress: Progress,
                   found: _BaseRows | None = None) -> _Read:
    """Read a segment's rows and store them in pieces of ``batch_size`` rows (encoded while the next is read), as
    rows of ``partition`` (ENGINE_ROUTED for a partition-key collection: the server's key buckets are not kept): the
    path without worker processes. With ``found``, each batch is encoded, then looked up in the base here, in order,
    and stored only if the base does not hold it (two steps on the threads: at most ``width`` batches in each)."""
    read = _Read(seg, partition)
    inflight: deque[Future[_Stored]] = deque()
    encoding: deque[tuple[Future[Encoded], np.ndarray, Chunk | None]] = deque()
    placed: deque[Future[_Placed]] = deque()
    pk = spec.primary.name

    def drain(limit: int) -> None:
        while len(inflight) > limit:
            read.stored(inflight.popleft().result())

    def place(limit: int) -> None:
        while len(placed) > limit:
            read.stored(placed.popleft().result())

    def look_up(limit: int) -> None:
        assert found is not None
        while len(encoding) > limit:
            fut, live, batch = encoding.popleft()
            enc = fut.result()
            hit = found.claim(partition, enc.digests, live)
            placed.append(pool.submit(_store_encoded, store, enc, partition, full) if hit is None else
                          pool.submit(hit.place, store, columns, batch or enc, level, partition, full))
            place(width)

    try:
        with _listed(f"segment {seg.segment_id}"):
            for group in reader.groups(spec, seg, partition):
                for chunk, ts in group.batches(batch_size, packed=True):
                    if not chunk.num_rows:
                        continue
                    keys = chunk.columns[pk].values
                    live = deletes.live(keys, ts)
                    read.rows_read(keys, live)
                    if found is None:
                        inflight.append(pool.submit(_store_chunk, store, columns, chunk, level, full))
                        drain(width)
                    else:
                        encoding.append((pool.submit(encode_batch, columns, chunk, ts, pk, level), live,
                                         None if live.all() else chunk))  # its deleted rows may be stored alone
                        look_up(width)
                    progress.advance(int(live.sum()), 0)
        drain(0)
        if found is not None:
            look_up(0)
            place(0)
    except BaseException:
        futures: list[Future[Any]] = [*inflight, *(fut for fut, _, _ in encoding), *placed]
        for fut in futures:
            fut.cancel()
        raise
    return read


class _BaseRows:
    """The rows of the base's segments that are no longer listed (the server rewrote them: a compaction merged them,
    or dropped their deleted rows), or every row of a base that was not read from segments (a logical backup), by
    row digest, per partition (ops/incremental.PartitionRows). A batch of a segment read anew whose every live row
    they hold, in at most MAX_RUNS runs of ascending positions in one object each, is not stored again: its pieces
    name those rows in the base's objects (Piece.select), and its rows deleted since alone are stored (_Found).
    Looked up in the segments' order, on the backup's main thread, so the same files give the same backup. Memory:
    25 bytes per row of those segments (of the logical base's partitions: as a logical backup's own lookup)."""

    #: runs a batch's rows may fall into (a compaction keeps each merged segment's rows in order: one run per
    #: segment it took rows from); a batch in more is stored anew rather than named piecemeal
    MAX_RUNS = 16

    def __init__(self, base_id: str, rows: dict[str, PartitionRows]) -> None:
        self.base_id = base_id
        self.rows = rows

    @classmethod
    def load(cls, store: BlobStore, base: Manifest, segments: list[SegmentFiles], unread: list[SegmentFiles],
             notes: list[str]) -> _BaseRows | None:
        """The rows of ``base``'s segment records that ``segments`` (listed now) no longer holds as the same files,
        or all of its rows if it has no segment records (a logical backup); None if there are none."""
        if base.segments is None:
            gone = {o.key for o in base.objects}
        else:
            read_anew = {(seg.partition, seg.segment_id) for seg in unread}
            kept = {(seg.partition, seg.segment_id) for seg in segments} - read_anew
            gone = {p.key for r in base.segments if (r.partition, r.segment_id) not in kept for p in r.pieces}
        if not gone:
            return None
        partitions = sorted({o.partition for o in base.objects if o.key in gone})
        rows = {p: load_partition(store, base, p, notes, gone) for p in partitions}
        return cls(base.backup_id, {p: r for p, r in rows.items() if len(r)}) if any(map(len, rows.values())) \
            else None

    def claim(self, partition: str, digests: bytes, live: np.ndarray) -> _Found | None:
        """Where the base holds a batch's live rows (by its ``.vbd`` digests; ``live``: one flag per row): the
        pieces naming them in the base's objects, in the batch's order, with the rows deleted since (held by no
        logical base, nor by a compacted segment once the deletes were applied) left to store. None (store the
        batch) when the base does not hold every live row in at most MAX_RUNS runs, or the deleted rows fall into
        more than ``max(MAX_RUNS, rows / 32)`` stretches (a piece each: the manifest would grow more than the upload
        shrinks)."""
        rows = self.rows.get(partition)
        if rows is None or not live.any():
            return None
        stretches = _stretches(live)
        if sum(1 for start, _ in stretches if not live[start]) > max(self.MAX_RUNS, len(live) // 32):
            return None
        runs = rows.claim_all(decode_digests(digests, where="a batch's row digests")[live], self.MAX_RUNS)
        if runs is None:
            return None
        run_of = np.repeat(np.arange(len(runs)), [len(pos) for _, pos in runs])  # of each live row, in order
        at = np.concatenate([pos for _, pos in runs])  # where the base holds each live row, in order
        layout: list[Piece | int] = []
        done = 0  # live rows placed
        for start, end in stretches:
            n = end - start
            if not live[start]:
                layout.append(n)
                continue
            cuts = [0, *(np.flatnonzero(np.diff(run_of[done:done + n])) + 1).tolist(), n]
            for a, b in pairwise(cuts):
                obj = runs[int(run_of[done + a])][0]
                layout.append(Piece(obj.key, obj.sha256, obj.size, b - a, ranges_of(at[done + a:done + b])))
            done += n
        return _Found(layout, np.flatnonzero(~live))


def _stretches(flags: np.ndarray) -> list[tuple[int, int]]:
    """The maximal runs of equal flags, as (start, end)."""
    cuts = [0, *(np.flatnonzero(np.diff(flags.astype(np.int8))) + 1).tolist(), len(flags)]
    return list(pairwise(cuts))


@dataclass(frozen=True)
class _Found:
    """A batch whose live rows the base holds: its pieces in order, found ones (Piece) and stretches of its rows
    deleted since (a count each: the next rows of ``dead``, stored as one new chunk)."""

    layout: list[Piece | int]
    dead: np.ndarray  # the positions of those rows in the batch

    def place(self, store: BlobStore, columns: tuple[Field, ...], batch: Chunk | Encoded, level: int, partition: str,
              repair: bool) -> tuple[list[Piece], _Stored | None]:
        """The batch's pieces, having stored its deleted rows (on a thread), taken from the batch as read, or
        decoded from its chunk when a worker process encoded it: the same rows, encoded the same (tested)."""
        if not len(self.dead):
            return [p for p in self.layout if isinstance(p, Piece)], None
        chunk = take_rows(batch if isinstance(batch, Chunk) else decode_chunk(batch.data), self.dead)
        data, digests = encode_with_digests(columns, chunk, level=level)
        stored = Encoded(data, encode_digests(digests), chunk.num_rows, None, np.zeros(0, np.uint64))
        done = _store_encoded(store, stored, partition, repair)
        o, pieces, offset = done.obj, [], 0
        for item in self.layout:
            if isinstance(item, Piece):
                pieces.append(item)
            else:
                pieces.append(Piece(o.key, o.sha256, o.size, item, ((offset, item),)))
                offset += item
        return pieces, done


class _Groups:
    """The path with worker processes: the segments' log groups are read here (one after the other, in order) and
    decoded and encoded by ``workers`` processes, at most ``workers`` + 1 groups in flight; their chunks are named
    and stored by ``width`` threads, in order, or (``found``) named in the base's objects when it holds every row of
    one. Memory: a group's files and its encoded chunks per worker (in the worker, and here until they are stored),
    the files of the group waiting for a worker when they are not read from a local folder, and ``width`` chunks
    being stored."""

    def __init__(self, pool: WorkerPool, workers: int, threads: ThreadPoolExecutor, width: int,
                 store: BlobStore, spec: CollectionSpec, columns: tuple[Field, ...], batch_size: int, level: int,
                 full: bool, deletes: Deletes, progress: Progress, found: _BaseRows | None = None) -> None:
        self.pool, self.workers, self.threads, self.width = pool, workers, threads, width
        self.store, self.spec, self.columns = store, spec, columns
        self.batch_size, self.level, self.full = batch_size, level, full
        self.deletes, self.progress, self.found = deletes, progress, found
        self.encoding: deque[tuple[_Read, Future[list[Encoded]]]] = deque()
        self.storing: deque[tuple[_Read, Future[_Placed]]] = deque()

    def read(self, reader: SegmentReader, seg: SegmentFiles, partition: str) -> _Read:
        """Hand every log group of ``seg`` to the workers (reading each from the storage), as rows of
        ``partition``; its _Read is complete once drain() returned."""
        read = _Read(seg, partition)
        with _listed(f"segment {seg.segment_id}"):
            for group in reader.groups(self.spec, seg, partition):
                self._collect(self.workers)  # one waiting beyond those being decoded: no worker waits for this one
                try:
                    encoding = self.pool.submit(encode_group, group, self.columns, self.spec.primary.name,
                                                self.batch_size, self.level)
                except BrokenProcessPool:  # one died since the last result was collected
                    raise _worker_died(seg) from None
                self.encoding.append((read, encoding))
                del group
        return read

    def drain(self) -> None:
        self._collect(0)
        self._store(0)

    def cancel(self) -> None:
        for _, encoding in self.encoding:
            encoding.cancel()
        for _, storing in self.storing:
            storing.cancel()

    def _collect(self, limit: int) -> None:
        while len(self.encoding) > limit:
            read, fut = self.encoding.popleft()
            try:
                chunks = self.pool.result(fut)
            except BrokenProcessPool:
                raise _worker_died(read.seg) from None
            except ObjectNotFound as e:  # a file the worker read vanished: list again (as _listed)
                raise SegmentsChanged(f"segment {read.seg.segment_id}: {e}") from None
            except VecbackupError as e:
                raise e.with_traceback(None) from None  # one line, as in this process
            for enc in chunks:
                live = self.deletes.live(enc.keys, enc.timestamps)
                read.rows_read(enc.keys, live)
                hit = self.found.claim(read.partition, enc.digests, live) if self.found is not None else None
                placed: Future[_Placed]
                if hit is not None:  # rows an earlier backup stored: named where they are, not stored again
                    placed = self.threads.submit(hit.place, self.store, self.columns, enc, self.level, read.partition,
                                                 self.full)
                else:
                    placed = self.threads.submit(_store_encoded, self.store, enc, read.partition, self.full)
                self.storing.append((read, placed))
                self.progress.advance(int(live.sum()), 0)
                self._store(self.width)
            del chunks

    def _store(self, limit: int) -> None:
        while len(self.storing) > limit:
            read, fut = self.storing.popleft()
            read.stored(fut.result())


def _worker_died(seg: SegmentFiles) -> VecbackupError:
    return VecbackupError(f"a worker process decoding segment {seg.segment_id} ended unexpectedly (out of memory?); "
                          "nothing committed", hint="back up again; the objects stored so far are reused")


def _store_encoded(store: BlobStore, enc: Encoded, partition: str, repair: bool) -> _Stored:
    """Store a chunk a worker encoded, and its row digests, as ops/backup.py _store_chunk stores one it encodes."""
    sha = content_hash(store, enc.data)  # SHA-256, or the keyed MAC in an encrypted store
    key = layout.data_key(sha)
    uploaded, fixed = _put_new(store, key, enc.data, repair=repair)
    repaired = [key] if fixed else []
    new = uploaded > 0 and not fixed
    dkey = layout.digests_key(sha)
    n, fixed = _put_new(store, dkey, enc.digests, repair=repair)
    repaired += [dkey] if fixed else []
    obj = DataObject(key=key, partition=partition, rows=enc.rows, size=len(enc.data), sha256=sha)
    return _Stored(obj, uploaded + n, new, repaired, [k for k, wrote in ((key, uploaded), (dkey, n)) if wrote])
