"""Data chunks (``.vbc``): a batch of rows of one partition, column by column.

Pure functions, bytes in and bytes out; docs/FORMAT.md ("Data chunks") is the
normative description of the layout written and read here.

Layout::

    0   4  magic b"VBCK"
    4   2  uint16 LE chunk format version (1)
    6   2  uint16 LE flags (0)
    8   4  uint32 LE header length H
    12  4  uint32 LE CRC-32 of bytes 0..11 followed by the H header bytes
    16  H  header: UTF-8 JSON object
    16+H   buffer area: one zstd frame per buffer, contiguous, in header order

Decoded numpy arrays are read-only (most are zero-copy views of the
decompressed bytes); copy them before mutating.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import orjson
import zstandard

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.schema import FIXED_DTYPES, SCALAR_DTYPES, VECTOR_DTYPES, Field, FieldType, vector_width
from vecbackup.words import number

CHUNK_MAGIC = b"VBCK"
CHUNK_VERSION = 1
#: the zstd level a backup compresses at unless told otherwise. 1, not zstd's own default 3: on vecbackup's chunks
#: (byte-shuffled float vectors beside text, JSON and numbers) level 1 stores fewer bytes, not more, in about two
#: thirds of the time (benchmarks/RESULTS.md section 1; docs/SCALING.md, "Where a segment backup's time goes")
DEFAULT_LEVEL = 1
#: chunk format versions this build can read
READABLE_VERSIONS: tuple[int, ...] = (1,)
#: size of the fixed prefix (magic, version, flags, header length, header CRC-32)
PREFIX_SIZE = 16

_PREFIX12 = struct.Struct("<4sHHI")
_CRC = struct.Struct("<I")

# A zstd block regenerates at most 128 KiB and the smallest block (RLE) takes 4 bytes, so no valid
# frame decompresses to more than 32768 times its own size.
_MAX_ZSTD_RATIO = 32768

_U1 = np.dtype("|u1")
_U4 = np.dtype("<u4")
_F4 = np.dtype("<f4")
_BOOL = np.dtype("|b1")

#: largest dense vector dim a header may declare (engines allow at most tens of thousands); beyond it numpy could
#: not even shape an empty column
MAX_DIM = 2**31 - 1

#: element types an ARRAY column may have (and STRUCT, with its struct fields)
ARRAY_ELEMENT_TYPES: frozenset[FieldType] = frozenset(SCALAR_DTYPES) | {FieldType.VARCHAR}
#: types a field of a struct may have: an ARRAY element type or a dense vector
STRUCT_FIELD_TYPES: frozenset[FieldType] = ARRAY_ELEMENT_TYPES | frozenset(VECTOR_DTYPES)

#: a struct field as the payload layout needs it: (type, dim)
Member = tuple[FieldType, int | None]


@dataclass(frozen=True)
class Packed(Sequence[Any]):
    """The values of a VARCHAR, JSON or ARRAY column already as the chunk format stores them: VARCHAR and JSON as
    its ``lengths`` and ``data`` buffers (each row's UTF-8 bytes, or its JSON as orjson writes it, one after the
    other, and their lengths), an ARRAY of a scalar element type as its ``lengths`` and ``values`` buffers (each row's
    element count, and the elements in the element type's dtype); a null row's length is 0. A decoder that checked
    them makes one (format/binlog.py), so that encode_chunk stores them without a Python value per row; read as a
    sequence, it decodes its values."""

    type: FieldType  # VARCHAR, JSON or ARRAY
    lengths: np.ndarray  # uint32, one per row: bytes, or elements
    data: np.ndarray  # uint8 bytes, or the elements (ARRAY)
    element_type: FieldType | None = None  # ARRAY: its element type (a scalar, not VARCHAR)

    def __post_init__(self) -> None:
        if self.type is FieldType.ARRAY:
            if self.element_type not in SCALAR_DTYPES:
                raise ValueError(f"packed ARRAY elements are scalars, not {self.element_type}")
            dtype = np.dtype(SCALAR_DTYPES[self.element_type])
        elif self.type in (FieldType.VARCHAR, FieldType.JSON) and self.element_type is None:
            dtype = _U1
        else:
            raise ValueError(f"packed values are VARCHAR, JSON or ARRAY, not {self.type.value}")
        if self.lengths.dtype != _U4 or self.data.dtype != dtype or self.lengths.ndim != 1 or self.data.ndim != 1:
            raise ValueError(f"packed {self.type.value} values are uint32 lengths and {dtype} data")
        if int(self.lengths.sum(dtype=np.int64)) != len(self.data):
            raise ValueError(f"packed values: lengths add up to {int(self.lengths.sum(dtype=np.int64))}, the data "
                             f"holds {len(self.data)}")

    def __len__(self) -> int:
        return len(self.lengths)

    def _value(self, start: int, length: int) -> Any:
        if self.type is FieldType.ARRAY:
            return self.data[start:start + length].tolist()
        raw = self.data[start:start + length].tobytes()
        if self.type is FieldType.VARCHAR:
            return raw.decode("utf-8")
        return orjson.loads(raw) if raw else None  # no JSON value is empty: a null row's

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError("packed value index out of range")
        start = int(self.lengths[:j].sum(dtype=np.int64))
        return self._value(start, int(self.lengths[j]))

    def __iter__(self) -> Iterator[Any]:
        start = 0
        for length in self.lengths.tolist():
            yield self._value(start, length)
            start += length

    def tolist(self) -> list[Any]:
        return list(self)


@dataclass
class Column:
    """One column of a chunk. ``valid`` (True = value present) is None when the column has no nulls."""

    values: np.ndarray | list[Any] | Packed
    valid: np.ndarray | None = None


@dataclass
class Chunk:
    partition: str
    num_rows: int
    columns: dict[str, Column]  # keyed by field name


# --------------------------------------------------------------------------- buffer layouts


def _element_buffers(element_type: FieldType) -> list[tuple[str, np.dtype]]:
    """The buffers holding the elements of an ARRAY (or one field of the structs of an ARRAY of STRUCT)."""
    if element_type is FieldType.VARCHAR:
        return [("elem_lengths", _U4), ("elem_data", _U1)]
    return [("values", np.dtype(SCALAR_DTYPES.get(element_type) or VECTOR_DTYPES[element_type]))]


def _payload_buffers(ftype: FieldType, element_type: FieldType | None,
                     members: Sequence[Member] = ()) -> list[tuple[str, np.dtype]]:
    """The (kind, dtype) of every buffer a column holds after its optional validity buffer."""
    if ftype in FIXED_DTYPES:
        return [("values", np.dtype(FIXED_DTYPES[ftype]))]
    if ftype in VECTOR_DTYPES:
        return [("values", np.dtype(VECTOR_DTYPES[ftype]))]
    if ftype in (FieldType.VARCHAR, FieldType.JSON, FieldType.GEOMETRY):
        return [("lengths", _U4), ("data", _U1)]
    if ftype is FieldType.ARRAY:
        assert element_type is not None
        if element_type is FieldType.STRUCT:
            return [("lengths", _U4), *(b for t, _ in members for b in _element_buffers(t))]
        return [("lengths", _U4), *_element_buffers(element_type)]
    if ftype is FieldType.SPARSE_FLOAT_VECTOR:
        return [("lengths", _U4), ("indices", _U4), ("values", _F4)]
    raise AssertionError(f"unhandled field type {ftype}")  # pragma: no cover


# --------------------------------------------------------------------------- encoding


#: zstd's match finder tuned for byte-shuffled float32 vectors, used at levels 1 to 3: a 128 KiB window, a 256-entry
#: hash table and matches of 7 bytes or more. Such a buffer is three planes of mantissa bytes that nothing
#: compresses and a plane of sign and exponent bytes that entropy coding compresses and matches barely do, so a
#: smaller search finds as much in less time: on 5,000 x 768 Gaussian vectors, 0.8% fewer bytes than level 1's own
#: parameters in about half the time (docs/SCALING.md, "zstd parameters for vectors"). Any zstd decoder reads the
#: frames, so the format does not change.
_VECTOR_LEVELS = range(1, 4)
_VECTOR_PARAMS = {"window_log": 17, "hash_log": 8, "min_match": 7}


class _Writer:
    """Compresses buffers into zstd frames and records their header entries."""

    def __init__(self, level: int, raw: list[tuple[str, np.ndarray]] | None = None) -> None:
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        self._level = level
        self._vectors: zstandard.ZstdCompressor | None = None
        self.frames: list[bytes] = []
        self.offset = 0
        self.raw = raw  # when given: every buffer before compression, in order (for the row digests)

    def add(self, kind: str, arr: np.ndarray, *, vectors: bool = False) -> dict[str, Any]:
        """One buffer; ``vectors``: it holds float32 vectors (compressed with _VECTOR_PARAMS)."""
        arr = np.ascontiguousarray(arr).reshape(-1)
        if self.raw is not None:
            self.raw.append((kind, arr))
        itemsize = arr.dtype.itemsize
        raw_bytes = arr.view(_U1)
        if itemsize > 1:
            raw_bytes = raw_bytes.reshape(-1, itemsize).T.reshape(-1)  # byte shuffle (copies)
        frame = (self._vector_cctx() if vectors else self._cctx).compress(raw_bytes.data)
        entry = {
            "kind": kind,
            "dtype": arr.dtype.str,
            "shuffle": itemsize if itemsize > 1 else 0,
            "offset": self.offset,
            "size": len(frame),
            "raw_size": arr.nbytes,
            "crc32": zlib.crc32(frame),
        }
        self.frames.append(frame)
        self.offset += len(frame)
        return entry

    def _vector_cctx(self) -> zstandard.ZstdCompressor:
        if self._level not in _VECTOR_LEVELS:
            return self._cctx
        if self._vectors is None:
            params = zstandard.ZstdCompressionParameters.from_level(
                1, write_checksum=True, write_content_size=True, **_VECTOR_PARAMS)
            self._vectors = zstandard.ZstdCompressor(compression_params=params)
        return self._vectors


class _Capture(_Writer):
    """Keeps each buffer as it is, compresses nothing (for the row digests of rows that are not stored)."""

    def __init__(self) -> None:
        self.frames = []
        self.offset = 0
        self.raw = []

    def add(self, kind: str, arr: np.ndarray, *, vectors: bool = False) -> dict[str, Any]:
        assert self.raw is not None
        self.raw.append((kind, np.ascontiguousarray(arr).reshape(-1)))
        return {"kind": kind}


def _bad_input(msg: str) -> NoReturn:
    """Every problem with the data handed to encode_chunk is a ValueError (wrong types included)."""
    raise ValueError(msg)


def _cast(src: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """Convert to ``dtype`` without silently changing values (floats may round to float32)."""
    if src.dtype == dtype:
        return src
    if src.size == 0:
        return src.astype(dtype)
    sk, tk = src.dtype.kind, dtype.kind
    if tk == "f" and sk in "biuf":
        return src.astype(dtype)
    if tk in "iu" and sk == "b":
        return src.astype(dtype)
    if tk in "iu" and sk in "iu":
        info = np.iinfo(dtype)
        lo, hi = int(src.min()), int(src.max())
        if lo < info.min or hi > info.max:
            raise ValueError(f"{what}: value out of range for {dtype} (min {lo}, max {hi})")
        return src.astype(dtype)
    if tk == "b" and sk in "iu":
        if src.size and (int(src.min()) < 0 or int(src.max()) > 1):
            raise ValueError(f"{what}: boolean values must be 0/1 or True/False")
        return src.astype(dtype)
    hint = ""
    if sk == "f" and src.dtype.itemsize == 2 and dtype == np.dtype("<u2"):
        hint = " (16-bit float vectors are held as raw bit patterns: pass arr.view(np.uint16))"
    raise ValueError(f"{what}: cannot store {src.dtype} values as {dtype}{hint}")


def _fixed_array(
    values: Any, dtype: np.dtype, n: int, tail: tuple[int, ...], valid: np.ndarray | None, what: str
) -> np.ndarray:
    """Fixed-width column values as a contiguous LE array of shape (n, *tail), zeros at nulls."""
    if isinstance(values, np.ndarray) and values.ndim == 0:
        raise ValueError(f"{what}: expected {n} values, got a scalar")
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} values (num_rows), got {len(values)}")
    if valid is not None and (not isinstance(values, np.ndarray) or values.dtype == object):
        filler: Any = [0] * tail[0] if tail else 0
        values = [v if ok else filler for v, ok in zip(values, valid.tolist(), strict=True)]
    try:
        src = np.asarray(values)
        if dtype.kind in "iu" and src.dtype.kind in "fO" and not isinstance(values, np.ndarray):
            _check_int_list(values, dtype, what)  # numpy turns e.g. [-1, 2**63] into float64
        arr = _cast(src, dtype, what)
    except (TypeError, ValueError, OverflowError) as e:
        msg = str(e)
        raise ValueError(
            msg if msg.startswith(what) else f"{what}: cannot convert values to {dtype}: {msg}"
        ) from e
    if n == 0 and arr.size == 0:
        arr = arr.reshape((0, *tail))
    if arr.shape != (n, *tail):
        raise ValueError(f"{what}: expected shape {(n, *tail)}, got {arr.shape}")
    if valid is not None:
        arr = arr.copy()
        arr[~valid] = 0
    return np.ascontiguousarray(arr)


def _check_int_list(values: Any, dtype: np.dtype, what: str) -> None:
    """Raise a precise error for a list of Python ints that does not fit ``dtype``."""
    ints = [v for v in values if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
    if ints and len(ints) == len(values):
        info = np.iinfo(dtype)
        lo, hi = int(min(ints)), int(max(ints))
        if lo < info.min or hi > info.max:
            raise ValueError(f"{what}: value out of range for {dtype} (min {lo}, max {hi})")


def _counts_array(counts: Sequence[int], what: str) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.int64)
    if arr.size and int(arr.max()) > 0xFFFFFFFF:
        raise ValueError(f"{what}: a value is longer than 2**32 - 1 bytes or elements")
    return arr.astype(_U4)


def _encode_varchar(v: Any) -> bytes:
    if not isinstance(v, str):
        _bad_input(f"expected str, got {type(v).__name__}")
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"string is not encodable as UTF-8: {e}") from e


def _has_nonfinite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


def _encode_json(v: Any) -> bytes:
    try:
        out = orjson.dumps(v)
    except orjson.JSONEncodeError as e:
        raise ValueError(f"not a JSON value: {e}") from e
    # orjson writes NaN/Infinity as null; refuse rather than silently change the value
    if b"null" in out and _has_nonfinite(v):
        raise ValueError("JSON cannot hold NaN or Infinity")
    return out


def _encode_varlen(
    values: Any, valid: list[bool] | None, what: str, enc: Callable[[Any], bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """Lengths and bytes of each value encoded by ``enc`` (b"" for a null row); a ValueError of ``enc`` is raised
    again naming the row (found on a second pass: the first builds no message per row)."""
    try:
        if valid is None:
            parts = [enc(v) for v in values]
        else:
            parts = [enc(v) if ok else b"" for v, ok in zip(values, valid, strict=True)]
    except ValueError:
        for i, v in enumerate(values):
            if valid is None or valid[i]:
                try:
                    enc(v)
                except ValueError as e:
                    raise ValueError(f"{what} row {i}: {e}") from e
        raise
    return _counts_array([len(p) for p in parts], what), np.frombuffer(b"".join(parts), dtype=_U1)


def _encode_json_values(values: Any, valid: list[bool] | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """_encode_varlen with _encode_json, without a call of it per row: orjson over every row at once, the check
    for NaN and Infinity (written as null) only on the rows whose JSON holds a null; a value it refuses is found
    and named as _encode_varlen names it."""
    dumps = orjson.dumps
    try:
        if valid is None:
            parts = [dumps(v) for v in values]
        else:
            parts = [dumps(v) if ok else b"" for v, ok in zip(values, valid, strict=True)]
    except (orjson.JSONEncodeError, ValueError):
        return _encode_varlen(values, valid, what, _encode_json)  # raises, naming the row
    data = b"".join(parts)
    if b"null" in data:
        for i, part in enumerate(parts):
            if b"null" in part and _has_nonfinite(values[i]):
                raise ValueError(f"{what} row {i}: JSON cannot hold NaN or Infinity")
    return _counts_array([len(p) for p in parts], what), np.frombuffer(data, dtype=_U1)


def _packed_buffers(f: Field, t: FieldType, values: Packed, n: int, valid: np.ndarray | None, what: str
                    ) -> list[tuple[str, np.ndarray]]:
    """The buffers of a column handed over already encoded (Packed), after its validity buffer."""
    if values.type is not t or values.element_type != (f.element_type if t is FieldType.ARRAY else None):
        held = values.type.value + (f" of {values.element_type.value}" if values.element_type else "")
        raise ValueError(f"{what}: packed {held} values in this column")
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} values (num_rows), got {len(values)}")
    if valid is not None and values.lengths[~valid].any():
        raise ValueError(f"{what}: a null row has packed values")
    return [("lengths", values.lengths), ("values" if t is FieldType.ARRAY else "data", values.data)]


def _check_valid(valid: Any, n: int, what: str) -> np.ndarray | None:
    """The validity mask as a bool array, or None when every row is valid."""
    if valid is None:
        return None
    arr = np.asarray(valid)
    if arr.dtype != _BOOL:
        if arr.dtype.kind not in "iu" or (arr.size and (int(arr.min()) < 0 or int(arr.max()) > 1)):
            raise ValueError(f"{what}: valid must be a bool array, got {arr.dtype}")
        arr = arr.astype(bool)
    if arr.shape != (n,):
        raise ValueError(f"{what}: valid must have shape ({n},), got {arr.shape}")
    if arr.all():
        return None
    return arr


def _seq_len(values: Any, n: int, what: str) -> None:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise ValueError(f"{what}: values must be a list, got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} values (num_rows), got {len(values)}")


def _encode_column(w: _Writer, f: Field, col: Column, n: int) -> dict[str, Any]:
    what = f"column {f.name!r} ({f.type.value})"
    t = FieldType(f.type)
    valid = _check_valid(col.valid, n, what)
    vlist = valid.tolist() if valid is not None else None
    entry: dict[str, Any] = {"name": f.name, "type": t.value}
    bufs: list[dict[str, Any]] = []
    if t.is_dense_vector:
        if not isinstance(f.dim, int) or isinstance(f.dim, bool) or f.dim <= 0:
            raise ValueError(f"{what}: dense vector field needs a positive dim, got {f.dim!r}")
        if t is FieldType.BINARY_VECTOR and f.dim % 8:
            raise ValueError(f"{what}: BINARY_VECTOR dim must be a multiple of 8, got {f.dim}")
        entry["dim"] = f.dim
    if t is FieldType.ARRAY:
        if f.element_type is None or FieldType(f.element_type) not in (*ARRAY_ELEMENT_TYPES, FieldType.STRUCT):
            raise ValueError(f"{what}: unsupported ARRAY element_type {f.element_type!r}")
        entry["element_type"] = FieldType(f.element_type).value
        if entry["element_type"] == FieldType.STRUCT.value:
            entry["struct_fields"] = _struct_entries(f, what)
    elif f.struct_fields:
        raise ValueError(f"{what}: only an ARRAY of STRUCT has struct fields")
    if valid is not None:
        bufs.append(w.add("validity", np.packbits(valid, bitorder="little")))

    if t in FIXED_DTYPES:
        bufs.append(w.add("values", _fixed_array(col.values, np.dtype(FIXED_DTYPES[t]), n, (), valid, what)))
    elif t.is_dense_vector:
        assert f.dim is not None
        width = vector_width(t, f.dim)
        dtype = np.dtype(VECTOR_DTYPES[t])
        bufs.append(w.add("values", _fixed_array(col.values, dtype, n, (width,), valid, what),
                          vectors=t is FieldType.FLOAT_VECTOR))
    elif isinstance(col.values, Packed):
        bufs.extend(w.add(kind, arr) for kind, arr in _packed_buffers(f, t, col.values, n, valid, what))
    elif t in (FieldType.VARCHAR, FieldType.JSON, FieldType.GEOMETRY):
        _seq_len(col.values, n, what)
        if t is FieldType.JSON:
            lengths, data = _encode_json_values(col.values, vlist, what)
        else:
            lengths, data = _encode_varlen(col.values, vlist, what, _encode_varchar)
        bufs.append(w.add("lengths", lengths))
        bufs.append(w.add("data", data))
    elif t is FieldType.ARRAY and entry["element_type"] == FieldType.STRUCT.value:
        _seq_len(col.values, n, what)
        bufs.extend(_encode_structs(w, f.struct_fields, col.values, vlist, what))
    elif t is FieldType.ARRAY:
        _seq_len(col.values, n, what)
        bufs.extend(_encode_array(w, FieldType(entry["element_type"]), col.values, vlist, what))
    elif t is FieldType.SPARSE_FLOAT_VECTOR:
        _seq_len(col.values, n, what)
        bufs.extend(_encode_sparse(w, col.values, vlist, what))
    else:  # pragma: no cover
        raise ValueError(f"{what}: unsupported field type")
    entry["buffers"] = bufs
    return entry


def _encode_array(
    w: _Writer, et: FieldType, values: Any, valid: list[bool] | None, what: str
) -> list[dict[str, Any]]:
    counts: list[int] = []
    flat: list[Any] = []
    if valid is None and all([type(v) is list for v in values]):  # the common case, without a step per row
        counts = [len(v) for v in values]
        flat = list(itertools.chain.from_iterable(values))
    else:
        for i, v in enumerate(values):
            if valid is not None and not valid[i]:
                counts.append(0)
                continue
            if v is None or isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
                raise ValueError(f"{what} row {i}: expected a list, got {type(v).__name__}")
            counts.append(len(v))
            flat.extend(v)
    out = [w.add("lengths", _counts_array(counts, what))]
    if et is FieldType.VARCHAR:
        elem_lengths, elem_data = _encode_varlen(flat, None, f"{what} element", _encode_varchar)
        out.append(w.add("elem_lengths", elem_lengths))
        out.append(w.add("elem_data", elem_data))
    else:
        dtype = np.dtype(SCALAR_DTYPES[et])
        elems = _fixed_array(flat, dtype, len(flat), (), None, f"{what} elements")
        out.append(w.add("values", elems))
    return out


def _struct_entries(f: Field, what: str) -> list[dict[str, Any]]:
    """The header's ``struct_fields`` of an ARRAY of STRUCT: name, type and (dense vectors) dim of each."""
    if not f.struct_fields:
        raise ValueError(f"{what}: an ARRAY of STRUCT needs struct fields")
    names = [m.name for m in f.struct_fields]
    if len(set(names)) != len(names) or not all(isinstance(m, str) and m for m in names):
        raise ValueError(f"{what}: struct field names must be distinct, non-empty strings: {names}")
    out: list[dict[str, Any]] = []
    for m in f.struct_fields:
        t = FieldType(m.type)
        if t not in STRUCT_FIELD_TYPES:
            raise ValueError(f"{what}: struct field {m.name!r} cannot be a {t.value}")
        entry: dict[str, Any] = {"name": m.name, "type": t.value}
        if t.is_dense_vector:
            if not isinstance(m.dim, int) or isinstance(m.dim, bool) or m.dim <= 0 or (
                    t is FieldType.BINARY_VECTOR and m.dim % 8):
                raise ValueError(f"{what}: struct field {m.name!r} needs a valid dim, got {m.dim!r}")
            entry["dim"] = m.dim
        out.append(entry)
    return out


def _encode_structs(w: _Writer, members: Sequence[Field], values: Any, valid: list[bool] | None,
                    what: str) -> list[dict[str, Any]]:
    """An ARRAY of STRUCT: the struct count of each row, then each struct field's values over every struct of the
    chunk, stored as an ARRAY of that field's type stores its elements."""
    counts: list[int] = []
    structs: list[Mapping[str, Any]] = []
    names = {m.name for m in members}
    for i, v in enumerate(values):
        if valid is not None and not valid[i]:
            counts.append(0)
            continue
        if v is None or isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
            raise ValueError(f"{what} row {i}: expected a list of structs, got {type(v).__name__}")
        for s in v:
            if not isinstance(s, Mapping) or set(s) != names:
                got = sorted(s) if isinstance(s, Mapping) else type(s).__name__
                raise ValueError(f"{what} row {i}: a struct must be a dict of {sorted(names)}, got {got}")
        counts.append(len(v))
        structs.extend(v)
    out = [w.add("lengths", _counts_array(counts, what))]
    m = len(structs)
    for f in members:
        t = FieldType(f.type)
        mwhat = f"{what} struct field {f.name!r}"
        items = [s[f.name] for s in structs]
        if t is FieldType.VARCHAR:
            elem_lengths, elem_data = _encode_varlen(items, None, mwhat, _encode_varchar)
            out.append(w.add("elem_lengths", elem_lengths))
            out.append(w.add("elem_data", elem_data))
        elif t in SCALAR_DTYPES:
            out.append(w.add("values", _fixed_array(items, np.dtype(SCALAR_DTYPES[t]), m, (), None, mwhat)))
        else:
            width = vector_width(t, f.dim or 0)
            out.append(w.add("values", _fixed_array(items, np.dtype(VECTOR_DTYPES[t]), m, (width,), None, mwhat)))
    return out


def _encode_sparse(w: _Writer, values: Any, valid: list[bool] | None, what: str) -> list[dict[str, Any]]:
    counts: list[int] = []
    indices: list[Any] = []
    vals: list[Any] = []
    for i, v in enumerate(values):
        if valid is not None and not valid[i]:
            counts.append(0)
            continue
        if not isinstance(v, Mapping):
            _bad_input(f"{what} row {i}: expected a dict index -> value, got {type(v).__name__}")
        try:
            items = sorted(v.items())
        except TypeError as e:
            raise ValueError(f"{what} row {i}: sparse indices must be integers: {e}") from e
        counts.append(len(items))
        indices.extend(k for k, _ in items)
        vals.extend(x for _, x in items)
    lengths = _counts_array(counts, what)
    idx = _fixed_array(indices, _U4, len(indices), (), None, f"{what} indices")
    fv = _fixed_array(vals, _F4, len(vals), (), None, f"{what} values")
    return [w.add("lengths", lengths), w.add("indices", idx), w.add("values", fv)]


def encode_chunk(fields: Sequence[Field], chunk: Chunk, *, level: int = DEFAULT_LEVEL,
                 raw: list[list[tuple[str, np.ndarray]]] | None = None) -> bytes:
    """Encode ``chunk``'s columns, in the order of ``fields``, as one ``.vbc`` chunk.

    ``raw``, when given, receives each column's buffers before compression (``(kind, array)`` in header order,
    one list per field): what format/digests.py hashes row by row. ``level=0`` (with ``raw``) only fills ``raw``
    and returns no chunk.

    Raises ValueError when a column is missing, extra, or does not match its field or num_rows.
    """
    n = chunk.num_rows
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"num_rows must be a non-negative int, got {n!r}")
    if not isinstance(chunk.partition, str):
        _bad_input(f"partition must be a str, got {type(chunk.partition).__name__}")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate field names in {names}")
    missing = [name for name in names if name not in chunk.columns]
    if missing:
        raise ValueError(f"chunk has no column for {number(len(missing), 'field')} {missing}")
    extra = [name for name in chunk.columns if name not in set(names)]
    if extra:
        raise ValueError(f"chunk has {number(len(extra), 'column')} {extra} that {'is' if len(extra) == 1 else 'are'} "
                         "not among the fields")
    w = _Capture() if level == 0 and raw is not None else _Writer(level, None if raw is None else [])
    columns = []
    for f in fields:
        columns.append(_encode_column(w, f, chunk.columns[f.name], n))
        if raw is not None and w.raw is not None:
            raw.append(w.raw)
            w.raw = []
    if isinstance(w, _Capture):
        return b""
    header = orjson.dumps({"rows": n, "partition": chunk.partition, "columns": columns})
    prefix = _PREFIX12.pack(CHUNK_MAGIC, CHUNK_VERSION, 0, len(header))
    crc = zlib.crc32(header, zlib.crc32(prefix))
    return b"".join([prefix, _CRC.pack(crc), header, *w.frames])


# --------------------------------------------------------------------------- decoding


def _corrupt(msg: str) -> NoReturn:
    raise CorruptData(f"corrupt data chunk: {msg}")


def _int(d: Mapping[str, Any], key: str, where: str, *, lo: int = 0, hi: int | None = None) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
        _corrupt(f"{where}: {key!r} must be an integer >= {lo}, got {v!r}")
    return v


def _split_prefix(data: bytes | bytearray | memoryview) -> tuple[memoryview, int]:
    """Check magic, version, CRC and flags; return (whole chunk view, header length)."""
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    if len(mv) < 4 or bytes(mv[:4]) != CHUNK_MAGIC:
        _corrupt(f"bad magic {bytes(mv[:4])!r} (expected {CHUNK_MAGIC!r}); not a vecbackup data chunk")
    if len(mv) < PREFIX_SIZE:
        if len(mv) >= 6:
            _check_version(int.from_bytes(mv[4:6], "little"))
        _corrupt(f"truncated: {len(mv)} bytes, shorter than the {PREFIX_SIZE}-byte prefix")
    _magic, version, flags, hlen = _PREFIX12.unpack_from(mv)
    _check_version(version)
    (crc,) = _CRC.unpack_from(mv, 12)
    if hlen > len(mv) - PREFIX_SIZE:
        _corrupt(f"truncated: header length {hlen} but only {len(mv) - PREFIX_SIZE} bytes follow the prefix")
    if zlib.crc32(mv[PREFIX_SIZE : PREFIX_SIZE + hlen], zlib.crc32(mv[:12])) != crc:
        _corrupt("header checksum mismatch")
    if flags:
        raise Unsupported(f"data chunk uses flags 0x{flags:04x}, which this build does not know")
    return mv, hlen


def _check_version(version: int) -> None:
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise Unsupported(
            f"data chunk format version {version} is not supported (this build reads version {readable})",
            hint="upgrade vecbackup to read this backup",
        )


def _header_type(value: Any, where: str, what: str) -> FieldType:
    """A type name from a chunk header: not a string is damage, an unknown name a newer writer."""
    if not isinstance(value, str):
        _corrupt(f"{where}: {what} must be a string")
    try:
        return FieldType(value)
    except ValueError:
        _unknown_type(where, value)


def _unknown_type(where: str, name: str) -> NoReturn:
    # The header passed its CRC, so an unknown type name comes from a newer writer, not from damage.
    raise Unsupported(
        f"data chunk {where} has type {name!r}, which this build does not know",
        hint="upgrade vecbackup to read this backup",
    )


def _parse_header(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], memoryview]:
    """Validate everything checkable without decompressing; return (header, buffer area)."""
    mv, hlen = _split_prefix(data)
    try:
        header = orjson.loads(mv[PREFIX_SIZE : PREFIX_SIZE + hlen])
    except orjson.JSONDecodeError as e:
        _corrupt(f"bad header JSON: {e}")
    area = mv[PREFIX_SIZE + hlen :]
    if not isinstance(header, dict):
        _corrupt("header is not a JSON object")
    _int(header, "rows", "header")
    if not isinstance(header.get("partition"), str):
        _corrupt("header: 'partition' must be a string")
    columns = header.get("columns")
    if not isinstance(columns, list):
        _corrupt("header: 'columns' must be a list")
    seen: set[str] = set()
    end = 0
    for i, col in enumerate(columns):
        if not isinstance(col, dict):
            _corrupt(f"header column {i} is not an object")
        name = col.get("name")
        if not isinstance(name, str):
            _corrupt(f"header column {i}: 'name' must be a string")
        if name in seen:
            _corrupt(f"duplicate column {name!r}")
        seen.add(name)
        where = f"column {name!r}"
        ftype = _header_type(col.get("type"), where, "'type'")
        element_type = None
        members: list[Member] = []
        if ftype is FieldType.STRUCT:
            _corrupt(f"{where}: STRUCT is an ARRAY element type, not a column type")
        if ftype.is_dense_vector:
            _dim(col, ftype, where)
        if ftype is FieldType.ARRAY:
            element_type = _header_type(col.get("element_type"), where, "ARRAY 'element_type'")
            if element_type is FieldType.STRUCT:
                members = _header_members(col, where)
            elif element_type not in ARRAY_ELEMENT_TYPES:
                _corrupt(f"{where}: bad ARRAY element_type {col.get('element_type')!r}")
        bufs = col.get("buffers")
        if not isinstance(bufs, list) or not all(isinstance(b, dict) for b in bufs):
            _corrupt(f"{where}: 'buffers' must be a list of objects")
        expected = _payload_buffers(ftype, element_type, members)
        if bufs and bufs[0].get("kind") == "validity":
            expected = [("validity", _U1), *expected]
        kinds = [b.get("kind") for b in bufs]
        if kinds != [k for k, _ in expected]:
            _corrupt(f"{where}: buffers {kinds} do not match {ftype.value} ({[k for k, _ in expected]})")
        for b, (kind, dtype) in zip(bufs, expected, strict=True):
            bwhere = f"{where} buffer {kind!r}"
            if b.get("dtype") != dtype.str:
                _corrupt(f"{bwhere}: dtype {b.get('dtype')!r}, expected {dtype.str!r}")
            shuffle = _int(b, "shuffle", bwhere)
            if shuffle not in (0, dtype.itemsize) or (shuffle == 1):
                _corrupt(f"{bwhere}: bad shuffle {shuffle} for itemsize {dtype.itemsize}")
            offset = _int(b, "offset", bwhere)
            size = _int(b, "size", bwhere)
            raw_size = _int(b, "raw_size", bwhere)
            _int(b, "crc32", bwhere, hi=0xFFFFFFFF)
            if offset != end:
                _corrupt(f"{bwhere}: offset {offset}, expected {end} (buffers must be contiguous)")
            end = offset + size
            if end > len(area):
                _corrupt(
                    f"{bwhere}: out of range (ends at {end}, buffer area is {len(area)} bytes; truncated?)"
                )
            if raw_size > size * _MAX_ZSTD_RATIO:
                _corrupt(f"{bwhere}: raw_size {raw_size} is impossible for a {size}-byte zstd frame")
    if end != len(area):
        _corrupt(f"{len(area) - end} unexpected trailing bytes after the last buffer")
    return header, area


def _dim(entry: Mapping[str, Any], ftype: FieldType, where: str) -> int:
    dim = _int(entry, "dim", where, lo=1, hi=MAX_DIM)
    if ftype is FieldType.BINARY_VECTOR and dim % 8:
        _corrupt(f"{where}: BINARY_VECTOR dim {dim} is not a multiple of 8")
    return dim


def _header_members(col: Mapping[str, Any], where: str) -> list[Member]:
    """The ``struct_fields`` of an ARRAY of STRUCT column: (type, dim) of each; an unknown type is a newer writer."""
    members = col.get("struct_fields")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
        _corrupt(f"{where}: 'struct_fields' must be a non-empty list of objects")
    out: list[Member] = []
    names: set[str] = set()
    for m in members:
        name = m.get("name")
        if not isinstance(name, str) or not name or name in names:
            _corrupt(f"{where}: struct field names must be distinct, non-empty strings")
        names.add(name)
        mwhere = f"{where} struct field {name!r}"
        t = _header_type(m.get("type"), mwhere, "'type'")
        if t not in STRUCT_FIELD_TYPES:
            _corrupt(f"{mwhere}: a struct field cannot be a {t.value}")
        out.append((t, _dim(m, t, mwhere) if t.is_dense_vector else None))
    return out


class _Reader:
    def __init__(self, area: memoryview) -> None:
        self._area = area
        self._dctx = zstandard.ZstdDecompressor()

    def read_bytes(self, where: str, b: dict[str, Any], dtype: np.dtype, count: int) -> bytes:
        """Decompress one buffer holding ``count`` elements of ``dtype``; check every size on the way."""
        bwhere = f"{where} buffer {b['kind']!r}"
        raw_size, offset, size = b["raw_size"], b["offset"], b["size"]
        if raw_size != count * dtype.itemsize:
            _corrupt(
                f"{bwhere}: raw_size {raw_size}, expected {count * dtype.itemsize} ({count} x {dtype.str})"
            )
        frame = self._area[offset : offset + size]
        if zlib.crc32(frame) != b["crc32"]:
            _corrupt(f"{bwhere}: checksum mismatch")
        try:
            content_size = zstandard.frame_content_size(frame)
            if content_size != raw_size:
                _corrupt(f"{bwhere}: zstd frame declares {content_size} bytes, header says {raw_size}")
            out = self._dctx.decompress(frame, max_output_size=raw_size, allow_extra_data=False)
        except zstandard.ZstdError as e:
            _corrupt(f"{bwhere}: zstd error: {e}")
        if len(out) != raw_size:
            _corrupt(f"{bwhere}: decompressed to {len(out)} bytes, expected {raw_size}")
        return out

    def read(self, where: str, b: dict[str, Any], dtype: np.dtype, count: int) -> np.ndarray:
        """Decompress one buffer into a read-only 1-D array of ``count`` elements of ``dtype``."""
        arr = np.frombuffer(self.read_bytes(where, b, dtype, count), dtype=_U1)
        shuffle = b["shuffle"]
        if shuffle:
            arr = np.ascontiguousarray(arr.reshape(shuffle, -1).T)
        arr = arr.view(dtype).reshape(-1)
        arr.flags.writeable = False
        return arr


def _check_bool(where: str, arr: np.ndarray) -> None:
    if arr.size and int(arr.view(_U1).max()) > 1:
        _corrupt(f"{where}: boolean byte other than 0 or 1")


def _offsets(counts: np.ndarray) -> list[int]:
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, dtype=np.int64, out=out[1:])
    offsets: list[int] = out.tolist()
    return offsets


def _check_null_lengths(where: str, counts: np.ndarray, valid: np.ndarray | None) -> None:
    if valid is not None and counts[~valid].any():
        _corrupt(f"{where}: a null row has a non-zero length")


def _split_utf8(where: str, raw: bytes, offsets: list[int]) -> list[str]:
    try:
        if raw.isascii():
            text = raw.decode("ascii")
            return [text[a:b] for a, b in itertools.pairwise(offsets)]
        mv = memoryview(raw)
        return [str(mv[a:b], "utf-8") for a, b in itertools.pairwise(offsets)]
    except UnicodeDecodeError as e:
        _corrupt(f"{where}: invalid UTF-8: {e}")


def _nulls_to_none(values: list[Any], valid: np.ndarray | None) -> list[Any]:
    if valid is not None:
        for i in np.flatnonzero(~valid).tolist():
            values[i] = None
    return values


def _decode_column(rd: _Reader, col: dict[str, Any], n: int) -> Column:
    where = f"column {col['name']!r}"
    ftype = FieldType(col["type"])
    bufs = list(col["buffers"])
    valid: np.ndarray | None = None
    if bufs[0]["kind"] == "validity":
        packed = rd.read(where, bufs.pop(0), _U1, (n + 7) // 8)
        bits = np.unpackbits(packed, bitorder="little")
        if bits[n:].any():
            _corrupt(f"{where}: validity padding bits are not zero")
        valid = bits[:n].astype(bool)
        valid.flags.writeable = False

    if ftype in FIXED_DTYPES:
        arr = rd.read(where, bufs[0], np.dtype(FIXED_DTYPES[ftype]), n)
        if ftype is FieldType.BOOL:
            _check_bool(where, arr)
        return Column(arr, valid)
    if ftype.is_dense_vector:
        width = vector_width(ftype, col["dim"])
        arr = rd.read(where, bufs[0], np.dtype(VECTOR_DTYPES[ftype]), n * width).reshape(n, width)
        return Column(arr, valid)

    counts = rd.read(where, bufs[0], _U4, n)
    _check_null_lengths(where, counts, valid)
    offsets = _offsets(counts)
    total = offsets[-1]
    if ftype in (FieldType.VARCHAR, FieldType.GEOMETRY):
        return Column(
            _nulls_to_none(_split_utf8(where, rd.read_bytes(where, bufs[1], _U1, total), offsets), valid),
            valid,
        )
    if ftype is FieldType.JSON:
        mv = memoryview(rd.read_bytes(where, bufs[1], _U1, total))
        vlist = valid.tolist() if valid is not None else [True] * n
        try:
            values = [
                orjson.loads(mv[a:b]) if ok else None
                for a, b, ok in zip(offsets, offsets[1:], vlist, strict=False)
            ]
        except orjson.JSONDecodeError as e:
            _corrupt(f"{where}: bad JSON value: {e}")
        return Column(values, valid)
    if ftype is FieldType.ARRAY and col["element_type"] == FieldType.STRUCT.value:
        return Column(_nulls_to_none(_decode_structs(rd, col, bufs[1:], offsets), valid), valid)
    if ftype is FieldType.ARRAY:
        et = FieldType(col["element_type"])
        elems: list[Any]
        if et is FieldType.VARCHAR:
            elem_counts = rd.read(where, bufs[1], _U4, total)
            elem_offsets = _offsets(elem_counts)
            elems = _split_utf8(where, rd.read_bytes(where, bufs[2], _U1, elem_offsets[-1]), elem_offsets)
        else:
            arr = rd.read(where, bufs[1], np.dtype(SCALAR_DTYPES[et]), total)
            if et is FieldType.BOOL:
                _check_bool(where, arr)
            elems = arr.tolist()
        rows = [elems[a:b] for a, b in itertools.pairwise(offsets)]
        return Column(_nulls_to_none(rows, valid), valid)
    if ftype is FieldType.SPARSE_FLOAT_VECTOR:
        idx = rd.read(where, bufs[1], _U4, total)
        vals = rd.read(where, bufs[2], _F4, total)
        if total > 1:
            increasing = np.diff(idx.astype(np.int64)) > 0
            starts = np.asarray(offsets[1:-1], dtype=np.int64)
            starts = starts[(starts > 0) & (starts < total)]
            increasing[starts - 1] = True  # no ordering constraint across a row boundary
            if not increasing.all():
                _corrupt(f"{where}: sparse indices within a row are not strictly increasing")
        il, vl = idx.tolist(), vals.tolist()
        dicts = [dict(zip(il[a:b], vl[a:b], strict=True)) for a, b in itertools.pairwise(offsets)]
        return Column(_nulls_to_none(dicts, valid), valid)
    raise AssertionError(f"unhandled field type {ftype}")  # pragma: no cover


def _decode_structs(rd: _Reader, col: dict[str, Any], bufs: list[dict[str, Any]], offsets: list[int],
                    ) -> list[Any]:
    """Each row's structs (a list of dicts, one value per struct field) from the buffers after ``lengths``."""
    where = f"column {col['name']!r}"
    m = offsets[-1]
    columns: list[tuple[str, list[Any]]] = []
    for entry in col["struct_fields"]:
        t = FieldType(entry["type"])
        mwhere = f"{where} struct field {entry['name']!r}"
        if t is FieldType.VARCHAR:
            elem_offsets = _offsets(rd.read(mwhere, bufs.pop(0), _U4, m))
            items: list[Any] = _split_utf8(mwhere, rd.read_bytes(mwhere, bufs.pop(0), _U1, elem_offsets[-1]),
                                           elem_offsets)
        elif t in SCALAR_DTYPES:
            arr = rd.read(mwhere, bufs.pop(0), np.dtype(SCALAR_DTYPES[t]), m)
            if t is FieldType.BOOL:
                _check_bool(mwhere, arr)
            items = arr.tolist()
        else:
            width = vector_width(t, entry["dim"])
            items = rd.read(mwhere, bufs.pop(0), np.dtype(VECTOR_DTYPES[t]), m * width).reshape(m, width).tolist()
        columns.append((entry["name"], items))
    structs = [{name: items[j] for name, items in columns} for j in range(m)]
    return [structs[a:b] for a, b in itertools.pairwise(offsets)]


def read_chunk_header(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The chunk's JSON header, after checking magic, version, header checksum and structure.

    Raises CorruptData if malformed, Unsupported for an unknown chunk version.
    """
    header, _area = _parse_header(data)
    return header


def decode_chunk(data: bytes | bytearray | memoryview) -> Chunk:
    """Decode a chunk written by :func:`encode_chunk` (self-describing; no schema needed).

    Raises CorruptData on any malformed input, Unsupported for an unknown chunk version.
    Numpy arrays in the result are read-only.
    """
    header, area = _parse_header(data)
    n = header["rows"]
    rd = _Reader(area)
    columns = {col["name"]: _decode_column(rd, col, n) for col in header["columns"]}
    return Chunk(partition=header["partition"], num_rows=n, columns=columns)


__all__ = [
    "ARRAY_ELEMENT_TYPES",
    "CHUNK_MAGIC",
    "CHUNK_VERSION",
    "PREFIX_SIZE",
    "READABLE_VERSIONS",
    "STRUCT_FIELD_TYPES",
    "Chunk",
    "Column",
    "Packed",
    "decode_chunk",
    "encode_chunk",
    "read_chunk_header",
]


# --------------------------------------------------------------------------- selecting rows


def _take_values(values: np.ndarray | list[Any] | Packed, idx: np.ndarray) -> np.ndarray | list[Any]:
    if isinstance(values, np.ndarray):
        return values[idx]
    held = values.tolist() if isinstance(values, Packed) else values  # (decoded once, not once a row)
    return [held[i] for i in idx.tolist()]


def take_rows(chunk: Chunk, idx: np.ndarray | Sequence[int]) -> Chunk:
    """The rows ``idx`` (positions, in the order given) of ``chunk`` as a new chunk."""
    ix = np.asarray(idx, dtype=np.int64)
    if ix.size and (int(ix.min()) < 0 or int(ix.max()) >= chunk.num_rows):
        raise ValueError(f"row positions out of range for a chunk of {chunk.num_rows} rows")
    columns = {name: Column(_take_values(col.values, ix), None if col.valid is None else col.valid[ix])
               for name, col in chunk.columns.items()}
    return Chunk(chunk.partition, int(ix.size), columns)


def concat_chunks(chunks: Sequence[Chunk]) -> Chunk:
    """The rows of ``chunks`` (of one partition, with the same columns) one after the other."""
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        raise ValueError("no chunks to join")
    first = chunks[0]
    columns: dict[str, Column] = {}
    for name in first.columns:
        cols = [c.columns[name] for c in chunks]
        values: np.ndarray | list[Any]
        if all(isinstance(c.values, np.ndarray) for c in cols):
            values = np.concatenate([np.asarray(c.values) for c in cols])
        else:
            values = [v for c in cols for v in c.values]
        valid = None
        if any(c.valid is not None for c in cols):
            valid = np.concatenate([np.ones(ch.num_rows, dtype=bool) if c.valid is None else np.asarray(c.valid)
                                    for c, ch in zip(cols, chunks, strict=True)])
        columns[name] = Column(values, valid)
    return Chunk(first.partition, sum(c.num_rows for c in chunks), columns)
