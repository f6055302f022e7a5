"""A Milvus server's sealed segments read from its own storage (ops/segment_backup.py; the SegmentReader protocol).

The server keeps each sealed segment's rows in binlogs (format/binlog.py): one file per field per flush under
``insert_log/<collection id>/<partition id>/<segment id>/<field id>/<log id>``, and deletes under
``delta_log/<collection id>/<partition id>/<segment id>/<log id>``, below the root of its storage (a standalone
server's local storage folder, or the cluster's bucket and root path). This reader lists the segments the server
reports as flushed (storage also holds the files of segments compaction replaced, until garbage collection removes
them) and decodes their files a flush at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from vecbackup.errors import Unsupported
from vecbackup.format.binlog import TIMESTAMP_FIELD, read_delta_log, read_insert_log
from vecbackup.format.codec import Chunk, Column, take_rows
from vecbackup.format.segments import Deletes
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec
from vecbackup.sources.base import SegmentFiles, SegmentReader
from vecbackup.stores.base import BlobStore, ObjectNotFound


def segment_reader(engine: Any, url: str) -> SegmentReader:
    """The reader of ``engine``'s segments from its storage at ``url``; Unsupported where there are none to read."""
    from vecbackup.sources.milvus.segments import open_server_storage
    from vecbackup.sources.milvus.source import MilvusSource

    if not isinstance(engine, MilvusSource):
        raise Unsupported(f"{engine.display} keeps no Milvus segment files: --segments-from reads a Milvus "
                          "server's", hint="back up without --segments-from")
    if engine.url.lite:
        raise Unsupported(f"Milvus Lite ({engine.display}) keeps no segment files: --segments-from reads a Milvus "
                          "server's", hint="back up without --segments-from (through the query path)")
    return MilvusSegmentReader(engine, open_server_storage(url))


class MilvusSegmentReader:
    """SegmentReader over a Milvus server (its listing) and its storage (its files)."""

    def __init__(self, source: Any, storage: BlobStore) -> None:
        from vecbackup.sources.milvus.segments import SegmentLister

        self.source = source
        self.storage = storage
        self.display = storage.display
        self.bytes_read = 0
        self._lister = SegmentLister(source, storage)
        self._deltas: dict[int, list[str]] = {}
        self._field_ids: dict[str, dict[str, int]] = {}

    def _get(self, path: str) -> bytes:
        data = self.storage.get(path)
        self.bytes_read += len(data)
        return data

    def segments(self, spec: CollectionSpec) -> list[SegmentFiles]:
        listing = self._lister.list(spec)
        self._field_ids[spec.name] = dict(listing.field_ids)
        self._deltas = {s.segment_id: list(s.deltalogs) for s in listing.segments}
        return [SegmentFiles(s.segment_id, s.partition, s.rows, tuple(s.files)) for s in listing.segments]

    def deletes(self, spec: CollectionSpec, segments: list[SegmentFiles], into: Deletes) -> None:
        for seg in segments:
            for path in self._deltas.get(seg.segment_id, ()):
                log = read_delta_log(self._get(path))
                into.add(log.pks, log.timestamps)

    def _logs(self, seg: SegmentFiles, field_id: int) -> list[str]:
        return [path for fid, path, _ in seg.files if fid == field_id]  # in log order (the lister sorts them)

    def keys(self, spec: CollectionSpec, segment: SegmentFiles) -> tuple[Any, Any]:
        pk = self._field_ids[spec.name][spec.primary.name]
        keys = [read_insert_log(self._get(p), spec.primary).column.values for p in self._logs(segment, pk)]
        ts = [read_insert_log(self._get(p)).column.values for p in self._logs(segment, TIMESTAMP_FIELD)]
        return _join(keys), np.concatenate([np.asarray(t, dtype=np.int64) for t in ts]).astype(np.uint64) \
            if ts else np.zeros(0, dtype=np.uint64)

    def read(self, spec: CollectionSpec, segment: SegmentFiles, batch_size: int) -> Iterator[tuple[Chunk, Any]]:
        ids = self._field_ids[spec.name]
        names = [c.name for c in spec.columns]
        missing = [n for n in names if n not in ids]
        if missing:
            raise Unsupported(f"the server's binlogs of {spec.name!r} have no field id for {', '.join(missing)}")
        ts_logs = self._logs(segment, TIMESTAMP_FIELD)
        per_field = {n: self._logs(segment, ids[n]) for n in names}
        for n, logs in per_field.items():
            if len(logs) != len(ts_logs):
                raise Unsupported(f"segment {segment.segment_id} of {spec.name!r}: field {n!r} has {len(logs)} "
                                  f"binlogs, the timestamps {len(ts_logs)}; a layout vecbackup does not read",
                                  hint="back up without --segments-from (through the query path)")
        for i, ts_path in enumerate(ts_logs):
            ts = np.asarray(read_insert_log(self._get(ts_path)).column.values, dtype=np.int64).astype(np.uint64)
            columns: dict[str, Column] = {}
            for n in names:
                f = None if n == DYNAMIC_COLUMN else spec.field(n)
                log = read_insert_log(self._get(per_field[n][i]), f)
                if log.num_rows != len(ts):
                    raise Unsupported(f"segment {segment.segment_id}: binlog {i} of field {n!r} holds "
                                      f"{log.num_rows} rows, its timestamps {len(ts)}")
                columns[n] = log.column
            chunk = Chunk(segment.partition, len(ts), columns)
            for start in range(0, len(ts), batch_size):
                rows = np.arange(start, min(start + batch_size, len(ts)))
                piece = chunk if len(rows) == len(ts) else take_rows(chunk, rows)
                yield piece, ts[rows]
            del chunk, columns

    def changed(self, spec: CollectionSpec, segments: list[SegmentFiles]) -> str | None:
        try:
            now = self._lister.list(spec, flush=False)
        except ObjectNotFound as e:
            return str(e)
        was = {s.segment_id for s in segments}
        gone = was - {s.segment_id for s in now.segments}
        if gone:
            return f"{len(gone)} segment(s) compacted into others since the listing"
        return None


def _join(parts: list[Any]) -> Any:
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [k for p in parts for k in p]
