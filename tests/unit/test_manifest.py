"""Manifest JSON (vecbackup.format.manifest) and the collection description (vecbackup.schema)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format.codec import Chunk, Column, encode_chunk
from vecbackup.format.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DataObject,
    Incremental,
    Manifest,
    SourceInfo,
    merge_objects,
)
from vecbackup.format.ranges import format_select, parse_select, ranges_of, select_positions
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType, Index

T = FieldType
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_spec(*, dynamic: bool = True) -> CollectionSpec:
    fields = (
        Field("pk", T.INT64, is_primary=True, auto_id=True, description="primary key"),
        Field("flag", T.BOOL, nullable=True, default_value=False),
        Field("i8", T.INT8, default_value=-3),
        Field("i16", T.INT16, nullable=True),
        Field("i32", T.INT32, default_value=0),
        Field("i64", T.INT64, is_partition_key=True),
        Field("f32", T.FLOAT, default_value=0.5),
        Field("f64", T.DOUBLE, nullable=True, default_value=-1.25e-300),
        Field(
            "title",
            T.VARCHAR,
            max_length=512,
            default_value="untitled",
            is_clustering_key=True,
            extra={"enable_analyzer": True, "analyzer_params": {"type": "english"}},
        ),
        Field("doc", T.JSON, nullable=True),
        Field("tags", T.ARRAY, element_type=T.VARCHAR, max_length=64, max_capacity=16),
        Field("flags", T.ARRAY, element_type=T.BOOL, max_capacity=4, nullable=True),
        Field("ints", T.ARRAY, element_type=T.INT64, max_capacity=8),
        Field("scores", T.ARRAY, element_type=T.DOUBLE, max_capacity=8),
        Field("emb", T.FLOAT_VECTOR, dim=128, extra={"mmap_enabled": "true"}),
        Field("emb16", T.FLOAT16_VECTOR, dim=8),
        Field("embbf", T.BFLOAT16_VECTOR, dim=8),
        Field("bits", T.BINARY_VECTOR, dim=64),
        Field("i8v", T.INT8_VECTOR, dim=16),
        Field("sparse", T.SPARSE_FLOAT_VECTOR),
    )
    # every type is covered but those of version 3 (v3_fields), which would make it a version-3 manifest
    assert {f.type for f in fields} == set(FieldType) - {T.GEOMETRY, T.TIMESTAMPTZ, T.STRUCT}
    return CollectionSpec(
        name="docs/é v2",
        fields=fields,
        description="all the types",
        enable_dynamic_field=dynamic,
        consistency_level="Bounded",
        num_shards=2,
        partitions=("_default", "2023", "2024"),
        indexes=(
            Index("emb", "HNSW", index_name="emb_idx", metric_type="COSINE", params={"M": 16, "efConstruction": 200}),
            Index("bits", "BIN_IVF_FLAT", metric_type="HAMMING", params={"nlist": 64}),
            Index("sparse", "SPARSE_INVERTED_INDEX", metric_type="IP", params=None),  # unknown params
            Index("title", "INVERTED"),  # no params at all: {}
        ),
        aliases=("docs_current", "docs_prod"),
        properties={"collection.ttl.seconds": "86400", "mmap.enabled": True},
        extra={"num_partitions": 16},
    )


def make_manifest(spec: CollectionSpec | None = None, **kw: Any) -> Manifest:
    sha = "ab" * 32
    args: dict[str, Any] = dict(
        backup_id="20240101T000000.000000Z-0a1b2c3d",
        collection=spec or full_spec(),
        source=SourceInfo("milvus", "v2.5.4", "milvus://h:19530/db1"),
        objects=(
            DataObject(f"data/ab/{sha}.vbc", "2023", 1000, 123456, sha),
            DataObject(f"data/cd/{'cd' * 32}.vbc", "2024", 7, 890, "cd" * 32),
        ),
        partition_rows={"_default": 0, "2023": 1000, "2024": 7},
        started_at="2024-01-01T00:00:00.000000+00:00",
        completed_at="2024-01-01T00:01:02.500000+00:00",
        tool_version="0.3.0",
        options={"batch_size": 5000, "compression_level": 3},
        notes=("index 'x': params unknown", "second note"),
    )
    args.update(kw)
    return Manifest(**args)


# --------------------------------------------------------------------------- round trips


def test_manifest_round_trip() -> None:
    m = make_manifest()
    data = m.to_json()
    assert data.endswith(b"\n")
    back = Manifest.from_json(data)
    assert back == m
    assert back.collection == m.collection
    assert back.to_json() == data
    assert back.rows == 1007
    assert back.size == 123456 + 890


def test_manifest_json_content() -> None:
    m = make_manifest()
    d = orjson.loads(m.to_json())
    assert d["format"] == FORMAT_NAME == "vecbackup"
    assert d["format_version"] == 1 and FORMAT_VERSION == 4  # version 1 until an object has ``select``
    assert d["stats"] == {
        "rows": 1007,
        "bytes": 124346,
        "objects": 2,
        "partition_rows": {"_default": 0, "2023": 1000, "2024": 7},
    }
    assert d["source"] == {"engine": "milvus", "server_version": "v2.5.4", "address": "milvus://h:19530/db1"}
    assert d["notes"] == ["index 'x': params unknown", "second note"]
    assert [o["partition"] for o in d["objects"]] == ["2023", "2024"]


def test_index_params_none_vs_empty_survive() -> None:
    back = Manifest.from_json(make_manifest().to_json())
    by_field = {i.field_name: i for i in back.collection.indexes}
    assert by_field["sparse"].params is None  # "unknown"
    assert by_field["title"].params == {}  # "no parameters"
    assert by_field["emb"].params == {"M": 16, "efConstruction": 200}
    assert by_field["emb"].index_name == "emb_idx"
    assert by_field["bits"].metric_type == "HAMMING"
    raw = orjson.loads(make_manifest().to_json())["collection"]["indexes"]
    assert {i["field_name"]: i["params"] for i in raw}["sparse"] is None


def test_field_details_survive() -> None:
    spec = Manifest.from_json(make_manifest().to_json()).collection
    assert spec.field("pk").is_primary and spec.field("pk").auto_id
    assert spec.primary.name == "pk"
    assert spec.field("flag").default_value is False
    assert spec.field("i32").default_value == 0
    assert spec.field("f64").default_value == -1.25e-300
    assert spec.field("tags").element_type is T.VARCHAR
    assert spec.field("tags").max_capacity == 16
    assert spec.field("i16").nullable and not spec.field("i8").nullable
    assert spec.field("title").extra["analyzer_params"] == {"type": "english"}
    assert spec.field("bits").dim == 64
    assert spec.partitions == ("_default", "2023", "2024")
    assert spec.aliases == ("docs_current", "docs_prod")
    assert spec.properties == {"collection.ttl.seconds": "86400", "mmap.enabled": True}


def test_manifest_round_trip_minimal() -> None:
    spec = CollectionSpec("c", (Field("id", T.VARCHAR, is_primary=True, max_length=64),))
    m = make_manifest(spec, objects=(), partition_rows={}, options={}, notes=())
    back = Manifest.from_json(m.to_json())
    assert back == m
    assert back.rows == 0 and back.size == 0
    assert back.collection.partitions == ("_default",)


def test_from_json_tolerates_missing_optional_keys() -> None:
    d = orjson.loads(make_manifest().to_json())
    for key in ("stats", "options", "notes", "tool_version"):
        del d[key]
    for key in ("server_version", "address"):
        del d["source"][key]
    back = Manifest.from_json(orjson.dumps(d))
    assert back.partition_rows == {} and back.options == {} and back.notes == () and back.tool_version == ""
    assert back.source == SourceInfo("milvus", "", "")
    assert back.rows == 1007  # rows come from the objects, not the stats


def test_from_json_ignores_unknown_keys() -> None:
    d = orjson.loads(make_manifest().to_json())
    d["future_key"] = {"x": 1}
    d["collection"]["future"] = 1
    assert Manifest.from_json(orjson.dumps(d)) == make_manifest()


# --------------------------------------------------------------------------- bad manifests


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b"\xff\xfe{}", b'{"format": "vecbackup",}', b"[1, 2"],
)
def test_invalid_json_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptData) as ei:
        Manifest.from_json(data, where="manifests/c/x.json")
    assert ei.value.exit_code == 7
    assert "manifests/c/x.json" in str(ei.value)
    assert "not valid JSON" in str(ei.value)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "vecbackup",
        1,
        None,
        {},
        {"format": "other", "format_version": 1},
        {"format_version": 1},
        {"format": "VECBACKUP", "format_version": 1},
    ],
)
def test_non_manifest_json_is_corrupt(doc: Any) -> None:
    with pytest.raises(CorruptData) as ei:
        Manifest.from_json(orjson.dumps(doc))
    assert ei.value.exit_code == 7
    assert "not a vecbackup manifest" in str(ei.value)


def _without(path: tuple[str, ...]) -> bytes:
    d = orjson.loads(make_manifest().to_json())
    target = d
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
    return orjson.dumps(d)


@pytest.mark.parametrize(
    "path",
    [
        ("backup_id",),
        ("collection",),
        ("source",),
        ("objects",),
        ("started_at",),
        ("completed_at",),
        ("source", "engine"),
        ("collection", "name"),
        ("collection", "fields"),
    ],
)
def test_missing_field_is_corrupt(path: tuple[str, ...]) -> None:
    with pytest.raises(CorruptData) as ei:
        Manifest.from_json(_without(path), where="M")
    assert ei.value.exit_code == 7
    assert str(ei.value).startswith("M ")
    assert path[-1] in str(ei.value)


def _with(mutate: Any) -> bytes:
    d = orjson.loads(make_manifest().to_json())
    mutate(d)
    return orjson.dumps(d)


BAD_VALUES = {
    "unknown field type": lambda d: d["collection"]["fields"][0].update(type="QUANTUM_VECTOR"),
    "unknown element type": lambda d: d["collection"]["fields"][10].update(element_type="DATE"),
    "field without name": lambda d: d["collection"]["fields"][0].pop("name"),
    "index without type": lambda d: d["collection"]["indexes"][0].pop("index_type"),
    "object rows not a number": lambda d: d["objects"][0].update(rows="many"),
    "object without sha": lambda d: d["objects"][0].pop("sha256"),
    "objects not a list": lambda d: d.update(objects=None),
    "object not a dict": lambda d: d.update(objects=[1]),
    "source not a dict": lambda d: d.update(source="milvus"),
    "collection not a dict": lambda d: d.update(collection=[1]),
    "fields not a list of dicts": lambda d: d["collection"].update(fields="id"),
    "partition rows not numbers": lambda d: d["stats"]["partition_rows"].update({"2023": "lots"}),
    "options not a dict": lambda d: d.update(options="fast"),
    "notes not a list": lambda d: d.update(notes=5),
    "indexes null": lambda d: d["collection"].update(indexes=None),
}


@pytest.mark.parametrize("mutate", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_field_value_is_corrupt(mutate: Any) -> None:
    with pytest.raises(CorruptData) as ei:
        Manifest.from_json(_with(mutate))
    assert ei.value.exit_code == 7


BAD_CONTAINERS = {
    "stats is a list": lambda d: d.update(stats=[]),
    "stats is a string": lambda d: d.update(stats="x"),
    "partition_rows is a list": lambda d: d["stats"].update(partition_rows=[["2023", 1000]]),
}


@pytest.mark.parametrize("mutate", BAD_CONTAINERS.values(), ids=BAD_CONTAINERS.keys())
def test_bad_stats_container_is_corrupt(mutate: Any) -> None:
    with pytest.raises(CorruptData):
        Manifest.from_json(_with(mutate))


@pytest.mark.parametrize("version", [5, 6, 99])
def test_newer_format_version_is_unsupported(version: int) -> None:
    data = _with(lambda d: d.update(format_version=version))
    with pytest.raises(Unsupported) as ei:
        Manifest.from_json(data, where="manifests/c/x.json")
    e = ei.value
    assert e.exit_code == 9
    assert f"format version {version}" in str(e)
    assert "manifests/c/x.json" in str(e)
    assert "upgrade" in str(e)
    assert "1" in e.message  # names what this build reads


def test_unknown_version_checked_before_fields() -> None:
    # a v5 manifest may look entirely different: the version is reported, not a missing field
    data = orjson.dumps({"format": "vecbackup", "format_version": 5, "totally": "different"})
    with pytest.raises(Unsupported):
        Manifest.from_json(data)


@pytest.mark.parametrize("version", [0, -1, None, "1"])
def test_bad_format_version_refused(version: Any) -> None:
    with pytest.raises((Unsupported, CorruptData)):
        Manifest.from_json(_with(lambda d: d.update(format_version=version)))


@pytest.mark.parametrize("version", [True, 1.0])
def test_non_integer_format_version_refused(version: Any) -> None:
    with pytest.raises((Unsupported, CorruptData)):
        Manifest.from_json(_with(lambda d: d.update(format_version=version)))


# --------------------------------------------------------------------------- schema


def test_columns_add_meta_only_with_dynamic_field() -> None:
    static = full_spec(dynamic=False)
    assert static.columns == static.fields
    assert DYNAMIC_COLUMN not in [c.name for c in static.columns]

    dyn = full_spec(dynamic=True)
    assert dyn.columns[: len(dyn.fields)] == dyn.fields
    assert len(dyn.columns) == len(dyn.fields) + 1
    meta = dyn.columns[-1]
    assert meta.name == DYNAMIC_COLUMN == "$meta"
    assert meta.type is T.JSON
    assert meta.nullable
    assert DYNAMIC_COLUMN not in [f.name for f in dyn.fields]  # it never becomes a real field


def test_primary_and_field_lookup() -> None:
    spec = full_spec()
    assert spec.primary.name == "pk"
    assert spec.field("emb").dim == 128
    with pytest.raises(KeyError):
        spec.field("nope")
    with pytest.raises(ValueError, match="no primary key"):
        _ = CollectionSpec("c", (Field("x", T.INT64),)).primary


def test_field_to_dict_omits_defaults() -> None:
    assert Field("x", T.INT64).to_dict() == {"name": "x", "type": "INT64"}
    assert Field("v", T.FLOAT_VECTOR, dim=4).to_dict() == {"name": "v", "type": "FLOAT_VECTOR", "dim": 4}
    d = Field("a", T.ARRAY, element_type=T.INT32, max_capacity=3, nullable=True).to_dict()
    assert d == {"name": "a", "type": "ARRAY", "element_type": "INT32", "max_capacity": 3, "nullable": True}


def test_field_to_dict_keeps_falsy_defaults() -> None:
    # a default of 0 / False / "" is a real default, unlike None
    assert Field("x", T.INT64, default_value=0).to_dict()["default_value"] == 0
    assert Field("b", T.BOOL, default_value=False).to_dict()["default_value"] is False
    assert Field("s", T.VARCHAR, max_length=1, default_value="").to_dict()["default_value"] == ""


def test_field_to_dict_all_set() -> None:
    f = Field(
        "pk",
        T.VARCHAR,
        max_length=8,
        is_primary=True,
        auto_id=True,
        is_partition_key=True,
        is_clustering_key=True,
        nullable=True,
        description="d",
        extra={"k": 1},
        default_value="z",
    )
    assert f.to_dict() == {
        "name": "pk",
        "type": "VARCHAR",
        "max_length": 8,
        "default_value": "z",
        "nullable": True,
        "is_primary": True,
        "auto_id": True,
        "is_partition_key": True,
        "is_clustering_key": True,
        "description": "d",
        "extra": {"k": 1},
    }


def test_field_from_dict_defaults() -> None:
    f = Field.from_dict({"name": "x", "type": "FLOAT"})
    assert f == Field("x", T.FLOAT)
    assert f.extra == {} and f.default_value is None and f.description == ""


def test_collection_from_dict_defaults() -> None:
    spec = CollectionSpec.from_dict({"name": "c", "fields": [{"name": "id", "type": "INT64", "is_primary": True}]})
    assert spec.partitions == ("_default",)
    assert spec.indexes == () and spec.aliases == () and spec.properties == {} and spec.extra == {}
    assert not spec.enable_dynamic_field
    assert spec.consistency_level is None and spec.num_shards is None


def test_field_type_properties() -> None:
    vectors = {t for t in FieldType if t.is_vector}
    assert vectors == {
        T.FLOAT_VECTOR,
        T.FLOAT16_VECTOR,
        T.BFLOAT16_VECTOR,
        T.BINARY_VECTOR,
        T.INT8_VECTOR,
        T.SPARSE_FLOAT_VECTOR,
    }
    assert {t for t in FieldType if t.is_dense_vector} == vectors - {T.SPARSE_FLOAT_VECTOR}
    assert not T.ARRAY.is_vector and not T.JSON.is_dense_vector


# --------------------------------------------------------------------------- hypothesis

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_value = st.recursive(
    json_scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
opt_int = st.none() | st.integers(1, 2**31)


@st.composite
def fields(draw: st.DrawFn) -> Field:
    return Field(
        name=draw(st.text(min_size=1, max_size=20)),
        type=draw(st.sampled_from(FieldType)),
        dim=draw(opt_int),
        element_type=draw(st.none() | st.sampled_from(FieldType)),
        max_length=draw(opt_int),
        max_capacity=draw(opt_int),
        nullable=draw(st.booleans()),
        default_value=draw(json_scalar | st.lists(st.integers(-5, 5), max_size=3)),
        is_primary=draw(st.booleans()),
        auto_id=draw(st.booleans()),
        is_partition_key=draw(st.booleans()),
        is_clustering_key=draw(st.booleans()),
        description=draw(st.text(max_size=20)),
        extra=draw(st.dictionaries(st.text(max_size=8), json_value, max_size=3)),
    )


@given(fields())
@FAST
def test_field_dict_round_trip(f: Field) -> None:
    d = f.to_dict()
    assert Field.from_dict(d) == f
    via_json = orjson.loads(orjson.dumps(d))
    assert Field.from_dict(via_json) == f
    # defaults are never written
    for key in ("nullable", "is_primary", "auto_id", "is_partition_key", "is_clustering_key"):
        assert (key in d) == getattr(f, key)
    assert ("default_value" in d) == (f.default_value is not None)
    assert ("description" in d) == bool(f.description)
    assert ("extra" in d) == bool(f.extra)


@given(
    st.lists(fields(), min_size=1, max_size=5, unique_by=lambda f: f.name),
    st.booleans(),
    st.lists(st.text(min_size=1, max_size=8), max_size=4),
    st.dictionaries(st.text(max_size=8), json_value, max_size=3),
)
@FAST
def test_manifest_round_trip_random_specs(
    fs: list[Field], dynamic: bool, parts: list[str], props: dict[str, Any]
) -> None:
    spec = CollectionSpec(
        name="c",
        fields=tuple(fs),
        enable_dynamic_field=dynamic,
        partitions=tuple(parts),
        properties=props,
        indexes=tuple(Index(f.name, "AUTOINDEX", params=None if i % 2 else {"i": i}) for i, f in enumerate(fs)),
    )
    m = make_manifest(spec)
    assert Manifest.from_json(m.to_json()) == m


# --------------------------------------------------------------------------- version 2: selected rows


def test_select_makes_a_version_2_manifest_that_round_trips() -> None:
    sha = "ef" * 32
    part = DataObject(f"data/ef/{sha}.vbc", "2023", 5, 4000, sha, select=((0, 2), (7, 3)))
    m = make_manifest(objects=(part,), partition_rows={"2023": 5},
                      incremental=Incremental(base="20231231T000000.000000Z-00000000", new_objects=0,
                                              new_bytes=0, reused_rows=5))
    d = orjson.loads(m.to_json())
    assert d["format_version"] == 2
    assert d["objects"][0]["select"] == "0+2,5+3"
    assert d["incremental"] == {"base": "20231231T000000.000000Z-00000000", "new_objects": 0, "new_bytes": 0,
                                "reused_rows": 5}
    back = Manifest.from_json(m.to_json())
    assert back == m and list(back.objects[0].positions()) == [0, 1, 7, 8, 9]
    assert make_manifest().format_version == 1 and Manifest.from_json(make_manifest().to_json()).incremental is None


@pytest.mark.parametrize("select", ["0+2,0+0", "0+0,2+3", "0+4", "", "0+1,", "0-1", "+1", "0+1 ,1+1", [[0, 3]],
                                    "0+1,1+2,x", "0+99999999999999999999", "9223372036854775807+1,1+2"])
def test_bad_select_is_corrupt(select: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["format_version"] = 2
        d["objects"][0]["select"] = select
        d["objects"][0]["rows"] = 3
    with pytest.raises(CorruptData):
        Manifest.from_json(_with(edit))


def test_the_manifests_partition_must_be_the_chunk_headers() -> None:
    """docs/FORMAT.md: an object's ``partition`` always equals its chunk header's; verify --read-data refuses a
    difference (exit 7)."""
    from vecbackup.ops.verify import check_chunk

    spec = CollectionSpec("c", (Field("id", FieldType.INT64, is_primary=True),))
    data = encode_chunk(list(spec.fields), Chunk("2024", 2, {"id": Column(np.array([1, 2], dtype=np.int64))}))
    sha = hashlib.sha256(data).hexdigest()
    same = DataObject(f"data/{sha[:2]}/{sha}.vbc", "2024", 2, len(data), sha)
    m = make_manifest(spec, objects=(same,), partition_rows={"2024": 2})
    assert check_chunk(m, same, data).partition == "2024"
    with pytest.raises(CorruptData, match="belongs to partition '2024', the manifest says '2023'") as e:
        check_chunk(m, dataclasses.replace(same, partition="2023"), data)
    assert e.value.exit_code == 7


def test_select_63_bits_bound_the_end_of_the_last_range() -> None:
    """docs/FORMAT.md: every start, every take and the end of the last range (one past its last row) are at most
    2**63 - 1: a range whose last row is 2**63 - 1 is refused, one ending just before it is not."""
    top = 2**63 - 1
    assert parse_select(f"{top - 1}+1") == ((top - 1, 1),)  # last row 2**63 - 2, end 2**63 - 1
    assert parse_select(f"0+{top}") == ((0, top),)
    for text in (f"{top}+1", f"0+{top - 1},1+1", f"1+{top}"):  # end 2**63
        with pytest.raises(ValueError, match="2\\*\\*63"):
            parse_select(text)


def test_select_text_round_trip() -> None:
    for ranges in [((0, 1),), ((0, 57), (58, 4)), ((5, 2), (9, 1), (4999, 1)), ((2**40, 3),)]:
        assert parse_select(format_select(ranges)) == ranges
    assert format_select(((0, 57), (58, 4))) == "0+57,1+4"


@given(st.lists(st.integers(0, 300), unique=True, max_size=60))
def test_select_positions_are_the_positions_ranges_of_was_given(picked: list[int]) -> None:
    at = sorted(picked)
    held = select_positions(ranges_of(at), len(at))
    assert held.dtype == np.int64 and held.tolist() == at
    assert select_positions(None, 4).tolist() == [0, 1, 2, 3]
    sha = "ab" * 32
    obj = DataObject(f"data/ab/{sha}.vbc", "p", len(at), 10, sha, select=ranges_of(at) if at else None)
    assert obj.positions().tolist() == (at if at else [])


def test_ranges_and_merging_parts_of_one_object() -> None:
    assert ranges_of([0, 1, 2, 5, 7, 8]) == ((0, 3), (5, 1), (7, 2))
    assert ranges_of([]) == ()
    with pytest.raises(ValueError):
        ranges_of([3, 1])
    sha = "ab" * 32
    key = f"data/ab/{sha}.vbc"
    a = DataObject(key, "p", 2, 10, sha, select=((0, 2),))
    b = DataObject(key, "p", 2, 10, sha, select=((4, 2),))
    other = DataObject(f"data/cd/{'cd' * 32}.vbc", "p", 3, 5, "cd" * 32)
    merged = merge_objects([a, other, b])
    assert merged == (DataObject(key, "p", 4, 10, sha, select=((0, 2), (4, 2))), other)
    overlapping = DataObject(key, "p", 1, 10, sha, select=((1, 1),))
    assert merge_objects([a, overlapping]) == (a, overlapping)  # never joins rows twice into one
    whole = DataObject(key, "p", 9, 10, sha)
    assert merge_objects([whole, a]) == (whole, a)


def test_merging_works_on_ranges_whatever_count_a_record_claims() -> None:
    sha = "ab" * 32
    key = f"data/ab/{sha}.vbc"
    huge = DataObject(key, "p", 2**62, 10, sha, select=((0, 2**62),))
    other = DataObject(key, "p", 3, 10, sha, select=((2**62, 3),))
    joined = merge_objects([huge, other])  # returns at once: never lists the rows
    assert joined == (DataObject(key, "p", 2**62 + 3, 10, sha, select=((0, 2**62 + 3),)),)
    assert merge_objects([huge, huge]) == (huge, huge)  # overlapping: kept apart, never joined


# --------------------------------------------------------------------------- version 3: new column types


def v3_fields() -> tuple[Field, ...]:
    return (
        Field("where", T.GEOMETRY, nullable=True, default_value="POINT (0 0)"),
        Field("at", T.TIMESTAMPTZ, nullable=True, default_value=1735660800000000),
        Field("clips", T.ARRAY, element_type=T.STRUCT, max_capacity=4, struct_fields=(
            Field("text", T.VARCHAR, max_length=64), Field("emb", T.FLOAT_VECTOR, dim=4))),
    )


@pytest.mark.parametrize("extra", [v3_fields()[:1], v3_fields()[1:2], v3_fields()[2:]],
                         ids=["GEOMETRY", "TIMESTAMPTZ", "ARRAY<STRUCT>"])
def test_a_version_3_type_makes_a_version_3_manifest_that_round_trips(extra: tuple[Field, ...]) -> None:
    """A manifest is written as the lowest version that holds it: a GEOMETRY, TIMESTAMPTZ or struct array column makes
    it version 3, which vecbackup 0.3 refuses as a newer format (exit 9) instead of as a damaged manifest."""
    base = full_spec()
    spec = CollectionSpec(name=base.name, fields=(*base.fields, *extra), partitions=base.partitions)
    m = make_manifest(spec)
    d = orjson.loads(m.to_json())
    assert d["format_version"] == 3
    back = Manifest.from_json(m.to_json())
    assert back == m and back.collection.fields[-len(extra):] == extra
    old = dict(d, format_version=5)  # a reader refuses a version it does not know, whatever else it holds
    with pytest.raises(Unsupported, match="format version 5"):
        Manifest.from_dict(old)


def test_version_3_field_records() -> None:
    d = CollectionSpec(name="c", fields=(Field("pk", T.INT64, is_primary=True), *v3_fields())).to_dict()
    assert d["fields"][1:] == [
        {"name": "where", "type": "GEOMETRY", "default_value": "POINT (0 0)", "nullable": True},
        {"name": "at", "type": "TIMESTAMPTZ", "default_value": 1735660800000000, "nullable": True},
        {"name": "clips", "type": "ARRAY", "max_capacity": 4, "element_type": "STRUCT",
         "struct_fields": [{"name": "text", "type": "VARCHAR", "max_length": 64},
                           {"name": "emb", "type": "FLOAT_VECTOR", "dim": 4}]},
    ]
