"""What a Milvus Lite backup needs to restore on a server, and the one-line errors when a target refuses.

Milvus Lite (3.x) and a Milvus 2.3 server answer describe_collection differently (docs/COMPATIBILITY.md lists the
audit): Lite leaves out max_length of ARRAY<VARCHAR> elements and index build parameters, and reports fixed values
for the consistency level, the shard count, the partition-key partition count and descriptions. The backup measures
what the rows show, records the rest as unknown, and restore takes either from flags."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import build_vector_only, index_summary, read_keys, read_rows
from tests.integration.common import SESSION_URI, STANDALONE_URL


def _lite_collection(client: Any, name: str, *, scalar_index: bool = False, partition_key: bool = False) -> None:
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True, description="kept?")
    s.add_field("id", DataType.INT64, is_primary=True, description="the key")
    s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("title", DataType.VARCHAR, max_length=32)
    s.add_field("n", DataType.INT64)
    s.add_field("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3, max_length=40)
    if partition_key:
        s.add_field("tenant", DataType.VARCHAR, max_length=8, is_partition_key=True)
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    if scalar_index:
        ip.add_index("n", index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Bounded", num_shards=2)
    if not partition_key:
        client.create_partition(name, "p1")
    rows = [{"id": i, "v": [float(i % 7), 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, float(i)], "title": f"t{i}", "n": i * 3,
             "words": ["ünï"[: i % 4], "abcdefghij"][: i % 3], **({"tenant": f"t{i % 3}"} if partition_key else {}),
             **({"extra": {"i": i}} if i % 5 == 0 else {})} for i in range(200)]
    client.insert(name, rows[:100])
    client.insert(name, rows[100:], **({} if partition_key else {"partition_name": "p1"}))
    client.flush(name)


def _backup(cli: Any, url: str, store: Path, name: str) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--json")
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def _server() -> Any:
    from pymilvus import MilvusClient

    return MilvusClient(uri=SESSION_URI)


def test_lite_backup_records_what_lite_does_not_report(cli, lite, store_dir):
    name = lite.new_name("fid")
    _lite_collection(lite.client, name, scalar_index=True)
    backup = _backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, backup["backup_id"], "--json").json()
    c = shown["collection"]
    words = next(f for f in c["fields"] if f["name"] == "words")
    assert words["max_length"] == 10 and words["inferred"] == ["max_length"]  # "abcdefghij": 10 bytes
    assert "inferred" not in next(f for f in c["fields"] if f["name"] == "title")  # reported by Lite
    assert c["consistency_level"] is None and c["num_shards"] is None  # Lite says Strong / 1 whatever was set
    vec, n = (next(i for i in c["indexes"] if i["field_name"] == f) for f in ("v", "n"))
    assert vec["params"] is None and n["metric_type"] is None  # unknown; Lite's "NONE" is not a metric
    notes = " | ".join(shown["notes"])
    assert "does not report the consistency level, the shard count, descriptions" in notes
    assert "'words': the source (milvus-lite) does not report its max_length; recorded 10" in notes
    # Lite -> Lite: the measured limit is used, the rows come back
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)


def test_lite_to_server_with_flags_and_fallbacks(cli, standalone, lite, store_dir):
    """The path the README advertises: develop on Lite, restore on a server. The unknown HNSW parameters are
    built with knowhere's defaults (the server refuses none), the INVERTED index Lite has becomes the 2.3
    server's STL_SORT with --index-fallback, and flags set what Lite did not report."""
    name = lite.new_name("l2s")
    _lite_collection(lite.client, name, scalar_index=True)
    backup = _backup(cli, lite.url, store_dir, name)
    server = _server()
    try:
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"])
        assert r.code == 9, r.stderr  # INVERTED on INT64: not on a 2.3 server
        assert "cannot build index INVERTED on field 'n'" in r.error_line() and "--index-fallback" in r.stderr
        assert not [c for c in server.list_collections() if c.startswith(name)]
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], "--index-fallback",
                "--field-params", "words:max_length=64,description=some words", "--field-params",
                'id:{"description": "key, restored"}', "--collection-params",
                "consistency_level=Bounded,description=from lite", "--shards", "2", "--json")
        assert r.code == 0, r.stderr
        notes = r.json()["notes"]
        assert "field 'words': max_length 10 -> 64 (--field-params)" in notes
        assert any("--index-fallback builds STL_SORT instead" in n for n in notes), notes
        assert any("knowhere's defaults M=16,efConstruction=200" in n for n in notes), notes
        d = server.describe_collection(name)
        assert (d["consistency_level_name"], d["num_shards"], d["description"]) == ("Bounded", 2, "from lite")
        fields = {f["name"]: f for f in d["fields"]}
        assert fields["words"]["params"] == {"max_capacity": 3, "max_length": 64}
        assert fields["words"]["description"] == "some words" and fields["id"]["description"] == "key, restored"
        idx = index_summary(server, name)
        assert (idx["v"]["index_type"], idx["v"]["M"], idx["v"]["efConstruction"]) == ("HNSW", "16", "200")
        assert idx["n"]["index_type"] == "STL_SORT"
        assert read_rows(server, name) == read_rows(lite.client, name)
        for p in ("_default", "p1"):
            assert read_keys(server, name, p) == read_keys(lite.client, name, p)
    finally:
        if server.has_collection(name):
            server.drop_collection(name)
        server.close()


def test_partition_key_count_from_lite_is_unknown(cli, standalone, lite, store_dir):
    """Lite reports 17 partitions for any partition-key collection: recorded as unknown, the server's default
    (or --collection-params num_partitions) applies."""
    name = lite.new_name("pk")
    _lite_collection(lite.client, name, partition_key=True)
    backup = _backup(cli, lite.url, store_dir, name)
    assert cli("show", store_dir, backup["backup_id"], "--json").json()["collection"]["extra"] == {
        "num_partitions": None}
    server = _server()
    try:
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], "--collection-params",
                "num_partitions=8")
        assert r.code == 0, r.stderr
        assert server.describe_collection(name)["num_partitions"] == 8
        assert read_rows(server, name) == read_rows(lite.client, name)
    finally:
        if server.has_collection(name):
            server.drop_collection(name)
        server.close()


def test_backup_without_a_limit_is_refused_before_anything_is_created(cli, standalone, lite, store_dir):
    """A backup written before limits were measured (no max_length for ARRAY<VARCHAR>): one line naming the field
    and the flag, exit 10, nothing created; the flag then makes it restorable."""
    import orjson

    name = lite.new_name("old")
    _lite_collection(lite.client, name)
    _backup(cli, lite.url, store_dir, name)
    manifest = next((store_dir / "manifests").rglob("*.json"))
    doc = orjson.loads(manifest.read_bytes())
    for f in doc["collection"]["fields"]:
        if f["name"] == "words":
            del f["max_length"], f["inferred"]
    manifest.write_bytes(orjson.dumps(doc))
    server = _server()
    try:
        for args in ([], ["--dry-run"]):
            r = cli("restore", store_dir, STANDALONE_URL, "-c", name, *args)
            assert r.code == 10, r.stderr
            line = r.error_line()
            assert "field 'words' (ARRAY<VARCHAR>): the backup does not record its max_length" in line
            assert "--field-params words:max_length=N" in line
        assert not [c for c in server.list_collections() if c.startswith(name)]
        r = cli("restore", store_dir, STANDALONE_URL, "-c", name, "--field-params", "words:max_length=16")
        assert r.code == 0, r.stderr
        assert read_rows(server, name) == read_rows(lite.client, name)
    finally:
        if server.has_collection(name):
            server.drop_collection(name)
        server.close()


def test_rows_beyond_a_limit_are_refused_naming_the_field(cli, standalone, lite, store_dir):
    """A limit set too small: the server's own message does not name the field; ours does, with the value's
    size and the flag, exit 10, and the staging collection is gone."""
    name = lite.new_name("lim")
    _lite_collection(lite.client, name)
    backup = _backup(cli, lite.url, store_dir, name)
    server = _server()
    try:
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"], "--field-params",
                "title:max_length=2")
        assert r.code == 10, r.stderr
        line = r.error_line()
        m = re.search(r"refused rows: field 'title': a value of (\d+) bytes exceeds its max_length 2 \(chunk row "
                      r"\d+\) \(restore with a larger --field-params title:max_length=N, at least (\d+)\)", line)
        assert m is not None and m.group(1) == m.group(2) and int(m.group(1)) >= 3, line
        assert not [c for c in server.list_collections() if c.startswith(name)]
    finally:
        server.close()


@pytest.mark.parametrize("target", ["lite", "standalone"])
def test_bad_target_name_is_refused_before_anything_is_created(cli, standalone, lite, store_dir, target):
    name = lite.new_name("nm")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=20)
    backup = _backup(cli, lite.url, store_dir, name)
    url = lite.url if target == "lite" else STANDALONE_URL
    before = lite.client.list_collections()
    for bad in ("bad name!", "1abc", "x" * 256):
        r = cli("restore", store_dir, url, "--backup", backup["backup_id"], "--as", bad)
        assert r.code == 2, r.stderr
        assert f"--as {bad!r} is not a valid collection name" in r.error_line()
    assert lite.client.list_collections() == before


def test_backup_of_unknown_collection_names_the_collections_command(cli, lite, store_dir):
    r = cli("backup", lite.url, store_dir, "-c", "nosuch")
    assert r.code == 4
    line = r.error_line()
    assert "`vecbackup collections milvus-lite://" in line and "list-collections" not in line


def test_dry_run_applies_topology_flags(cli, store_dir, memory_tmp_path):
    """--shards / --replication-factor are part of the plan a dry run shows, not applied after it."""
    from qdrant_client import QdrantClient, models

    folder = memory_tmp_path / "q"
    client = QdrantClient(path=str(folder))
    client.create_collection("topo", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert("topo", [models.PointStruct(id=i, vector=[float(i), 1.0, 2.0, 3.0]) for i in range(10)])
    client.close()
    url = f"qdrant-local://{folder}"
    assert cli("backup", url, store_dir, "-c", "topo").code == 0
    r = cli("restore", store_dir, url, "--as", "topo2", "--dry-run", "--shards", "3", "--replication-factor", "2",
            "--json")
    assert r.code == 0, r.stderr
    notes = r.json()["notes"]
    assert any("-> 3 (--shards)" in n for n in notes), notes
    assert any("-> 2 (--replication-factor)" in n for n in notes), notes
    r = cli("restore", store_dir, url, "--as", "topo2", "--dry-run", "--shards", "3")
    assert r.code == 0 and "-> 3 (--shards)" in r.stdout


def test_a_dynamic_field_lite_would_drop_is_refused(cli, standalone, lite, store_dir):
    """Milvus Lite silently drops a dynamic field named _partition from inserted rows (a 2.3 server keeps it):
    restoring such rows into Lite stops with exit 10 naming the row, and nothing is left behind."""
    from pymilvus import MilvusClient

    name = lite.new_name("dyn")
    server = MilvusClient(uri=SESSION_URI)
    try:
        server.create_collection(name, dimension=4, enable_dynamic_field=True, auto_id=False,
                                 consistency_level="Strong")
        server.insert(name, [{"id": i, "vector": [1.0, 2.0, 3.0, float(i)], **({"_partition": "x"} if i == 7 else {})}
                             for i in range(20)])
        assert server.query(name, filter="id == 7", output_fields=["*"])[0]["_partition"] == "x"  # kept there
        backup = _backup(cli, STANDALONE_URL, store_dir, name)
    finally:
        if server.has_collection(name):
            server.drop_collection(name)
        server.close()
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"])
    assert r.code == 10, r.stderr
    assert "row 7 has a dynamic field '_partition', which Milvus Lite" in r.error_line()
    assert not [c for c in lite.client.list_collections() if c.startswith(name)]
