"""The pure parts of carrying a collection's settings (docs/COMPATIBILITY.md, "Schema features"): what each Milvus
target keeps (engines/milvus/features.py), the collection-level settings a backup records, the field parameters
pymilvus would leave out of a schema, a refused property named, --collection-params properties.KEY, and what a
Milvus -> Qdrant plan says of the settings Qdrant has no place for."""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.client.prepare import Prepare

from vecbackup.engines.milvus import features
from vecbackup.engines.milvus.features import LITE, dropped, index_note, index_problem, target_kind, unused
from vecbackup.engines.milvus.sink import _create_refused, _keep_params, is_built
from vecbackup.engines.milvus.source import schema_settings
from vecbackup.errors import TargetRejected, Unsupported, UsageError
from vecbackup.ops.mapping import plan_mapping
from vecbackup.ops.restore import apply_overrides
from vecbackup.schema import CollectionSpec, Field, FieldType, Index
from vecbackup.words import cli_words

F = FieldType
ANALYZER = {"enable_analyzer": "true", "enable_match": "true", "analyzer_params": '{"type":"english"}'}


def server_spec(**kw: Any) -> CollectionSpec:
    """A collection as a 2.5+ server would report it, with every setting a target may drop or not use."""
    fields = (
        Field("id", F.INT64, is_primary=True, description="article id"),
        Field("v", F.FLOAT_VECTOR, dim=4, extra={"mmap_enabled": True}),
        Field("text", F.VARCHAR, max_length=64, extra=dict(ANALYZER)),
        Field("lang", F.VARCHAR, max_length=8, extra={"warmup": "sync"}),
        Field("text2", F.VARCHAR, max_length=64,
              extra={"enable_analyzer": "true", "multi_analyzer_params": '{"by_field":"lang"}'}),
        Field("n", F.INT64, is_clustering_key=True, extra={"future.setting": "on"}),
        Field("tag", F.VARCHAR, max_length=8, is_partition_key=True),
    )
    indexes = (Index("lang", "Trie", "lang_trie", None, {}), Index("n", "STL_SORT", "n", None, {}),
               Index("v", "HNSW", "v_hnsw", "L2", {"M": 8, "efConstruction": 32, "mmap.enabled": "true"}))
    defaults: dict[str, Any] = dict(
        name="c", fields=fields, description="articles", consistency_level="Bounded", num_shards=2,
        indexes=indexes, extra={"num_partitions": 8, "enable_namespace": True},
        properties={"collection.ttl.seconds": "60", "partitionkey.isolation": "true", "mmap.enabled": "true"})
    defaults.update(kw)
    return CollectionSpec(**defaults)


def test_target_kind() -> None:
    assert target_kind("v2.3.5-lite", False) == "2.3" and target_kind("2.3.21", False) == "2.3"
    assert target_kind("v2.5.4", False) is None and target_kind("v2.30.0", False) is None
    assert target_kind("3.2.2", True) == LITE


def test_lite_drops_are_listed_in_one_note() -> None:
    assert dropped(server_spec(), LITE) == (
        "Milvus Lite does not keep the collection description; consistency level Bounded (Lite is always Strong); "
        "2 shards (Lite has 1); num_partitions 8 (Lite makes 16); namespaces (enable_namespace); field "
        "descriptions (id); the clustering key (n); field 'v': mmap_enabled; field 'lang': warmup; field 'text2': "
        "multi_analyzer_params; field 'n': future.setting; index names (lang_trie, v_hnsw; Lite names an index "
        "after its field); index parameters (v_hnsw: M, efConstruction, mmap.enabled) (it accepts them and reports "
        "them no more): the restored copy is without them")


def test_what_lite_keeps_gives_no_note() -> None:
    kept = server_spec(description="", consistency_level="Strong", num_shards=1, extra={"num_partitions": None},
                       fields=(Field("id", F.INT64, is_primary=True), Field("text", F.VARCHAR, extra=dict(ANALYZER))),
                       indexes=(Index("text", "INVERTED", "text", None, None),))
    assert dropped(kept, LITE) is None
    assert dropped(server_spec(consistency_level=None, num_shards=None), LITE) is not None


def test_a_23_server_drops_namespaces_and_clustering_keys_and_stores_the_rest_unused() -> None:
    spec = server_spec()
    assert dropped(spec, "2.3") == ("Milvus 2.3 does not keep namespaces (enable_namespace); the clustering key (n) "
                                    "(it has none): the restored copy is without them")
    assert unused(spec, "2.3", "v2.3.5-lite") == (
        "Milvus 2.3.5-lite stores these settings without using them (they came in later releases): field 'v': "
        "mmap_enabled; field 'text': enable_analyzer, enable_match, analyzer_params; field 'lang': warmup; field "
        "'text2': enable_analyzer, multi_analyzer_params; properties partitionkey.isolation, mmap.enabled; index "
        "'v_hnsw': mmap.enabled; a later restore from a backup of this copy carries them on")
    assert unused(spec, LITE, "3.2.2") is None and unused(spec, None, "v2.5.4") is None
    assert dropped(spec, None) is None  # a 2.4+ server: nothing predicted
    plain = server_spec(fields=(Field("id", F.INT64, is_primary=True),), indexes=(), properties={}, extra={})
    assert dropped(plain, "2.3") is None and unused(plain, "2.3", "v2.3.5") is None


@pytest.mark.parametrize(("kind", "ftype", "index_type", "problem", "fallback"), [
    (LITE, F.INT64, "INVERTED", None, "INVERTED"),
    (LITE, F.INT64, "STL_SORT", "it builds INVERTED only on scalar fields", "INVERTED"),
    (LITE, F.VARCHAR, "Trie", "it builds INVERTED only on scalar fields", "INVERTED"),
    (LITE, F.BOOL, "BITMAP", "it builds INVERTED only on scalar fields", "INVERTED"),
    (LITE, F.JSON, "INVERTED", "it has no scalar index on a JSON field", None),
    (LITE, F.ARRAY, "INVERTED", "it has no scalar index on a ARRAY<INT64> field", None),
    ("2.3", F.DOUBLE, "STL_SORT", None, "STL_SORT"),
    ("2.3", F.INT8, "INVERTED", "it builds STL_SORT only on numbers", "STL_SORT"),
    ("2.3", F.VARCHAR, "trie", None, "Trie"),
    ("2.3", F.VARCHAR, "INVERTED", "it builds Trie only on VARCHAR", "Trie"),
    ("2.3", F.BOOL, "INVERTED", "it has no index on a BOOL field", None),
    ("2.3", F.JSON, "INVERTED", "it has no index on a JSON field", None),
    (None, F.JSON, "INVERTED", None, None),
])
def test_scalar_index_types_a_target_cannot_build(kind: str | None, ftype: FieldType, index_type: str,
                                                  problem: str | None, fallback: str | None) -> None:
    field = Field("f", ftype, element_type=F.INT64 if ftype is F.ARRAY else None)
    index = Index("f", index_type, "f", None, {"json_path": "f['a']", "json_cast_type": "varchar"})
    assert index_problem(kind, field, index) == problem
    if kind is not None:
        assert features.fallback_index(kind, field) == fallback
    assert index_problem(kind, Field("v", F.FLOAT_VECTOR, dim=4), Index("v", "DISKANN")) is None  # not predicted


def test_index_notes() -> None:
    field, index = Field("n", F.INT64), Index("n", "INVERTED", "n")
    with cli_words():
        assert index_note("2.3", "v2.3.5", field, index, "it builds STL_SORT only on numbers") == (
            "index on 'n': Milvus 2.3.5 cannot build INVERTED on INT64 fields (it builds STL_SORT only on numbers); "
            "--index-fallback builds STL_SORT instead")
        assert index_note(LITE, "3.2.2", Field("j", F.JSON), Index("j", "INVERTED"), "p").endswith(
            "--index-fallback leaves it unindexed")
    # the API's plan() names its own parameter
    assert index_note(LITE, "3.2.2", Field("j", F.JSON), Index("j", "INVERTED"), "p").endswith(
        "index_fallback=True leaves it unindexed")


def test_collection_level_settings_recorded_and_external_collections_refused() -> None:
    assert schema_settings("c", {"enable_namespace": False, "external_source": ""}) == {}
    assert schema_settings("c", {"enable_namespace": True}) == {"enable_namespace": True}
    with pytest.raises(Unsupported) as e:
        schema_settings("c", {"external_source": "s3://bucket/secret-path", "external_spec": "{...}"})
    assert "collection 'c' is an external collection" in str(e.value) and "secret" not in str(e.value)
    assert e.value.exit_code == 9


def _sent_type_params(built: Any) -> dict[str, dict[str, str]]:
    """The type params of each field in the CreateCollection request pymilvus builds from ``built``."""
    request = Prepare.create_collection_request("c", built)
    from pymilvus.grpc_gen import schema_pb2

    schema = schema_pb2.CollectionSchema()
    schema.ParseFromString(request.schema)
    return {f.name: {kv.key: kv.value for kv in f.type_params} for f in schema.fields}


def test_field_params_pymilvus_does_not_know_are_sent_as_recorded() -> None:
    recorded = (Field("id", F.INT64, is_primary=True),
                Field("n", F.INT64, extra={"mmap_enabled": False, "future.setting": "on", "level": 3}),
                Field("t", F.VARCHAR, max_length=8, extra={**ANALYZER, "warmup": "sync", "future.flag": True}))
    built = MilvusClient.create_schema()
    built.add_field("id", DataType.INT64, is_primary=True)
    for f in recorded[1:]:
        built.add_field(f.name, getattr(DataType, f.type.value), **({"max_length": 8} if f.max_length else {}),
                        **f.extra)
    before = _sent_type_params(built)
    assert "future.setting" not in before["n"] and "future.flag" not in before["t"]  # pymilvus leaves them out
    for pm_field, f in zip(built.fields[1:], recorded[1:], strict=True):
        _keep_params(pm_field, f)
    sent = _sent_type_params(built)
    assert sent["n"] == {"mmap.enabled": "false", "future.setting": "on", "level": "3"}
    assert sent["t"] == {"max_length": "8", "enable_analyzer": "true", "enable_match": "true",
                         "analyzer_params": '{"type":"english"}', "warmup": "sync", "future.flag": "true"}


def test_a_refused_property_is_named_with_the_option_that_leaves_it_out() -> None:
    spec = server_spec(properties={"collection.ttl.seconds": "-5", "k": "v"})
    err = _create_refused(spec, "milvus://dr:19530", "invalid ttl value collection.ttl.seconds: -5")
    assert isinstance(err, TargetRejected) and err.exit_code == 10
    assert err.message == ("Milvus at milvus://dr:19530 refused collection property 'collection.ttl.seconds': "
                           "invalid ttl value collection.ttl.seconds: -5")
    assert err.hint == ("collection_params={'properties.collection.ttl.seconds': None} leaves it out, "
                        "{'properties.collection.ttl.seconds': VALUE} sets another value")
    with cli_words():
        err = _create_refused(spec, "milvus://dr:19530", "invalid ttl value collection.ttl.seconds: -5")
    assert err.hint == ("--collection-params properties.collection.ttl.seconds= leaves it out, "
                        "properties.collection.ttl.seconds=VALUE sets another value")
    # a short key is named only when quoted: "k" is in many a message
    assert "property" not in _create_refused(spec, "m", "field kind unknown").message
    assert "property 'k'" in _create_refused(spec, "m", "bad property 'k'").message


def test_collection_properties_set_and_left_out_by_option() -> None:
    spec = server_spec()
    out, notes = apply_overrides(spec, {}, {"properties.collection.ttl.seconds": 3600,
                                            "properties.partitionkey.isolation": "",
                                            "properties.team": "ml", "properties.mmap.enabled": False,
                                            "consistency_level": "strong"})
    assert out.properties == {"collection.ttl.seconds": "3600", "mmap.enabled": "false", "team": "ml"}
    assert spec.properties["partitionkey.isolation"] == "true"  # the backup's spec is not changed
    assert notes == ["collection property 'collection.ttl.seconds' '60' -> '3600' (--collection-params)",
                     "collection property 'partitionkey.isolation' 'true' -> left out (--collection-params)",
                     "collection property 'team' (none) -> 'ml' (--collection-params)",
                     "collection property 'mmap.enabled' 'true' -> 'false' (--collection-params)",
                     "collection consistency_level 'Bounded' -> 'Strong' (--collection-params)"]
    with pytest.raises(UsageError, match=r"\['properties\.nosuch'\] = None leaves out a property the backup does not"):
        apply_overrides(spec, {}, {"properties.nosuch": ""})
    with cli_words(), pytest.raises(UsageError, match=r"properties\.nosuch= leaves out a property the backup does not"):
        apply_overrides(spec, {}, {"properties.nosuch": ""})
    for key in ("properties.", "properties.vecbackup.lease"):
        with pytest.raises(UsageError, match="not a property a restore can set"):
            apply_overrides(spec, {}, {key: "x"})
    with pytest.raises(UsageError, match=r"known: description, consistency_level, num_partitions, properties\.KEY"):
        apply_overrides(spec, {}, {"ttl": 5})


def test_milvus_settings_qdrant_has_no_place_for_are_noted() -> None:
    mp = plan_mapping(server_spec(), "milvus", "qdrant")
    note = next(n for n in mp.notes if n.startswith("Milvus settings Qdrant has no place for"))
    assert note == (
        "Milvus settings Qdrant has no place for are not kept: consistency level Bounded; 2 shards (--shards sets "
        "Qdrant's shard_number); num_partitions 8; namespaces (enable_namespace); field descriptions (id); field "
        "'v': mmap_enabled; field 'text': enable_analyzer, enable_match, analyzer_params; field 'lang': warmup; "
        "field 'text2': enable_analyzer, multi_analyzer_params; field 'n': future.setting; index names (lang_trie, "
        "v_hnsw)")
    bare = server_spec(fields=(Field("id", F.INT64, is_primary=True), Field("v", F.FLOAT_VECTOR, dim=4)),
                       indexes=(Index("v", "HNSW", "v", "L2", {}),), consistency_level=None, num_shards=None,
                       extra={})
    assert not [n for n in plan_mapping(bare, "milvus-lite", "qdrant").notes if "no place for" in n]


def test_an_index_counts_as_built_by_name_where_its_field_has_several() -> None:
    """A sharded restore's re-run builds the indexes a stopped commit did not: JSON path indexes (several on one
    field) by name, any other by field (Milvus Lite names an index after its field, whatever the backup says)."""
    j1, j2 = (Index("j", "INVERTED", name, None, {"json_path": f"j['{k}']", "json_cast_type": "varchar"})
              for name, k in (("j_a", "a"), ("j_b", "b")))
    spec = server_spec(fields=(Field("id", F.INT64, is_primary=True), Field("j", F.JSON),
                               Field("v", F.FLOAT_VECTOR, dim=4)),
                       indexes=(j1, j2, Index("v", "HNSW", "v_hnsw", "L2", {})))
    built = {("j", "j_a"), ("v", "v")}
    assert [is_built(spec, i, built) for i in spec.indexes] == [True, False, True]
    assert not any(is_built(spec, i, set()) for i in spec.indexes)
