"""Insert a decoded chunk as columns: milvus-proto's ``InsertRequest`` built straight from the chunk's arrays (float
vectors as one packed buffer, byte vectors as one ``bytes``), without the Python dict per row and float per value
that ``MilvusClient.insert`` needs. The mirror of columnar.py, for restore.

:func:`insert_request` is pure (chunk in, protobuf out) and tested against what pymilvus builds from the same rows.
Anything it does not expect raises :class:`~vecbackup.engines.milvus.columnar.Unfit`; the sink then inserts those
rows through pymilvus and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from vecbackup.engines.milvus.columnar import _BYTES_MEMBER, _SCALAR_MEMBER, Unfit
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, CollectionSpec, Field, FieldType
from vecbackup.times import instant_text

#: the wire type of ``repeated float/double data = 1`` packed: tag 0x0A (field 1, length-delimited)
_PACKED_TAG = b"\x0a"
_DYNAMIC_FIELD = "$meta"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _packed(values: np.ndarray, dtype: str) -> bytes:
    """``values`` as the serialization of a message whose only field is ``repeated <float|double> data = 1``."""
    raw = np.ascontiguousarray(values, dtype=dtype).tobytes()
    return _PACKED_TAG + _varint(len(raw)) + raw if raw else b""


def _present(col: Column, n: int) -> tuple[list[bool] | None, np.ndarray | None]:
    """The validity flags to send (None: the field takes none) and the rows whose values are sent."""
    if col.valid is None:
        return None, None
    return col.valid.tolist(), np.flatnonzero(col.valid)


def _values(col: Column, keep: np.ndarray | None) -> Any:
    if keep is None:
        return col.values
    if isinstance(col.values, np.ndarray):
        return col.values[keep]
    return [col.values[i] for i in keep.tolist()]


def _array_cell(sf: Any, element: FieldType, value: Any) -> None:
    member = _SCALAR_MEMBER.get(element)
    if member is None or element is FieldType.JSON:
        raise Unfit(f"ARRAY of {element.value}")
    getattr(sf, member).data.extend(value)


def field_data(pb: Any, f: Field, col: Column, n: int, takes_valid: bool) -> Any:
    """One column as a ``schema_pb2.FieldData`` (``pb``: the module). Null rows are left out of the data and marked
    in ``valid_data``, as pymilvus does."""
    fd = pb.FieldData(field_name=f.name, type=_dtype(pb, f.type))
    valid, keep = _present(col, n)
    if takes_valid:
        fd.valid_data.extend(valid if valid is not None else [True] * n)
    elif valid is not None and not all(valid):
        raise Unfit(f"field {f.name!r} has nulls but is not nullable")
    values = _values(col, keep)
    t = f.type
    if t in (FieldType.FLOAT, FieldType.DOUBLE):
        packed = _packed(values, "<f4" if t is FieldType.FLOAT else "<f8")
        getattr(fd.scalars, _SCALAR_MEMBER[t]).MergeFromString(packed)
    elif t in SCALAR_DTYPES:
        getattr(fd.scalars, _SCALAR_MEMBER[t]).data.extend(np.asarray(values).tolist())
    elif t in (FieldType.VARCHAR, FieldType.GEOMETRY):  # GEOMETRY: WKT text (geometry_wkt_data), as pymilvus
        getattr(fd.scalars, _SCALAR_MEMBER[t]).data.extend(values)
    elif t is FieldType.TIMESTAMPTZ:  # ISO 8601 text in UTC (string_data), as pymilvus sends it
        fd.scalars.string_data.data.extend([instant_text(v) for v in np.asarray(values).tolist()])
    elif t is FieldType.JSON:
        fd.scalars.json_data.data.extend([orjson.dumps(v) for v in values])
    elif t is FieldType.ARRAY:
        assert f.element_type is not None
        for v in values:
            _array_cell(fd.scalars.array_data.data.add(), f.element_type, v)
    elif t is FieldType.FLOAT_VECTOR:
        fd.vectors.dim = int(f.dim or 0)
        fd.vectors.float_vector.MergeFromString(_packed(values, "<f4"))
    elif t in _BYTES_MEMBER:
        fd.vectors.dim = int(f.dim or 0)
        setattr(fd.vectors, _BYTES_MEMBER[t], np.ascontiguousarray(values).tobytes())
    elif t is FieldType.SPARSE_FLOAT_VECTOR:  # interleaved (uint32 index, float32 value), by index; no dim (as
        pairs = np.dtype([("i", "<u4"), ("v", "<f4")])  # pymilvus's row insert: the server works it out)
        for row in values:
            items = sorted(row.items())
            cell = np.empty(len(items), dtype=pairs)
            if items:
                cell["i"], cell["v"] = zip(*items, strict=True)
            fd.vectors.sparse_float_vector.contents.append(cell.tobytes())
    else:
        raise Unfit(f"field {f.name!r} has type {t.value}")
    return fd


def _dtype(pb: Any, t: FieldType) -> int:
    """schema.proto's DataType number of a type (pymilvus's DataType names are FieldType's values)."""
    from pymilvus import DataType

    member = getattr(DataType, t.value, None)
    if member is None:
        raise Unfit(f"this pymilvus has no {t.value}")
    return int(member)


def insert_request(spec: CollectionSpec, chunk: Chunk, collection: str, partition: str, *, keep_ids: bool) -> Any:
    """The ``milvus_pb2.InsertRequest`` inserting ``chunk``'s rows into ``collection`` (pure)."""
    try:
        from pymilvus.grpc_gen import milvus_pb2, schema_pb2
    except ImportError as e:  # pragma: no cover - pymilvus moved its generated code
        raise Unfit(f"pymilvus internals not as expected ({e})") from None
    n = chunk.num_rows
    request = milvus_pb2.InsertRequest(collection_name=collection, partition_name=partition, num_rows=n)
    for f in spec.stored_fields:  # Milvus refuses values for a function's output
        if f.is_primary and f.auto_id and not keep_ids:
            continue
        col = chunk.columns.get(f.name)
        if col is None:
            raise Unfit(f"the chunk has no column {f.name!r}")
        takes_valid = f.nullable or f.default_value is not None
        request.fields_data.append(field_data(schema_pb2, f, col, n, takes_valid))
    if spec.enable_dynamic_field:
        extra = chunk.columns.get(DYNAMIC_COLUMN)
        meta = schema_pb2.FieldData(field_name=_DYNAMIC_FIELD, type=schema_pb2.DataType.Value("JSON"),
                                    is_dynamic=True)
        rows = extra.values if extra is not None else [{}] * n
        meta.scalars.json_data.data.extend([orjson.dumps(v or {}) for v in rows])
        request.fields_data.append(meta)
    return request


__all__ = ["field_data", "insert_request"]
