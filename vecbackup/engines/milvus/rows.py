"""Rows (what pymilvus queries return and inserts take) <-> columnar chunks (vecbackup.format.codec). Pure."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from vecbackup.errors import Unsupported, VecbackupError
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, VECTOR_DTYPES, CollectionSpec, FieldType, vector_width
from vecbackup.times import instant_micros, instant_text


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(d, default=str))


def _vector_bytes(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, np.ndarray):
        return v.tobytes()
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], (bytes, bytearray)):
        return bytes(v[0])  # pymilvus returns byte vectors as [b"..."]
    return np.asarray(v).tobytes()


def instant_of(field: str, value: Any) -> int:
    """A TIMESTAMPTZ value as Milvus returns it (ISO 8601 text with an offset, or already microseconds) ->
    microseconds since the epoch; VecbackupError naming the field for anything else."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        return instant_micros(value)
    except (TypeError, ValueError) as e:
        raise VecbackupError(f"field {field!r}: TIMESTAMPTZ value {value!r} is not a time vecbackup can keep "
                             f"exactly ({e})") from None


def instants(field: str, values: list[Any]) -> np.ndarray:
    """TIMESTAMPTZ values (None at nulls) -> int64 microseconds, 0 at nulls."""
    return np.array([0 if v is None else instant_of(field, v) for v in values], dtype="<i8")


def texts_of_instants(values: Any, valid: np.ndarray | None) -> list[Any]:
    """A TIMESTAMPTZ column (microseconds) -> the ISO 8601 text Milvus takes (``...Z``), None at nulls."""
    ok = valid.tolist() if valid is not None else None
    return [instant_text(v) if ok is None or ok[i] else None for i, v in enumerate(np.asarray(values).tolist())]


def default_of(field: str, ftype: FieldType, raw: Any) -> Any:
    """A field's default value as the manifest records it: a ValueField unwrapped; a TIMESTAMPTZ's as microseconds
    (Milvus reports ``timestamptz_data``), a GEOMETRY's as its WKT text."""
    if raw is not None and hasattr(raw, "WhichOneof"):
        which = raw.WhichOneof("data")
        raw = getattr(raw, which) if which else None
    if raw is None:
        return None
    if ftype is FieldType.TIMESTAMPTZ:
        return instant_of(field, raw)
    if ftype is FieldType.GEOMETRY and not isinstance(raw, str):
        raise Unsupported(f"field {field!r}: a GEOMETRY default value of type {type(raw).__name__} (not WKT text) "
                          "is not supported yet")
    return raw


def rows_to_chunk(spec: CollectionSpec, partition: str, rows: list[dict[str, Any]]) -> Chunk:
    """pymilvus query rows -> a columnar chunk."""
    n = len(rows)
    columns: dict[str, Column] = {}
    names = {f.name for f in spec.fields}  # a function's output is no dynamic field either
    for f in spec.stored_fields:
        raw = [r.get(f.name) for r in rows]
        valid = None
        if any(v is None for v in raw):
            valid = np.fromiter((v is not None for v in raw), dtype=bool, count=n)
        t = f.type
        if t in SCALAR_DTYPES:
            values: Any = np.array([0 if v is None else v for v in raw], dtype=SCALAR_DTYPES[t])
        elif t is FieldType.TIMESTAMPTZ:
            values = instants(f.name, raw)
        elif t is FieldType.FLOAT_VECTOR:
            width = vector_width(t, f.dim or 0)
            values = np.array([v if v is not None else [0.0] * width for v in raw], dtype="<f4").reshape(n, width)
        elif t in VECTOR_DTYPES:
            width = vector_width(t, f.dim or 0)
            itemsize = np.dtype(VECTOR_DTYPES[t]).itemsize
            zero = bytes(width * itemsize)
            buf = b"".join(zero if v is None else _vector_bytes(v) for v in raw)
            values = np.frombuffer(buf, dtype=VECTOR_DTYPES[t]).reshape(n, width)
        elif t is FieldType.SPARSE_FLOAT_VECTOR:
            values = [None if v is None else {int(k): float(x) for k, x in v.items()} for v in raw]
        else:  # VARCHAR, JSON, ARRAY, GEOMETRY (WKT text)
            values = raw
        columns[f.name] = Column(values, valid)
    if spec.enable_dynamic_field:
        columns[DYNAMIC_COLUMN] = Column([{k: v for k, v in r.items() if k not in names} for r in rows])
    return Chunk(partition=partition, num_rows=n, columns=columns)


def chunk_to_rows(spec: CollectionSpec, chunk: Chunk, *, keep_ids: bool = True) -> list[dict[str, Any]]:
    """A decoded chunk -> rows for MilvusClient.insert."""
    n = chunk.num_rows
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for f in spec.stored_fields:  # Milvus refuses values for a function's output
        if f.is_primary and f.auto_id and not keep_ids:
            continue
        col = chunk.columns[f.name]
        t = f.type
        if t in SCALAR_DTYPES or t is FieldType.FLOAT_VECTOR:
            values: list[Any] = col.values.tolist()  # type: ignore[union-attr]
        elif t in VECTOR_DTYPES:
            arr = col.values
            values = [arr[i].tobytes() for i in range(n)]
        elif t is FieldType.TIMESTAMPTZ:
            values = texts_of_instants(col.values, col.valid)
        else:
            values = list(col.values)
        if col.valid is not None:
            for i in np.flatnonzero(~col.valid):
                values[i] = None
        name = f.name
        for row, v in zip(rows, values, strict=True):
            row[name] = v
    if spec.enable_dynamic_field and DYNAMIC_COLUMN in chunk.columns:
        for row, extra in zip(rows, chunk.columns[DYNAMIC_COLUMN].values, strict=True):
            if extra:
                for k, v in extra.items():
                    row.setdefault(k, v)
    return rows
