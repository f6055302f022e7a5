"""Field- and collection-level settings of today's Milvus schemas (analyzers, text match, mmap, warmup, properties,
index names and parameters, scalar index types) through a backup and a restore: what the engine reports after the
restore is compared with what it reported for the source, on the same engine and from Milvus Lite to the 2.3 server
and back, and whatever a target does not keep is said by the plan before anything is created
(docs/COMPATIBILITY.md, "Schema features")."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson

from tests.datasets import read_rows
from tests.integration.common import SESSION_URI, STANDALONE_URL

LEASE = "vecbackup.lease"
#: a custom analyzer: built-in tokenizer, a built-in filter and two custom ones
CUSTOM = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["a", "the"]},
                                              {"type": "length", "max": 12}]}
MULTI = {"analyzers": {"en": {"type": "english"}, "default": {"tokenizer": "standard"}}, "by_field": "lang",
         "alias": {"english": "en"}}
PROPERTIES = {"collection.ttl.seconds": "864000", "partitionkey.isolation": "true", "mmap.enabled": "true",
              "team.owner": "search"}


def reported(client: Any, name: str) -> dict[str, Any]:
    """What the engine reports of collection ``name``: its settings, its fields' and its indexes' (ids, timestamps,
    row counters and vecbackup's own emptied lease left out; JSON-valued field params parsed)."""
    d = client.describe_collection(name)
    fields = {}
    for f in d["fields"]:
        params = {k: orjson.loads(v) if k.endswith("analyzer_params") else v for k, v in f["params"].items()}
        fields[f["name"]] = {**{k: v for k, v in f.items() if k not in ("field_id", "name", "params")},
                             "params": params}
    indexes = {}
    for index_name in client.list_indexes(name):
        i = client.describe_index(name, index_name)
        indexes[index_name] = {k: str(v) for k, v in i.items() if k not in (
            "indexed_rows", "pending_index_rows", "state", "total_rows", "index_state_fail_reason")}
    properties = dict(d["properties"])
    if properties.get(LEASE) == "":  # a 2.3 server cannot remove a property: the lease is emptied (FORMAT.md)
        del properties[LEASE]
    keep = ("description", "consistency_level_name", "num_shards", "num_partitions", "enable_dynamic_field",
            "enable_namespace", "auto_id")
    return {**{k: d.get(k) for k in keep}, "properties": properties, "fields": fields, "indexes": indexes}


def _backup(cli: Any, url: str, store: Path, name: str) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--json")
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def _rows(i: int, partition_key: bool = True) -> dict[str, Any]:
    return {"id": i, "v": [float(i % 5), 1.0, 2.0, float(i)], "text": f"The cat number {i} sat on a mat",
            "lang": ["en", "fr"][i % 2], "text2": f"dogs running {i}", "n": i * 3, "flag": i % 3 == 0,
            **({"tag": f"t{i % 4}"} if partition_key else {}), **({"extra": {"i": i}} if i % 7 == 0 else {})}


def _lite_collection(client: Any, name: str) -> None:
    """What a user builds on Milvus Lite today: analyzers (custom and built-in), text match, a partition key with
    isolation, properties, INVERTED scalar indexes, dynamic fields."""
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                analyzer_params=CUSTOM)
    s.add_field("lang", DataType.VARCHAR, max_length=8)
    s.add_field("text2", DataType.VARCHAR, max_length=200, enable_analyzer=True, analyzer_params={"type": "english"})
    s.add_field("n", DataType.INT64)
    s.add_field("flag", DataType.BOOL)
    s.add_field("tag", DataType.VARCHAR, max_length=8, is_partition_key=True)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 64})
    for f in ("text2", "n", "flag"):
        ip.add_index(f, index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip, properties=PROPERTIES)
    client.insert(name, [_rows(i) for i in range(120)])
    client.flush(name)


def _server_collection(client: Any, name: str) -> None:
    """What a user builds on a Milvus server: descriptions, a consistency level, shards, partition-key partitions;
    field mmap and warmup, analyzers (one per row, by a language field), text match; index names, an index mmap
    setting, the 2.3 server's scalar index types. Field ``n`` carries a field parameter this pymilvus does not
    know (as a newer server may report one): it is set on the schema the way pymilvus keeps the ones it knows."""
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True, description="articles, by tenant")
    s.add_field("id", DataType.INT64, is_primary=True, description="article id")
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4, mmap_enabled=True, description="title embedding")
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                analyzer_params=CUSTOM)
    s.add_field("lang", DataType.VARCHAR, max_length=8, warmup="sync")
    s.add_field("text2", DataType.VARCHAR, max_length=200, enable_analyzer=True, multi_analyzer_params=MULTI)
    s.add_field("n", DataType.INT64, mmap_enabled=False)
    s.fields[-1]._type_params["future.setting"] = "on"  # a parameter pymilvus does not know
    s.add_field("flag", DataType.BOOL)
    s.add_field("tag", DataType.VARCHAR, max_length=8, is_partition_key=True)
    client.create_collection(name, schema=s, consistency_level="Bounded", num_shards=2, num_partitions=8,
                             properties=PROPERTIES)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="L2", index_name="v_hnsw",
                 params={"M": 8, "efConstruction": 32, "mmap.enabled": "true"})
    ip.add_index("n", index_type="STL_SORT", index_name="n_sorted")
    ip.add_index("lang", index_type="Trie", index_name="lang_trie")
    client.create_index(name, ip)
    client.insert(name, [_rows(i) for i in range(120)])
    client.flush(name)


def _server() -> Any:
    from pymilvus import MilvusClient

    return MilvusClient(uri=SESSION_URI)


def test_lite_settings_restore_identical(cli, lite, store_dir):
    """Lite -> Lite: every setting Lite reports comes back as it reported it (analyzer params compared as JSON)."""
    name = lite.new_name("set")
    _lite_collection(lite.client, name)
    backup = _backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, backup["backup_id"], "--json").json()["collection"]
    fields = {f["name"]: f for f in shown["fields"]}
    assert orjson.loads(fields["text"]["extra"]["analyzer_params"]) == CUSTOM
    assert fields["text"]["extra"]["enable_match"] == "true"
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert not [n for n in r.json()["notes"] if "does not keep" in n]
    assert reported(lite.client, f"{name}_r") == reported(lite.client, name)
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)
    for term in ("cat", "number 7", "mat"):  # text match on the copy finds what it finds on the source
        found = [sorted(r["id"] for r in lite.client.query(c, filter=f"TEXT_MATCH(text, '{term}')",
                                                             output_fields=["id"])) for c in (name, f"{name}_r")]
        assert found[0] == found[1] and found[0], term


def test_server_settings_restore_identical(cli, standalone, store_dir):
    """2.3 -> 2.3: every setting the server reports comes back as it reported it, a field parameter pymilvus does
    not know included (pymilvus would drop it from the schema it sends)."""
    server = _server()
    try:
        name = f"set_{uuid.uuid4().hex[:10]}"
        _server_collection(server, name)
        source = reported(server, name)
        assert source["fields"]["n"]["params"] == {"mmap_enabled": False, "future.setting": "on"}
        backup = _backup(cli, STANDALONE_URL, store_dir, name)
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], "--as", f"{name}_r", "--json")
        assert r.code == 0, r.stderr
        assert reported(server, f"{name}_r") == source
        assert read_rows(server, f"{name}_r") == read_rows(server, name)
    finally:
        server.close()


def test_server_to_lite_plan_says_what_lite_does_not_keep(cli, standalone, lite, store_dir):
    """2.3 -> Lite: the 2.3 server's Trie and STL_SORT indexes are refused by the plan (a dry run already), before
    anything is created; with --index-fallback the plan lists every setting Lite would drop, and Lite's report of
    the copy is the source's without exactly those."""
    server = _server()
    try:
        _server_to_lite(cli, server, lite, store_dir)
    finally:
        server.close()


def _server_to_lite(cli: Any, server: Any, lite: Any, store_dir: Path) -> None:
    name = lite.new_name("s2l")
    _server_collection(server, name)
    source = reported(server, name)
    backup = _backup(cli, STANDALONE_URL, store_dir, name)
    for args in (["--dry-run"], []):
        r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], *args)
        assert r.code == 9, r.stderr
        line = r.error_line()
        assert "cannot build index STL_SORT on field 'n'" in line and "--index-fallback" in line, line
        assert lite.client.list_collections() == []
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--index-fallback", "--dry-run", "--json")
    assert r.code == 0, r.stderr
    planned = r.json()["notes"]
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--index-fallback", "--json")
    assert r.code == 0, r.stderr
    notes = r.json()["notes"]
    assert all(n in notes for n in planned)
    dropped = next(n for n in planned if n.startswith("Milvus Lite does not keep"))
    for said in ("the collection description", "consistency level Bounded", "2 shards", "num_partitions 8",
                 "field descriptions (id, v)", "index names (lang_trie, n_sorted, v_hnsw;",
                 "field 'v': mmap_enabled", "field 'lang': warmup", "field 'text2': multi_analyzer_params",
                 "field 'n': mmap_enabled, future.setting",
                 "index parameters (v_hnsw: M, efConstruction, mmap.enabled)"):
        assert said in dropped, (said, dropped)
    for field, fallback in (("n", "STL_SORT"), ("lang", "Trie")):
        assert any(n.startswith(f"index on {field!r}: Milvus Lite cannot build {fallback} on ")
                   and "--index-fallback builds INVERTED instead" in n for n in planned), planned
    copy = reported(lite.client, name)
    assert copy["properties"] == source["properties"]
    assert (copy["description"], copy["consistency_level_name"], copy["num_shards"]) == ("", "Strong", 1)
    assert copy["num_partitions"] == 17 and source["num_partitions"] == 8
    for fname, f in source["fields"].items():
        kept = {k: v for k, v in f["params"].items()
                if k not in ("mmap_enabled", "warmup", "multi_analyzer_params", "future.setting")}
        assert copy["fields"][fname] == {**f, "description": "", "params": kept}, fname
    assert {k: (i["field_name"], i["index_type"]) for k, i in copy["indexes"].items()} == {
        "v": ("v", "HNSW"), "n": ("n", "INVERTED"), "lang": ("lang", "INVERTED")}
    assert read_rows(lite.client, name) == read_rows(server, name)


def test_lite_to_server_plan_says_what_the_server_does_not_use(cli, standalone, lite, store_dir):
    """Lite -> 2.3: Lite's INVERTED indexes are refused by the plan (a dry run already) before anything is created;
    with --index-fallback the plan says which index the 2.3 server builds instead and which settings it stores
    without using them (analyzers and text match came in 2.5, partition-key isolation in 2.5, mmap settings in
    2.4); the server then reports every setting as Lite did."""
    name = lite.new_name("l2s")
    _lite_collection(lite.client, name)
    source = reported(lite.client, name)
    backup = _backup(cli, lite.url, store_dir, name)
    server = _server()
    try:
        for args in (["--dry-run"], []):
            r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], *args)
            assert r.code == 9, r.stderr
            line = r.error_line()
            assert "cannot build index INVERTED on field 'flag'" in line and "--index-fallback" in line, line
            assert not [c for c in server.list_collections() if c.startswith(name)]
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], "--index-fallback", "--json")
        assert r.code == 0, r.stderr
        notes = r.json()["notes"]
        unused = next(n for n in notes if "stores these settings without using them" in n)
        for said in ("field 'text': enable_analyzer, enable_match, analyzer_params",
                     "field 'text2': enable_analyzer, analyzer_params",
                     "properties partitionkey.isolation, mmap.enabled"):
            assert said in unused, (said, unused)
        assert any(n.startswith("index on 'n': Milvus 2.3") and "--index-fallback builds STL_SORT instead" in n
                   for n in notes), notes
        assert any(n.startswith("index on 'text2': Milvus 2.3") and "--index-fallback builds Trie instead" in n
                   for n in notes), notes
        assert any(n.startswith("index on 'flag': Milvus 2.3") and "--index-fallback leaves it unindexed" in n
                   for n in notes), notes
        copy = reported(server, name)
        assert copy["properties"] == source["properties"]
        for fname, f in source["fields"].items():
            assert copy["fields"][fname]["params"] == f["params"], fname
        assert {i["field_name"]: i["index_type"] for i in copy["indexes"].values()} == {
            "v": "HNSW", "n": "STL_SORT", "text2": "Trie"}
        assert read_rows(server, name) == read_rows(lite.client, name)
    finally:
        server.close()


def test_collection_properties_changed_and_left_out_on_restore(cli, lite, store_dir):
    """--collection-params properties.KEY=VALUE sets a property, properties.KEY= leaves it out; the plan says so and
    the engine reports exactly that."""
    name = lite.new_name("prop")
    _lite_collection(lite.client, name)
    backup = _backup(cli, lite.url, store_dir, name)
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", f"{name}_r", "--json",
            "--collection-params", "properties.collection.ttl.seconds=3600,properties.partitionkey.isolation=",
            "--collection-params", "properties.team.cost_center=ml-7")
    assert r.code == 0, r.stderr
    notes = r.json()["notes"]
    assert "collection property 'collection.ttl.seconds' '864000' -> '3600' (--collection-params)" in notes
    assert "collection property 'partitionkey.isolation' 'true' -> left out (--collection-params)" in notes
    assert "collection property 'team.cost_center' (none) -> 'ml-7' (--collection-params)" in notes
    assert reported(lite.client, f"{name}_r")["properties"] == {
        "collection.ttl.seconds": "3600", "mmap.enabled": "true", "team.owner": "search", "team.cost_center": "ml-7"}
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", f"{name}_x",
            "--collection-params", "properties.nosuch=")
    assert r.code == 2, r.stderr
    assert "properties.nosuch= leaves out a property the backup does not have" in r.error_line()
