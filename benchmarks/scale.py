"""Benchmarks at scale (``make bench-scale``, not in CI): backup and restore of big collections on the Milvus 2.3
standalone server, each beside its yardstick measured in the same run.

    make bench-scale                       # the default configurations below
    .venv/bin/python -m benchmarks.scale --configs 50000x768:IVF_FLAT   # (inside the namespace make sets up)

For each configuration ``ROWSxDIM:INDEX`` (int64 id, DIM-d float32 vectors from a normal distribution, VARCHAR,
JSON, ARRAY<INT64> and two dynamic keys, as benchmarks/data.py):

* **plain load** (the restore's yardstick): pymilvus ``insert`` of 5000-row batches + flush + index + load, timing
  the calls only (generating the rows is not counted);
* **bare export** (the backup's yardstick): ``query_iterator``, every page read and discarded;
* ``vecbackup backup`` (columnar read), ``--parallel 2``, and a sharded backup by 2 processes at once + ``commit``;
* ``vecbackup restore`` with 1 and 2 inserts in flight (columnar inserts), and once through pymilvus's rows
  (``?columnar=off``) where ``--row-path`` asks for it;
* the seed's approach (``query(offset, limit)`` + ``json.dumps`` + gzip) on the smallest configuration: Milvus
  refuses offset + limit above 16,384, and that is what it reports.

Each measurement is a fresh process (peak RSS and CPU are its own). Results go to ``results.json`` under
``"scale"`` (the rest of it is kept) and RESULTS.md is re-rendered. Server and client share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks import data, report
from benchmarks.e2e import (
    PYTHON,
    STANDALONE_URI,
    STANDALONE_URL,
    VECBACKUP,
    _proc_fields,
    baseline_export,
    import_floor,
    settle,
    strong_count,
    vecbackup_restore,
    vecbackup_restore_workers,
    wait_index,
)
from benchmarks.measure import dir_size, machine_info, run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH = 5000
DEFAULT_CONFIGS = "200000x128:HNSW,50000x768:IVF_FLAT,1000000x768:IVF_FLAT"
INDEXES = {"HNSW": data.HNSW_PARAMS, "IVF_FLAT": {"nlist": 128}}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_configs(text: str) -> list[tuple[int, int, str]]:
    out = []
    for item in text.split(","):
        shape, _, index = item.strip().partition(":")
        rows, _, dim = shape.partition("x")
        out.append((int(rows), int(dim), index or "HNSW"))
    return out


def plain_load(client: Any, name: str, n: int, dim: int, index: str) -> dict[str, Any]:
    """Create ``name`` with ``n`` rows the plain pymilvus way; time the calls, not the row generation."""
    if client.has_collection(name):
        client.drop_collection(name)
    data.create_collection(client, name, dim=dim)
    t_insert = 0.0
    for batch in data.iter_batches(n, BATCH, dim=dim):
        t0 = time.perf_counter()
        client.insert(name, batch)
        t_insert += time.perf_counter() - t0
    t0 = time.perf_counter()
    client.flush(name)
    t_flush = time.perf_counter() - t0
    data.create_index(client, name, index, INDEXES[index])
    wait_index(client, name, n, timeout=7200)
    t_index = time.perf_counter() - t0 - t_flush
    client.load_collection(name)
    t_load = time.perf_counter() - t0 - t_flush - t_index
    count = strong_count(client, name)
    if count != n:
        raise RuntimeError(f"{name}: loaded {count} rows, expected {n}")
    return {"insert_s": t_insert, "flush_s": t_flush, "index_s": t_index, "load_s": t_load,
            "wall_s": t_insert + t_flush + t_index + t_load}


def backup(url: str, store: Path, name: str, n: int, *extra: str) -> dict[str, Any]:
    r = run_measured([VECBACKUP, "backup", url, f"file://{store}", "-c", name, "--batch-size", str(BATCH), "--json",
                      *extra], timeout=3600).check()
    doc = r.json()["backups"][0]
    if doc["rows"] != n:
        raise RuntimeError(f"backup {extra} of {name}: {doc['rows']} rows, expected {n}")
    return {**_proc_fields(r, n), "tool_s": doc["seconds"], "bytes": dir_size(store / "data"),
            "objects": doc["objects"], "notes": doc["notes"], "bytes_read": doc.get("bytes_read"),
            "bytes_uploaded": doc["bytes_uploaded"], "rows_reused": doc["rows_reused"],
            "bytes_stored": doc.get("bytes_stored")}


def change_one_percent(client: Any, name: str, n: int, dim: int) -> int:
    """Change 1% of the rows as a day of writes would: a third deleted, a third upserted, a third inserted anew,
    spread over the whole key range, then flushed. The rows the collection holds afterwards."""
    import numpy as np

    k = max(3, n // 100) // 3
    rng = np.random.default_rng(99)
    picked = rng.choice(n, 2 * k, replace=False)
    client.delete(name, ids=[int(i) for i in picked[:k]])
    batch = next(data.iter_batches(k, k, dim=dim, seed=5))
    for row, key in zip(batch, picked[k:], strict=True):
        row["id"] = int(key)
    client.upsert(name, batch)
    new = next(data.iter_batches(k, k, dim=dim, seed=6))
    for i, row in enumerate(new):
        row["id"] = n + 10_000_000 + i
    client.insert(name, new)
    client.flush(name)
    return n


def segments(client: Any, name: str, n: int, dim: int, work: Path, storage: Path,
             logical: Path | None = None) -> dict[str, Any]:
    """``backup --segments-from`` (the server's local storage) beside the logical backup, then again after 1% of
    the rows changed: what it read and uploaded; with ``logical`` (the store of the logical backup of the same
    collection), also a segment backup on top of it: what the first segment backup after logical ones uploads, as
    soon as it is taken and after the 1% change (the segments then hold rows deleted since, the logical backup not)."""
    store = work / f"store_{name}_segments"
    url = f"file://{storage}"
    again = work / f"store_{name}_segments_again"  # the first backup twice, each into an empty store: the median
    walls = [backup(STANDALONE_URL, again, name, n, "--segments-from", url)["wall_s"]]
    shutil.rmtree(again)
    first = backup(STANDALONE_URL, store, name, n, "--segments-from", url)
    walls.append(first["wall_s"])
    first["walls"] = walls
    first["wall_s"] = statistics.median(walls)
    _log(f"    segment backup: {' and '.join(f'{w:.1f}s' for w in walls)}, read "
         f"{first['bytes_read'] / 2**20:,.0f} MiB")
    on_logical = on_logical_changed = None
    logical_then = work / f"store_{name}_logical_then"  # the logical backup, for a segment backup after the change
    if logical is not None:
        shutil.copytree(logical, logical_then)
        on_logical = backup(STANDALONE_URL, logical, name, n, "--segments-from", url)
        shutil.rmtree(logical)
        _log(f"    segment backup on top of the logical one: {on_logical['wall_s']:.1f}s, uploaded "
             f"{on_logical['bytes_uploaded'] / first['bytes_uploaded']:.1%} of the first, "
             f"{on_logical['rows_reused']:,} rows found in the logical backup's objects")
    logical = work / f"store_{name}_logical_after"
    shutil.copytree(store, logical)  # the logical backup of the same change starts from the same base
    rows = change_one_percent(client, name, n, dim)
    second = backup(STANDALONE_URL, store, name, rows, "--segments-from", url)
    _log(f"    after 1% changed: {second['wall_s']:.1f}s, read {second['bytes_read'] / 2**20:,.1f} MiB "
         f"({second['bytes_read'] / first['bytes_read']:.1%}), uploaded {second['bytes_uploaded'] / 2**20:,.1f} MiB "
         f"({second['bytes_uploaded'] / first['bytes_uploaded']:.1%})")
    third = backup(STANDALONE_URL, logical, name, rows)
    shutil.rmtree(logical)
    _log(f"    logical backup after the same change: {third['wall_s']:.1f}s, uploaded "
         f"{third['bytes_uploaded'] / 2**20:,.1f} MiB")
    if logical_then.exists():  # the first segment backup after a logical one, with rows deleted since in the segments
        on_logical_changed = backup(STANDALONE_URL, logical_then, name, rows, "--segments-from", url)
        shutil.rmtree(logical_then)
        _log(f"    segment backup on top of the logical one after the change: {on_logical_changed['wall_s']:.1f}s, "
             f"uploaded {on_logical_changed['bytes_uploaded'] / first['bytes_uploaded']:.1%} of the first, "
             f"{on_logical_changed['rows_reused']:,} rows found in the logical backup's objects")
    compacted = after_compaction(client, name, store, url, work)
    c_seg, c_log = compacted["segments"], compacted["logical"]
    up = first["bytes_uploaded"]
    _log(f"    after a quarter of the rows was deleted and compacted away: segment backup read "
         f"{c_seg['bytes_read'] / first['bytes_read']:.1%} and uploaded {c_seg['bytes_uploaded'] / up:.1%} of the "
         f"first; the logical backup uploaded {c_log['bytes_uploaded'] / up:.1%}")
    shutil.rmtree(store)
    return {"first": first, "after_1pct": second, "logical_after_1pct": third, "after_compaction": compacted,
            "on_logical": on_logical, "on_logical_after_1pct": on_logical_changed}


def after_compaction(client: Any, name: str, store: Path, url: str, work: Path) -> dict[str, Any]:
    """A quarter of the rows deleted (every key divisible by 4), then compacted away (the server rewrites the
    segments that held them): what the next segment backup reads and uploads, beside the logical backup of the same
    change from the same base. A rewritten segment is read again; its rows are found in the base's objects by their
    digests (as the logical backup finds every row it reads), so little is uploaded."""
    logical = work / f"store_{name}_logical_compacted"
    shutil.copytree(store, logical)
    client.delete(name, filter="id % 4 == 0")
    client.flush(name)
    settle_s = settle(client, name)
    rows = strong_count(client, name)
    seg = backup(STANDALONE_URL, store, name, rows, "--segments-from", url)
    log = backup(STANDALONE_URL, logical, name, rows)
    shutil.rmtree(logical)
    return {"rows": rows, "settle_s": settle_s, "segments": seg, "logical": log}


def sharded(url: str, store: Path, name: str, n: int, shards: int) -> dict[str, Any]:
    """``shards`` backup processes at once, then commit: the wall until the backup exists."""
    import subprocess

    t0 = time.perf_counter()
    procs = [subprocess.Popen([VECBACKUP, "backup", url, f"file://{store}", "-c", name, "--batch-size", str(BATCH),
                               "--shard", f"{i}/{shards}", "--run", "bench", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(shards)]
    usage = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"shard failed: {err.decode()[-500:]}")
        usage.append(orjson.loads(out)["backups"][0])
    t_shards = time.perf_counter() - t0
    r = run_measured([VECBACKUP, "commit", f"file://{store}", "-c", name, "--run", "bench", "--json"]).check()
    doc = r.json()
    if doc["rows"] != n:
        raise RuntimeError(f"sharded backup of {name}: {doc['rows']} rows, expected {n}")
    return {"shards": shards, "wall_s": time.perf_counter() - t0, "shards_wall_s": t_shards, "commit_s": r.wall,
            "shard_tool_s": [round(u["seconds"], 2) for u in usage], "bytes": dir_size(store / "data")}


def seed_approach(n: int, name: str, work: Path) -> dict[str, Any]:
    out = work / f"{name}.seed.json.gz"
    r = run_measured([PYTHON, "-m", "benchmarks.baseline_export", STANDALONE_URI, name, str(out), "--mode", "seed",
                      "--batch-size", str(BATCH)], cwd=ROOT).check()
    doc = r.json()
    out.unlink(missing_ok=True)
    return {**_proc_fields(r, doc["rows"]), "rows": doc["rows"], "bytes": doc["bytes"], "error": doc["error"],
            "of": n}


def server_imports(client: Any, store: Path, name: str, n: int, work: Path, load: dict[str, Any],
                   formats: tuple[str, ...] = ("files", "binlog")) -> dict[str, Any]:
    """Restores through the server's import of numpy files ("import") and of its own binlogs ("binlog")."""
    out = {}
    restored = f"{name}_restored"
    for key, fmt in (("import", "files"), ("binlog", "binlog")):
        if fmt not in formats:
            continue
        r = vecbackup_restore(STANDALONE_URL, store, name, restored, n, bulk_import_via=work / "import-stage",
                              bulk_format=fmt)
        out[key] = r
        client.drop_collection(restored)
        _log(f"    restore --bulk-import-via --bulk-import-format {fmt} ({r['import_tasks']} tasks): "
             f"{r['wall_s']:.1f}s ({r['wall_s'] / load['wall_s']:.2f}x the plain load)")
    return out


def imports_only(client: Any, n: int, dim: int, index: str, work: Path,
                 restores: tuple[str, ...] = ("inserts", "files", "binlog")) -> dict[str, Any]:
    """The plain load, one backup, then the restores that compare with it: inserts (K=1) and the server's two
    imports (``restores`` names which), the source settled first (as run_config does)."""
    name = f"scale_{n}_{dim}"
    entry: dict[str, Any] = {"rows": n, "dim": dim, "index": index, "index_params": INDEXES[index]}
    _log(f"  {n} x {dim}-d, {index}: plain load ...")
    entry["load"] = load = plain_load(client, name, n, dim, index)
    _log(f"    plain load {load['wall_s']:.1f}s (index {load['index_s']:.1f})")
    store = work / f"store_{name}_imports"
    entry["backup"] = backup(STANDALONE_URL, store, name, n)
    entry["settle_s"] = settle(client, name)
    restored = f"{name}_restored"
    entry["restore"] = {}
    if "inserts" in restores:
        r = vecbackup_restore(STANDALONE_URL, store, name, restored, n, parallel=1)
        entry["restore"]["1"] = r
        client.drop_collection(restored)
        _log(f"    restore --parallel 1: {r['wall_s']:.1f}s ({r['wall_s'] / load['wall_s']:.2f}x the plain load)")
    entry["restore"].update(server_imports(client, store, name, n, work, load, restores))
    shutil.rmtree(store)
    client.release_collection(name)
    client.drop_collection(name)
    return entry


def run_config(client: Any, n: int, dim: int, index: str, work: Path, rounds: int, row_path: bool,
               storage: Path, restores: bool = True) -> dict[str, Any]:
    name = f"scale_{n}_{dim}"
    entry: dict[str, Any] = {"rows": n, "dim": dim, "index": index, "index_params": INDEXES[index],
                             "raw_vector_bytes": n * dim * 4}
    _log(f"  {n} x {dim}-d, {index}: plain load ...")
    entry["load"] = load = plain_load(client, name, n, dim, index)
    _log(f"    plain load {load['wall_s']:.1f}s (insert {load['insert_s']:.1f}, flush {load['flush_s']:.1f}, "
         f"index {load['index_s']:.1f}, load {load['load_s']:.1f})")
    if not restores:  # --segments-only: both backups of a settled collection, as a long-lived one is
        entry["settle_s"] = settle(client, name)
        _log(f"    compacted and indexed again in {entry['settle_s']:.1f}s (before the backups)")
    bare: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    for i in range(rounds):  # alternating, each a fresh process into a fresh store
        gz = work / f"{name}.bare"
        bare.append(baseline_export(STANDALONE_URI, name, n, gz, "bare"))
        gz.unlink()
        store = work / f"store_{name}_{i}"
        ours.append(backup(STANDALONE_URL, store, name, n))
        if i < rounds - 1:
            shutil.rmtree(store)
        _log(f"    round {i + 1}: bare {bare[-1]['wall_s']:.1f}s, backup {ours[-1]['wall_s']:.1f}s")
    keep = work / f"store_{name}_{rounds - 1}"  # the backup the restores read
    if not restores:  # --segments-only: the logical backup and its yardstick, then the segment backups
        entry["rounds"] = rounds
        entry["backup_walls"] = {"bare": [round(r["wall_s"], 1) for r in bare],
                                 "backup": [round(r["wall_s"], 1) for r in ours]}
        entry["logical"] = {"wall_s": statistics.median(r["wall_s"] for r in ours),
                            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ours),
                            "bare_wall_s": statistics.median(r["wall_s"] for r in bare)}
        entry["segments"] = segments(client, name, n, dim, work, storage, logical=keep)
        client.release_collection(name)
        client.drop_collection(name)
        return entry
    med = {"bare": {"wall_s": statistics.median(r["wall_s"] for r in bare),
                    "tool_s": statistics.median(r["tool_seconds"] for r in bare),
                    "peak_rss_bytes": max(r["peak_rss_bytes"] for r in bare),
                    "cpu_s": statistics.median(r["cpu_user_s"] + r["cpu_sys_s"] for r in bare)},
           "backup": {"wall_s": statistics.median(r["wall_s"] for r in ours),
                      "tool_s": statistics.median(r["tool_s"] for r in ours),
                      "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ours),
                      "cpu_s": statistics.median(r["cpu_user_s"] + r["cpu_sys_s"] for r in ours),
                      "bytes": ours[-1]["bytes"], "objects": ours[-1]["objects"]}}
    entry["rounds"] = rounds
    entry["backup"] = med
    entry["backup_walls"] = {"bare": [round(r["wall_s"], 1) for r in bare],
                             "backup": [round(r["wall_s"], 1) for r in ours]}
    store = work / f"store_{name}_par"
    entry["backup_parallel2"] = backup(STANDALONE_URL, store, name, n, "--parallel", "2")
    shutil.rmtree(store)
    _log(f"    backup --parallel 2: {entry['backup_parallel2']['wall_s']:.1f}s")
    store = work / f"store_{name}_sharded"
    entry["sharded2"] = sharded(STANDALONE_URL, store, name, n, 2)
    shutil.rmtree(store)
    _log(f"    2 shards + commit: {entry['sharded2']['wall_s']:.1f}s")
    restored = f"{name}_restored"
    entry["settle_s"] = settle(client, name)
    _log(f"    source compacted and indexed again in {entry['settle_s']:.1f}s (before the restores)")
    entry["restore"] = {}
    for k in (1, 2):
        r = vecbackup_restore(STANDALONE_URL, keep, name, restored, n, parallel=k)
        entry["restore"][str(k)] = r
        client.drop_collection(restored)
        _log(f"    restore --parallel {k}: {r['wall_s']:.1f}s ({r['wall_s'] / load['wall_s']:.2f}x the plain load)")
    entry["restore"]["workers2"] = w = vecbackup_restore_workers(STANDALONE_URL, keep, restored, n, workers=2)
    client.drop_collection(restored)
    _log(f"    restore by 2 workers + commit: {w['wall_s']:.1f}s ({w['wall_s'] / load['wall_s']:.2f}x the plain load; "
         f"commit {w['commit_s']:.1f}s)")
    entry["restore"].update(server_imports(client, keep, name, n, work, load))
    if row_path:
        r = vecbackup_restore(f"{STANDALONE_URL}?columnar=off", keep, name, restored, n)
        entry["restore"]["rows"] = r
        client.drop_collection(restored)
        _log(f"    restore through pymilvus rows: {r['wall_s']:.1f}s")
    shutil.rmtree(keep)
    entry["segments"] = segments(client, name, n, dim, work, storage)
    client.release_collection(name)
    client.drop_collection(name)
    return entry


def seed(client: Any, res: dict[str, Any], smallest: tuple[int, int, str], work: Path) -> None:
    """The seed approach's limit, on the smallest config (at most 50,000 rows)."""
    name = f"scale_seed_{smallest[0]}"
    data.create_collection(client, name, dim=smallest[1])
    for batch in data.iter_batches(min(smallest[0], 50_000), BATCH, dim=smallest[1]):
        client.insert(name, batch)
    client.flush(name)
    data.create_index(client, name, smallest[2], INDEXES[smallest[2]])
    client.load_collection(name)
    res["seed"] = seed_approach(min(smallest[0], 50_000), name, work)
    _log(f"  seed approach: {res['seed']['rows']} rows then {res['seed']['error']!r}")
    client.drop_collection(name)


def _merged(earlier: dict[str, Any], configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``configs`` and the earlier run's configs of other sizes (each dated by its own run)."""
    measured = {(c["rows"], c["dim"]) for c in configs}
    kept = [{"measured": earlier["machine"]["date"], **c} for c in earlier.get("configs", [])
            if (c["rows"], c["dim"]) not in measured]
    return sorted(configs + kept, key=lambda c: c["rows"] * c["dim"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="ROWSxDIM:INDEX,... (INDEX: HNSW or IVF_FLAT)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of bare export and backup")
    ap.add_argument("--row-path", action="store_true", help="also restore once through pymilvus's rows")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--segments-only", action="store_true", help="measure the logical backup with its yardstick and "
                    "the segment backups (--segments-from) only, not the restores; the results go under "
                    "\"segments\" in results.json")
    ap.add_argument("--imports-only", action="store_true", help="measure the plain load, one backup and the "
                    "restores by inserts and through the server's two imports (files, binlogs) only; the results "
                    "go under \"imports\" in results.json")
    ap.add_argument("--restores", default="inserts,files,binlog", help="with --imports-only: which restores to "
                    "measure against the plain load (inserts, files, binlog)")
    ap.add_argument("--merge", action="store_true", help="keep the earlier run's configs that --configs does not "
                    "name (each keeps the date it was measured on)")
    args = ap.parse_args(argv)
    configs = parse_configs(args.configs)

    from pymilvus import MilvusClient

    from tests.servers import MilvusStandalone

    venv_bin = str(Path(PYTHON).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    work = Path(tempfile.mkdtemp(prefix="vecbench-scale-", dir=os.environ.get("VECBENCH_DIR")))
    res: dict[str, Any] = {"machine": machine_info(), "configs": [], "errors": {}}
    t_start = time.perf_counter()
    server = MilvusStandalone(work / "milvus" / "data")
    server.start()
    try:
        client = MilvusClient(uri=STANDALONE_URI, timeout=600)
        res["server_version"] = str(client.get_server_version())
        res["floor"] = import_floor(STANDALONE_URI)
        if not args.imports_only:
            seed(client, res, min(configs), work)
        for n, dim, index in configs:
            try:
                if args.imports_only:
                    entry = imports_only(client, n, dim, index, work, tuple(args.restores.split(",")))
                else:
                    entry = run_config(client, n, dim, index, work, args.rounds, args.row_path,
                                       work / "milvus" / "data" / "data", restores=not args.segments_only)
                res["configs"].append({**entry, "measured": res["machine"]["date"]})
            except Exception as e:  # keep what was measured
                import traceback

                traceback.print_exc()
                res["errors"][f"{n}x{dim}"] = repr(e)
        client.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    res["total_seconds"] = time.perf_counter() - t_start
    results = args.out_dir / "results.json"
    whole = orjson.loads(results.read_bytes()) if results.exists() else {"machine": res["machine"], "errors": {}}
    section = "imports" if args.imports_only else "segments" if args.segments_only else "scale"
    if args.merge and whole.get(section):
        res["configs"] = _merged(whole[section], res["configs"])
    whole[section] = res
    results.write_bytes(orjson.dumps(whole, option=orjson.OPT_INDENT_2) + b"\n")
    (args.out_dir / "RESULTS.md").write_text(report.render(whole))
    _log(f"wrote {results} ({section}) and RESULTS.md in {res['total_seconds']:.0f}s")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
