"""Qdrant Edge (qdrant-edge-py: Qdrant's own engine, in-process) as a source and a target, against the real engine:
a shard of every vector kind it holds round-trips through a store and through Milvus Lite, compared with what Edge
itself returns and reports after reopening the restored shard from disk; bad input is one line and a documented
exit code, with nothing created.

Edge locks a shard (its write-ahead log) per open handle, in this process too, and the ``cli`` fixture runs here: the
test's own handles are closed before every CLI call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as q
from pymilvus import DataType, MilvusClient

from tests.conftest import Engine
from tests.integration.common import STANDALONE_URL
from tests.integration.edge_shards import DIM, N, build, build_texts, search, state, text_indexes, text_matches
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
    dry = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", again["backup_id"], "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "index on 'dense': HNSW (COSINE) M=8, efConstruction=48" in dry.stdout
    assert "index on 'tenant': PAYLOAD_KEYWORD type=keyword, is_tenant=True" in dry.stdout
    assert "restorable: nothing was written" in dry.stdout and not dst.exists()
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
        backup_id = _backup(cli, STANDALONE_URL, store_dir, name)["backup_id"]
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


# -- encrypted and incremental, as every engine ------------------------------------------------------


def test_encrypted_store_restores_an_edge_shard_identically(cli: Any, tmp_path: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "device" / "shard"
    src.parent.mkdir()
    build(src, multivector=False)
    points, config, indexes = state(src)
    store, pw = tmp_path / "sealed", tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    assert cli("init", store, "--encrypt", "--passphrase-file", pw).code == 0
    r = cli("backup", f"qdrant-edge://{src}", store, "-c", "shard", "--passphrase-file", pw, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["backups"][0]["rows"] == N
    stored = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    assert b"tenant" not in stored and b"nested" not in stored and b"qdrant-edge" not in stored  # all sealed
    r = cli("restore", store, f"qdrant-edge://{memory_tmp_path / 'back'}", "--passphrase-file", pw, "--json")
    assert r.code == 0, r.stderr
    got, got_config, got_indexes = state(memory_tmp_path / "back" / "shard")
    assert (got_config, got_indexes) == (config, indexes)
    assert sorted(got) == sorted(points)
    for pid, (vector, payload) in points.items():
        assert got[pid][1] == payload, pid
        assert {k: v for k, v in got[pid][0].items() if k != "dense"} == {k: v for k, v in vector.items()
                                                                          if k != "dense"}, pid
        np.testing.assert_allclose(got[pid][0]["dense"], vector["dense"], rtol=0, atol=1e-7)  # Cosine, as above
    r = cli("restore", store, f"qdrant-edge://{memory_tmp_path / 'nokey'}", "--json")
    assert r.code == 13 and not (memory_tmp_path / "nokey").exists()  # no passphrase: nothing restored


def test_a_changed_shard_uploads_only_the_changed_points(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    """Ten payloads and five vectors changed, seven points deleted, four added: the next backup uploads those
    nineteen points and reuses the others; each backup restores the shard as it was when it was taken."""
    src = memory_tmp_path / "device" / "shard"
    src.parent.mkdir()
    build(src, multivector=False, uint8=False)
    before, config, _ = state(src)
    first = _backup(cli, f"qdrant-edge://{src}", store_dir, "shard")

    ids = sorted(before, key=lambda p: (len(p), p))  # integer ids first, then UUIDs
    shard = q.EdgeShard.load(str(src))
    try:
        def point(pid: str, vector: dict[str, Any], payload: dict[str, Any]) -> Any:
            vec = {k: q.SparseVector(v["indices"], v["values"]) if isinstance(v, dict) else v
                   for k, v in vector.items()}
            return q.Point(int(pid) if pid.isdigit() else uuid.UUID(pid), vec, payload)

        changed = [point(pid, before[pid][0], {**before[pid][1], "edited": True}) for pid in ids[:10]]
        changed += [point(pid, {**before[pid][0], "half": [0.5, -0.5, 0.25, 1.0]}, before[pid][1])
                    for pid in ids[-5:]]  # UUID ids among them
        added = [point(str(10_000 + i), {"dense": [1.0] + [0.0] * (DIM - 1), "half": [1.0] * 4,
                                         "sp": {"indices": [i], "values": [1.0]}}, {"new": i}) for i in range(4)]
        shard.update(q.UpdateOperation.upsert_points(changed + added))
        shard.update(q.UpdateOperation.delete_points([int(p) if p.isdigit() else uuid.UUID(p)
                                                      for p in ids[100:107]]))
        shard.flush()
    finally:
        shard.close()
    after, _, _ = state(src)
    assert len(after) == N - 7 + 4

    second = _backup(cli, f"qdrant-edge://{src}", store_dir, "shard")
    assert second["base"] == first["backup_id"]
    assert (second["rows"], second["rows_reused"]) == (N - 3, N - 15 - 7), second  # 15 changed + 4 new uploaded
    assert second["objects_new"] > 0 and second["bytes_uploaded"] < first["bytes_uploaded"] / 4

    for backup, expected in ((first, before), (second, after)):
        dst = memory_tmp_path / f"at-{backup['backup_id']}"
        r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", backup["backup_id"], "--json")
        assert r.code == 0, r.stderr
        got, got_config, _ = state(dst / "shard")
        assert got_config == config
        assert sorted(got) == sorted(expected)
        for pid, (vector, payload) in expected.items():
            assert got[pid][1] == payload, pid
            assert got[pid][0]["half"] == vector["half"] and got[pid][0]["sp"] == vector["sp"], pid
            np.testing.assert_allclose(got[pid][0]["dense"], vector["dense"], rtol=0, atol=1e-7)


# -- product and binary quantization ---------------------------------------------------------------------------------


def _quantized(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The quantization Edge built for each vector of the shard at ``path``: the quantized.config.json of its
    storage in each segment (the settings Edge quantized it with, and the points it quantized)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in path.glob("segments/*/vector_storage-*/quantized.config.json"):
        out.setdefault(p.parent.name.removeprefix("vector_storage-"), []).append(json.loads(p.read_text()))
    return {k: sorted(v, key=lambda c: json.dumps(c, sort_keys=True)) for k, v in out.items()}


def _scores(path: Path, queries: np.ndarray, using: str, rescore: bool) -> list[dict[str, float]]:
    """Every point's score for each query, searched through the quantized vectors (``rescore``: then scored again
    with the original ones)."""
    shard = q.EdgeShard.load(str(path))
    try:
        return [{str(h.id): h.score for h in shard.query(q.QueryRequest(
            query=q.Query.Nearest(qv.tolist(), using=using), limit=500,
            params=q.SearchParams(hnsw_ef=500, quantization=q.QuantizationSearchParams(rescore=rescore))))}
            for qv in queries]
    finally:
        shard.close()


def test_product_and_binary_quantization_round_trip(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    """Product quantization (the shard's) and binary quantization (two vectors' own: 2-bit encoding with 8-bit
    queries, and the 1-bit default): Edge -> store -> Edge with the configuration Edge reloads and the quantization
    it builds (each segment's) as the source's; every point's score through the binary codes as the source's, and
    through the product codes as close to them as Edge's own rebuilds are."""
    rng = np.random.default_rng(8)
    src = memory_tmp_path / "device" / "quant"
    src.parent.mkdir()
    shard = q.EdgeShard.create(str(src), q.EdgeConfig(
        vectors={"pq": q.EdgeVectorParams(size=16, distance=q.Distance.Euclid),
                 "bin": q.EdgeVectorParams(size=16, distance=q.Distance.Dot, quantization_config=(
                     q.BinaryQuantizationConfig(always_ram=True, encoding=q.BinaryQuantizationEncoding.TwoBits,
                                                query_encoding=q.BinaryQuantizationQueryEncoding.Scalar8Bits))),
                 "bin1": q.EdgeVectorParams(size=16, distance=q.Distance.Cosine,
                                            quantization_config=q.BinaryQuantizationConfig())},
        quantization_config=q.ProductQuantizationConfig(compression=q.CompressionRatio.X8, always_ram=False),
        optimizers=q.EdgeOptimizersConfig(indexing_threshold=10)))
    try:
        shard.update(q.UpdateOperation.upsert_points([
            q.Point(i, {k: rng.normal(size=16).tolist() for k in ("pq", "bin", "bin1")}, {"i": i})
            for i in range(500)]))
        shard.optimize()
        shard.flush()
    finally:
        shard.close()
    points, config, _ = state(src)
    assert config["quantization_config"] == {"product": {"compression": "x8", "always_ram": False}}
    built = _quantized(src)
    assert sorted(built) == ["bin", "bin1", "pq"]  # each vector quantized, "pq" with the shard's setting
    assert {c["quantization_config"]["product"]["compression"] for c in built["pq"]} == {"x8"}

    backup_id = _backup(cli, f"qdrant-edge://{src}", store_dir, "quant")["backup_id"]
    recorded = cli("show", store_dir, backup_id, "--json").json()["collection"]["extra"]["qdrant"]
    assert recorded["quantization_config"] == config["quantization_config"]
    assert recorded["params"]["vectors"]["bin"]["quantization_config"] == {
        "binary": {"always_ram": True, "encoding": "two_bits", "query_encoding": "scalar8bits"}}
    assert recorded["params"]["vectors"]["bin1"]["quantization_config"] == {"binary": {}}

    dst = memory_tmp_path / "restored"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["notes"] == []  # nothing left out
    got_points, got_config, _ = state(dst / "quant")
    assert got_config == config
    assert _quantized(dst / "quant") == built
    assert sorted(got_points) == sorted(points)
    for pid, (vec, payload) in points.items():
        assert got_points[pid][1] == payload
        assert got_points[pid][0]["pq"] == vec["pq"] and got_points[pid][0]["bin"] == vec["bin"], pid
        np.testing.assert_allclose(got_points[pid][0]["bin1"], vec["bin1"], rtol=0, atol=1e-7)  # Cosine

    queries = np.random.default_rng(9).normal(size=(3, 16))
    for using in ("bin", "bin1"):  # binary codes are the vectors' bits: the same
        quantized = _scores(src, queries, using, rescore=False)
        assert all(len(s) == 500 for s in quantized)
        assert quantized != _scores(src, queries, using, rescore=True)  # the quantized vectors are searched
        assert _scores(dst / "quant", queries, using, rescore=False) == quantized, using
    # product quantization's codebooks are trained anew (k-means; two builds of one shard differ in a few points'
    # codes): the restored codes agree with the source's twenty times better than either with the vectors (measured:
    # 200 to 2,000 times)
    exact, before, after = (_scores(path, queries, "pq", rescore=rescore)
                            for path, rescore in ((src, True), (src, False), (dst / "quant", False)))
    for e, b, a in zip(exact, before, after, strict=True):
        assert set(e) == set(b) == set(a) and len(e) == 500
        error = np.mean([abs(b[k] - e[k]) for k in e])  # what the quantization changes
        assert error > 0.01 and np.mean([abs(a[k] - b[k]) for k in e]) < error / 20


# -- a text index's stopwords, stemmer and scoring --------------------------------------------------------------------

def test_text_index_stopwords_stemmer_and_scoring_round_trip(cli: Any, store_dir: Path, memory_tmp_path: Path,
                                                             ) -> None:
    """Text indexes with stopwords (two languages and custom words; one language), a stemmer (snowball; disabled)
    and BM25 scoring (edge_shards.build_texts): Edge -> store -> Edge with the settings recorded as a Qdrant server
    reports them, no note, the indexes Edge reports and reloads after reopening the restored shard equal to the
    source's, and every text match and BM25 ranking the same, points and scores."""
    src = memory_tmp_path / "device" / "texts"
    src.parent.mkdir()
    bodies = build_texts(src)
    reported, kept = text_indexes(src)
    assert reported["body"][1]["TextIndexParams"]["stemmer"] == {"SnowballParams": {
        "language": "SnowballLanguage.English"}}
    assert reported["title"][1]["TextIndexParams"]["stemmer"] == "DisabledStemmer"
    queries = ["running", "the running", "qdrant backups", "runs und restored", "shard", "le vector"]
    matched, ranked = text_matches(src, queries)
    # each setting decides what matches: "running" is "run" (and the other forms of it); "the", "und" and "qdrant"
    # are dropped from a query
    assert matched[0] == matched[1] == sorted(
        (i for i, body in bodies.items() if {"run", "runs", "running"} & set(body.split())), key=int)
    assert any("running" not in bodies[i].split() for i in matched[0])
    assert any("qdrant" not in bodies[i].split() for i in matched[2])
    assert all(matched[:5]) and matched[5] == [] and all(ranked)  # "le" is a stopword of "title" only

    backup = _backup(cli, f"qdrant-edge://{src}", store_dir, "texts")
    assert backup["notes"] == []
    backup_id = backup["backup_id"]
    shown = cli("show", store_dir, backup_id, "--json")
    assert shown.code == 0, shown.stderr
    recorded = {i["field_name"]: i["params"] for i in shown.json()["collection"]["indexes"]
                if i["index_type"] == "PAYLOAD_TEXT"}
    assert recorded == {  # as a Qdrant server reports them in payload_schema (qdrant-client's TextIndexParams)
        "body": {"type": "text", "tokenizer": "word", "phrase_matching": True,
                 "stopwords": {"languages": ["english", "german"], "custom": ["qdrant", "vecbackup"]},
                 "stemmer": {"type": "snowball", "language": "english"}, "scoring": {"type": "bm25"}},
        "title": {"type": "text", "tokenizer": "word", "stopwords": "french", "stemmer": {"type": "none"},
                  "scoring": {"type": "bm25"}},
        "note": {"type": "text", "tokenizer": "word", "stopwords": "english"}}

    dst = memory_tmp_path / "restored"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["notes"] == []  # nothing left out
    got_reported, got_kept = text_indexes(dst / "texts")
    assert got_reported == reported
    assert got_kept and all(k == kept[0] for k in [*kept, *got_kept])
    assert kept[0]["body"]["stopwords"] == {"languages": ["english", "german"], "custom": ["qdrant", "vecbackup"]}
    got_matched, got_ranked = text_matches(dst / "texts", queries)
    assert got_matched == matched
    # the same points with the same scores (ties come in an order of Edge's own: its points' offsets)
    assert [dict(r) for r in got_ranked] == [dict(r) for r in ranked]
    assert [[s for _, s in r] for r in got_ranked] == [[s for _, s in r] for r in ranked]
