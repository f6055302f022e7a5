"""Make a committed golden backup (run once per format version; never regenerate one).

    python -m tests.golden.make_golden tests/golden/v1
    python -m tests.golden.make_golden tests/golden/encrypted-v1 --encrypted
    python -m tests.golden.make_golden tests/golden/v3 --v3

``--encrypted`` writes the same backup into an encrypted store (docs/FORMAT.md, "Encryption") whose passphrase is
:data:`GOLDEN_PASSPHRASE` (public: it protects nothing, it pins the key file and sealing formats).

It backs up a small Milvus Lite collection with every type Milvus Lite holds and writes
``expected.json``: the rows as Milvus returned them, keyed by primary key. tests/golden/test_golden.py
restores the committed backup with the current code and compares. When the format changes, add a
v2 next to v1: old backups must stay restorable.

``--v3`` backs up the collection of tests.datasets.build_geo_time instead (GEOMETRY, TIMESTAMPTZ: a manifest of format
version 3), and writes ``chunks/struct_array.vbc``: a chunk holding an ARRAY of STRUCT (no engine of the test suite
holds one, so no backup can), with ``chunks/struct_array.json``, its rows and their row digests
(tests/golden/test_golden_v3.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson


GOLDEN_PASSPHRASE = "vecbackup golden passphrase (public, for tests only)"


def struct_array_chunk() -> tuple[list[Any], Any]:
    """The fields and chunk of the golden struct-array chunk: nulls, empty rows, every kind of struct field."""
    import numpy as np

    from vecbackup.format.codec import Chunk, Column
    from vecbackup.schema import Field, FieldType as T

    members = (Field("text", T.VARCHAR, max_length=16), Field("emb", T.FLOAT_VECTOR, dim=3),
               Field("half", T.FLOAT16_VECTOR, dim=2), Field("at", T.INT64), Field("ok", T.BOOL),
               Field("score", T.DOUBLE))
    fields = [Field("id", T.INT64, is_primary=True),
              Field("clips", T.ARRAY, element_type=T.STRUCT, max_capacity=4, nullable=True, struct_fields=members)]
    rng = np.random.default_rng(2026)
    rows: list[Any] = []
    for i in range(12):
        structs = [{"text": f"clip {i}.{j} ünï"[: 4 + j], "emb": [float(x) for x in rng.normal(size=3).astype(np.float32)],
                    "half": rng.normal(size=2).astype(np.float16).view(np.uint16).tolist(), "at": i * 10**12 + j,
                    "ok": bool((i + j) % 2), "score": float(rng.normal())} for j in range(i % 4)]
        rows.append(None if i % 5 == 4 else structs)
    valid = np.array([r is not None for r in rows])
    chunk = Chunk("_default", 12, {"id": Column(np.arange(12, dtype=np.int64) - 3), "clips": Column(rows, valid)})
    return fields, chunk


def write_struct_array_chunk(folder: Path) -> None:
    from vecbackup.format.digests import encode_with_digests

    fields, chunk = struct_array_chunk()
    data, digests = encode_with_digests(fields, chunk)
    folder.mkdir(parents=True)
    (folder / "struct_array.vbc").write_bytes(data)
    doc = {"fields": [f.to_dict() for f in fields], "rows": chunk.columns["clips"].values,
           "ids": chunk.columns["id"].values.tolist(), "digests": [bytes(d).hex() for d in digests]}
    (folder / "struct_array.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def main(out: Path, encrypted: bool = False, v3: bool = False) -> None:
    from pymilvus import MilvusClient

    from tests.datasets import build_geo_time, build_rich, read_rows
    from vecbackup.urls import parse_milvus_url
    from vecbackup.ops.backup import backup_collection
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.ops.keys import init_store
    from vecbackup.passphrase import Passphrase
    from vecbackup.stores.encrypted import open_encrypted
    from vecbackup.stores.local import LocalStore

    if out.exists():
        sys.exit(f"{out} exists; the golden backup of a format version is never regenerated")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "golden.db"
        client = MilvusClient(str(db))
        if v3:
            build_geo_time(client, "golden", n=60, seed=2026)
        else:
            build_rich(client, "golden", "lite", n=90, seed=2024)
            client.create_alias("golden", "golden_alias")
        rows = read_rows(client, "golden")
        parts = {p: sorted(read_rows(client, "golden", p)) for p in (("_default", "p1") if v3 else
                                                                    ("_default", "p1", "p2"))}
        client.close()
        engine = MilvusEngine(parse_milvus_url(f"milvus-lite://{db}"))
        store = LocalStore(out / "store", create=True)
        if encrypted:
            init_store(store, GOLDEN_PASSPHRASE.encode(), label="golden")
            store = open_encrypted(store, Passphrase(GOLDEN_PASSPHRASE))  # type: ignore[assignment]
        result = backup_collection(engine, store, "golden", batch_size=25 if v3 else 40)
        engine.close()
    if v3:
        write_struct_array_chunk(out / "chunks")
    expected = {"backup_id": result.backup_id, "rows": {str(k): v for k, v in rows.items()}, "partitions": parts}
    (out / "expected.json").write_bytes(orjson.dumps(expected, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(f"golden backup {result.backup_id}: {result.rows} rows in {result.objects} objects -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), encrypted="--encrypted" in sys.argv[2:], v3="--v3" in sys.argv[2:])
    shutil.rmtree(Path(sys.argv[1]) / "store" / ".tmp", ignore_errors=True)
