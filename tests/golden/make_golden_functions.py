"""Make the committed golden backup of a collection with a function (manifest format version 3; run once, never
regenerate):

    python -m tests.golden.make_golden_functions tests/golden/functions-v3

A Milvus Lite collection with a BM25 function (a VARCHAR with analyzer params into a SPARSE_FLOAT_VECTOR), a dense
vector, an INVERTED scalar index and dynamic fields (tests/integration/test_functions.py, ``build_bm25``).
``expected.json`` holds the rows as Milvus Lite returned them, without the BM25 output (the backup does not hold it),
and full-text queries with their top 10 keys on the source. tests/golden/test_golden_functions.py restores the
committed backup with the current code and compares.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import orjson

QUERIES = ["w0", "w1 w2", "backup milvus", "w3 w0 w5", "Vector search text"]


def main(out: Path) -> None:
    from pymilvus import MilvusClient

    from tests.datasets import read_rows
    from tests.integration.test_functions import build_bm25, full_text
    from vecbackup.ops.backup import backup_collection
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.stores.local import LocalStore
    from vecbackup.urls import parse_milvus_url

    if out.exists():
        sys.exit(f"{out} exists; a golden backup is never regenerated")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "golden.db"
        client = MilvusClient(str(db))
        build_bm25(client, "golden_fn", n=80, seed=2026)
        rows = {str(k): {f: v for f, v in row.items() if f != "sparse"}
                for k, row in read_rows(client, "golden_fn").items()}
        hits = [[key for key, _ in q] for q in full_text(client, "golden_fn", QUERIES)]
        client.close()
        engine = MilvusEngine(parse_milvus_url(f"milvus-lite://{db}"))
        result = backup_collection(engine, LocalStore(out / "store", create=True), "golden_fn", batch_size=30)
        engine.close()
    expected = {"backup_id": result.backup_id, "rows": rows, "queries": QUERIES, "top10": hits}
    (out / "expected.json").write_bytes(orjson.dumps(expected, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(f"golden backup {result.backup_id}: {result.rows} rows in {result.objects} objects -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    shutil.rmtree(Path(sys.argv[1]) / "store" / ".tmp", ignore_errors=True)
