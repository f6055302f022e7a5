"""Qdrant as the drill's Inspector: points by id, vector search with the drill's ``hnsw_ef``, how much of a
collection its HNSW index covers, dropping the scratch collection."""

from __future__ import annotations

from typing import Any

from vecbackup.engines.base import ENGINE_ROUTED, PhaseReport, SearchParams
from vecbackup.engines.qdrant.connection import Connection
from vecbackup.engines.qdrant.model import (
    _vector_layout,
    chunk_to_points,
    records_to_chunk,
    str_to_point_id,
)
from vecbackup.errors import Unsupported
from vecbackup.format.codec import Chunk
from vecbackup.format.qdrant import ID_FIELD
from vecbackup.schema import CollectionSpec


class QdrantInspector(Connection):
    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        """A backup chunk's points as (point id, point), in the form fetch_rows returns them."""
        return [(p["id"], p) for p in chunk_to_points(spec, chunk)]

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        """The points of ``name`` with these ids, round-tripped through the chunk conversion."""
        kwargs: dict[str, Any] = {"with_payload": True, "with_vectors": True}
        if partition != ENGINE_ROUTED:
            kwargs["shard_key_selector"] = self._shard_key(spec, partition)
        out: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), 256):
            records = self._call(f"retrieve points of {name!r}", self.client.retrieve, name,
                                 ids=keys[start:start + 256], **kwargs)
            if records:
                out.update(self.rows_of_chunk(spec, records_to_chunk(spec, partition, records)))
        return out

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        """The value of vector field ``field_name`` in a point from rows_of_chunk (None if it has none)."""
        for f, q, _ in _vector_layout(spec):
            if f.name == field_name:
                vector = row["vector"]
                return vector.get(q) if isinstance(vector, dict) else vector
        return None

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        return [str_to_point_id(s) for s in chunk.columns[ID_FIELD].values]

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        """Points the HNSW index does not cover (Qdrant searches them exactly): for a collection with one dense
        vector, points_count - indexed_vectors_count; unknown with several."""
        info = self._call(f"get collection {name!r}", self.client.get_collection, name)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and len(vectors) != 1:
            return None
        if info.points_count is None or info.indexed_vectors_count is None:
            return None
        return max(0, int(info.points_count) - int(info.indexed_vectors_count))

    def wait_index(self, name: str, report: PhaseReport | None = None) -> None:
        """Qdrant answers searches while it indexes (the rest by exact search); nothing to wait for."""

    def text_search(self, spec: CollectionSpec, name: str, field_name: str, queries: list[str], k: int,
                    keys: list[Any] | None = None) -> list[list[tuple[Any, float]]]:
        raise Unsupported("Qdrant has no BM25 functions: no full-text search to check")

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        """Ids of the top ``k`` points for each query vector (values as vector_of gives them)."""
        layout = {f.name: (q, kind) for f, q, kind in _vector_layout(spec)}
        if field_name not in layout or layout[field_name][1] == "multi":
            raise Unsupported(f"vector search on field {field_name!r} is not supported by the drill yet")
        q, kind = layout[field_name]
        search = self._m.SearchParams(hnsw_ef=max(params.ef, k), exact=False)
        out: list[list[Any]] = []
        for query in queries:
            vector = self._m.SparseVector(**query) if kind == "sparse" else query
            res = self._call(f"search {name!r}", self.client.query_points, name, query=vector, using=q or None,
                             limit=k, with_payload=False, with_vectors=False, search_params=search)
            out.append([p.id for p in res.points])
        return out

    def drop_collection(self, name: str) -> None:
        self._call(f"delete {name!r}", self.client.delete_collection, name)
