"""Cross-engine restores against real engines: a Milvus Lite backup restored into Qdrant local mode, a Qdrant
local-mode backup restored into Milvus Lite, and what cannot be mapped refused before anything is written.

Qdrant local mode allows one client per folder per process and the ``cli`` fixture runs in this process, so the
test's own Qdrant client is closed before every CLI call.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient
from qdrant_client import QdrantClient
from qdrant_client.http import models as m

from tests.conftest import Engine
from tests.integration.common import STANDALONE_URL
from tests.integration.edge_shards import build as build_edge
from tests.integration.edge_shards import build_texts as build_edge_texts
from tests.integration.edge_shards import plain as edge_plain
from tests.integration.edge_shards import search as edge_search
from tests.integration.edge_shards import state as edge_state
from tests.integration.edge_shards import text_indexes as edge_text_indexes
from tests.integration.edge_shards import text_matches as edge_text_matches
from vecbackup.ops.mapping import PK_NAMESPACE

pytestmark = [pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant"),
              pytest.mark.filterwarnings("ignore:Local mode performs exact")]

N = 300
DIM, B_DIM = 8, 4


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _sparse(rng: np.random.Generator, i: int) -> dict[int, float]:
    idx = sorted({int(k) for k in rng.integers(0, 1000, 1 + i % 5)})
    return {k: float(np.float32(rng.random() + 0.01)) for k in idx}


def _backup(cli: Any, url: str, store: Path, name: str) -> str:
    r = cli("backup", url, store, "-c", name, "--batch-size", "97", "--json")
    assert r.code == 0, r.stderr
    backup_id: str = r.json()["backups"][0]["backup_id"]
    return backup_id




def _scroll(client: QdrantClient, name: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    offset = None
    while True:
        records, offset = client.scroll(name, limit=128, offset=offset, with_payload=True, with_vectors=True)
        for r in records:
            out[r.id] = r
        if offset is None:
            return out


def _milvus_rows(client: MilvusClient, name: str) -> dict[Any, dict[str, Any]]:
    client.load_collection(name)
    it = client.query_iterator(name, batch_size=1000, output_fields=["*"], consistency_level="Strong")
    rows: dict[Any, dict[str, Any]] = {}
    while page := it.next():
        for r in page:
            rows[r["pk"] if "pk" in r else r["id"]] = dict(r)
    it.close()
    return rows


# -- Milvus Lite -> Qdrant local mode --------------------------------------------------------------


SCALARS = ("b", "i8", "i16", "i32", "i64", "f", "d", "s", "j", "arr", "tags")


def _build_milvus(client: MilvusClient, name: str, *, modern: bool = True) -> tuple[np.ndarray, dict[int, str]]:
    """Every scalar type, JSON, ARRAY, a dense vector (HNSW COSINE M=16 efConstruction=64), dynamic fields on some
    rows and three partitions; with ``modern`` (Milvus 2.4 and later) a sparse vector and INVERTED indexes, else
    (Milvus 2.3) STL_SORT and Trie ones."""
    rng = np.random.default_rng(5)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    if modern:
        s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("b", DataType.BOOL)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("i64", DataType.INT64)
    s.add_field("f", DataType.FLOAT)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("s", DataType.VARCHAR, max_length=64)
    s.add_field("j", DataType.JSON)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 64})
    if modern:
        ip.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    ip.add_index("i64", index_type="INVERTED" if modern else "STL_SORT")
    ip.add_index("s", index_type="INVERTED" if modern else "Trie")
    client.create_collection(name, schema=s, index_params=ip)
    client.create_partition(name, "p1")
    client.create_partition(name, "p2")
    vecs = _unit(rng, N, DIM)
    partition_of: dict[int, str] = {}
    parts: dict[str, list[dict[str, Any]]] = {"_default": [], "p1": [], "p2": []}
    for i in range(N):
        pk = i * 11 + 3
        part = ["_default", "p1", "p2"][i % 3]
        partition_of[pk] = part
        row: dict[str, Any] = {
            "pk": pk, "vec": vecs[i].tolist(), "sp": _sparse(rng, i), "b": bool(i % 2), "i8": i % 100 - 50,
            "i16": i * 7 - 1000, "i32": i * 1001, "i64": int(rng.integers(-(2**62), 2**62)),
            "f": float(np.float32(rng.normal())), "d": float(rng.normal()), "s": f"row-{i}-ünï",
            "j": {"k": i, "nested": {"x": [1, 2.5, None], "ok": bool(i % 3)}}, "arr": list(range(i % 5)),
            "tags": [f"t{k}" for k in range(i % 3)],
        }
        if not modern:
            del row["sp"]
        if i % 4:
            row["color"] = ["red", "green", "blue"][i % 3]
            row["extra_n"] = i
        parts[part].append(row)
    for part, rows in parts.items():
        client.insert(name, rows, partition_name=part)
    return vecs, partition_of


def test_milvus_lite_to_qdrant_local(cli: Any, lite: Engine, store_dir: Path, memory_tmp_path: Path) -> None:
    name = lite.new_name("m2q")
    vecs, partition_of = _build_milvus(lite.client, name)
    source = _milvus_rows(lite.client, name)
    backup_id = _backup(cli, lite.url, store_dir, name)
    qpath = memory_tmp_path / "qdrant"
    qurl = f"qdrant-local://{qpath}"

    dry = cli("restore", store_dir, qurl, "--backup", backup_id, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "integer point ids" in dry.stdout and "named dense vector 'vec'" in dry.stdout
    assert "_partition" in dry.stdout and "payload key 'j'" in dry.stdout
    assert not qpath.exists() or not any(qpath.rglob("*.sqlite"))  # nothing written

    r = cli("restore", store_dir, qurl, "--backup", backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == N

    client = QdrantClient(path=str(qpath))
    try:
        assert client.count(name, exact=True).count == N
        info = client.get_collection(name)
        vectors = info.config.params.vectors
        assert isinstance(vectors, dict)
        assert vectors["vec"].distance == m.Distance.COSINE and vectors["vec"].size == DIM
        assert "sp" in (info.config.params.sparse_vectors or {})
        points = _scroll(client, name)
        assert sorted(points) == sorted(source)
        by_pk = {int(pk): i for i, pk in enumerate(p * 11 + 3 for p in range(N))}
        for pk, row in source.items():
            p = points[pk]
            np.testing.assert_allclose(p.vector["vec"], vecs[by_pk[pk]], rtol=0, atol=1e-6)
            sp = p.vector["sp"]
            assert dict(zip(sp.indices, sp.values, strict=True)) == row["sp"]
            for k in SCALARS:
                assert p.payload[k] == row[k], (pk, k)
            for k in ("color", "extra_n"):
                assert p.payload.get(k) == row.get(k), (pk, k)
            assert p.payload["_partition"] == partition_of[pk]
            assert set(p.payload) == {*SCALARS, "_partition", *(k for k in ("color", "extra_n") if k in row)}

        rng = np.random.default_rng(17)
        queries = _unit(rng, 10, DIM)
        pks = np.array([p * 11 + 3 for p in range(N)])
        lite.client.load_collection(name)
        milvus_hits = lite.client.search(name, queries.tolist(), anns_field="vec", limit=10,
                                         search_params={"metric_type": "COSINE", "params": {"ef": N}})
        for qi, q in enumerate(queries):
            truth = pks[np.argsort(-(vecs @ q), kind="stable")[:10]].tolist()
            res = client.query_points(name, query=q.tolist(), using="vec", limit=10,
                                      search_params=m.SearchParams(exact=True))
            assert [int(h.id) for h in res.points] == truth, qi
            assert [h["pk"] for h in milvus_hits[qi]] == truth, qi
    finally:
        client.close()


# -- Qdrant local mode -> Milvus Lite --------------------------------------------------------------


def _build_qdrant(path: Path, name: str, *, multivector: bool = False, missing_vector: bool = False,
                  ) -> tuple[dict[int, dict[str, Any]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    client = QdrantClient(path=str(path))
    try:
        vectors: dict[str, m.VectorParams] = {
            "a": m.VectorParams(size=DIM, distance=m.Distance.COSINE,
                                hnsw_config=m.HnswConfigDiff(m=8, ef_construct=64)),
            "b": m.VectorParams(size=B_DIM, distance=m.Distance.EUCLID),
        }
        if multivector:
            vectors["mv"] = m.VectorParams(size=3, distance=m.Distance.DOT, multivector_config=m.MultiVectorConfig(
                comparator=m.MultiVectorComparator.MAX_SIM))
        client.create_collection(name, vectors_config=vectors,
                                 sparse_vectors_config={"sp": m.SparseVectorParams()})
        a, b = _unit(rng, N, DIM), rng.normal(size=(N, B_DIM)).astype(np.float32)
        payloads: dict[int, dict[str, Any]] = {}
        points = []
        for i in range(N):
            pid = i * 3
            payload: dict[str, Any] = {"tenant": f"t{i % 4}", "n": int(rng.integers(-(2**62), 2**62)),
                                       "score": float(rng.normal()), "tags": [f"x{k}" for k in range(i % 3)],
                                       "nested": {"deep": {"v": [1, None, "s"]}, "ok": bool(i % 2)}}
            if i % 5 == 1:
                payload["id"] = f"sku-{i}"  # a payload key named like the Milvus primary key
            if i % 5 == 2:
                payload["_partition"] = f"from-{i % 3}"  # Milvus Lite silently drops a dynamic field of that name
            if i % 7 == 0:
                payload = {}
            payloads[pid] = payload
            sp = _sparse(rng, i)
            vec: dict[str, Any] = {"a": a[i].tolist(), "b": b[i].tolist(),
                                   "sp": m.SparseVector(indices=list(sp), values=list(sp.values()))}
            if multivector:
                vec["mv"] = [[1.0, 2.0, 3.0]]
            if missing_vector and i == 5:
                del vec["b"]
            points.append(m.PointStruct(id=pid, vector=vec, payload=payload))
        client.upsert(name, points, wait=True)
    finally:
        client.close()
    return payloads, a, b


def test_qdrant_local_to_milvus_lite(cli: Any, lite: Engine, store_dir: Path, memory_tmp_path: Path) -> None:
    qpath = memory_tmp_path / "qdrant"
    qurl = f"qdrant-local://{qpath}"
    name = f"vbt_q2m_{uuid.uuid4().hex[:8]}"
    payloads, a, b = _build_qdrant(qpath, name)
    client = QdrantClient(path=str(qpath))
    try:
        source = _scroll(client, name)
    finally:
        client.close()
    backup_id = _backup(cli, qurl, store_dir, name)

    dry = cli("restore", store_dir, lite.url, "--backup", backup_id, "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    doc = dry.json()
    assert doc["ok"] and doc["dry_run"] and doc["problems"] == []
    kinds = {d["source"]: d["kind"] for d in doc["decisions"]}
    assert kinds["a"] == kinds["b"] == "dense vector" and kinds["sp"] == "sparse vector"
    assert kinds["id"] == "primary key" and kinds["$meta"] == "dynamic fields"
    assert name not in lite.client.list_collections()

    r = cli("restore", store_dir, lite.url, "--backup", backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == N

    desc = lite.client.describe_collection(name)
    types = {f["name"]: f["type"] for f in desc["fields"]}
    assert types == {"id": DataType.VARCHAR, "a": DataType.FLOAT_VECTOR, "b": DataType.FLOAT_VECTOR,
                     "sp": DataType.SPARSE_FLOAT_VECTOR}
    assert desc["enable_dynamic_field"]
    idx = {n: lite.client.describe_index(name, n) for n in lite.client.list_indexes(name)}
    assert {i["field_name"]: i["metric_type"] for i in idx.values()} == {"a": "COSINE", "b": "L2", "sp": "IP"}
    rows = _milvus_rows(lite.client, name)
    assert len(rows) == N and sorted(rows) == sorted(str(p) for p in source)
    for pid, p in source.items():
        row = rows[str(pid)]
        np.testing.assert_allclose(row["a"], p.vector["a"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(row["a"], a[pid // 3], rtol=0, atol=1e-6)  # unit vectors: as written
        assert row["b"] == p.vector["b"] == b[pid // 3].tolist()
        assert row["sp"] == {int(k): float(np.float32(v)) for k, v in zip(p.vector["sp"].indices,
                                                                         p.vector["sp"].values, strict=True)}
        renamed = {"id": "payload_id", "_partition": "payload__partition"}  # renamed, not lost
        expected = {renamed.get(k, k): v for k, v in payloads[pid].items()}
        assert {k: v for k, v in row.items() if k not in ("id", "a", "b", "sp")} == expected, pid

    rng = np.random.default_rng(23)
    client = QdrantClient(path=str(qpath))
    try:
        for field, qs in (("a", _unit(rng, 10, DIM)), ("b", rng.normal(size=(10, B_DIM)).astype(np.float32))):
            metric = "COSINE" if field == "a" else "L2"
            hits = lite.client.search(name, qs.tolist(), anns_field=field, limit=10,
                                      search_params={"metric_type": metric, "params": {"ef": N}})
            for qi, q in enumerate(qs):
                res = client.query_points(name, query=q.tolist(), using=field, limit=10,
                                          search_params=m.SearchParams(exact=True))
                assert [h["id"] for h in hits[qi]] == [str(h.id) for h in res.points], (field, qi)
    finally:
        client.close()


def test_multivector_into_milvus_is_refused_before_anything_is_written(cli: Any, lite: Engine, store_dir: Path,
                                                                       memory_tmp_path: Path) -> None:
    qpath = memory_tmp_path / "qdrant"
    qurl = f"qdrant-local://{qpath}"
    name = f"vbt_mv_{uuid.uuid4().hex[:8]}"
    _build_qdrant(qpath, name, multivector=True)
    backup_id = _backup(cli, qurl, store_dir, name)
    before = lite.client.list_collections()

    dry = cli("restore", store_dir, lite.url, "--backup", backup_id, "--dry-run")
    assert dry.code == 9
    assert "dense vector 'a'" in dry.stdout and "problem: field 'mv' (multivector)" in dry.stdout
    assert "field 'mv'" in dry.error_line()

    r = cli("restore", store_dir, lite.url, "--backup", backup_id)
    assert r.code == 9
    line = r.error_line()
    assert "cannot restore into Milvus: field 'mv' (multivector): Milvus has no multivector type" in line
    assert lite.client.list_collections() == before


def test_point_without_a_vector_stops_a_restore_into_milvus(cli: Any, lite: Engine, store_dir: Path,
                                                            memory_tmp_path: Path) -> None:
    qpath = memory_tmp_path / "qdrant"
    name = f"vbt_nv_{uuid.uuid4().hex[:8]}"
    _build_qdrant(qpath, name, missing_vector=True)
    backup_id = _backup(cli, f"qdrant-local://{qpath}", store_dir, name)
    before = lite.client.list_collections()
    r = cli("restore", store_dir, lite.url, "--backup", backup_id)
    assert r.code == 9
    line = r.error_line()
    assert "field 'b'" in line and "point 15" in line
    assert lite.client.list_collections() == before


# -- Qdrant Edge (the real engine) <-> Milvus 2.3, Qdrant local mode -------------------------------


def test_milvus_standalone_to_edge(cli: Any, standalone: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    """Milvus 2.3 -> store -> Edge: every row's vector and fields as Edge returns them, the vector's configuration
    as Edge reloads it, and Edge's exact search equal to exact search with numpy over the source's vectors."""
    client = MilvusClient(uri=standalone.uri)
    name = f"vbt_m2e_{uuid.uuid4().hex[:8]}"
    try:
        vecs, partition_of = _build_milvus(client, name, modern=False)
        client.flush(name)
        source = _milvus_rows(client, name)
        backup_id = _backup(cli, STANDALONE_URL, store_dir, name)
    finally:
        client.drop_collection(name)
        client.close()
    target = memory_tmp_path / "edge"
    r = cli("restore", store_dir, f"qdrant-edge://{target}", "--backup", backup_id, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == N

    points, config, _ = edge_state(target / name)
    assert config["vectors"]["vec"]["size"] == DIM and config["vectors"]["vec"]["distance"] == "Cosine"
    assert {k: config["vectors"]["vec"]["hnsw_config"][k] for k in ("m", "ef_construct")} == {"m": 16,
                                                                                          "ef_construct": 64}
    pks = [i * 11 + 3 for i in range(N)]
    assert sorted(int(pid) for pid in points) == sorted(source) == pks
    scalars = tuple(k for k in SCALARS if k != "sp")
    for i, pk in enumerate(pks):
        row, (vector, payload) = source[pk], points[str(pk)]
        np.testing.assert_allclose(vector["vec"], vecs[i], rtol=0, atol=1e-6)  # unit vectors: Edge keeps them
        # a payload float comes back as Edge parses it: the same double, or (one in nine) its neighbour
        # (docs/COMPATIBILITY.md, "Qdrant Edge")
        assert {k: payload[k] for k in scalars if k not in ("f", "d")} == {
            k: row[k] for k in scalars if k not in ("f", "d")}, pk
        assert all(abs(payload[k] - row[k]) <= np.spacing(abs(row[k])) for k in ("f", "d")), pk
        assert payload["_partition"] == partition_of[pk]
        assert set(payload) == {*scalars, "_partition", *(k for k in ("color", "extra_n") if k in row)}, pk
        assert all(payload[k] == row[k] for k in ("color", "extra_n") if k in row), pk

    queries = _unit(np.random.default_rng(17), 20, DIM)
    got = edge_search(target / name, queries, "vec", exact=True)
    for qi, q in enumerate(queries):
        truth = [str(pks[j]) for j in np.argsort(-(vecs.astype(np.float64) @ q), kind="stable")[:10]]
        assert got[qi] == truth, qi


def _edge_local_points(client: QdrantClient, name: str) -> dict[str, Any]:
    """Local mode's points as edge_shards.state gives Edge's: id -> (vectors, payload), sparse ones as dicts."""
    return {str(pid): (edge_plain(p.vector), p.payload or {}) for pid, p in _scroll(client, name).items()}


def test_edge_to_qdrant_local_and_back(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    """Edge -> store -> Qdrant local mode -> store -> Edge: every point, vector and payload identical on both ends;
    the configuration that local mode keeps (each vector's: size, distance, datatype, its HNSW, multivector; sparse
    modifier) equal, and what it drops (collection HNSW, quantization, optimizers, payload indexes) said in the
    restore's notes."""
    src = memory_tmp_path / "device" / "shard"
    src.parent.mkdir()
    build_edge(src)  # dense Cosine with its own HNSW, float16, uint8, multivector, sparse IDF; int and UUID ids
    points, config, indexes = edge_state(src)
    qpath = memory_tmp_path / "qdrant"
    qurl = f"qdrant-local://{qpath}"
    r = cli("restore", store_dir, qurl, "--backup", _backup(cli, f"qdrant-edge://{src}", store_dir, "shard"),
            "--json")
    assert r.code == 0, r.stderr
    assert ("qdrant-client local mode does not keep these recorded settings: quantization_config, on_disk_payload, "
            "payload indexes") in r.json()["notes"]

    client = QdrantClient(path=str(qpath))
    try:
        local = _edge_local_points(client, "shard")
        params = client.get_collection("shard").config.params
    finally:
        client.close()
    assert local == points  # ids, each vector as Edge returned it (Cosine ones unit already), payloads
    assert isinstance(params.vectors, dict) and isinstance(params.sparse_vectors, dict)
    vectors = {k: v.model_dump(mode="json", exclude_none=True) for k, v in params.vectors.items()}
    assert {k: (v["size"], v["distance"], v.get("datatype", "float32")) for k, v in vectors.items()} == {
        k: (v["size"], v["distance"], v.get("datatype", "float32").lower()) for k, v in config["vectors"].items()}
    assert vectors["dense"]["hnsw_config"] == config["vectors"]["dense"]["hnsw_config"]
    assert vectors["multi"]["multivector_config"] == {"comparator": "max_sim"}
    assert params.sparse_vectors["sp"].modifier == m.Modifier.IDF

    second = _backup(cli, qurl, store_dir, "shard")
    dst = memory_tmp_path / "back"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", second, "--json")
    assert r.code == 0, r.stderr
    got, got_config, got_indexes = edge_state(dst / "shard")
    assert sorted(got) == sorted(points)
    for pid, (vector, payload) in points.items():
        got_vector, got_payload = got[pid]
        assert got_payload == payload, pid
        assert {k: v for k, v in got_vector.items() if k != "dense"} == {
            k: v for k, v in vector.items() if k != "dense"}, pid
        # Cosine: Edge normalises the unit vector it is given again (to the last bit)
        np.testing.assert_allclose(got_vector["dense"], vector["dense"], rtol=0, atol=1e-7)
    assert got_config["vectors"] == config["vectors"]
    assert got_config["sparse_vectors"] == config["sparse_vectors"]
    assert got_indexes == {} and indexes != {}  # local mode has no payload indexes
    assert got_config.get("quantization_config") is None and config["quantization_config"] is not None


def test_edge_text_indexes_through_qdrant_local(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    """Edge -> store -> Qdrant local mode -> store -> Edge with text indexes (edge_shards.build_texts): local mode
    keeps the two with scoring (for its text queries), stopwords and stemmer included, and its backup records them
    as Edge's did; the one without scoring it does not keep, and the restore says so. Back on Edge the two are the
    source's, as Edge reports them, and every text match and BM25 ranking on them is the source's."""
    src = memory_tmp_path / "device" / "texts"
    src.parent.mkdir()
    build_edge_texts(src)
    reported, _ = edge_text_indexes(src)
    queries = ["running", "the running", "qdrant backups", "runs und restored", "le vector"]
    matched, ranked = edge_text_matches(src, queries)

    def recorded(backup_id: str) -> dict[str, Any]:
        shown = cli("show", store_dir, backup_id, "--json")
        assert shown.code == 0, shown.stderr
        return {i["field_name"]: i["params"] for i in shown.json()["collection"]["indexes"]
                if i["index_type"] == "PAYLOAD_TEXT"}

    first = _backup(cli, f"qdrant-edge://{src}", store_dir, "texts")
    qurl = f"qdrant-local://{memory_tmp_path / 'qdrant'}"
    r = cli("restore", store_dir, qurl, "--backup", first, "--json")
    assert r.code == 0, r.stderr
    assert [n for n in r.json()["notes"] if "does not keep these recorded settings" in n] == [
        "qdrant-client local mode does not keep these recorded settings: on_disk_payload, payload indexes other "
        "than text indexes with scoring"]

    second = _backup(cli, qurl, store_dir, "texts")
    edge_recorded = recorded(first)
    assert set(edge_recorded) == {"body", "title", "note"}
    assert recorded(second) == {k: edge_recorded[k] for k in ("body", "title")}

    dst = memory_tmp_path / "back"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", second, "--json")
    assert r.code == 0, r.stderr
    assert not [n for n in r.json()["notes"] if "payload index" in n], r.json()["notes"]
    got_reported, _ = edge_text_indexes(dst / "texts")
    assert got_reported == {k: reported[k] for k in ("body", "title")}
    got_matched, got_ranked = edge_text_matches(dst / "texts", queries)
    assert got_matched == matched
    assert [dict(r) for r in got_ranked] == [dict(r) for r in ranked]


def test_edge_to_milvus_standalone_and_back(cli: Any, standalone: Any, store_dir: Path,
                                            memory_tmp_path: Path) -> None:
    """Edge -> store -> Milvus 2.3 -> store -> Edge, a shard of one dense vector (Milvus 2.3 allows one vector field
    per collection, and has no sparse vectors; test_qdrant_edge.py takes every other kind through Milvus Lite): every
    point comes back with its vector and payload, under the uuid5 id a VARCHAR key becomes (docs/FORMAT.md,
    "Restoring across engines"), and Edge's exact search on it agrees with exact search over the source's vectors."""
    src = memory_tmp_path / "device" / "docs"
    src.parent.mkdir()
    build_edge(src, half=False, uint8=False, multivector=False, sparse=False)
    points, config, _ = edge_state(src)
    name = f"vbt_e2m_{uuid.uuid4().hex[:8]}"
    first = _backup(cli, f"qdrant-edge://{src}", store_dir, "docs")
    client = MilvusClient(uri=standalone.uri)
    try:
        r = cli("restore", store_dir, STANDALONE_URL, "--backup", first, "--as", name, "--json")
        assert r.code == 0, r.stderr
        types = {f["name"]: f["type"] for f in client.describe_collection(name)["fields"]}
        assert types == {"id": DataType.VARCHAR, "dense": DataType.FLOAT_VECTOR}
        second = _backup(cli, STANDALONE_URL, store_dir, name)
    finally:
        client.drop_collection(name)
        client.close()
    dst = memory_tmp_path / "back"
    r = cli("restore", store_dir, f"qdrant-edge://{dst}", "--backup", second, "--as", "docs", "--json")
    assert r.code == 0, r.stderr
    got, got_config, _ = edge_state(dst / "docs")
    assert sorted(got) == sorted(str(uuid.uuid5(PK_NAMESPACE, pid)) for pid in points)
    for pid, (vector, payload) in points.items():
        got_vector, got_payload = got[str(uuid.uuid5(PK_NAMESPACE, pid))]
        assert got_payload == {**payload, "id": pid}, pid  # and the key it had, in the payload
        np.testing.assert_allclose(got_vector["dense"], vector["dense"], rtol=0, atol=1e-6)
    assert {k: (v["size"], v["distance"]) for k, v in got_config["vectors"].items()} == {
        k: (v["size"], v["distance"]) for k, v in config["vectors"].items()}
    # Edge's exact search on the shard that came back: exact search with numpy over the source's vectors
    ids = list(points)
    unit = np.array([points[p][0]["dense"] for p in ids], dtype=np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    queries = np.random.default_rng(29).normal(size=(10, DIM))
    truth = [[str(uuid.uuid5(PK_NAMESPACE, ids[j])) for j in np.argsort(-(unit @ qv), kind="stable")[:10]]
             for qv in queries]
    assert edge_search(dst / "docs", queries, "dense", exact=True) == truth
