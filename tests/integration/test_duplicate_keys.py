"""Keys held by more than one partition (issue 20, part 0): an upsert without a partition name writes the row into
``_default`` and leaves the older row of its key in its own partition. The backup holds both copies and records the
keys; verify --read-data finds them in the data; a restore puts every copy back in its partition on Milvus Lite and
on the 2.3 server (compared row for row, partition by partition, with the source), and into Qdrant (one point per
id) only the copy --duplicate-keys names, refusing before anything is created without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

import vecbackup
from tests.datasets import read_rows
from tests.integration.common import STANDALONE_URL
from vecbackup.format.duplicates import DuplicateGroup
from vecbackup.format.manifest import Manifest
from vecbackup.stores import open_store

N = 300  # keys 0..149 in p1, 150..299 in _default
UPSERTED = range(N // 2 - 20, N // 2 + 20)  # 130..169 upserted without a partition name: 130..149 are in p1
HELD_TWICE = list(range(N // 2 - 20, N // 2))
PARTITIONS = ("_default", "p1")


def _key(i: int, strings: bool) -> Any:
    return f"k{i:05d}" if strings else i


def build_upserted(client: Any, name: str, strings: bool = False) -> None:
    """Two partitions, flushed, then 40 rows upserted without a partition name, 20 of whose keys are in p1."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False)
    if strings:
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=16)
    else:
        schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("t", DataType.VARCHAR, max_length=40)
    schema.add_field("n", DataType.INT64)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.create_partition(name, "p1")
    rng = np.random.default_rng(5)

    def row(i: int, text: str) -> dict[str, Any]:
        return {"id": _key(i, strings), "vec": rng.normal(size=4).astype(np.float32).tolist(), "t": text, "n": i}

    client.insert(name, [row(i, f"p1 {i}") for i in range(N // 2)], partition_name="p1")
    client.insert(name, [row(i, f"default {i}") for i in range(N // 2, N)])
    client.flush(name)  # the older copies are sealed: Milvus Lite keeps them beside the upserted ones
    client.upsert(name, [row(i, f"upserted {i}") for i in UPSERTED])
    client.flush(name)


def per_partition(client: Any, name: str) -> dict[str, dict[Any, Any]]:
    return {p: read_rows(client, name, p) for p in PARTITIONS}


def _manifest(store: Path, backup_id: str) -> Manifest:
    return vecbackup.show(open_store(f"file://{store}"), backup_id)


def _backup(cli: Any, url: str, store: Path, name: str, *extra: Any) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--batch-size", "64", "--json", *extra)
    assert r.code == 0, r.stderr
    return dict(r.json()["backups"][0])


def _check_recorded(manifest: Manifest, shown: str | None, strings: bool = False) -> None:
    d = manifest.duplicate_keys
    assert d is not None
    assert d.keys == 20 and d.copies == 20
    assert d.groups == (DuplicateGroup(PARTITIONS, 20, shown),)
    assert [x.key for x in d.listed] == [_key(i, strings) for i in HELD_TWICE]
    assert all(x.partitions == PARTITIONS and x.shown == shown for x in d.listed)
    assert manifest.rows == N + 20 and manifest.partition_rows == {"_default": N // 2 + 20, "p1": N // 2}
    assert not any("changed while it was backed up" in n for n in manifest.notes), manifest.notes


@pytest.mark.parametrize("kind", ["lite", "standalone"])
def test_upserts_across_partitions_back_up_verify_and_restore_as_the_source_held_them(cli, kind, request, tmp_path):
    from tests.conftest import open_engine

    engine = open_engine(kind, request, tmp_path)
    store = tmp_path / "store"
    try:
        name = engine.new_name("ups")
        build_upserted(engine.client, name)
        source = per_partition(engine.client, name)
        assert len(source["p1"]) == N // 2 and len(source["_default"]) == N // 2 + 20
        assert {k for k in source["p1"] if k in source["_default"]} == set(HELD_TWICE)
        view = read_rows(engine.client, name)  # collection-level: one copy of each key

        backup = _backup(cli, engine.url, store, name)
        assert backup["rows"] == N + 20 and backup["duplicate_keys"] == 20
        manifest = _manifest(store, backup["backup_id"])
        # Milvus Lite's collection-level reads show the upserted copy; a 2.3 server's change from read to read
        _check_recorded(manifest, "_default" if engine.lite else None)
        assert any("20 keys held by more than one partition" in n for n in manifest.notes)

        r = cli("verify", store, backup["backup_id"], "--read-data", "--json")
        assert r.code == 0, r.stderr
        assert r.json()["backups"][0]["duplicate_keys"] == {"recorded": 20, "found": 20}

        dry = cli("restore", store, engine.url, "--backup", backup["backup_id"], "--as", f"{name}_c", "--dry-run",
                  "--json")
        assert dry.code == 0, dry.stderr
        assert any("20 keys held by more than one partition" in n for n in dry.json()["notes"])

        r = cli("restore", store, engine.url, "--backup", backup["backup_id"], "--as", f"{name}_c", "--json")
        assert r.code == 0, r.stderr
        assert r.json()["rows"] == (N if engine.lite else N + 20)  # Lite's count(*) counts each key once
        assert per_partition(engine.client, f"{name}_c") == source  # every copy, in its partition
        if engine.lite:
            assert read_rows(engine.client, f"{name}_c") == view  # and the same copy in the collection's view
            assert all(view[k]["t"] == f"upserted {k}" for k in HELD_TWICE)

        # a drill restores it, counts it the way the target does and finds every sampled row in its partition
        r = cli("drill", store, engine.url, "--backup", backup["backup_id"], "--sample", "200", "--queries", "5",
                "--json")
        assert r.code == 0, r.stdout + r.stderr
        report = r.json()
        assert report["ok"], report["failures"]
        assert any("20 keys held by more than one partition" in n for n in report["notes"])
        row_count = next(c for c in report["checks"] if c["name"] == "row_count")
        assert row_count["details"]["duplicate_keys"] == 20
    finally:
        engine.client.close()


def test_string_keys_are_confirmed_and_restored(cli, lite, tmp_path):
    """VARCHAR keys are found by an 8-byte hash and confirmed against the keys themselves."""
    store = tmp_path / "store"
    build_upserted(lite.client, "strs", strings=True)
    source = per_partition(lite.client, "strs")
    backup = _backup(cli, lite.url, store, "strs")
    _check_recorded(_manifest(store, backup["backup_id"]), "_default", strings=True)
    r = cli("verify", store, backup["backup_id"], "--read-data", "--json")
    assert r.code == 0 and r.json()["backups"][0]["duplicate_keys"] == {"recorded": 20, "found": 20}
    r = cli("restore", store, lite.url, "--backup", backup["backup_id"], "--as", "strs_c")
    assert r.code == 0, r.stderr
    assert per_partition(lite.client, "strs_c") == source


def test_sharded_and_parallel_backups_record_them(cli, lite, tmp_path):
    store = tmp_path / "store"
    build_upserted(lite.client, "ups")
    source = per_partition(lite.client, "ups")
    for i in range(2):
        r = cli("backup", lite.url, store, "-c", "ups", "--batch-size", "64", "--shard", f"{i}/2", "--run", "night",
                "--json", *(["--commit"] if i else []))
        assert r.code == 0, r.stderr
    committed = r.json()["backups"][0]["commit"]
    assert committed["committed"], committed
    sharded = _manifest(store, committed["backup_id"])
    _check_recorded(sharded, "_default")
    parallel = _manifest(store, _backup(cli, lite.url, store, "ups", "--parallel", "2")["backup_id"])
    _check_recorded(parallel, "_default")
    r = cli("restore", store, lite.url, "--backup", sharded.backup_id, "--as", "ups_c")
    assert r.code == 0, r.stderr
    assert per_partition(lite.client, "ups_c") == source


def _points(folder: Path, name: str) -> dict[Any, dict[str, Any]]:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(folder))
    try:
        points, offset = [], None
        while True:
            page, offset = client.scroll(name, limit=256, offset=offset, with_payload=True)
            points.extend(page)
            if offset is None:
                break
    finally:
        client.close()
    return {int(p.payload["id"]) if "id" in p.payload else int(p.id): dict(p.payload) for p in points}


def test_qdrant_holds_one_point_per_key_only_as_the_plan_says(cli, lite, tmp_path):
    store = tmp_path / "store"
    build_upserted(lite.client, "ups")
    source = per_partition(lite.client, "ups")
    backup = _backup(cli, lite.url, store, "ups")["backup_id"]
    folder = tmp_path / "qdrant"
    target = f"qdrant-local://{folder}"

    # refused before anything is created: by the dry run and by the restore, naming the option
    dry = cli("restore", store, target, "--backup", backup, "--dry-run", "--json")
    assert dry.code == 9
    problems = dry.json()["problems"]
    assert any("holds one point per key" in p and "--duplicate-keys" in p for p in problems), problems
    r = cli("restore", store, target, "--backup", backup)
    assert r.code == 9
    line = r.error_line()
    assert "20 keys held by more than one partition" in line and "--duplicate-keys shown" in line
    assert "20 rows of the backup cannot be restored" in line
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(folder))
    assert client.get_collections().collections == []
    client.close()

    plan = cli("restore", store, target, "--backup", backup, "--duplicate-keys", "shown", "--dry-run", "--json")
    assert plan.code == 0, plan.stderr
    assert any("20 rows of the backup are not" in n for n in plan.json()["notes"])

    def expected(kept: str) -> dict[int, tuple[str, str]]:
        out = {k: (p, row["t"]) for p in PARTITIONS if p != kept for k, row in source[p].items()}
        out.update({k: (kept, row["t"]) for k, row in source[kept].items()})
        return out

    for choice, kept, name in (("shown", "_default", "shown"), ("partition:p1,_default", "p1", "p1")):
        r = cli("restore", store, target, "--backup", backup, "--as", name, "--duplicate-keys", choice, "--json")
        assert r.code == 0, r.stderr
        assert r.json()["rows"] == N
        points = _points(folder, name)
        assert {k: (p["_partition"], p["t"]) for k, p in points.items()} == expected(kept)
        assert all(points[k]["t"] == (f"upserted {k}" if kept == "_default" else f"p1 {k}") for k in HELD_TWICE)


def test_several_workers_and_a_rerun_keep_every_copy_standalone(cli, standalone, tmp_path):
    """A re-run worker deletes what it inserted of its objects before inserting them again: in their partition
    only, so the other copy of a key, inserted by another worker, stays."""
    from pymilvus import MilvusClient

    from vecbackup.format.shard import Shard
    from vecbackup.ops.fetch import fetch_chunk
    from vecbackup.ops.restore_shard import assigned, run_names

    url = STANDALONE_URL
    client = MilvusClient(standalone.uri)
    store = tmp_path / "store"
    try:
        build_upserted(client, "ups_workers")
        source = per_partition(client, "ups_workers")
        backup = _backup(cli, url, store, "ups_workers")["backup_id"]
        manifest = _manifest(store, backup)
        s = open_store(f"file://{store}")
        # the two copies of a key held twice are inserted by different workers
        owner = {}
        for i in range(2):
            for obj in assigned(manifest.objects, Shard(i, 2)):
                for k in fetch_chunk(s, obj).columns["id"].values.tolist():
                    owner.setdefault(k, set()).add((obj.partition, i))
        assert any(len({w for _, w in owner[k]}) == 2 for k in HELD_TWICE)

        def worker(i: int, *extra: str) -> None:
            r = cli("restore", store, url, "--backup", backup, "--as", "ups_w", "--shard", f"{i}/2", "--run", "w",
                    *extra)
            assert r.code == 0, r.stderr

        worker(1)
        worker(0)
        names = run_names("ups_w", "w", backup)
        client.drop_alias(names.done(Shard(0, 2)))  # worker 0 runs again: it deletes its keys, then inserts
        worker(0, "--commit")
        assert per_partition(client, "ups_w") == source
    finally:
        client.close()


def test_several_workers_are_refused_where_the_order_matters_lite(cli, lite, tmp_path):
    store = tmp_path / "store"
    build_upserted(lite.client, "ups")
    backup = _backup(cli, lite.url, store, "ups")["backup_id"]
    r = cli("restore", store, lite.url, "--backup", backup, "--as", "ups_w", "--shard", "0/2", "--run", "w")
    assert r.code == 9
    assert "restore with one process" in r.error_line()
    assert not lite.client.has_collection("ups_w") and not any("_vbrun_" in c for c in lite.client.list_collections())


def test_verify_finds_a_record_that_is_not_the_data_and_a_backup_without_one_restores(cli, lite, tmp_path):
    store = tmp_path / "store"
    build_upserted(lite.client, "ups")
    source = per_partition(lite.client, "ups")
    backup = _backup(cli, lite.url, store, "ups")["backup_id"]
    path = next((store / "manifests").rglob(f"{backup}.json"))
    doc = orjson.loads(path.read_bytes())
    doc["duplicate_keys"]["keys"] = 19
    doc["duplicate_keys"]["groups"][0]["keys"] = 19
    doc["duplicate_keys"]["listed"] = doc["duplicate_keys"]["listed"][:19]
    path.write_bytes(orjson.dumps(doc))
    r = cli("verify", store, backup, "--read-data", "--json")
    assert r.code == 7
    result = r.json()["backups"][0]
    assert result["duplicate_keys"] == {"recorded": 19, "found": 20}
    assert "the manifest records 19 keys held by more than one partition" in result["problems"][0]["message"]

    # a manifest of an earlier vecbackup records nothing: verify reports what the data holds, and passes
    del doc["duplicate_keys"]
    path.write_bytes(orjson.dumps(doc))
    r = cli("verify", store, backup, "--read-data", "--json")
    assert r.code == 0, r.stdout
    assert r.json()["backups"][0]["duplicate_keys"] == {"recorded": None, "found": 20}
    # ... and restores onto Milvus Lite (partitions one after another, flushed in between; counted per partition)
    r = cli("restore", store, lite.url, "--backup", backup, "--as", "ups_c", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == N
    assert any("every partition holds its rows: 20 of them are copies of keys held by more than one partition" in n
               for n in r.json()["notes"]), r.json()["notes"]
    assert per_partition(lite.client, "ups_c") == source
    r = cli("drill", store, lite.url, "--backup", backup, "--sample", "200", "--queries", "5", "--json")
    assert r.code == 0 and r.json()["ok"], r.stdout


def test_across_milvus_engines_every_copy_comes_back_standalone(cli, lite, standalone, tmp_path):
    """A Milvus Lite backup restored onto the 2.3 server and a 2.3 backup restored into Milvus Lite: every copy in
    its partition either way (the 2.3 backup does not know which copy was shown: Lite shows the last partition's)."""
    from pymilvus import MilvusClient

    server_url = STANDALONE_URL
    server = MilvusClient(standalone.uri)
    store = tmp_path / "store"
    try:
        build_upserted(lite.client, "from_lite")
        build_upserted(server, "from_server")
        lite_rows, server_rows = per_partition(lite.client, "from_lite"), per_partition(server, "from_server")
        lite_backup = _backup(cli, lite.url, store, "from_lite")["backup_id"]
        server_backup = _backup(cli, server_url, store, "from_server")["backup_id"]
        r = cli("restore", store, server_url, "--backup", lite_backup, "--json")
        assert r.code == 0, r.stderr
        assert r.json()["rows"] == N + 20
        assert per_partition(server, "from_lite") == lite_rows
        r = cli("restore", store, lite.url, "--backup", server_backup, "--json")
        assert r.code == 0, r.stderr
        notes = r.json()["notes"]
        assert any("the backup does not know which copy the source showed" in n for n in notes), notes
        assert r.json()["rows"] == N
        assert per_partition(lite.client, "from_server") == server_rows
        view = read_rows(lite.client, "from_server")
        assert all(view[k]["t"] == f"p1 {k}" for k in HELD_TWICE)  # p1, restored last, is the copy Lite shows
    finally:
        server.close()


def test_through_the_servers_import_every_copy_comes_back_standalone(cli, standalone, tmp_path):
    """restore --bulk-import-via: the server's import tasks, partition by partition, and the count of every copy."""
    from pymilvus import MilvusClient

    url = STANDALONE_URL
    client = MilvusClient(standalone.uri)
    store = tmp_path / "store"
    try:
        build_upserted(client, "ups_bulk")
        source = per_partition(client, "ups_bulk")
        backup = _backup(cli, url, store, "ups_bulk")["backup_id"]
        r = cli("restore", store, url, "--backup", backup, "--as", "ups_bulk_c", "--bulk-import-via",
                tmp_path / "stage", "--json")
        assert r.code == 0, r.stderr
        assert r.json()["rows"] == N + 20 and r.json()["import_tasks"] >= 2
        assert per_partition(client, "ups_bulk_c") == source
    finally:
        client.close()
