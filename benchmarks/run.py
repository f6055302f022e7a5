"""Run every benchmark and write benchmarks/RESULTS.md and benchmarks/results.json.

    make bench          # = unshare --net ... .venv/bin/python -m benchmarks.run

The Milvus standalone part starts a real Milvus 2.3 server, which tests.servers only allows inside a
private network namespace; ``--skip-server`` runs the rest anywhere.

Every section can be skipped (``--skip-codec``, ``--skip-server``, ``--skip-lite``, ``--skip-stores``,
``--skip-qdrant``, ``--skip-incremental``, ``--skip-encryption``, ``--skip-edge``, ``--skip-asof``). A skipped
section keeps its numbers from the previous results.json in ``--out-dir`` (marked as carried over in RESULTS.md)
unless ``--no-keep`` is given, so one section can be re-run alone.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import orjson

from benchmarks import (
    asof_bench,
    codec_bench,
    e2e,
    edge_bench,
    encryption,
    incremental,
    qdrant_bench,
    report,
    stores_bench,
)
from benchmarks.measure import machine_info

HERE = Path(__file__).resolve().parent


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _other_milvus() -> list[str]:
    """`milvus run` processes already on the machine (other namespaces share it)."""
    try:
        out = subprocess.run(["pgrep", "-fa", "milvus run"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return []
    return [line for line in out.splitlines() if line.strip()]


def _carry_over(res: dict[str, Any], previous: Path, sections: list[str]) -> None:
    """Copy the skipped ``sections`` (and their errors) from the previous results.json into ``res``."""
    if not sections or not previous.exists():
        return
    old = orjson.loads(previous.read_bytes())
    carried = res.setdefault("carried_over", {})
    for key in sections:
        if key in old:
            res[key] = old[key]
            carried[key] = (old.get("carried_over") or {}).get(key) or old.get("machine", {}).get("date", "?")
        for err_key, err in (old.get("errors") or {}).items():
            if err_key == key or err_key.startswith(key + "."):
                res["errors"][err_key] = err
                carried.setdefault(key, old.get("machine", {}).get("date", "?"))
    if carried:
        _log("carried over from the previous results.json: " + ", ".join(sorted(carried)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec-rows", type=int, default=20_000)
    ap.add_argument("--sizes", default="20000,100000", help="collection sizes for the standalone runs")
    ap.add_argument("--lite-rows", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3, help="codec timings: median of this many runs")
    ap.add_argument("--skip-codec", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-lite", action="store_true")
    ap.add_argument("--skip-stores", action="store_true")
    ap.add_argument("--stores-large-mib", type=int, default=256, help="size of the large object, MiB")
    ap.add_argument("--stores-repeat", type=int, default=3, help="store timings: median of this many runs")
    ap.add_argument("--skip-qdrant", action="store_true")
    ap.add_argument("--qdrant-sizes", default="20000,60000",
                    help="point counts for the Qdrant local-mode runs (the smallest should span several batches)")
    ap.add_argument("--skip-incremental", action="store_true")
    ap.add_argument("--incremental-rows", type=int, default=20_000)
    ap.add_argument("--incremental-days", type=int, default=30)
    ap.add_argument("--skip-encryption", action="store_true")
    ap.add_argument("--encryption-rows", type=int, default=20_000)
    ap.add_argument("--skip-edge", action="store_true")
    ap.add_argument("--edge-sizes", default="20000,100000", help="point counts for the Qdrant Edge runs")
    ap.add_argument("--skip-asof", action="store_true")
    ap.add_argument("--asof-rows", type=int, default=20_000)
    ap.add_argument("--no-keep", action="store_true",
                    help="do not carry skipped sections over from the previous results.json")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    qdrant_sizes = [int(s) for s in args.qdrant_sizes.split(",") if s.strip()]
    edge_sizes = [int(s) for s in args.edge_sizes.split(",") if s.strip()]

    t_start = time.perf_counter()
    res: dict[str, Any] = {"machine": machine_info(), "errors": {}}
    work = Path(tempfile.mkdtemp(prefix="vecbench-"))
    try:
        if not args.skip_codec:
            _log(f"[1/9] codec level, {args.codec_rows} rows")
            try:
                res["codec"] = codec_bench.run(args.codec_rows, args.repeat, log=_log)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["codec"] = repr(e)
            gc.collect()
        if not args.skip_server:
            _log(f"[2/9] Milvus 2.3 standalone, sizes {sizes}")
            running = _other_milvus()
            if running:
                res["errors"]["standalone"] = "another Milvus server is running: " + "; ".join(running)
                _log("  skipped: " + res["errors"]["standalone"])
            else:
                try:
                    res["standalone"] = e2e.run_standalone(sizes, work, log=_log)
                except Exception as e:
                    traceback.print_exc()
                    res["errors"]["standalone"] = repr(e)
        if not args.skip_lite:
            _log(f"[3/9] Milvus Lite, {args.lite_rows} rows")
            try:
                res["lite"] = e2e.run_lite(args.lite_rows, work, log=_log)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["lite"] = repr(e)
        if not args.skip_stores:
            _log("[4/9] object stores: local folder, S3 (SeaweedFS), Azure (Azurite)")
            try:
                res["stores"] = stores_bench.run(work, large_mib=args.stores_large_mib, repeat=args.stores_repeat,
                                                 log=_log)
                res["errors"].update({f"stores.{k}": v for k, v in res["stores"]["errors"].items()})
            except Exception as e:
                traceback.print_exc()
                res["errors"]["stores"] = repr(e)
        if not args.skip_qdrant:
            _log(f"[5/9] Qdrant, qdrant-client local mode (no server), sizes {qdrant_sizes}")
            # local mode commits to sqlite once per point: on tmpfs that measures CPU, not this disk's fsyncs
            shm = Path("/dev/shm")
            scratch = Path(tempfile.mkdtemp(prefix="vecbench-qdrant-", dir=shm if shm.is_dir() else work))
            try:
                res["qdrant"] = qdrant_bench.run(qdrant_sizes, scratch, log=_log)
                res["qdrant"]["folders_on"] = "tmpfs (/dev/shm)" if scratch.parent == shm else str(work)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["qdrant"] = repr(e)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if not args.skip_incremental:
            _log(f"[6/9] incremental uploads, Milvus Lite, {args.incremental_rows} rows, "
                 f"{args.incremental_days} daily backups")
            try:
                res["incremental"] = incremental.run(work, args.incremental_rows, args.incremental_days, log=_log)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["incremental"] = repr(e)
        if not args.skip_encryption:
            _log(f"[7/9] encryption, Milvus Lite, {args.encryption_rows} rows: encrypted vs unencrypted store")
            try:
                res["encryption"] = encryption.run(work, args.encryption_rows, args.repeat, log=_log)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["encryption"] = repr(e)
        if not args.skip_edge:
            _log(f"[8/9] Qdrant Edge (in-process engine), sizes {edge_sizes}")
            shm = Path("/dev/shm")
            scratch = Path(tempfile.mkdtemp(prefix="vecbench-edge-", dir=shm if shm.is_dir() else work))
            try:
                res["edge"] = edge_bench.run(edge_sizes, scratch, log=_log)
                res["edge"]["folders_on"] = "tmpfs (/dev/shm)" if scratch.parent == shm else str(work)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["edge"] = repr(e)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if not args.skip_asof:
            _log(f"[9/9] --as-of, Milvus Lite, {args.asof_rows} rows, a versioned SeaweedFS bucket")
            try:
                res["asof"] = asof_bench.run(work, args.asof_rows, repeat=args.repeat, log=_log)
            except Exception as e:
                traceback.print_exc()
                res["errors"]["asof"] = repr(e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["total_seconds"] = time.perf_counter() - t_start
    if not args.no_keep:
        skipped = {"codec": args.skip_codec, "standalone": args.skip_server, "lite": args.skip_lite,
                   "stores": args.skip_stores, "qdrant": args.skip_qdrant, "incremental": args.skip_incremental,
                   "encryption": args.skip_encryption, "edge": args.skip_edge, "asof": args.skip_asof}
        _carry_over(res, args.out_dir / "results.json", [k for k, v in skipped.items() if v])
    previous = args.out_dir / "results.json"
    if previous.exists():  # make bench-scale's sections, never run here
        old = orjson.loads(previous.read_bytes())
        for key in ("scale", "segments", "imports"):
            if key not in res and old.get(key) is not None:
                res[key] = old[key]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.json").write_bytes(orjson.dumps(res, option=orjson.OPT_INDENT_2) + b"\n")
    (args.out_dir / "RESULTS.md").write_text(report.render(res))
    _log(f"wrote {args.out_dir / 'RESULTS.md'} and results.json in {res['total_seconds']:.0f}s")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
