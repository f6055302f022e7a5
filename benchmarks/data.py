"""The benchmark collection: int64 id, 128-d float32 vector, VARCHAR, JSON, ARRAY of ints, dynamic fields.

Rows are generated exactly as pymilvus hands them back from ``query``/``query_iterator``: a dict per
row, the vector as a list of Python floats, dynamic fields flattened into the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from vecbackup.schema import CollectionSpec, Field, FieldType

DIM = 128
_SOURCES = ["web", "pdf", "wiki", "news", "forum", "email"]
_WORDS = ["vector", "search", "backup", "index", "segment", "query", "shard", "replica", "embedding",
          "cluster", "latency", "recall", "milvus", "restore", "format", "column"]
_LANGS = ["en", "de", "fr", "es", "ja"]


def make_rows(n: int, *, start: int = 0, seed: int = 42, dim: int = DIM) -> list[dict[str, Any]]:
    """``n`` rows with ids ``start .. start+n-1`` (deterministic for a given seed and start)."""
    rng = np.random.default_rng([seed, start])
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    word_idx = rng.integers(0, len(_WORDS), size=(n, 6))
    n_tags = rng.integers(0, 9, size=n)
    tag_vals = rng.integers(0, 10_000, size=(n, 8))
    years = rng.integers(1995, 2025, size=n)
    scores = rng.random(size=n)
    views = rng.integers(0, 1_000_000, size=n)
    rows: list[dict[str, Any]] = []
    for j in range(n):
        i = start + j
        words = " ".join(_WORDS[k] for k in word_idx[j])
        rows.append({
            "id": i,
            "vec": vecs[j].tolist(),
            "title": f"Document {i}: {words}",
            "meta": {"source": _SOURCES[i % len(_SOURCES)], "year": int(years[j]),
                     "score": round(float(scores[j]), 4), "lang": _LANGS[i % len(_LANGS)]},
            "tags": tag_vals[j, : n_tags[j]].tolist(),
            # dynamic fields ($meta): pymilvus returns them as top-level keys
            "category": _SOURCES[(i * 7) % len(_SOURCES)],
            "views": int(views[j]),
        })
    return rows


def iter_batches(n: int, batch: int, *, seed: int = 42, dim: int = DIM) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, batch):
        yield make_rows(min(batch, n - start), start=start, seed=seed, dim=dim)


def spec(name: str = "bench") -> CollectionSpec:
    """The vecbackup description of the collection (what MilvusEngine.describe returns for it)."""
    return CollectionSpec(
        name=name,
        fields=(
            Field("id", FieldType.INT64, is_primary=True),
            Field("vec", FieldType.FLOAT_VECTOR, dim=DIM),
            Field("title", FieldType.VARCHAR, max_length=256),
            Field("meta", FieldType.JSON),
            Field("tags", FieldType.ARRAY, element_type=FieldType.INT64, max_capacity=8),
        ),
        enable_dynamic_field=True,
    )


HNSW_PARAMS = {"M": 16, "efConstruction": 100}


def create_collection(client: Any, name: str, dim: int = DIM) -> None:
    """Create the collection (no index yet: it is built after the data is flushed)."""
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=256)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    client.create_collection(name, schema=s, consistency_level="Strong")


def create_index(client: Any, name: str, index_type: str = "HNSW", params: dict[str, Any] | None = None) -> None:
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type=index_type, metric_type="L2", params=HNSW_PARAMS if params is None else params)
    client.create_index(name, ip)
