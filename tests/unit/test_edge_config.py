"""Qdrant Edge's configuration <-> a Qdrant collection's (engines/qdrant/edge_config.py), and qdrant-edge:// URLs."""

from __future__ import annotations

import pytest

from vecbackup.engines.qdrant.edge_config import collection_config, edge_settings
from vecbackup.engines.qdrant.model import spec_from_collection_info
from vecbackup.errors import UsageError
from vecbackup.urls import is_edge_url, is_engine_url, is_qdrant_url, parse_edge_url

#: what Edge 0.9 wrote for a shard (edge_config.json), vectors in its own order
EDGE = {
    "on_disk_payload": True, "payload_memory": "cold", "wal_enabled": False, "max_search_threads": 2,
    "vectors": {"half": {"size": 4, "distance": "Dot", "datatype": "float16",
                         "hnsw_config": {"m": 8, "ef_construct": 50, "full_scan_threshold": 100,
                                         "max_indexing_threads": 0}},
                "dense": {"size": 8, "distance": "Cosine"}},
    "sparse_vectors": {"sp": {"modifier": "idf", "full_scan_threshold": 77}},
    "hnsw_config": {"m": 12, "ef_construct": 64, "full_scan_threshold": 5000, "max_indexing_threads": 0},
    "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}},
    "optimizers": {"deleted_threshold": None, "indexing_threshold": 1000, "prevent_unoptimized": None},
}


def test_an_edge_config_is_the_config_a_server_reports() -> None:
    config, only, notes = collection_config(EDGE)
    assert notes == []
    assert only == {"wal_enabled": False, "max_search_threads": 2}
    assert config == {
        "params": {"vectors": {"dense": {"size": 8, "distance": "Cosine"}, "half": EDGE["vectors"]["half"]},
                   "sparse_vectors": {"sp": {"index": {"full_scan_threshold": 77}, "modifier": "idf"}},
                   "on_disk_payload": True, "payload": {"memory": "cold"}},
        "hnsw_config": EDGE["hnsw_config"], "quantization_config": EDGE["quantization_config"],
        "optimizer_config": {"indexing_threshold": 1000},
    }
    assert list(config["params"]["vectors"]) == ["dense", "half"]  # by name, as a server's: the fields' order
    spec = spec_from_collection_info("s", {"config": config}).spec
    assert [f.name for f in spec.fields] == ["id", "dense", "half", "sp"]


def test_the_unnamed_vector_is_a_single_vector_config() -> None:
    config, _, _ = collection_config({"vectors": {"": {"size": 3, "distance": "Dot"}}, "sparse_vectors": {}})
    assert config == {"params": {"vectors": {"size": 3, "distance": "Dot"}}}
    edge, notes = edge_settings({"vectors_config": {"size": 3, "distance": "Dot"}}, {})
    assert edge["vectors"] == {"": {"size": 3, "distance": "Dot"}} and notes == []


def test_a_server_config_onto_edge() -> None:
    body = {"vectors_config": {"a": {"size": 4, "distance": "Euclid", "hnsw_config": {"m": 4}}},
            "sparse_vectors_config": {"s": {"index": {"on_disk": True}, "modifier": "none"}},
            "hnsw_config": {"m": 32, "ef_construct": 200, "full_scan_threshold": 10000},
            "optimizers_config": {"indexing_threshold": 20000, "flush_interval_sec": 5, "memmap_threshold": 1},
            "shard_number": 2, "replication_factor": 3, "wal_config": {"wal_capacity_mb": 32}, "metadata": {},
            "payload": {"memory": "cached"}}
    edge, notes = edge_settings(body, {"wal_enabled": False, "unknown": 1})
    # a per-vector HNSW difference is whole in Edge: the collection's, then Qdrant's defaults, fill it
    assert edge["vectors"]["a"]["hnsw_config"] == {"m": 4, "ef_construct": 200, "full_scan_threshold": 10000}
    assert edge["sparse_vectors"] == {"s": {"on_disk": True}}
    assert edge["optimizers"] == {"indexing_threshold": 20000}
    assert edge["payload_memory"] == "cached" and edge["wal_enabled"] is False and "unknown" not in edge
    assert notes == ["Qdrant Edge has no optimizer setting flush_interval_sec, memmap_threshold; not re-applied",
                     "Qdrant Edge (one shard, in-process) keeps none of these recorded settings: shard_number, "
                     "replication_factor, wal_config"]


def test_edge_urls() -> None:
    assert parse_edge_url("qdrant-edge:///data/shard/").path == "/data/shard"
    assert parse_edge_url("qdrant-edge:///data/a%20b").display == "qdrant-edge:///data/a b"
    assert is_edge_url("QDRANT-EDGE:///x") and is_engine_url("qdrant-edge:///x") and not is_qdrant_url("qdrant-edge:///x")
    for bad in ("qdrant-edge://relative", "qdrant-edge:///x?wal=1", "qdrant-edge://"):
        with pytest.raises(UsageError, match="absolute folder path"):
            parse_edge_url(bad)
