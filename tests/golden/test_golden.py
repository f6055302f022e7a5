"""The committed golden backup of format v1 must always decode and restore, whatever the code becomes."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.datasets import _norm, read_rows
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.fetch import iter_chunks
from vecbackup.engines.milvus import chunk_to_rows
from vecbackup.stores.local import LocalStore

GOLDEN = Path(__file__).parent / "v1"




def test_golden_manifest_reads(golden_store, expected):
    store = LocalStore(golden_store)
    refs = catalog.list_refs(store)
    assert [r.backup_id for r in refs] == [expected["backup_id"]]
    m: Manifest = catalog.load(store, refs[0])
    assert m.format_version == 1
    assert m.rows == len(expected["rows"]) == 90
    assert m.collection.name == "golden" and m.collection.aliases == ("golden_alias",)
    assert {i.field_name: i.index_type for i in m.collection.indexes} == {"vec": "HNSW", "sp": "SPARSE_INVERTED_INDEX"}


def test_golden_chunks_decode_to_the_recorded_rows(golden_store, expected):
    store = LocalStore(golden_store)
    m = catalog.load(store, catalog.list_refs(store)[0])
    decoded = {}
    for _obj, chunk in iter_chunks(store, m.objects):
        for row in chunk_to_rows(m.collection, chunk):
            decoded[str(row["id"])] = {k: _norm(v) for k, v in row.items()}
    assert decoded == expected["rows"]


def test_golden_backup_restores(cli, lite, golden_store, expected):
    r = cli("restore", golden_store, lite.url, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == 90
    rows = {str(k): v for k, v in read_rows(lite.client, "golden").items()}
    assert rows == expected["rows"]
    for p, ids in expected["partitions"].items():
        assert sorted(read_rows(lite.client, "golden", p)) == ids
    assert lite.client.describe_alias("golden_alias")["collection_name"] == "golden"


def test_backups_after_a_v1_backup_upload_once_then_reuse(cli, lite, golden_store, expected):
    """A store written before row digests existed: the next backup cannot reuse the v1 backup's rows (it says so
    and uploads them once, with digests), the one after reuses them; the v1 backup still restores."""
    assert not (golden_store / "digests").exists()
    assert cli("restore", golden_store, lite.url).code == 0
    batch = str(orjson.loads(next((golden_store / "manifests").rglob("*.json")).read_bytes())["options"]["batch_size"])
    first = cli("backup", lite.url, golden_store, "-c", "golden", "--batch-size", batch, "--json").json()["backups"][0]
    assert first["base"] == expected["backup_id"] and first["rows_reused"] == 0
    assert any("no row digests" in n for n in first["notes"])
    second = cli("backup", lite.url, golden_store, "-c", "golden", "--batch-size", batch, "--json").json()["backups"][0]
    assert second["base"] == first["backup_id"] and second["rows_reused"] == 90 and second["bytes_uploaded"] == 0
    assert cli("delete", golden_store, first["backup_id"]).code == 0
    lite.client.drop_collection("golden")
    r = cli("restore", golden_store, lite.url, "--backup", expected["backup_id"], "--json")
    assert r.code == 0, r.stderr
    assert {str(k): v for k, v in read_rows(lite.client, "golden").items()} == expected["rows"]
