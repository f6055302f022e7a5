"""Read a Milvus collection as columns: the Query RPC's ``FieldData`` (milvus-proto's ``schema.proto``: vectors as
packed arrays, scalars as typed arrays) straight into chunk columns, without the Python dict per row that pymilvus's
``query_iterator`` builds and ``rows_to_chunk`` takes apart again.

Pages the way ``query_iterator`` does (the same requests, through pymilvus's own connection: the same address,
TLS and credentials): a first request pins the read's MVCC timestamp (``session_ts``, or the client's clock from a
server that does not report one), then each page asks for ``pk > last`` with ``iterator`` and
``reduce_stop_for_best`` set, which makes the server answer in primary-key order. A page is checked for that order.

Anything the conversion does not expect (a type it does not know, a page out of order, pymilvus internals that
moved) raises :class:`Unfit` before the first chunk is returned; the caller then reads with the row path and says
so. :func:`columns_of` is pure (protobuf in, columns out) and tested on its own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from vecbackup.engines.milvus.rows import instants
from vecbackup.errors import VecbackupError
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, VECTOR_DTYPES, CollectionSpec, Field, FieldType

#: FieldType -> the ScalarField member holding its values
_SCALAR_MEMBER = {
    FieldType.BOOL: "bool_data", FieldType.INT8: "int_data", FieldType.INT16: "int_data",
    FieldType.INT32: "int_data", FieldType.INT64: "long_data", FieldType.FLOAT: "float_data",
    FieldType.DOUBLE: "double_data", FieldType.VARCHAR: "string_data", FieldType.JSON: "json_data",
    FieldType.GEOMETRY: "geometry_wkt_data",  # WKT text, as pymilvus reads and writes it (not geometry_data: WKB)
    FieldType.TIMESTAMPTZ: "string_data",  # ISO 8601 text with an offset, as pymilvus reads and writes it
}
#: FieldType -> the VectorField member holding its bytes (dense vectors other than float)
_BYTES_MEMBER = {
    FieldType.FLOAT16_VECTOR: "float16_vector", FieldType.BFLOAT16_VECTOR: "bfloat16_vector",
    FieldType.BINARY_VECTOR: "binary_vector", FieldType.INT8_VECTOR: "int8_vector",
}
_INT64_MAX = 2**63 - 1


#: gRPC status codes a request is sent again after, as pymilvus's own calls are (a server restarting, overloaded)
_TRANSIENT = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")


def send_with_retries(send: Any, attempts: int = 5, first_wait: float = 0.5, sleep: Any = None) -> Any:
    """``send()``, again after a transient gRPC error (waiting 0.5, 1, 2, 4 s); other errors and the last attempt's
    are raised. (A query is safe to repeat; an insert the server applied before the connection broke is inserted twice,
    which restore's final row count catches.)"""
    import time

    sleep = sleep or time.sleep
    for attempt in range(attempts):
        try:
            return send()
        except Exception as e:
            code = getattr(e, "code", None)  # grpc.RpcError: code() -> grpc.StatusCode
            name = getattr(code(), "name", "") if callable(code) else ""
            if name not in _TRANSIENT or attempt == attempts - 1:
                raise
            sleep(first_wait * 2**attempt)
    raise AssertionError("unreachable")


class Unfit(Exception):
    """The server's answer does not fit the columnar path; read this collection with the row path instead."""


def _packed(message: Any) -> bytes:
    """The packed payload of a message whose only field is ``repeated <scalar> data = 1`` (FloatArray): its own
    serialization minus the tag and the length varint. Numpy reads that without one Python float per value."""
    raw = message.SerializeToString()
    if not raw:
        return b""
    if raw[0] != 0x0A:
        raise Unfit(f"unexpected wire tag {raw[0]:#x} in a packed array")
    i, length, shift = 1, 0, 0
    while True:
        b = raw[i]
        length |= (b & 0x7F) << shift
        i += 1
        shift += 7
        if not b & 0x80:
            break
    if i + length != len(raw):
        raise Unfit("a packed array with trailing bytes")
    return raw[i:]


def _valid(fd: Any, n: int) -> np.ndarray | None:
    if not len(fd.valid_data):
        return None
    valid = np.fromiter(fd.valid_data, dtype=bool, count=len(fd.valid_data))
    if len(valid) != n:
        raise Unfit(f"field {fd.field_name!r}: {len(valid)} validity flags for {n} rows")
    return None if valid.all() else valid


def _expand(values: list[Any], valid: np.ndarray | None, n: int, fill: Any) -> list[Any]:
    """Values of the valid rows only (a server may leave nulls out) -> one per row, ``fill`` for the nulls."""
    if len(values) == n:
        return values
    if valid is None or len(values) != int(valid.sum()):
        raise Unfit(f"{len(values)} values for {n} rows")
    it = iter(values)
    return [next(it) if ok else fill for ok in valid.tolist()]


def _array_values(f: Field, rows: Any) -> list[Any]:
    assert f.element_type is not None
    member = _SCALAR_MEMBER.get(f.element_type)
    if member is None or f.element_type is FieldType.JSON:
        raise Unfit(f"field {f.name!r}: ARRAY of {f.element_type.value}")
    return [list(getattr(row, member).data) for row in rows]


def column_of(f: Field, fd: Any, n: int) -> Column:
    """One FieldData as the column rows_to_chunk would have built from the same rows."""
    t = f.type
    valid = _valid(fd, n)
    if t in SCALAR_DTYPES:
        data = getattr(fd.scalars, _SCALAR_MEMBER[t]).data
        values = np.asarray(_expand(list(data), valid, n, 0) if len(data) != n else data, dtype=SCALAR_DTYPES[t])
        if values.shape != (n,):
            raise Unfit(f"field {f.name!r}: {values.shape[0]} values for {n} rows")
        return Column(values, valid)
    if t is FieldType.FLOAT_VECTOR:
        dim = f.dim or 0
        buf = _packed(fd.vectors.float_vector)
        values = np.frombuffer(buf, dtype="<f4")
        if dim <= 0 or values.size != n * dim:
            raise Unfit(f"field {f.name!r}: {values.size} floats for {n} rows of dim {dim}")
        return Column(values.reshape(n, dim), valid)
    if t in _BYTES_MEMBER:
        raw = getattr(fd.vectors, _BYTES_MEMBER[t])
        dtype = np.dtype(VECTOR_DTYPES[t])
        width = (f.dim or 0) // 8 if t is FieldType.BINARY_VECTOR else (f.dim or 0)
        values = np.frombuffer(raw, dtype=dtype)
        if width <= 0 or values.size != n * width:
            raise Unfit(f"field {f.name!r}: {values.size} values for {n} rows of width {width}")
        return Column(values.reshape(n, width), valid)
    if t is FieldType.SPARSE_FLOAT_VECTOR:
        rows = []
        for blob in fd.vectors.sparse_float_vector.contents:
            pairs = np.frombuffer(blob, dtype=np.dtype([("i", "<u4"), ("v", "<f4")]))
            rows.append({int(i): float(v) for i, v in zip(pairs["i"].tolist(), pairs["v"].tolist(), strict=True)})
        return Column(_expand(rows, valid, n, None), valid)
    if t in (FieldType.VARCHAR, FieldType.GEOMETRY):
        data = getattr(fd.scalars, _SCALAR_MEMBER[t]).data
        if len(data) == 0 and n and (valid is None or valid.any()):
            raise Unfit(f"field {f.name!r}: no {_SCALAR_MEMBER[t]} for {t.value}")
        return Column(_expand(list(data), valid, n, None), valid)
    if t is FieldType.TIMESTAMPTZ:
        # a server may send the instants themselves (timestamptz_data, int64 microseconds)
        micros = getattr(getattr(fd.scalars, "timestamptz_data", None), "data", ())
        texts: list[Any] = list(micros) if len(micros) else list(fd.scalars.string_data.data)
        texts = _expand(texts, valid, n, None)
        if valid is not None:
            texts = [v if ok else None for v, ok in zip(texts, valid.tolist(), strict=True)]
        try:
            return Column(instants(f.name, texts), valid)
        except VecbackupError as e:
            raise Unfit(str(e)) from None
    if t is FieldType.JSON:
        loaded = [orjson.loads(b) if b else None for b in fd.scalars.json_data.data]
        return Column(_expand(loaded, valid, n, None), valid)
    if t is FieldType.ARRAY:
        return Column(_expand(_array_values(f, fd.scalars.array_data.data), valid, n, None), valid)
    raise Unfit(f"field {f.name!r} has type {t.value}")


def columns_of(spec: CollectionSpec, partition: str, fields_data: Any) -> Chunk:
    """A Query response's ``fields_data`` -> a chunk with every column of ``spec`` (pure)."""
    by_name = {fd.field_name: fd for fd in fields_data if not fd.is_dynamic}
    dynamic = [fd for fd in fields_data if fd.is_dynamic]
    pk = by_name.get(spec.primary.name)
    if pk is None:
        raise Unfit("the answer has no primary key column")
    pk_data = pk.scalars.long_data.data if spec.primary.type is FieldType.INT64 else pk.scalars.string_data.data
    n = len(pk_data)
    columns: dict[str, Column] = {}
    for f in spec.stored_fields:  # a function's output (Milvus Lite returns BM25's) is not stored
        fd = by_name.get(f.name)
        if fd is None:
            raise Unfit(f"the answer has no column {f.name!r}")
        columns[f.name] = column_of(f, fd, n)
    if spec.enable_dynamic_field:
        if dynamic:
            meta = [orjson.loads(b) if b else {} for b in dynamic[0].scalars.json_data.data]
            if len(meta) != n:
                raise Unfit(f"{len(meta)} dynamic-field objects for {n} rows")
        else:
            meta = [{} for _ in range(n)]
        columns[DYNAMIC_COLUMN] = Column(meta)
    return Chunk(partition=partition, num_rows=n, columns=columns)


def _slice(col: Column, start: int, stop: int) -> Column:
    valid = None if col.valid is None else col.valid[start:stop]
    return Column(col.values[start:stop], None if valid is None or valid.all() else valid)


def _concat(chunks: list[Chunk]) -> Chunk:
    columns: dict[str, Column] = {}
    for name, first in chunks[0].columns.items():
        cols = [c.columns[name] for c in chunks]
        if isinstance(first.values, np.ndarray):
            values: Any = np.concatenate([np.asarray(c.values) for c in cols])
        else:
            values = [v for c in cols for v in c.values]
        valid = None
        if any(c.valid is not None for c in cols):
            valid = np.concatenate([c.valid if c.valid is not None else np.ones(ch.num_rows, dtype=bool)
                                    for c, ch in zip(cols, chunks, strict=True)])
        columns[name] = Column(values, valid)
    return Chunk(chunks[0].partition, sum(c.num_rows for c in chunks), columns)


def rebatch(pages: Iterator[Chunk], size: int) -> Iterator[Chunk]:
    """Chunks of exactly ``size`` rows (the last one fewer), whatever the pages' sizes: the boundaries the row path
    cuts, so equal rows give equal data objects either way (content addressing keeps deduplicating). Memory:
    ``size`` rows plus one page."""
    pending: list[Chunk] = []
    total = 0
    for page in pages:
        pending.append(page)
        total += page.num_rows
        if total < size:
            continue
        joined = _concat(pending) if len(pending) > 1 else pending[0]
        start = 0
        while total - start >= size:
            yield Chunk(joined.partition, size, {k: _slice(c, start, start + size) for k, c in joined.columns.items()})
            start += size
        rest = total - start
        pending = [Chunk(joined.partition, rest, {k: _slice(c, start, total) for k, c in joined.columns.items()})] \
            if rest else []
        total = rest
    if total:
        last = _concat(pending) if len(pending) > 1 else pending[0]
        yield Chunk(last.partition, total, {k: _slice(c, 0, total) for k, c in last.columns.items()})


def sorted_by_key(chunk: Chunk, key: str) -> Chunk:
    """The chunk's rows in ascending order of column ``key`` (pure)."""
    keys = chunk.columns[key].values
    order = np.argsort(keys, kind="stable") if isinstance(keys, np.ndarray) else \
        np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    if np.array_equal(order, np.arange(chunk.num_rows)):
        return chunk
    columns = {}
    for name, col in chunk.columns.items():
        values = col.values[order] if isinstance(col.values, np.ndarray) else [col.values[i] for i in order.tolist()]
        columns[name] = Column(values, None if col.valid is None else col.valid[order])
    return Chunk(chunk.partition, chunk.num_rows, columns)


def _ascending(keys: Any) -> bool:
    return all(a < b for a, b in itertools.pairwise(keys))


class ColumnarReader:
    """Pages of one partition (or all, ``partition_names=[]``) as chunks of up to ``batch_size`` rows."""

    def __init__(self, client: Any, spec: CollectionSpec, collection_id: int, partition_names: list[str],
                 batch_size: int, timeout: float | None = None) -> None:
        try:  # pymilvus's connection of this client: the same address, TLS and credentials
            from pymilvus.client.prepare import Prepare

            self._handler = client._get_connection()
            self._stub = self._handler._stub
            self._prepare = Prepare.query_request
        except Exception as e:
            raise Unfit(f"pymilvus internals not as expected ({type(e).__name__})") from None
        self.spec, self.partition_names, self.batch_size, self.timeout = spec, partition_names, batch_size, timeout
        self._options: dict[str, Any] = {"iterator": "True", "reduce_stop_for_best": "True",
                                         "collection_id": collection_id, "consistency_level": "Strong"}
        pk = spec.primary
        self._pk, self._str_pk = pk.name, pk.type is FieldType.VARCHAR
        self._base = f'{pk.name} != ""' if self._str_pk else f"{pk.name} < {_INT64_MAX}"

    def _query(self, expr: str, output_fields: list[str], partition_names: list[str], **options: Any) -> Any:
        from pymilvus.client.utils import check_status

        request = self._prepare(self.spec.name, expr, output_fields, partition_names, use_default_consistency=True,
                                **{**self._options, **options})
        response = send_with_retries(lambda: self._stub.Query(request, timeout=self.timeout))
        check_status(response.status)
        return response

    def _pin_snapshot(self) -> None:
        response = self._query(self._base, [], [], offset=0, limit=1)
        ts = int(getattr(response, "session_ts", 0) or 0)
        if ts <= 0:  # a server without session_ts (2.3): the client's clock, as pymilvus's iterator does
            ts = int(time.time() * 1000) << 18
        self._options["guarantee_timestamp"] = ts

    def fetch(self, partition: str, keys: list[Any]) -> Chunk | None:
        """The rows of these primary keys (those that still exist, in key order), or None for none.

        Not an iterator page: without ``iterator``/``reduce_stop_for_best``, which let the server stop at the first
        segment it runs out of (right for ``pk > last`` paging, where the next page goes on from there; here it
        would drop rows). Keys a response leaves out are asked for again until a response brings none of them."""
        if "guarantee_timestamp" not in self._options:
            self._pin_snapshot()
        pages: list[Chunk] = []
        wanted = list(keys)
        while wanted:
            expr = f"{self._pk} in {orjson.dumps(wanted).decode()}"
            response = self._query(expr, ["*"], self.partition_names, limit=len(wanted), iterator=None,
                                   reduce_stop_for_best=False)
            if not len(response.fields_data):
                break
            chunk = columns_of(self.spec, partition, response.fields_data)
            if chunk.num_rows == 0:
                break
            pages.append(chunk)
            got = chunk.columns[self._pk].values
            seen = set(got.tolist() if isinstance(got, np.ndarray) else got)
            wanted = [k for k in wanted if k not in seen]
        if not pages:
            return None
        return sorted_by_key(_concat(pages) if len(pages) > 1 else pages[0], self._pk)

    def chunks(self, partition: str) -> Iterator[Chunk]:
        self._pin_snapshot()
        last: Any = None
        while True:
            if last is None:
                expr = self._base
            else:  # a string key quoted as JSON does it, which Milvus's expression parser reads back
                expr = f"{self._pk} > {orjson.dumps(last).decode()}" if self._str_pk else f"{self._pk} > {last}"
            response = self._query(expr, ["*"], self.partition_names, limit=self.batch_size)
            if not len(response.fields_data):
                return
            chunk = columns_of(self.spec, partition, response.fields_data)
            if chunk.num_rows == 0:
                return
            keys = chunk.columns[self._pk].values
            key_list = keys.tolist() if isinstance(keys, np.ndarray) else list(keys)
            if not _ascending(key_list):
                raise Unfit("a page not in primary-key order")
            yield chunk
            last = key_list[-1]


__all__ = ["ColumnarReader", "Unfit", "column_of", "columns_of", "rebatch", "send_with_retries", "sorted_by_key"]
