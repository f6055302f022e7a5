"""The Qdrant boundary without a server: URL parsing, the collection config <-> CollectionSpec translation,
the calls that recreate a collection, points <-> columns, and error translation.

The config tests read get_collection answers of a Qdrant server (tests/qdrant_fixtures/, see its README),
parse them with qdrant-client's own CollectionInfo model, and check that nothing is lost on the way into
the spec and back out into create_collection / update_collection / create_shard_key / create_payload_index.
"""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models as m
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from vecbackup.engines.qdrant.connection import translate_error
from vecbackup.engines.qdrant.model import (
    check_spec,
    chunk_to_points,
    create_calls,
    records_to_chunk,
    shard_keys_from_cluster_info,
    spec_from_collection_info,
    str_to_point_id,
    upsert_batches,
)
from vecbackup.errors import AlreadyExists, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.format.codec import decode_chunk, encode_chunk
from vecbackup.format.manifest import Manifest, SourceInfo
from vecbackup.format.qdrant import ID_FIELD
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType
from vecbackup.urls import QdrantURL, is_qdrant_url, parse_qdrant_url
from vecbackup.words import cli_words

FIXTURES = Path(__file__).parents[1] / "qdrant_fixtures"
NOENV: dict[str, str] = {}


def load(name: str) -> dict[str, Any]:
    """The ``result`` of a recorded REST answer."""
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())["result"]


def drop_none(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [drop_none(x) for x in v]
    return v


def contains(big: Any, small: Any) -> bool:
    """Every key and value of ``small`` is in ``big`` (models may add defaults the server did not send)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    return bool(big == small)


def dump(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: dump(x) for k, x in v.items()}
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", exclude_none=True)
    if hasattr(v, "value"):  # an enum
        return v.value
    return v


def via_manifest(spec: CollectionSpec) -> CollectionSpec:
    """The spec as a restore sees it: written into a manifest's JSON and read back."""
    man = Manifest(backup_id="b", collection=spec, source=SourceInfo("qdrant", "1.15.4", "qdrant://h:6333"),
                   objects=(), partition_rows={}, started_at="s", completed_at="c", tool_version="t")
    return Manifest.from_json(man.to_json()).collection


@pytest.fixture
def named() -> tuple[m.CollectionInfo, dict[str, Any]]:
    raw = load("cluster_named_vectors")
    return m.CollectionInfo.model_validate(raw), raw


@pytest.fixture
def sharded() -> tuple[m.CollectionInfo, dict[str, Any], list[dict[str, Any]]]:
    raw = load("custom_sharding")
    keys = shard_keys_from_cluster_info(m.CollectionClusterInfo.model_validate(load("custom_sharding_cluster")))
    return m.CollectionInfo.model_validate(raw), raw, keys


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("url", "display", "host", "port", "grpc_port", "https", "grpc"), [
    ("qdrant://db.example.com", "qdrant://db.example.com:6333", "db.example.com", 6333, 6334, False, False),
    ("qdrant://h:7000", "qdrant://h:7000", "h", 7000, 6334, False, False),
    ("qdrant+http://h", "qdrant+http://h:6333", "h", 6333, 6334, False, False),
    ("QDRANT+HTTPS://h:443", "qdrant+https://h:443", "h", 443, 6334, True, False),
    ("qdrant+grpc://h", "qdrant+grpc://h:6334", "h", 6333, 6334, False, True),
    ("qdrant+grpc://h:7334?rest_port=7333", "qdrant+grpc://h:7334", "h", 7333, 7334, False, True),
    ("qdrant+grpcs://h:443", "qdrant+grpcs://h:443", "h", 6333, 443, True, True),
    ("qdrant://[::1]:6333", "qdrant://[::1]:6333", "[::1]", 6333, 6334, False, False),
])
def test_server_urls(url: str, display: str, host: str, port: int, grpc_port: int, https: bool, grpc: bool) -> None:
    u = parse_qdrant_url(url, environ=NOENV)
    assert (u.display, u.host, u.port, u.grpc_port, u.https, u.prefer_grpc) == (display, host, port, grpc_port,
                                                                                  https, grpc)
    assert not u.local and u.api_key == "" and u.engine == "qdrant"
    assert is_qdrant_url(url)


def test_prefix_and_timeout() -> None:
    u = parse_qdrant_url("qdrant+https://proxy.example.com:443/qdrant/?timeout=90", environ=NOENV)
    assert u.prefix == "qdrant" and u.timeout == 90.0
    assert u.display == "qdrant+https://proxy.example.com:443/qdrant"


def test_local_url() -> None:
    u = parse_qdrant_url("qdrant-local:///var/lib/q%20data", environ=NOENV)
    assert u.local and u.path == "/var/lib/q data" and u.display == "qdrant-local:///var/lib/q data"
    assert is_qdrant_url("qdrant-local:///x") and not is_qdrant_url("milvus-lite:///x.db")
    assert not is_qdrant_url("/plain/path")


def test_api_key_sources_and_hygiene() -> None:
    secret = "qd-SECRET-key-123"
    assert parse_qdrant_url("qdrant://h", api_key=secret, environ=NOENV).api_key == secret
    assert parse_qdrant_url("qdrant://h", environ={"QDRANT_API_KEY": secret}).api_key == secret
    env = {"VECBACKUP_QDRANT_API_KEY": secret, "QDRANT_API_KEY": "other"}
    u = parse_qdrant_url("qdrant://h", environ=env)
    assert u.api_key == secret
    assert parse_qdrant_url("qdrant://h", api_key="flag", environ=env).api_key == "flag"
    assert secret not in repr(u) and secret not in u.display
    assert isinstance(u, QdrantURL)


@pytest.mark.parametrize(("url", "needle"), [
    ("qdrant://", "no host"),
    ("qdrant://h:abc", "port"),
    ("qdrant-local://", "no folder path"),
    ("qdrant://h?foo=1", "unknown Qdrant URL parameter"),
    ("qdrant://h?rest_port=1", "rest_port only applies"),
    ("qdrant+grpc://h?rest_port=x", "must be numbers"),
    ("qdrant+grpc://h?rest_port=70000", "out of range"),
    ("qdrants://h", "unsupported Qdrant URL scheme"),
])
def test_bad_urls(url: str, needle: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_qdrant_url(url, environ=NOENV)
    assert needle in str(ei.value)


def test_credentials_in_url_refused_and_redacted() -> None:
    with pytest.raises(UsageError) as ei:
        parse_qdrant_url("qdrant://key:SUPERSECRET@h:6333", environ=NOENV)
    assert "SUPERSECRET" not in str(ei.value) and "VECBACKUP_QDRANT_API_KEY" in str(ei.value)


# --------------------------------------------------------------------------- config -> spec


def test_describe_keeps_the_whole_config(named: tuple[m.CollectionInfo, dict[str, Any]]) -> None:
    info, raw = named
    spec = spec_from_collection_info("articles", info, aliases=["b_alias", "a_alias"]).spec
    # verbatim, and nothing the server sent was lost by the client model on the way
    assert spec.extra["qdrant"] == info.config.model_dump(mode="json", exclude_none=True)
    assert spec.extra["qdrant"] == drop_none(raw["config"])
    assert "qdrant_shard_keys" not in spec.extra
    assert spec.name == "articles" and spec.enable_dynamic_field and spec.num_shards == 3
    assert spec.partitions == () and spec.aliases == ("a_alias", "b_alias")
    assert [c.name for c in spec.columns][-1] == DYNAMIC_COLUMN


def test_describe_fields(named: tuple[m.CollectionInfo, dict[str, Any]]) -> None:
    spec = spec_from_collection_info("articles", named[0]).spec
    f = {x.name: x for x in spec.fields}
    assert list(f) == ["id", "text", "image", "colbert", "code", "geo", "bm25", "splade"]
    assert f["id"] == Field("id", FieldType.VARCHAR, max_length=36, is_primary=True)
    assert spec.primary.name == ID_FIELD
    for name, dim in [("text", 768), ("image", 512), ("code", 16), ("geo", 8)]:
        assert (f[name].type, f[name].dim, f[name].nullable, f[name].extra) == (
            FieldType.FLOAT_VECTOR, dim, True, {"qdrant_name": name})
    assert (f["colbert"].type, f["colbert"].element_type, f["colbert"].dim) == (FieldType.ARRAY, FieldType.FLOAT, 128)
    assert f["colbert"].extra == {"qdrant_name": "colbert", "multivector": {"comparator": "max_sim"}}
    for name in ("bm25", "splade"):
        assert f[name].type is FieldType.SPARSE_FLOAT_VECTOR and f[name].extra == {"qdrant_name": name}


def test_describe_indexes(named: tuple[m.CollectionInfo, dict[str, Any]]) -> None:
    info, raw = named
    spec = spec_from_collection_info("articles", info).spec
    idx = {i.field_name: i for i in spec.indexes}
    base = {"M": 16, "efConstruction": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0,
            "on_disk": False, "payload_m": 16}
    assert (idx["text"].index_type, idx["text"].metric_type) == ("HNSW", "COSINE")
    assert idx["text"].params == {**base, "M": 32, "efConstruction": 256}  # per-vector hnsw over the collection's
    assert (idx["image"].metric_type, idx["image"].params) == ("IP", {**base, "M": 24, "on_disk": True})
    assert (idx["colbert"].index_type, idx["colbert"].params) == ("FLAT", {**base, "M": 0})  # m = 0: no graph
    assert (idx["code"].metric_type, idx["geo"].metric_type) == ("L2", "MANHATTAN")
    assert idx["code"].params == base
    assert (idx["bm25"].index_type, idx["bm25"].metric_type) == ("SPARSE_INVERTED_INDEX", "IP")
    assert idx["bm25"].params == {"full_scan_threshold": 5000, "on_disk": False, "datatype": "float16"}
    payload = {k: v for k, v in idx.items() if v.index_type.startswith("PAYLOAD_")}
    assert set(payload) == set(raw["payload_schema"])
    for key, pi in raw["payload_schema"].items():
        assert payload[key].index_type == "PAYLOAD_" + pi["data_type"].upper()
        assert payload[key].metric_type is None
        assert payload[key].params == pi.get("params", {})
    assert payload["tenant_id"].params == {"type": "keyword", "is_tenant": True, "on_disk": True}
    assert payload["body"].params["tokenizer"] == "multilingual"  # type: ignore[index]


def test_custom_sharding_shard_keys(sharded: Any) -> None:
    info, raw, keys = sharded
    assert keys == [{"key": "eu", "shards_number": 2}, {"key": "us", "shards_number": 2},
                    {"key": 7, "shards_number": 1}]
    spec = spec_from_collection_info("tenants", info, shard_keys=keys).spec
    assert spec.partitions == ("eu", "us", "7")
    assert spec.extra["qdrant_shard_keys"] == keys
    assert spec.extra["qdrant"] == info.config.model_dump(mode="json", exclude_none=True)
    assert contains(spec.extra["qdrant"], drop_none(raw["config"]))  # (the client model adds wal_retain_closed)
    vec = spec.field("vector")
    assert (vec.type, vec.dim, vec.extra) == (FieldType.FLOAT_VECTOR, 384, {"qdrant_name": ""})
    assert spec.field("text").type is FieldType.SPARSE_FLOAT_VECTOR
    assert {i.field_name: i.index_type for i in spec.indexes} == {
        "vector": "FLAT", "text": "SPARSE_INVERTED_INDEX", "group_id": "PAYLOAD_KEYWORD"}
    with pytest.raises(Unsupported, match="shard keys could not be listed"):
        spec_from_collection_info("tenants", info)
    with pytest.raises(Unsupported, match="differ only in type"):
        spec_from_collection_info("tenants", info, shard_keys=[{"key": 5}, {"key": "5"}])


def test_vector_names_that_clash_with_columns() -> None:
    info = {"config": {"params": {"vectors": {"id": {"size": 2, "distance": "Dot"},
                                              "$meta": {"size": 2, "distance": "Dot"},
                                              "id_1": {"size": 2, "distance": "Dot"}},
                                  "sparse_vectors": {"vector": {}}}}}
    spec = spec_from_collection_info("x", info).spec
    assert [(f.name, f.extra.get("qdrant_name")) for f in spec.fields] == [
        ("id", None), ("id_2", "id"), ("$meta_1", "$meta"), ("id_1", "id_1"), ("vector", "vector")]


# --------------------------------------------------------------------------- spec -> create calls


def test_create_calls_pass_every_setting(named: tuple[m.CollectionInfo, dict[str, Any]]) -> None:
    info, raw = named
    spec = via_manifest(spec_from_collection_info("articles", info).spec)
    calls = create_calls(spec, "restored")
    kw = calls.create_collection
    accepted = inspect.signature(QdrantClient.create_collection).parameters
    assert set(kw) <= set(accepted)
    assert set(kw) == {"collection_name", "vectors_config", "sparse_vectors_config", "shard_number",
                       "replication_factor", "write_consistency_factor", "on_disk_payload", "hnsw_config",
                       "optimizers_config", "wal_config", "quantization_config", "strict_mode_config", "metadata"}
    assert kw["collection_name"] == "restored"
    assert isinstance(kw["vectors_config"]["image"], m.VectorParams)
    assert isinstance(kw["quantization_config"], m.ScalarQuantization)
    assert isinstance(kw["optimizers_config"], m.OptimizersConfigDiff)
    # every recorded setting lands in exactly one call: rebuild the config from the calls
    upd = calls.update_collection
    assert upd is not None and set(upd) == {"collection_name", "collection_params"}
    assert set(upd) <= set(inspect.signature(QdrantClient.update_collection).parameters)
    params = {k: dump(kw[k]) for k in ("shard_number", "replication_factor", "write_consistency_factor",
                                       "on_disk_payload")}
    params |= {"vectors": dump(kw["vectors_config"]), "sparse_vectors": dump(kw["sparse_vectors_config"]),
               **dump(upd["collection_params"])}
    rebuilt = {"params": params, "hnsw_config": dump(kw["hnsw_config"]),
               "optimizer_config": dump(kw["optimizers_config"]), "wal_config": dump(kw["wal_config"]),
               "quantization_config": dump(kw["quantization_config"]),
               "strict_mode_config": dump(kw["strict_mode_config"]), "metadata": kw["metadata"]}
    assert rebuilt == drop_none(raw["config"])
    assert params["vectors"]["image"]["datatype"] == "float16"
    assert params["vectors"]["image"]["quantization_config"]["binary"]["encoding"] == "two_bits"
    assert params["vectors"]["text"]["quantization_config"] == {"product": {"compression": "x16", "always_ram": True}}
    assert params["sparse_vectors"]["bm25"]["modifier"] == "idf"
    assert calls.shard_keys == [] and calls.notes == []


def test_create_calls_payload_indexes(named: tuple[m.CollectionInfo, dict[str, Any]]) -> None:
    info, raw = named
    calls = create_calls(via_manifest(spec_from_collection_info("articles", info).spec), "restored")
    accepted = set(inspect.signature(QdrantClient.create_payload_index).parameters)
    by_key = {c["field_name"]: c for c in calls.payload_indexes}
    assert set(by_key) == set(raw["payload_schema"])
    for key, pi in raw["payload_schema"].items():
        c = by_key[key]
        assert set(c) <= accepted and c["collection_name"] == "restored" and c["wait"] is True
        if "params" in pi:
            assert c["field_schema"].model_dump(mode="json", exclude_none=True) == pi["params"]
        else:
            assert c["field_schema"] == m.PayloadSchemaType(pi["data_type"])
    assert isinstance(by_key["tenant_id"]["field_schema"], m.KeywordIndexParams)
    assert by_key["tenant_id"]["field_schema"].is_tenant is True
    text = by_key["body"]["field_schema"]
    assert isinstance(text, m.TextIndexParams) and text.tokenizer == m.TokenizerType.MULTILINGUAL
    assert (text.min_token_len, text.max_token_len, text.phrase_matching) == (2, 32, True)


def test_create_calls_custom_sharding(sharded: Any) -> None:
    info, raw, keys = sharded
    calls = create_calls(via_manifest(spec_from_collection_info("t", info, shard_keys=keys).spec), "t2")
    kw = calls.create_collection
    assert kw["sharding_method"] == m.ShardingMethod.CUSTOM and kw["shard_number"] == 2
    assert dump(kw["vectors_config"]) == raw["config"]["params"]["vectors"]  # the unnamed vector stays unnamed
    assert isinstance(kw["vectors_config"], m.VectorParams)
    assert isinstance(kw["quantization_config"], m.BinaryQuantization)
    accepted = set(inspect.signature(QdrantClient.create_shard_key).parameters)
    assert calls.shard_keys == [
        {"collection_name": "t2", "shard_key": "eu", "shards_number": 2},
        {"collection_name": "t2", "shard_key": "us", "shards_number": 2},
        {"collection_name": "t2", "shard_key": 7, "shards_number": 1},
    ]
    assert all(set(c) <= accepted for c in calls.shard_keys)
    assert calls.update_collection is None


def test_topology_overrides(named: Any, sharded: Any) -> None:
    spec = spec_from_collection_info("articles", named[0]).spec
    calls = create_calls(spec, "r", shards=6, replication_factor=1)
    kw = calls.create_collection
    assert (kw["shard_number"], kw["replication_factor"], kw["write_consistency_factor"]) == (6, 1, 1)
    assert any("--shards" in n for n in calls.notes) and any("--replication-factor" in n for n in calls.notes)
    assert any("write_consistency_factor 2 -> 1" in n for n in calls.notes)
    unchanged = create_calls(spec, "r", shards=3, replication_factor=2)
    assert unchanged.notes == [] and unchanged.create_collection["write_consistency_factor"] == 2
    info, _raw, keys = sharded
    sk = create_calls(spec_from_collection_info("t", info, shard_keys=keys).spec, "t", shards=4,
                      replication_factor=3).shard_keys
    assert [(c["shard_key"], c["shards_number"], c["replication_factor"]) for c in sk] == [
        ("eu", 4, 3), ("us", 4, 3), (7, 4, 3)]


def test_index_params_override(named: Any) -> None:
    spec = spec_from_collection_info("articles", named[0]).spec
    calls = create_calls(spec, "r", index_params={
        "text": {"M": 48, "efConstruction": 400}, "bm25": {"on_disk": True}, "tenant_id": {"on_disk": False}})
    vp = calls.create_collection["vectors_config"]
    assert (vp["text"].hnsw_config.m, vp["text"].hnsw_config.ef_construct) == (48, 400)
    assert vp["image"].hnsw_config.m == 24
    assert calls.create_collection["sparse_vectors_config"]["bm25"].index.on_disk is True
    tenant = next(c for c in calls.payload_indexes if c["field_name"] == "tenant_id")
    assert tenant["field_schema"].on_disk is False and tenant["field_schema"].is_tenant is True


def test_index_params_keys_are_checked(named: Any) -> None:
    """A key Qdrant's index of that vector or payload key does not take is refused, naming the field, the key and
    the keys it takes (instead of failing qdrant-client's validation with advice to upgrade it), named as the API
    spells the option (test_index_params_in_command_line_words: as the command line does)."""
    spec = spec_from_collection_info("articles", named[0]).spec
    with pytest.raises(UsageError) as e:
        create_calls(spec, "r", index_params={"text": {"M": 8, "nlist": 64}})
    assert e.value.message.startswith("index_params['text']: Qdrant's HNSW takes M, efConstruction, m, ef_construct, "
                                      "full_scan_threshold,")
    assert e.value.message.endswith(", not nlist")
    with pytest.raises(UsageError, match=r"^index_params\['bm25'\]: Qdrant's sparse vector index takes .*not m$"):
        create_calls(spec, "r", index_params={"bm25": {"m": 4}})
    with pytest.raises(UsageError, match=r"^index_params\['tenant_id'\]: Qdrant's keyword payload index takes "
                                         r".*is_tenant.*not nlist$"):
        create_calls(spec, "r", index_params={"tenant_id": {"nlist": 4}})


def test_index_params_in_command_line_words(named: Any) -> None:
    spec = spec_from_collection_info("articles", named[0]).spec
    with cli_words(), pytest.raises(UsageError, match=r"^--index-params tenant_id: Qdrant's keyword payload index"):
        create_calls(spec, "r", index_params={"tenant_id": {"nlist": 4}})
    with cli_words(), pytest.raises(UsageError) as e:
        create_calls(spec, "r", index_types={"text": "FLAT"})
    assert (e.value.message, e.value.hint) == ("--index-type text:FLAT builds no HNSW graph (m=0): it takes no M",
                                               "--index-type text:HNSW with --index-params text:M=32")


def test_index_types(named: Any) -> None:
    """--index-type into Qdrant: FLAT is HNSW without a graph (m=0); HNSW on a vector recorded without one gets
    Qdrant's default m; HNSW where there is one changes nothing."""
    spec = spec_from_collection_info("articles", named[0]).spec
    calls = create_calls(spec, "r", index_types={"code": "FLAT", "colbert": "HNSW", "text": "HNSW"})
    vp = calls.create_collection["vectors_config"]
    assert (vp["code"].hnsw_config.m, vp["colbert"].hnsw_config.m) == (0, 16)
    assert (vp["text"].hnsw_config.m, vp["text"].hnsw_config.ef_construct) == (32, 256)
    calls = create_calls(spec, "r", index_types={"colbert": "HNSW"}, index_params={"colbert": {"M": 8}})
    assert calls.create_collection["vectors_config"]["colbert"].hnsw_config.m == 8
    with pytest.raises(UsageError, match=r"^index_types=\{'text': 'FLAT'\} builds no HNSW graph"):
        create_calls(spec, "r", index_types={"text": "FLAT"})


def test_unknown_settings_become_notes(named: Any) -> None:
    spec = spec_from_collection_info("articles", named[0]).spec
    cfg = {**spec.extra["qdrant"], "future_config": {"x": 1}}
    cfg["params"] = {**cfg["params"], "future_param": 2}
    calls = create_calls(CollectionSpec(**{**spec.__dict__, "extra": {"qdrant": cfg}}), "r")
    assert any("params.future_param" in n for n in calls.notes)
    assert any("future_config" in n for n in calls.notes)


def test_not_a_qdrant_backup() -> None:
    milvus = CollectionSpec(name="m", fields=(Field("pk", FieldType.INT64, is_primary=True),
                                              Field("v", FieldType.FLOAT_VECTOR, dim=4)))
    with pytest.raises(Unsupported, match="not of a Qdrant collection"):
        check_spec(milvus)
    with pytest.raises(Unsupported):
        create_calls(milvus, "x")
    odd = CollectionSpec(name="q", fields=(Field("id", FieldType.VARCHAR, is_primary=True),
                                           Field("label", FieldType.INT64)), extra={"qdrant": {"params": {}}})
    with pytest.raises(Unsupported, match="'label'"):
        check_spec(odd)


# --------------------------------------------------------------------------- points <-> columns


def _spec() -> CollectionSpec:
    info = {"config": {"params": {
        "vectors": {"d": {"size": 3, "distance": "Dot"}, "h": {"size": 2, "distance": "Euclid", "datatype": "float16"},
                    "mv": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}},
        "sparse_vectors": {"s": {"modifier": "idf"}}}}}
    return spec_from_collection_info("c", info).spec


def test_points_round_trip_through_a_chunk() -> None:
    u = str(uuid.UUID(int=0xABCDEF))
    records = [
        m.Record(id=0, payload={"a": {"b": [1, 2.5, None, {"c": "ü"}]}},
                 vector={"d": [0.1, -2.0, 3.25], "h": [0.5, 1.5], "mv": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]],
                         "s": m.SparseVector(indices=[9, 2], values=[0.5, 0.25])}),
        m.Record(id=u, payload=None, vector={"d": [1.0, 0.0, 0.0]}),
        m.Record(id=18446744073709551615, payload={"k": 1}, vector={"s": m.SparseVector(indices=[], values=[])}),
    ]
    spec = _spec()
    chunk = records_to_chunk(spec, "", records)
    assert chunk.columns["id"].values == ["0", u, "18446744073709551615"]
    assert chunk.columns["h"].valid.tolist() == [True, False, False]  # type: ignore[union-attr]
    assert chunk.columns["mv"].values[0] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]
    decoded = decode_chunk(encode_chunk(spec.columns, chunk))
    points = chunk_to_points(spec, decoded)
    f32 = lambda xs: np.asarray(xs, dtype=np.float32).tolist()  # noqa: E731
    assert points == [
        {"id": 0, "payload": {"a": {"b": [1, 2.5, None, {"c": "ü"}]}},
         "vector": {"d": f32([0.1, -2.0, 3.25]), "h": [0.5, 1.5], "mv": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]],
                    "s": {"indices": [2, 9], "values": [0.25, 0.5]}}},
        {"id": u, "payload": {}, "vector": {"d": [1.0, 0.0, 0.0]}},
        {"id": 18446744073709551615, "payload": {"k": 1}, "vector": {"s": {"indices": [], "values": []}}},
    ]


def test_unnamed_vector_points() -> None:
    only = spec_from_collection_info("c", {"config": {"params": {"vectors": {"size": 2, "distance": "Dot"}}}}).spec
    chunk = records_to_chunk(only, "", [m.Record(id=1, vector=[1.0, 2.0]), m.Record(id=2, vector=None)])
    assert chunk_to_points(only, chunk) == [{"id": 1, "vector": [1.0, 2.0], "payload": {}},
                                            {"id": 2, "vector": {}, "payload": {}}]
    mixed = spec_from_collection_info("c", {"config": {"params": {"vectors": {"size": 2, "distance": "Dot"},
                                                                  "sparse_vectors": {"s": {}}}}}).spec
    sparse = m.SparseVector(indices=[1], values=[2.0])
    chunk = records_to_chunk(mixed, "", [m.Record(id=1, vector={"": [1.0, 2.0], "s": sparse})])
    assert chunk_to_points(mixed, chunk) == [
        {"id": 1, "vector": {"": [1.0, 2.0], "s": {"indices": [1], "values": [2.0]}}, "payload": {}}]


def test_wrong_dimension_is_an_error() -> None:
    with pytest.raises(VecbackupError, match="has 1 dimensions, the collection 3"):
        records_to_chunk(_spec(), "", [m.Record(id=1, vector={"d": [1.0]})])


UUID_ID = "5f2b3c4d-0000-4000-8000-000000000001"


@pytest.mark.parametrize(("s", "pid"), [("0", 0), ("42", 42), ("18446744073709551615", 18446744073709551615),
                                         (UUID_ID, UUID_ID), ("٣", "٣")])
def test_point_ids(s: str, pid: int | str) -> None:
    assert str_to_point_id(s) == pid


def test_upsert_batches_bound_count_and_size() -> None:
    points = [{"id": i, "vector": {"d": [0.0] * 100}, "payload": {"t": "x" * 100}} for i in range(50)]
    assert [len(b) for b in upsert_batches(points, max_points=20)] == [20, 20, 10]
    small = list(upsert_batches(points, max_bytes=5000))
    assert all(len(b) <= 2 for b in small) and sum(map(len, small)) == 50
    assert list(upsert_batches([])) == []


# --------------------------------------------------------------------------- errors


def _response(status: int, body: bytes) -> UnexpectedResponse:
    return UnexpectedResponse(status_code=status, reason_phrase="x", content=body, headers=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("exc", "cls"), [
    (_response(404, b'{"status":{"error":"Not found: Collection `x` doesn\'t exist!"},"time":0.0}'), NotFound),
    (_response(401, b"Must provide an API key or an Authorization bearer token"), Unreachable),
    (_response(403, b'{"status":{"error":"forbidden"}}'), Unreachable),
    (_response(409, b'{"status":{"error":"Collection `x` already exists!"}}'), AlreadyExists),
    (_response(400, b'{"status":{"error":"Wrong input: bad vector"}}'), VecbackupError),
    (_response(503, b""), Unreachable),
    (ResponseHandlingException(ConnectionRefusedError(111, "Connection refused")), Unreachable),
    (NotImplementedError("Sharding is not supported in the local Qdrant."), Unsupported),
    (ConnectionResetError("reset"), Unreachable),
])
def test_error_translation(exc: BaseException, cls: type) -> None:
    err = translate_error("Qdrant at qdrant://h:6333: describe failed", exc)
    assert type(err) is cls
    assert "\n" not in str(err) and str(err).startswith("Qdrant at qdrant://h:6333: describe failed")


def test_error_text_comes_from_the_response() -> None:
    err = translate_error("w", _response(404, b'{"status":{"error":"Not found: Collection `x` doesn\'t exist!"}}'))
    assert "Collection `x` doesn't exist!" in str(err)


def test_local_mode_value_errors() -> None:
    assert type(translate_error("w", ValueError("Collection a not found"), local=True)) is NotFound
    assert type(translate_error("w", ValueError("Collection a already exists"), local=True)) is AlreadyExists
    assert type(translate_error("w", ValueError("Collection a not found"))) is VecbackupError
