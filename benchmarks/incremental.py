"""Incremental uploads (issue 11): what a backup uploads after 0.1%, 1% and 10% of the rows changed, and what 30
daily backups at 1% churn cost in the store, beside what the same backups cost when every row is stored anew
(``backup --full``, which is what vecbackup did before: chunks cut every ``--batch-size`` rows, so one change
shifts every later boundary).

Runs on Milvus Lite (embedded) with the benchmark collection (benchmarks/data.py: 128-d float32 vectors, VARCHAR,
JSON, ARRAY, dynamic fields), through the Python API in this process. A change of fraction f is f/2 of the rows
updated (new vector and title), f/4 deleted and f/4 inserted (new keys), each drawn at random over the whole key
range: spread changes, the hard case for chunk-level deduplication.

    python -m benchmarks.incremental [--rows 20000] [--days 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks import data
from benchmarks.measure import dir_size

NAME = "bench_inc"
BATCH = 5000


class Collection:
    """The benchmark collection in a Milvus Lite file, and the keys it holds now."""

    def __init__(self, db: Path, rows: int, seed: int = 7) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(str(db))
        self.url = f"milvus-lite://{db}"
        data.create_collection(self.client, NAME)
        for batch in data.iter_batches(rows, BATCH):
            self.client.insert(NAME, batch)
        self.client.flush(NAME)
        data.create_index(self.client, NAME, "IVF_FLAT", {"nlist": 64})
        self.client.load_collection(NAME)
        self.keys = np.arange(rows)
        self.next_key = rows
        self.rng = np.random.default_rng(seed)
        self.round = 0

    def change(self, fraction: float) -> dict[str, int]:
        """Update, delete and insert ``fraction`` of the rows in all (2:1:1), at random over the key range."""
        self.round += 1
        n = max(4, round(fraction * len(self.keys)))
        picked = self.rng.choice(self.keys, size=n // 2 + n // 4, replace=False)
        updated, deleted = picked[: n // 2], picked[n // 2:]
        fresh = data.make_rows(len(updated), start=0, seed=1000 + self.round)
        for row, key in zip(fresh, updated.tolist(), strict=True):
            row["id"] = key
        self.client.upsert(NAME, fresh)
        self.client.delete(NAME, ids=deleted.tolist())
        inserted = data.make_rows(n // 4, start=self.next_key, seed=2000 + self.round)
        self.client.insert(NAME, inserted)
        self.next_key += n // 4
        self.client.flush(NAME)
        self.keys = np.concatenate([np.setdiff1d(self.keys, deleted), np.array([r["id"] for r in inserted])])
        return {"updated": len(updated), "deleted": len(deleted), "inserted": len(inserted)}


def backup(col: Collection, store: Path, *, full: bool = False) -> dict[str, Any]:
    from vecbackup import api

    before = dir_size(store) if store.exists() else 0
    t0 = time.perf_counter()
    run = api.backup(col.url, f"file://{store}", [NAME], options=api.BackupOptions(batch_size=BATCH, full=full))
    wall = time.perf_counter() - t0
    run.raise_for_failures()
    r = run.results[0]
    return {"objects_keys": sorted({o.key for o in _manifest(store, r.backup_id).objects}),
            "backup_id": r.backup_id, "rows": r.rows, "rows_reused": r.rows_reused, "objects": r.objects,
            "objects_new": r.objects_new, "bytes_referenced": r.bytes_stored, "bytes_uploaded": r.bytes_uploaded,
            "store_growth": dir_size(store) - before, "store_bytes": dir_size(store), "wall_s": wall}


def _manifest(store: Path, backup_id: str) -> Any:
    from vecbackup import api

    return api.show(f"file://{store}", backup_id, NAME)


def one_change(work: Path, rows: int, fraction: float) -> dict[str, Any]:
    """A full backup, ``fraction`` of the rows changed, then the next backup: incremental and --full."""
    col = Collection(work / f"change-{fraction}.db", rows)
    inc, full = work / f"inc-{fraction}", work / f"full-{fraction}"
    first = backup(col, inc)
    shutil.copytree(inc, full)
    changed = col.change(fraction)
    second = backup(col, inc)
    again_full = backup(col, full, full=True)
    col.client.close()
    known = set(first.pop("objects_keys"))
    m = _manifest(inc, second["backup_id"])
    second["reused_bytes"] = sum(o.size for o in m.objects if o.key in known)
    second["new_data_bytes"] = sum(o.size for o in m.objects if o.key not in known)
    second.pop("objects_keys")
    again_full.pop("objects_keys")
    return {"fraction": fraction, "rows": rows, "changed": changed, "first": first, "incremental": second,
            "full": again_full, "uploaded_ratio": second["store_growth"] / first["store_bytes"],
            "full_uploaded_ratio": again_full["store_growth"] / first["store_bytes"],
            "wall_ratio": second["wall_s"] / again_full["wall_s"]}


def daily(work: Path, rows: int, days: int, fraction: float = 0.01) -> dict[str, Any]:
    """``days`` daily backups with ``fraction`` churn between them, into an incremental and a --full store."""
    col = Collection(work / "daily.db", rows)
    inc, full = work / "daily-inc", work / "daily-full"
    first = backup(col, inc)
    first.pop("objects_keys")
    shutil.copytree(inc, full)
    series = [{"day": 1, "inc_store": first["store_bytes"], "full_store": first["store_bytes"],
               "inc_uploaded": first["store_growth"], "inc_wall_s": first["wall_s"], "full_wall_s": first["wall_s"]}]
    for day in range(2, days + 1):
        col.change(fraction)
        a, b = backup(col, inc), backup(col, full, full=True)
        series.append({"day": day, "inc_store": a["store_bytes"], "full_store": b["store_bytes"],
                       "inc_uploaded": a["store_growth"], "inc_wall_s": a["wall_s"], "full_wall_s": b["wall_s"]})
    last = backup_restores(col, inc)
    col.client.close()
    one = first["store_bytes"]
    return {"rows": rows, "days": days, "fraction": fraction, "one_full": one, "series": series,
            "inc_total_ratio": series[-1]["inc_store"] / one, "full_total_ratio": series[-1]["full_store"] / one,
            "last_restore": last}


def backup_restores(col: Collection, store: Path) -> dict[str, Any]:
    """The last of the daily backups restores to the collection as it is now (a sanity check, not a timing)."""
    from vecbackup import api

    r = api.restore(f"file://{store}", col.url, collection=NAME, options=api.RestoreOptions(target="bench_inc_check"))
    col.client.load_collection("bench_inc_check")
    it = col.client.query_iterator("bench_inc_check", batch_size=5000, filter="id >= 0", output_fields=["id"])
    keys: list[int] = []
    while page := it.next():
        keys.extend(x["id"] for x in page)
    it.close()
    keys.sort()
    col.client.drop_collection("bench_inc_check")
    return {"rows": r.rows, "same_keys": keys == sorted(col.keys.tolist())}


def run(work: Path, rows: int = 20_000, days: int = 30, log: Any = print) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": rows, "batch_size": BATCH, "engine": "Milvus Lite", "changes": []}
    for fraction in (0.001, 0.01, 0.1):
        c = one_change(work, rows, fraction)
        log(f"  {fraction:.1%} changed: next backup uploads {c['uploaded_ratio']:.2%} of the first "
            f"(--full: {c['full_uploaded_ratio']:.1%}), wall {c['wall_ratio']:.2f}x of --full")
        out["changes"].append(c)
    d = daily(work, rows, days)
    log(f"  {days} daily backups at 1% churn: store {d['inc_total_ratio']:.2f}x one full backup "
        f"(--full: {d['full_total_ratio']:.2f}x)")
    out["daily"] = d
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vecbench-inc-"))
    try:
        print(orjson.dumps(run(work, args.rows, args.days), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
