"""Milvus 2.3 insert binlogs written from vecbackup's columns: what a restore stages for the server's binlog import
(``restore --bulk-import-via URL --bulk-import-format binlog``).

Pure functions, values in and bytes out: the inverse of format/binlog.py's ``read_insert_log`` for the types a 2.3
server holds, laid out as the server itself writes them (docs/FORMAT.md, "Milvus binlogs"; the real files in
tests/golden/binlogs-2.3 are the model): the magic number, a descriptor event (collection, partition, segment and
field id, start and end timestamp, the payload's data type, the post-header lengths ``52, 16 x 7`` and the extras
``{"original_size": "<bytes>"}``), then one insert event whose payload is a Parquet file of one required column
``val``:

=====================  ========================  =============================================================
field type             Parquet column            value
=====================  ========================  =============================================================
BOOL, INT8..INT64      boolean, int8..int64      as is (INT8 and INT16 are Parquet INT32, annotated)
FLOAT, DOUBLE          float, double             as is
VARCHAR                string                    as is (data type 21, VarChar)
JSON (and ``$meta``)   binary                    the value as compact JSON (orjson)
ARRAY                  binary                    a serialized schemapb.ScalarField of the element type
FLOAT_VECTOR           fixed_size_binary[4*dim]  little-endian float32
BINARY_VECTOR          fixed_size_binary[dim/8]  the bits, as stored
=====================  ========================  =============================================================

Besides the schema's fields a segment has the row ids (field 0) and insert timestamps (field 1), INT64 each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from vecbackup.format.binlog import (
    _DESCRIPTOR,
    _EVENT_TS,
    _HEADER,
    _I32,
    _MAGIC,
    _MEMBERS,
    DESCRIPTOR_EVENT,
    EVENT_TYPES,
    INSERT_EVENT,
    MAGIC,
    ROW_ID_FIELD,
    TIMESTAMP_FIELD,
    _fast_class,
)
from vecbackup.format.codec import Column
from vecbackup.schema import SCALAR_DTYPES, FieldType

#: vecbackup's types -> Milvus' schemapb.DataType numbers, as a 2.3 server writes them into a descriptor
DATA_TYPE_CODES: dict[FieldType, int] = {
    FieldType.BOOL: 1, FieldType.INT8: 2, FieldType.INT16: 3, FieldType.INT32: 4, FieldType.INT64: 5,
    FieldType.FLOAT: 10, FieldType.DOUBLE: 11, FieldType.VARCHAR: 21, FieldType.ARRAY: 22, FieldType.JSON: 23,
    FieldType.BINARY_VECTOR: 100, FieldType.FLOAT_VECTOR: 101,
}
#: the post-header lengths a 2.3 server lists in every descriptor: the descriptor's fixed part (52 bytes), then 16
#: (start and end timestamp) for each other event type
POST_HEADER_LENGTHS = bytes([_DESCRIPTOR.size] + [_EVENT_TS.size] * (EVENT_TYPES - 1))
#: ScalarField member number of an ARRAY's element type (schema.proto; format/binlog.py reads the same)
_ARRAY_MEMBER = {FieldType.BOOL: 1, FieldType.INT8: 2, FieldType.INT16: 2, FieldType.INT32: 2, FieldType.INT64: 3,
                 FieldType.FLOAT: 4, FieldType.DOUBLE: 5, FieldType.VARCHAR: 6}
#: Milvus' logical bits of a hybrid timestamp: physical milliseconds << 18 | a counter
LOGICAL_BITS = 18


def hybrid_ts(ms: int) -> int:
    """The Milvus hybrid timestamp of physical time ``ms`` (milliseconds since the epoch), counter 0."""
    return ms << LOGICAL_BITS


def encodable(ftype: FieldType, element_type: FieldType | None = None) -> bool:
    """Whether write_insert_log writes this type (the types a 2.3 server holds)."""
    if ftype is FieldType.ARRAY:
        return element_type in _ARRAY_MEMBER
    return ftype in DATA_TYPE_CODES


def _arrow(ftype: FieldType, column: Column, rows: int, dim: int | None, element_type: FieldType | None) -> Any:
    import pyarrow as pa

    if column.valid is not None and not bool(np.all(column.valid)):
        raise ValueError(f"a {ftype.value} column with nulls: a 2.3 binlog cannot hold them")
    values = column.values
    if ftype in SCALAR_DTYPES:
        arr = np.ascontiguousarray(np.asarray(values, dtype=SCALAR_DTYPES[ftype]))
        if arr.shape != (rows,):
            raise ValueError(f"{ftype.value} column of shape {arr.shape} for {rows} rows")
        return pa.array(arr)
    if ftype in (FieldType.FLOAT_VECTOR, FieldType.BINARY_VECTOR):
        if dim is None or dim <= 0:
            raise ValueError(f"a {ftype.value} needs its dim")
        width = 4 * dim if ftype is FieldType.FLOAT_VECTOR else dim // 8
        arr = np.ascontiguousarray(np.asarray(values, dtype="<f4" if ftype is FieldType.FLOAT_VECTOR else np.uint8))
        if arr.nbytes != rows * width:
            raise ValueError(f"{ftype.value}({dim}) column of {arr.nbytes} bytes for {rows} rows")
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows, [None, pa.py_buffer(arr)])
    if len(values) != rows:
        raise ValueError(f"{ftype.value} column of {len(values)} values for {rows} rows")
    if ftype is FieldType.VARCHAR:
        return pa.array(values, type=pa.string())
    if ftype is FieldType.JSON:
        dumps = orjson.dumps
        return pa.array([b"{}" if v is None else dumps(v) for v in values], type=pa.binary())
    if ftype is FieldType.ARRAY:
        if element_type not in _ARRAY_MEMBER:
            raise ValueError(f"an ARRAY of {element_type} is not a 2.3 type")
        return pa.array(scalar_fields(values, element_type), type=pa.binary())
    raise ValueError(f"a {ftype.value} field is not a 2.3 type")


def scalar_fields(values: Sequence[Any] | np.ndarray, element_type: FieldType) -> list[bytes]:
    """Each ARRAY value as the serialized schemapb.ScalarField a 2.3 server stores (the element type's member set,
    an empty array included)."""
    cls = _fast_class()
    if not cls:  # pragma: no cover - protobuf comes with pymilvus
        raise ValueError("the protobuf runtime is not installed: no ARRAY values")
    member = _MEMBERS[_ARRAY_MEMBER[element_type]][0]
    out = []
    for v in values:
        msg = cls()
        data = getattr(msg, member)
        data.SetInParent()
        data.data.extend(v.tolist() if isinstance(v, np.ndarray) else list(v))
        out.append(msg.SerializeToString())
    return out


def _parquet(arr: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([arr], schema=pa.schema([pa.field("val", arr.type, nullable=False)]))
    sink = pa.BufferOutputStream()
    # no dictionary, no statistics: vectors and JSON gain nothing from either; snappy is cheap where it does not
    pq.write_table(table, sink, compression="snappy", use_dictionary=False, write_statistics=False,
                   row_group_size=max(len(arr), 1))
    return sink.getvalue().to_pybytes()


def _original_size(ftype: FieldType, arr: Any, rows: int, values: Any, element_type: FieldType | None) -> int:
    """The extras' ``original_size`` as 2.3 counts it (its memory estimate, GetMemorySize): a byte per BOOL, the
    values' bytes of other numbers, a vector's bytes plus 4 (its dimension), a VARCHAR's or JSON's bytes plus 16 per
    value, and of an ARRAY its elements' bytes (a string element's plus 16), not the serialized ScalarField's."""
    if ftype is FieldType.BOOL:
        return rows
    if ftype in SCALAR_DTYPES:
        return rows * np.dtype(SCALAR_DTYPES[ftype]).itemsize
    if ftype in (FieldType.FLOAT_VECTOR, FieldType.BINARY_VECTOR):
        return rows * arr.type.byte_width + 4
    if ftype is FieldType.ARRAY:
        assert element_type is not None  # _arrow refused an ARRAY without one
        if element_type is FieldType.VARCHAR:
            return sum(len(str(s).encode()) + 16 for v in values for s in v)
        return np.dtype(SCALAR_DTYPES[element_type]).itemsize * sum(len(v) for v in values)
    import pyarrow.compute as pc

    return int(pc.sum(pc.binary_length(arr)).as_py() or 0) + 16 * rows  # VARCHAR, JSON


def write_insert_log(ftype: FieldType, column: Column, rows: int, *, field_id: int, segment_id: int, ts: int,
                     dim: int | None = None, element_type: FieldType | None = None, collection_id: int = 0,
                     partition_id: int = 0) -> bytes:
    """One insert binlog holding ``column`` (``rows`` values of a field of type ``ftype``) as field ``field_id``
    of segment ``segment_id``, written at hybrid timestamp ``ts``. ValueError for a type a 2.3 server does not
    hold, nulls, or values that do not fit the type."""
    if ftype not in DATA_TYPE_CODES:
        raise ValueError(f"a {ftype.value} field is not a 2.3 type")
    arr = _arrow(ftype, column, rows, dim, element_type)
    payload = _parquet(arr)
    original = _original_size(ftype, arr, rows, column.values, element_type)
    extras = orjson.dumps({"original_size": str(original)})
    desc_data = _DESCRIPTOR.pack(collection_id, partition_id, segment_id, field_id, ts, ts, DATA_TYPE_CODES[ftype])
    desc_len = _HEADER.size + len(desc_data) + len(POST_HEADER_LENGTHS) + _I32.size + len(extras)
    first = _MAGIC.size + desc_len
    event_len = _HEADER.size + _EVENT_TS.size + len(payload)
    return b"".join([
        _MAGIC.pack(MAGIC),
        _HEADER.pack(ts, DESCRIPTOR_EVENT, desc_len, first), desc_data, POST_HEADER_LENGTHS, _I32.pack(len(extras)),
        extras,
        _HEADER.pack(ts, INSERT_EVENT, event_len, first + event_len), _EVENT_TS.pack(ts, ts), payload,
    ])


def system_logs(first_row_id: int, rows: int, *, segment_id: int, ts: int) -> dict[int, bytes]:
    """The row-id (field 0: ``first_row_id`` on, one per row) and timestamp (field 1: ``ts`` for every row) logs
    of ``rows`` rows."""
    ids = np.arange(first_row_id, first_row_id + rows, dtype=np.int64)
    stamps = np.full(rows, ts, dtype=np.int64)
    return {
        ROW_ID_FIELD: write_insert_log(FieldType.INT64, Column(ids), rows, field_id=ROW_ID_FIELD,
                                       segment_id=segment_id, ts=ts),
        TIMESTAMP_FIELD: write_insert_log(FieldType.INT64, Column(stamps), rows, field_id=TIMESTAMP_FIELD,
                                          segment_id=segment_id, ts=ts),
    }


__all__ = ["DATA_TYPE_CODES", "POST_HEADER_LENGTHS", "encodable", "hybrid_ts", "scalar_fields", "system_logs",
           "write_insert_log"]
