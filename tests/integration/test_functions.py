"""Collections with functions (a BM25 function filling a sparse vector from a VARCHAR with an analyzer): backed up,
restored identical on Milvus Lite (schema, functions, indexes, rows, full-text search), and what a target without
functions does with the backup (the 2.3 server, Qdrant local mode), incremental and encrypted backups, the drill's
full-text check."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.datasets import index_summary, read_rows
from tests.integration.common import STANDALONE_URL

#: an analyzer with parameters (a stop-word filter), as a user sets it
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["the", "a", "of"]}]}
#: BM25 parameters of the index: Milvus Lite does not report them (a restore is given them with --index-params), and
#: 3.2.2 scores with k1 1.5, b 0.75 whatever the index says (measured: the same scores with and without them)
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.7}
WORDS = [f"w{i}" for i in range(400)] + ["the", "a", "of", "Vector", "backup", "milvus", "search", "text"]


def _text(rng: random.Random) -> str:
    """A sentence of 3 to 30 words, Zipf-like (a few common words, many rare ones)."""
    n = rng.randint(3, 30)
    return " ".join(WORDS[min(int(rng.paretovariate(0.9)) - 1, len(WORDS) - 1)] if rng.random() < 0.7
                    else rng.choice(WORDS) for _ in range(n))


def _row(i: int, rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, "text": _text(rng), "dense": [rng.uniform(-1, 1) for _ in range(8)],
                           "n": i % 17}
    if i % 9 == 0:
        row["tag"] = f"t{i % 4}"  # a dynamic field
    return row


def build_bm25(client: Any, name: str, n: int = 1500, seed: int = 7) -> list[dict[str, Any]]:
    """id, text (analyzer with params, match), sparse (BM25 of text), dense (HNSW COSINE), n (INVERTED), dynamic
    fields; one insert and one flush, so Milvus Lite holds it in one segment."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, analyzer_params=ANALYZER,
                enable_match=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("n", DataType.INT64)
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    ip.add_index("dense", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 64})
    ip.add_index("n", index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip)
    rng = random.Random(seed)
    rows = [_row(i, rng) for i in range(n)]
    client.insert(name, rows)
    client.flush(name)
    return rows


def _backup(cli: Any, url: str, store: Any, name: str, *extra: Any) -> dict[str, Any]:
    r = cli("backup", url, store, "-c", name, "--json", *extra)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()["backups"][0]
    return doc


def _schema(client: Any, name: str) -> dict[str, Any]:
    """describe_collection without what names or numbers the collection itself, analyzer params as JSON (the
    string Milvus Lite reports orders the keys as they were given)."""
    d = dict(client.describe_collection(name))
    for key in ("collection_name", "collection_id", "created_timestamp", "update_timestamp", "aliases"):
        d.pop(key, None)
    for f in d["fields"]:
        if "analyzer_params" in f.get("params", {}):
            f["params"]["analyzer_params"] = json.loads(f["params"]["analyzer_params"])
    return d


def _queries(rows: list[dict[str, Any]], n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    out = []
    for row in rng.sample(rows, n):
        words = row["text"].split()
        k = rng.randint(1, min(4, len(words)))
        start = rng.randrange(len(words) - k + 1)
        out.append(" ".join(words[start:start + k]))
    return out


def full_text(client: Any, name: str, queries: list[str], k: int = 10) -> list[list[tuple[Any, float]]]:
    client.load_collection(name)
    res = client.search(name, data=queries, anns_field="sparse", limit=k, output_fields=["id"],
                        consistency_level="Strong")
    return [[(h["id"], h["distance"]) for h in hits] for hits in res]


def test_bm25_collection_restores_identical_on_lite(cli, lite, store_dir):
    name = lite.new_name("bm25")
    rows = build_bm25(lite.client, name)
    backup = _backup(cli, lite.url, store_dir, name)
    shown = cli("show", store_dir, backup["backup_id"], "--json").json()
    assert shown["format_version"] == 3  # a vecbackup before functions refuses it rather than drop them
    assert shown["collection"]["functions"] == [{"name": "text_bm25", "type": "BM25", "input_field_names": ["text"],
                                                 "output_field_names": ["sparse"], "params": {}}]
    assert any("'sparse' are not stored" in n for n in shown["notes"])
    assert cli("verify", store_dir, backup["backup_id"], "--read-data").code == 0  # chunks: no 'sparse' column

    copy = f"{name}_r"
    r = cli("restore", store_dir, lite.url, "-b", backup["backup_id"], "--as", copy, "--json",
            "--index-params", "sparse:" + ",".join(f"{k}={v}" for k, v in BM25_PARAMS.items()))
    assert r.code == 0, r.stderr
    assert any("recreated" in n and "computes 'sparse' from 'text'" in n for n in r.json()["notes"])
    # what the engine reports after the restore, not what was sent
    assert _schema(lite.client, copy) == _schema(lite.client, name)
    assert _schema(lite.client, copy)["functions"][0]["output_field_names"] == ["sparse"]
    assert index_summary(lite.client, copy) == index_summary(lite.client, name)
    restored = read_rows(lite.client, copy)
    assert restored == read_rows(lite.client, name)  # every row, the regenerated BM25 output too (Lite returns it)
    assert len(restored) == len(rows)
    queries = _queries(rows, 40)
    source_hits, copy_hits = full_text(lite.client, name, queries), full_text(lite.client, copy, queries)
    assert all(hits for hits in source_hits)
    assert copy_hits == source_hits  # keys, scores and order of the top 10

    report = cli("drill", store_dir, lite.url, "-b", backup["backup_id"], "--seed", "5", "--json",
                 "--source", lite.url, "--index-params", "sparse:bm25_k1=1.2,bm25_b=0.7").json()
    assert report["ok"], report["failures"]
    text = next(c for c in report["checks"] if c["name"] == "text_search")
    assert text["status"] == "passed" and text["details"]["agreement"] == 1.0
    assert text["details"]["identical_queries"] == text["details"]["queries"] > 50
    search = next(c for c in report["checks"] if c["name"] == "search_recall")
    assert search["details"]["field"] == "dense"  # never the function's output: the backup does not hold it


def test_drill_without_a_source_finds_each_sampled_row_by_its_words(cli, lite, store_dir):
    name = lite.new_name("bm25")
    build_bm25(lite.client, name, n=400)
    _backup(cli, lite.url, store_dir, name)
    report = cli("drill", store_dir, lite.url, "--seed", "9", "--json").json()
    assert report["ok"], report["failures"]
    text = next(c for c in report["checks"] if c["name"] == "text_search")
    assert text["status"] == "passed" and text["details"]["own_row_missing"] == 0
    assert text["details"]["answered"] == text["details"]["queries"] > 50


def test_incremental_and_encrypted_backups_of_a_bm25_collection(cli, lite, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("a passphrase for the functions test\n")
    store = tmp_path / "enc"
    assert cli("init", store, "--encrypt", "--passphrase-file", pw).code == 0
    name = lite.new_name("bm25")
    rows = build_bm25(lite.client, name, n=1200)
    first = _backup(cli, lite.url, store, name, "--passphrase-file", pw, "--batch-size", "200")
    rng = random.Random(11)
    changed = [{**rows[i], "text": _text(rng)} for i in (3, 500, 901)]
    lite.client.upsert(name, changed)
    lite.client.delete(name, ids=[10, 11])
    lite.client.insert(name, [_row(i, rng) for i in range(5000, 5004)])
    lite.client.flush(name)
    second = _backup(cli, lite.url, store, name, "--passphrase-file", pw, "--batch-size", "200")
    assert second["base"] == first["backup_id"]
    assert second["rows_reused"] == 1200 - 3 - 2  # only the changed and new rows are uploaded
    copy = f"{name}_r"
    r = cli("restore", store, lite.url, "--as", copy, "--passphrase-file", pw,
            "--index-params", "sparse:bm25_k1=1.2,bm25_b=0.7")
    assert r.code == 0, r.stderr
    assert read_rows(lite.client, copy) == read_rows(lite.client, name)
    # the source now spans several segments, which Milvus Lite scores with their own statistics: compare which
    # rows each query matches, not their order
    queries = _queries([r for r in rows if r["id"] not in (10, 11)], 20)
    assert [sorted(k for k, _ in h) for h in full_text(lite.client, copy, queries, k=1500)] == \
        [sorted(k for k, _ in h) for h in full_text(lite.client, name, queries, k=1500)]


def test_bm25_backup_onto_the_2_3_server_needs_drop_functions(cli, lite, standalone, store_dir):
    from pymilvus import MilvusClient

    name = lite.new_name("bm25")
    build_bm25(lite.client, name, n=300)
    _backup(cli, lite.url, store_dir, name)
    server = MilvusClient(uri=standalone.uri)
    try:
        r = cli("restore", store_dir, STANDALONE_URL)
        assert r.code == 9
        line = r.error_line()
        assert "BM25 function 'text_bm25' ('text' -> 'sparse') cannot be recreated: Milvus v2.3" in line
        assert "--drop-functions" in line
        assert not server.has_collection(name)  # refused before anything was created
        plan = cli("restore", store_dir, STANDALONE_URL, "--dry-run", "--json")
        assert plan.code == 9 and "--drop-functions" in plan.json()["problems"][0]

        r = cli("restore", store_dir, STANDALONE_URL, "--drop-functions", "--index-fallback", "--json")
        assert r.code == 0, r.stderr
        assert any("not recreated (--drop-functions)" in n and "'sparse'" in n for n in r.json()["notes"])
        d = server.describe_collection(name)
        assert [f["name"] for f in d["fields"]] == ["id", "text", "dense", "n"] and not d.get("functions")
        assert set(index_summary(server, name)) == {"dense", "n"}
        source = read_rows(lite.client, name)
        assert read_rows(server, name) == {k: {f: v for f, v in row.items() if f != "sparse"}
                                           for k, row in source.items()}
    finally:
        if server.has_collection(name):
            server.drop_collection(name)
        server.close()


def test_bm25_backup_onto_qdrant_needs_drop_functions(cli, lite, store_dir, memory_tmp_path: Path):
    from qdrant_client import QdrantClient

    name = lite.new_name("bm25")
    build_bm25(lite.client, name, n=300)
    _backup(cli, lite.url, store_dir, name)
    qurl = f"qdrant-local://{memory_tmp_path / 'q'}"
    plan = cli("restore", store_dir, qurl, "--dry-run", "--json")
    assert plan.code == 9
    problem = plan.json()["problems"][0]
    assert problem.startswith("field 'sparse' (SPARSE_FLOAT_VECTOR): the output of BM25 function 'text_bm25'")
    assert "--drop-functions" in problem
    r = cli("restore", store_dir, qurl)
    assert r.code == 9 and "--drop-functions" in r.error_line()

    plan = cli("restore", store_dir, qurl, "--dry-run", "--json", "--drop-functions")
    assert plan.code == 0, plan.stdout
    texts = [d["text"] for d in plan.json()["decisions"]]
    assert any("not recreated (--drop-functions)" in t for t in texts)
    assert any(d["source"] == "text" and d["kind"] == "payload key" for d in plan.json()["decisions"])
    r = cli("restore", store_dir, qurl, "--drop-functions", "--json")
    assert r.code == 0, r.stderr
    client = QdrantClient(path=str(memory_tmp_path / "q"))
    try:
        info = client.get_collection(name)
        assert set(info.config.params.vectors) == {"dense"} and not info.config.params.sparse_vectors
        points, _ = client.scroll(name, limit=1000, with_payload=True)
        source = read_rows(lite.client, name)
        assert {int(p.id): p.payload["text"] for p in points} == {k: row["text"] for k, row in source.items()}
    finally:
        client.close()


class _Embeddings(BaseHTTPRequestHandler):
    """OpenAI's POST /v1/embeddings, answered with 8 numbers of each text's SHA-256 (deterministic), recording the
    Authorization header of each request."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(self.headers.get("Authorization", ""))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"index": i, "object": "embedding",
                 "embedding": [b / 255 for b in hashlib.sha256(t.encode()).digest()[:8]]} for i, t in enumerate(texts)]
        out = json.dumps({"object": "list", "model": body.get("model"), "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings() -> Iterator[str]:
    """The base URL of a local stand-in for OpenAI's embeddings API."""
    _Embeddings.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_text_embedding_function_restores_without_its_api_key_in_the_store(cli, lite, store_dir, embeddings,
                                                                           monkeypatch):
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    name = lite.new_name("emb")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=200)
    s.add_field("emb", DataType.FLOAT_VECTOR, dim=8)
    params = {"provider": "openai", "model_name": "text-embedding-3-small", "dimensions": 8, "base_url": embeddings,
              "api_key": "sk-source-secret-1234"}
    s.add_function(Function(name="embed", function_type=FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                            output_field_names=["emb"], params=params))
    ip = lite.client.prepare_index_params()
    ip.add_index("emb", index_type="FLAT", metric_type="COSINE")
    lite.client.create_collection(name, schema=s, index_params=ip)
    lite.client.insert(name, [{"id": i, "text": f"row number {i}"} for i in range(40)])
    lite.client.flush(name)
    assert _Embeddings.seen == ["Bearer sk-source-secret-1234"]

    backup = _backup(cli, lite.url, store_dir, name)
    fn = cli("show", store_dir, backup["backup_id"], "--json").json()["collection"]["functions"][0]
    assert fn["type"] == "TEXTEMBEDDING" and fn["withheld"] == ["api_key"] and "api_key" not in fn["params"]
    assert fn["params"]["base_url"] == embeddings and fn["params"]["provider"] == "openai"
    assert not [p for p in store_dir.rglob("*") if p.is_file() and b"sk-source-secret" in p.read_bytes()]

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = cli("restore", store_dir, lite.url, "--as", f"{name}_r")
    assert r.code == 10 and "OPENAI_API_KEY" in r.error_line()  # the target has no key: refused, nothing kept
    assert not lite.client.has_collection(f"{name}_r")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-target-key")  # the target's own credential
    r = cli("restore", store_dir, lite.url, "--as", f"{name}_r", "--json")
    assert r.code == 0, r.stderr
    assert any("'api_key' (credentials) are not in the backup" in n for n in r.json()["notes"])
    assert _Embeddings.seen[-1] == "Bearer sk-target-key"
    assert _schema(lite.client, f"{name}_r")["fields"] == _schema(lite.client, name)["fields"]
    assert read_rows(lite.client, f"{name}_r") == read_rows(lite.client, name)  # the embeddings computed again
