"""Issue 21's "done means": one collection of today's Milvus schema — a VARCHAR with an analyzer (with parameters)
and text match feeding a BM25 function, a dense vector, GEOMETRY and TIMESTAMPTZ fields, nullable and default
fields, an ARRAY, an INVERTED scalar index, dynamic fields and a collection property — through every path a user
takes: backed up and restored identical on Milvus Lite (schema, functions, indexes, every row, the same full-text
top 10), drilled with its BM25 check, backed up incrementally into an encrypted store, and restored onto the 2.3
server and into Qdrant local mode exactly as the dry-run plan says, never a raw server error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from tests.conftest import Engine
from tests.datasets import TIMES, WKT, index_summary, read_rows
from tests.integration.common import STANDALONE_URL
from tests.integration.test_functions import ANALYZER, BM25_PARAMS, _backup, _queries, _schema, _text, full_text

N = 900
BM25 = "sparse:" + ",".join(f"{k}={v}" for k, v in BM25_PARAMS.items())


def _row(i: int, rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, "text": _text(rng), "dense": [rng.uniform(-1, 1) for _ in range(8)],
                           "g": None if i % 5 == 0 else WKT[i % len(WKT)],
                           "t": None if i % 6 == 0 else TIMES[i % len(TIMES)],
                           "tags": None if i % 4 == 0 else [f"k{i % 3}", f"k{i % 7}"]}
    if i % 3:  # else left out: the server fills in the defaults
        row["g_def"] = WKT[(i + 1) % len(WKT)]
        row["t_def"] = TIMES[(i + 2) % len(TIMES)]
        row["n"] = None if i % 7 == 0 else i
    if i % 11 == 0:
        row["extra"] = {"i": i, "s": f"dyn{i}"}  # a dynamic field
    return row


def build(client: Any, name: str, n: int = N, seed: int = 17) -> list[dict[str, Any]]:
    """The collection, written in one insert and one flush (Milvus Lite computes BM25 statistics per segment: one
    segment on each side makes the full-text scores comparable)."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, analyzer_params=ANALYZER,
                enable_match=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("g_def", DataType.GEOMETRY, default_value="POINT (0 0)")
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("t_def", DataType.TIMESTAMPTZ, nullable=True, default_value="2025-01-01T00:00:00.000001+08:00")
    s.add_field("n", DataType.INT64, nullable=True, default_value=-1)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8, nullable=True)
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    ip.add_index("dense", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 64})
    ip.add_index("t", index_type="INVERTED")
    ip.add_index("n", index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip, properties={"collection.ttl.seconds": "31536000"})
    rng = random.Random(seed)
    rows = [_row(i, rng) for i in range(n)]
    client.insert(name, rows)
    client.flush(name)
    return rows


def _identical(client: Any, name: str, copy: str) -> None:
    """Schema (fields with their analyzer, defaults and nullability, the function), indexes and every row as the
    engine reports them after the restore."""
    assert _schema(client, copy) == _schema(client, name)
    assert index_summary(client, copy) == index_summary(client, name)
    assert read_rows(client, copy) == read_rows(client, name)


def test_todays_schema_backs_up_restores_and_drills_identical_on_lite(cli, lite: Engine, store_dir: Path):
    name = lite.new_name("today")
    rows = build(lite.client, name)
    source = read_rows(lite.client, name)
    assert len(source) == N and source[3]["g_def"] == "POINT (0 0)" and source[3]["n"] == -1  # defaults filled in
    assert source[0]["g"] is None and source[0]["tags"] is None and source[1]["n"] == 1

    b = _backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, b["backup_id"], "--json").json()
    assert shown["format_version"] == 3
    assert [f["name"] for f in shown["collection"]["functions"]] == ["text_bm25"]
    fields = {f["name"]: f for f in shown["collection"]["fields"]}
    assert fields["text"]["extra"]["enable_analyzer"] in (True, "true", "True")
    assert fields["t_def"]["default_value"] == 1735660800000001 and fields["n"]["default_value"] == -1
    assert shown["collection"]["properties"]["collection.ttl.seconds"] == "31536000"
    assert cli("verify", store_dir, b["backup_id"], "--read-data").code == 0

    copy = f"{name}_r"
    r = cli("restore", store_dir, lite.url, "-b", b["backup_id"], "--as", copy, "--index-params", BM25, "--json")
    assert r.code == 0, r.stderr
    _identical(lite.client, name, copy)
    assert lite.client.describe_collection(copy)["properties"]["collection.ttl.seconds"] == "31536000"
    queries = _queries(rows, 40)
    source_hits = full_text(lite.client, name, queries)
    assert all(source_hits) and full_text(lite.client, copy, queries) == source_hits  # keys, scores, order

    # text match (the analyzer with its stop words) and a geometry / time filter answer the same on the copy
    for expr in ("TEXT_MATCH(text, 'w3 backup')", "t > ISO '2000-01-01T00:00:00Z'", "n == -1"):
        got = [sorted(h["id"] for h in lite.client.query(c, filter=expr, output_fields=["id"], limit=N))
               for c in (name, copy)]
        assert got[0] and got[0] == got[1], expr

    report = cli("drill", store_dir, lite.url, "-b", b["backup_id"], "--seed", "4", "--json", "--source", lite.url,
                 "--index-params", BM25).json()
    assert report["ok"], report["failures"]
    text = next(c for c in report["checks"] if c["name"] == "text_search")
    assert text["status"] == "passed" and text["details"]["agreement"] == 1.0
    assert next(c for c in report["checks"] if c["name"] == "search_recall")["details"]["field"] == "dense"


def test_incremental_backups_into_an_encrypted_store(cli, lite: Engine, tmp_path: Path):
    pw = tmp_path / "pw"
    pw.write_text("today's schema, encrypted\n")
    store = tmp_path / "enc"
    assert cli("init", store, "--encrypt", "--passphrase-file", pw).code == 0
    name = lite.new_name("todayinc")
    rows = build(lite.client, name, n=600)
    first = _backup(cli, lite.url, store, name, "--passphrase-file", pw, "--batch-size", "150")
    assert first["rows_reused"] == 0

    rng = random.Random(5)
    c = lite.client
    c.upsert(name, [{**rows[2], "text": _text(rng), "g": "POINT (5 5)"},
                    {**rows[300], "t": "2030-01-01T00:00:00.000001Z", "n": None}])
    c.delete(name, ids=[7])
    c.insert(name, [_row(5000, rng)])
    c.flush(name)
    second = _backup(cli, lite.url, store, name, "--passphrase-file", pw, "--batch-size", "150")
    assert second["base"] == first["backup_id"]
    assert second["rows"] == 600 and second["rows_reused"] == 600 - 3  # the 2 changed rows and the new one are read

    copy = f"{name}_r"
    r = cli("restore", store, lite.url, "--as", copy, "--passphrase-file", pw, "--index-params", BM25)
    assert r.code == 0, r.stderr
    _identical(c, name, copy)
    assert cli("verify", store, "--passphrase-file", pw, "--read-data").code == 0
    # nothing of the rows in the store is readable without the key
    assert not any(b"POINT (5 5)" in p.read_bytes() for p in store.rglob("*") if p.is_file())


def test_onto_the_2_3_server_the_plan_names_every_field_and_function_it_lacks(cli, lite: Engine, standalone,
                                                                               store_dir: Path):
    from pymilvus import MilvusClient

    name = lite.new_name("today23")
    build(lite.client, name, n=60)
    b = _backup(cli, lite.url, store_dir, name)
    dst = MilvusClient(uri=standalone.uri)
    try:
        dry = cli("restore", store_dir, STANDALONE_URL, "-b", b["backup_id"], "--dry-run", "--json")
        assert dry.code == 9, dry.stdout + dry.stderr
        problems = " ".join(dry.json()["problems"])
        assert "BM25 function 'text_bm25'" in problems and "--drop-functions" in problems
        for extra in ([], ["--drop-functions"]):  # dropping the function still leaves the types 2.3 lacks
            r = cli("restore", store_dir, STANDALONE_URL, "-b", b["backup_id"], *extra)
            assert r.code == 9, r.stdout + r.stderr
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
            line = r.error_line()
            if extra:
                assert "field 'g': GEOMETRY needs Milvus 2.6.4 or newer" in line
                assert "field 't': TIMESTAMPTZ needs Milvus 2.6.6 or newer" in line
            else:
                assert "--drop-functions" in line
        # nothing created, not even a staging collection (other tests may use the server meanwhile)
        assert not [c for c in dst.list_collections() if c.startswith(name)]
    finally:
        dst.close()


def test_into_qdrant_local_as_the_plan_says(cli, lite: Engine, store_dir: Path, memory_tmp_path: Path):
    name = lite.new_name("todayq")
    build(lite.client, name, n=120)
    source = read_rows(lite.client, name)
    b = _backup(cli, lite.url, store_dir, name)
    qpath = memory_tmp_path / "q"
    qurl = f"qdrant-local://{qpath}"
    assert cli("restore", store_dir, qurl, "-b", b["backup_id"]).code == 9  # the function's output: named, refused
    assert not qpath.exists() or not any(qpath.rglob("*.sqlite"))

    dry = cli("restore", store_dir, qurl, "-b", b["backup_id"], "--dry-run", "--drop-functions", "--json")
    assert dry.code == 0, dry.stdout + dry.stderr
    texts = {d["source"]: d["text"] for d in dry.json()["decisions"]}
    assert "payload key 'g'" in texts["g"] and "RFC 3339" in texts["t"]
    assert any("not recreated (--drop-functions)" in t for t in texts.values())
    r = cli("restore", store_dir, qurl, "-b", b["backup_id"], "--drop-functions", "--json")
    assert r.code == 0, r.stderr
    client = QdrantClient(path=str(qpath))
    try:
        info = client.get_collection(name)
        assert set(info.config.params.vectors) == {"dense"} and not info.config.params.sparse_vectors
        points, _ = client.scroll(name, limit=1000, with_payload=True)
        assert len(points) == len(source)
        for p in points:
            row = source[int(p.id)]
            for k in ("text", "g", "g_def", "t", "t_def", "n", "tags"):
                assert p.payload.get(k) == row[k], (p.id, k)
            if "extra" in row:
                assert p.payload["extra"] == row["extra"]
    finally:
        client.close()
