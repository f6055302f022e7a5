"""What reading a store as it was costs (``--as-of``, issue 25): ``list``, ``verify --read-data`` and ``restore`` of
the same backup with and without ``--as-of``, alternated in one run (medians), on a SeaweedFS bucket with versioning,
after every current object of the store was deleted once and brought back with ``undelete`` (so each key has a
delete marker and two versions to choose from, as after an incident), beside the time ``undelete`` took.

Runs on Milvus Lite (embedded) with the benchmark collection (benchmarks/data.py), through the CLI in this process;
SeaweedFS, Lite and the client share the machine's cores, so the ratios are the figures to read.

    python -m benchmarks.asof_bench [--rows 20000] [--batch 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import data

NAME = "bench_asof"


def _cli(*args: str) -> float:
    """The seconds ``vecbackup ARGS...`` took in this process; RuntimeError unless it exited 0."""
    from tests.integration.common import run_cli

    t0 = time.perf_counter()
    code, _, err = run_cli(*args)
    if code != 0:
        raise RuntimeError(f"vecbackup {args[0]} exited {code}: {err[-500:]}")
    return time.perf_counter() - t0


def _moment() -> str:
    time.sleep(1.2)  # S3 keeps whole seconds
    t = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.2)
    return t.isoformat().replace("+00:00", "Z")


def run(work: Path, rows: int = 20_000, batch: int = 50, repeat: int = 3,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    from pymilvus import MilvusClient

    from tests.seaweedfs import SeaweedFS

    server = SeaweedFS(work / "seaweedfs-asof").start()
    saved = dict(os.environ)
    try:
        os.environ.update(server.env())
        s3 = server.client()
        bucket = f"asof{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        url = f"s3://{bucket}/b?endpoint={server.endpoint}&path_style=1"
        db = work / "asof.db"
        client = MilvusClient(str(db))
        data.create_collection(client, NAME)
        for part in data.iter_batches(rows, 5000):
            client.insert(NAME, part)
        client.flush(NAME)
        data.create_index(client, NAME, "IVF_FLAT", {"nlist": 64})
        client.close()
        lite = f"milvus-lite://{db}"
        _cli("backup", lite, url, "-c", NAME, "--batch-size", str(batch))
        before = _moment()
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])]
        for key in keys:  # an incident: every current object deleted
            s3.delete_object(Bucket=bucket, Key=key)
        undelete_s = _cli("undelete", url, "--as-of", before)
        log(f"  {len(keys)} objects deleted and brought back by undelete in {undelete_s:.1f}s")
        steps: dict[str, list[float]] = {}
        for i in range(repeat):
            for step, args in (("list", ("list", url)), ("verify", ("verify", url, "--read-data")),
                               ("restore", ("restore", url, lite, "--as", f"r{i}"))):
                now = _cli(*args)
                past = _cli(*args, "--as-of", before) if step != "restore" else \
                    _cli(*args[:-1], f"r{i}_then", "--as-of", before)
                steps.setdefault(step, []).append(now)
                steps.setdefault(f"{step}_as_of", []).append(past)
        med = {k: statistics.median(v) for k, v in steps.items()}
        log("  " + ", ".join(f"{s} {med[s]:.2f}s / --as-of {med[s + '_as_of']:.2f}s"
                             for s in ("list", "verify", "restore")))
        return {"rows": rows, "batch_size": batch, "repeat": repeat, "objects": len(keys),
                "undelete_s": undelete_s, "median": med, "runs": steps,
                "ratios": {s: med[f"{s}_as_of"] / med[s] for s in ("list", "verify", "restore")}}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vecbench-asof-"))
    try:
        res = run(work, args.rows, args.batch, args.repeat, log=lambda m: print(m, file=sys.stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
