"""Codec level, no server: vecbackup chunks against ``json.dumps(rows)`` + gzip on the same rows."""

from __future__ import annotations

import gc
import gzip
import json
from typing import Any

import orjson

from benchmarks import data
from benchmarks.measure import timed
from vecbackup.engines.milvus import chunk_to_rows, rows_to_chunk
from vecbackup.format.codec import decode_chunk, encode_chunk

BATCH = 5000
LEVELS = (1, 3, 9)


def _line(name: str, seconds: float, n: int, vec_bytes: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "seconds": seconds, "rows_per_s": n / seconds, "vector_mb_per_s": vec_bytes / 1e6 / seconds,
            **extra}


def run(n: int = 20_000, repeat: int = 3, log: Any = print) -> dict[str, Any]:
    rows = data.make_rows(n)
    spec = data.spec()
    columns = spec.columns
    batches = [rows[i : i + BATCH] for i in range(0, n, BATCH)]
    vec_bytes = n * data.DIM * 4
    out: dict[str, Any] = {"rows": n, "batch_size": BATCH, "dim": data.DIM, "raw_vector_bytes": vec_bytes,
                           "repeat": repeat, "sizes": [], "throughput": []}
    sizes, thr = out["sizes"], out["throughput"]

    # -- rows <-> columns (part of the real pipeline on both sides of the codec)
    t, chunks = timed(lambda: [rows_to_chunk(spec, "_default", b) for b in batches], repeat, keep=True)
    thr.append(_line("rows_to_chunk (pymilvus rows -> columns)", t, n, vec_bytes, step="convert"))
    log(f"  rows_to_chunk: {t:.3f}s")

    # -- vecbackup chunks at several zstd levels
    encoded_by_level: dict[int, list[bytes]] = {}
    for level in LEVELS:
        t_enc, encoded = timed(lambda level=level: [encode_chunk(columns, c, level=level) for c in chunks], repeat,
                               keep=True)
        encoded_by_level[level] = encoded
        t_dec, _ = timed(lambda encoded=encoded: [decode_chunk(b) for b in encoded], repeat)
        size = sum(len(b) for b in encoded)
        sizes.append({"name": f"vecbackup zstd-{level}", "bytes": size})
        thr.append(_line(f"vecbackup encode_chunk zstd-{level}", t_enc, n, vec_bytes, step="encode", level=level))
        thr.append(_line(f"vecbackup decode_chunk zstd-{level}", t_dec, n, vec_bytes, step="decode", level=level))
        log(f"  zstd-{level}: {size} bytes, encode {t_enc:.3f}s, decode {t_dec:.3f}s")

    decoded = [decode_chunk(b) for b in encoded_by_level[3]]
    t, back = timed(lambda decoded=decoded: [chunk_to_rows(spec, c) for c in decoded], repeat, keep=True)
    thr.append(_line("chunk_to_rows (columns -> insert rows)", t, n, vec_bytes, step="convert"))
    log(f"  chunk_to_rows: {t:.3f}s")
    out["vecbackup_roundtrip_exact"] = [r for part in back for r in part] == rows
    del back, decoded  # keep the heap the same size for every timing below

    def vb_pipeline_encode() -> list[bytes]:
        return [encode_chunk(columns, rows_to_chunk(spec, "_default", b), level=3) for b in batches]

    def vb_pipeline_decode() -> list[dict[str, Any]]:
        return [r for b in encoded_by_level[3] for r in chunk_to_rows(spec, decode_chunk(b))]

    t, _ = timed(vb_pipeline_encode, repeat)
    thr.append(_line("vecbackup rows -> bytes (rows_to_chunk + encode, zstd-3)", t, n, vec_bytes, step="pipeline"))
    t, _ = timed(vb_pipeline_decode, repeat)
    thr.append(_line("vecbackup bytes -> rows (decode + chunk_to_rows, zstd-3)", t, n, vec_bytes, step="pipeline"))

    # -- the baseline: JSON per row, vectors as float lists, gzip level 6
    def json_encode() -> bytes:
        return gzip.compress(json.dumps(rows).encode("utf-8"), compresslevel=6)

    t_enc, blob = timed(json_encode, repeat, keep=True)
    t_dec, loaded = timed(lambda: json.loads(gzip.decompress(blob)), repeat, keep=True)
    out["json_roundtrip_exact"] = loaded == rows
    del loaded
    json_text = json.dumps(rows).encode("utf-8")
    sizes.append({"name": "JSON (json.dumps, uncompressed)", "bytes": len(json_text)})
    sizes.append({"name": "JSON + gzip-6 (baseline)", "bytes": len(blob)})
    thr.append(_line("baseline json.dumps + gzip-6", t_enc, n, vec_bytes, step="baseline"))
    thr.append(_line("baseline gunzip + json.loads", t_dec, n, vec_bytes, step="baseline"))
    log(f"  json+gzip: {len(blob)} bytes, encode {t_enc:.3f}s, decode {t_dec:.3f}s")
    t_gz, _ = timed(lambda json_text=json_text: gzip.compress(json_text, compresslevel=6), 1)
    out["baseline_gzip_share"] = t_gz / t_enc
    del json_text

    # -- a stronger baseline for fairness: orjson (Rust) instead of the json module
    def orjson_encode() -> bytes:
        return gzip.compress(orjson.dumps(rows), compresslevel=6)

    t_enc, blob2 = timed(orjson_encode, repeat, keep=True)
    t_dec, _ = timed(lambda: orjson.loads(gzip.decompress(blob2)), repeat)
    sizes.append({"name": "orjson + gzip-6", "bytes": len(blob2)})
    thr.append(_line("orjson.dumps + gzip-6 (stronger baseline)", t_enc, n, vec_bytes, step="baseline+"))
    thr.append(_line("gunzip + orjson.loads (stronger baseline)", t_dec, n, vec_bytes, step="baseline+"))
    gc.collect()

    base = len(blob)
    for s in sizes:
        s["vs_raw_vectors"] = s["bytes"] / vec_bytes
        s["baseline_over_this"] = base / s["bytes"]
    return out
