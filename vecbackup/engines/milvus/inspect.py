"""Milvus as the drill's Inspector: rows by primary key, vector search with the index's search parameters, how
much of a collection its index covers, dropping the scratch collection."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from vecbackup.engines.base import ENGINE_ROUTED, PhaseReport, SearchParams
from vecbackup.engines.milvus.connection import Connection
from vecbackup.engines.milvus.rows import _number, chunk_to_rows, rows_to_chunk
from vecbackup.errors import Unsupported
from vecbackup.format.codec import Chunk
from vecbackup.schema import VECTOR_DTYPES, CollectionSpec, FieldType


class MilvusInspector(Connection):
    def wait_index(self, name: str, report: PhaseReport | None = None, timeout: float = 600.0) -> None:
        """Wait until every index of ``name`` has indexed all rows (used by tests and drills), telling ``report``
        the rows each covers while it waits."""
        deadline = time.monotonic() + timeout
        for index_name in self.client.list_indexes(name):
            while time.monotonic() < deadline:
                indexed, total, finished = self.index_rows(name, index_name)
                if finished:
                    break
                if report is not None:
                    report(f"waiting for index {index_name}", *((indexed, total) if total else ()))
                time.sleep(0.5)


    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        """A backup chunk's rows as (primary key, row), in the form fetch_rows returns them."""
        pk = spec.primary.name
        return [(row[pk], row) for row in chunk_to_rows(spec, chunk)]

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        """The rows of ``name`` with these primary keys (in ``partition`` unless ENGINE_ROUTED), round-tripped
        through the chunk conversion so they compare exactly with rows_of_chunk."""
        self.ensure_loaded(name)
        kwargs: dict[str, Any] = {"output_fields": ["*"]}
        if partition != ENGINE_ROUTED:
            kwargs["partition_names"] = [partition]
        out: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            got = self._call(f"get rows of {name!r}", self.client.get, name, ids=keys[start:start + 500], **kwargs)
            rows = list(got)
            if rows:
                out.update(self.rows_of_chunk(spec, rows_to_chunk(spec, partition, rows)))
        return out

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        """The value of vector field ``field_name`` in a row from rows_of_chunk (None if it has none)."""
        return row.get(field_name)

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        values = chunk.columns[spec.primary.name].values
        return values.tolist() if isinstance(values, np.ndarray) else list(values)

    def _index_of(self, name: str, field_name: str) -> dict[str, Any] | None:
        """describe_index of the index on ``field_name`` of collection ``name`` (what was built, not recorded)."""
        for index_name in self._call(f"list indexes of {name!r}", self.client.list_indexes, name):
            d = self._call(f"describe index {index_name!r}", self.client.describe_index, name, index_name)
            if d.get("field_name") == field_name:
                return dict(d)
        return None

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        index = self._index_of(name, field_name)
        if index is None or index.get("indexed_rows") is None:
            return None
        return max(0, self.count(name) - int(index["indexed_rows"]))

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        """Primary keys of the top ``k`` hits for each query vector (values as rows_of_chunk gives them), with
        the metric of the field's recorded index and search parameters for the index the collection has."""
        field = spec.field(field_name)
        recorded = next((i for i in spec.indexes if i.field_name == field_name), None)
        t = field.type
        if t in (FieldType.FLOAT16_VECTOR, FieldType.BFLOAT16_VECTOR, FieldType.INT8_VECTOR):
            data: list[Any] = [np.frombuffer(q, dtype=VECTOR_DTYPES[t]) for q in queries]
        elif t in (FieldType.FLOAT_VECTOR, FieldType.BINARY_VECTOR, FieldType.SPARSE_FLOAT_VECTOR):
            data = list(queries)
        else:
            raise Unsupported(f"vector search on {t.value} fields is not supported by the drill yet")
        self.ensure_loaded(name)
        built = self._index_of(name, field_name) or {}
        index_type = str(built.get("index_type") or "").upper()
        search: dict[str, Any] = {}
        if index_type.startswith("HNSW"):
            search["ef"] = max(params.ef, k)
        elif index_type == "DISKANN":
            search["search_list"] = max(params.ef, k)
        elif "IVF" in index_type or index_type == "SCANN":
            nlist = _number(built.get("nlist"))
            search["nprobe"] = min(params.nprobe, nlist) if isinstance(nlist, int) and nlist > 0 else params.nprobe
        search_params: dict[str, Any] = {"params": search}
        metric = built.get("metric_type") or (recorded.metric_type if recorded else None)
        if metric:
            search_params["metric_type"] = metric
        pk = spec.primary.name
        out: list[list[Any]] = []
        for start in range(0, len(data), 16):
            res = self._call(f"search {name!r}", self.client.search, name, data=data[start:start + 16],
                             anns_field=field_name, limit=k, search_params=search_params, output_fields=[pk],
                             consistency_level="Strong")
            for hits in res:
                out.append([h[pk] if pk in h else h["id"] for h in hits])
        return out

    def text_search(self, spec: CollectionSpec, name: str, field_name: str, queries: list[str], k: int,
                    keys: list[Any] | None = None) -> list[list[tuple[Any, float]]]:
        """(key, score) of the top ``k`` hits of each text query on BM25 output field ``field_name``, best first
        (scores as the engine reports them: Milvus Lite gives the negated BM25 score, smaller is better); with
        ``keys``, query i is searched in the row of keys[i] only (one request per query)."""
        self.ensure_loaded(name)
        pk = spec.primary.name
        built = self._index_of(name, field_name) or {}
        search_params: dict[str, Any] = {"params": {}}
        if built.get("metric_type"):
            search_params["metric_type"] = built["metric_type"]
        batches: list[tuple[list[str], str | None]] = []
        if keys is None:
            batches = [(queries[i:i + 16], None) for i in range(0, len(queries), 16)]
        else:
            batches = [([q], f"{pk} in {orjson.dumps([key]).decode()}") for q, key in zip(queries, keys, strict=True)]
        out: list[list[tuple[Any, float]]] = []
        for data, expr in batches:
            kwargs: dict[str, Any] = {"filter": expr} if expr else {}
            res = self._call(f"search {name!r}", self.client.search, name, data=data, anns_field=field_name,
                             limit=k, search_params=search_params, output_fields=[pk], consistency_level="Strong",
                             **kwargs)
            for hits in res:
                out.append([(h[pk] if pk in h else h["id"], float(h["distance"])) for h in hits])
        return out

    def drop_collection(self, name: str) -> None:
        self._loaded_by_us.discard(name)
        self._call(f"drop {name!r}", self.client.drop_collection, name)
