"""End to end: the vecbackup CLI and the baseline exporter as subprocesses against real Milvus engines.

Every measurement is one fresh subprocess, run through measure.run_measured so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from benchmarks import data
from benchmarks.measure import ProcResult, dir_size, run_measured

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
VECBACKUP = str(BIN / "vecbackup") if (BIN / "vecbackup").exists() else shutil.which("vecbackup") or "vecbackup"
STANDALONE_URL = "milvus://127.0.0.1:19530"
STANDALONE_URI = "http://127.0.0.1:19530"
BATCH = 5000
#: the yardstick of backup speed: pymilvus query_iterator, every page read and discarded
BARE = "bare pymilvus export (query_iterator, rows discarded)"
#: restore --parallel values measured against the plain load
PARALLEL = (1, 2, 4)


def _proc_fields(r: ProcResult, rows: int) -> dict[str, Any]:
    return {"wall_s": r.wall, "rows_per_s": rows / r.wall if r.wall else None, "peak_rss_bytes": r.max_rss,
            "cpu_user_s": r.user, "cpu_sys_s": r.sys}


def wait_index(client: Any, name: str, n: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    for index_name in client.list_indexes(name):
        while True:
            d = client.describe_index(name, index_name)
            if d.get("state") == "Finished" and not d.get("pending_index_rows") and \
                    int(d.get("indexed_rows", n)) >= n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"index {index_name} of {name} not built after {timeout:.0f}s: {d}")
            time.sleep(0.5)


def load_collection(client: Any, name: str, n: int) -> dict[str, Any]:
    """Create ``name`` with ``n`` rows: insert in batches of 5000, flush once, build HNSW, load."""
    if client.has_collection(name):
        client.drop_collection(name)
    data.create_collection(client, name)
    t0 = time.perf_counter()
    for batch in data.iter_batches(n, BATCH):
        client.insert(name, batch)
    t_insert = time.perf_counter() - t0
    client.flush(name)
    t_flush = time.perf_counter() - t0
    data.create_index(client, name)
    wait_index(client, name, n)
    t_index = time.perf_counter() - t0
    client.load_collection(name)
    t_load = time.perf_counter() - t0
    count = strong_count(client, name)
    if count != n:
        raise RuntimeError(f"{name}: loaded {count} rows, expected {n}")
    return {"rows": n, "insert_s": t_insert, "flush_done_s": t_flush, "index_done_s": t_index, "loaded_s": t_load}


def vecbackup_backup(url: str, store: Path, name: str, n: int, level: int = 3) -> dict[str, Any]:
    r = run_measured([VECBACKUP, "backup", url, f"file://{store}", "-c", name, "--batch-size", str(BATCH),
                      "--compression-level", str(level), "--json"]).check()
    doc = r.json()["backups"][0]
    if doc["rows"] != n:
        raise RuntimeError(f"vecbackup backed up {doc['rows']} rows of {name}, expected {n}")
    return {"tool": "vecbackup backup", **_proc_fields(r, n), "bytes": dir_size(store / "data"),
            "bytes_stored_reported": doc["bytes_stored"], "objects": doc["objects"], "tool_seconds": doc["seconds"],
            "backup_id": doc["backup_id"], "notes": doc["notes"]}


def backup_speed(url: str, uri: str, name: str, n: int, work: Path, rounds: int = 3) -> dict[str, Any]:
    """The backup's speed against the client's own floor, in one run: ``rounds`` alternating rounds of the bare
    pymilvus export, vecbackup's backup (columnar read) and vecbackup's backup through the row path (``?columnar=off``),
    each a fresh process into a fresh store; medians of wall and in-tool seconds."""
    import statistics

    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "columns": [], "rows": []}
    for i in range(rounds):
        gz = work / f"{name}.bare.{i}"
        runs["bare"].append(baseline_export(uri, name, n, gz, "bare"))
        gz.unlink()
        for mode, source in (("columns", url), ("rows", f"{url}?columnar=off")):
            store = work / f"speed_{name}_{mode}_{i}"
            runs[mode].append(vecbackup_backup(source, store, name, n))
            shutil.rmtree(store)
    out: dict[str, Any] = {"rounds": rounds}
    for mode, rs in runs.items():
        out[mode] = {"wall_s": statistics.median(r["wall_s"] for r in rs),
                     "tool_s": statistics.median(r["tool_seconds"] for r in rs),
                     "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rs),
                     "cpu_s": statistics.median(r["cpu_user_s"] + r["cpu_sys_s"] for r in rs),
                     "walls": [round(r["wall_s"], 2) for r in rs]}
    return out


def baseline_export(uri: str, name: str, n: int, out: Path, mode: str) -> dict[str, Any]:
    r = run_measured([PYTHON, "-m", "benchmarks.baseline_export", uri, name, str(out), "--mode", mode,
                      "--batch-size", str(BATCH)], cwd=ROOT).check()
    doc = r.json()
    if doc["rows"] != n:
        raise RuntimeError(f"baseline {mode} exported {doc['rows']} rows of {name}, expected {n}")
    label = {"naive": "JSON + gzip-6, naive (json.dumps(rows))", "stream": "JSON lines + gzip-6, streaming",
             "bare": BARE}[mode]
    return {"tool": label, **_proc_fields(r, n), "bytes": out.stat().st_size, "tool_seconds": doc["seconds"]}


def vecbackup_restore(url: str, store: Path, name: str, as_name: str, n: int, parallel: int | None = None,
                      bulk_import_via: Path | None = None, bulk_format: str = "files") -> dict[str, Any]:
    """`vecbackup restore` (``bulk_import_via``: through the server's import of files staged in that folder, which a
    server with local storage reads by absolute path; ``bulk_format`` "binlog": of its own binlogs)."""
    extra = ["--parallel", str(parallel)] if parallel else []
    if bulk_import_via is not None:
        extra += ["--bulk-import-via", str(bulk_import_via), "--bulk-import-format", bulk_format]
    r = run_measured([VECBACKUP, "restore", f"file://{store}", url, "-c", name, "--as", as_name, "--json",
                      *extra]).check()
    doc = r.json()
    if doc["rows"] != n:
        raise RuntimeError(f"vecbackup restored {doc['rows']} rows into {as_name}, expected {n}")
    return {"tool": "vecbackup restore", **_proc_fields(r, n), "tool_seconds": doc["seconds"],
            "notes": doc["notes"], "import_tasks": doc.get("import_tasks")}


def vecbackup_restore_workers(url: str, store: Path, as_name: str, n: int, workers: int) -> dict[str, Any]:
    """`restore --shard I/N --run RUN --commit` as ``workers`` processes started together (each inserts its share
    of the objects, the last to finish commits: flush, index, load, count, rename): the wall time until all have
    exited, their summed CPU and the largest peak RSS."""
    backup_id = run_measured([VECBACKUP, "list", f"file://{store}", "--json"]).check().json()["backups"][0]
    args = [VECBACKUP, "restore", f"file://{store}", url, "--backup", backup_id["backup_id"], "--as", as_name,
            "--run", f"bench-{as_name}", "--commit", "--json"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: run_measured([*args, "--shard", f"{i}/{workers}"]).check(),
                                range(workers)))
    wall = time.perf_counter() - t0
    commits = [r.json()["commit"] for r in results]
    committed = [c for c in commits if c["state"] == "committed"]
    if len(committed) != 1 or committed[0]["rows"] != n:
        raise RuntimeError(f"restore by {workers} workers into {as_name}: commits {commits}, expected one of {n} rows")
    return {"tool": f"vecbackup restore by {workers} workers + commit", "workers": workers, "wall_s": wall,
            "peak_rss_bytes": max(r.max_rss for r in results), "cpu_user_s": sum(r.user for r in results),
            "cpu_sys_s": sum(r.sys for r in results), "commit_s": committed[0]["seconds"]}


def vecbackup_drill(url: str, store: Path, name: str, n: int, work: Path) -> dict[str, Any]:
    """`vecbackup drill` against the live source on the same server: its wall time and memory, the restore's
    share (the RTO) and the search check's (searches + the exact brute-force pass over the backup)."""
    report = work / f"drill_{name}.json"
    r = run_measured([VECBACKUP, "drill", f"file://{store}", url, "-c", name, "--source", url, "--report-json",
                      str(report), "--seed", "1", "--quiet"])
    doc = orjson.loads(report.read_bytes())
    if not doc["ok"]:
        raise RuntimeError(f"drill of {name} failed: {doc['failures']}")
    checks = {c["name"]: c for c in doc["checks"]}
    search = checks["search_recall"]
    return {"tool": "vecbackup drill --source", **_proc_fields(r, n), "rto_s": doc["rto_seconds"],
            "search_check_s": search["seconds"], "sample_check_s": checks["sample_rows"]["seconds"],
            "restored_recall": search["details"]["restored_recall"],
            "source_recall": search["details"]["source_recall"],
            "restored_vs_source": search["details"]["restored_vs_source"], "queries": search["details"]["queries"]}


def import_floor(uri: str) -> dict[str, Any]:
    """RSS of a process that only imports pymilvus and connects: the fixed cost under every figure."""
    code = ("from pymilvus import MilvusClient; import sys; c = MilvusClient(uri=sys.argv[1]); "
            "c.list_collections(); c.close()")
    r = run_measured([PYTHON, "-c", code, uri]).check()
    return {"tool": "python + pymilvus import + connect", "wall_s": r.wall, "peak_rss_bytes": r.max_rss}


def strong_count(client: Any, name: str) -> int:
    """The rows ``name`` holds, counted with Strong consistency (every write before it seen)."""
    return int(client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])


def settle(client: Any, name: str, timeout: float = 900.0) -> float:
    """Compact the source collection and wait until every segment is indexed: the seconds it took.

    The 2.3 server merges a new collection's segments in the background and builds the merged segment's index
    again; with one index node, a restore's index tasks queue behind that build (seen in the server's log: a restore
    waited 44 s for the source's 200,000-row rebuild). The restores are measured on a settled server instead."""
    t0 = time.perf_counter()
    job = client.compact(name)
    while client.get_compaction_state(job) != "Completed":
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"compaction of {name} not completed after {timeout:.0f}s")
        time.sleep(1)
    for index_name in client.list_indexes(name):
        while True:
            d = client.describe_index(name, index_name)
            if int(d.get("pending_index_rows", 0)) == 0 and d.get("state") in ("Finished", None):
                break
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"index {index_name} of {name} not built after {timeout:.0f}s: {d}")
            time.sleep(1)
    return time.perf_counter() - t0


def run_standalone(sizes: list[int], work: Path, log: Any = print) -> dict[str, Any]:
    from pymilvus import MilvusClient

    from tests.servers import MilvusStandalone

    # tests.servers finds milvus-server on PATH; `make bench` runs .venv/bin/python without activating the venv
    venv_bin = str(Path(PYTHON).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    server = MilvusStandalone(work / "milvus" / "data")
    out: dict[str, Any] = {"sizes": []}
    t0 = time.perf_counter()
    server.start()
    out["server_start_s"] = time.perf_counter() - t0
    log(f"  milvus-server ready in {out['server_start_s']:.1f}s")
    try:
        client = MilvusClient(uri=STANDALONE_URI, timeout=60)
        out["server_version"] = str(client.get_server_version())
        out["floor"] = import_floor(STANDALONE_URI)
        for n in sizes:
            name = f"bench_{n}"
            entry: dict[str, Any] = {"rows": n, "collection": name, "raw_vector_bytes": n * data.DIM * 4}
            log(f"  loading {n} rows into {name} ...")
            entry["load"] = load_collection(client, name, n)
            log(f"    {entry['load']}")
            store = work / f"store_{n}"
            runs = []
            runs.append(vecbackup_backup(STANDALONE_URL, store, name, n))
            log(f"    vecbackup backup: {runs[-1]['wall_s']:.1f}s, {runs[-1]['peak_rss_bytes'] / 2**20:.0f} MiB")
            for mode in ("naive", "stream", "bare"):
                gz = work / f"{name}.{mode}.json.gz"
                runs.append(baseline_export(STANDALONE_URI, name, n, gz, mode))
                gz.unlink()
                log(f"    baseline {mode}: {runs[-1]['wall_s']:.1f}s, {runs[-1]['peak_rss_bytes'] / 2**20:.0f} MiB")
            entry["backup"] = runs
            entry["backup_speed"] = speed = backup_speed(STANDALONE_URL, STANDALONE_URI, name, n, work)
            bare_s = speed["bare"]["wall_s"]
            log(f"    backup speed (medians of {speed['rounds']}): bare {bare_s:.1f}s, columns "
                f"{speed['columns']['wall_s']:.1f}s ({speed['columns']['wall_s'] / bare_s:.2f}x), rows "
                f"{speed['rows']['wall_s']:.1f}s ({speed['rows']['wall_s'] / bare_s:.2f}x)")
            restored = f"{name}_restored"
            entry["settle_s"] = settle(client, name)
            log(f"    source compacted and indexed again in {entry['settle_s']:.1f}s (before the restores)")
            entry["restore"] = vecbackup_restore(STANDALONE_URL, store, name, restored, n)
            log(f"    vecbackup restore: {entry['restore']['wall_s']:.1f}s, "
                f"{entry['restore']['peak_rss_bytes'] / 2**20:.0f} MiB")
            client.drop_collection(restored)
            entry["restore_parallel"] = {}
            for k in PARALLEL:  # insert requests in flight
                r = vecbackup_restore(STANDALONE_URL, store, name, restored, n, parallel=k)
                entry["restore_parallel"][str(k)] = r
                log(f"    vecbackup restore --parallel {k}: {r['wall_s']:.1f}s "
                    f"({r['wall_s'] / entry['load']['loaded_s']:.2f}x the plain load)")
                client.drop_collection(restored)
            entry["restore_workers"] = w = vecbackup_restore_workers(STANDALONE_URL, store, restored, n, workers=2)
            log(f"    vecbackup restore by 2 workers + commit: {w['wall_s']:.1f}s "
                f"({w['wall_s'] / entry['load']['loaded_s']:.2f}x the plain load; commit {w['commit_s']:.1f}s)")
            client.drop_collection(restored)
            entry["drill"] = vecbackup_drill(STANDALONE_URL, store, name, n, work)
            d = entry["drill"]
            log(f"    vecbackup drill: {d['wall_s']:.1f}s (RTO {d['rto_s']:.1f}s, search check "
                f"{d['search_check_s']:.1f}s), {d['peak_rss_bytes'] / 2**20:.0f} MiB")
            client.release_collection(name)
            out["sizes"].append(entry)
        client.close()
    finally:
        server.stop()
    return out


# -- Milvus Lite: the database lives in the process that opens it, so loading happens in a subprocess


def _lite_load(path: str, n: int) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(path)
    data.create_collection(client, "bench_lite")
    for batch in data.iter_batches(n, BATCH):
        client.insert("bench_lite", batch)
    client.flush("bench_lite")
    data.create_index(client, "bench_lite")
    client.load_collection("bench_lite")
    client.close()


def run_lite(n: int, work: Path, log: Any = print) -> dict[str, Any]:
    db = work / "lite" / "bench.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"milvus-lite://{db}"
    store = work / "store_lite"
    r = run_measured([PYTHON, "-m", "benchmarks.e2e", "lite-load", str(db), str(n)], cwd=ROOT).check()
    out: dict[str, Any] = {"rows": n, "load": {"wall_s": r.wall, "rows_per_s": n / r.wall}}
    log(f"  lite load: {r.wall:.1f}s")
    out["backup"] = vecbackup_backup(url, store, "bench_lite", n)
    log(f"  lite backup: {out['backup']['wall_s']:.1f}s")
    out["restore"] = vecbackup_restore(url, store, "bench_lite", "bench_lite_restored", n)
    log(f"  lite restore: {out['restore']['wall_s']:.1f}s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lite-load")
    p.add_argument("path")
    p.add_argument("rows", type=int)
    args = ap.parse_args(argv)
    if args.cmd == "lite-load":
        _lite_load(args.path, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
