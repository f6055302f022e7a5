"""The cross-server matrix: a backup from each Milvus engine here restored onto each other one (Lite -> Lite,
Lite -> standalone 2.3, standalone -> Lite, standalone -> standalone) and through Qdrant local mode back into
Milvus, with a collection of every type all of them hold, big enough (20,000 rows of 128-d normal vectors) that
HNSW is really approximate. Each Milvus cell runs the drill on the target against the live source, keeps its
restored copy and compares every row and field, the partitions, the schema and the indexes (parameters where both
ends report them).

The source collections are built once per test session (tests/integration/common.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.datasets import COMMON_PARTITIONS, COMMON_SCALARS, index_summary, read_keys, read_rows
from tests.integration.common import N, Side, Source, cli_json, run_cli

pytestmark = [pytest.mark.filterwarnings("ignore:Local mode performs exact"),
              pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")]


def _fields(fields: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {f["name"]: (f["type"], f.get("element_type"), f.get("is_primary", False), dict(f.get("params") or {}))
            for f in fields}


def _drill(store: Path, backup_id: str, target: Side, source: Side, tmp: Path) -> dict[str, Any]:
    """`vecbackup drill --keep`: the restore under test is the drill's, kept for the comparisons that follow."""
    report, junit = tmp / f"drill-{source.kind}-{target.kind}.json", tmp / "drill.xml"
    code, _, err = run_cli("drill", store, target.url, "--backup", backup_id, "--source", source.url, "--keep",
                           "--report-json", report, "--junit", junit, "--seed", "3", "--sample", "200")
    assert report.exists(), (code, err)  # a drill that could not start writes no report: say why
    doc: dict[str, Any] = orjson.loads(report.read_bytes())
    assert code == 0, (err, doc["failures"])
    # the three recall numbers are in the JUnit report too
    search = next(c for c in doc["checks"] if c["name"] == "search_recall")["details"]
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    for key in ("restored_recall", "source_recall", "restored_vs_source"):
        assert float(props[f"search_recall.{key}"] or "nan") == search[key], key
    return doc


@pytest.mark.parametrize("src,dst", [("lite", "lite"), ("lite", "standalone"), ("standalone", "lite"),
                                     ("standalone", "standalone")])
def test_milvus_to_milvus(src: str, dst: str, sides: dict[str, Side], sources: dict[str, Source],
                          matrix_store: Path, tmp_path: Path) -> None:
    """The drill restores the backup onto the target and checks it against the live source; its scratch copy is
    kept and compared with the source in full."""
    source, target = sources[src], sides[dst]
    report = _drill(matrix_store, source.backup_id, target, source.side, tmp_path)
    name = report["scratch_collection"]
    try:
        checks = {c["name"]: c for c in report["checks"]}
        assert {c["status"] for n, c in checks.items() if n != "text_search"} == {"passed"}, checks
        assert checks["text_search"]["status"] == "skipped"  # no BM25 function
        search = checks["search_recall"]["details"]
        assert search["exact_rows"] == N and search["queries"] == 100 and search["metric"] == "COSINE"
        assert search["search_params"] == {"ef": 512, "nprobe": 64} and search["compared_with_source"] is True
        assert search["restored_recall"] >= search["source_recall"] - 0.05, search
        assert search["restored_recall"] >= 0.9 and search["source_recall"] >= 0.9, search
        assert checks["sample_rows"]["details"]["sampled"] == 200
        assert checks["row_count"]["details"] == {"backup_rows": N, "restored_rows": N, "source_rows": N,
                                                  "source_drift": 0}

        # every row and field, and every partition's rows
        assert read_rows(target.client, name) == source.rows
        for p in COMMON_PARTITIONS:
            assert read_keys(target.client, name, p) == source.partition_keys[p]
        assert sorted(target.client.list_partitions(name)) == sorted(COMMON_PARTITIONS)

        # the schema: equal, except a limit the source did not report (Milvus Lite: max_length of ARRAY<VARCHAR>
        # elements), which the backup measured from the rows and the target was created with
        got, want = _fields(target.client.describe_collection(name)["fields"]), _fields(source.fields)
        assert got.keys() == want.keys()
        longest = max(len(w.encode()) for r in source.rows.values() for w in r["words"])
        for fname, (ftype, etype, primary, params) in want.items():
            g = got[fname]
            assert g[:3] == (ftype, etype, primary), fname
            if src == "lite" and fname == "words" and dst != "lite":
                assert "max_length" not in params  # Lite does not report it ...
                assert g[3] == {"max_capacity": 4, "max_length": longest}  # ... the backup measured it
                assert any("'words': max_length" in n and "measured" in n for n in report["notes"]), report["notes"]
            elif not (dst == "lite" and fname == "words"):  # Lite never reports the element max_length
                assert g[3] == params, fname

        # the index: type and metric always; build parameters where both ends report them
        idx = index_summary(target.client, name)["embedding"]
        assert (idx["index_type"], idx["metric_type"]) == ("HNSW", "COSINE")
        if src == dst == "standalone":
            assert (idx["M"], idx["efConstruction"]) == ("24", "180")
        elif src == "lite" and dst == "standalone":  # unknown in the backup; the server needs some: knowhere's
            assert (idx["M"], idx["efConstruction"]) == ("16", "200")
            assert any("knowhere's defaults M=16,efConstruction=200" in n for n in report["notes"]), report["notes"]
    finally:
        target.client.drop_collection(name)


@pytest.mark.parametrize("src", ["standalone"])
def test_milvus_through_qdrant_and_back(src: str, sides: dict[str, Side], sources: dict[str, Source],
                                        matrix_store: Path, memory_tmp_path: Path) -> None:
    """Milvus -> Qdrant (local mode) -> the same Milvus: ids come back as text, scalars and partitions as dynamic
    fields, everything else exactly (vectors unit-normalised where the Qdrant normalises Cosine vectors). A Lite
    cell found that Milvus Lite silently drops a dynamic field named _partition; the rename that keeps it is checked
    by test_cross_engine.py's Qdrant -> Lite restore (and the Lite cell, twice this one's time, runs no more)."""
    from qdrant_client import QdrantClient

    source, side = sources[src], sides[src]
    qurl = f"qdrant-local://{memory_tmp_path / 'qdrant'}"
    cli_json("restore", matrix_store, qurl, "--backup", source.backup_id)
    q = QdrantClient(path=str(memory_tmp_path / "qdrant"))
    try:
        assert q.count(source.name, exact=True).count == N
        vectors = q.get_collection(source.name).config.params.vectors
        assert isinstance(vectors, dict) and vectors["embedding"].distance.value == "Cosine"
    finally:
        q.close()
    doc = cli_json("backup", qurl, matrix_store, "-c", source.name)
    back = f"{source.name}_via_qdrant"
    if side.client.has_collection(back):
        side.client.drop_collection(back)
    restored = cli_json("restore", matrix_store, side.url, "--backup", doc["backups"][0]["backup_id"], "--as", back)
    assert restored["rows"] == N

    rows = read_rows(side.client, back)
    assert rows.keys() == {str(pk) for pk in source.rows}
    # the partition went into payload key _partition; Milvus Lite would drop a dynamic field of that name, so a
    # restore into Lite renames it
    partition_key = "payload__partition" if src == "lite" else "_partition"
    for pk, want in source.rows.items():
        got = rows[str(pk)]
        v = np.asarray(want["embedding"], dtype=np.float64)
        # a Qdrant server normalises Cosine vectors on upsert; local mode keeps them as given
        assert got["embedding"] == want["embedding"] or np.allclose(got["embedding"], v / np.linalg.norm(v),
                                                                     rtol=0, atol=1e-6), pk
        extra = {k: want[k] for k in want if k not in ("id", "embedding", *COMMON_SCALARS)}  # dynamic fields
        assert {k: got[k] for k in got if k not in ("id", "embedding")} == {
            **{k: want[k] for k in COMMON_SCALARS}, **extra, partition_key: COMMON_PARTITIONS[(pk - 1) // 3 % 3]}, pk
    idx = index_summary(side.client, back)["embedding"]
    assert (idx["index_type"], idx["metric_type"]) == ("HNSW", "COSINE")
    if src == "standalone":  # M / efConstruction went to Qdrant's m / ef_construct and came back
        assert (idx["M"], idx["efConstruction"]) == ("24", "180")
    side.client.drop_collection(back)
