"""A Qdrant Edge shard's configuration in the one Qdrant representation (docs/FORMAT.md, "Qdrant collections";
docs/COMPATIBILITY.md, "Qdrant Edge"): the pure translation, no I/O and no qdrant_edge.

Edge keeps its configuration in ``edge_config.json`` (Edge 0.9 has no call that reports it: that file is what it
reloads a shard from). Its keys are a Qdrant server's with a few differences, taken care of here:

* the vectors of a shard are one map, the unnamed vector under the name ``""`` (a server's config holds that one
  as a single VectorParams), in an order that changes when Edge rewrites the file (a server's are by name, as
  they are taken here: the spec's fields, and so the rows' digests, follow it);
* a sparse vector's index settings (full_scan_threshold, on_disk, memory, datatype) sit beside its modifier
  (a server nests them under ``index``);
* ``optimizers`` is a server's ``optimizer_config`` (six of its keys); ``payload_memory`` and ``id_tracker_memory``
  are a server's ``params.payload.memory`` and ``params.id_tracker.memory``;
* ``wal_enabled``, ``max_search_threads`` and ``search_pool_core`` have no server counterpart: they are kept
  beside the Qdrant config in the spec's extra (:data:`EDGE_KEY`), restored onto Edge and noted elsewhere.

A server's settings Edge has no place for (shards, replication, WAL size, strict mode, metadata, the optimizer's
other keys) are left out of a restore onto Edge with a note.
"""

from __future__ import annotations

from typing import Any

from vecbackup.words import number

#: the spec's extra key of the Edge-only settings (beside "qdrant", the collection's Qdrant config)
EDGE_KEY = "qdrant_edge"
#: edge_config.json keys with no Qdrant-server counterpart
EDGE_ONLY = ("wal_enabled", "max_search_threads", "search_pool_core")
#: the optimizer settings Edge has (a server's optimizer_config has these and more)
EDGE_OPTIMIZERS = ("deleted_threshold", "vacuum_min_vector_number", "default_segment_number", "max_segment_size",
                   "indexing_threshold", "prevent_unoptimized")
#: a sparse vector's index settings: flat in Edge, under "index" on a server
SPARSE_INDEX = ("full_scan_threshold", "on_disk", "memory", "datatype")
#: Qdrant's HNSW defaults, for a per-vector HNSW config Edge needs whole where a server takes a difference
HNSW_DEFAULTS = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000}
#: create_collection keywords Edge has no place for (a restore onto Edge leaves them out, with a note)
SERVER_ONLY = ("shard_number", "sharding_method", "replication_factor", "write_consistency_factor", "wal_config",
               "strict_mode_config", "metadata")


def _clean(value: Any) -> Any:
    """``value`` without nulls (edge_config.json spells an unset optimizer setting null)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def collection_config(edge: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """edge_config.json -> (the Qdrant CollectionConfig a server collection of that configuration reports, the
    Edge-only settings, notes on keys this vecbackup does not know)."""
    edge = _clean(edge)
    notes: list[str] = []
    params: dict[str, Any] = {}
    vectors = dict(sorted((edge.get("vectors") or {}).items()))  # by name, as a server's (Edge's order varies)
    params["vectors"] = vectors[""] if set(vectors) == {""} else vectors
    sparse: dict[str, Any] = {}
    for name, sp in sorted((edge.get("sparse_vectors") or {}).items()):
        entry: dict[str, Any] = {}
        index = {k: sp[k] for k in SPARSE_INDEX if k in sp}
        if index:
            entry["index"] = index
        if "modifier" in sp:
            entry["modifier"] = sp["modifier"]
        unknown = sorted(set(sp) - {*SPARSE_INDEX, "modifier"})
        if unknown:
            notes.append(f"sparse vector {name!r}: Edge {number(len(unknown), 'setting')} {', '.join(unknown)} not "
                         "known to this vecbackup; not recorded")
        sparse[name] = entry
    if sparse:
        params["sparse_vectors"] = sparse
    if "on_disk_payload" in edge:
        params["on_disk_payload"] = edge["on_disk_payload"]
    if "payload_memory" in edge:
        params["payload"] = {"memory": edge["payload_memory"]}
    if "id_tracker_memory" in edge:
        params["id_tracker"] = {"memory": edge["id_tracker_memory"]}
    config: dict[str, Any] = {"params": params}
    for key in ("hnsw_config", "quantization_config"):
        if edge.get(key):
            config[key] = edge[key]
    if edge.get("optimizers"):
        config["optimizer_config"] = edge["optimizers"]
    only = {k: edge[k] for k in EDGE_ONLY if k in edge}
    known = {"vectors", "sparse_vectors", "on_disk_payload", "payload_memory", "id_tracker_memory", "hnsw_config",
             "quantization_config", "optimizers", *EDGE_ONLY}
    for key in sorted(set(edge) - known):
        notes.append(f"Edge setting {key} is not known to this vecbackup; not recorded")
    return config, only, notes


def edge_settings(body: dict[str, Any], edge_only: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The JSON of the create_collection call that recreates a collection on a server (model.create_calls, every
    value as JSON) and the recorded Edge-only settings -> the configuration of an Edge shard in edge_config.json's
    shape, with a note for every setting Edge has no place for."""
    body = _clean(body)
    notes: list[str] = []
    edge: dict[str, Any] = {}
    vectors = body.get("vectors_config")
    if isinstance(vectors, dict) and isinstance(vectors.get("size"), int):
        vectors = {"": vectors}
    collection_hnsw = body.get("hnsw_config") or {}
    edge["vectors"] = {}
    for name, vp in (vectors or {}).items():
        vp = dict(vp)
        if vp.get("hnsw_config"):  # a difference on a server; whole in Edge
            vp["hnsw_config"] = {**HNSW_DEFAULTS, **collection_hnsw, **vp["hnsw_config"]}
        edge["vectors"][name] = vp
    sparse = {}
    for name, sp in (body.get("sparse_vectors_config") or {}).items():
        entry = dict(sp.get("index") or {})
        if sp.get("modifier") not in (None, "none"):
            entry["modifier"] = sp["modifier"]
        sparse[name] = entry
    edge["sparse_vectors"] = sparse
    if "on_disk_payload" in body:
        edge["on_disk_payload"] = body["on_disk_payload"]
    if (body.get("payload") or {}).get("memory") is not None:
        edge["payload_memory"] = body["payload"]["memory"]
    if (body.get("id_tracker") or {}).get("memory") is not None:
        edge["id_tracker_memory"] = body["id_tracker"]["memory"]
    if collection_hnsw:
        edge["hnsw_config"] = {**HNSW_DEFAULTS, **collection_hnsw}
    if body.get("quantization_config"):
        edge["quantization_config"] = body["quantization_config"]
    optimizers = body.get("optimizers_config") or {}
    kept = {k: v for k, v in optimizers.items() if k in EDGE_OPTIMIZERS}
    if kept:
        edge["optimizers"] = kept
    dropped = sorted(set(optimizers) - set(EDGE_OPTIMIZERS))
    if dropped:
        notes.append("Qdrant Edge has no optimizer setting " + ", ".join(dropped) + "; not re-applied")
    dropped = [k for k in SERVER_ONLY if k in body and not (k == "metadata" and not body[k])]
    if dropped:
        notes.append("Qdrant Edge (one shard, in-process) keeps none of these recorded settings: " + ", ".join(dropped))
    edge.update({k: v for k, v in edge_only.items() if k in EDGE_ONLY})
    return edge, notes


__all__ = ["EDGE_KEY", "EDGE_ONLY", "collection_config", "edge_settings"]
