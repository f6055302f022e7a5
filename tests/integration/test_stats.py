"""`vecbackup stats` on Milvus Lite and a folder store: the totals are the folder's bytes, each backup's unique
bytes are exactly what deleting it frees (data objects and their row digests), and two nearly identical backups
deduplicate."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.datasets import COMMON_PARTITIONS, build_common

INDEX = ("IVF_FLAT", "L2", {"nlist": 64})


def folder_bytes(store: Path, *prefixes: str) -> int:
    """Bytes of the files in the store folder (under ``prefixes``, default everything but locks)."""
    roots = [store / p for p in prefixes] if prefixes else [store]
    return sum(f.stat().st_size for r in roots if r.exists() for f in r.rglob("*")
               if f.is_file() and "locks" not in f.relative_to(store).parts)


def test_stats_match_the_store_and_what_delete_frees(cli, lite, store_dir, tmp_path):
    name = lite.new_name("stats")
    build_common(lite.client, name, n=3000, index=INDEX)
    first = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "700", "--json")
    assert first.code == 0, first.stderr
    lite.client.delete(name, ids=[1, 4, 7])
    row = lite.client.query(name, filter="id == 301", output_fields=["*"])[0]
    lite.client.upsert(name, [{**row, "title": "changed"}], partition_name=COMMON_PARTITIONS[100 % 3])
    lite.client.flush(name)
    second = cli("backup", lite.url, store_dir, "-c", name, "--batch-size", "700", "--json")
    assert second.code == 0, second.stderr
    ids = [first.json()["backups"][0]["backup_id"], second.json()["backups"][0]["backup_id"]]
    uploaded = [first.json()["backups"][0]["bytes_uploaded"], second.json()["backups"][0]["bytes_uploaded"]]

    other = lite.new_name("other")  # a second collection: listed store-wide, left out with --collection
    build_common(lite.client, other, n=500, index=INDEX)
    assert cli("backup", lite.url, store_dir, "-c", other, "--json").code == 0

    r = cli("stats", store_dir, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] is True
    assert doc["total_bytes"] == folder_bytes(store_dir)
    assert doc["data_bytes"] == folder_bytes(store_dir, "data")
    assert doc["digests_bytes"] == folder_bytes(store_dir, "digests")
    assert doc["manifests_bytes"] == folder_bytes(store_dir, "manifests")
    assert doc["data_objects"] == len([f for f in (store_dir / "data").rglob("*") if f.is_file()])
    assert doc["unreferenced_bytes"] == 0 and doc["missing_objects"] == 0 and doc["unreadable"] == []
    backups = {b["backup_id"]: b for b in doc["backups"]}
    assert set(ids) < set(backups) and len(backups) == 3
    assert [backups[i]["uploaded_bytes"] for i in ids] == uploaded
    assert backups[ids[1]]["rows"] == 2997
    assert all(b["referenced_bytes"] > 0 for b in backups.values())

    # each backup's unique bytes: exactly what deleting it (alone, in a copy of the store) frees
    for backup_id in backups:
        copy = tmp_path / f"copy-{backup_id}"
        shutil.copytree(store_dir, copy)
        data, digests = folder_bytes(copy, "data"), folder_bytes(copy, "digests")
        gone = cli("delete", copy, backup_id, "--json")
        assert gone.code == 0, gone.stderr
        freed_digests = digests - folder_bytes(copy, "digests")
        assert data - folder_bytes(copy, "data") + freed_digests == gone.json()["bytes_freed"]
        assert backups[backup_id]["unique_bytes"] == gone.json()["bytes_freed"], backup_id
        assert backups[backup_id]["unique_objects"] == gone.json()["objects_deleted"]
    assert backups[ids[1]]["unique_bytes"] > 0  # the changed row is in an object of its own

    # one collection: only its backups, the same unique bytes (judged against every backup), its own ratio
    mine = cli("stats", store_dir, "-c", name, "--json").json()
    assert [b["backup_id"] for b in mine["backups"]] == ids
    assert [b["unique_bytes"] for b in mine["backups"]] == [backups[i]["unique_bytes"] for i in ids]
    assert mine["total_bytes"] == doc["total_bytes"]  # the store's totals stay store-wide
    assert mine["referenced_bytes"] == sum(backups[i]["referenced_bytes"] for i in ids)
    assert mine["dedup_ratio"] > 1.5  # two nearly identical backups, stored about once
    assert doc["dedup_ratio"] > 1.4

    # deleting the newer backup leaves the first with every object it uses; then it is unique to it alone
    assert cli("delete", store_dir, ids[1]).code == 0
    after = cli("stats", store_dir, "-c", name, "--json").json()
    (left,) = after["backups"]
    assert left["unique_bytes"] > backups[ids[0]]["unique_bytes"]
    assert after["dedup_ratio"] == 1.0
    assert after["total_bytes"] == folder_bytes(store_dir)

    # for people: a table and the summary lines
    text = cli("stats", store_dir)
    assert text.code == 0, text.stderr
    assert ids[0] in text.stdout and "deduplication" in text.stdout and "unique" in text.stdout


def test_stats_of_a_missing_store_is_one_error_line(cli, tmp_path):
    r = cli("stats", tmp_path / "nowhere")
    assert r.code == 4
    assert "no store" in r.error_line()
    r = cli("stats", tmp_path / "nowhere", "--json")
    assert r.code == 4 and r.json()["ok"] is False


def test_stats_of_an_empty_store(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("stats", tmp_path / "empty", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["total_bytes"] == 0 and doc["backups"] == [] and doc["dedup_ratio"] is None
    text = cli("stats", tmp_path / "empty", "-c", "articles")
    assert text.code == 0 and "no backups of collection 'articles'" in text.stdout
