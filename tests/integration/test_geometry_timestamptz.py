"""GEOMETRY and TIMESTAMPTZ fields (issue 21), end to end through the CLI against real engines: a Milvus Lite 3.2.2
collection with a dense vector, both types, nullable and default fields backs up and restores identical (schema,
indexes, every row), on the columnar and the row path, incrementally and in an encrypted store; onto the Milvus 2.3
server (which has neither type) and into Qdrant local mode the restore does what its plan says, never a raw server
error. What Lite does with the values (measured, docs/COMPATIBILITY.md): a GEOMETRY is kept as the WKT text given,
a TIMESTAMPTZ as an instant shown in UTC (``...Z``, the fraction only when it is not zero)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from tests.conftest import Engine
from tests.datasets import WKT, build_geo_time, build_vector_only, index_summary, read_keys, read_rows
from tests.integration.common import STANDALONE_URL

N = 240
PASSPHRASE = "geometry and time"


def build(client: Any, name: str, n: int = N) -> None:
    build_geo_time(client, name, n)


def fields_of(client: Any, name: str) -> list[dict[str, Any]]:
    """The fields as describe_collection reports them, without the ids the server assigns."""
    return [{k: str(v) for k, v in f.items() if k != "field_id"} for f in client.describe_collection(name)["fields"]]


def backup(cli: Any, url: str, store: Any, name: str, *extra: Any) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--json", *extra)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def assert_identical(client: Any, name: str, copy: str) -> None:
    rows = read_rows(client, copy)
    assert rows == read_rows(client, name) and len(rows) == N
    for p in ("_default", "p1"):
        assert read_keys(client, copy, p) == read_keys(client, name, p)
    assert fields_of(client, copy) == fields_of(client, name)
    assert index_summary(client, copy) == index_summary(client, name)


def test_lite_backs_up_and_restores_geometry_and_timestamptz_identical(cli, lite: Engine, store_dir: Path):
    name = lite.new_name("geo")
    build(lite.client, name)
    source = read_rows(lite.client, name)
    assert source[1]["g"] == WKT[1] and source[7]["t"] == "2024-03-03T23:36:07.123456Z"  # as Lite keeps them
    assert source[0]["g"] is None and source[0]["g_def"] == "POINT (0 0)" and source[0]["t_def"] == (
        "2024-12-31T16:00:00.000001Z")

    first = backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, first["backup_id"], "--json").json()
    assert shown["format_version"] == 3  # vecbackup 0.3 refuses it as a newer format
    fields = {f["name"]: f for f in shown["collection"]["fields"]}
    assert fields["g"] == {"name": "g", "type": "GEOMETRY", "nullable": True}
    assert fields["g_def"] == {"name": "g_def", "type": "GEOMETRY", "default_value": "POINT (0 0)"}
    assert fields["t_def"] == {"name": "t_def", "type": "TIMESTAMPTZ", "default_value": 1735660800000001,
                               "nullable": True}  # the instant, in microseconds, as Lite reports it
    assert not any("row by row" in note for note in shown["notes"])  # the columnar read took them

    r = cli("restore", store_dir, lite.url, "--backup", first["backup_id"], "--as", f"{name}_copy", "--json")
    assert r.code == 0, r.stderr
    assert not any("row by row" in note for note in r.json()["notes"])  # and the columnar insert
    assert_identical(lite.client, name, f"{name}_copy")

    # the row path (pymilvus's rows both ways) stores the same chunks and restores the same rows
    rows_url = f"{lite.url}?columnar=off"
    second = backup(cli, rows_url, store_dir, name, "--full")
    objects = [cli("show", store_dir, b["backup_id"], "--json").json()["objects"] for b in (first, second)]
    assert sorted(o["sha256"] for o in objects[0]) == sorted(o["sha256"] for o in objects[1])
    r = cli("restore", store_dir, rows_url, "--backup", second["backup_id"], "--as", f"{name}_rows")
    assert r.code == 0, r.stderr
    assert_identical(lite.client, name, f"{name}_rows")

    r = cli("verify", store_dir, second["backup_id"], "--read-data")
    assert r.code == 0, r.stderr
    r = cli("drill", store_dir, lite.url, "-c", name, "--json")
    assert r.code == 0, r.stdout + r.stderr


def test_incremental_backup_after_a_change_and_an_encrypted_store(cli, lite: Engine, tmp_path: Path):
    name = lite.new_name("geoinc")
    build(lite.client, name)
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    store = tmp_path / "enc"
    r = cli("init", store, "--encrypt", "--passphrase-file", pw)
    assert r.code == 0, r.stderr
    first = backup(cli, lite.url, store, name, "--passphrase-file", pw)
    assert first["rows"] == N and first["rows_reused"] == 0

    # one value of each new type changed, a row deleted, one inserted
    c = lite.client
    row5 = {k: v for k, v in c.get(name, ids=[5], partition_names=["p1"])[0].items()}
    row5["g"] = "POINT (5 5)"
    c.upsert(name, [row5], partition_name="p1")
    row8 = {k: v for k, v in c.get(name, ids=[8])[0].items()}
    row8["t"] = "2030-01-01T00:00:00.000001Z"
    c.upsert(name, [row8])
    c.delete(name, ids=[10])
    c.insert(name, [{"id": 1000, "vec": [0.5] * 8, "g": "POINT (9 9)", "t": "2031-01-01T00:00:00+02:00"}])
    c.flush(name)
    changed = read_rows(c, name)

    second = backup(cli, lite.url, store, name, "--passphrase-file", pw)
    assert second["base"] == first["backup_id"]
    assert second["rows"] == N and second["rows_reused"] == N - 3  # every row but the 2 changed and 1 deleted

    r = cli("restore", store, lite.url, "--backup", second["backup_id"], "--as", f"{name}_copy",
            "--passphrase-file", pw)
    assert r.code == 0, r.stderr
    assert read_rows(c, f"{name}_copy") == changed
    assert fields_of(c, f"{name}_copy") == fields_of(c, name)
    assert cli("verify", store, "--passphrase-file", pw, "--read-data").code == 0


def test_onto_the_2_3_server_the_plan_refuses_naming_the_fields(cli, lite: Engine, standalone, store_dir: Path):
    from pymilvus import MilvusClient

    name = lite.new_name("geo23")
    build(lite.client, name, n=30)
    b = backup(cli, lite.url, store_dir, name)
    dst = MilvusClient(uri=standalone.uri)
    for extra in (["--dry-run"], []):
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", b["backup_id"], *extra)
        assert r.code == 9, r.stdout + r.stderr
        line = r.error_line() if not extra else r.stdout + r.stderr
        assert "field 'g': GEOMETRY needs Milvus 2.6.4 or newer" in line
        assert "field 't': TIMESTAMPTZ needs Milvus 2.6.6 or newer" in line
        assert "field 'g_def'" in line and "field 't_def'" in line
    # nothing created, not even a staging collection (other tests' processes may use the server meanwhile)
    assert not [c for c in dst.list_collections() if c.startswith(name)]
    dst.close()


def test_into_qdrant_local_as_the_plan_says(cli, lite: Engine, store_dir: Path, memory_tmp_path: Path):
    name = lite.new_name("geoq")
    build(lite.client, name, n=60)
    source = read_rows(lite.client, name)
    b = backup(cli, lite.url, store_dir, name)
    qpath = memory_tmp_path / "qdrant"
    qurl = f"qdrant-local://{qpath}"
    dry = cli("restore", store_dir, qurl, "--backup", b["backup_id"], "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    texts = {d["source"]: d["text"] for d in dry.json()["decisions"]}
    assert "GEOMETRY field 'g' -> payload key 'g': its WKT text as the source returned it" in texts["g"]
    assert "TIMESTAMPTZ field 't' -> payload key 't': RFC 3339 text in UTC" in texts["t"]
    assert "datetime payload index" in texts["t"] and "a datetime payload index" in texts["t"]
    r = cli("restore", store_dir, qurl, "--backup", b["backup_id"], "--json")
    assert r.code == 0, r.stderr
    client = QdrantClient(path=str(qpath))
    try:
        points, offset = [], None
        while True:
            page, offset = client.scroll(name, limit=100, offset=offset, with_payload=True)
            points.extend(page)
            if offset is None:
                break
        assert len(points) == len(source)
        for p in points:
            row = source[int(p.id)]
            for k in ("g", "g_def", "t", "t_def"):  # WKT as Lite holds it; the instant as Lite shows it (UTC)
                assert p.payload[k] == row[k], (p.id, k)
    finally:
        client.close()


@pytest.mark.parametrize("vtype", ["FLOAT16_VECTOR", "BINARY_VECTOR"])
def test_a_vector_type_milvus_lite_lacks_is_refused_before_anything_is_created(cli, lite: Engine, standalone,
                                                                               store_dir: Path, vtype: str):
    from pymilvus import MilvusClient

    src = MilvusClient(uri=standalone.uri)
    name = lite.new_name(vtype.lower())
    build_vector_only(src, name, vtype, n=20)
    b = backup(cli, STANDALONE_URL, store_dir, name)
    before = lite.client.list_collections()
    r = cli("restore", store_dir, lite.url, "--backup", b["backup_id"])
    assert r.code == 9, r.stderr
    assert f"field 'v': Milvus Lite has no {vtype}" in r.error_line()
    assert lite.client.list_collections() == before
    src.drop_collection(name)
    src.close()


@pytest.mark.parametrize("element", ["GEOMETRY", "TIMESTAMPTZ"])
def test_an_array_of_geometry_or_timestamptz_is_refused_at_backup(cli, lite: Engine, store_dir: Path, element: str):
    """Milvus Lite creates such a field (pymilvus cannot insert into it); the backup refuses it, naming it, rather than
    writing a chunk it could not restore."""
    from pymilvus import DataType, MilvusClient

    name = lite.new_name("arr")
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("a", DataType.ARRAY, element_type=getattr(DataType, element), max_capacity=4)
    lite.client.create_collection(name, schema=s)
    r = cli("backup", lite.url, store_dir, "-c", name)
    assert r.code == 9
    assert f"field 'a': ARRAY of {element} is not supported yet" in r.error_line()
