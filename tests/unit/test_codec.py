"""Data chunk codec (vecbackup.format.codec): round trips, corruption handling, encode errors."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format.codec import (
    CHUNK_MAGIC,
    CHUNK_VERSION,
    PREFIX_SIZE,
    Chunk,
    Column,
    Packed,
    decode_chunk,
    encode_chunk,
    read_chunk_header,
    take_rows,
)
from vecbackup.schema import (
    DYNAMIC_COLUMN,
    FIXED_DTYPES,
    SCALAR_DTYPES,
    VECTOR_DTYPES,
    Field,
    FieldType,
    vector_width,
)

T = FieldType
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT_RANGES = {T.INT8: (-(2**7), 2**7 - 1), T.INT16: (-(2**15), 2**15 - 1)}
INT_RANGES |= {T.INT32: (-(2**31), 2**31 - 1), T.INT64: (-(2**63), 2**63 - 1)}
UINT_OF = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

# --------------------------------------------------------------------------- strategies

rows_st = st.one_of(st.just(0), st.just(1), st.integers(0, 40))
text_st = st.text(max_size=12) | st.sampled_from(["", "é", "日本語", "🦀 emoji", "a\x00b", "\u200b"])
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text_st
)
json_st = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(text_st, c, max_size=4), max_leaves=12
)


def scalar_elem_st(t: FieldType) -> st.SearchStrategy[Any]:
    if t is T.BOOL:
        return st.booleans()
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return st.integers(lo, hi) | st.sampled_from([lo, hi, 0, -1])
    if t is T.FLOAT:
        return st.floats(width=32) | st.sampled_from([0.0, -0.0, float("inf"), float("-inf")])
    if t is T.DOUBLE:
        return st.floats() | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308])
    if t is T.VARCHAR:
        return text_st
    raise AssertionError(t)


def raw_array(draw: st.DrawFn, dtype: np.dtype, count: int) -> np.ndarray:
    """Arbitrary bit patterns (NaN payloads, -0.0, inf, extremes) for a fixed-width dtype."""
    raw = draw(st.binary(min_size=count * dtype.itemsize, max_size=count * dtype.itemsize))
    arr = np.frombuffer(raw, dtype=dtype).copy()
    if dtype == np.dtype(bool):
        arr = np.frombuffer(raw, dtype=np.uint8) % 2 == 1
    return arr


ALL_CASES: list[tuple[FieldType, FieldType | None]] = [
    (t, None) for t in FieldType if t not in (T.ARRAY, T.STRUCT)]
ALL_CASES += [(T.ARRAY, et) for et in [*SCALAR_DTYPES, T.VARCHAR, T.STRUCT]]

#: struct fields an ARRAY of STRUCT case draws from (every kind of struct field buffer)
STRUCT_MEMBERS = [
    Field("txt", T.VARCHAR),
    Field("emb", T.FLOAT_VECTOR, dim=3),
    Field("n", T.INT64),
    Field("ok", T.BOOL),
    Field("h", T.FLOAT16_VECTOR, dim=2),
    Field("bits", T.BINARY_VECTOR, dim=16),
    Field("x", T.DOUBLE),
]
geometry_st = text_st | st.sampled_from(["POINT (1 2)", "point(1.0000000001 2e3)", "POLYGON ((0 0, 1 0, 1 1, 0 0))"])


def struct_st(members: list[Field]) -> st.SearchStrategy[dict[str, Any]]:
    """One struct: a value for each of ``members``."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for m in members:
        if m.type.is_dense_vector:
            assert m.dim is not None
            width = vector_width(m.type, m.dim)
            if m.type is T.FLOAT_VECTOR:
                elem: st.SearchStrategy[Any] = st.floats(width=32)
            else:
                info = np.iinfo(np.dtype(VECTOR_DTYPES[m.type]))
                elem = st.integers(int(info.min), int(info.max))
            parts[m.name] = st.lists(elem, min_size=width, max_size=width)
        else:
            parts[m.name] = scalar_elem_st(m.type)
    return st.fixed_dictionaries(parts)


def case_id(case: tuple[FieldType, FieldType | None]) -> str:
    return case[0].value + (f"[{case[1].value}]" if case[1] else "")


@st.composite
def column_st(
    draw: st.DrawFn, ftype: FieldType, element_type: FieldType | None, n: int
) -> tuple[Field, Column]:
    """A field of ``ftype`` and a column of ``n`` rows for it, with or without nulls."""
    dim = None
    if ftype.is_dense_vector:
        dim = draw(st.sampled_from([8, 16, 24]) if ftype is T.BINARY_VECTOR else st.integers(1, 9))
    members: tuple[Field, ...] = ()
    if element_type is T.STRUCT:
        by_name = st.lists(st.sampled_from(STRUCT_MEMBERS), min_size=1, max_size=4, unique_by=lambda m: m.name)
        members = tuple(draw(by_name))
    field = Field("c", ftype, dim=dim, element_type=element_type, nullable=True, struct_fields=members)
    valid = draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: np.array(v, bool)))
    if ftype in FIXED_DTYPES:
        values: Any = raw_array(draw, np.dtype(FIXED_DTYPES[ftype]), n)
    elif ftype.is_dense_vector:
        assert dim is not None
        width = vector_width(ftype, dim)
        values = raw_array(draw, np.dtype(VECTOR_DTYPES[ftype]), n * width).reshape(n, width)
    else:
        elem: st.SearchStrategy[Any]
        if ftype is T.VARCHAR:
            elem = text_st
        elif ftype is T.GEOMETRY:
            elem = geometry_st
        elif element_type is T.STRUCT:
            elem = st.lists(struct_st(list(members)), max_size=4)
        elif ftype is T.JSON:
            elem = json_st
        elif ftype is T.ARRAY:
            assert element_type is not None
            elem = st.lists(scalar_elem_st(element_type), max_size=6)
        else:  # sparse
            elem = st.dictionaries(
                st.integers(0, 2**32 - 1), st.floats(width=32, allow_nan=False), max_size=6
            )
        values = draw(st.lists(elem, min_size=n, max_size=n))
        if valid is not None:  # nulls are None in list columns (encode ignores whatever is there)
            junk = st.sampled_from([None, "junk"])
            values = [v if ok else draw(junk) for v, ok in zip(values, valid, strict=True)]
    return field, Column(values, valid)


# --------------------------------------------------------------------------- comparison helpers


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, except NaNs only need to be NaN in both (Python float conversion may quiet them)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    u = UINT_OF[a.dtype.itemsize]
    return bool(np.array_equal(a[~na].view(u), b[~nb].view(u)))


def expected_fixed(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    exp = np.array(values, copy=True)
    if valid is not None:
        exp[~valid] = 0
    return exp


def assert_column_equal(field: Field, original: Column, decoded: Column) -> None:
    n = len(original.values)
    valid = original.valid
    if valid is not None and valid.all():
        valid = None
    if valid is None:
        assert decoded.valid is None
    else:
        assert decoded.valid is not None and decoded.valid.dtype == bool
        assert np.array_equal(decoded.valid, valid)
    t = field.type
    if t in FIXED_DTYPES or t.is_dense_vector:
        dtype = np.dtype(FIXED_DTYPES[t] if t in FIXED_DTYPES else VECTOR_DTYPES[t])
        exp = expected_fixed(np.asarray(original.values, dtype=dtype), valid)
        got = decoded.values
        assert isinstance(got, np.ndarray)
        assert got.dtype == dtype and got.shape == exp.shape
        assert not got.flags.writeable
        u = UINT_OF[dtype.itemsize]
        assert np.array_equal(got.view(u), exp.view(u)), "values differ bit for bit"
        return
    got_list = decoded.values
    assert isinstance(got_list, list) and len(got_list) == n
    for i, (want, got) in enumerate(zip(original.values, got_list, strict=True)):
        if valid is not None and not valid[i]:
            assert got is None, f"row {i} should be null"
        elif t in (T.VARCHAR, T.GEOMETRY):
            assert got == want and type(got) is str
        elif field.is_struct_array:
            assert isinstance(got, list) and len(got) == len(want)
            for g, w in zip(got, want, strict=True):
                assert list(g) == [m.name for m in field.struct_fields]
                for m in field.struct_fields:
                    if m.type is T.FLOAT_VECTOR:
                        assert same_floats(np.array(g[m.name], np.float32), np.array(w[m.name], np.float32))
                    elif m.type is T.DOUBLE:
                        assert same_floats(np.array([g[m.name]]), np.array([w[m.name]]))
                    else:
                        assert g[m.name] == w[m.name] and type(g[m.name]) is type(w[m.name])
        elif t is T.JSON:
            assert orjson.dumps(got) == orjson.dumps(want)  # exact: key order, int vs float, -0.0
        elif t is T.ARRAY:
            assert isinstance(got, list) and len(got) == len(want)
            et = field.element_type
            assert et is not None
            if et is T.VARCHAR or et is T.BOOL or et in INT_RANGES:
                assert got == want and [type(x) for x in got] == [type(x) for x in want]
            else:
                dt = np.dtype(SCALAR_DTYPES[et])
                assert same_floats(np.array(got, dtype=dt), np.array(want, dtype=dt))
        elif t is T.SPARSE_FLOAT_VECTOR:
            assert isinstance(got, dict) and sorted(got) == sorted(want)
            keys = sorted(want)
            assert same_floats(
                np.array([got[k] for k in keys], np.float32), np.array([want[k] for k in keys], np.float32)
            )
        else:
            raise AssertionError(t)


def nd(col: Column) -> np.ndarray:
    assert isinstance(col.values, np.ndarray)
    return col.values


def roundtrip(fields: list[Field], chunk: Chunk) -> Chunk:
    data = encode_chunk(fields, chunk)
    out = decode_chunk(data)
    assert out.partition == chunk.partition and out.num_rows == chunk.num_rows
    assert list(out.columns) == [f.name for f in fields]
    return out


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
@FAST
@given(data=st.data())
def test_roundtrip_every_type(case: tuple[FieldType, FieldType | None], data: st.DataObject) -> None:
    n = data.draw(rows_st)
    field, col = data.draw(column_st(case[0], case[1], n))
    partition = data.draw(text_st)
    out = roundtrip([field], Chunk(partition, n, {"c": col}))
    assert_column_equal(field, col, out.columns["c"])


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_roundtrip_all_null_and_zero_rows(case: tuple[FieldType, FieldType | None]) -> None:
    ftype, et = case
    dim = 16 if ftype.is_dense_vector else None
    members = tuple(STRUCT_MEMBERS) if et is T.STRUCT else ()
    field = Field("c", ftype, dim=dim, element_type=et, nullable=True, struct_fields=members)
    for n in (0, 1, 9):
        if ftype in FIXED_DTYPES:
            values: Any = np.ones(n, dtype=FIXED_DTYPES[ftype])
        elif ftype.is_dense_vector:
            values = np.ones((n, vector_width(ftype, 16)), dtype=VECTOR_DTYPES[ftype])
        else:
            values = [None] * n
        col = Column(values, np.zeros(n, dtype=bool))
        out = roundtrip([field], Chunk("_default", n, {"c": col}))
        assert_column_equal(field, col, out.columns["c"])
        if n:
            assert out.columns["c"].valid is not None and not out.columns["c"].valid.any()


def realistic_fields() -> list[Field]:
    return [
        Field("id", T.INT64, is_primary=True),
        Field("embedding", T.FLOAT_VECTOR, dim=128),
        Field("title", T.VARCHAR, max_length=256),
        Field("attrs", T.JSON, nullable=True),
        Field("tags", T.ARRAY, element_type=T.VARCHAR, max_capacity=8, max_length=32),
        Field("scores", T.ARRAY, element_type=T.DOUBLE, max_capacity=4, nullable=True),
        Field("sparse", T.SPARSE_FLOAT_VECTOR),
        Field(DYNAMIC_COLUMN, T.JSON, nullable=True),
    ]


def realistic_chunk(n: int, seed: int = 0) -> Chunk:
    rng = np.random.default_rng(seed)
    attrs_valid = rng.random(n) > 0.2
    scores_valid = rng.random(n) > 0.5
    return Chunk(
        partition="part_2024",
        num_rows=n,
        columns={
            "id": Column(np.arange(n, dtype=np.int64) * 7 - 2**62),
            "embedding": Column(rng.standard_normal((n, 128)).astype(np.float32)),
            "title": Column([f"doc {i} — ünïcode {'x' * (i % 5)}" for i in range(n)]),
            "attrs": Column(
                [
                    {"i": i, "nested": {"l": [1, 2.5, None, "s"]}} if ok else None
                    for i, ok in enumerate(attrs_valid)
                ],
                attrs_valid,
            ),
            "tags": Column([[f"t{j}" for j in range(i % 4)] for i in range(n)]),
            "scores": Column(
                [list(rng.random(i % 3)) if ok else None for i, ok in enumerate(scores_valid)], scores_valid
            ),
            "sparse": Column(
                [
                    dict(
                        zip(
                            rng.integers(0, 30000, 3).tolist(),
                            rng.random(3).astype(np.float32).tolist(),
                            strict=True,
                        )
                    )
                    for _ in range(n)
                ]
            ),
            DYNAMIC_COLUMN: Column([{"extra": i, "flag": i % 2 == 0} if i % 3 else {} for i in range(n)]),
        },
    )


def test_roundtrip_realistic_multi_column() -> None:
    fields = realistic_fields()
    chunk = realistic_chunk(257)
    out = roundtrip(fields, chunk)
    for f in fields:
        assert_column_equal(f, chunk.columns[f.name], out.columns[f.name])
    header = read_chunk_header(encode_chunk(fields, chunk))
    assert header["rows"] == 257 and header["partition"] == "part_2024"
    assert [c["name"] for c in header["columns"]] == [f.name for f in fields]
    emb = header["columns"][1]
    assert emb["type"] == "FLOAT_VECTOR" and emb["dim"] == 128
    assert [b["kind"] for b in emb["buffers"]] == ["values"]
    assert emb["buffers"][0]["shuffle"] == 4
    tags = header["columns"][4]
    assert tags["element_type"] == "VARCHAR"
    assert [b["kind"] for b in tags["buffers"]] == ["lengths", "elem_lengths", "elem_data"]
    scores = header["columns"][5]
    assert [b["kind"] for b in scores["buffers"]] == ["validity", "lengths", "values"]


def test_json_null_is_distinct_from_sql_null() -> None:
    field = Field("j", T.JSON, nullable=True)
    col = Column([None, None, {"a": None}], np.array([True, False, True]))
    out = roundtrip([field], Chunk("p", 3, {"j": col})).columns["j"]
    assert out.values == [None, None, {"a": None}]
    assert out.valid is not None and out.valid.tolist() == [True, False, True]
    out2 = roundtrip([field], Chunk("p", 2, {"j": Column([None, 1])})).columns["j"]
    assert out2.valid is None and out2.values == [None, 1]


def test_json_keeps_key_order_large_ints_and_exact_floats() -> None:
    values = [
        {"z": 1, "a": 2, "m": {"y": [], "b": {}}},
        [2**63 - 1, -(2**63), 2**64 - 1, 0.1, 1e-300, -0.0, 1.0, 5e-324],
        "just a string",
        12345678901234567890,
        3.141592653589793,
        True,
    ]
    field = Field("j", T.JSON)
    out = roundtrip([field], Chunk("p", len(values), {"j": Column(values)})).columns["j"]
    assert isinstance(out.values, list)
    assert list(out.values[0]) == ["z", "a", "m"] and list(out.values[0]["m"]) == ["y", "b"]
    for got, want in zip(out.values, values, strict=True):
        assert orjson.dumps(got) == orjson.dumps(want)
    assert str(out.values[1][5]) == "-0.0"


def test_python_list_inputs_and_garbage_at_null_positions() -> None:
    fields = [
        Field("i", T.INT16),
        Field("f", T.FLOAT, nullable=True),
        Field("b", T.BOOL),
        Field("v", T.FLOAT_VECTOR, dim=3, nullable=True),
        Field("h", T.FLOAT16_VECTOR, dim=2),
    ]
    half = np.array([[1.5, -2.0], [0.0, 65504.0]], dtype=np.float16)
    chunk = Chunk(
        "p",
        2,
        {
            "i": Column([1, -32768]),
            "f": Column([None, 2.5], np.array([False, True])),
            "b": Column([True, 0]),
            "v": Column([[1, 2, 3], None], np.array([True, False])),
            "h": Column(half.view(np.uint16)),
        },
    )
    out = {k: nd(c) for k, c in roundtrip(fields, chunk).columns.items()}
    assert out["i"].dtype == np.int16 and out["i"].tolist() == [1, -32768]
    assert out["f"].tolist() == [0.0, 2.5]
    assert out["b"].tolist() == [True, False]
    assert out["v"].tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    assert np.array_equal(out["h"].view(np.float16), half)
    # NaN / garbage at a null position is stored as zero
    nan_col = Column(np.array([np.nan, 1.0], dtype=np.float32), np.array([False, True]))
    got = roundtrip([Field("f", T.FLOAT, nullable=True)], Chunk("p", 2, {"f": nan_col})).columns["f"]
    assert np.asarray(got.values).view(np.uint32).tolist() == [0, np.float32(1.0).view(np.uint32)]


def test_all_valid_mask_writes_no_validity_buffer() -> None:
    field = Field("x", T.INT32, nullable=True)
    chunk = Chunk("p", 3, {"x": Column(np.arange(3, dtype=np.int32), np.ones(3, bool))})
    header = read_chunk_header(encode_chunk([field], chunk))
    assert [b["kind"] for b in header["columns"][0]["buffers"]] == ["values"]
    assert decode_chunk(encode_chunk([field], chunk)).columns["x"].valid is None


def test_validity_bit_order_is_lsb_first() -> None:
    field = Field("x", T.INT8, nullable=True)
    valid = np.array([True, False, False, False, False, False, False, False, False, True])
    data = encode_chunk([field], Chunk("p", 10, {"x": Column(np.zeros(10, np.int8), valid)}))
    header = read_chunk_header(data)
    entry = header["columns"][0]["buffers"][0]
    assert entry["kind"] == "validity" and entry["raw_size"] == 2
    raw = zstandard.ZstdDecompressor().decompress(_frame(data, entry))
    assert raw == bytes([0b00000001, 0b00000010])


def _frame(data: bytes, entry: dict[str, Any]) -> bytes:
    """The zstd frame of the buffer a header entry describes."""
    start = PREFIX_SIZE + struct.unpack_from("<I", data, 8)[0] + entry["offset"]
    return data[start : start + entry["size"]]


def test_shuffle_makes_float_vectors_and_ids_smaller() -> None:
    # Full-precision floats, like real model embeddings. (Vectors rounded to a few decimals are NOT a good
    # example: their few distinct 4-byte values repeat, which zstd exploits better unshuffled.)
    rng = np.random.default_rng(42)
    vectors = rng.standard_normal((2000, 128)).astype(np.float32)
    ids = np.arange(10**12, 10**12 + 100_000, dtype=np.int64)
    fields = [Field("v", T.FLOAT_VECTOR, dim=128), Field("id", T.INT64)]
    data = encode_chunk(fields, Chunk("p", 2000, {"v": Column(vectors), "id": Column(ids[:2000])}))
    ventry = read_chunk_header(data)["columns"][0]["buffers"][0]
    assert ventry["shuffle"] == 4 and ventry["raw_size"] == vectors.nbytes
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
    assert ventry["size"] < len(cctx.compress(vectors.tobytes())) * 0.95
    data = encode_chunk([fields[1]], Chunk("p", ids.size, {"id": Column(ids)}))
    ientry = read_chunk_header(data)["columns"][0]["buffers"][0]
    assert ientry["shuffle"] == 8
    assert ientry["size"] * 20 < len(cctx.compress(ids.tobytes()))


def _frame_window(data: bytes, column: int) -> int:
    """The window size the zstd frame of a column's values declares (what the compressor was set up with)."""
    entry = read_chunk_header(data)["columns"][column]["buffers"][-1]
    return int(zstandard.get_frame_parameters(_frame(data, entry)).window_size)


@pytest.mark.parametrize("level", [1, 3])
def test_float_vectors_compress_with_a_small_match_search_into_no_more_bytes(level: int) -> None:
    # Gaussian vectors as embeddings are: the vector buffer is compressed with a 128 KiB window (the frame says so),
    # into no more bytes than the level's own parameters give, and decodes to the same values
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((1000, 256)).astype(np.float32)
    scores = rng.standard_normal(1000).astype(np.float32)
    fields = [Field("v", T.FLOAT_VECTOR, dim=256), Field("s", T.FLOAT)]
    data = encode_chunk(fields, Chunk("p", 1000, {"v": Column(vectors), "s": Column(scores)}), level=level)
    assert _frame_window(data, 0) == 2**17
    assert _frame_window(data, 1) != 2**17  # other buffers keep the level's own parameters
    shuffled = vectors.view(np.uint8).reshape(-1, 4).T.tobytes()
    plain = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compress(shuffled)
    assert read_chunk_header(data)["columns"][0]["buffers"][0]["size"] <= len(plain)
    assert np.array_equal(nd(decode_chunk(data).columns["v"]), vectors)
    # levels beyond 3 are the level's own: a backup asked for more effort gets it
    assert _frame_window(encode_chunk(fields, Chunk("p", 1000, {"v": Column(vectors), "s": Column(scores)}),
                                      level=9), 0) != 2**17


# --------------------------------------------------------------------------- an independent writer


def handmade_chunk(
    columns: list[dict[str, Any]], frames: list[bytes], rows: int, *, version: int = 1, flags: int = 0
) -> bytes:
    """Assemble a chunk from a header and raw (unshuffled, uncompressed) buffers, following docs/FORMAT.md.

    ``columns[i]["buffers"]`` hold {"kind", "dtype", "shuffle"} only; the rest is filled in here.
    Used to build chunks that ``encode_chunk`` would never produce.
    """
    cctx = zstandard.ZstdCompressor(level=1, write_checksum=True)
    stored: list[bytes] = []
    offset = 0
    it = iter(frames)
    for col in columns:
        for b in col["buffers"]:
            raw = next(it)
            if b["shuffle"]:
                raw = np.frombuffer(raw, np.uint8).reshape(-1, b["shuffle"]).T.tobytes()
            frame = cctx.compress(raw)
            b.update(offset=offset, size=len(frame), raw_size=len(raw), crc32=zlib.crc32(frame))
            stored.append(frame)
            offset += len(frame)
    header = orjson.dumps({"rows": rows, "partition": "hand", "columns": columns})
    prefix = struct.pack("<4sHHI", CHUNK_MAGIC, version, flags, len(header))
    crc = zlib.crc32(prefix + header)
    return prefix + struct.pack("<I", crc) + header + b"".join(stored)


def buf(kind: str, dtype: str, shuffle: int = 0) -> dict[str, Any]:
    return {"kind": kind, "dtype": dtype, "shuffle": shuffle}


def u4(*xs: int) -> bytes:
    return np.array(xs, dtype="<u4").tobytes()


def test_decodes_chunk_built_from_the_spec() -> None:
    columns: list[dict[str, Any]] = [
        {"name": "id", "type": "INT64", "buffers": [buf("values", "<i8", 8)]},
        {"name": "flag", "type": "BOOL", "buffers": [buf("validity", "|u1"), buf("values", "|b1")]},
        {"name": "s", "type": "VARCHAR", "buffers": [buf("lengths", "<u4", 4), buf("data", "|u1")]},
        {"name": "v", "type": "BINARY_VECTOR", "dim": 16, "buffers": [buf("values", "|u1")]},
        {
            "name": "a",
            "type": "ARRAY",
            "element_type": "INT16",
            "buffers": [buf("lengths", "<u4"), buf("values", "<i2", 2)],  # lengths stored unshuffled: allowed
        },
        {
            "name": "sp",
            "type": "SPARSE_FLOAT_VECTOR",
            "buffers": [buf("lengths", "<u4", 4), buf("indices", "<u4", 4), buf("values", "<f4", 4)],
        },
    ]
    frames = [
        np.array([10, -1, 2**62], "<i8").tobytes(),
        bytes([0b101]),
        bytes([1, 0, 0]),
        u4(2, 0, 3),
        b"h\x00" + "éa".encode(),  # rows "h\0" (2 bytes), "" and "éa" (3 bytes)
        bytes(range(6)),
        u4(1, 0, 2),
        np.array([7, 8, 9], "<i2").tobytes(),
        u4(2, 0, 1),
        u4(3, 9, 0),
        np.array([0.5, -1.0, 2.0], "<f4").tobytes(),
    ]
    out = decode_chunk(handmade_chunk(columns, frames, 3))
    assert out.partition == "hand" and out.num_rows == 3
    c = out.columns
    assert nd(c["id"]).tolist() == [10, -1, 2**62]
    assert c["flag"].valid is not None and c["flag"].valid.tolist() == [True, False, True]
    assert nd(c["flag"]).tolist() == [True, False, False]
    assert c["s"].values == ["h\x00", "", "éa"]
    assert nd(c["v"]).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert c["a"].values == [[7], [], [8, 9]]
    assert c["sp"].values == [{3: 0.5, 9: -1.0}, {}, {0: 2.0}]


# --------------------------------------------------------------------------- corruption

SMALL_FIELDS = [
    Field("id", T.INT64),
    Field("v", T.FLOAT_VECTOR, dim=4),
    Field("s", T.VARCHAR, nullable=True),
    Field("j", T.JSON),
    Field("a", T.ARRAY, element_type=T.INT32),
    Field("sp", T.SPARSE_FLOAT_VECTOR),
]


def small_chunk_bytes() -> bytes:
    chunk = Chunk(
        "p",
        3,
        {
            "id": Column(np.array([1, 2, 3])),
            "v": Column(np.arange(12, dtype=np.float32).reshape(3, 4)),
            "s": Column(["x", None, "zz"], np.array([True, False, True])),
            "j": Column([{"k": 1}, [], None]),
            "a": Column([[1], [2, 3], []]),
            "sp": Column([{1: 1.0}, {}, {2: 3.0, 0: 1.0}]),
        },
    )
    return encode_chunk(SMALL_FIELDS, chunk)


SMALL = small_chunk_bytes()
SMALL_HLEN = struct.unpack_from("<I", SMALL, 8)[0]


def decode_fails(data: bytes, exc: type[Exception] = CorruptData) -> str:
    with pytest.raises(exc) as info:
        decode_chunk(data)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_every_single_byte_flip_is_detected() -> None:
    for pos in range(len(SMALL)):
        bad = bytearray(SMALL)
        bad[pos] ^= 0xFF
        expected: type[Exception] = Unsupported if pos in (4, 5) else CorruptData
        with pytest.raises(expected):
            decode_chunk(bytes(bad))
        if pos < PREFIX_SIZE + SMALL_HLEN:
            with pytest.raises(expected):
                read_chunk_header(bytes(bad))


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, len(SMALL) - 1), mask=st.integers(1, 255))
def test_random_byte_corruption_is_detected(pos: int, mask: int) -> None:
    bad = bytearray(SMALL)
    bad[pos] ^= mask
    with pytest.raises((CorruptData, Unsupported)):
        decode_chunk(bytes(bad))


def test_every_truncation_is_detected() -> None:
    for cut in range(len(SMALL)):
        decode_fails(SMALL[:cut])
    assert "trailing" in decode_fails(SMALL + b"\x00")


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(max_size=200))
def test_garbage_after_a_valid_prefix_is_corrupt(tail: bytes) -> None:
    with pytest.raises(CorruptData):
        decode_chunk(SMALL[:16] + tail)
    prefix = CHUNK_MAGIC + struct.pack("<HHI", 1, 0, len(tail))
    with pytest.raises(CorruptData):  # a correct header CRC, so the JSON parser and validator see the garbage
        decode_chunk(prefix + struct.pack("<I", zlib.crc32(prefix + tail)) + tail)


def test_bad_magic() -> None:
    assert "magic" in decode_fails(b"XXXX" + SMALL[4:])
    assert "magic" in decode_fails(b"")
    with pytest.raises(CorruptData):
        read_chunk_header(b"PK\x03\x04" + SMALL[4:])


def test_unknown_version_is_unsupported() -> None:
    chunk = bytearray(SMALL)
    chunk[4:6] = struct.pack("<H", 2)
    msg = decode_fails(bytes(chunk), Unsupported)
    assert "version 2" in msg and str(CHUNK_VERSION) in msg
    with pytest.raises(Unsupported, match="version 2"):
        read_chunk_header(bytes(chunk))
    with pytest.raises(Unsupported):
        decode_chunk(CHUNK_MAGIC + struct.pack("<H", 7))  # even when too short to hold a header
    col = {"name": "x", "type": "INT8", "buffers": [buf("values", "|i1")]}
    with pytest.raises(Unsupported, match="flags"):
        decode_chunk(handmade_chunk([col], [b"\x01"], 1, flags=1))


def test_memoryview_and_bytearray_inputs() -> None:
    assert decode_chunk(bytearray(SMALL)).num_rows == 3
    assert read_chunk_header(memoryview(SMALL))["rows"] == 3


def reheader(data: bytes, mutate: Any) -> bytes:
    """Change the header JSON and fix up the header length and CRC (a 'valid-looking' forgery)."""
    hlen = struct.unpack_from("<I", data, 8)[0]
    header = orjson.loads(data[PREFIX_SIZE : PREFIX_SIZE + hlen])
    mutated = mutate(header)
    new = mutated if isinstance(mutated, bytes) else orjson.dumps(header)
    prefix = data[:8] + struct.pack("<I", len(new))
    return prefix + struct.pack("<I", zlib.crc32(prefix + new)) + new + data[PREFIX_SIZE + hlen :]


def _set(path: list[Any], value: Any) -> Any:
    def mutate(h: Any) -> None:
        target = h
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


FORGERIES = {
    "not json": lambda h: b"{not json",
    "not an object": lambda h: b"[]",
    "rows wrong": _set(["rows"], 4),
    "rows negative": _set(["rows"], -1),
    "rows bool": _set(["rows"], True),
    "rows missing": _set(["rows"], KeyError),
    "partition int": _set(["partition"], 5),
    "columns not list": _set(["columns"], {}),
    "column not object": _set(["columns", 0], 1),
    "name missing": _set(["columns", 0, "name"], KeyError),
    "type not a string": _set(["columns", 0, "type"], 3),
    "type changed": _set(["columns", 0, "type"], "DOUBLE"),
    "type to int32": _set(["columns", 0, "type"], "INT32"),
    "duplicate name": _set(["columns", 1, "name"], "id"),
    "dim missing": _set(["columns", 1, "dim"], KeyError),
    "dim wrong": _set(["columns", 1, "dim"], 5),
    "dim zero": _set(["columns", 1, "dim"], 0),
    "element type bad": _set(["columns", 4, "element_type"], "JSON"),
    "element type changed": _set(["columns", 4, "element_type"], "INT64"),
    "buffers missing": _set(["columns", 0, "buffers"], []),
    "kind wrong": _set(["columns", 0, "buffers", 0, "kind"], "data"),
    "dtype wrong": _set(["columns", 0, "buffers", 0, "dtype"], "<f8"),
    "shuffle wrong": _set(["columns", 0, "buffers", 0, "shuffle"], 3),
    "offset wrong": _set(["columns", 1, "buffers", 0, "offset"], 1),
    "size wrong": _set(["columns", 0, "buffers", 0, "size"], 5),
    "raw_size huge": _set(["columns", 0, "buffers", 0, "raw_size"], 2**60),
    "raw_size wrong": _set(["columns", 0, "buffers", 0, "raw_size"], 16),
    "crc wrong": _set(["columns", 0, "buffers", 0, "crc32"], 1),
    "crc missing": _set(["columns", 0, "buffers", 0, "crc32"], KeyError),
    "validity dropped": lambda h: h["columns"][2]["buffers"].pop(0),
}


def test_unknown_column_type_is_unsupported() -> None:
    assert "UUID" in decode_fails(reheader(SMALL, _set(["columns", 0, "type"], "UUID")), Unsupported)
    decode_fails(reheader(SMALL, _set(["columns", 4, "element_type"], "DECIMAL")), Unsupported)


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_headers_are_corrupt(name: str) -> None:
    data = reheader(SMALL, FORGERIES[name])
    decode_fails(data)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


SMALL_HEADER = read_chunk_header(SMALL)
SMALL_PATHS = _paths(SMALL_HEADER)[1:]


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(SMALL_PATHS), value=json_st | st.integers(-3, 300))
def test_fuzzed_header_values_never_escape_as_other_errors(path: tuple[Any, ...], value: Any) -> None:
    def mutate(h: Any) -> None:
        target = h
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    try:
        out = decode_chunk(reheader(SMALL, mutate))
    except (CorruptData, Unsupported):
        return
    assert isinstance(out, Chunk)  # some edits are harmless, e.g. a renamed column or partition


@pytest.mark.parametrize(
    ("column", "frames"),
    [
        ({"name": "b", "type": "BOOL", "buffers": [buf("values", "|b1")]}, [b"\x02"]),
        (
            {"name": "s", "type": "VARCHAR", "buffers": [buf("lengths", "<u4"), buf("data", "|u1")]},
            [u4(2), b"\xc3("],
        ),
        (
            {"name": "j", "type": "JSON", "buffers": [buf("lengths", "<u4"), buf("data", "|u1")]},
            [u4(2), b"{x"],
        ),
        ({"name": "j", "type": "JSON", "buffers": [buf("lengths", "<u4"), buf("data", "|u1")]}, [u4(0), b""]),
        (
            {
                "name": "j",
                "type": "JSON",
                "buffers": [buf("validity", "|u1"), buf("lengths", "<u4"), buf("data", "|u1")],
            },
            [b"\x00", u4(1), b"1"],  # null row with a value
        ),
        (
            {"name": "x", "type": "INT8", "buffers": [buf("validity", "|u1"), buf("values", "|i1")]},
            [b"\x03", b"\x00"],  # padding bit set
        ),
        (
            {"name": "x", "type": "INT8", "buffers": [buf("values", "|i1")]},
            [b"\x00\x00"],  # two values for one row
        ),
        (
            {
                "name": "sp",
                "type": "SPARSE_FLOAT_VECTOR",
                "buffers": [buf("lengths", "<u4"), buf("indices", "<u4"), buf("values", "<f4")],
            },
            [u4(2), u4(5, 5), np.zeros(2, "<f4").tobytes()],  # duplicate index
        ),
        (
            {
                "name": "a",
                "type": "ARRAY",
                "element_type": "VARCHAR",
                "buffers": [buf("lengths", "<u4"), buf("elem_lengths", "<u4"), buf("elem_data", "|u1")],
            },
            [u4(1), u4(3), b"ab"],  # element data shorter than its lengths
        ),
        (
            {
                "name": "a",
                "type": "ARRAY",
                "element_type": "BOOL",
                "buffers": [buf("lengths", "<u4"), buf("values", "|b1")],
            },
            [u4(1), b"\x07"],
        ),
    ],
)
def test_well_framed_but_invalid_buffers_are_corrupt(column: dict[str, Any], frames: list[bytes]) -> None:
    decode_fails(handmade_chunk([column], frames, 1))


def test_zstd_frame_replaced_with_garbage_is_corrupt() -> None:
    col = {"name": "x", "type": "INT8", "buffers": [buf("values", "|i1")]}
    data = bytearray(handmade_chunk([col], [b"\x05"], 1))
    hlen = struct.unpack_from("<I", data, 8)[0]
    area = PREFIX_SIZE + hlen

    def fix(h: dict[str, Any]) -> None:
        h["columns"][0]["buffers"][0]["crc32"] = zlib.crc32(bytes(data[area:]))

    data[area + 5] ^= 0x10  # a header bit zstd itself ignores: only our CRC catches this
    assert "checksum" in decode_fails(bytes(data))
    data[area:] = b"\x00" * (len(data) - area)
    assert "zstd" in decode_fails(reheader(bytes(data), fix))


# --------------------------------------------------------------------------- encode errors


def test_encode_rejects_bad_input() -> None:
    f = Field("x", T.INT64)

    def bad(fields: list[Field], columns: dict[str, Column], n: int = 2, match: str | None = None) -> None:
        with pytest.raises(ValueError, match=match):
            encode_chunk(fields, Chunk("p", n, columns))

    ok = Column(np.array([1, 2]))
    bad([f], {}, match="no column for field")
    bad([f], {"x": ok, "y": ok}, match="not among the fields")
    bad([f, f], {"x": ok}, match="duplicate")
    bad([f], {"x": ok}, n=3, match="expected 3 values")
    bad([f], {"x": ok}, n=-1, match="num_rows")
    bad([f], {"x": Column(np.array([1, 2]), np.array([True]))}, match="valid must have shape")
    bad([f], {"x": Column([1.5, 2])}, match="cannot store float64")
    bad([f], {"x": Column(["a", "b"])}, match="cannot store")
    bad([f], {"x": Column([1, None])}, match="cannot store object")
    bad([Field("x", T.INT8)], {"x": Column([1, 300])}, match="out of range")
    bad([Field("x", T.INT64)], {"x": Column([1, 2**63])}, match="out of range")
    bad([Field("x", T.BOOL)], {"x": Column([0, 2])}, match="0/1")
    bad([Field("v", T.FLOAT_VECTOR, dim=3)], {"v": Column(np.zeros((2, 4)))}, match=r"shape \(2, 3\)")
    bad([Field("v", T.FLOAT_VECTOR, dim=3)], {"v": Column([[1, 2, 3], [1, 2]])})
    bad([Field("v", T.FLOAT_VECTOR)], {"v": Column(np.zeros((2, 4)))}, match="positive dim")
    bad([Field("v", T.BINARY_VECTOR, dim=12)], {"v": Column(np.zeros((2, 1)))}, match="multiple of 8")
    half = np.zeros((2, 2), np.float16)
    bad([Field("v", T.FLOAT16_VECTOR, dim=2)], {"v": Column(half)}, match="view")
    bad([Field("s", T.VARCHAR)], {"s": Column(["a"])}, match="expected 2 values")
    bad([Field("s", T.VARCHAR)], {"s": Column(["a", None])}, match="row 1: expected str")
    bad([Field("s", T.VARCHAR)], {"s": Column("ab")}, match="must be a list")  # type: ignore[arg-type]
    bad([Field("s", T.VARCHAR)], {"s": Column(["a", "\ud800"])}, match="UTF-8")
    bad([Field("j", T.JSON)], {"j": Column([1, {1: 2}])}, match="row 1: not a JSON value")
    bad([Field("j", T.JSON)], {"j": Column([1, [float("nan")]])}, match="row 1: JSON cannot hold NaN")
    bad([Field("j", T.JSON)], {"j": Column([None, [float("inf")]])}, match="row 1: JSON cannot hold NaN")
    bad([Field("j", T.JSON)], {"j": Column([1, 2**64])}, match="not a JSON value")
    bad([Field("a", T.ARRAY)], {"a": Column([[], []])}, match="element_type")
    bad([Field("a", T.ARRAY, element_type=T.JSON)], {"a": Column([[], []])}, match="element_type")
    bad(
        [Field("a", T.ARRAY, element_type=T.INT8)], {"a": Column([[1], None])}, match="row 1: expected a list"
    )
    bad([Field("a", T.ARRAY, element_type=T.INT8)], {"a": Column([[1], [999]])}, match="out of range")
    bad([Field("a", T.ARRAY, element_type=T.VARCHAR)], {"a": Column([["x"], [3]])}, match="expected str")
    bad([Field("p", T.SPARSE_FLOAT_VECTOR)], {"p": Column([{1: 1.0}, [1.0]])}, match="expected a dict")
    bad([Field("p", T.SPARSE_FLOAT_VECTOR)], {"p": Column([{-1: 1.0}, {}])}, match="out of range")
    bad([Field("p", T.SPARSE_FLOAT_VECTOR)], {"p": Column([{2**32: 1.0}, {}])}, match="out of range")
    bad([Field("p", T.SPARSE_FLOAT_VECTOR)], {"p": Column([{"a": 1.0}, {}])})


def test_decoded_arrays_are_read_only() -> None:
    out = decode_chunk(SMALL)
    for name in ("id", "v"):
        arr = out.columns[name].values
        assert isinstance(arr, np.ndarray)
        with pytest.raises(ValueError):
            arr[0] = 0


# --------------------------------------------------------------------------- GEOMETRY, TIMESTAMPTZ, struct arrays


def test_decodes_geometry_timestamptz_and_16_bit_and_int8_vectors_built_from_the_spec() -> None:
    """The column types of docs/FORMAT.md ("Column encodings") that no engine of the test suite holds all of, from a
    chunk assembled by hand: GEOMETRY (WKT text), TIMESTAMPTZ (int64 microseconds), and the FLOAT16 / BFLOAT16 / INT8
    vectors (raw 16-bit patterns, int8)."""
    columns: list[dict[str, Any]] = [
        {"name": "g", "type": "GEOMETRY", "buffers": [buf("validity", "|u1"), buf("lengths", "<u4", 4),
                                                      buf("data", "|u1")]},
        {"name": "t", "type": "TIMESTAMPTZ", "buffers": [buf("validity", "|u1"), buf("values", "<i8", 8)]},
        {"name": "h", "type": "FLOAT16_VECTOR", "dim": 2, "buffers": [buf("values", "<u2", 2)]},
        {"name": "b", "type": "BFLOAT16_VECTOR", "dim": 2, "buffers": [buf("values", "<u2")]},
        {"name": "i", "type": "INT8_VECTOR", "dim": 2, "buffers": [buf("values", "|i1")]},
    ]
    wkt = ["POINT (1 2)", "point(1.0000000001 2e3)"]
    frames = [
        bytes([0b101]),
        u4(len(wkt[0]), 0, len(wkt[1])),
        (wkt[0] + wkt[1]).encode(),
        bytes([0b011]),
        np.array([1709508967123456, -62135596800000000, 0], "<i8").tobytes(),  # 2024-03-03T23:36:07.123456Z, 0001-
        np.array([1.0, -2.5, 0.0, 65504.0, np.inf, -0.0], "<f2").view("<u2").tobytes(),
        np.array([0x3F80, 0xC020, 0, 0x7F80, 0xFF80, 0x8000], "<u2").tobytes(),  # 1.0, -2.5, 0, inf, -inf, -0.0
        np.array([127, -128, 0, 1, -1, 5], "|i1").tobytes(),
    ]
    out = decode_chunk(handmade_chunk(columns, frames, 3))
    c = out.columns
    assert c["g"].values == ["POINT (1 2)", None, "point(1.0000000001 2e3)"]
    assert nd(c["t"]).dtype == np.dtype("<i8") and nd(c["t"]).tolist() == [1709508967123456, -62135596800000000, 0]
    assert c["t"].valid is not None and c["t"].valid.tolist() == [True, True, False]
    assert nd(c["h"]).view("<f2").tolist() == [[1.0, -2.5], [0.0, 65504.0], [np.inf, -0.0]]
    assert (nd(c["b"]).astype("<u4") << 16).view("<f4").tolist() == [[1.0, -2.5], [0.0, np.inf], [-np.inf, -0.0]]
    assert nd(c["i"]).dtype == np.dtype("|i1") and nd(c["i"]).tolist() == [[127, -128], [0, 1], [-1, 5]]


STRUCT_COLUMN: dict[str, Any] = {
    "name": "clips", "type": "ARRAY", "element_type": "STRUCT",
    "struct_fields": [{"name": "text", "type": "VARCHAR"}, {"name": "emb", "type": "FLOAT_VECTOR", "dim": 2},
                      {"name": "at", "type": "INT32"}],
    "buffers": [buf("validity", "|u1"), buf("lengths", "<u4", 4), buf("elem_lengths", "<u4", 4),
                buf("elem_data", "|u1"), buf("values", "<f4", 4), buf("values", "<i4")],
}


def struct_frames() -> list[bytes]:
    """Rows: two structs; null; none. The structs: ("a", [1, 2], 7) and ("éé", [-0.5, 0], -1)."""
    return [bytes([0b101]), u4(2, 0, 0), u4(1, 4), "aéé".encode(), np.array([1, 2, -0.5, 0], "<f4").tobytes(),
            np.array([7, -1], "<i4").tobytes()]


def test_decodes_a_struct_array_built_from_the_spec() -> None:
    out = decode_chunk(handmade_chunk([copy_column(STRUCT_COLUMN)], struct_frames(), 3))
    col = out.columns["clips"]
    assert col.values == [[{"text": "a", "emb": [1.0, 2.0], "at": 7}, {"text": "éé", "emb": [-0.5, 0.0], "at": -1}],
                          None, []]
    assert col.valid is not None and col.valid.tolist() == [True, False, True]
    field = Field("clips", T.ARRAY, element_type=T.STRUCT, nullable=True, struct_fields=(
        Field("text", T.VARCHAR), Field("emb", T.FLOAT_VECTOR, dim=2), Field("at", T.INT32)))
    # our writer writes the same bytes for the same rows (up to compression): the buffers are the documented ones
    again = read_chunk_header(encode_chunk([field], Chunk("hand", 3, {"clips": col})))["columns"][0]
    assert again["struct_fields"] == STRUCT_COLUMN["struct_fields"]
    assert [(b["kind"], b["dtype"], b["raw_size"]) for b in again["buffers"]] == [
        ("validity", "|u1", 1), ("lengths", "<u4", 12), ("elem_lengths", "<u4", 8), ("elem_data", "|u1", 5),
        ("values", "<f4", 16), ("values", "<i4", 8)]


def copy_column(column: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(column))


def _struct_forgery(mutate: Any) -> bytes:
    column = copy_column(STRUCT_COLUMN)
    mutate(column)
    return handmade_chunk([column], struct_frames(), 3)


@pytest.mark.parametrize(("mutate", "exc"), [
    (lambda c: c.pop("struct_fields"), CorruptData),
    (lambda c: c.update(struct_fields=[]), CorruptData),
    (lambda c: c["struct_fields"][1].pop("dim"), CorruptData),
    (lambda c: c["struct_fields"][1].update(name="text"), CorruptData),  # two fields of one name
    (lambda c: c["struct_fields"][2].update(type="JSON"), CorruptData),  # a known type a struct field cannot be
    (lambda c: c["struct_fields"][2].update(type="DECIMAL"), Unsupported),  # a newer writer's type
    (lambda c: c["struct_fields"].reverse(), CorruptData),  # buffers no longer in struct field order
    (lambda c: c.update(type="STRUCT"), CorruptData),  # STRUCT is an element type only
], ids=["no struct_fields", "empty", "no dim", "duplicate name", "JSON member", "unknown member type",
        "reordered", "STRUCT column"])
def test_forged_struct_headers(mutate: Any, exc: type[Exception]) -> None:
    decode_fails(_struct_forgery(mutate), exc)


def test_struct_buffers_that_do_not_add_up_are_corrupt() -> None:
    frames = struct_frames()
    frames[4] = np.array([1, 2, -0.5], "<f4").tobytes()  # three floats for two structs of dim 2
    assert "raw_size" in decode_fails(handmade_chunk([copy_column(STRUCT_COLUMN)], frames, 3))
    frames = struct_frames()
    frames[1] = u4(2, 1, 0)  # the null row holds a struct
    decode_fails(handmade_chunk([copy_column(STRUCT_COLUMN)], frames, 3))
    frames = struct_frames()
    frames[3] = b"a\xc3(\xc3("  # not UTF-8
    assert "UTF-8" in decode_fails(handmade_chunk([copy_column(STRUCT_COLUMN)], frames, 3))


def test_geometry_that_is_not_utf8_is_corrupt() -> None:
    column = {"name": "g", "type": "GEOMETRY", "buffers": [buf("lengths", "<u4"), buf("data", "|u1")]}
    assert "UTF-8" in decode_fails(handmade_chunk([column], [u4(2), b"\xc3("], 1))


def test_encode_rejects_bad_new_type_input() -> None:
    def bad(f: Field, values: Any, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            encode_chunk([f], Chunk("p", 2, {f.name: Column(values)}))

    members = (Field("s", T.VARCHAR), Field("v", T.FLOAT_VECTOR, dim=2))
    structs = Field("a", T.ARRAY, element_type=T.STRUCT, struct_fields=members)
    bad(Field("g", T.GEOMETRY), ["POINT (1 2)", b"\x01\x01"], "row 1: expected str")
    bad(Field("t", T.TIMESTAMPTZ), [1.5, 2], "cannot store float64")
    bad(Field("t", T.TIMESTAMPTZ), [0, 2**63], "out of range")
    bad(Field("a", T.ARRAY, element_type=T.STRUCT), [[], []], "needs struct fields")
    bad(Field("x", T.INT64, struct_fields=members), [1, 2], "only an ARRAY of STRUCT")
    bad(Field("a", T.ARRAY, element_type=T.STRUCT, struct_fields=(Field("j", T.JSON),)), [[], []], "cannot be a JSON")
    bad(Field("a", T.ARRAY, element_type=T.STRUCT, struct_fields=(Field("v", T.FLOAT_VECTOR),)), [[], []], "dim")
    bad(Field("a", T.ARRAY, element_type=T.STRUCT, struct_fields=(members[0], members[0])), [[], []], "distinct")
    bad(structs, [[{"s": "x", "v": [1, 2]}], [{"s": "x"}]], r"row 1: a struct must be a dict of \['s', 'v'\]")
    bad(structs, [[{"s": "x", "v": [1, 2], "z": 1}], []], "row 0: a struct must be")
    bad(structs, [[{"s": "x", "v": [1, 2]}], {"s": "x", "v": [1, 2]}], "row 1: expected a list of structs")
    bad(structs, [[{"s": "x", "v": [1, 2, 3]}], []], r"struct field 'v'.*shape")
    bad(structs, [[{"s": 5, "v": [1, 2]}], []], "struct field 's'.*expected str")


# --------------------------------------------------------------------------- packed VARCHAR and JSON values


def _packed(ftype: FieldType, parts: list[bytes]) -> Packed:
    return Packed(ftype, np.array([len(p) for p in parts], np.uint32), np.frombuffer(b"".join(parts), np.uint8))


def test_packed_values_are_stored_as_the_values_they_hold():
    fields = [Field("t", FieldType.VARCHAR, max_length=8), Field("j", FieldType.JSON)]
    texts, docs = ["a", "", "ü"], [{"a": 1}, [1, None], "x"]
    valid = np.array([True, False, True])
    plain = Chunk("p", 3, {"t": Column(texts, valid), "j": Column(docs, valid)})
    packed = Chunk("p", 3, {
        "t": Column(_packed(FieldType.VARCHAR, [b"a", b"", "ü".encode()]), valid),
        "j": Column(_packed(FieldType.JSON, [b'{"a":1}', b"", b'"x"']), valid)})
    assert encode_chunk(fields, packed) == encode_chunk(fields, Chunk("p", 3, {
        "t": Column(["a", "", "ü"], valid), "j": Column([{"a": 1}, None, "x"], valid)}))
    back = decode_chunk(encode_chunk(fields, packed))
    assert list(back.columns["t"].values) == ["a", None, "ü"]
    assert plain.num_rows == back.num_rows
    p = packed.columns["j"].values
    assert isinstance(p, Packed) and len(p) == 3 and p[0] == {"a": 1} and p[-1] == "x" and p[1:] == [None, "x"]
    tags = Field("a", FieldType.ARRAY, element_type=FieldType.INT32, max_capacity=4)
    arrays = Packed(FieldType.ARRAY, np.array([2, 0, 1], np.uint32), np.array([7, -1, 3], np.int32), FieldType.INT32)
    assert encode_chunk([tags], Chunk("p", 3, {"a": Column(arrays, valid)})) == \
        encode_chunk([tags], Chunk("p", 3, {"a": Column([[7, -1], None, [3]], valid)}))
    taken = take_rows(packed, [2, 0])  # rows of a packed chunk are its values, decoded
    assert taken.columns["t"].values == ["ü", "a"] and taken.columns["j"].values == ["x", {"a": 1}]
    with pytest.raises(IndexError):
        p[3]


def test_packed_values_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="add up to 3, the data holds 2"):
        Packed(FieldType.JSON, np.array([1, 2], np.uint32), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="VARCHAR, JSON or ARRAY, not INT64"):
        Packed(FieldType.INT64, np.zeros(0, np.uint32), np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="uint32 lengths"):
        Packed(FieldType.JSON, np.zeros(1, np.int64), np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="uint32 lengths and int16 data"):
        Packed(FieldType.ARRAY, np.ones(1, np.uint32), np.zeros(1, np.int64), FieldType.INT16)
    with pytest.raises(ValueError, match="ARRAY elements are scalars"):
        Packed(FieldType.ARRAY, np.zeros(0, np.uint32), np.zeros(0, np.uint8), FieldType.VARCHAR)
    a = Packed(FieldType.ARRAY, np.array([2, 0], np.uint32), np.array([1, 2], np.int16), FieldType.INT16)
    assert a.tolist() == [[1, 2], []]
    with pytest.raises(ValueError, match="packed ARRAY of INT16 values in this column"):
        encode_chunk([Field("a", FieldType.ARRAY, element_type=FieldType.INT32, max_capacity=4)],
                     Chunk("p", 2, {"a": Column(a)}))
    j = _packed(FieldType.JSON, [b"1", b"2"])
    fields = [Field("j", FieldType.JSON)]
    with pytest.raises(ValueError, match="expected 3 values"):
        encode_chunk(fields, Chunk("p", 3, {"j": Column(j)}))
    with pytest.raises(ValueError, match="a null row has packed values"):
        encode_chunk(fields, Chunk("p", 2, {"j": Column(j, np.array([True, False]))}))
    with pytest.raises(ValueError, match="packed JSON values in this column"):
        encode_chunk([Field("j", FieldType.VARCHAR, max_length=4)], Chunk("p", 2, {"j": Column(j)}))
