"""The two protocols between operations and databases: Source (read) and Sink (write)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from vecbackup.format.codec import Chunk
from vecbackup.format.manifest import SourceInfo
from vecbackup.format.segments import Deletes
from vecbackup.format.shard import Shard
from vecbackup.schema import CollectionSpec

#: partition value for rows the engine routes itself (partition-key collections)
ENGINE_ROUTED = ""


@dataclass(frozen=True)
class Described:
    spec: CollectionSpec
    notes: tuple[str, ...] = ()  # what the engine could not tell us (e.g. unreported index parameters)


class Source(Protocol):
    display: str
    #: the largest batch (rows per data chunk) this engine reads in one go
    max_batch: int

    @property
    def max_readers(self) -> int:
        """Streams this engine serves at once to one client (``backup --parallel``)."""
        ...

    def info(self) -> SourceInfo: ...

    def list_collections(self) -> list[str]: ...

    def describe(self, name: str) -> Described:
        """Schema, indexes, partitions, aliases and properties; NotFound for an unknown collection."""
        ...

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        """The partitions to read one by one (or [ENGINE_ROUTED] for one pass over everything)."""
        ...

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        """Rows in the collection now (strong consistency)."""
        ...

    def read(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard | None = None,
             ) -> Iterator[Chunk]:
        """Every row of a partition (or only the rows ``shard`` owns), ``batch_size`` rows at a time, as columnar
        chunks in primary-key order."""
        ...

    def read_notes(self, spec: CollectionSpec) -> list[str]:
        """What reading the collection did differently from the usual (e.g. a slower path), for the backup's
        notes."""
        ...

    def shown_partitions(self, spec: CollectionSpec, held: list[tuple[Any, tuple[str, ...]]]) -> list[str | None]:
        """For each key held by more than one partition (with those partitions), the partition whose copy the
        collection's collection-level reads return; None where the engine does not tell."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SegmentFiles:
    """One sealed segment of a collection as its server stores it (a segment backup, ops/segment_backup.py)."""

    segment_id: int
    partition: str  # its partition's name
    rows: int  # rows its insert binlogs hold, deleted ones included (as the server reports)
    files: tuple[tuple[int, str, int], ...]  # (field id, path under the storage root, size) of its insert binlogs


class SegmentReader(Protocol):
    """What a segment backup asks of a server besides Source: its sealed segments, read from its own storage."""

    display: str  # where the files are read from, safe to print
    bytes_read: int  # bytes read from the storage so far
    #: the timestamp of the flush the last segments() made: the backup holds the collection as of it (None: not
    #: known, every row and delete read is taken)
    flush_ts: int | None

    def segments(self, spec: CollectionSpec) -> list[SegmentFiles]:
        """Flush the collection, then its sealed segments in a stable order (partition, segment id)."""
        ...

    def deletes(self, spec: CollectionSpec, segments: list[SegmentFiles], into: Deletes) -> None:
        """Add every delete of the collection's delta logs to ``into``."""
        ...

    def keys(self, spec: CollectionSpec, segment: SegmentFiles) -> tuple[Any, Any]:
        """The primary keys and insert timestamps of every row of the segment, in its order."""
        ...

    def groups(self, spec: CollectionSpec, segment: SegmentFiles, partition: str) -> Iterator[Any]:
        """Every row of the segment in its order, as picklable groups of its files, each fetched when reached:
        objects whose ``batches(batch_size)`` gives the rows ``batch_size`` at a time with each row's insert timestamp
        (chunk, timestamps), the chunks' partition ``partition`` (format/binlog.py LogGroup). Decoded here or in a
        worker process (ops/segment_backup.py)."""
        ...

    def changed(self, spec: CollectionSpec, segments: list[SegmentFiles]) -> str | None:
        """Why the segments read may no longer be the collection's (compaction or garbage collection meanwhile),
        or None when the server still lists exactly them with every file in place."""
        ...


@dataclass(frozen=True)
class RestorePlan:
    """What a sink is asked to do; built once, from every option, before any data moves (ops.restore.plan_restore),
    and never changed afterwards: sinks report what they did as notes they return."""

    target: str  # final collection name
    staging: str  # name the data is loaded under before it takes the final name (= target when filled in place)
    replace: bool  # drop an existing target at the end
    keep_ids: bool  # insert recorded primary keys even for auto-id collections
    index_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per field, user-given
    #: per field, the index type --index-type chose (the spec's indexes are already of that type, with the
    #: parameters to build: index_types.plan_indexes)
    index_types: dict[str, str] = field(default_factory=dict)
    index_fallback: bool = False
    aliases: tuple[str, ...] = ()
    shards: int | None = None  # topology override (--shards); None = as recorded
    replication_factor: int | None = None  # topology override (--replication-factor); None = as recorded. Qdrant


class PhaseReport(Protocol):
    """What a sink (or an inspector) says while it waits on its server after the rows are in: the phase's name
    (``flushing``, ``building index v``, ``loading``) and, where the server reports it, ``done`` of ``total``
    (``unit``: ``rows`` of an index built, ``%`` of a load). Called when the phase begins and, where the server
    reports progress, again about every second while it lasts. ops.progress.Progress.phase has this form."""

    def __call__(self, name: str, done: int | None = None, total: int | None = None, unit: str = "rows") -> None: ...


@dataclass(frozen=True)
class KeyCopies:
    """How a target holds a primary key that more than one partition of a backup holds (docs/COMPATIBILITY.md,
    "Keys held by more than one partition")."""

    held: bool  # every copy is kept, each in its partition (False: one point per key; the last written stays)
    counted: bool  # count() counts every copy (False: each key once)
    last_shown: bool  # collection-level reads show the copy written last (once settle() came between the writes)


@dataclass(frozen=True)
class SearchParams:
    """How hard an approximate search tries: HNSW ``ef`` (Milvus ef / DISKANN search_list, Qdrant hnsw_ef) and IVF
    ``nprobe`` (capped at the index's nlist). Raised to k where an engine requires it."""

    ef: int = 512
    nprobe: int = 64


class Sink(Protocol):
    display: str
    #: True when a restore fills a staging collection and renames it (Milvus); False when the engine cannot
    #: rename and a new collection is filled under its final name (Qdrant)
    renames: bool

    @property
    def max_writers(self) -> int:
        """How many write() calls may run at once (from different threads)."""
        ...

    def info(self) -> SourceInfo: ...

    def has_collection(self, name: str) -> bool: ...

    def name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a collection name on this engine (None when it can)."""
        ...

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        """Raise Unsupported / TargetRejected, naming the field, if the target cannot hold this collection;
        return notes on what it will do differently."""
        ...

    def create(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        """Create the staging collection with its schema and partitions (no indexes yet), and with ``lease`` (the
        value of format.lease.LEASE_KEY) if given; returns notes."""
        ...

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        """Insert one chunk into the staging collection; returns rows written. Called from up to ``max_writers``
        threads at once."""
        ...

    def finish(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        """Flush, build every index, load, move staging to the target name, recreate aliases; returns notes.
        ``report`` hears what it waits on."""
        ...

    def abort(self, plan: RestorePlan) -> None:
        """Drop the staging collection after a failure (never the target)."""
        ...

    def count(self, name: str) -> int: ...

    def key_copies(self, spec: CollectionSpec) -> KeyCopies:
        """How a collection of ``spec`` created here holds a key written into several of its partitions."""
        ...

    def settle(self, plan: RestorePlan) -> None:
        """Make the rows written so far the older copies of any key written next (Milvus Lite: a flush, without
        which it keeps only the newer copy; elsewhere nothing)."""
        ...

    def partition_counts(self, spec: CollectionSpec, name: str, partitions: list[str]) -> dict[str, int]:
        """The rows of each of these partitions of collection ``name``, every copy of a key counted (as a backup
        reads them)."""
        ...

    def read_lease(self, name: str) -> str | None:
        """The value under format.lease.LEASE_KEY of collection ``name`` (None without one: a Milvus property, a key
        of a Qdrant collection's metadata); NotFound if there is no such collection."""
        ...

    def write_lease(self, name: str, value: str) -> None: ...

    def clear_lease(self, name: str) -> None:
        """Remove the lease from collection ``name`` (or empty it where the engine cannot remove it)."""
        ...

    def resolve(self, name: str) -> str | None:
        """The collection ``name`` answers to: itself, the collection an alias of that name points at, or None."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StagingSink(Sink, Protocol):
    """What a restore by several workers (ops/restore_shard.py) asks of a sink besides Sink: a staging collection
    every worker fills, markers on it, idempotent re-inserts, and the finish in two steps with a claim before them.
    Milvus has it; Qdrant restores run as one process."""

    def ensure_staging(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        """Create the staging collection (with ``lease``) and its partitions unless they exist (every worker calls
        it, concurrently too); returns notes."""
        ...

    def markers(self, name: str) -> set[str]:
        """The markers collection ``name`` carries."""
        ...

    def add_marker(self, name: str, marker: str) -> None:
        """Mark collection ``name`` (atomically; marking twice is no error)."""
        ...

    def drop_markers(self, markers: list[str]) -> None: ...

    def delete_keys(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> None:
        """Delete the rows with the chunk's primary keys from the staging collection (keys it lacks are no error)."""
        ...

    def claim(self, staging: str, name: str) -> bool:
        """Rename ``staging`` to ``name``: True for the one caller that did, False if ``staging`` is gone."""
        ...

    def prepare(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        """Flush, build every index and load the staging collection, telling ``report`` what it waits on; returns
        notes (finish = prepare + publish)."""
        ...

    def publish(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        """Give the prepared staging collection the target's name and create the aliases; returns notes."""
        ...

    def drop_collection(self, name: str) -> None: ...


@dataclass(frozen=True)
class ImportState:
    """Where one of the server's import tasks stands (ImportSink.import_state)."""

    done: bool  # finished, the rows are in
    rows: int  # rows imported so far
    failure: str | None = None  # the server's reason when the task failed


@runtime_checkable
class ImportSink(StagingSink, Protocol):
    """What a restore through the server's own import (``restore --bulk-import-via``, ops/bulk_restore.py) asks of
    a sink besides a staging collection: tasks importing files staged where the server reads them."""

    def import_refusal(self, spec: CollectionSpec, plan: RestorePlan) -> str | None:
        """Why this collection cannot be restored through this server's import, or None."""
        ...

    def start_import(self, plan: RestorePlan, partition: str, paths: list[str]) -> int:
        """Start a task importing the files at ``paths`` into the staging collection's partition; its id."""
        ...

    def import_state(self, task: int) -> ImportState: ...


@runtime_checkable
class BinlogImportSink(ImportSink, Protocol):
    """What a restore through the server's binlog import (``--bulk-import-format binlog``) asks of a sink besides
    ImportSink's tasks: the staging collection's field ids, which the staged binlogs' folders carry, and a task
    reading an insert folder (engines/milvus/binlog_import.py lays it out)."""

    def binlog_refusal(self, spec: CollectionSpec, plan: RestorePlan) -> str | None:
        """Why this collection cannot be restored through this server's binlog import, or None."""
        ...

    def binlog_field_ids(self, name: str) -> dict[str, int]:
        """Field name -> field id of collection ``name``, the dynamic field's included."""
        ...

    def start_binlog_import(self, plan: RestorePlan, partition: str, insert_dir: str) -> int:
        """Start a task importing the binlogs under ``insert_dir`` (``<segment>/<field id>/<log>``, as the server
        opens it) into the staging collection's partition; its id (for import_state)."""
        ...


class Inspector(Protocol):
    """What a recovery drill asks of an engine besides Source and Sink: read rows back by key, search, drop.

    Keys and vectors are in the engine's own form: the form ``rows_of_chunk`` gives a backup chunk's rows and
    ``keys_of_chunk`` its keys, which is also the form ``fetch_rows`` and ``search_keys`` answer in."""

    display: str

    def has_collection(self, name: str) -> bool: ...

    def count(self, name: str) -> int: ...

    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        """A backup chunk's rows as (primary key, row)."""
        ...

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        """A backup chunk's primary keys, in row order."""
        ...

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        """The rows of collection ``name`` with these keys, in the form rows_of_chunk gives them."""
        ...

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        """The value of a vector field in a row from rows_of_chunk, as search_keys takes it (None if none)."""
        ...

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        """Keys of the top ``k`` hits of each query in collection ``name``, with the field's recorded metric."""
        ...

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        """Rows of ``name`` its index on the field does not cover yet (answered by exact search), if known."""
        ...

    def text_search(self, spec: CollectionSpec, name: str, field_name: str, queries: list[str], k: int,
                    keys: list[Any] | None = None) -> list[list[tuple[Any, float]]]:
        """(key, score) of the top ``k`` hits of each full-text query on the output field ``field_name`` of a BM25
        function of collection ``name``, best first; with ``keys``, query i searches only the row of keys[i].
        Unsupported where the engine has no such functions."""
        ...

    def wait_index(self, name: str, report: PhaseReport | None = None) -> None:
        """Return when every index of ``name`` covers every row (a restore is complete when it is searchable),
        telling ``report`` how far the indexes are."""
        ...

    def drop_collection(self, name: str) -> None: ...


class Engine(Source, Sink, Inspector, Protocol):
    """A database vecbackup backs up, restores into and drills against: Milvus or Qdrant."""

    def count(self, spec_or_name: CollectionSpec | str) -> int: ...
