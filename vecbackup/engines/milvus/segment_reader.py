"""A Milvus server's sealed segments read from its own storage (ops/segment_backup.py; the SegmentReader protocol).

The server keeps each sealed segment's rows in binlogs (format/binlog.py): one file per field per flush under
``insert_log/<collection id>/<partition id>/<segment id>/<field id>/<log id>``, and deletes under
``delta_log/<collection id>/<partition id>/<segment id>/<log id>``, below the root of its storage (a standalone
server's local storage folder, or the cluster's bucket and root path). This reader lists the segments the server
reports as flushed (storage also holds the files of segments compaction replaced, until garbage collection removes
them) and hands out their files a flush (a log group) at a time, to be decoded here or in a worker process.
"""

from __future__ import annotations

import dataclasses
import mmap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from vecbackup.engines.base import SegmentFiles, SegmentReader
from vecbackup.engines.milvus.segments import (
    DYNAMIC_FIELD,
    Segment,
    SegmentListing,
    check_server_version,
    list_segments,
    open_segment_storage,
    recheck,
)
from vecbackup.errors import Unsupported
from vecbackup.format.binlog import (
    TIMESTAMP_FIELD,
    LogGroup,
    read_delta_log,
    read_insert_log,
    segment_groups,
)
from vecbackup.format.segments import Deletes, join_keys
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec
from vecbackup.stores.base import BlobStore
from vecbackup.stores.local import LocalStore
from vecbackup.words import param


def segment_reader(engine: Any, url: str) -> SegmentReader:
    """The reader of ``engine``'s segments from its storage at ``url``; Unsupported where there are none to read."""
    from vecbackup.engines.milvus.source import MilvusSource

    if not isinstance(engine, MilvusSource):
        raise Unsupported(f"{engine.display} keeps no Milvus segment files: {param('segments_from')} reads a "
                          "Milvus server's", hint=f"back up without {param('segments_from')}")
    if engine.url.lite:
        raise Unsupported(f"Milvus Lite ({engine.display}) keeps no segment files: {param('segments_from')} reads "
                          "a Milvus server's", hint=f"back up without {param('segments_from')} (through the query "
                          "path)")
    check_server_version(engine.info().server_version)
    return MilvusSegmentReader(engine, open_segment_storage(url))


class MilvusSegmentReader:
    """SegmentReader over a Milvus server (its listing: engines/milvus/segments.py) and its storage (its files)."""

    def __init__(self, source: Any, storage: BlobStore) -> None:
        self.source = source
        self.storage = storage
        self.display = storage.display
        self.bytes_read = 0
        self.flush_ts: int | None = None
        self._listing: SegmentListing | None = None
        self._segments: dict[int, Segment] = {}

    def _get(self, path: str) -> bytes:
        data = self.storage.get(path)
        self.bytes_read += len(data)
        return data

    def segments(self, spec: CollectionSpec) -> list[SegmentFiles]:
        listing = list_segments(self.source, spec.name, self.storage, count=False)
        self._listing = listing
        self.flush_ts = listing.flush_ts or None
        self._segments = {s.segment_id: s for s in listing.segments}
        out = []
        for s in sorted(listing.segments, key=lambda s: (s.partition, s.segment_id)):
            files = tuple((fid, f.path, f.size) for fid in sorted(s.binlogs) for f in s.binlogs[fid])
            out.append(SegmentFiles(s.segment_id, s.partition, s.rows, files))
        return out

    def deletes(self, spec: CollectionSpec, segments: list[SegmentFiles], into: Deletes) -> None:
        for seg in segments:
            for f in self._segments[seg.segment_id].deltalogs:
                log = read_delta_log(self._get(f.path))
                into.add(log.pks, log.timestamps)

    def _logs(self, segment: SegmentFiles, field_id: int) -> list[str]:
        return [f.path for f in self._segments[segment.segment_id].binlogs.get(field_id, ())]  # in log order

    def _field_ids(self) -> dict[str, int]:
        assert self._listing is not None, "segments() lists them first"
        ids = dict(self._listing.field_ids)
        if DYNAMIC_FIELD in ids:
            ids[DYNAMIC_COLUMN] = ids[DYNAMIC_FIELD]
        return ids

    def keys(self, spec: CollectionSpec, segment: SegmentFiles) -> tuple[Any, Any]:
        pk = self._field_ids()[spec.primary.name]
        keys = [read_insert_log(self._get(p), spec.primary).column.values for p in self._logs(segment, pk)]
        ts = [np.asarray(read_insert_log(self._get(p)).column.values, dtype=np.int64)
              for p in self._logs(segment, TIMESTAMP_FIELD)]
        return join_keys(keys), (np.concatenate(ts) if ts else np.zeros(0, dtype=np.int64)).astype(np.uint64)

    def groups(self, spec: CollectionSpec, segment: SegmentFiles, partition: str) -> Iterator[LogGroup]:
        """The segment's aligned groups of insert logs (log i of every field), each fetched when reached, to be
        decoded as rows of ``partition`` (in a worker process: ops/segment_backup.py)."""
        files = self._segments[segment.segment_id].binlogs
        inner = getattr(self.storage, "inner", None)  # the ReadOnlyStore's
        folder = inner if isinstance(inner, LocalStore) else None
        if folder is None:
            binlogs = {fid: _Fetched(self, [f.path for f in logs]) for fid, logs in files.items()}
            yield from segment_groups(spec, self._field_ids(), binlogs, partition)
            return
        # a folder on this machine: each file is read where the group is decoded (a worker process reads it
        # itself instead of receiving its bytes through a pipe); its size as listed counts as read
        paths: Any = {fid: [(f.path, f.size) for f in logs] for fid, logs in files.items()}
        for group in segment_groups(spec, self._field_ids(), paths, partition):
            listed: Any = group.files
            self.bytes_read += sum(size for _, size in listed.values())
            yield dataclasses.replace(group, files=_LocalFiles(folder, {fid: p for fid, (p, _) in listed.items()}))

    def changed(self, spec: CollectionSpec, segments: list[SegmentFiles]) -> str | None:
        if self._listing is None:
            return None
        changes = recheck(self.source, self.storage, self._listing)
        return "; ".join(changes) if changes else None


class _Fetched(Sequence[bytes]):
    """A field's binlogs, each fetched from the storage when segment_groups reaches it (and not kept)."""

    def __init__(self, reader: MilvusSegmentReader, paths: list[str]) -> None:
        self.reader = reader
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice):
            return [self.reader._get(p) for p in self.paths[i]]
        return self.reader._get(self.paths[i])


class _LocalFiles(Mapping[int, bytes | memoryview]):
    """A log group's files in a local folder, each mapped into memory when asked for (and not kept): picklable,
    read by the worker process that decodes the group.

    Mapped, not read: the server's files are in the page cache already (it wrote them), and a compacted segment's
    log holds a field's whole column, hundreds of MB that read() would copy into memory the process takes anew for
    every group. A map reads the cached pages where they are, and pyarrow decodes from them without a copy. The
    server writes a binlog once and never truncates it; its garbage collection removes files, which only unlinks
    them (a mapped file stays readable until it is unmapped)."""

    def __init__(self, folder: LocalStore, paths: dict[int, str]) -> None:
        self.folder = folder
        self.paths = paths

    def __getitem__(self, field_id: int) -> bytes | memoryview:
        key = self.paths[field_id]
        path = self.folder.path(key)  # a listed path is checked as the store checks its keys (ValueError: none)
        try:
            with open(path, "rb") as f:
                return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        except (OSError, ValueError):  # ValueError: an empty file cannot be mapped; errors as the store gives them
            return self.folder.get(key)

    def __iter__(self) -> Iterator[int]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)
