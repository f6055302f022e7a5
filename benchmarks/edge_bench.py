"""End to end against Qdrant Edge (``qdrant-edge-py``: Qdrant's own engine, in-process on a shard's folder): the
vecbackup CLI as subprocesses, backing up a shard and restoring it into a new folder, with peak RSS.

Edge keeps a shard's segments in files it maps into memory, so what a process that opens a shard holds grows with
the shard. To separate that from vecbackup's own memory, a "floor" process that only opens the shard and counts its
points is measured next to each backup; a restore builds the shard by upserts and then runs Edge's optimizers (the
HNSW graph), like the loader process, whose peak is the restore's reference.

Those mapped pages count in a process's RSS (on tmpfs as shared memory, on disk as file pages the kernel can drop),
so every measured command also reports the peak of its *anonymous* memory (RssAnon, sampled from /proc every 20 ms
by a small parent process, ``python -m benchmarks.edge_bench anon-peak``): the heap, which is what vecbackup's
batches occupy, without the shard's pages.

Edge lets one process open a shard (it locks the write-ahead log), so the shard is loaded by a subprocess
(``python -m benchmarks.edge_bench load FOLDER N``) and every measured command is its own subprocess, run through
measure.run_measured so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.e2e import PYTHON, ROOT, VECBACKUP
from benchmarks.measure import ProcResult, dir_size, run_measured
from benchmarks.qdrant_bench import DIM, LOAD_BATCH, SPARSE, SPARSE_NNZ, make_points

BATCH = 5000  # vecbackup --batch-size


def _load(path: str, n: int) -> dict[str, Any]:
    """A shard at ``path`` with ``n`` points: the same points as benchmarks.qdrant_bench (an unnamed 128-d Cosine
    vector, a sparse vector, a five-key payload), upserted in batches of 1000, then optimized (its HNSW graph
    built) and flushed."""
    import qdrant_edge as q

    t0 = time.perf_counter()
    shard = q.EdgeShard.create(path, q.EdgeConfig(
        vectors={"": q.EdgeVectorParams(size=DIM, distance=q.Distance.Cosine)},
        sparse_vectors={SPARSE: q.EdgeSparseVectorParams()}))
    t_gen = 0.0
    try:
        for start in range(0, n, LOAD_BATCH):
            g0 = time.perf_counter()
            points = [q.Point(p.id, {"": p.vector[""], SPARSE: q.SparseVector(p.vector[SPARSE].indices,
                                                                               p.vector[SPARSE].values)},
                              p.payload) for p in make_points(min(LOAD_BATCH, n - start), start=start)]
            t_gen += time.perf_counter() - g0
            shard.update(q.UpdateOperation.upsert_points(points))
        t_upsert = time.perf_counter() - t0
        shard.optimize()
        shard.flush()
        count = shard.count(q.CountRequest(exact=True))
    finally:
        shard.close()
    if count != n:
        raise RuntimeError(f"{path}: loaded {count} points, expected {n}")
    return {"points": n, "seconds": time.perf_counter() - t0, "upsert_s": t_upsert, "generate_s": t_gen}


def _count(path: str) -> dict[str, Any]:
    import qdrant_edge as q

    t0 = time.perf_counter()
    shard = q.EdgeShard.load(path)
    try:
        count = shard.count(q.CountRequest(exact=True))
    finally:
        shard.close()
    return {"points": count, "seconds": time.perf_counter() - t0}


def _anon_peak(out: str, argv: list[str]) -> int:
    """Run ``argv``, sample its RssAnon every 20 ms, write the peak (bytes) to ``out``; its exit code."""
    import subprocess

    proc = subprocess.Popen(argv)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.02)
    Path(out).write_text(str(peak))
    return proc.returncode


def measured(argv: list[str], **kw: Any) -> tuple[ProcResult, int]:
    """measure.run_measured of ``argv`` (its peak RSS the command's: the sampling parent is smaller), and the peak
    of its anonymous memory."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".anon") as f:
        r = run_measured([PYTHON, "-m", "benchmarks.edge_bench", "anon-peak", f.name, "--", *argv], cwd=ROOT,
                         **kw).check()
        return r, int(f.read() or 0)


def _proc_fields(r: ProcResult, anon: int, n: int) -> dict[str, Any]:
    return {"wall_s": r.wall, "points_per_s": n / r.wall if r.wall else None, "peak_rss_bytes": r.max_rss,
            "peak_anon_bytes": anon, "cpu_user_s": r.user, "cpu_sys_s": r.sys}


def floor(shard: Path, n: int) -> dict[str, Any]:
    """A process that only opens ``shard`` and counts its points: Python, qdrant-edge and the shard as Edge maps
    it. Everything a backup adds is above this."""
    r, anon = measured([PYTHON, "-m", "benchmarks.edge_bench", "count", str(shard)])
    if r.json()["points"] != n:
        raise RuntimeError(f"{shard}: {r.json()['points']} points, expected {n}")
    return {"wall_s": r.wall, "peak_rss_bytes": r.max_rss, "peak_anon_bytes": anon}


def run(sizes: list[int], work: Path, log: Any = print) -> dict[str, Any]:
    """For each size: load a shard, back it up, restore it into a fresh folder."""
    from importlib import metadata

    out: dict[str, Any] = {"mode": "Qdrant Edge (Qdrant's engine in-process, one shard per folder)",
                           "qdrant_edge": metadata.version("qdrant-edge-py"), "dim": DIM, "sparse_nnz": SPARSE_NNZ,
                           "batch_size": BATCH, "sizes": []}
    for n in sizes:
        name = f"bench_{n}"
        src, dst, store = work / f"edge_src_{n}", work / f"edge_dst_{n}", work / f"edge_store_{n}"
        src.mkdir()
        entry: dict[str, Any] = {"points": n, "collection": name, "raw_vector_bytes": n * DIM * 4}
        r, anon = measured([PYTHON, "-m", "benchmarks.edge_bench", "load", str(src / name), str(n)])
        entry["load"] = {**r.json(), "wall_s": r.wall, "peak_rss_bytes": r.max_rss, "peak_anon_bytes": anon,
                         "folder_bytes": dir_size(src / name)}
        log(f"  qdrant-edge load {n}: {r.wall:.1f}s (upsert {r.json()['upsert_s']:.1f}s, then optimize)")

        entry["floor_source"] = floor(src / name, n)
        log(f"    floor (open + count): {entry['floor_source']['wall_s']:.1f}s, "
            f"{entry['floor_source']['peak_rss_bytes'] / 2**20:.0f} MiB "
            f"({entry['floor_source']['peak_anon_bytes'] / 2**20:.0f} MiB anonymous)")

        r, anon = measured([VECBACKUP, "backup", f"qdrant-edge://{src / name}", f"file://{store}", "-c", name,
                            "--batch-size", str(BATCH), "--json"])
        doc = r.json()["backups"][0]
        if doc["rows"] != n:
            raise RuntimeError(f"vecbackup backed up {doc['rows']} points of {name}, expected {n}")
        entry["backup"] = {**_proc_fields(r, anon, n), "tool_seconds": doc["seconds"],
                           "bytes": dir_size(store / "data"), "bytes_stored_reported": doc["bytes_stored"],
                           "objects": doc["objects"], "notes": doc["notes"]}
        log(f"    vecbackup backup: {r.wall:.1f}s, {r.max_rss / 2**20:.0f} MiB ({anon / 2**20:.0f} MiB anonymous)")

        r, anon = measured([VECBACKUP, "restore", f"file://{store}", f"qdrant-edge://{dst}", "-c", name, "--json"])
        doc = r.json()
        if doc["rows"] != n:
            raise RuntimeError(f"vecbackup restored {doc['rows']} points into {dst / name}, expected {n}")
        entry["restore"] = {**_proc_fields(r, anon, n), "tool_seconds": doc["seconds"], "notes": doc["notes"],
                            "folder_bytes": dir_size(dst / name)}
        log(f"    vecbackup restore: {r.wall:.1f}s, {r.max_rss / 2**20:.0f} MiB ({anon / 2**20:.0f} MiB anonymous)")

        entry["floor_target"] = floor(dst / name, n)
        log(f"    floor of the restored shard: {entry['floor_target']['peak_rss_bytes'] / 2**20:.0f} MiB")
        out["sizes"].append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load", help="create a shard in FOLDER (which must not exist) with N points")
    p.add_argument("folder")
    p.add_argument("points", type=int)
    p = sub.add_parser("count", help="open the shard in FOLDER and count its points (the memory floor)")
    p.add_argument("folder")
    p = sub.add_parser("anon-peak", help="run COMMAND, write the peak of its RssAnon to OUT")
    p.add_argument("out")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if args.cmd == "anon-peak":
        return _anon_peak(args.out, args.command[1:] if args.command[:1] == ["--"] else args.command)
    res = _load(args.folder, args.points) if args.cmd == "load" else _count(args.folder)
    sys.stdout.write(orjson.dumps(res).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
