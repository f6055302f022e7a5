"""`vecbackup drill` on Qdrant Edge, the real engine: a backup of an Edge shard restored into a scratch shard beside
it passes every check (every vector kind compared field by field, search recall against exact search over the
backup); a scratch shard restored with a much weaker HNSW graph fails the search check with exit 12, its recall and
the live shard's in the message. The scratch shard never stays behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import qdrant_edge as q

from tests.integration.edge_shards import N, build
from vecbackup.errors import DrillFailed


def _backup(cli: Any, url: str, store: Path, name: str) -> str:
    r = cli("backup", url, store, "-c", name, "--json")
    assert r.code == 0, r.stderr
    return str(r.json()["backups"][0]["backup_id"])


def _checks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_drill_on_edge_passes_on_a_correct_restore(cli: Any, store_dir: Path, memory_tmp_path: Path) -> None:
    device = memory_tmp_path / "device"
    device.mkdir()
    build(device / "shard")  # dense float32 Cosine, float16, uint8, multivector, sparse; int and UUID ids
    backup_id = _backup(cli, f"qdrant-edge://{device / 'shard'}", store_dir, "shard")
    report = memory_tmp_path / "drill.json"
    r = cli("drill", store_dir, f"qdrant-edge://{device}", "-c", "shard", "--source",
            f"qdrant-edge://{device / 'shard'}", "--sample", "200", "--seed", "3", "--report-json", report)
    assert r.code == 0, r.stderr
    doc = orjson.loads(report.read_bytes())
    assert doc["ok"] is True and doc["backup_id"] == backup_id and doc["scratch_dropped"] is True
    checks = _checks(doc)
    assert {c["status"] for n, c in checks.items() if n != "text_search"} == {"passed"}, checks
    assert checks["row_count"]["details"] == {"backup_rows": N, "restored_rows": N, "source_rows": N,
                                              "source_drift": 0}
    # every field of 200 points as the scratch shard returns them: each vector kind, payloads, ids
    assert (checks["sample_rows"]["details"]["sampled"], checks["sample_rows"]["details"]["different"]) == (200, 0)
    search = checks["search_recall"]["details"]
    assert search["field"] == "dense" and search["exact_rows"] == N  # exact search over every row of the backup
    assert search["restored_recall"] >= 0.95 and search["source_recall"] >= 0.95
    assert sorted(p.name for p in device.iterdir()) == ["shard"]  # the scratch shard is gone


def test_drill_on_edge_fails_when_the_restored_index_is_worse(cli: Any, store_dir: Path,
                                                             memory_tmp_path: Path) -> None:
    """500 points of 64-d normal vectors (hard for a graph), HNSW M=16 efConstruction=100 on the source; the scratch
    copy restored with M=2, efConstruction=4 and searched with ef=10 finds a fraction of the true neighbours."""
    device = memory_tmp_path / "device"
    device.mkdir()
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 64))
    shard = q.EdgeShard.create(str(device / "emb"), q.EdgeConfig(
        vectors={"v": q.EdgeVectorParams(size=64, distance=q.Distance.Euclid)},
        hnsw_config=q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10),
        optimizers=q.EdgeOptimizersConfig(indexing_threshold=10)))  # in KB: indexed, and searched by the graph
    try:
        shard.update(q.UpdateOperation.upsert_points([q.Point(i, {"v": v.tolist()}, {"i": i})
                                                      for i, v in enumerate(vectors)]))
        shard.optimize()
        info = shard.info()
        assert (info.points_count, info.indexed_vectors_count) == (500, 500)
    finally:
        shard.close()
    _backup(cli, f"qdrant-edge://{device / 'emb'}", store_dir, "emb")
    report = memory_tmp_path / "drill.json"
    # the target names the shard itself: the scratch shard goes beside it
    r = cli("drill", store_dir, f"qdrant-edge://{device / 'emb'}", "-c", "emb", "--source",
            f"qdrant-edge://{device / 'emb'}", "--index-params", "v:M=2,efConstruction=4", "--ef", "10", "--seed", "3",
            "--report-json", report)
    assert r.code == DrillFailed.exit_code == 12, r.stderr
    check = _checks(orjson.loads(report.read_bytes()))["search_recall"]
    d = check["details"]
    assert check["status"] == "failed", check
    assert d["exact_rows"] == 500 and d["compared_with_source"] is True and d["source_unindexed_rows"] == 0
    assert d["restored_recall"] < d["source_recall"] - 0.05, d
    assert (f"search_recall: recall@10 of the restored copy {d['restored_recall']:.3f} is more than "
            f"--recall-tolerance 0.05 below the live source's {d['source_recall']:.3f}") in r.error_line()
    others = {n: c["status"] for n, c in _checks(orjson.loads(report.read_bytes())).items()
              if n not in ("search_recall", "text_search")}
    assert set(others.values()) == {"passed"}, others  # the data itself is intact
    assert sorted(p.name for p in device.iterdir()) == ["emb"]
