"""Milvus 2.3 binlogs (segment backups): insert logs and delete (delta) logs decoded into vecbackup's columns.

Pure functions, bytes in and values out; docs/FORMAT.md ("Milvus binlogs (segment backups)") describes the layout
read here. A binlog file holds one field of one segment (an insert log) or the deletes of one segment (a delta
log)::

    0   4   int32 LE magic 0xFFFABC
    4   17  descriptor event header: uint64 timestamp, int8 type code (0), int32 event length, int32 next position
    21  52  collection id, partition id, segment id, field id (int64 each), start and end timestamp (uint64 each),
            payload data type (int32, Milvus' schemapb.DataType)
    73  8   post-header lengths (one uint8 per event type 0..7)
    81  4   int32 extras length E, then E bytes of extras (a JSON object, e.g. {"original_size": "408"})
    then events up to the end of the file, each: a 17-byte header (type 1 = insert, 2 = delete), start and end
    timestamp (uint64 each), and its payload: a Parquet file of one column named ``val``

Every malformed input raises CorruptData with a one-line message; nothing else escapes (fuzz/fuzz_binlog.py).
Numeric and vector columns are numpy arrays (vectors of shape (rows, width), as format/codec.py holds them);
VARCHAR, JSON and ARRAY values are Python lists, or, where the caller asks for them ``packed`` (a segment backup,
which only stores them), codec.Packed: the buffers the chunk format stores, checked as the values would be (UTF-8;
each row one JSON value, written as orjson writes it; ARRAY elements of the element type), without a Python value
per row. A payload that cannot be checked so (nulls; JSON written otherwise, e.g. with spaces; an ARRAY of VARCHAR
or one protobuf wrote otherwise) is decoded per row.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import orjson

from vecbackup.errors import CorruptData
from vecbackup.format.codec import Chunk, Column, Packed, take_rows
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, VECTOR_DTYPES, CollectionSpec, Field, FieldType

MAGIC = 0xFFFABC
#: the system fields every segment has beside the schema's: row ids and insert timestamps (int64 each)
ROW_ID_FIELD = 0
TIMESTAMP_FIELD = 1

#: event type codes (internal/storage/event_type.go)
DESCRIPTOR_EVENT = 0
INSERT_EVENT = 1
DELETE_EVENT = 2
#: post-header lengths the descriptor lists: one per event type, descriptor .. index file (8 in Milvus 2.x)
EVENT_TYPES = 8

_MAGIC = struct.Struct("<i")
_HEADER = struct.Struct("<Qbii")  # timestamp, type code, event length, next position
_DESCRIPTOR = struct.Struct("<qqqqQQi")  # collection, partition, segment, field, start ts, end ts, data type
_EVENT_TS = struct.Struct("<QQ")  # start ts, end ts of an insert or delete event
_I32 = struct.Struct("<i")

#: Milvus' schemapb.DataType numbers -> vecbackup's types (String, 20, is the delta log's payload type)
DATA_TYPES: dict[int, FieldType] = {
    1: FieldType.BOOL, 2: FieldType.INT8, 3: FieldType.INT16, 4: FieldType.INT32, 5: FieldType.INT64,
    10: FieldType.FLOAT, 11: FieldType.DOUBLE, 20: FieldType.VARCHAR, 21: FieldType.VARCHAR, 22: FieldType.ARRAY,
    23: FieldType.JSON, 100: FieldType.BINARY_VECTOR, 101: FieldType.FLOAT_VECTOR, 102: FieldType.FLOAT16_VECTOR,
    103: FieldType.BFLOAT16_VECTOR,
}
#: the primary key types a delta log's ``pkType`` names: Int64 (5) and VarChar (21)
_PK_TYPES = {5: FieldType.INT64, 21: FieldType.VARCHAR}

#: ScalarField's oneof member holding an ARRAY's elements, by element type (schema.proto)
_ARRAY_MEMBERS: dict[FieldType, str] = {
    FieldType.BOOL: "bool_data", FieldType.INT8: "int_data", FieldType.INT16: "int_data",
    FieldType.INT32: "int_data", FieldType.INT64: "long_data", FieldType.FLOAT: "float_data",
    FieldType.DOUBLE: "double_data", FieldType.VARCHAR: "string_data",
}
_INT_RANGES = {FieldType.INT8: (-(2**7), 2**7 - 1), FieldType.INT16: (-(2**15), 2**15 - 1),
               FieldType.INT32: (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class Descriptor:
    """The descriptor event of a binlog: whose field it holds and the payload's Milvus data type."""

    collection_id: int
    partition_id: int
    segment_id: int
    field_id: int  # -1 in a delta log
    start_ts: int
    end_ts: int
    data_type: int  # schemapb.DataType number
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class InsertLog:
    """One insert binlog: the values of one field for ``num_rows`` rows of a segment."""

    descriptor: Descriptor
    type: FieldType
    column: Column
    num_rows: int
    dim: int | None = None  # dense vectors: the dimension the payload's width gives


@dataclass
class DeltaLog:
    """One delta log: primary keys deleted and when (the delete's timestamp)."""

    descriptor: Descriptor
    pks: np.ndarray | list[str]  # int64 array, or the VARCHAR keys
    timestamps: np.ndarray  # uint64

    @property
    def num_rows(self) -> int:
        return len(self.timestamps)


def _corrupt(msg: str) -> NoReturn:
    raise CorruptData(f"binlog: {msg}")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


#: what pyarrow raises for bad Parquet or values it cannot convert (ArrowInvalid and friends are ValueErrors,
#: ArrowIOError an OSError; a name or value that is not UTF-8 a UnicodeDecodeError)
_ARROW_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, TypeError, NotImplementedError, IndexError,
                                              OverflowError)


# --------------------------------------------------------------------------- events


def _descriptor(mv: memoryview) -> tuple[Descriptor, int]:
    """The descriptor event after the magic number, and the offset of the first event after it."""
    if len(mv) < _MAGIC.size + _HEADER.size + _DESCRIPTOR.size + EVENT_TYPES + _I32.size:
        _corrupt(f"{len(mv)} bytes is too short for a binlog")
    (magic,) = _MAGIC.unpack_from(mv, 0)
    if magic != MAGIC:
        _corrupt(f"not a Milvus binlog (magic {magic & 0xFFFFFFFF:#x}, expected {MAGIC:#x})")
    _ts, code, length, nxt = _HEADER.unpack_from(mv, _MAGIC.size)
    if code != DESCRIPTOR_EVENT:
        _corrupt(f"the first event has type {code}, not the descriptor (0)")
    pos = _MAGIC.size + _HEADER.size
    coll, part, seg, fid, start, end, dtype = _DESCRIPTOR.unpack_from(mv, pos)
    pos += _DESCRIPTOR.size + EVENT_TYPES
    (extra_len,) = _I32.unpack_from(mv, pos)
    pos += _I32.size
    if extra_len < 0 or pos + extra_len > len(mv):
        _corrupt(f"descriptor extras of {extra_len} bytes overrun the file")
    if length != pos + extra_len - _MAGIC.size or nxt != pos + extra_len:
        _corrupt(f"descriptor event length {length} / next position {nxt} do not match its contents")
    try:
        extras = orjson.loads(mv[pos : pos + extra_len]) if extra_len else {}
    except orjson.JSONDecodeError as e:
        _corrupt(f"descriptor extras are not JSON: {_one_line(e)}")
    if not isinstance(extras, dict):
        _corrupt("descriptor extras are not a JSON object")
    return Descriptor(coll, part, seg, fid, start, end, dtype, extras), nxt


def _events(mv: memoryview, pos: int, code: int) -> Iterator[memoryview]:
    """The Parquet payload of each event (all of type ``code``) from ``pos`` to the end of the file."""
    while pos < len(mv):
        if pos + _HEADER.size + _EVENT_TS.size > len(mv):
            _corrupt(f"an event header at offset {pos} is cut short")
        _ts, got, length, nxt = _HEADER.unpack_from(mv, pos)
        if got != code:
            _corrupt(f"event at offset {pos} has type {got}, expected {code}")
        end = pos + length
        if length < _HEADER.size + _EVENT_TS.size or end > len(mv) or nxt != end:
            _corrupt(f"event at offset {pos}: length {length} / next position {nxt} do not fit the file")
        yield mv[pos + _HEADER.size + _EVENT_TS.size : end]
        pos = end


def _parquet(payload: memoryview) -> Any:
    """The payload as a pyarrow ParquetFile whose metadata is consistent: one column, and row groups whose rows add
    up to the file's (pyarrow sizes its buffers by a row group's declared rows before it reads a value)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(pa.py_buffer(payload)))
        md = pf.metadata
        groups = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    except _ARROW_ERRORS as e:
        _corrupt(f"bad Parquet payload: {_one_line(e)}")
    if md.num_columns != 1:
        _corrupt(f"a payload has {md.num_columns} columns, expected 1")
    if any(g < 0 for g in groups) or sum(groups) != md.num_rows:
        _corrupt(f"a payload's row groups hold {sum(groups)} rows, its metadata says {md.num_rows}")
    return pf


def _table(payload: memoryview) -> Any:
    """The one column of an event's Parquet payload, as a pyarrow ChunkedArray."""
    pf = _parquet(payload)
    try:
        table = pf.read(use_threads=False)
        columns = table.columns  # by position: a column's name may not even be UTF-8
    except _ARROW_ERRORS as e:
        _corrupt(f"bad Parquet payload: {_one_line(e)}")
    if len(columns) != 1:
        _corrupt(f"a payload has {len(columns)} columns, expected 1")
    return columns[0]


# --------------------------------------------------------------------------- payload values


def _valid(col: Any) -> np.ndarray | None:
    if col.null_count == 0:
        return None
    valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return valid


def _numbers(col: Any, ftype: FieldType, n: int) -> np.ndarray:
    import pyarrow as pa

    dtype = np.dtype(SCALAR_DTYPES[ftype])
    t = col.type
    if ftype is FieldType.BOOL:
        if not pa.types.is_boolean(t):
            _corrupt(f"a BOOL payload holds {t}")
    elif dtype.kind == "i":
        if not pa.types.is_integer(t):
            _corrupt(f"an {ftype.value} payload holds {t}")
    elif not pa.types.is_floating(t) or t.bit_width != dtype.itemsize * 8:
        _corrupt(f"a {ftype.value} payload holds {t}")
    try:
        src = col.fill_null(False if ftype is FieldType.BOOL else 0).to_numpy(zero_copy_only=False)
    except _ARROW_ERRORS as e:  # pragma: no cover - the types are checked above
        _corrupt(f"{ftype.value} payload: {_one_line(e)}")
    src = np.asarray(src)
    if len(src) != n:  # pragma: no cover
        _corrupt(f"{ftype.value} payload: {len(src)} values for {n} rows")
    if src.dtype == dtype:
        return src
    if dtype.kind == "i" and src.size:  # Milvus writes INT8 and INT16 as Parquet INT32
        info = np.iinfo(dtype)
        lo, hi = int(src.min()), int(src.max())
        if lo < info.min or hi > info.max:
            _corrupt(f"an {ftype.value} payload holds {lo if lo < info.min else hi}")
    return src.astype(dtype)


def _vectors(col: Any, ftype: FieldType, n: int) -> tuple[np.ndarray, int]:
    import pyarrow as pa

    t = col.type
    if not pa.types.is_fixed_size_binary(t):
        _corrupt(f"a {ftype.value} payload holds {t}, not fixed-size binary")
    width_bytes = t.byte_width
    dtype = np.dtype(VECTOR_DTYPES[ftype])
    if width_bytes <= 0 or width_bytes % dtype.itemsize:
        _corrupt(f"a {ftype.value} payload has rows of {width_bytes} bytes")
    width = width_bytes // dtype.itemsize
    dim = width * 8 if ftype is FieldType.BINARY_VECTOR else width
    parts = []
    for chunk in col.chunks:
        filled = chunk.fill_null(b"\x00" * width_bytes) if chunk.null_count else chunk
        buf = filled.buffers()[1]
        raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
        start = filled.offset * width_bytes
        part = raw[start : start + len(filled) * width_bytes]
        if len(part) != len(filled) * width_bytes:  # pragma: no cover - pyarrow validated the array
            _corrupt(f"a {ftype.value} payload is cut short")
        parts.append(part)
    data = np.concatenate(parts) if len(parts) != 1 else parts[0]
    arr = data.view(dtype).reshape(n, width)
    return arr, dim


def _texts(col: Any, ftype: FieldType) -> list[Any]:
    import pyarrow as pa

    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
            _corrupt(f"a {ftype.value} payload holds {col.type}")
        try:
            return [None if b is None else b.decode("utf-8") for b in col.to_pylist()]
        except UnicodeDecodeError as e:
            _corrupt(f"a {ftype.value} value is not UTF-8: {_one_line(e)}")
    try:
        return list(col.to_pylist())
    except _ARROW_ERRORS as e:  # pyarrow refuses invalid UTF-8 in a string column
        _corrupt(f"a {ftype.value} value is not UTF-8: {_one_line(e)}")


def _blobs(col: Any, ftype: FieldType) -> list[bytes | None]:
    import pyarrow as pa

    t = col.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t)):
        _corrupt(f"a {ftype.value} payload holds {t}")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        col = col.cast(pa.large_binary() if pa.types.is_large_string(t) else pa.binary())
    return list(col.to_pylist())


def _offsets(arr: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ``len(arr) + 1`` value offsets (int64) of a (large_)string or (large_)binary Arrow array into its data
    buffer, and that buffer (uint8)."""
    import pyarrow as pa

    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    odt = np.dtype("<i8" if large else "<i4")
    _, offsets, data = arr.buffers()
    at = np.frombuffer(offsets, dtype=odt, count=len(arr) + 1, offset=arr.offset * odt.itemsize).astype(np.int64)
    return at, np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)


def _offsets_data(arr: Any) -> tuple[np.ndarray, np.ndarray]:
    """The uint32 lengths and the bytes of a (large_)string or (large_)binary Arrow array without nulls."""
    offs, raw = _offsets(arr)
    lengths = np.diff(offs)
    if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > 0xFFFFFFFF):  # pragma: no cover
        _corrupt("a payload's value offsets go backwards")  # (the array was validated: not reached)
    return lengths.astype(np.uint32), raw[int(offs[0]) : int(offs[-1])]


def _packed_texts(col: Any) -> Packed | None:
    """A VARCHAR payload without nulls as Packed, its UTF-8 checked by Arrow (a full validation); None for one
    with nulls or of another Arrow type (decoded per row)."""
    import pyarrow as pa

    if col.null_count or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return None
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    try:
        arr.validate(full=True)
    except _ARROW_ERRORS as e:
        _corrupt(f"a VARCHAR value is not UTF-8: {_one_line(e)}")
    lengths, data = _offsets_data(arr)
    return Packed(FieldType.VARCHAR, lengths, data)


def _packed_json(col: Any) -> Packed | None:
    """A JSON payload without nulls as Packed when each value is one JSON value written as orjson writes it (as
    the chunk format stores JSON): the values, joined into one JSON array, are parsed once and written again, and
    must give the same bytes, with each value's own length. None otherwise (decoded per row, which names a value
    that is not JSON and writes the others as orjson does)."""
    import pyarrow as pa

    t = col.type
    if col.null_count or not (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t)):
        return None
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    try:
        arr.validate(full=True)
    except _ARROW_ERRORS:
        return None
    lengths, data = _offsets_data(arr)
    n = len(lengths)
    if not n:
        return Packed(FieldType.JSON, lengths, data)
    if not lengths.all():
        return None  # an empty value is no JSON: the per-row decoding says so
    # "[" v0 "," v1 "," ... "]": the values' bytes fill every place but the bracket and the commas after each
    joined = np.empty(len(data) + n + 1, dtype=np.uint8)
    ends = np.cumsum(lengths + 1, dtype=np.int64)  # after value i: "," or "]"
    mask = np.ones(len(joined), dtype=np.bool_)
    mask[0] = False
    mask[ends] = False
    joined[mask] = data
    joined[ends] = ord(",")
    joined[0], joined[-1] = ord("["), ord("]")
    text = joined.tobytes()
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    # the same bytes again, and the commas put between the values are the array's own: the values are exactly the
    # pieces (the bytes alone would also match pieces such as "[1" and "2],3", whose commas fall elsewhere)
    if not isinstance(values, list) or len(values) != n or orjson.dumps(values) != text:
        return None
    if not _between_elements(joined, ends[:-1]):
        return None
    return Packed(FieldType.JSON, lengths, data)


def _between_elements(text: np.ndarray, commas: np.ndarray) -> bool:
    """Whether the bytes at ``commas`` of ``text``, a JSON array as orjson writes it, separate its elements: each
    is outside any string (an even number of unescaped quotes before it) and at depth 1 (one more bracket or brace
    opened than closed before it, outside strings). Such an array of n elements has exactly n - 1 of them."""
    quotes = np.flatnonzero(text == ord('"'))
    escapes = np.flatnonzero(text == ord("\\"))
    if len(escapes) and len(quotes):  # orjson escapes only inside strings: a quote after an odd run of "\\" is text
        after = quotes[quotes > 0]
        after = after[text[after - 1] == ord("\\")]
        runs = escapes[np.concatenate(([True], escapes[1:] - 1 != escapes[:-1]))]  # where each run of "\\" starts
        run_length = after - runs[np.searchsorted(runs, after - 1, "right") - 1]
        quotes = np.setdiff1d(quotes, after[run_length % 2 == 1], assume_unique=True)

    def outside(at: np.ndarray) -> np.ndarray:
        return at[np.searchsorted(quotes, at) % 2 == 0]

    opened = outside(np.flatnonzero((text == ord("[")) | (text == ord("{"))))
    closed = outside(np.flatnonzero((text == ord("]")) | (text == ord("}"))))
    depth = np.searchsorted(opened, commas) - np.searchsorted(closed, commas)
    return bool((np.searchsorted(quotes, commas) % 2 == 0).all() and (depth == 1).all())


def _json(col: Any) -> list[Any]:
    loads = orjson.loads
    try:
        return [None if b is None else loads(b) for b in _blobs(col, FieldType.JSON)]
    except orjson.JSONDecodeError as e:
        _corrupt(f"a JSON value is not JSON: {_one_line(e)}")


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    """A protobuf varint (at most 10 bytes) at ``pos``: (value as uint64, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(b) or shift > 63:
            _corrupt("an ARRAY value has a bad varint")
        c = b[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        if c < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def _fields(b: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of a protobuf message: an int for varint and fixed wire types
    (fixed ones as raw bytes), a bytes slice for length-delimited ones."""
    pos = 0
    while pos < len(b):
        tag, pos = _varint(b, pos)
        number, wire = tag >> 3, tag & 7
        value: Any
        if wire == 0:
            value, pos = _varint(b, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > len(b):
                _corrupt("an ARRAY value is cut short")
            value, pos = b[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(b, pos)
            if pos + size > len(b):
                _corrupt("an ARRAY value is cut short")
            value, pos = b[pos : pos + size], pos + size
        else:
            _corrupt(f"an ARRAY value has protobuf wire type {wire}")
        if number == 0:
            _corrupt("an ARRAY value has protobuf field number 0")
        yield number, wire, value


#: ScalarField's members an ARRAY's elements are in (schema.proto): number -> (name, element kind)
_MEMBERS = {1: ("bool_data", "bool"), 2: ("int_data", "int32"), 3: ("long_data", "int64"),
            4: ("float_data", "<f4"), 5: ("double_data", "<f8"), 6: ("string_data", "str")}


def _signed(v: int, bits: int) -> int:
    v &= (1 << 64) - 1
    v = v - (1 << 64) if v >= 1 << 63 else v
    if bits == 32 and not -(2**31) <= v < 2**31:
        _corrupt("an ARRAY<INT32> element is out of range")
    return v


def _elements(kind: str, msg: bytes) -> list[Any]:
    """The ``repeated data = 1`` of a BoolArray, IntArray, ... message (packed or not)."""
    out: list[Any] = []
    for number, wire, value in _fields(msg):
        if number != 1:
            continue  # an unknown field: skipped, as protobuf does
        if kind == "str":
            if wire != 2:
                _corrupt("an ARRAY<VARCHAR> element is not length-delimited")
            try:
                out.append(bytes(value).decode("utf-8"))
            except UnicodeDecodeError:
                _corrupt("an ARRAY<VARCHAR> element is not UTF-8")
        elif kind in ("<f4", "<f8"):
            size = np.dtype(kind).itemsize
            if wire == 2:
                if len(value) % size:
                    _corrupt("a packed ARRAY of floats has a partial element")
                out += np.frombuffer(value, dtype=kind).tolist()
            elif wire == (5 if size == 4 else 1):
                out += np.frombuffer(value, dtype=kind).tolist()
            else:
                _corrupt(f"an ARRAY element of {kind} has wire type {wire}")
        elif wire == 2:
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                out.append(bool(v) if kind == "bool" else _signed(v, 32 if kind == "int32" else 64))
        elif wire == 0:
            out.append(bool(value) if kind == "bool" else _signed(value, 32 if kind == "int32" else 64))
        else:
            _corrupt(f"an ARRAY element of {kind} has wire type {wire}")
    return out


def _scalar_field(b: bytes) -> tuple[str | None, list[Any]]:
    """A serialized schemapb.ScalarField: (the oneof member set, its elements); (None, []) when none is."""
    member: tuple[str, str] | None = None
    body = b""
    for number, wire, value in _fields(b):
        if number in _MEMBERS and wire == 2:
            member, body = _MEMBERS[number], value  # the last member of a oneof wins
        elif number <= 16:
            _corrupt(f"an ARRAY value holds ScalarField field {number}, not one of an ARRAY's element types")
    if member is None:
        return None, []
    return member[0], _elements(member[1], body)


_FAST: Any = None  # the protobuf class of _scalar_field_fast, once built (False: no protobuf runtime)


def _fast_class() -> Any:
    """A protobuf message class with ScalarField's six ARRAY members (schema.proto), built from a descriptor here
    (format/ does not import pymilvus); False where the protobuf runtime is not installed."""
    global _FAST
    if _FAST is None:
        try:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        except ImportError:  # pragma: no cover - protobuf comes with pymilvus
            _FAST = False
            return _FAST
        f = descriptor_pb2.FileDescriptorProto(name="vecbackup_scalarfield.proto", package="vecbackup.binlog",
                                               syntax="proto3")
        t = descriptor_pb2.FieldDescriptorProto
        kinds = [("BoolArray", t.TYPE_BOOL), ("IntArray", t.TYPE_INT32), ("LongArray", t.TYPE_INT64),
                 ("FloatArray", t.TYPE_FLOAT), ("DoubleArray", t.TYPE_DOUBLE), ("StringArray", t.TYPE_STRING)]
        for name, kind in kinds:
            m = f.message_type.add(name=name)
            m.field.add(name="data", number=1, type=kind, label=t.LABEL_REPEATED)
        top = f.message_type.add(name="ScalarField")
        top.oneof_decl.add(name="data")
        for number, (name, _) in enumerate(kinds, start=1):
            top.field.add(name=_MEMBERS[number][0], number=number, type=t.TYPE_MESSAGE, label=t.LABEL_OPTIONAL,
                          type_name=f".vecbackup.binlog.{name}", oneof_index=0)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(f)
        _FAST = message_factory.GetMessageClass(pool.FindMessageTypeByName("vecbackup.binlog.ScalarField"))
    return _FAST


def _scalar_field_fast(cls: Any, b: bytes) -> tuple[str | None, list[Any]] | None:
    """_scalar_field by the protobuf runtime where the bytes are exactly what it writes back (the canonical
    encoding Milvus writes, no unknown field); None otherwise, for the exact rules of _scalar_field."""
    try:
        msg = cls.FromString(b)
    except Exception:
        return None
    msg.DiscardUnknownFields()
    if msg.ByteSize() != len(b):
        return None
    member = msg.WhichOneof("data")
    if member is None:
        return None
    return member, list(getattr(msg, member).data)


#: ScalarField member -> its field number (schema.proto), for the column-at-once reader
_MEMBER_NUMBERS = {name: number for number, (name, _) in _MEMBERS.items()}
#: element types read a column at a time: those whose elements are packed varints or fixed-width numbers
_PACKED = {FieldType.BOOL: None, FieldType.INT8: None, FieldType.INT16: None, FieldType.INT32: None,
           FieldType.INT64: None, FieldType.FLOAT: np.dtype("<f4"), FieldType.DOUBLE: np.dtype("<f8")}


def _varints_at(data: np.ndarray, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One protobuf varint at each of ``pos`` (none reaching ``end``): their values (uint64) and byte counts; None
    where one is malformed."""
    value = np.zeros(len(pos), dtype=np.uint64)
    size = np.zeros(len(pos), dtype=np.int64)
    todo = np.arange(len(pos))
    for k in range(10):
        if not len(todo):
            return value, size
        at = pos[todo] + k
        if (at >= end[todo]).any():
            return None
        byte = data[at]
        value[todo] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        last = byte < 0x80
        size[todo[last]] = k + 1
        todo = todo[~last]
    return None if len(todo) else (value, size)


def _packed_arrays(chunk: Any, element_type: FieldType) -> list[Any] | None:
    """ARRAY values of one Arrow chunk decoded at once with numpy, where every row is laid out as protobuf writes a
    ScalarField of the element type's member (its tag, length, the packed ``data = 1`` field) or is empty; None
    otherwise (a null, another member, unpacked or unknown fields, a value out of range), for _arrays' row-by-row
    reading and its exact messages. The same lists as that reading."""
    got = _array_elements(chunk, element_type)
    if got is None:
        return None
    per_row, values = got
    flat = values.tolist()
    bounds = np.concatenate(([0], np.cumsum(per_row))).tolist()
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


def _array_elements(chunk: Any, element_type: FieldType) -> tuple[np.ndarray, np.ndarray] | None:
    """_packed_arrays' reading: each row's element count (int64) and every row's elements one after the other (as
    protobuf holds them: int64 for the integer types, bool, float32 or float64), or None."""
    import pyarrow as pa

    if element_type not in _PACKED or chunk.null_count or not (pa.types.is_binary(chunk.type)
                                                               or pa.types.is_large_binary(chunk.type)):
        return None
    n = len(chunk)
    offsets, data = _offsets(chunk)
    start, end = offsets[:-1], offsets[1:]
    rows = np.flatnonzero(end > start)  # the empty rows hold no elements
    s, e = start[rows], end[rows]
    if (data[s] != (_MEMBER_NUMBERS[_ARRAY_MEMBERS[element_type]] << 3 | 2)).any():
        return None
    got = _varints_at(data, s + 1, e)
    if got is None:
        return None
    outer, outer_size = got
    if (s + 1 + outer_size + outer.astype(np.int64) != e).any():
        return None
    full = outer > 0  # rows whose member holds elements (an empty member is its tag and a zero length)
    rows, s, e = rows[full], (s + 1 + outer_size)[full], e[full]
    if (data[s] != 0x0A).any():  # data = 1, length-delimited
        return None
    got = _varints_at(data, s + 1, e)
    if got is None:
        return None
    inner, inner_size = got
    first = s + 1 + inner_size
    size = inner.astype(np.int64)
    if (first + size != e).any():
        return None
    edges = np.bincount(first, minlength=len(data) + 1) - np.bincount(e, minlength=len(data) + 1)
    payload = data[np.cumsum(edges[:-1]) > 0]  # the payload bytes of every row, in row order
    fixed = _PACKED[element_type]
    if fixed is not None:
        if (size % fixed.itemsize).any():
            return None
        counts = size // fixed.itemsize
        values: np.ndarray = payload.view(fixed)
    else:
        ends = np.flatnonzero(payload < 0x80)
        if len(payload) and (not len(ends) or ends[-1] != len(payload) - 1):
            return None
        at = np.cumsum(size)  # each row's payload ends with a varint's last byte
        if (size > 0).any() and not (payload[at[size > 0] - 1] < 0x80).all():
            return None
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
        lengths = ends - starts + 1
        if (lengths > 10).any():
            return None
        shifts = ((np.arange(len(payload)) - np.repeat(starts, lengths)) * 7).astype(np.uint64)
        numbers = ((payload & 0x7F).astype(np.uint64) << shifts)
        raw = np.bitwise_or.reduceat(numbers, starts) if len(starts) else np.zeros(0, np.uint64)
        counted = np.concatenate(([0], np.cumsum(payload < 0x80)))
        counts = counted[at] - counted[at - size]
        if element_type is FieldType.BOOL:
            values = raw != 0
        else:
            values = raw.view(np.int64)
            if element_type in _INT_RANGES and len(values):
                lo, hi = _INT_RANGES[element_type]
                if int(values.min()) < lo or int(values.max()) > hi:
                    return None
    per_row = np.zeros(n, dtype=np.int64)
    per_row[rows] = counts
    return per_row, values


def _packed_array_column(col: Any, element_type: FieldType | None) -> Packed | None:
    """An ARRAY payload as Packed (element counts and elements, in the element type's dtype) where every chunk is
    read at once (_array_elements); None otherwise."""
    if element_type is None or element_type not in SCALAR_DTYPES:
        return None
    counts, parts = [], []
    for chunk in col.chunks:
        got = _array_elements(chunk, element_type)
        if got is None:
            return None
        counts.append(got[0])
        parts.append(got[1])
    dtype = np.dtype(SCALAR_DTYPES[element_type])
    values = np.concatenate(parts) if parts else np.zeros(0, dtype)
    lengths = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return Packed(FieldType.ARRAY, lengths.astype(np.uint32), values.astype(dtype, copy=False), element_type)


def _arrays(col: Any, element_type: FieldType | None) -> list[Any]:
    """ARRAY values: each a serialized schemapb.ScalarField; its elements as a list (None for a null row)."""
    if element_type is not None:
        parts = [_packed_arrays(chunk, element_type) for chunk in col.chunks]
        if all(p is not None for p in parts):
            return [v for p in parts for v in p]  # type: ignore[union-attr]
    member = _ARRAY_MEMBERS.get(element_type) if element_type is not None else None
    out: list[Any] = []
    fast = _fast_class()
    for b in _blobs(col, FieldType.ARRAY):
        if b is None:
            out.append(None)
            continue
        quick = _scalar_field_fast(fast, b) if fast else None
        got, values = quick if quick is not None else _scalar_field(b)
        if got is None:
            out.append([])
            continue
        if member is not None and got != member:
            _corrupt(f"an ARRAY<{element_type}> value holds {got}")
        if element_type in _INT_RANGES and values:
            lo, hi = _INT_RANGES[element_type]
            if min(values) < lo or max(values) > hi:
                _corrupt(f"an ARRAY<{element_type}> value holds an element out of range")
        out.append(values)
    return out


def _open_insert(data: bytes | bytearray | memoryview, field: Field | None
                 ) -> tuple[memoryview, Descriptor, FieldType, int]:
    mv = memoryview(data).cast("B")
    desc, pos = _descriptor(mv)
    system = desc.field_id in (ROW_ID_FIELD, TIMESTAMP_FIELD)
    ftype = DATA_TYPES.get(desc.data_type)
    if ftype is None:
        _corrupt(f"unknown payload data type {desc.data_type} (field {desc.field_id})")
    if system and ftype is not FieldType.INT64:
        _corrupt(f"system field {desc.field_id} has payload type {ftype.value}, not INT64")
    if field is not None and not system and field.type is not ftype:
        _corrupt(f"field {field.name!r} is {field.type_name} but its binlog holds {ftype.value}")
    return mv, desc, ftype, pos


def _decoded(desc: Descriptor, ftype: FieldType, col: Any, field: Field | None, packed: bool = False) -> InsertLog:
    try:
        return _insert_log(desc, ftype, col, field, packed)
    except CorruptData:
        raise
    except _ARROW_ERRORS as e:
        _corrupt(f"field {desc.field_id}: bad {ftype.value} payload: {_one_line(e)}")


def read_insert_log(data: bytes | bytearray | memoryview, field: Field | None = None) -> InsertLog:
    """Decode one insert binlog. With ``field`` (the schema's field the file belongs to), the payload's type, vector
    dimension and ARRAY element type must match it; without, they are taken from the file."""
    mv, desc, ftype, pos = _open_insert(data, field)
    cols = [_table(p) for p in _events(mv, pos, INSERT_EVENT)]
    if not cols:
        _corrupt(f"field {desc.field_id}: an insert log without events")
    import pyarrow as pa

    try:
        col = pa.chunked_array([c for arr in cols for c in arr.chunks], type=cols[0].type)
    except _ARROW_ERRORS as e:
        _corrupt(f"the events of one binlog hold different types: {_one_line(e)}")
    return _decoded(desc, ftype, col, field)


#: rows segment_chunks decodes at a time by default (a data chunk's rows, as a backup's default batch)
BATCH_ROWS = 5000


def iter_insert_log(data: bytes | bytearray | memoryview, field: Field | None = None, *,
                    batch_rows: int = BATCH_ROWS, packed: bool = False) -> Iterator[InsertLog]:
    """read_insert_log in pieces of at most ``batch_rows`` rows (fewer at the end of a Parquet row group or an
    event), each decoded only when asked for: a compacted segment's log holds the field's whole column. The
    descriptor is checked at once, the payloads as they are read. ``packed``: VARCHAR, JSON and ARRAY values as
    codec.Packed where they can be (module doc)."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    mv, desc, ftype, pos = _open_insert(data, field)
    return _insert_batches(mv, desc, ftype, pos, field, batch_rows, packed)


def _insert_batches(mv: memoryview, desc: Descriptor, ftype: FieldType, pos: int, field: Field | None,
                    batch_rows: int, packed: bool) -> Iterator[InsertLog]:
    import pyarrow as pa

    events = 0
    for payload in _events(mv, pos, INSERT_EVENT):
        events += 1
        for arr in _payload_batches(payload, batch_rows):
            yield _decoded(desc, ftype, pa.chunked_array([arr]), field, packed)
    if not events:
        _corrupt(f"field {desc.field_id}: an insert log without events")


def _payload_batches(payload: memoryview, batch_rows: int) -> Iterator[Any]:
    """The one column of an event's Parquet payload, ``batch_rows`` rows at a time (pyarrow Arrays)."""
    import pyarrow as pa

    pf = _parquet(payload)
    try:
        batches = pf.iter_batches(batch_size=batch_rows, use_threads=False)
        column_type = pf.schema_arrow.types[0]
    except _ARROW_ERRORS as e:
        _corrupt(f"bad Parquet payload: {_one_line(e)}")
    rows = 0
    while True:
        try:
            batch = next(batches)
            columns = batch.columns  # by position: a column's name may not even be UTF-8
        except StopIteration:
            break
        except _ARROW_ERRORS as e:
            _corrupt(f"bad Parquet payload: {_one_line(e)}")
        if len(columns) != 1:  # pragma: no cover - the file's metadata said 1
            _corrupt(f"a payload has {len(columns)} columns, expected 1")
        rows += len(columns[0])
        yield columns[0]
    if not rows:  # no batch: the column's type is still checked, as read_insert_log does
        yield pa.array([], type=column_type)


def _insert_log(desc: Descriptor, ftype: FieldType, col: Any, field: Field | None, packed: bool = False
                ) -> InsertLog:
    n = len(col)
    valid = _valid(col)
    dim = None
    values: np.ndarray | list[Any] | Packed
    if ftype in SCALAR_DTYPES:
        values = _numbers(col, ftype, n)
    elif ftype.is_dense_vector:
        values, dim = _vectors(col, ftype, n)
        if field is not None and field.dim is not None and field.dim != dim:
            _corrupt(f"field {field.name!r} has dim {field.dim} but its binlog holds vectors of dim {dim}")
    elif ftype is FieldType.VARCHAR:
        as_is = _packed_texts(col) if packed else None
        values = as_is if as_is is not None else _texts(col, ftype)
    elif ftype is FieldType.JSON:
        as_is = _packed_json(col) if packed else None
        values = as_is if as_is is not None else _json(col)
    else:  # ARRAY
        element_type = field.element_type if field is not None else None
        as_is = _packed_array_column(col, element_type) if packed else None
        values = as_is if as_is is not None else _arrays(col, element_type)
    return InsertLog(desc, ftype, Column(values, valid), n, dim)


def read_delta_log(data: bytes | bytearray | memoryview) -> DeltaLog:
    """Decode one delta log: each deleted primary key with the delete's timestamp. Milvus 2.3 writes each as a
    JSON string ``{"pk": .., "ts": .., "pkType": 5|21}``; older servers wrote ``"pk,ts"`` (INT64 keys)."""
    mv = memoryview(data).cast("B")
    desc, pos = _descriptor(mv)
    if DATA_TYPES.get(desc.data_type) is not FieldType.VARCHAR:
        _corrupt(f"a delta log with payload data type {desc.data_type}, not String")
    texts: list[Any] = []
    for payload in _events(mv, pos, DELETE_EVENT):
        col = _table(payload)
        try:
            texts += _texts(col, FieldType.VARCHAR)
        except CorruptData:
            raise
        except _ARROW_ERRORS as e:
            _corrupt(f"bad delete payload: {_one_line(e)}")
    ints: list[int] = []
    strs: list[str] = []
    ts: list[int] = []
    for t in texts:
        pk, when, ptype = _delete_record(t)
        if ptype is FieldType.INT64:
            ints.append(pk)
        else:
            strs.append(pk)
        ts.append(when)
    if ints and strs:
        _corrupt("a delta log mixes INT64 and VARCHAR primary keys")
    pks: np.ndarray | list[str] = strs if strs else np.array(ints, dtype=np.int64)
    return DeltaLog(desc, pks, np.array(ts, dtype=np.uint64))


def _delete_record(text: Any) -> tuple[Any, int, FieldType]:
    if not isinstance(text, str):
        _corrupt("a delete record is null")
    if text.startswith("{"):
        try:
            rec = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            _corrupt(f"a delete record is not JSON: {_one_line(e)}")
        if not isinstance(rec, dict):
            _corrupt("a delete record is not a JSON object")
        pk, when, ptype = rec.get("pk"), rec.get("ts"), _PK_TYPES.get(rec.get("pkType"))  # type: ignore[arg-type]
        if ptype is None:
            _corrupt(f"a delete record has pkType {rec.get('pkType')!r}")
        if ptype is FieldType.INT64 and not (type(pk) is int and -(2**63) <= pk < 2**63):
            _corrupt(f"a delete record's INT64 key is {pk!r}")
        if ptype is FieldType.VARCHAR and not isinstance(pk, str):
            _corrupt(f"a delete record's VARCHAR key is {pk!r}")
    else:
        head, sep, tail = text.partition(",")
        try:
            pk, when, ptype = int(head), int(tail), FieldType.INT64
        except ValueError:
            _corrupt(f"a delete record is neither JSON nor 'pk,ts': {text[:40]!r}")
        if not sep or not -(2**63) <= pk < 2**63:
            _corrupt(f"a delete record is neither JSON nor 'pk,ts': {text[:40]!r}")
    if not (type(when) is int and 0 <= when < 2**64):
        _corrupt(f"a delete record's timestamp is {when!r}")
    return pk, when, ptype


# --------------------------------------------------------------------------- segments


def deletes(logs: Sequence[DeltaLog]) -> dict[Any, int]:
    """The largest delete timestamp of each primary key the delta logs name (of one segment or a whole
    collection), the ``deleted`` mapping segment_chunks takes."""
    out: dict[Any, int] = {}
    for log in logs:
        pks = log.pks.tolist() if isinstance(log.pks, np.ndarray) else log.pks
        for pk, ts in zip(pks, log.timestamps.tolist(), strict=True):
            if ts > out.get(pk, -1):
                out[pk] = ts
    return out


def segment_chunks(spec: CollectionSpec, field_ids: Mapping[str, int], binlogs: Mapping[int, Sequence[bytes]],
                   deleted: Mapping[Any, int], partition: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[Chunk]:
    """The rows of one segment as chunks of ``spec.columns``, at most ``batch_rows`` rows each before the deletes
    (segment_batches), without the rows a delete removed.

    ``deleted`` maps a primary key to the largest timestamp of a delete of it (deletes(), over the delta logs of
    every segment of the collection). A row is gone when a delete of its key is later than its insert: it survives
    iff its timestamp >= deleted[pk]. (An upsert writes its delete and its new row with one timestamp, and the
    new row stays.)"""
    pk_name = spec.primary.name
    for chunk, born in segment_batches(spec, field_ids, binlogs, partition, batch_rows=batch_rows):
        if deleted:
            keys = chunk.columns[pk_name].values
            key_list = keys.tolist() if isinstance(keys, np.ndarray) else keys
            gone = np.fromiter((deleted.get(k, 0) for k in key_list), dtype=np.uint64, count=chunk.num_rows)
            keep = np.flatnonzero(born >= gone)
            if len(keep) != chunk.num_rows:
                chunk = take_rows(chunk, keep)
        if chunk.num_rows:
            yield chunk


def segment_batches(spec: CollectionSpec, field_ids: Mapping[str, int], binlogs: Mapping[int, Sequence[bytes]],
                    partition: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[tuple[Chunk, np.ndarray]]:
    """Every row of one segment (deleted ones too), in its order, as chunks of ``spec.columns`` of at most
    ``batch_rows`` rows, each with its rows' insert timestamps (uint64), from its aligned groups of insert logs
    (log i of every field, the timestamps (1) included), one group at a time and within a group ``batch_rows`` rows
    at a time. The dynamic field is ``field_ids["$meta"]``; without that entry, the one binlog field id no field of
    ``spec`` has.

    Memory: the files of one group (log i of each field) and one batch of decoded rows. The sequences of
    ``binlogs`` may be lazy (e.g. fetching from a store on ``__getitem__``): item i of each is taken once, for
    group i, and not kept after it."""
    for group in segment_groups(spec, field_ids, binlogs, partition):
        yield from group.batches(batch_rows)


@dataclass(frozen=True)
class LogGroup:
    """Log ``index`` of every field of one segment (the timestamps' included), as bytes, with what decoding them
    needs: picklable, so a worker process can decode and encode it (ops/segment_backup.py)."""

    spec: CollectionSpec
    columns: tuple[tuple[str, int], ...]  # (column name, field id) of every column of ``spec``
    partition: str  # the chunks' partition
    index: int  # which log of each field (for messages)
    #: field id -> that field's log ``index`` (a mapping may read each when asked: each is asked for once)
    files: Mapping[int, bytes | memoryview]

    def batches(self, batch_rows: int = BATCH_ROWS, *, packed: bool = False) -> Iterator[tuple[Chunk, np.ndarray]]:
        """The group's rows as chunks of at most ``batch_rows`` rows, with their insert timestamps (uint64).
        ``packed``: VARCHAR, JSON and ARRAY values other than the primary key's as codec.Packed where they can be,
        for a chunk that is only encoded (module doc)."""
        i, spec = self.index, self.spec
        streams: dict[str, Iterator[InsertLog]] = {}
        ts_stream = iter_insert_log(self.files[TIMESTAMP_FIELD], batch_rows=batch_rows)
        for name, fid in self.columns:
            data = self.files[fid]
            holds = _descriptor(memoryview(data).cast("B"))[0].field_id
            if holds != fid:
                _corrupt(f"binlog {i} of field {name!r} (id {fid}) holds field {holds}")
            streams[name] = iter_insert_log(data, _column_field(spec, name), batch_rows=batch_rows,
                                            packed=packed and name != spec.primary.name)
        for ts_log in ts_stream:
            n = ts_log.num_rows
            columns: dict[str, Column] = {}
            for name, stream in streams.items():
                log = next(stream, None)
                if log is None or log.num_rows != n:
                    got = "fewer" if log is None else log.num_rows
                    _corrupt(f"binlog {i} of field {name!r} has {got} rows where the timestamps have {n}")
                columns[name] = log.column
            born = np.asarray(ts_log.column.values, dtype=np.int64).astype(np.uint64)
            yield Chunk(self.partition, n, columns), born
        for name, stream in streams.items():
            if next(stream, None) is not None:
                _corrupt(f"binlog {i} of field {name!r} has more rows than the timestamps")


def segment_groups(spec: CollectionSpec, field_ids: Mapping[str, int], binlogs: Mapping[int, Sequence[bytes]],
                   partition: str) -> Iterator[LogGroup]:
    """The aligned groups of one segment's insert logs (segment_batches), one at a time: item i of each sequence of
    ``binlogs`` is taken when group i is reached."""
    ids = _column_ids(spec, field_ids, binlogs)
    counts = {len(binlogs.get(fid, ())) for fid in (*ids.values(), TIMESTAMP_FIELD)}
    if len(counts) != 1:
        _corrupt(f"the fields of a segment have different numbers of binlogs ({sorted(counts)})")
    n_logs = counts.pop()
    wanted = dict.fromkeys((TIMESTAMP_FIELD, *ids.values()))
    for i in range(n_logs):
        yield LogGroup(spec, tuple(ids.items()), partition, i, {fid: binlogs[fid][i] for fid in wanted})


def _column_field(spec: CollectionSpec, name: str) -> Field | None:
    return None if name == DYNAMIC_COLUMN else spec.field(name)


def _column_ids(spec: CollectionSpec, field_ids: Mapping[str, int],
                binlogs: Mapping[int, Sequence[bytes]]) -> dict[str, int]:
    """Column name -> field id, for every column of ``spec`` (the dynamic field's id found when not given)."""
    ids: dict[str, int] = {}
    for col in spec.columns:
        if col.name in field_ids:
            ids[col.name] = field_ids[col.name]
        elif col.name != DYNAMIC_COLUMN:
            raise ValueError(f"no field id for field {col.name!r}")
    if spec.enable_dynamic_field and DYNAMIC_COLUMN not in ids:
        known = {*ids.values(), ROW_ID_FIELD, TIMESTAMP_FIELD}
        others = [fid for fid in binlogs if fid not in known]
        if len(others) != 1:
            _corrupt(f"cannot tell the dynamic field's binlogs among field ids {sorted(others)}")
        ids[DYNAMIC_COLUMN] = others[0]
    for name, fid in ids.items():
        if fid not in binlogs:
            _corrupt(f"the segment has no binlog of field {name!r} (id {fid})")
    if TIMESTAMP_FIELD not in binlogs:
        _corrupt("the segment has no binlog of the timestamps (field 1)")
    return ids


__all__ = [
    "BATCH_ROWS",
    "DATA_TYPES",
    "MAGIC",
    "DeltaLog",
    "Descriptor",
    "InsertLog",
    "LogGroup",
    "deletes",
    "iter_insert_log",
    "read_delta_log",
    "read_insert_log",
    "segment_batches",
    "segment_chunks",
    "segment_groups",
]
