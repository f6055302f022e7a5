"""The server side of a segment backup on a Milvus 2.3 server: its storage opened read-only as a BlobStore, and the
flushed segments of a collection with their files in that storage.

Milvus 2.3 keeps a collection's sealed segments as files under its storage root (``localStorage.path`` of a
standalone server with ``common.storageType: local``; ``minio.bucketName`` + ``minio.rootPath`` of one with MinIO/S3):

    insert_log/<collection id>/<partition id>/<segment id>/<field id>/<log id>    one column of a segment (binlog);
                                                                                  fields 0 (RowID), 1 (Timestamp)
    delta_log/<collection id>/<partition id>/<segment id>/<log id>                deletes dispatched to the segment
    stats_log/<collection id>/<partition id>/<segment id>/<field id>/<log id>     primary-key statistics (not needed)

Log ids are allocated in increasing order, so a field's logs sort into log order by their id. The storage also keeps
the files of segments a compaction replaced until its garbage collector removes them (``dataCoord.gc.dropTolerance``
after the drop, 3 hours by default), so only the segments the server reports as Flushed are taken.

Compaction on 2.3 merges a partition's small flushed segments (only indexed ones: ``indexBasedCompaction``) into a
new segment with the deletes applied, and marks the old ones Dropped: they leave the report at once and their files
stay until the garbage collector's next round after ``dataCoord.gc.dropTolerance``. A 2.3 server offers a client no
way to pause that collector (2.3.5 answers 404 on ``/management/datacoord/garbage_collection/pause`` of both its
metrics and its proxy port; its data coordinator's GcControl RPC is internal), so a copy that raced one is re-listed
and copied again (:func:`copy_until_stable`).

The planning (:func:`plan_listing`, :func:`listing_changes`) is pure; :func:`list_segments`, :func:`recheck` and
:func:`copy_until_stable` do the I/O around it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from vecbackup.errors import MissingData, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.stores import ObjectInfo, ObjectNotFound, open_raw_store
from vecbackup.stores.base import BlobStore
from vecbackup.urls import StoreURL, parse_store_url
from vecbackup.words import number, param, plural

INSERT_LOG = "insert_log"
DELTA_LOG = "delta_log"
#: the system fields every segment holds a binlog of, beside the schema's fields
ROW_ID_FIELD = 0
TIMESTAMP_FIELD = 1
SYSTEM_FIELDS = {"RowID": ROW_ID_FIELD, "Timestamp": TIMESTAMP_FIELD}
#: Milvus versions whose segment files this module reads (major, minor)
SUPPORTED_VERSIONS = ((2, 3),)
#: how long to wait for a flush to reach storage
FLUSH_TIMEOUT = 600.0
LISTING_ATTEMPTS = 5  # a listing that raced a compaction is made again this many times in all
LISTING_PAUSE = 0.5  # seconds, times the attempt number, between them
FLUSHED = "Flushed"
#: the dynamic field's name in the schema and in the field ids of a listing
DYNAMIC_FIELD = "$meta"
#: the access key of the server's bucket when it is not the AWS chain's (a store of backups in S3 uses that)
ENV_CREDENTIALS = ("VECBACKUP_SEGMENTS_ACCESS_KEY_ID", "VECBACKUP_SEGMENTS_SECRET_ACCESS_KEY")

T = TypeVar("T")


# -- the values ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageFile:
    """One file of a segment in the server's storage: its key under the storage root, size and modification time
    (what an incremental backup compares)."""

    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Segment:
    """A flushed segment: ``rows`` as the server reports them (rows inserted, deletes not subtracted), its binlogs
    per field id in log order (the schema's fields and 0/1, the same number of logs each) and its delta logs."""

    segment_id: int
    partition_id: int
    partition: str
    rows: int
    binlogs: Mapping[int, tuple[StorageFile, ...]]
    deltalogs: tuple[StorageFile, ...]

    def files(self) -> Iterator[StorageFile]:
        for field_id in sorted(self.binlogs):
            yield from self.binlogs[field_id]
        yield from self.deltalogs


@dataclass(frozen=True)
class ReportedSegment:
    """A segment as the server reports it (GetPersistentSegmentInfo)."""

    segment_id: int
    partition_id: int
    rows: int
    state: str  # Flushed, Flushing, Sealed, ...
    level: str = "Legacy"  # 2.3: Legacy; 2.4 adds L0 (partition-wide deletes) and L1
    storage_version: int = 0


@dataclass(frozen=True)
class SegmentListing:
    """What a segment backup copies: the collection's flushed segments after a flush at ``flush_ts`` (a hybrid
    timestamp: milliseconds << 18), and what was checked. ``count`` is count(*) right after listing when it did not
    change across the flush and listing (else None: rows were written meanwhile and no count holds for the flush);
    ``skipped`` counts the files under the collection's folders that belong to no reported segment (segments a
    compaction replaced, not collected yet)."""

    collection: str
    collection_id: int
    flush_ts: int
    field_ids: Mapping[str, int]
    partitions: Mapping[str, int]
    segments: tuple[Segment, ...]
    count: int | None = None
    skipped: int = 0
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Rows the segments hold before their deletes are applied."""
        return sum(s.rows for s in self.segments)

    @property
    def size(self) -> int:
        return sum(f.size for s in self.segments for f in s.files())

    def files(self) -> Iterator[StorageFile]:
        for s in self.segments:
            yield from s.files()

    def segment_ids(self) -> frozenset[int]:
        return frozenset(s.segment_id for s in self.segments)


# -- opening the server's storage --------------------------------------------------------------------------------


class ReadOnlyStore:
    """A store that reads only: a segment backup never writes into, or deletes from, the server's own storage."""

    def __init__(self, inner: BlobStore):
        self.inner = inner
        self.display = inner.display

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.get(key, offset=offset, length=length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        raise UsageError(f"{self.display} is the Milvus server's storage: vecbackup does not write there")

    def delete(self, key: str) -> None:
        raise UsageError(f"{self.display} is the Milvus server's storage: vecbackup does not delete there")

    def __repr__(self) -> str:
        return f"ReadOnlyStore({self.display!r})"


def open_segment_storage(url: str, *, environ: Mapping[str, str] | None = None) -> ReadOnlyStore:
    """The Milvus server's storage root that ``--segments-from URL`` names, opened read-only, as it is (no
    vecbackup.json, no encryption): ``file:///path`` (or a plain path) for a standalone server with local storage
    (its ``localStorage.path``; ``milvus-server --data DIR`` puts it at DIR/data), ``s3://<minio.bucketName>/
    <minio.rootPath>?endpoint=http://host:9000&path_style=1`` for MinIO/S3 (credentials from the AWS chain or
    ``profile=``, never the URL; or, when a store of backups in S3 beside it needs other keys, the cluster's own in
    VECBACKUP_SEGMENTS_ACCESS_KEY_ID and VECBACKUP_SEGMENTS_SECRET_ACCESS_KEY: milvus.yaml's minio.accessKeyID and
    minio.secretAccessKey), ``azure://<container>/<rootPath>`` for Azure. The store's ``display`` holds no endpoint
    and no secret."""
    parsed = parse_store_url(url)
    try:
        store = _open(parsed, os.environ if environ is None else environ)
    except NotFound as e:
        raise NotFound(f"the Milvus storage {parsed.display} given by {param('segments_from')}: {e.message}",
                       hint="give the server's storage root: localStorage.path, or s3://<minio.bucketName>/"
                            "<minio.rootPath>") from None
    return ReadOnlyStore(store)


def _open(parsed: StoreURL, environ: Mapping[str, str]) -> BlobStore:
    key_id, secret = (environ.get(name, "") for name in ENV_CREDENTIALS)
    if parsed.scheme != "s3" or not (key_id or secret):
        return open_raw_store(parsed, create=False, keep_cached=True)  # the server's files
    if not (key_id and secret):
        raise UsageError(f"{' and '.join(ENV_CREDENTIALS)} go together", hint="set both, or neither")
    from vecbackup.stores.retry import RetryingStore
    from vecbackup.stores.s3 import S3Store

    return RetryingStore(S3Store.from_url(parsed, credentials=(key_id, secret),
                                          credentials_from=" / ".join(ENV_CREDENTIALS)))


# -- pure planning ---------------------------------------------------------------------------------------------------

_ID = r"(\d{1,20})"
_INSERT_RE = re.compile(rf"{INSERT_LOG}/{_ID}/{_ID}/{_ID}/{_ID}/{_ID}")
_DELTA_RE = re.compile(rf"{DELTA_LOG}/{_ID}/{_ID}/{_ID}/{_ID}")


def storage_prefixes(collection_id: int) -> tuple[str, str]:
    """The two folders of a collection's segment files under the storage root."""
    return f"{INSERT_LOG}/{collection_id}/", f"{DELTA_LOG}/{collection_id}/"


def check_server_version(version: str) -> None:
    """Unsupported (exit 9) unless ``version`` ("v2.3.5", "v2.3.5-lite", "2.3.3-gpu") is one whose segment files
    this module reads."""
    m = re.match(r"v?(\d+)\.(\d+)", version.strip())
    if m is None or (int(m.group(1)), int(m.group(2))) not in SUPPORTED_VERSIONS:
        known = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_VERSIONS)
        raise Unsupported(f"segment backups read the storage of Milvus {known}, not {version or 'an unknown version'}",
                          hint=f"back up without {param('segments_from')} (through the query path)")


def plan_listing(*, collection: str, collection_id: int, flush_ts: int, field_ids: Mapping[str, int],
                 partitions: Mapping[str, int], reported: Iterable[ReportedSegment], objects: Iterable[ObjectInfo],
                 storage: str, count: int | None = None) -> SegmentListing:
    """The listing of a collection from what the server reports (its field ids, partitions name -> id, segments)
    and the objects under :func:`storage_prefixes` in its storage (``storage``: the storage's display, for
    messages). Only Flushed segments are taken (others were sealed after the flush); each must have, for every field
    id and 0/1, the same number of binlogs, and rows. Raises MissingData when a reported segment's files are not in
    the storage, Unsupported for a segment of a layout this module does not read, VecbackupError when the rows the
    segments hold are fewer than ``count`` (a segment is missing from the report)."""
    names = {pid: name for name, pid in partitions.items()}
    expected = sorted({*field_ids.values(), *SYSTEM_FIELDS.values()})
    wanted: dict[int, ReportedSegment] = {}
    notes: list[str] = []
    ignored = 0
    for seg in reported:
        if seg.state != FLUSHED:
            ignored += 1
            continue
        if seg.level not in ("Legacy", "L1") or seg.storage_version != 0:
            raise Unsupported(f"segment {seg.segment_id} of {collection!r} is a level {seg.level} segment of storage "
                              f"version {seg.storage_version}: segment backups read the 2.3 layout only",
                              hint=f"back up without {param('segments_from')} (through the query path)")
        if seg.partition_id not in names:
            raise VecbackupError(f"segment {seg.segment_id} of {collection!r} belongs to partition id "
                                 f"{seg.partition_id}, which the server does not list")
        wanted[seg.segment_id] = seg
    if ignored:
        notes.append(f"{plural(ignored, 'segment')} not flushed at the listing (sealed after the flush) "
                     f"{number(ignored, 'is', 'are')} not in the backup")
    binlogs: dict[int, dict[int, list[StorageFile]]] = {sid: {} for sid in wanted}
    deltas: dict[int, list[StorageFile]] = {sid: [] for sid in wanted}
    skipped = 0
    for obj in objects:
        m = _INSERT_RE.fullmatch(obj.key) or _DELTA_RE.fullmatch(obj.key)
        if m is None:
            continue  # not a segment file (a folder marker, a temporary file)
        cid, pid, sid = (int(g) for g in m.groups()[:3])
        if cid != collection_id:
            continue
        owner = wanted.get(sid)
        if owner is None:
            skipped += 1
            continue
        if pid != owner.partition_id:
            raise VecbackupError(f"segment {sid} of {collection!r} has files under partition id {pid} in {storage}, "
                                 f"but the server reports it in partition id {owner.partition_id}")
        f = StorageFile(obj.key, obj.size, obj.mtime)
        if m.re is _INSERT_RE:
            binlogs[sid].setdefault(int(m.group(4)), []).append(f)
        else:
            deltas[sid].append(f)
    segments = []
    for sid, seg in sorted(wanted.items(), key=lambda kv: (names[kv[1].partition_id], kv[0])):
        logs = {fid: tuple(sorted(files, key=_log_id)) for fid, files in binlogs[sid].items()}
        if seg.rows == 0 and not logs:
            continue  # an empty segment holds no rows and has no files
        where = f"{storage}/{INSERT_LOG}/{collection_id}/{seg.partition_id}/{sid}/"
        missing = [fid for fid in expected if fid not in logs]
        if missing:
            if not logs:
                raise MissingData(f"no files of segment {sid} of {collection!r} ({seg.rows} rows) under {where}",
                                  hint=f"check that {param('segments_from')} names the server's storage root "
                                       "(localStorage.path, or the bucket and minio.rootPath); if it does, the "
                                       "segment was compacted and collected meanwhile: run the backup again")
            raise MissingData(f"segment {sid} of {collection!r} has no binlog of {number(len(missing), 'field id')} "
                              f"{', '.join(map(str, missing))} under {where}")
        unknown = sorted(set(logs) - set(expected))
        if unknown:
            raise Unsupported(f"segment {sid} of {collection!r} has binlogs of {number(len(unknown), 'field id')} "
                              f"{', '.join(map(str, unknown))} the schema does not have")
        counts = {len(files) for files in logs.values()}
        if len(counts) != 1:
            raise VecbackupError(f"segment {sid} of {collection!r} has binlogs of uneven lengths per field "
                                 f"({', '.join(f'{fid}: {len(fs)}' for fid, fs in sorted(logs.items()))}) in {storage}")
        segments.append(Segment(segment_id=sid, partition_id=seg.partition_id, partition=names[seg.partition_id],
                                rows=seg.rows, binlogs=logs,
                                deltalogs=tuple(sorted(deltas[sid], key=_log_id))))
    listing = SegmentListing(collection=collection, collection_id=collection_id, flush_ts=flush_ts,
                             field_ids=dict(field_ids), partitions=dict(partitions), segments=tuple(segments),
                             count=count, skipped=skipped, notes=tuple(notes))
    if count is not None and listing.rows < count:
        raise VecbackupError(f"the flushed segments of {collection!r} hold {listing.rows} rows, but it counts "
                             f"{count}: the server did not report every segment", hint="run the backup again")
    return listing


def _log_id(f: StorageFile) -> int:
    return int(f.path.rsplit("/", 1)[1])


def listing_changes(listing: SegmentListing, reported: Iterable[ReportedSegment],
                    objects: Iterable[ObjectInfo]) -> list[str]:
    """What changed since ``listing`` was made, from a fresh report and the objects now under the collection's
    folders: flushed segments gone (compacted away) or new ones of the same rows, and listed files missing or of
    another size. Empty when the listing still holds. New delta logs of a listed segment are deletes after the
    flush and are not a change."""
    now = {s.segment_id for s in reported if s.state == FLUSHED}
    before = listing.segment_ids()
    changes = []
    gone, new = sorted(before - now), sorted(now - before)
    if gone:
        changes.append(f"{number(len(gone), 'segment')} {', '.join(map(str, gone))} no longer reported (compacted or "
                       "dropped)")
    if new:
        changes.append(f"new flushed {number(len(new), 'segment')} {', '.join(map(str, new))}")
    present = {o.key: o.size for o in objects}
    missing = [f.path for f in listing.files() if f.path not in present]
    resized = [f.path for f in listing.files() if f.path in present and present[f.path] != f.size]
    if missing:
        changes.append(f"{plural(len(missing), 'file')} gone from the storage (first: {missing[0]})")
    if resized:
        changes.append(f"{plural(len(resized), 'file')} changed size (first: {resized[0]})")
    return changes


def check_rows(listing: SegmentListing, deleted: int) -> str | None:
    """After decoding: ``deleted`` rows of the listed segments are removed by their delta logs (each row counted
    once, however many delta logs name its key). A problem (one line) when ``listing.rows - deleted`` is not the
    count taken at the listing, else None; None too when no count was taken."""
    if listing.count is None:
        return None
    live = listing.rows - deleted
    if live != listing.count:
        return (f"the segments of {listing.collection!r} hold {live} live rows ({listing.rows} minus {deleted} "
                f"deleted), but it counted {listing.count} at the flush")
    return None


# -- the server --------------------------------------------------------------------------------------------------


class _Rpc:
    """The few Milvus RPCs MilvusClient does not expose with what a segment listing needs (the flush timestamp,
    partition and field ids with the dynamic field), through pymilvus's own request builders and stub."""

    def __init__(self, conn: Any):
        from pymilvus.client.prepare import Prepare

        self.conn = conn
        self.prepare = Prepare
        self.handler = conn.client._get_connection()
        self.stub = self.handler._stub

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        response = self.conn._call(what, fn)
        status = getattr(response, "status", None)
        code = getattr(status, "error_code", 0) or getattr(status, "code", 0)
        if code:
            reason = " ".join(str(getattr(status, "reason", "")).split())[:300]
            raise VecbackupError(f"Milvus at {self.conn.display}: {what} failed: {reason or code}")
        return response

    def describe(self, name: str) -> tuple[int, dict[str, int]]:
        """The collection's id and its fields' ids. A 2.3 server leaves the dynamic field out of its answer; it is
        the last field the collection was created with (the proxy appends it, and 2.3 cannot add fields later), so
        its id is one past the others' (plan_listing checks that every segment has binlogs of it)."""
        r = self.call(f"describe {name!r}",
                      lambda: self.stub.DescribeCollection(self.prepare.describe_collection_request(name)))
        ids = {str(f.name): int(f.fieldID) for f in r.schema.fields}
        if r.schema.enable_dynamic_field and DYNAMIC_FIELD not in ids:
            ids[DYNAMIC_FIELD] = max(ids.values()) + 1
        return int(r.collectionID), ids

    def partitions(self, name: str) -> dict[str, int]:
        r = self.call(f"list the partitions of {name!r}",
                      lambda: self.stub.ShowPartitions(self.prepare.show_partitions_request(name)))
        return {str(n): int(i) for n, i in zip(r.partition_names, r.partitionIDs, strict=True)}

    def flush(self, name: str, timeout: float = FLUSH_TIMEOUT) -> int:
        r = self.call(f"flush {name!r}", lambda: self.stub.Flush(self.prepare.flush_param([name])))
        flush_ts = int(r.coll_flush_ts[name])
        ids = list(r.coll_segIDs[name].data)
        deadline = time.monotonic() + timeout
        while not self.conn._call(f"wait for the flush of {name!r}", self.handler.get_flush_state, ids, name,
                                  flush_ts):
            if time.monotonic() > deadline:
                raise Unreachable(f"Milvus at {self.conn.display}: the flush of {name!r} did not finish in "
                                  f"{timeout:.0f} s")
            time.sleep(0.2)
        return flush_ts

    def segments(self, name: str, collection_id: int) -> list[ReportedSegment]:
        """The segments the server keeps of collection ``name`` (2.3: those not dropped, their states as they are;
        growing ones are not reported). VecbackupError if the name now holds another collection."""
        infos = self._segment_infos(name)
        other = {int(i.collectionID) for i in infos} - {collection_id}
        if other:
            raise VecbackupError(f"collection {name!r} was dropped and created again during the listing (id "
                                 f"{collection_id}, now {min(other)})", hint="run the backup again")
        return [_reported(i) for i in infos]

    def _segment_infos(self, name: str) -> Any:
        """The server lists a collection's segment ids, then asks for each one's information: a segment that a
        compaction dropped in between fails the whole call with "segment not found". That is a race of the
        listing, not an error of the collection, so the call is made again (up to ``LISTING_ATTEMPTS`` times)."""
        for attempt in range(1, LISTING_ATTEMPTS + 1):
            try:
                return self.conn._call(f"list the segments of {name!r}",
                                       lambda: self.handler.get_persistent_segment_infos(name))
            except VecbackupError as e:
                if attempt == LISTING_ATTEMPTS or not segment_vanished(str(e)):
                    raise
                time.sleep(LISTING_PAUSE * attempt)
        raise AssertionError("unreachable")


def segment_vanished(message: str) -> bool:
    """Whether a server's error says a segment it had just listed is gone (2.3: "segment not found[segment=N]")."""
    return "segment not found" in message.lower()


def _reported(info: Any) -> ReportedSegment:
    from pymilvus.grpc_gen import common_pb2

    return ReportedSegment(segment_id=int(info.segmentID), partition_id=int(info.partitionID),
                           rows=int(info.num_rows), state=common_pb2.SegmentState.Name(info.state),
                           level=common_pb2.SegmentLevel.Name(getattr(info, "level", 0)),
                           storage_version=int(getattr(info, "storage_version", 0)))


def _objects(storage: BlobStore, collection_id: int) -> list[ObjectInfo]:
    return [o for prefix in storage_prefixes(collection_id) for o in storage.list(prefix)]


def list_segments(conn: Any, name: str, storage: BlobStore, *, count: bool = True) -> SegmentListing:
    """Flush collection ``name`` on the server ``conn`` (a engines.milvus Connection) and list its flushed segments
    with their files in ``storage`` (:func:`open_segment_storage`). With ``count``, count(*) (Strong) is taken before
    the flush and after the listing (loading the collection if it is not: the connection releases it on close); when
    they agree the listing records it and it is checked against the rows listed (:func:`check_rows` is the exact
    check once the delta logs are decoded)."""
    if conn.url.lite:
        raise Unsupported("Milvus Lite keeps no segment files: segment backups need a Milvus server",
                          hint=f"back up without {param('segments_from')} (through the query path)")
    check_server_version(conn.info().server_version)
    if not conn.has_collection(name):
        raise NotFound(f"collection {name!r} not found in {conn.display}")
    rpc = _Rpc(conn)
    before = conn.count(name) if count else None
    flush_ts = rpc.flush(name)
    collection_id, field_ids = rpc.describe(name)
    partitions = rpc.partitions(name)  # after the flush: every partition a flushed segment can be in
    reported = rpc.segments(name, collection_id)
    objects = _objects(storage, collection_id)
    after = conn.count(name) if count else None
    notes = []
    if before is not None and before != after:
        notes.append(f"{name!r} counted {before} rows before the flush and {after} after the listing: rows were "
                     "written or deleted meanwhile, so no count holds for the flush (rows written after it are not "
                     "in the backup)")
    listing = plan_listing(collection=name, collection_id=collection_id, flush_ts=flush_ts, field_ids=field_ids,
                           partitions=partitions, reported=reported, objects=objects, storage=storage.display,
                           count=after if before == after else None)
    return _with_notes(listing, notes)


def _with_notes(listing: SegmentListing, notes: Sequence[str]) -> SegmentListing:
    if not notes:
        return listing
    return replace(listing, notes=(*listing.notes, *notes))


def recheck(conn: Any, storage: BlobStore, listing: SegmentListing) -> list[str]:
    """After copying: what changed since the listing (:func:`listing_changes`), asked of the server and the storage
    again without a flush. Empty when every listed segment is still the flushed set and every file is still there."""
    rpc = _Rpc(conn)
    reported = rpc.segments(listing.collection, listing.collection_id)
    return listing_changes(listing, reported, _objects(storage, listing.collection_id))


def copy_until_stable(conn: Any, name: str, storage: BlobStore, copy: Callable[[SegmentListing], T], *,
                      attempts: int = 3, count: bool = True) -> tuple[SegmentListing, T]:
    """List, ``copy(listing)``, then :func:`recheck`: when a compaction replaced segments or its garbage collection
    removed files meanwhile (a file gone mid-copy raises ObjectNotFound out of ``copy``), list again and copy again
    (what was copied already is content-addressed, so a second copy uploads only what is new), up to ``attempts``
    times; then Unreachable naming what kept changing. Returns the listing that held and what ``copy`` returned."""
    last: list[str] = []
    for _ in range(max(1, attempts)):
        listing = list_segments(conn, name, storage, count=count)
        try:
            result = copy(listing)
        except ObjectNotFound as e:
            last = [f"a file vanished during the copy ({e.message})"]
            continue
        last = recheck(conn, storage, listing)
        if not last:
            return listing, result
    raise Unreachable(f"the segments of {name!r} kept changing during the copy ({'; '.join(last)})",
                      hint="compaction replaced them and the server collected the old files; run the backup again, "
                           "or raise dataCoord.gc.dropTolerance on the server")


__all__ = ["DELTA_LOG", "DYNAMIC_FIELD", "ENV_CREDENTIALS", "INSERT_LOG", "SYSTEM_FIELDS", "ReadOnlyStore",
           "ReportedSegment", "Segment", "SegmentListing", "StorageFile", "check_rows", "check_server_version",
           "copy_until_stable", "list_segments", "listing_changes", "open_segment_storage", "plan_listing", "recheck",
           "storage_prefixes"]
