"""Restores onto another server than the source, and collection kinds beyond the basic round trip."""

from __future__ import annotations

import orjson

from tests.datasets import build_rich, build_vector_only, index_summary, read_keys, read_rows
from tests.integration.common import STANDALONE_URL


def _backup(cli, url, store, name, *extra):
    r = cli("backup", url, store, "-c", name, "--json", *extra)
    assert r.code == 0, r.stderr
    return r.json()["backups"][0]


def _restore_engine(standalone):
    from pymilvus import MilvusClient

    return MilvusClient(uri=standalone.uri)


def test_standalone_to_lite_with_index_fallback(cli, standalone, lite, store_dir):
    from pymilvus import MilvusClient

    src = MilvusClient(uri=standalone.uri)
    name = lite.new_name("s2l")
    built = build_rich(src, name, "standalone", n=300)
    backup = _backup(cli, STANDALONE_URL, store_dir, name)
    # Milvus Lite cannot build every index a 2.3 server recorded (Trie on VARCHAR)
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"])
    assert r.code == 9, r.stderr
    assert "cannot build index" in r.stderr and "--index-fallback" in r.stderr
    assert name not in lite.client.list_collections()
    assert not [c for c in lite.client.list_collections() if "vbrestore" in c]
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--index-fallback", "--json")
    assert r.code == 0, r.stderr
    notes = r.json()["notes"]
    assert any("cannot build Trie on VARCHAR fields" in n and "--index-fallback builds INVERTED instead" in n
               for n in notes), notes
    assert any("cannot build STL_SORT on" in n and "--index-fallback builds INVERTED instead" in n
               for n in notes), notes
    a, b = read_rows(src, name), read_rows(lite.client, name)
    assert a == b and len(a) == built.rows
    for p in built.partitions:
        assert read_keys(src, name, p) == read_keys(lite.client, name, p)
    assert index_summary(lite.client, name)["vec"]["index_type"] == "HNSW"
    src.close()


def test_lite_to_standalone_refuses_what_it_cannot_hold(cli, standalone, lite, store_dir):
    from pymilvus import MilvusClient

    name = lite.new_name("l2s")
    build_rich(lite.client, name, "lite", n=60)
    backup = _backup(cli, lite.url, store_dir, name)
    r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"])
    assert r.code == 9, r.stderr
    assert "'sp'" in r.stderr or "sp)" in r.stderr  # the field is named
    dst = MilvusClient(uri=standalone.uri)
    assert not [c for c in dst.list_collections() if c.startswith(name)]
    dst.close()


def test_lite_to_standalone_with_index_params(cli, standalone, lite, store_dir):
    """Milvus Lite does not report HNSW parameters; --index-params supplies them on restore."""
    from pymilvus import MilvusClient

    name = lite.new_name("hnsw")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=200,
                      index=("HNSW", "COSINE", {"M": 24, "efConstruction": 150}))
    backup = _backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, backup["backup_id"], "--json").json()
    assert shown["collection"]["indexes"][0]["params"] is None  # unknown, not invented
    assert any("does not report index parameters" in n for n in shown["notes"])
    r = cli("restore", store_dir, STANDALONE_URL, "--backup", backup["backup_id"],
            "--index-params", "v:M=24,efConstruction=150", "--json")
    assert r.code == 0, r.stderr
    dst = MilvusClient(uri=standalone.uri)
    idx = index_summary(dst, name)["v"]
    assert (idx["index_type"], idx["metric_type"], idx["M"], idx["efConstruction"]) == ("HNSW", "COSINE", "24", "150")
    assert read_rows(dst, name) == read_rows(lite.client, name)
    dst.close()


def test_partition_key_collection(cli, lite, store_dir):
    from pymilvus import DataType, MilvusClient

    name = lite.new_name("pkey")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("tenant", DataType.VARCHAR, max_length=10, is_partition_key=True)
    ip = lite.client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    lite.client.create_collection(name, schema=s, index_params=ip)
    lite.client.insert(name, [{"id": i, "v": [i, 1.0, 2.0, 3.0], "tenant": f"t{i % 5}"} for i in range(200)])
    backup = _backup(cli, lite.url, store_dir, name)
    doc = cli("show", store_dir, backup["backup_id"], "--json").json()
    assert {o["partition"] for o in doc["objects"]} == {""}  # the engine routes rows by key
    r = cli("restore", store_dir, lite.url, "--backup", backup["backup_id"], "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)
    tenant = next(f for f in lite.client.describe_collection(f"{name}_r")["fields"] if f["name"] == "tenant")
    assert tenant.get("is_partition_key")
    hits = lite.client.query(f"{name}_r", filter='tenant == "t3"', output_fields=["id"], limit=100)
    assert sorted(h["id"] for h in hits) == list(range(3, 200, 5))


def test_token_never_stored_or_printed(cli, standalone, store_dir, monkeypatch):
    from pymilvus import MilvusClient

    secret = "root:NeverPrintMe-42"
    monkeypatch.setenv("VECBACKUP_MILVUS_TOKEN", secret)
    src = MilvusClient(uri=standalone.uri)
    name = f"tok_{abs(hash(secret)) % 10_000}"
    if src.has_collection(name):
        src.drop_collection(name)
    build_vector_only(src, name, "FLOAT_VECTOR", n=30)
    outputs = []
    for args in (["backup", STANDALONE_URL, store_dir, "-c", name, "--json"],
                 ["list", store_dir, "--json"], ["show", store_dir, "--json"], ["verify", store_dir, "--json"]):
        r = cli(*args)
        assert r.code == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    stored = b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert all(secret not in o for o in outputs)
    assert orjson.loads(outputs[2])["source"]["address"] == STANDALONE_URL
    src.close()


def test_quiet_prints_nothing(cli, lite, store_dir):
    name = lite.new_name("q")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=20)
    r = cli("backup", lite.url, store_dir, "-c", name, "--quiet")
    assert r.code == 0
    assert r.stdout == "" and "warning" not in r.stderr and r.stderr == ""
