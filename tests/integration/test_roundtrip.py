"""Back up and restore through the CLI against real Milvus engines; every row, field, partition and
index must come back, and searches on the restored copy must agree with the source."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ENGINE_KINDS
from tests.datasets import DIM, build_rich, build_vector_only, index_summary, read_keys, read_rows, search_ids


def _backup(cli, engine, store, name):
    r = cli("backup", engine.url, store, "-c", name, "--batch-size", "97", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] and len(doc["backups"]) == 1
    return doc["backups"][0]


def _restore(cli, store, engine, backup_id, new_name, *extra):
    r = cli("restore", store, engine.url, "--backup", backup_id, "--as", new_name, "--json", *extra)
    assert r.code == 0, r.stderr
    return r.json()


def _assert_same_rows(engine, src, dst, partitions):
    a, b = read_rows(engine.client, src), read_rows(engine.client, dst)
    assert len(a) == len(b) > 0
    assert a.keys() == b.keys()
    for pk, row in a.items():
        assert b[pk] == row, f"row {pk} differs"
    for p in partitions:
        assert read_keys(engine.client, src, p) == read_keys(engine.client, dst, p), p


def test_rich_collection_round_trip(cli, engine, store_dir):
    name = engine.new_name("rich")
    built = build_rich(engine.client, name, engine.kind)
    engine.client.create_alias(name, f"{name}_alias")
    backup = _backup(cli, engine, store_dir, name)
    assert backup["rows"] == built.rows
    assert backup["objects"] >= built.rows // 97

    copy = engine.new_name("copy")
    restored = _restore(cli, store_dir, engine, backup["backup_id"], copy)
    assert restored["rows"] == built.rows

    _assert_same_rows(engine, name, copy, built.partitions)
    assert sorted(engine.client.list_partitions(copy)) == sorted(built.partitions)
    src_desc, dst_desc = engine.client.describe_collection(name), engine.client.describe_collection(copy)
    # a server that cannot remove a property (2.3) keeps the restore's cleared lease as an empty one (FORMAT.md)
    assert dst_desc["properties"].pop("vecbackup.lease", "") == ""
    strip = ("collection_name", "collection_id", "created_timestamp", "aliases", "update_timestamp")
    assert {k: v for k, v in src_desc.items() if k not in strip} == \
        {k: v for k, v in dst_desc.items() if k not in strip}
    # index types, metrics and (where the engine reports them) parameters are identical
    src_idx, dst_idx = index_summary(engine.client, name), index_summary(engine.client, copy)
    assert src_idx == dst_idx
    if not engine.lite:
        assert src_idx["vec"]["M"] == "16" and src_idx["vec"]["efConstruction"] == "120"

    # top-10 under the rebuilt HNSW: recall of the restored copy against the source
    rng = np.random.default_rng(11)
    queries = rng.normal(size=(20, DIM)).astype(np.float32).tolist()
    src_hits = search_ids(engine.client, name, "vec", queries, "L2", params={"ef": 64})
    dst_hits = search_ids(engine.client, copy, "vec", queries, "L2", params={"ef": 64})
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(src_hits, dst_hits, strict=True)])
    assert recall >= 0.95, recall


def test_restore_under_same_name_recreates_aliases(cli, engine, store_dir):
    name = engine.new_name("alias")
    build_vector_only(engine.client, name, "FLOAT_VECTOR", n=50)
    engine.client.create_alias(name, f"{name}_a")
    backup = _backup(cli, engine, store_dir, name)
    engine.client.drop_alias(f"{name}_a")
    engine.client.drop_collection(name)
    r = cli("restore", store_dir, engine.url, "--backup", backup["backup_id"], "--json")
    assert r.code == 0, r.stderr
    assert engine.client.describe_alias(f"{name}_a")["collection_name"] == name
    assert len(read_rows(engine.client, name)) == 50


def test_exact_search_identical_after_restore(cli, engine, store_dir):
    name = engine.new_name("flat")
    build_vector_only(engine.client, name, "FLOAT_VECTOR", n=500, pk_varchar=True)
    backup = _backup(cli, engine, store_dir, name)
    copy = engine.new_name("flatcopy")
    _restore(cli, store_dir, engine, backup["backup_id"], copy)
    _assert_same_rows(engine, name, copy, ["_default"])
    rng = np.random.default_rng(5)
    queries = rng.normal(size=(25, 16)).astype(np.float32).tolist()
    assert search_ids(engine.client, name, "v", queries, "L2") == search_ids(engine.client, copy, "v", queries, "L2")


# Milvus Lite has none of these; Milvus 2.3 has float16 and binary; a modern server (MILVUS_URI) has all
BYTE_VECTOR_CASES = [(k, t) for k in ENGINE_KINDS for t in ("FLOAT16_VECTOR", "BINARY_VECTOR") if k != "lite"] + [
    (k, t) for k in ENGINE_KINDS for t in ("BFLOAT16_VECTOR", "INT8_VECTOR") if k == "remote"]


@pytest.mark.parametrize(("engine", "vtype"), BYTE_VECTOR_CASES, indirect=["engine"])
def test_byte_vector_types_round_trip(cli, engine, store_dir, vtype):
    name = engine.new_name(vtype.lower())
    built = build_vector_only(engine.client, name, vtype)
    backup = _backup(cli, engine, store_dir, name)
    copy = engine.new_name("copy")
    _restore(cli, store_dir, engine, backup["backup_id"], copy)
    _assert_same_rows(engine, name, copy, ["_default"])
    assert index_summary(engine.client, name) == index_summary(engine.client, copy)
    assert built.rows == len(read_rows(engine.client, copy))


def test_auto_id_collection(cli, engine, store_dir):
    name = engine.new_name("auto")
    build_vector_only(engine.client, name, "FLOAT_VECTOR", n=120, auto_id=True)
    backup = _backup(cli, engine, store_dir, name)
    src = read_rows(engine.client, name)
    copy = engine.new_name("autocopy")
    r = cli("restore", store_dir, engine.url, "--backup", backup["backup_id"], "--as", copy, "--json")
    if r.code == 0:  # the server keeps recorded ids
        assert read_rows(engine.client, copy) == src
    else:  # it cannot: a clear error, nothing left behind, and --new-ids works
        assert r.code == 9, r.stderr
        assert "--new-ids" in r.stderr
        assert copy not in engine.client.list_collections()
        assert not [c for c in engine.client.list_collections() if "vbrestore" in c]
        r = cli("restore", store_dir, engine.url, "--backup", backup["backup_id"], "--as", copy, "--new-ids",
                "--json")
        assert r.code == 0, r.stderr
        dst = read_rows(engine.client, copy)
        assert len(dst) == len(src)
        strip = lambda rows: sorted((r["label"], r["v"]) for r in rows.values())  # noqa: E731
        assert strip(dst) == strip(src)
        assert any("new ids" in n for n in r.json()["notes"])
