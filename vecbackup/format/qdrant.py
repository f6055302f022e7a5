"""How a Qdrant collection is held in the engine-neutral format (docs/FORMAT.md, "Qdrant collections"): the names
and rules a reader of a Qdrant backup needs, shared by the Qdrant adapter and the cross-engine mapping. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vecbackup.schema import DYNAMIC_COLUMN

#: the primary-key field: every point id as a string (str(int) or the canonical UUID)
ID_FIELD = "id"
#: a UUID string is 36 characters; an unsigned 64-bit integer at most 20 digits
ID_MAX_LENGTH = 36
#: field name used for the unnamed (default) vector, with extra {"qdrant_name": ""}
UNNAMED_VECTOR_FIELD = "vector"
#: Qdrant distance -> engine-neutral metric_type
METRICS = {"Cosine": "COSINE", "Euclid": "L2", "Dot": "IP", "Manhattan": "MANHATTAN"}
#: index_type prefix of payload indexes: PAYLOAD_KEYWORD, PAYLOAD_TEXT, ...
PAYLOAD_INDEX_PREFIX = "PAYLOAD_"
#: Qdrant's HNSW parameter names -> the engine-neutral (Milvus) ones a CollectionSpec's Index holds
HNSW_NAMES = {"m": "M", "ef_construct": "efConstruction"}


def is_single_vector(vectors: Any) -> bool:
    """config.params.vectors is either one VectorParams (the unnamed vector) or name -> VectorParams."""
    return isinstance(vectors, dict) and isinstance(vectors.get("size"), int)


def vector_configs(params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    vectors: dict[str, Any] = params.get("vectors") or {}
    if is_single_vector(vectors):
        return [("", vectors)]
    return list(vectors.items())


def field_names(qnames: Sequence[str]) -> list[str]:
    """Field names for the Qdrant vector names: the name itself unless it is "" (-> "vector") or
    would clash with "id", "$meta" or another field; then ``<base>_<k>`` with the smallest free k."""
    taken = {ID_FIELD, DYNAMIC_COLUMN}
    out: list[str | None] = []
    for q in qnames:
        if q and q not in taken:
            taken.add(q)
            out.append(q)
        else:
            out.append(None)
    for i, q in enumerate(qnames):
        if out[i] is None:
            base = q or UNNAMED_VECTOR_FIELD
            name, k = base, 1
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            out[i] = name
    return [n for n in out if n is not None]


__all__ = ["HNSW_NAMES", "ID_FIELD", "ID_MAX_LENGTH", "METRICS", "PAYLOAD_INDEX_PREFIX", "UNNAMED_VECTOR_FIELD",
           "field_names", "is_single_vector", "vector_configs"]
