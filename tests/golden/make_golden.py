"""Make the committed golden backup of format v1 (run once; never regenerate v1).

    python -m tests.golden.make_golden tests/golden/v1
    python -m tests.golden.make_golden tests/golden/encrypted-v1 --encrypted

``--encrypted`` writes the same backup into an encrypted store (docs/FORMAT.md, "Encryption") whose passphrase is
:data:`GOLDEN_PASSPHRASE` (public: it protects nothing, it pins the key file and sealing formats).

It backs up a small Milvus Lite collection with every type Milvus Lite holds and writes
``expected.json``: the rows as Milvus returned them, keyed by primary key. tests/golden/test_golden.py
restores the committed backup with the current code and compares. When the format changes, add a
v2 next to v1: old backups must stay restorable.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import orjson


GOLDEN_PASSPHRASE = "vecbackup golden passphrase (public, for tests only)"


def main(out: Path, encrypted: bool = False) -> None:
    from pymilvus import MilvusClient

    from tests.datasets import build_rich, read_rows
    from vecbackup.urls import parse_milvus_url
    from vecbackup.ops.backup import backup_collection
    from vecbackup.sources.milvus import MilvusEngine
    from vecbackup.ops.keys import init_store
    from vecbackup.passphrase import Passphrase
    from vecbackup.stores.encrypted import open_encrypted
    from vecbackup.stores.local import LocalStore

    if out.exists():
        sys.exit(f"{out} exists; the golden backup of a format version is never regenerated")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "golden.db"
        client = MilvusClient(str(db))
        build_rich(client, "golden", "lite", n=90, seed=2024)
        client.create_alias("golden", "golden_alias")
        rows = read_rows(client, "golden")
        parts = {p: sorted(read_rows(client, "golden", p)) for p in ("_default", "p1", "p2")}
        client.close()
        engine = MilvusEngine(parse_milvus_url(f"milvus-lite://{db}"))
        store = LocalStore(out / "store", create=True)
        if encrypted:
            init_store(store, GOLDEN_PASSPHRASE.encode(), label="golden")
            store = open_encrypted(store, Passphrase(GOLDEN_PASSPHRASE))  # type: ignore[assignment]
        result = backup_collection(engine, store, "golden", batch_size=40)
        engine.close()
    expected = {"backup_id": result.backup_id, "rows": {str(k): v for k, v in rows.items()}, "partitions": parts}
    (out / "expected.json").write_bytes(orjson.dumps(expected, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(f"golden backup {result.backup_id}: {result.rows} rows in {result.objects} objects -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), encrypted="--encrypted" in sys.argv[2:])
    shutil.rmtree(Path(sys.argv[1]) / "store" / ".tmp", ignore_errors=True)
