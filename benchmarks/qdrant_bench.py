"""End to end against Qdrant: the vecbackup CLI as subprocesses against qdrant-client's *local mode*.

No Qdrant server can be installed on the benchmark machine, so this uses ``qdrant-local:///folder``:
qdrant-client's embedded, in-process Python implementation. It is much slower than a real Qdrant
server and it keeps the whole collection in the memory of whichever process opens the folder, so the
numbers show vecbackup's own overhead and memory behaviour, not Qdrant's throughput. To separate the
collection's memory from vecbackup's, a "floor" process that only opens the folder and counts the
points is measured next to each backup and restore.

Local mode allows one process per folder, so the collection is loaded by a subprocess
(``python -m benchmarks.qdrant_bench load FOLDER NAME N``), and every measured command is its own
subprocess, run through measure.run_measured so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.e2e import PYTHON, ROOT, VECBACKUP
from benchmarks.measure import ProcResult, dir_size, run_measured

DIM = 128
SPARSE = "text"  # the sparse vector's name; the dense vector is the unnamed one
SPARSE_NNZ = 8  # non-zeros per sparse vector, indices below SPARSE_VOCAB
SPARSE_VOCAB = 30_000
LOAD_BATCH = 1000  # points per upsert while loading
BATCH = 5000  # vecbackup --batch-size
_SOURCES = ["web", "pdf", "wiki", "news", "forum", "email"]
_WORDS = ["vector", "search", "backup", "index", "segment", "query", "shard", "replica", "embedding",
          "cluster", "latency", "recall", "qdrant", "restore", "format", "column"]


def make_points(n: int, *, start: int = 0, seed: int = 42) -> list[Any]:
    """``n`` PointStructs with integer ids ``start .. start+n-1``: unnamed 128-d dense vector, sparse
    vector ``text`` with 8 non-zeros, payload {title, source, year, score, tags}."""
    from qdrant_client import models

    rng = np.random.default_rng([seed, start])
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    word_idx = rng.integers(0, len(_WORDS), size=(n, 6))
    sp_idx = np.sort(rng.choice(SPARSE_VOCAB, size=(n, SPARSE_NNZ)), axis=1)
    sp_val = rng.random(size=(n, SPARSE_NNZ)).astype(np.float32)
    n_tags = rng.integers(0, 6, size=n)
    years = rng.integers(1995, 2025, size=n)
    scores = rng.random(size=n)
    out = []
    for j in range(n):
        i = start + j
        idx, keep = np.unique(sp_idx[j], return_index=True)
        out.append(models.PointStruct(
            id=i,
            vector={"": vecs[j].tolist(),
                    SPARSE: models.SparseVector(indices=idx.tolist(), values=sp_val[j][keep].tolist())},
            payload={"title": f"Document {i}: " + " ".join(_WORDS[k] for k in word_idx[j]),
                     "source": _SOURCES[i % len(_SOURCES)], "year": int(years[j]),
                     "score": round(float(scores[j]), 4),
                     "tags": [_WORDS[k] for k in word_idx[j, : n_tags[j]]]},
        ))
    return out


def _load(path: str, name: str, n: int) -> dict[str, Any]:
    from qdrant_client import QdrantClient, models

    t0 = time.perf_counter()
    client = QdrantClient(path=path)
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
                             sparse_vectors_config={SPARSE: models.SparseVectorParams()})
    t_gen = 0.0
    for start in range(0, n, LOAD_BATCH):
        g0 = time.perf_counter()
        points = make_points(min(LOAD_BATCH, n - start), start=start)
        t_gen += time.perf_counter() - g0
        client.upsert(name, points, wait=True)
    count = client.count(name, exact=True).count
    client.close()
    if count != n:
        raise RuntimeError(f"{name}: loaded {count} points, expected {n}")
    return {"points": n, "seconds": time.perf_counter() - t0, "generate_s": t_gen}


def _count(path: str, name: str) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    t0 = time.perf_counter()
    client = QdrantClient(path=path)
    count = client.count(name, exact=True).count
    client.close()
    return {"points": count, "seconds": time.perf_counter() - t0}


def _proc_fields(r: ProcResult, n: int) -> dict[str, Any]:
    return {"wall_s": r.wall, "points_per_s": n / r.wall if r.wall else None, "peak_rss_bytes": r.max_rss,
            "cpu_user_s": r.user, "cpu_sys_s": r.sys}


def floor(folder: Path, name: str, n: int) -> dict[str, Any]:
    """A process that only opens the local folder and counts ``name``: Python + qdrant-client + the
    collection held in memory by local mode. Everything vecbackup adds is above this."""
    r = run_measured([PYTHON, "-m", "benchmarks.qdrant_bench", "count", str(folder), name], cwd=ROOT).check()
    if r.json()["points"] != n:
        raise RuntimeError(f"{folder}: {name} has {r.json()['points']} points, expected {n}")
    return {"wall_s": r.wall, "peak_rss_bytes": r.max_rss}


def run(sizes: list[int], work: Path, log: Any = print) -> dict[str, Any]:
    """For each size: load a local-mode folder, back it up, restore it into a fresh folder (``--as``)."""
    from importlib import metadata

    out: dict[str, Any] = {"mode": "qdrant-client local mode (in-process Python, no server)",
                           "qdrant_client": metadata.version("qdrant-client"), "dim": DIM,
                           "sparse_nnz": SPARSE_NNZ, "batch_size": BATCH, "sizes": []}
    for n in sizes:
        name = f"bench_{n}"
        src = work / f"qdrant_src_{n}"
        dst = work / f"qdrant_dst_{n}"
        store = work / f"qdrant_store_{n}"
        entry: dict[str, Any] = {"points": n, "collection": name, "raw_vector_bytes": n * DIM * 4}
        r = run_measured([PYTHON, "-m", "benchmarks.qdrant_bench", "load", str(src), name, str(n)], cwd=ROOT).check()
        entry["load"] = {**r.json(), "wall_s": r.wall, "peak_rss_bytes": r.max_rss, "folder_bytes": dir_size(src)}
        log(f"  qdrant-local load {n}: {r.wall:.1f}s ({n / r.json()['seconds']:,.0f} points/s in-process)")

        entry["floor_source"] = floor(src, name, n)
        log(f"    floor (open + count): {entry['floor_source']['wall_s']:.1f}s, "
            f"{entry['floor_source']['peak_rss_bytes'] / 2**20:.0f} MiB")

        r = run_measured([VECBACKUP, "backup", f"qdrant-local://{src}", f"file://{store}", "-c", name,
                          "--batch-size", str(BATCH), "--json"]).check()
        doc = r.json()["backups"][0]
        if doc["rows"] != n:
            raise RuntimeError(f"vecbackup backed up {doc['rows']} points of {name}, expected {n}")
        entry["backup"] = {**_proc_fields(r, n), "tool_seconds": doc["seconds"], "bytes": dir_size(store / "data"),
                           "bytes_stored_reported": doc["bytes_stored"], "objects": doc["objects"],
                           "notes": doc["notes"]}
        log(f"    vecbackup backup: {r.wall:.1f}s, {r.max_rss / 2**20:.0f} MiB")

        restored = f"{name}_restored"
        r = run_measured([VECBACKUP, "restore", f"file://{store}", f"qdrant-local://{dst}", "-c", name,
                          "--as", restored, "--json"]).check()
        doc = r.json()
        if doc["rows"] != n:
            raise RuntimeError(f"vecbackup restored {doc['rows']} points into {restored}, expected {n}")
        entry["restore"] = {**_proc_fields(r, n), "tool_seconds": doc["seconds"], "notes": doc["notes"]}
        log(f"    vecbackup restore: {r.wall:.1f}s, {r.max_rss / 2**20:.0f} MiB")

        entry["floor_target"] = floor(dst, restored, n)
        log(f"    floor of the restored folder: {entry['floor_target']['peak_rss_bytes'] / 2**20:.0f} MiB")
        out["sizes"].append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load", help="create NAME in the local-mode FOLDER with N points")
    p.add_argument("folder")
    p.add_argument("name")
    p.add_argument("points", type=int)
    p = sub.add_parser("count", help="open the local-mode FOLDER and count NAME (the memory floor)")
    p.add_argument("folder")
    p.add_argument("name")
    args = ap.parse_args(argv)
    res = _load(args.folder, args.name, args.points) if args.cmd == "load" else _count(args.folder, args.name)
    sys.stdout.write(orjson.dumps(res).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
