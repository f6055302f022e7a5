"""Rows <-> columns for Milvus (vecbackup.engines.milvus.rows_to_chunk / chunk_to_rows), through the codec.

Rows are shaped like pymilvus query results: float vectors as lists of floats, byte vectors
(FLOAT16, BFLOAT16, BINARY, INT8) as a one-element list ``[b"..."]``, sparse vectors as
``{index: value}``, dynamic fields as extra top-level keys. No server is involved.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbackup.engines.milvus import chunk_to_rows, rows_to_chunk
from vecbackup.format.codec import Chunk, Column, decode_chunk, encode_chunk
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType

T = FieldType
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BYTE_VECTORS = {T.FLOAT16_VECTOR, T.BFLOAT16_VECTOR, T.BINARY_VECTOR, T.INT8_VECTOR}


def spec_all(*, auto_id: bool = False, dynamic: bool = True, nullable_vectors: bool = False) -> CollectionSpec:
    nv = nullable_vectors
    fields = (
        Field("id", T.INT64, is_primary=True, auto_id=auto_id),
        Field("b", T.BOOL),
        Field("b_n", T.BOOL, nullable=True),
        Field("i8", T.INT8),
        Field("i16", T.INT16, nullable=True),
        Field("i32", T.INT32),
        Field("i64", T.INT64, nullable=True),
        Field("f", T.FLOAT, nullable=True),
        Field("d", T.DOUBLE),
        Field("s", T.VARCHAR, max_length=256),
        Field("s_n", T.VARCHAR, max_length=256, nullable=True),
        Field("j", T.JSON, nullable=True),
        Field("a_s", T.ARRAY, element_type=T.VARCHAR, max_length=32, max_capacity=8),
        Field("a_i", T.ARRAY, element_type=T.INT64, max_capacity=8, nullable=True),
        Field("a_f", T.ARRAY, element_type=T.FLOAT, max_capacity=8),
        Field("a_b", T.ARRAY, element_type=T.BOOL, max_capacity=8),
        Field("a_d", T.ARRAY, element_type=T.DOUBLE, max_capacity=8, nullable=True),
        Field("fv", T.FLOAT_VECTOR, dim=4, nullable=nv),
        Field("hv", T.FLOAT16_VECTOR, dim=4, nullable=nv),
        Field("bfv", T.BFLOAT16_VECTOR, dim=4, nullable=nv),
        Field("bv", T.BINARY_VECTOR, dim=16, nullable=nv),
        Field("i8v", T.INT8_VECTOR, dim=5, nullable=nv),
        Field("sv", T.SPARSE_FLOAT_VECTOR, nullable=nv),
        Field("g", T.GEOMETRY, nullable=True),
        Field("t", T.TIMESTAMPTZ, nullable=True),
    )
    assert {f.type for f in fields} == set(FieldType) - {T.STRUCT}  # struct arrays: not read from Milvus yet
    return CollectionSpec("all_types", fields, enable_dynamic_field=dynamic)


def f16(values: list[float]) -> list[bytes]:
    return [np.asarray(values, dtype="<f2").tobytes()]


def bf16(values: list[float]) -> list[bytes]:
    bits = np.asarray(values, dtype="<f4").view("<u4") >> 16
    return [bits.astype("<u2").tobytes()]


def i8(values: list[int]) -> list[bytes]:
    return [np.asarray(values, dtype="|i1").tobytes()]


def sample_rows(*, dynamic: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "id": 1,
            "b": True,
            "b_n": False,
            "i8": -128,
            "i16": 32767,
            "i32": -(2**31),
            "i64": 2**63 - 1,
            "f": 0.5,
            "d": math.pi,
            "s": "hello",
            "s_n": "wörld 🦀",
            "j": {"k": [1, 2.5, None, "x"], "n": {"m": True}},
            "a_s": ["a", "", "日本"],
            "a_i": [2**62, -1, 0],
            "a_f": [1.5, -2.25],
            "a_b": [True, False, True],
            "a_d": [1e300, -1e-300],
            "fv": [0.0, -1.5, 3.25, 0.125],
            "hv": f16([1.0, -2.0, 0.5, 65504.0]),
            "bfv": bf16([1.0, -3.0, 256.0, 0.0078125]),
            "bv": [b"\xff\x01"],
            "i8v": i8([-128, -1, 0, 1, 127]),
            "sv": {0: 0.5, 7: -1.25, 2**32 - 2: 3.0},
            "g": "POINT (1 2)",
            "t": "2024-03-03T23:36:07.123456Z",
            "color": "red",
            "size": 10,
            "nested": {"a": [1, {"b": None}]},
        },
        {
            "id": -(2**63),
            "b": False,
            "b_n": None,
            "i8": 127,
            "i16": None,
            "i32": 2**31 - 1,
            "i64": None,
            "f": None,
            "d": -0.0,
            "s": "",
            "s_n": None,
            "j": None,
            "a_s": [],
            "a_i": None,
            "a_f": [],
            "a_b": [],
            "a_d": None,
            "fv": [1.0, 2.0, 3.0, 4.0],
            "hv": f16([0.0, 0.0, 0.0, 0.0]),
            "bfv": bf16([0.0, 0.0, 0.0, 0.0]),
            "bv": [b"\x00\x00"],
            "i8v": i8([0, 0, 0, 0, 0]),
            "sv": {},
            "g": None,
            "t": None,
            "color": "blue",
        },
        {
            "id": 2**63 - 1,
            "b": True,
            "b_n": True,
            "i8": 0,
            "i16": -32768,
            "i32": 0,
            "i64": -(2**63),
            "f": -3.0e38,
            "d": 1.7976931348623157e308,
            "s": "x" * 200,
            "s_n": "",
            "j": [1, "two", {"3": 4}],
            "a_s": ["only"],
            "a_i": [],
            "a_f": [0.25],
            "a_b": [False],
            "a_d": [],
            "fv": [-0.0, 1e-38, -1e38, 0.1],
            "hv": f16([-0.0, 1e-3, 2.5, -65504.0]),
            "bfv": bf16([-1.0, 1e30, -1e-30, 3.0]),
            "bv": [b"\xa5\x5a"],
            "i8v": i8([5, -5, 50, -50, 100]),
            "sv": {123: 1e-5},
            "g": "point(1.0000000001 2e3)",
            "t": "0001-01-01T00:00:00Z",
        },
        {  # a JSON field holding JSON values that are not objects, and no dynamic keys at all
            "id": 0,
            "b": False,
            "b_n": False,
            "i8": 1,
            "i16": 1,
            "i32": 1,
            "i64": 1,
            "f": 1.0,
            "d": 1.0,
            "s": "s",
            "s_n": "t",
            "j": "just a string",
            "a_s": ["x"] * 8,
            "a_i": [1] * 8,
            "a_f": [0.0],
            "a_b": [True],
            "a_d": [0.0],
            "fv": [0.0] * 4,
            "hv": f16([1.0] * 4),
            "bfv": bf16([1.0] * 4),
            "bv": [b"\x80\x00"],
            "i8v": i8([1] * 5),
            "sv": {1: 1.0},
            "g": "POLYGON ((0 0, 1 0, 1 1, 0 0))",
            "t": "9999-12-31T23:59:59.999999Z",
        },
    ]
    # make FLOAT values exactly representable as float32, as they would be when read from Milvus
    for r in rows:
        if r["f"] is not None:
            r["f"] = float(np.float32(r["f"]))
        r["fv"] = [float(np.float32(x)) for x in r["fv"]]
        r["sv"] = {k: float(np.float32(v)) for k, v in r["sv"].items()}
        r["a_f"] = [float(np.float32(x)) for x in r["a_f"]]
        if not dynamic:
            for k in ("color", "size", "nested"):
                r.pop(k, None)
    return rows


def expected_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What chunk_to_rows gives back: byte vectors as plain bytes instead of [bytes]."""
    out = copy.deepcopy(rows)
    for r in out:
        for k in ("hv", "bfv", "bv", "i8v"):
            if isinstance(r.get(k), list):
                (r[k],) = r[k]
    return out


def round_trip(spec: CollectionSpec, partition: str, rows: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    chunk = rows_to_chunk(spec, partition, rows)
    data = encode_chunk(spec.columns, chunk)
    decoded = decode_chunk(data)
    assert decoded.partition == partition
    assert decoded.num_rows == len(rows)
    assert list(decoded.columns) == [c.name for c in spec.columns]
    return chunk_to_rows(spec, decoded, **kw)


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert set(g) == set(w), f"row {i}: keys differ: {set(g) ^ set(w)}"
        for k in w:
            assert g[k] == w[k], f"row {i} field {k!r}: {g[k]!r} != {w[k]!r}"
            assert type(g[k]) is type(w[k]) or (w[k] is None) == (g[k] is None), f"row {i} field {k!r}: type"
        # -0.0 and NaN-free floats: check the bit patterns of the double column too
        if "d" in w and isinstance(w["d"], float):
            assert math.copysign(1, g["d"]) == math.copysign(1, w["d"])


# --------------------------------------------------------------------------- every type


def test_all_types_round_trip() -> None:
    spec = spec_all()
    rows = sample_rows()
    original = copy.deepcopy(rows)
    got = round_trip(spec, "_default", rows)
    assert rows == original  # the input is not modified
    assert_rows_equal(got, expected_rows(rows))


def test_byte_vectors_come_back_as_bytes() -> None:
    got = round_trip(spec_all(), "p", sample_rows())
    for r in got:
        for k in ("hv", "bfv", "bv", "i8v"):
            assert isinstance(r[k], bytes)
    assert got[0]["bv"] == b"\xff\x01"
    assert np.frombuffer(got[0]["i8v"], dtype="|i1").tolist() == [-128, -1, 0, 1, 127]
    assert np.frombuffer(got[0]["hv"], dtype="<f2").tolist() == [1.0, -2.0, 0.5, 65504.0]
    assert isinstance(got[0]["fv"], list) and all(isinstance(x, float) for x in got[0]["fv"])
    assert got[0]["sv"] == {0: 0.5, 7: -1.25, 2**32 - 2: 3.0}
    assert all(isinstance(k, int) for k in got[0]["sv"])


def test_nulls_come_back_as_none() -> None:
    got = round_trip(spec_all(), "_default", sample_rows())
    row = got[1]
    for k in ("b_n", "i16", "i64", "f", "s_n", "j", "a_i", "a_d"):
        assert row[k] is None, k
    assert got[0]["b_n"] is False  # a false BOOL is not a null
    assert got[1]["a_s"] == []  # an empty array is not a null
    assert got[1]["sv"] == {}  # an empty sparse vector is not a null
    assert got[1]["s"] == ""  # an empty string is not a null


def test_nulls_stored_with_validity() -> None:
    spec = spec_all()
    chunk = rows_to_chunk(spec, "_default", sample_rows())
    assert chunk.columns["i16"].valid is not None
    assert list(chunk.columns["i16"].valid) == [True, False, True, True]
    assert chunk.columns["i8"].valid is None  # no nulls: no validity mask
    assert chunk.columns["i16"].values[1] == 0  # null slots hold zero


def test_dynamic_fields_merged_back_at_top_level() -> None:
    spec = spec_all()
    rows = sample_rows()
    chunk = rows_to_chunk(spec, "_default", rows)
    meta = chunk.columns[DYNAMIC_COLUMN].values
    assert meta[0] == {"color": "red", "size": 10, "nested": {"a": [1, {"b": None}]}}
    assert meta[1] == {"color": "blue"}
    assert meta[3] == {}
    got = round_trip(spec, "_default", rows)
    assert got[0]["color"] == "red" and got[0]["size"] == 10 and got[0]["nested"] == {"a": [1, {"b": None}]}
    assert DYNAMIC_COLUMN not in got[0]
    assert "color" not in got[3]


def test_without_dynamic_field_extra_keys_are_not_kept() -> None:
    spec = spec_all(dynamic=False)
    rows = sample_rows()  # still has dynamic-looking keys
    chunk = rows_to_chunk(spec, "_default", rows)
    assert DYNAMIC_COLUMN not in chunk.columns
    got = round_trip(spec, "_default", rows)
    assert "color" not in got[0]
    assert_rows_equal(got, expected_rows(sample_rows(dynamic=False)))


def test_dynamic_keys_never_override_fields() -> None:
    spec = CollectionSpec(
        "c", (Field("id", T.INT64, is_primary=True), Field("name", T.VARCHAR, max_length=9)), enable_dynamic_field=True
    )
    chunk = Chunk(
        "_default",
        1,
        {
            "id": Column(np.array([5], dtype="<i8")),
            "name": Column(["real"]),
            DYNAMIC_COLUMN: Column([{"name": "shadow", "x": 1}]),
        },
    )
    chunk = decode_chunk(encode_chunk(spec.columns, chunk))
    assert chunk_to_rows(spec, chunk) == [{"id": 5, "name": "real", "x": 1}]


def test_nullable_vectors_round_trip() -> None:
    spec = spec_all(nullable_vectors=True)
    rows = sample_rows()
    for k in ("fv", "hv", "bfv", "bv", "i8v", "sv"):
        rows[2][k] = None
    got = round_trip(spec, "_default", rows)
    for k in ("fv", "hv", "bfv", "bv", "i8v", "sv"):
        assert got[2][k] is None
    assert_rows_equal(got, expected_rows(rows))


def test_vectors_given_as_numpy_or_bytes() -> None:
    # pymilvus versions differ: accept bare bytes and numpy arrays as well as [bytes]
    spec = spec_all()
    rows = sample_rows()
    want = expected_rows(rows)
    rows[0]["bv"] = b"\xff\x01"
    rows[0]["hv"] = np.frombuffer(rows[0]["hv"][0], dtype="<f2")
    rows[0]["i8v"] = np.frombuffer(rows[0]["i8v"][0], dtype="|i1")
    rows[0]["fv"] = np.asarray(rows[0]["fv"], dtype="<f4")
    got = round_trip(spec, "_default", rows)
    assert_rows_equal(got[1:], want[1:])
    for k in ("bv", "hv", "i8v", "fv"):
        assert got[0][k] == want[0][k], k


def test_column_dtypes() -> None:
    spec = spec_all()
    chunk = rows_to_chunk(spec, "_default", sample_rows())
    assert chunk.num_rows == 4
    assert chunk.columns["id"].values.dtype == np.dtype("<i8")
    assert chunk.columns["i8"].values.dtype == np.dtype("|i1")
    assert chunk.columns["f"].values.dtype == np.dtype("<f4")
    assert chunk.columns["fv"].values.shape == (4, 4)
    assert chunk.columns["hv"].values.dtype == np.dtype("<u2") and chunk.columns["hv"].values.shape == (4, 4)
    assert chunk.columns["bv"].values.shape == (4, 2)
    assert chunk.columns["i8v"].values.dtype == np.dtype("|i1") and chunk.columns["i8v"].values.shape == (4, 5)


def test_empty_batch() -> None:
    spec = spec_all()
    assert round_trip(spec, "_default", []) == []


def test_partition_is_kept() -> None:
    spec = spec_all()
    chunk = rows_to_chunk(spec, "2024-q1", sample_rows()[:1])
    assert chunk.partition == "2024-q1"
    assert decode_chunk(encode_chunk(spec.columns, chunk)).partition == "2024-q1"


# --------------------------------------------------------------------------- primary keys


def test_keep_ids_false_drops_auto_id_primary_key() -> None:
    spec = spec_all(auto_id=True)
    rows = sample_rows()
    got = round_trip(spec, "_default", rows, keep_ids=False)
    want = expected_rows(rows)
    for r in want:
        del r["id"]
    assert all("id" not in r for r in got)
    assert_rows_equal(got, want)


def test_keep_ids_true_keeps_auto_id_primary_key() -> None:
    spec = spec_all(auto_id=True)
    rows = sample_rows()
    assert [r["id"] for r in round_trip(spec, "_default", rows, keep_ids=True)] == [r["id"] for r in rows]
    assert [r["id"] for r in round_trip(spec, "_default", rows)] == [r["id"] for r in rows]  # default keeps


def test_keep_ids_false_keeps_user_primary_key() -> None:
    spec = spec_all(auto_id=False)
    rows = sample_rows()
    got = round_trip(spec, "_default", rows, keep_ids=False)
    assert [r["id"] for r in got] == [r["id"] for r in rows]


def test_varchar_primary_key() -> None:
    spec = CollectionSpec(
        "c", (Field("pk", T.VARCHAR, max_length=64, is_primary=True), Field("v", T.FLOAT_VECTOR, dim=2))
    )
    rows = [{"pk": "a", "v": [1.0, 2.0]}, {"pk": "日本", "v": [0.5, 0.25]}]
    assert round_trip(spec, "_default", rows) == rows


# --------------------------------------------------------------------------- hypothesis

SMALL = CollectionSpec(
    "small",
    (
        Field("id", T.INT64, is_primary=True),
        Field("title", T.VARCHAR, max_length=64, nullable=True),
        Field("n", T.INT32, nullable=True),
        Field("score", T.DOUBLE),
        Field("tags", T.ARRAY, element_type=T.INT16, max_capacity=4, nullable=True),
        Field("meta", T.JSON),
        Field("emb", T.FLOAT_VECTOR, dim=3),
        Field("bits", T.BINARY_VECTOR, dim=16),
        Field("h", T.FLOAT16_VECTOR, dim=2),
        Field("sp", T.SPARSE_FLOAT_VECTOR),
    ),
    enable_dynamic_field=True,
)
FIELD_NAMES = {f.name for f in SMALL.fields}

f32 = st.floats(width=32, allow_nan=False)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_val = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6
)
small_row = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**63), 2**63 - 1),
        "title": st.none() | st.text(max_size=20),
        "n": st.none() | st.integers(-(2**31), 2**31 - 1),
        "score": st.floats(allow_nan=False),
        "tags": st.none() | st.lists(st.integers(-(2**15), 2**15 - 1), max_size=4),
        "meta": json_val,
        "emb": st.lists(f32, min_size=3, max_size=3),
        "bits": st.binary(min_size=2, max_size=2).map(lambda b: [b]),
        "h": st.binary(min_size=4, max_size=4).map(lambda b: [b]),
        "sp": st.dictionaries(st.integers(0, 2**32 - 2), f32, max_size=5),
    }
)
dynamic_keys = st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda k: k not in FIELD_NAMES), json_val, max_size=3
)


@given(
    st.lists(st.tuples(small_row, dynamic_keys).map(lambda t: {**t[1], **t[0]}), max_size=12),
    st.text(min_size=1, max_size=10),
)
@FAST
def test_random_rows_round_trip(rows: list[dict[str, Any]], partition: str) -> None:
    got = round_trip(SMALL, partition, rows)
    want = [{**r, "bits": r["bits"][0], "h": r["h"][0]} for r in rows]
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert math.copysign(1, g["score"]) == math.copysign(1, w["score"])  # -0.0 survives


@pytest.mark.parametrize("sparse", [{"3": 0.5, "10": 2.0}, {np.int64(3): np.float32(0.5), np.uint32(10): 2}])
def test_sparse_keys_and_values_are_normalized(sparse: dict[Any, Any]) -> None:
    spec = CollectionSpec("c", (Field("id", T.INT64, is_primary=True), Field("sv", T.SPARSE_FLOAT_VECTOR)))
    got = round_trip(spec, "_default", [{"id": 1, "sv": sparse}])
    assert got == [{"id": 1, "sv": {3: 0.5, 10: 2.0}}]
    assert all(type(k) is int for k in got[0]["sv"])


def test_timestamptz_is_kept_as_the_instant_whatever_offset_the_server_shows() -> None:
    """Milvus keeps a TIMESTAMPTZ as an instant (UTC); a server may show it with the collection's time zone. The chunk
    holds microseconds since the epoch, and a restore sends the same instant in UTC."""
    spec = CollectionSpec("c", (Field("id", T.INT64, is_primary=True), Field("t", T.TIMESTAMPTZ, nullable=True)))
    rows = [{"id": 1, "t": "2024-03-04T05:06:07.123456+05:30"}, {"id": 2, "t": "2024-03-03T23:36:07.123456Z"},
            {"id": 3, "t": None}, {"id": 4, "t": "1969-12-31T23:59:59.999999Z"}]
    chunk = rows_to_chunk(spec, "_default", rows)
    values = chunk.columns["t"].values
    assert isinstance(values, np.ndarray) and values.dtype == np.dtype("<i8")
    assert values.tolist() == [1709508967123456, 1709508967123456, 0, -1]
    assert [r["t"] for r in chunk_to_rows(spec, decode_chunk(encode_chunk(spec.columns, chunk)))] == [
        "2024-03-03T23:36:07.123456Z", "2024-03-03T23:36:07.123456Z", None, "1969-12-31T23:59:59.999999Z"]


@pytest.mark.parametrize("bad", ["2024-03-03T23:36:07", "2024-03-03T23:36:07.1234567Z", "yesterday", 1.5])
def test_a_timestamptz_that_cannot_be_kept_exactly_is_refused(bad: Any) -> None:
    from vecbackup.errors import VecbackupError

    spec = CollectionSpec("c", (Field("id", T.INT64, is_primary=True), Field("t", T.TIMESTAMPTZ)))
    with pytest.raises(VecbackupError, match="field 't': TIMESTAMPTZ value"):
        rows_to_chunk(spec, "_default", [{"id": 1, "t": bad}])
