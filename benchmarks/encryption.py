"""What encryption costs (issue 12): backup, restore and verify --read-data of the same collection into an
unencrypted and an encrypted store, alternated in one run (medians), so the ratio is encrypted ÷ unencrypted with
everything else equal; the stored bytes of both; and the primitives alone: AES-256-GCM sealing and opening of a
chunk-sized object, the HMAC that names it, and scrypt unlocking a store.

Runs on Milvus Lite (embedded) with the benchmark collection (benchmarks/data.py: 128-d float32 vectors, VARCHAR,
JSON, ARRAY, dynamic fields), through the Python API in this process, into local folders. Client and Lite share the
machine's cores.

    python -m benchmarks.encryption [--rows 20000] [--repeat 3]
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

from benchmarks import data
from benchmarks.measure import dir_size

NAME = "bench_enc"
BATCH = 5000
PASSPHRASE = "benchmark passphrase, not a secret"


def _collection(db: Path, rows: int) -> Any:
    from pymilvus import MilvusClient

    client = MilvusClient(str(db))
    data.create_collection(client, NAME)
    for batch in data.iter_batches(rows, BATCH):
        client.insert(NAME, batch)
    client.flush(NAME)
    data.create_index(client, NAME, "IVF_FLAT", {"nlist": 64})
    client.load_collection(NAME)
    return client


def _one_round(url: str, work: Path, i: int, encrypted: bool) -> dict[str, float]:
    from vecbackup import api

    folder = work / f"{'enc' if encrypted else 'plain'}-{i}"
    store_url = f"file://{folder}"
    pw = api.Passphrase(PASSPHRASE) if encrypted else api.Passphrase()
    if encrypted:
        api.init(store_url, encrypt=True, passphrase=pw)
    t0 = time.perf_counter()
    store = api.open_store(store_url, create=True, passphrase=pw)
    unlock = time.perf_counter() - t0
    t0 = time.perf_counter()
    api.backup(url, store, [NAME], options=api.BackupOptions(batch_size=BATCH, full=True)).raise_for_failures()
    backup = time.perf_counter() - t0
    t0 = time.perf_counter()
    (checked,) = api.verify(store, "latest", depth="read-data")
    verify = time.perf_counter() - t0
    assert checked.ok, checked.problems
    target = f"{NAME}_r{i}{'e' if encrypted else 'p'}"
    t0 = time.perf_counter()
    api.restore(store, url, collection=NAME, options=api.RestoreOptions(target=target))
    restore = time.perf_counter() - t0
    return {"unlock_s": unlock, "backup_s": backup, "verify_s": verify, "restore_s": restore,
            "stored_bytes": float(dir_size(folder))}


def primitives(size: int = 8 << 20, repeat: int = 5) -> dict[str, float]:
    """MB/s of sealing, opening and naming one ``size``-byte object, and seconds to unwrap a key file."""
    from vecbackup.format.crypto import KeyFile, RepositoryKey

    key = RepositoryKey.generate()
    blob = os.urandom(size)
    sealed = key.seal("data/ab/x.vbc", blob)
    out: dict[str, float] = {}
    for what, fn in (("seal", lambda: key.seal("data/ab/x.vbc", blob)),
                     ("open", lambda: key.open("data/ab/x.vbc", sealed)), ("name", lambda: key.name(blob))):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[f"{what}_mb_s"] = size / 1e6 / statistics.median(times)
    kf = KeyFile.wrap(key, PASSPHRASE.encode(), created="bench")
    t0 = time.perf_counter()
    assert kf.unwrap(PASSPHRASE.encode()) is not None
    out["unwrap_s"] = time.perf_counter() - t0
    return out


def run(work: Path, rows: int = 20_000, repeat: int = 3, log: Any = print) -> dict[str, Any]:
    client = _collection(work / "enc.db", rows)
    client.close()
    url = f"milvus-lite://{work / 'enc.db'}"
    rounds: dict[str, list[dict[str, float]]] = {"plain": [], "encrypted": []}
    for i in range(repeat):
        for kind in (("plain", "encrypted") if i % 2 == 0 else ("encrypted", "plain")):  # alternate the order
            rounds[kind].append(_one_round(url, work, i, kind == "encrypted"))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("unlock_s", "backup_s", "verify_s", "restore_s",
                                                                 "stored_bytes")} for k, v in rounds.items()}
    ratios = {m: med["encrypted"][m] / med["plain"][m] for m in ("backup_s", "verify_s", "restore_s", "stored_bytes")}
    prim = primitives()
    log(f"  encrypted ÷ unencrypted: backup {ratios['backup_s']:.2f}x, verify --read-data {ratios['verify_s']:.2f}x, "
        f"restore {ratios['restore_s']:.2f}x, stored bytes {ratios['stored_bytes']:.4f}x; unlock "
        f"{med['encrypted']['unlock_s']:.2f}s; AES-GCM seal {prim['seal_mb_s']:.0f} MB/s, open "
        f"{prim['open_mb_s']:.0f} MB/s, HMAC {prim['name_mb_s']:.0f} MB/s")
    return {"rows": rows, "batch_size": BATCH, "repeat": repeat, "engine": "Milvus Lite", "median": med,
            "ratios": ratios, "primitives": prim,
            "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vecbench-enc-"))
    try:
        print(orjson.dumps(run(work, args.rows, args.repeat), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
