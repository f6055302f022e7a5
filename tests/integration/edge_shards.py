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
