"""The columnar read's conversion, pure: milvus-proto FieldData (built here as the server sends it) -> the columns the
row path would have built from the same rows, and re-batching pages into the row path's chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymilvus.grpc_gen import schema_pb2

from vecbackup.engines.milvus.columnar import Unfit, _packed, columns_of, rebatch
from vecbackup.engines.milvus.rows import rows_to_chunk
from vecbackup.format.codec import Chunk, Column, decode_chunk, encode_chunk
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType

SPEC = CollectionSpec("c", (
    Field("id", FieldType.INT64, is_primary=True), Field("v", FieldType.FLOAT_VECTOR, dim=3),
    Field("h", FieldType.FLOAT16_VECTOR, dim=2), Field("t", FieldType.VARCHAR, max_length=10),
    Field("j", FieldType.JSON), Field("a", FieldType.ARRAY, element_type=FieldType.VARCHAR, max_capacity=3),
    Field("n", FieldType.ARRAY, element_type=FieldType.INT64, max_capacity=3),
    Field("f", FieldType.FLOAT), Field("b", FieldType.BOOL), Field("i8", FieldType.INT8),
    Field("o", FieldType.INT32, nullable=True), Field("sp", FieldType.SPARSE_FLOAT_VECTOR)),
    enable_dynamic_field=True)

ROWS = [
    {"id": 3, "v": [0.5, -1.25, 3.0], "h": np.array([1.5, -2.0], dtype=np.float16).tobytes(), "t": "ab",
     "j": {"k": [1, None]}, "a": ["x", "ünï"], "n": [1, 2], "f": 0.1, "b": True, "i8": -7, "o": None,
     "sp": {4: 0.5, 9: 1.5}, "color": "red"},
    {"id": 8, "v": [1.0, 2.0, 4.5], "h": np.array([0.0, 1.0], dtype=np.float16).tobytes(), "t": "",
     "j": [None, "s"], "a": [], "n": [], "f": -2.5, "b": False, "i8": 100, "o": 42, "sp": {1: 2.0}},
]


def _fields_data(rows: list[dict]) -> list[schema_pb2.FieldData]:
    """FieldData as a Milvus server answers a query of ``rows`` with output_fields ["*"]."""
    fds = []
    S = schema_pb2

    def fd(name: str, dtype: int) -> schema_pb2.FieldData:
        f = S.FieldData(field_name=name, type=dtype)
        fds.append(f)
        return f

    fd("id", S.Int64).scalars.long_data.data.extend(r["id"] for r in rows)
    v = fd("v", S.FloatVector)
    v.vectors.dim = 3
    v.vectors.float_vector.data.extend(x for r in rows for x in r["v"])
    h = fd("h", S.Float16Vector)
    h.vectors.dim = 2
    h.vectors.float16_vector = b"".join(r["h"] for r in rows)
    fd("t", S.VarChar).scalars.string_data.data.extend(r["t"] for r in rows)
    import orjson

    fd("j", S.JSON).scalars.json_data.data.extend(orjson.dumps(r["j"]) for r in rows)
    a = fd("a", S.Array)
    for r in rows:
        a.scalars.array_data.data.add().string_data.data.extend(r["a"])
    n = fd("n", S.Array)
    for r in rows:
        n.scalars.array_data.data.add().long_data.data.extend(r["n"])
    fd("f", S.Float).scalars.float_data.data.extend(r["f"] for r in rows)
    fd("b", S.Bool).scalars.bool_data.data.extend(r["b"] for r in rows)
    fd("i8", S.Int8).scalars.int_data.data.extend(r["i8"] for r in rows)
    o = fd("o", S.Int32)
    o.scalars.int_data.data.extend(0 if r["o"] is None else r["o"] for r in rows)
    o.valid_data.extend(r["o"] is not None for r in rows)
    sp = fd("sp", S.SparseFloatVector)
    for r in rows:
        pairs = np.array(sorted(r["sp"].items()), dtype=[("i", "<u4"), ("v", "<f4")])
        sp.vectors.sparse_float_vector.contents.append(pairs.tobytes())
    meta = fd("$meta", S.JSON)
    meta.is_dynamic = True
    meta.scalars.json_data.data.extend(orjson.dumps({k: x for k, x in r.items() if k not in {
        f.name for f in SPEC.fields}}) for r in rows)
    return fds


def _as_pymilvus_rows(rows: list[dict]) -> list[dict]:
    """What pymilvus's query_iterator returns for the same rows (float32 values, bytes as [b"..."])."""
    out = []
    for r in rows:
        p = dict(r)
        p["v"] = [float(np.float32(x)) for x in r["v"]]
        p["f"] = float(np.float32(r["f"]))
        p["h"] = [r["h"]]
        out.append(p)
    return out


def test_columns_encode_to_the_same_bytes_as_the_row_path():
    columnar = columns_of(SPEC, "p1", _fields_data(ROWS))
    rows = rows_to_chunk(SPEC, "p1", _as_pymilvus_rows(ROWS))
    assert columnar.num_rows == 2 and columnar.partition == "p1"
    assert encode_chunk(SPEC.columns, columnar) == encode_chunk(SPEC.columns, rows)
    assert columnar.columns[DYNAMIC_COLUMN].values == [{"color": "red"}, {}]
    assert columnar.columns["o"].valid is not None and columnar.columns["o"].valid.tolist() == [False, True]


def test_a_server_that_leaves_nulls_out_is_expanded():
    fds = _fields_data(ROWS)
    o = next(f for f in fds if f.field_name == "o")
    del o.scalars.int_data.data[:]
    o.scalars.int_data.data.append(42)  # only the valid row's value
    assert columns_of(SPEC, "", fds).columns["o"].values.tolist() == [0, 42]


@pytest.mark.parametrize("damage,needle", [
    (lambda fds: fds.pop(1), "no column 'v'"),
    (lambda fds: fds[1].vectors.float_vector.data.append(1.0), "floats for 2 rows"),
    (lambda fds: fds[0].scalars.long_data.data.append(9), "for 3 rows"),
])
def test_an_answer_that_does_not_fit_is_unfit(damage, needle):
    fds = _fields_data(ROWS)
    damage(fds)
    with pytest.raises(Unfit, match=needle):
        columns_of(SPEC, "", fds)


def test_packed_reads_the_array_without_python_floats():
    m = schema_pb2.FloatArray()
    m.data.extend([1.5, -2.0, 3.25] * 1000)
    assert np.frombuffer(_packed(m), dtype="<f4").tolist() == [1.5, -2.0, 3.25] * 1000
    assert _packed(schema_pb2.FloatArray()) == b""


def _pages(sizes: list[int]) -> list[Chunk]:
    out, start = [], 0
    for n in sizes:
        ids = np.arange(start, start + n, dtype="<i8")
        valid = None if n == 0 or start % 3 else np.array([i % 2 == 0 for i in range(n)])
        out.append(Chunk("p", n, {"id": Column(ids), "s": Column([str(i) for i in ids], valid)}))
        start += n
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.integers(1, 50))
def test_rebatch_cuts_the_row_paths_boundaries(sizes, size):
    out = list(rebatch(iter(_pages(sizes)), size))
    total = sum(sizes)
    assert [c.num_rows for c in out] == [size] * (total // size) + ([total % size] if total % size else [])
    ids = np.concatenate([c.columns["id"].values for c in out])
    assert ids.tolist() == list(range(total))
    strings = [s for c in out for s in c.columns["s"].values]
    assert strings == [str(i) for i in range(total)]
    for c in out:  # a validity mask only where a chunk really has a null
        valid = c.columns["s"].valid
        assert valid is None or not valid.all()


GT_SPEC = CollectionSpec("c", (Field("id", FieldType.INT64, is_primary=True),
                               Field("g", FieldType.GEOMETRY, nullable=True),
                               Field("t", FieldType.TIMESTAMPTZ, nullable=True)))
GT_ROWS = [{"id": 1, "g": "POINT (1 2)", "t": "2024-03-03T23:36:07.123456Z"},
           {"id": 2, "g": None, "t": None},
           {"id": 3, "g": "point(1.0000000001 2e3)", "t": "0001-01-01T00:00:00Z"}]


def _gt_fields_data(compact: bool = False, micros: bool = False) -> list[schema_pb2.FieldData]:
    """GEOMETRY and TIMESTAMPTZ as Milvus Lite 3.2.2 answers a query (measured): WKT in geometry_wkt_data, ISO text
    in UTC in string_data, "" at nulls with valid_data; or (``compact``) nulls left out, (``micros``) the instants
    in timestamptz_data."""
    S = schema_pb2
    ids = S.FieldData(field_name="id", type=S.Int64)
    ids.scalars.long_data.data.extend(r["id"] for r in GT_ROWS)
    g = S.FieldData(field_name="g", type=S.Geometry)
    t = S.FieldData(field_name="t", type=S.Timestamptz)
    for r in GT_ROWS:
        if r["g"] is not None or not compact:
            g.scalars.geometry_wkt_data.data.append(r["g"] or "")
        if micros:
            if r["t"] is not None or not compact:
                from vecbackup.times import instant_micros

                t.scalars.timestamptz_data.data.append(instant_micros(r["t"]) if r["t"] else 0)
        elif r["t"] is not None or not compact:
            t.scalars.string_data.data.append(r["t"] or "")
    g.valid_data.extend(r["g"] is not None for r in GT_ROWS)
    t.valid_data.extend(r["t"] is not None for r in GT_ROWS)
    return [ids, g, t]


@pytest.mark.parametrize(("compact", "micros"), [(False, False), (True, False), (False, True)])
def test_geometry_and_timestamptz_read_as_the_row_path_reads_them(compact, micros):
    columnar = columns_of(GT_SPEC, "p", _gt_fields_data(compact, micros))
    rows = rows_to_chunk(GT_SPEC, "p", GT_ROWS)
    assert encode_chunk(GT_SPEC.columns, columnar) == encode_chunk(GT_SPEC.columns, rows)
    back = decode_chunk(encode_chunk(GT_SPEC.columns, columnar))
    assert back.columns["g"].values == ["POINT (1 2)", None, "point(1.0000000001 2e3)"]
    assert back.columns["t"].values.tolist() == [1709508967123456, 0, -62135596800000000]


def test_geometry_as_wkb_or_a_bad_time_is_unfit():
    fds = _gt_fields_data()
    del fds[1].scalars.geometry_wkt_data.data[:]
    fds[1].scalars.geometry_data.data.extend([b"\x01\x01", b"", b"\x01\x01"])  # WKB: the row path reads it
    with pytest.raises(Unfit, match="no geometry_wkt_data"):
        columns_of(GT_SPEC, "", fds)
    fds = _gt_fields_data()
    fds[2].scalars.string_data.data[0] = "2024-03-03T23:36:07"  # no offset: not an instant
    with pytest.raises(Unfit, match="TIMESTAMPTZ value"):
        columns_of(GT_SPEC, "", fds)
