"""`make demo`: seed a Milvus Lite collection, back it up, list, verify, restore under a new name, run a drill,
compare.

Every step that vecbackup does runs as the real command line, printed before it runs.
Milvus Lite lets one process at a time open a database file, so seeding and comparing run in
their own processes too.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path("demo-data")
DB = ROOT / "milvus-demo.db"
STORE = ROOT / "backups"
NAME, COPY = "articles", "articles_restored"
ROWS, DIM = 3000, 128


def seed() -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(DB))
    rng = np.random.default_rng(42)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True, description="demo articles")
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("title", DataType.VARCHAR, max_length=200)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=5, max_length=20)
    ip = client.prepare_index_params()
    ip.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    client.create_collection(NAME, schema=s, index_params=ip, consistency_level="Strong")
    client.create_partition(NAME, "archive")
    topics = ["milvus", "qdrant", "backup", "vectors", "search", "ops"]
    vecs = rng.normal(size=(ROWS, DIM)).astype(np.float32)
    rows = [{
        "id": 1_000_000 + i,
        "embedding": vecs[i].tolist(),
        "title": f"Article {i}: {topics[i % 6]} at 2 a.m.",
        "meta": {"author": f"user{i % 37}", "views": int(rng.integers(0, 10_000)), "draft": i % 11 == 0},
        "tags": [topics[j] for j in rng.choice(6, int(rng.integers(0, 4)), replace=False)],
        "lang": ["en", "de", "fr"][i % 3],  # a dynamic field
    } for i in range(ROWS)]
    half = ROWS // 2
    client.insert(NAME, rows[:half])
    client.insert(NAME, rows[half:], partition_name="archive")
    client.close()
    print(f"seeded {ROWS} rows into collection {NAME!r} (partitions _default, archive; HNSW M=16 efConstruction=200)")


def _digest(rows: dict) -> str:
    h = hashlib.sha256()
    for pk in sorted(rows):
        r = rows[pk]
        h.update(repr(sorted((k, r[k]) for k in r)).encode())
    return h.hexdigest()[:16]


def compare() -> int:
    import logging

    from pymilvus import MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.ERROR)  # its iterator warns about Lite's timestamps

    from tests.datasets import index_summary, read_rows, search_ids

    client = MilvusClient(str(DB))
    a, b = read_rows(client, NAME), read_rows(client, COPY)
    rng = np.random.default_rng(7)
    queries = rng.normal(size=(20, DIM)).astype(np.float32)
    # each collection's top 10 against the exact top 10 (cosine over every row), never one index against another
    keys = np.array(sorted(a))
    vectors = np.array([a[k]["embedding"] for k in keys], dtype=np.float64)
    sims = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).T
    truth = [set(keys[np.argsort(-row, kind="stable")[:10]].tolist()) for row in sims]
    hits_a = search_ids(client, NAME, "embedding", queries.tolist(), "COSINE", params={"ef": 100})
    hits_b = search_ids(client, COPY, "embedding", queries.tolist(), "COSINE", params={"ef": 100})
    recall_a = float(np.mean([len(set(h) & t) / 10 for h, t in zip(hits_a, truth, strict=True)]))
    recall_b = float(np.mean([len(set(h) & t) / 10 for h, t in zip(hits_b, truth, strict=True)]))
    checks = [
        ("rows", len(a), len(b)),
        ("rows in _default", len(read_rows(client, NAME, "_default")), len(read_rows(client, COPY, "_default"))),
        ("rows in archive", len(read_rows(client, NAME, "archive")), len(read_rows(client, COPY, "archive"))),
        ("fields", ", ".join(f["name"] for f in client.describe_collection(NAME)["fields"]),
         ", ".join(f["name"] for f in client.describe_collection(COPY)["fields"])),
        ("dynamic field 'lang' (row 1000000)", a[1_000_000].get("lang"), b[1_000_000].get("lang")),
        ("index", "{index_type}/{metric_type}".format(**index_summary(client, NAME)["embedding"]),
         "{index_type}/{metric_type}".format(**index_summary(client, COPY)["embedding"])),
        ("SHA-256 of every row, every field", _digest(a), _digest(b)),
    ]
    width = max(len(str(x)) for c in checks for x in c[1:]) + 2
    print(f"\n{'check':<38}{'source: ' + NAME:<{width}}{'restored: ' + COPY:<{width}}match")
    ok = True
    for label, x, y in checks:
        same = x == y
        ok &= same
        print(f"{label:<38}{x!s:<{width}}{y!s:<{width}}{'yes' if same else 'NO'}")
    good = recall_b >= recall_a - 0.05
    print(f"{'HNSW recall@10 vs exact search':<38}{f'{recall_a:.3f}':<{width}}{f'{recall_b:.3f}':<{width}}"
          f"{'yes' if good else 'NO'}")
    ok &= good
    print("\nthe two collections match" if ok else "\nMISMATCH")
    client.close()
    return 0 if ok else 1


def _run(*args: str) -> None:
    cmd = [str(Path(sys.executable).parent / "vecbackup"), *args]
    print(f"\n$ vecbackup {shlex.join(args)}", flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir()
    src = f"milvus-lite://{DB}"
    store = f"file://{STORE}"
    subprocess.run([sys.executable, "-m", "examples.demo", "seed"], check=True)
    _run("backup", src, store, "--collection", NAME)
    _run("list", store)
    _run("verify", store, "latest")
    # Milvus Lite does not report index build parameters, so the demo gives them back on restore
    _run("restore", store, src, "--as", COPY, "--index-params", "embedding:M=16,efConstruction=200")
    # a disaster-recovery drill: restore into a scratch collection, check rows and search quality, drop it
    _run("drill", store, src, "--collection", NAME, "--source", src, "--index-params",
         "embedding:M=16,efConstruction=200")
    return subprocess.run([sys.executable, "-m", "examples.demo", "compare"]).returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["seed"]:
        seed()
    elif sys.argv[1:] == ["compare"]:
        sys.exit(compare())
    else:
        sys.exit(main())
