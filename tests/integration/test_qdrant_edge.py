"""Qdrant Edge (qdrant-edge-py: Qdrant's own engine, in-process) as a source and a target, against the real engine:
a shard of every vector kind it holds round-trips through a store and through Milvus Lite, compared with what Edge
itself returns and reports after reopening the restored shard from disk; bad input is one line and a documented
exit code, with nothing created.

Edge locks a shard (its write-ahead log) per open handle, in this process too, and the ``cli`` fixture runs here: the
test's own handles are closed before every CLI call.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

from tests.conftest import Engine
from tests.integration.edge_shards import DIM, N, build, search, state
from vecbackup.ops.mapping import PK_NAMESPACE


def _backup(cli: Any, url: str, store: Path, name: str) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--batch-size", "97", "--json")
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def test_edge_store_edge_is_identical_and_incremental(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "device" / "shard"
    src.parent.mkdir()
    build(src)
    points, config, indexes = state(src)
    assert len(points) == N

    first = _backup(cli, f"qdrant-edge://{src}", store_dir, "shard")
    assert first["rows"] == N
    again = _backup(cli, f"qdrant-edge://{src}", store_dir, "shard")  # nothing changed: nothing uploaded
    assert (again["rows_reused"], again["objects_new"], again["bytes_uploaded"]) == (N, 0, 0), again.get("notes")

    shown = cli("show", store_dir, first["backup_id"], "--json")
    assert shown.code == 0, shown.stderr
    doc = shown.json()
    assert doc["source"]["engine"] == "qdrant-edge"
    recorded = doc["collection"]["extra"]["qdrant"]
    assert recorded["params"]["vectors"]["half"]["datatype"] == "float16"
    assert recorded["params"]["sparse_vectors"]["sp"] == {"modifier": "idf"}
    assert recorded["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
    assert recorded["optimizer_config"] == {"deleted_threshold": 0.3, "indexing_threshold": 10}

    dst = memory_tmp_path / "restored"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", again["backup_id"], "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == N
    assert sorted(p.name for p in dst.iterdir()) == ["shard"]  # the staging folder took the target's name
    got_points, got_config, got_indexes = state(dst / "shard")
    assert got_config == config
    assert got_indexes == indexes
    assert sorted(got_points) == sorted(points)
    for pid, (vec, payload) in points.items():
        got_vec, got_payload = got_points[pid]
        assert got_payload == payload, pid
        assert set(got_vec) == set(vec), pid
        for name, value in vec.items():
            if name == "dense":  # Cosine: Edge normalises what it is given, a unit vector again (to the last bit)
                np.testing.assert_allclose(got_vec[name], value, rtol=0, atol=1e-7)
            else:
                assert got_vec[name] == value, (pid, name)

    rng = np.random.default_rng(11)
    queries = rng.normal(size=(10, DIM))
    assert search(dst / "shard", queries, "dense", exact=True) == search(src, queries, "dense", exact=True)


def test_edge_to_milvus_lite_and_back(cli: Any, lite: Engine, store_dir: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "device" / "docs"
    src.parent.mkdir()
    build(src, multivector=False)  # Milvus has no multivector
    points, config, _ = state(src)
    first = _backup(cli, f"qdrant-edge://{src.parent}", store_dir, "docs")

    r = cli("restore", store_dir, lite.url, "--backup", first["backup_id"], "--json")
    assert r.code == 0, r.stderr
    desc = lite.client.describe_collection("docs")
    types = {f["name"]: f["type"] for f in desc["fields"]}
    assert types == {"id": DataType.VARCHAR, "dense": DataType.FLOAT_VECTOR, "half": DataType.FLOAT_VECTOR,
                     "u8": DataType.FLOAT_VECTOR, "sp": DataType.SPARSE_FLOAT_VECTOR}

    second = _backup(cli, lite.url, store_dir, "docs")
    dst = memory_tmp_path / "back"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", second["backup_id"], "--json")
    assert r.code == 0, r.stderr
    got_points, got_config, got_indexes = state(dst / "docs")
    # Milvus held the point ids as VARCHAR keys, which come back as uuid5 ids (docs/FORMAT.md, "Restoring across
    # engines")
    assert sorted(got_points) == sorted(str(uuid.uuid5(PK_NAMESPACE, pid)) for pid in points)
    for pid, (vec, payload) in points.items():
        got_vec, got_payload = got_points[str(uuid.uuid5(PK_NAMESPACE, pid))]
        assert got_payload == {**payload, "id": pid}, pid  # and the key they had, in the payload
        np.testing.assert_allclose(got_vec["dense"], vec["dense"], rtol=0, atol=1e-6)
        assert got_vec["half"] == vec["half"] and got_vec["u8"] == vec["u8"], pid  # both exact in float32
        sp, got_sp = vec["sp"], got_vec["sp"]
        assert dict(zip(got_sp["indices"], got_sp["values"], strict=True)) == dict(
            zip(sp["indices"], sp["values"], strict=True)), pid
    # what both hold: each vector's size and distance (Milvus keeps neither datatypes nor quantization)
    assert {k: (v["size"], v["distance"]) for k, v in got_config["vectors"].items()} == {
        k: (v["size"], v["distance"]) for k, v in config["vectors"].items()}
    assert set(got_config["sparse_vectors"]) == {"sp"}
    assert "tenant" not in got_indexes  # Milvus keeps no index on a key of its dynamic field


# -- bad input ---------------------------------------------------------------------------------------


def test_a_folder_that_is_not_a_shard(cli: Any, store_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "edge"
    (root / "plain").mkdir(parents=True)
    (root / "plain" / "notes.txt").write_text("mine")
    r = cli("backup", f"qdrant-edge://{root}", store_dir, "-c", "plain")
    assert r.code == 4
    assert "is not a Qdrant Edge shard (it has no edge_config.json)" in r.error_line()
    assert sorted(p.name for p in (root / "plain").iterdir()) == ["notes.txt"]  # Edge was never let near it
    r = cli("backup", f"qdrant-edge://{root / 'plain' / 'notes.txt'}", store_dir, "--all")
    assert r.code == 4 and "is not a folder" in r.error_line()
    r = cli("backup", "qdrant-edge://relative/path", store_dir, "--all")
    assert r.code == 2 and "absolute folder path" in r.error_line()


def test_a_shard_another_process_holds(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "busy"
    build(src, multivector=False, uint8=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, qdrant_edge as q\ns = q.EdgeShard.load(sys.argv[1])\nprint('open', "
         "flush=True)\nsys.stdin.read()", str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        r = cli("backup", f"qdrant-edge://{src}", store_dir, "--all")
        assert r.code == 6
        assert f"Qdrant Edge shard {src} is open in another process" in r.error_line()
    finally:
        holder.communicate("")
    assert _backup(cli, f"qdrant-edge://{src}", store_dir, "busy")["rows"] == N  # once it has let go


def test_vectors_edge_cannot_hold_are_refused_before_anything_is_created(cli: Any, standalone: Any,
                                                                          store_dir: Path, tmp_path: Path) -> None:
    client = MilvusClient(uri=standalone.uri)
    name = f"vbt_edge_bin_{uuid.uuid4().hex[:8]}"
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=16)
    idx = client.prepare_index_params()
    idx.add_index("bits", index_type="BIN_FLAT", metric_type="HAMMING")
    try:
        client.create_collection(name, schema=s, index_params=idx)
        client.insert(name, [{"pk": i, "bits": bytes([i, 255 - i])} for i in range(10)])
        backup_id = _backup(cli, "milvus://127.0.0.1:19530", store_dir, name)["backup_id"]
    finally:
        client.drop_collection(name)
        client.close()
    target = tmp_path / "edge"
    r = cli("restore", store_dir, f"qdrant-edge://{target}", "--backup", backup_id)
    assert r.code == 9
    assert "field 'bits'" in r.error_line()
    assert not target.exists() or not any(target.iterdir())


def test_a_restore_that_fails_midway_leaves_nothing(cli: Any, lite: Engine, store_dir: Path, tmp_path: Path) -> None:
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    idx = lite.client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    lite.client.create_collection("neg", schema=s, index_params=idx)
    lite.client.insert("neg", [{"pk": i, "v": [float(i)] * 4} for i in range(-5, 300)])  # a negative id: no point id
    backup_id = _backup(cli, lite.url, store_dir, "neg")["backup_id"]
    target = tmp_path / "edge"
    r = cli("restore", store_dir, f"qdrant-edge://{target}", "--backup", backup_id)
    assert r.code != 0
    assert "negative" in r.error_line()
    assert not target.exists() or not any(target.iterdir())  # the staging shard is gone


def test_a_url_naming_a_shard_restores_only_that_shard(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "a"
    build(src, multivector=False, uint8=False)
    backup_id = _backup(cli, f"qdrant-edge://{src}", store_dir, "a")["backup_id"]
    other = memory_tmp_path / "b"
    build(other, multivector=False, uint8=False)
    r = cli("restore", store_dir, f"qdrant-edge://{other}", "--backup", backup_id)
    assert r.code == 10 and "names the shard 'b'" in r.error_line()
    r = cli("restore", store_dir, f"qdrant-edge://{src}", "--backup", backup_id)
    assert r.code == 5
    r = cli("restore", store_dir, f"qdrant-edge://{other}", "--backup", backup_id, "--as", "b", "--drop-existing")
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in memory_tmp_path.iterdir()) == ["a", "b"]  # no staging or old folder left
    assert state(other)[0] == state(src)[0]
