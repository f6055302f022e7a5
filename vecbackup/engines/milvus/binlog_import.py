"""A restore through the Milvus server's binlog import (the Import RPC with the ``backup`` option): the backup's
chunks written as the server's own insert binlogs (format/binlog_write.py), staged where the server reads them.

This module is the pure part: which collections can go that way (:func:`refusal`), the field ids the files must
carry (:func:`target_field_ids`), and one task's files (:class:`BinlogGroup`). What the 2.3.5 server reads,
measured (docs/SCALING.md, "The server's binlog import"):

* two paths per task, an insert folder and a delta folder (``""``: no deletions). The insert folder holds
  ``<segment>/<field id>/<log>``; the server takes the segment and field ids from the folder names alone, so one
  task may hold several segments (a restore writes one per task);
* the field folders are the **target** collection's field ids, every field's (the dynamic field ``$meta``
  included), plus ``0`` (row ids) and ``1`` (insert timestamps);
* the server sorts each field's logs by name and reads log *i* of every field together: the names are the log
  order, zero-padded, and log *i* of every field holds the same rows (one chunk of the backup);
* it keeps the recorded primary keys, an auto-id collection's too (the numpy and JSON imports assign new ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vecbackup.engines.milvus.bulk import refusal as files_refusal
from vecbackup.format.binlog_write import encodable, system_logs, write_insert_log
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, FieldType

#: the folder of a task's insert logs, under the task's folder (vecbackup-import/<staging>/<task>/)
INSERT_DIR = "insert_log"


def refusal(spec: CollectionSpec, keep_ids: bool) -> str | None:
    """Why this collection cannot be restored through the binlog import, or None. Pure. Beside what no import
    takes (bulk.refusal), every field must be a type 2.3 writes into binlogs; an auto-id key is kept, so new ids
    (``--new-ids``) are the files' import."""
    for f in spec.fields:
        if not encodable(f.type, f.element_type):
            return f"field {f.name!r} is a {f.type_name}, which vecbackup does not write into Milvus 2.3 binlogs"
        if f.is_primary and f.auto_id and not keep_ids:
            return (f"primary key {f.name!r} is auto-id and new ids were asked for, but the binlog import keeps "
                    "the recorded keys")
    return files_refusal(spec, False)  # False: an auto-id key is not the files' concern here


def target_field_ids(described: Sequence[Mapping[str, Any]], dynamic: bool) -> dict[str, int]:
    """Field name -> field id of a collection as the server describes it (``describe_collection()["fields"]``), with
    ``$meta`` for the dynamic fields: 2.3 leaves that field out of its description and numbers it after the others
    (field ids count from 100 in schema order; ``$meta`` comes last)."""
    ids = {str(f["name"]): int(f["field_id"]) for f in described}
    if dynamic and DYNAMIC_COLUMN not in ids:
        ids[DYNAMIC_COLUMN] = max(ids.values(), default=99) + 1
    return ids


def log_name(i: int) -> str:
    """The file name of a field's log ``i``: the server reads them in name order."""
    return f"{i:06d}"


@dataclass
class BinlogGroup:
    """Consecutive chunks of one partition written as one segment's insert logs, the files of one import task:
    chunk *i* is log *i* of every field. Each chunk is encoded when offered, so the group holds bytes, not rows,
    and its size is what its files take."""

    spec: CollectionSpec
    partition: str
    field_ids: Mapping[str, int]  # the staging collection's, target_field_ids
    segment_id: int
    first_row_id: int  # the row id of the group's first row (unique within a restore)
    ts: int  # the hybrid timestamp every row is written at
    files: dict[str, bytes] = field(default_factory=dict)
    rows: int = 0
    logs: int = 0
    size: int = 0

    def offer(self, chunk: Chunk, limit: int) -> bool:
        """Add ``chunk`` unless the group's files already take ``limit`` bytes (a group holds at least one chunk, and
        ends at most one chunk past the limit)."""
        if self.logs and self.size >= limit:
            return False
        self._add(chunk)
        return True

    def _add(self, chunk: Chunk) -> None:
        n, seg, name = chunk.num_rows, self.segment_id, log_name(self.logs)
        logs = system_logs(self.first_row_id + self.rows, n, segment_id=seg, ts=self.ts)
        for f in self.spec.stored_fields:
            logs[self.field_ids[f.name]] = write_insert_log(
                f.type, chunk.columns[f.name], n, field_id=self.field_ids[f.name], segment_id=seg, ts=self.ts,
                dim=f.dim, element_type=f.element_type)
        if self.spec.enable_dynamic_field:
            meta = chunk.columns.get(DYNAMIC_COLUMN) or Column([{}] * n)
            fid = self.field_ids[DYNAMIC_COLUMN]
            logs[fid] = write_insert_log(FieldType.JSON, meta, n, field_id=fid, segment_id=seg, ts=self.ts)
        for fid, data in logs.items():
            self.files[f"{INSERT_DIR}/{seg}/{fid}/{name}"] = data
            self.size += len(data)
        self.rows += n
        self.logs += 1

    def encode(self, limit: int) -> dict[str, bytes]:
        """The group's files by name under the task's folder (``insert_log/<segment>/<field id>/<log>``)."""
        del limit
        return self.files


__all__ = ["INSERT_DIR", "BinlogGroup", "log_name", "refusal", "target_field_ids"]
