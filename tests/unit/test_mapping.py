"""vecbackup.ops.mapping without any engine: plan_mapping both ways, its problems, and transform_chunk."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from vecbackup.engines.qdrant.model import chunk_to_points, create_calls, spec_from_collection_info
from vecbackup.errors import Unsupported
from vecbackup.format.codec import Chunk, Column, decode_chunk, encode_chunk
from vecbackup.ops.mapping import PK_NAMESPACE, engine_family, plan_mapping, transform_chunk
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType, Index

F = FieldType


def milvus_spec(pk: FieldType = F.INT64, **kw: Any) -> CollectionSpec:
    fields = [
        Field("pk", pk, is_primary=True, max_length=64 if pk is F.VARCHAR else None),
        Field("vec", F.FLOAT_VECTOR, dim=4),
        Field("half", F.FLOAT16_VECTOR, dim=2),
        Field("bf", F.BFLOAT16_VECTOR, dim=2),
        Field("sp", F.SPARSE_FLOAT_VECTOR),
        Field("b", F.BOOL), Field("i8", F.INT8), Field("i32", F.INT32), Field("n", F.INT64),
        Field("f", F.FLOAT), Field("d", F.DOUBLE, nullable=True), Field("s", F.VARCHAR, max_length=20),
        Field("j", F.JSON), Field("arr", F.ARRAY, element_type=F.INT64, max_capacity=4),
    ]
    indexes = [
        Index("vec", "HNSW", "vec", "L2", {"M": 8, "efConstruction": 40}),
        Index("half", "FLAT", "half", "IP", {}),
        Index("sp", "SPARSE_INVERTED_INDEX", "sp", "IP", {}),
        Index("n", "STL_SORT", "n"), Index("s", "INVERTED", "s"), Index("f", "INVERTED", "f"),
        Index("b", "BITMAP", "b"), Index("j", "INVERTED", "j"),
    ]
    defaults: dict[str, Any] = {"name": "coll", "fields": tuple(fields), "enable_dynamic_field": True,
                                "partitions": ("_default", "p1"), "indexes": tuple(indexes)}
    defaults.update(kw)
    return CollectionSpec(**defaults)


def milvus_chunk(spec: CollectionSpec, partition: str = "p1", ids: tuple[Any, ...] = (1, 2)) -> Chunk:
    n = len(ids)
    half = np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float16).view(np.uint16)
    bf = (np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    cols = {
        "pk": Column(np.array(ids, dtype="<i8") if spec.primary.type is F.INT64 else list(ids)),
        "vec": Column(np.arange(8, dtype="<f4").reshape(2, 4)),
        "half": Column(half),
        "bf": Column(bf),
        "sp": Column([{1: 0.5, 7: 1.25}, None], np.array([True, False])),
        "b": Column(np.array([True, False])), "i8": Column(np.array([-3, 4], dtype="|i1")),
        "i32": Column(np.array([5, 6], dtype="<i4")), "n": Column(np.array([2**62, -(2**62)], dtype="<i8")),
        "f": Column(np.array([0.5, 0.1], dtype="<f4")),
        "d": Column(np.array([0.1, 0.0]), np.array([True, False])),
        "s": Column(["x", "ÿ"]), "j": Column([{"a": [1, None]}, None], np.array([True, False])),
        "arr": Column([[1, 2], []]),
        DYNAMIC_COLUMN: Column([{"dyn": 1}, {}]),
    }
    return Chunk(partition=partition, num_rows=n, columns=cols)


def by_source(mapping: Any) -> dict[str, Any]:
    return {d.source: d for d in mapping.decisions}


def test_engine_families() -> None:
    assert engine_family("milvus") == engine_family("milvus-lite") == "milvus"
    assert engine_family("qdrant") == engine_family("qdrant-local") == "qdrant"
    with pytest.raises(Unsupported):
        engine_family("weaviate")


@pytest.mark.parametrize(("src", "dst"), [("milvus", "milvus-lite"), ("milvus-lite", "milvus"),
                                          ("qdrant", "qdrant-local"), ("qdrant-local", "qdrant")])
def test_same_engine_is_the_identity(src: str, dst: str) -> None:
    spec = milvus_spec()
    mp = plan_mapping(spec, src, dst)
    assert mp.identity and mp.restorable and mp.spec is spec
    chunk = milvus_chunk(spec)
    assert transform_chunk(mp, chunk) is chunk


# -- Milvus -> Qdrant -------------------------------------------------------------------------------


def test_milvus_to_qdrant_spec() -> None:
    mp = plan_mapping(milvus_spec(), "milvus", "qdrant")
    assert mp.restorable and not mp.identity
    spec = mp.spec
    assert [(f.name, f.type, f.extra.get("qdrant_name")) for f in spec.fields] == [
        ("id", F.VARCHAR, None), ("vec", F.FLOAT_VECTOR, "vec"), ("half", F.FLOAT_VECTOR, "half"),
        ("bf", F.FLOAT_VECTOR, "bf"), ("sp", F.SPARSE_FLOAT_VECTOR, "sp")]
    assert spec.primary.name == "id" and spec.enable_dynamic_field and spec.partitions == ()
    params = spec.extra["qdrant"]["params"]
    assert params["vectors"] == {
        "vec": {"size": 4, "distance": "Euclid", "hnsw_config": {"m": 8, "ef_construct": 40}},
        "half": {"size": 2, "distance": "Dot", "datatype": "float16", "hnsw_config": {"m": 0}},
        "bf": {"size": 2, "distance": "Cosine"},
    }
    assert params["sparse_vectors"] == {"sp": {}}
    payload_indexes = {i.field_name: i.index_type for i in spec.indexes if i.index_type.startswith("PAYLOAD_")}
    assert payload_indexes == {"n": "PAYLOAD_INTEGER", "s": "PAYLOAD_KEYWORD", "f": "PAYLOAD_FLOAT",
                               "b": "PAYLOAD_BOOL"}
    d = by_source(mp)
    assert d["pk"].kind == "point id" and "integer point ids" in d["pk"].text
    assert "no index recorded: distance Cosine" in d["bf"].text and d["bf"].note
    assert "FLAT" in d["half"].text and "metric L2 -> distance Euclid" in d["vec"].text
    assert "no Qdrant counterpart" in d["j"].text
    assert d["partitions"].target == "_partition"
    assert d[DYNAMIC_COLUMN].kind == "payload keys"
    # the Qdrant sink accepts the spec as it is
    calls = create_calls(spec, "target")
    assert set(calls.create_collection["vectors_config"]) == {"vec", "half", "bf"}
    assert [p["field_name"] for p in calls.payload_indexes] == ["b", "n", "f", "s"]  # in field order


@pytest.mark.parametrize(("ftype", "reason"), [(F.BINARY_VECTOR, "Qdrant has no binary vectors"),
                                               (F.INT8_VECTOR, "Qdrant has no INT8_VECTOR vectors")])
def test_milvus_to_qdrant_problems(ftype: FieldType, reason: str) -> None:
    spec = milvus_spec()
    spec = CollectionSpec(name="c", fields=(*spec.fields, Field("bad", ftype, dim=16),
                                            Field("ham", F.FLOAT_VECTOR, dim=2)),
                          indexes=(Index("ham", "HNSW", "ham", "MANHATTAN"),))
    mp = plan_mapping(spec, "milvus-lite", "qdrant-local")
    assert not mp.restorable
    assert [p.field for p in mp.problems] == ["bad", "ham"]
    msg = mp.error().message
    assert msg == (f"cannot restore into Qdrant: field 'bad' ({ftype.value}): {reason}; "
                   "field 'ham' (FLOAT_VECTOR): Qdrant has no MANHATTAN distance")
    with pytest.raises(Unsupported):
        transform_chunk(mp, milvus_chunk(milvus_spec()))


def test_milvus_to_qdrant_transform_int_ids() -> None:
    spec = milvus_spec()
    mp = plan_mapping(spec, "milvus", "qdrant")
    out = transform_chunk(mp, milvus_chunk(spec))
    assert out.partition == "" and out.num_rows == 2
    assert set(out.columns) == {"id", "vec", "half", "bf", "sp", DYNAMIC_COLUMN}
    assert out.columns["id"].values == ["1", "2"]
    np.testing.assert_array_equal(out.columns["half"].values, [[1.5, -2.0], [0.25, 8.0]])
    assert out.columns["half"].values.dtype == np.float32  # type: ignore[union-attr]
    np.testing.assert_array_equal(out.columns["bf"].values, [[1.5, -2.0], [0.25, 3.0]])
    assert out.columns["sp"].values == [{1: 0.5, 7: 1.25}, None]
    p0, p1 = out.columns[DYNAMIC_COLUMN].values
    assert p0 == {"b": True, "i8": -3, "i32": 5, "n": 2**62, "f": 0.5, "d": 0.1, "s": "x", "j": {"a": [1, None]},
                  "arr": [1, 2], "dyn": 1, "_partition": "p1"}
    assert p1["d"] is None and p1["j"] is None and p1["n"] == -(2**62) and p1["_partition"] == "p1"
    assert p1["f"] == float(np.float32(0.1))
    points = chunk_to_points(mp.spec, out)  # what the Qdrant sink sends
    assert points[0]["id"] == 1 and set(points[0]["vector"]) == {"vec", "half", "bf", "sp"}
    assert "sp" not in points[1]["vector"]


def test_milvus_to_qdrant_negative_int_id_is_refused() -> None:
    spec = milvus_spec()
    mp = plan_mapping(spec, "milvus", "qdrant")
    with pytest.raises(Unsupported, match=r"field 'pk' \(INT64\): primary key -5 is negative"):
        transform_chunk(mp, milvus_chunk(spec, ids=(3, -5)))


def test_milvus_to_qdrant_varchar_ids_become_uuid5() -> None:
    spec = milvus_spec(F.VARCHAR, partitions=("_default",))
    mp = plan_mapping(spec, "milvus", "qdrant")
    assert mp.restorable
    assert "uuid5" in by_source(mp)["pk"].text and by_source(mp)["pk"].note
    assert any(i.field_name == "pk" and i.index_type == "PAYLOAD_KEYWORD" for i in mp.spec.indexes)
    out = transform_chunk(mp, milvus_chunk(spec, partition="_default", ids=("a", "550e8400")))
    assert out.columns["id"].values == [str(uuid.uuid5(PK_NAMESPACE, "a")), str(uuid.uuid5(PK_NAMESPACE, "550e8400"))]
    payloads = out.columns[DYNAMIC_COLUMN].values
    assert [p["pk"] for p in payloads] == ["a", "550e8400"]
    assert "_partition" not in payloads[0]  # one partition: nothing to tell apart
    assert uuid.UUID(out.columns["id"].values[0]).version == 5


def test_milvus_partition_key_collection_keeps_no_partition_payload() -> None:
    base = milvus_spec()
    fields = tuple(Field(f.name, f.type, dim=f.dim, max_length=f.max_length, is_primary=f.is_primary,
                         is_partition_key=f.name == "s", element_type=f.element_type,
                         max_capacity=f.max_capacity) for f in base.fields)
    spec = CollectionSpec(name="c", fields=fields, partitions=tuple(f"_default_{i}" for i in range(16)),
                          indexes=base.indexes)
    mp = plan_mapping(spec, "milvus", "qdrant")
    assert mp.partition_payload_key is None and "partitions" not in by_source(mp)
    assert "partition key" in by_source(mp)["s"].text


# -- Qdrant -> Milvus -------------------------------------------------------------------------------


def qdrant_info(**extra_vectors: Any) -> dict[str, Any]:
    vectors = {
        "a": {"size": 4, "distance": "Cosine", "hnsw_config": {"m": 8, "ef_construct": 64}},
        "half": {"size": 2, "distance": "Euclid", "datatype": "float16"},
        "my-vec": {"size": 2, "distance": "Dot", "hnsw_config": {"m": 0}},
        **extra_vectors,
    }
    return {"config": {"params": {"vectors": vectors, "shard_number": 2,
                                  "sparse_vectors": {"sp": {"modifier": "idf"}}},
                       "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
                       "optimizer_config": {"indexing_threshold": 20000}},
            "payload_schema": {"tenant": {"data_type": "keyword", "params": {"type": "keyword", "is_tenant": True}}}}


def qdrant_spec(**extra_vectors: Any) -> CollectionSpec:
    return spec_from_collection_info("qc", qdrant_info(**extra_vectors)).spec


def test_qdrant_to_milvus_spec() -> None:
    mp = plan_mapping(qdrant_spec(), "qdrant", "milvus")
    assert mp.restorable
    spec = mp.spec
    assert [(f.name, f.type, f.dim, f.nullable, f.extra) for f in spec.fields] == [
        ("id", F.VARCHAR, None, False, {}), ("a", F.FLOAT_VECTOR, 4, False, {}),
        ("half", F.FLOAT16_VECTOR, 2, False, {}), ("my_vec", F.FLOAT_VECTOR, 2, False, {}),
        ("sp", F.SPARSE_FLOAT_VECTOR, None, False, {})]
    assert spec.primary.max_length == 36
    assert spec.enable_dynamic_field and spec.extra == {} and spec.partitions == ("_default",)
    assert spec.num_shards is None
    assert [(i.field_name, i.index_type, i.metric_type, i.params) for i in spec.indexes] == [
        ("a", "HNSW", "COSINE", {"M": 8, "efConstruction": 64}),
        ("half", "HNSW", "L2", {"M": 16, "efConstruction": 100}),
        ("my_vec", "FLAT", "IP", {}),
        ("sp", "SPARSE_INVERTED_INDEX", "IP", {})]
    d = by_source(mp)
    assert "renamed" in d["my-vec"].text and d["my-vec"].note
    assert "idf modifier is not kept" in d["sp"].text
    assert "not recreated" in d["tenant"].text
    assert "VARCHAR(36)" in d["id"].text
    assert "optimizer_config" in d["extra.qdrant"].text and "shard_number" in d["extra.qdrant"].text


def test_qdrant_to_milvus_lite_keeps_float16_as_float_vector() -> None:
    mp = plan_mapping(qdrant_spec(), "qdrant-local", "milvus-lite")
    assert mp.spec.field("half").type is F.FLOAT_VECTOR
    assert "Milvus Lite has no FLOAT16_VECTOR" in by_source(mp)["half"].text


def test_qdrant_to_milvus_problems() -> None:
    spec = qdrant_spec(mv={"size": 3, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
                       man={"size": 3, "distance": "Manhattan"})
    mp = plan_mapping(spec, "qdrant", "milvus")
    assert mp.error().message == ("cannot restore into Milvus: field 'mv' (multivector): Milvus has no multivector "
                                  "type; field 'man' (FLOAT_VECTOR): Milvus has no Manhattan distance for float "
                                  "vectors")


def qdrant_chunk(n: int = 2, partition: str = "") -> Chunk:
    return Chunk(partition=partition, num_rows=n, columns={
        "id": Column(["7", "2b1c3f3e-7a53-4d1e-9a8e-000000000001"][:n]),
        "a": Column(np.ones((n, 4), dtype="<f4")),
        "half": Column(np.array([[1.5, -2.0], [0.25, 8.0]], dtype="<f4")[:n]),
        "my-vec": Column(np.zeros((n, 2), dtype="<f4")),
        "sp": Column([{3: 0.5}, {4: 1.0}][:n]),
        DYNAMIC_COLUMN: Column([{"tenant": "t1", "x": [1, {"y": None}]}, {}][:n]),
    })


def test_qdrant_to_milvus_transform() -> None:
    mp = plan_mapping(qdrant_spec(), "qdrant", "milvus")
    out = transform_chunk(mp, qdrant_chunk())
    assert set(out.columns) == {"id", "a", "half", "my_vec", "sp", DYNAMIC_COLUMN}
    assert out.partition == ""
    half = out.columns["half"].values
    assert half.dtype == np.dtype("<u2")  # type: ignore[union-attr]
    np.testing.assert_array_equal(np.asarray(half).view("<f2"), [[1.5, -2.0], [0.25, 8.0]])
    assert out.columns[DYNAMIC_COLUMN].values == [{"tenant": "t1", "x": [1, {"y": None}]}, {}]
    # the chunk is encodable in the target spec's columns
    back = decode_chunk(encode_chunk(mp.spec.columns, out))
    assert back.columns["id"].values == ["7", "2b1c3f3e-7a53-4d1e-9a8e-000000000001"]


def test_qdrant_to_milvus_null_vector_is_refused_naming_the_point() -> None:
    mp = plan_mapping(qdrant_spec(), "qdrant", "milvus-lite")
    chunk = qdrant_chunk()
    chunk.columns["sp"] = Column([{3: 0.5}, None], np.array([True, False]))
    with pytest.raises(Unsupported, match=r"field 'sp' \(SPARSE_FLOAT_VECTOR\): point 2b1c3f3e-.* has no vector"):
        transform_chunk(mp, chunk)


def test_qdrant_to_milvus_payload_key_clashing_with_a_field_is_renamed() -> None:
    mp = plan_mapping(qdrant_spec(), "qdrant", "milvus")
    chunk = qdrant_chunk(2)
    chunk.columns[DYNAMIC_COLUMN] = Column([{"id": 5, "x": 1}, {"id": 6, "payload_id": "taken"}])
    out = transform_chunk(mp, chunk).columns[DYNAMIC_COLUMN].values
    assert out == [{"payload_id": 5, "x": 1}, {"payload_id_2": 6, "payload_id": "taken"}]
    assert any("renamed payload_<key>" in d.text for d in mp.decisions if d.kind == "dynamic fields")


def test_qdrant_to_milvus_lite_renames_the_key_lite_drops() -> None:
    """Milvus Lite silently drops a dynamic field named _partition (a server keeps it): renamed for Lite only."""
    chunk = qdrant_chunk(2)
    chunk.columns[DYNAMIC_COLUMN] = Column([{"_partition": "p1", "x": 1}, {}])
    lite = plan_mapping(qdrant_spec(), "qdrant", "milvus-lite")
    assert transform_chunk(lite, chunk).columns[DYNAMIC_COLUMN].values == [{"payload__partition": "p1", "x": 1}, {}]
    assert any("'_partition', which Milvus Lite drops" in d.text for d in lite.decisions)
    server = plan_mapping(qdrant_spec(), "qdrant", "milvus")
    assert transform_chunk(server, chunk).columns[DYNAMIC_COLUMN].values == [{"_partition": "p1", "x": 1}, {}]


def test_qdrant_shard_keys_become_partitions() -> None:
    info = qdrant_info()
    info["config"]["params"]["sharding_method"] = "custom"
    spec = spec_from_collection_info("qc", info, shard_keys=[{"key": "eu"}, {"key": 7}]).spec
    mp = plan_mapping(spec, "qdrant", "milvus")
    assert mp.spec.partitions == ("_default", "eu", "_7")
    assert transform_chunk(mp, qdrant_chunk(1, partition="7")).partition == "_7"
    assert transform_chunk(mp, qdrant_chunk(1, partition="eu")).partition == "eu"


def test_round_trip_milvus_to_qdrant_to_milvus() -> None:
    """A mapped spec maps back: Milvus -> Qdrant -> Milvus keeps every vector field and its metric."""
    mp = plan_mapping(milvus_spec(), "milvus", "qdrant")
    back = plan_mapping(mp.spec, "qdrant", "milvus")
    assert back.restorable
    assert {f.name: f.type for f in back.spec.fields} == {
        "id": F.VARCHAR, "vec": F.FLOAT_VECTOR, "half": F.FLOAT16_VECTOR, "bf": F.FLOAT_VECTOR,
        "sp": F.SPARSE_FLOAT_VECTOR}
    assert {i.field_name: i.metric_type for i in back.spec.indexes} == {"vec": "L2", "half": "IP", "bf": "COSINE",
                                                                         "sp": "IP"}


def test_milvus_geometry_and_timestamptz_to_qdrant_payloads() -> None:
    """GEOMETRY -> its WKT text, TIMESTAMPTZ -> RFC 3339 text in UTC (the instant exactly), nulls null; an index on a
    TIMESTAMPTZ -> a datetime payload index; the plan says what each becomes."""
    spec = CollectionSpec(name="c", fields=(
        Field("pk", F.INT64, is_primary=True), Field("vec", F.FLOAT_VECTOR, dim=2),
        Field("g", F.GEOMETRY, nullable=True), Field("t", F.TIMESTAMPTZ, nullable=True)),
        indexes=(Index("vec", "FLAT", "vec", "L2", {}), Index("t", "INVERTED", "t")))
    mp = plan_mapping(spec, "milvus-lite", "qdrant-local")
    assert mp.restorable
    said = {d.source: d for d in mp.decisions}
    assert said["g"].text.startswith("GEOMETRY field 'g' -> payload key 'g': its WKT text as the source returned it")
    assert said["t"].text.startswith("TIMESTAMPTZ field 't' -> payload key 't': RFC 3339 text in UTC")
    assert "its INVERTED index -> a datetime payload index" in said["t"].text
    assert said["g"].note and said["t"].note  # the type changes: also a restore note
    assert [(i.field_name, i.index_type) for i in mp.spec.indexes if i.field_name == "t"] == [("t", "PAYLOAD_DATETIME")]
    assert [(c["field_name"], str(c["field_schema"])) for c in create_calls(mp.spec, "c").payload_indexes] == [
        ("t", "datetime")]
    chunk = Chunk("_default", 3, {
        "pk": Column(np.array([1, 2, 3], dtype="<i8")), "vec": Column(np.zeros((3, 2), dtype="<f4")),
        "g": Column(["POINT (1 2)", None, "point(1.0000000001 2e3)"], np.array([True, False, True])),
        "t": Column(np.array([1709508967123456, -62135596800000000, 0], dtype="<i8"), np.array([True, True, False])),
    })
    payloads = transform_chunk(mp, decode_chunk(encode_chunk(spec.columns, chunk))).columns[DYNAMIC_COLUMN].values
    assert payloads == [{"g": "POINT (1 2)", "t": "2024-03-03T23:36:07.123456Z"},
                        {"g": None, "t": "0001-01-01T00:00:00Z"},
                        {"g": "point(1.0000000001 2e3)", "t": None}]


def test_a_struct_array_into_qdrant_is_a_problem() -> None:
    spec = CollectionSpec(name="c", fields=(
        Field("pk", F.INT64, is_primary=True), Field("vec", F.FLOAT_VECTOR, dim=2),
        Field("clips", F.ARRAY, element_type=F.STRUCT, struct_fields=(Field("e", F.FLOAT_VECTOR, dim=2),))))
    mp = plan_mapping(spec, "milvus", "qdrant")
    assert mp.error().message == ("cannot restore into Qdrant: field 'clips' (ARRAY<STRUCT>): vecbackup does not "
                                  "map struct arrays into Qdrant")
