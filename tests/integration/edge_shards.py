"""Qdrant Edge shards for the tests (tests/integration/test_qdrant_edge.py, test_drill_edge.py, the cross-engine
tests): one of every vector kind Edge holds, and what Edge itself holds and reports about a shard, reopened from disk.

Edge locks a shard (its write-ahead log) per open handle, in this process too: every helper closes what it opens.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as q

N = 300
DIM = 8


def uid(i: int) -> str:
    return str(uuid.UUID(int=(i * 7919 + 12345) << 64 | i))


def build(path: Path, *, half: bool = True, uint8: bool = True, multivector: bool = True, sparse: bool = True,
          ) -> None:
    """A shard with dense float32 (Cosine, its own HNSW), float16 and uint8 vectors, a multivector, a sparse vector
    with the IDF modifier (each but the first can be left out), payload indexes, scalar quantization, collection
    HNSW and optimizer settings; integer and UUID point ids; optimized, so its HNSW graphs are built."""
    rng = np.random.default_rng(3)
    vectors = {
        "dense": q.EdgeVectorParams(size=DIM, distance=q.Distance.Cosine,
                                    hnsw_config=q.HnswIndexConfig(m=8, ef_construct=48, full_scan_threshold=10)),
    }
    if half:
        vectors["half"] = q.EdgeVectorParams(size=4, distance=q.Distance.Dot, datatype=q.VectorStorageDatatype.Float16)
    if uint8:
        vectors["u8"] = q.EdgeVectorParams(size=4, distance=q.Distance.Euclid, datatype=q.VectorStorageDatatype.Uint8)
    if multivector:
        vectors["multi"] = q.EdgeVectorParams(size=3, distance=q.Distance.Dot,
                                              multivector_config=q.MultiVectorConfig(q.MultiVectorComparator.MaxSim))
    config = q.EdgeConfig(
        vectors=vectors, sparse_vectors={"sp": q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)} if sparse else {},
        hnsw_config=q.HnswIndexConfig(m=12, ef_construct=64, full_scan_threshold=10),
        quantization_config=q.ScalarQuantizationConfig(type=q.ScalarType.Int8, quantile=0.99, always_ram=True),
        optimizers=q.EdgeOptimizersConfig(indexing_threshold=10, deleted_threshold=0.3))
    shard = q.EdgeShard.create(str(path), config)
    try:
        points = []
        for i in range(N):
            pid: Any = i * 3 if i % 4 else uid(i)
            vec: dict[str, Any] = {"dense": rng.normal(size=DIM).tolist()}
            halves = rng.normal(size=4).tolist()
            if half:
                vec["half"] = halves
            if uint8:
                vec["u8"] = rng.integers(0, 256, 4).astype(float).tolist()
            if multivector:
                vec["multi"] = rng.normal(size=(1 + i % 3, 3)).tolist()
            idx = sorted({int(k) for k in rng.integers(0, 500, 1 + i % 4)})
            values = [float(np.float32(rng.random() + 0.01)) for _ in idx]
            if sparse:
                vec["sp"] = q.SparseVector(idx, values)
            payload: dict[str, Any] = {"tenant": f"t{i % 4}", "n": int(rng.integers(-(2**40), 2**40)),
                                       "score": float(rng.normal()), "ok": bool(i % 2),
                                       "nested": {"deep": [1, None, "s"], "k": i}}
            if i % 9 == 0:
                payload = {}
            points.append(q.Point(pid, vec, payload))
        for start in range(0, N, 128):
            shard.update(q.UpdateOperation.upsert_points(points[start:start + 128]))
        shard.update(q.UpdateOperation.create_field_index("tenant", q.KeywordIndexParams(is_tenant=True)))
        shard.update(q.UpdateOperation.create_field_index("n", q.IntegerIndexParams(lookup=True, range=False)))
        shard.update(q.UpdateOperation.create_field_index("score", q.PayloadSchemaType.Float))
        shard.optimize()
        shard.flush()
    finally:
        shard.close()


def plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if hasattr(v, "indices"):
        return {"indices": list(v.indices), "values": list(v.values)}
    return v


def state(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What Edge holds and reports about the shard at ``path``, reopened from disk: its points (id -> (vectors,
    payload), as it returns them), its configuration (the file it reloads it from) and its payload indexes."""
    shard = q.EdgeShard.load(str(path))
    try:
        points: dict[str, Any] = {}
        offset = None
        while True:
            records, offset = shard.scroll(q.ScrollRequest(offset=offset, limit=64, with_payload=True,
                                                           with_vector=True))
            for r in records:
                points[str(r.id)] = (plain(r.vector), r.payload or {})
            if offset is None:
                break
        indexes = {}
        for key, info in shard.info().payload_schema.items():
            p = info.params
            params = None if p is None else {a: str(getattr(p, a)) for a in dir(p) if not a.startswith("_")}
            indexes[key] = (str(info.data_type), params, info.points)
        assert shard.count(q.CountRequest(exact=True)) == len(points)
    finally:
        shard.close()
    return points, json.loads((path / "edge_config.json").read_text()), indexes


def search(path: Path, queries: np.ndarray, using: str, exact: bool) -> list[list[str]]:
    shard = q.EdgeShard.load(str(path))
    try:
        return [[str(h.id) for h in shard.query(q.QueryRequest(
            query=q.Query.Nearest(qv.tolist(), using=using), limit=10,
            params=q.SearchParams(exact=exact, hnsw_ef=128)))] for qv in queries]
    finally:
        shard.close()


#: words of the texts (build_texts): stopwords of the index's languages and its own, and forms of one stem
WORDS = ["the", "and", "der", "und", "qdrant", "vecbackup", "run", "runs", "running", "runner", "backup", "backups",
          "shard", "shards", "restore", "restored", "vector", "edge", "device", "store"]


def text_indexes(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The text indexes of the shard at ``path``, reopened from disk: as its info() reports them (each setting as
    plain values, read off Edge's objects here, without vecbackup) and as each segment keeps them (the indexed_fields
    of payload_index/config.json, the JSON Edge reloads them from)."""
    def plain(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, (set, frozenset)):
            return sorted(str(x) for x in v)
        if repr(v).startswith(type(v).__name__ + "."):  # an enum member: Language.English
            return repr(v)
        attrs = [a for a in dir(v) if not a.startswith("_") and not callable(getattr(v, a))]
        if not attrs:  # a marker: DisabledStemmer
            return type(v).__name__
        return {type(v).__name__: {a: plain(getattr(v, a)) for a in attrs}}

    shard = q.EdgeShard.load(str(path))
    try:
        reported = {key: (str(info.data_type), plain(info.params), info.points)
                    for key, info in shard.info().payload_schema.items()}
    finally:
        shard.close()
    kept = [json.loads(p.read_text())["indexed_fields"] for p in path.glob("segments/*/payload_index/config.json")]
    return reported, kept


def text_matches(path: Path, queries: list[str]) -> tuple[list[list[str]], list[list[tuple[str, float]]]]:
    """For each query: the points whose "body" matches it (MatchText, in id order), and the BM25 ranking of "body"
    and "title" (TextQuery: ids and scores)."""
    shard = q.EdgeShard.load(str(path))
    try:
        matched = []
        for text in queries:
            ids, offset = [], None
            while True:
                records, offset = shard.scroll(q.ScrollRequest(offset=offset, limit=100, filter=q.Filter(
                    must=[q.FieldCondition("body", match=q.MatchText(text))])))
                ids += [str(r.id) for r in records]
                if offset is None:
                    break
            matched.append(ids)
        ranked = [[(str(h.id), h.score) for h in shard.query(q.QueryRequest(
            query=q.TextQuery(field, text), limit=300))] for field in ("body", "title") for text in queries]
    finally:
        shard.close()
    return matched, ranked


def build_texts(path: Path) -> dict[str, str]:
    """A shard of 300 points with texts under "body", "title" and "note" and three text indexes: "body" with
    stopwords of two languages and its own words, the English snowball stemmer, phrase matching and BM25 scoring;
    "title" with French stopwords, the stemmer disabled and scoring; "note" with English stopwords and no scoring.
    Returns each point's body (by id)."""
    rng = np.random.default_rng(21)
    shard = q.EdgeShard.create(str(path), q.EdgeConfig(
        vectors={"": q.EdgeVectorParams(size=4, distance=q.Distance.Dot)},
        optimizers=q.EdgeOptimizersConfig(indexing_threshold=10)))
    try:
        shard.update(q.UpdateOperation.create_field_index("body", q.TextIndexParams(
            tokenizer=q.TokenizerType.Word, phrase_matching=True,
            stopwords=q.StopwordsSet(languages={q.Language.English, q.Language.German}, custom={"qdrant", "vecbackup"}),
            stemmer=q.SnowballParams(q.SnowballLanguage.English),
            scoring=q.TextScoringParams(q.TextScoringType.Bm25))))
        shard.update(q.UpdateOperation.create_field_index("title", q.TextIndexParams(
            stopwords=q.Language.French, stemmer=q.DisabledStemmer(), scoring=True)))
        shard.update(q.UpdateOperation.create_field_index("note", q.TextIndexParams(stopwords=q.Language.English)))
        bodies = {str(i): " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) for i in range(300)}
        shard.update(q.UpdateOperation.upsert_points([
            q.Point(int(i), rng.normal(size=4).tolist(), {
                "body": body, "title": " ".join(rng.choice([*WORDS, "le", "la", "les"], size=int(rng.integers(1, 5)))),
                "note": " ".join(rng.choice(WORDS, size=3))})
            for i, body in bodies.items()]))
        shard.optimize()
        shard.flush()
    finally:
        shard.close()
    return bodies
