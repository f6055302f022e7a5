"""The baseline exporter: read a Milvus collection with query_iterator and write JSON-per-row + gzip.

    python -m benchmarks.baseline_export URI COLLECTION OUT.json.gz --mode naive|stream

``naive``  the common ad-hoc script: collect every row in a list, ``json.dumps(rows)``, gzip that.
``stream`` the careful variant: one JSON line per row written to a gzip stream page by page.
``bare``   the client's own floor: every page read with query_iterator and discarded (nothing written; OUT is
           created empty). pymilvus materialises vectors lazily, so this does not even build them as Python lists.
``seed``   the approach vecbackup started from: ``query(offset=..., limit=...)`` page by page into one list,
           ``json.dumps``, gzip. Milvus refuses offset + limit above 16,384, so it stops there with the server's
           error (printed as ``error``).

Vectors are written as lists of floats, as pymilvus returns them. Prints one JSON line: rows, bytes, seconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("collection")
    ap.add_argument("out")
    ap.add_argument("--mode", choices=["naive", "stream", "bare", "seed"], default="naive")
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args(argv)

    from pymilvus import MilvusClient

    t0 = time.perf_counter()
    client = MilvusClient(uri=args.uri)
    if args.mode == "seed":
        rows, offset, error = [], 0, None
        while True:
            try:
                page = client.query(args.collection, filter="", output_fields=["*"], offset=offset,
                                    limit=args.batch_size, consistency_level="Strong")
            except Exception as e:  # the server's limit on offset + limit
                error = str(e)
                break
            rows.extend(page)
            offset += len(page)
            if len(page) < args.batch_size:
                break
        with gzip.open(args.out, "wt", compresslevel=6, encoding="utf-8") as f:
            f.write(json.dumps(rows))
        sys.stdout.write(json.dumps({"mode": "seed", "rows": len(rows), "bytes": os.path.getsize(args.out),
                                     "seconds": time.perf_counter() - t0, "error": error}) + "\n")
        return 0
    it = client.query_iterator(args.collection, batch_size=args.batch_size, output_fields=["*"],
                               consistency_level="Strong")
    n = 0
    if args.mode == "bare":
        while True:
            page = it.next()
            if not page:
                break
            n += len(page)
        it.close()
        open(args.out, "wb").close()
    elif args.mode == "naive":
        rows = []
        while True:
            page = it.next()
            if not page:
                break
            rows.extend(page)
        it.close()
        n = len(rows)
        text = json.dumps(rows)
        with gzip.open(args.out, "wt", compresslevel=6, encoding="utf-8") as f:
            f.write(text)
    else:
        with gzip.open(args.out, "wt", compresslevel=6, encoding="utf-8") as f:
            while True:
                page = it.next()
                if not page:
                    break
                for row in page:
                    f.write(json.dumps(row))
                    f.write("\n")
                n += len(page)
        it.close()
    client.close()
    seconds = time.perf_counter() - t0
    sys.stdout.write(json.dumps({"mode": args.mode, "rows": n, "bytes": os.path.getsize(args.out),
                                 "seconds": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
