"""What the targets share: the oracle (only the allowed error, on one line), turning bytes into text, and valid
inputs to seed from (built here, never committed as binary files).

Imported by the targets only, so the harness can instrument vecbackup (imported from here) for coverage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import orjson

from vecbackup.format.codec import PREFIX_SIZE, Chunk, Column, encode_chunk
from vecbackup.format.manifest import DataObject, Incremental, Manifest, SourceInfo
from vecbackup.format.shard import Shard, ShardRecord
from vecbackup.schema import CollectionSpec, Field, FieldType, Index

T = FieldType
R = TypeVar("R")


class Bug(AssertionError):
    """A parser broke its contract."""


def one_line(e: BaseException) -> None:
    msg = str(e)
    if not msg or "\n" in msg or "\r" in msg:
        raise Bug(f"{type(e).__name__} message is empty or not one line: {msg!r}") from e


def allow(allowed: tuple[type[BaseException], ...], fn: Callable[..., R], *args: Any, **kwargs: Any) -> R | None:
    """``fn(*args, **kwargs)``, or None when it raised one of ``allowed`` (with a one-line message); anything else
    raised is the bug the fuzzer looks for and goes up as it is."""
    try:
        return fn(*args, **kwargs)
    except allowed as e:
        one_line(e)
        return None


def text(data: bytes) -> str:
    """Any str from bytes, odd ones included: the first byte picks how the rest decodes (Latin-1, UTF-8 with lone
    surrogates for bad bytes as sys.argv has them, UTF-16 with lone surrogates, UTF-8 with replacement)."""
    if not data:
        return ""
    mode, rest = data[0] & 3, data[1:]
    if mode == 0:
        return rest.decode("latin-1")
    if mode == 1:
        return rest.decode("utf-8", "surrogateescape")
    if mode == 2:
        return rest[: len(rest) & ~1].decode("utf-16-le", "surrogatepass")
    return rest.decode("utf-8", "replace")


def as_text(s: str, mode: int = 1) -> bytes:
    """A seed for :func:`text` that decodes to ``s``."""
    try:
        if mode != 2:
            return bytes([mode]) + s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate other than \udc80-\udcff
        pass
    return b"\x02" + s.encode("utf-16-le", "surrogatepass")


# --------------------------------------------------------------------------- manifests

SHA = "ab" * 32
SHA2 = "cd" * 32


def manifest(select: bool = True) -> Manifest:
    spec = CollectionSpec(
        name="articles",
        fields=(Field("id", T.INT64, is_primary=True), Field("title", T.VARCHAR, max_length=64, nullable=True),
                Field("tags", T.ARRAY, element_type=T.VARCHAR, max_capacity=4, max_length=8,
                      inferred=("max_length",)),
                Field("v", T.FLOAT_VECTOR, dim=4), Field("sp", T.SPARSE_FLOAT_VECTOR)),
        enable_dynamic_field=True, partitions=("_default", "2024"),
        indexes=(Index("v", "HNSW", "v_idx", "COSINE", {"M": 16}), Index("sp", "SPARSE_INVERTED_INDEX", params=None)),
        properties={"collection.ttl.seconds": "86400"}, extra={"num_partitions": None},
    )
    objects = (DataObject(f"data/ab/{SHA}.vbc", "2024", 3, 1234, SHA, ((0, 2), (5, 1)) if select else None),
               DataObject(f"data/cd/{SHA2}.vbc", "_default", 7, 99, SHA2))
    return Manifest(
        backup_id="20240101T000000.000000Z-0a1b2c3d", collection=spec,
        source=SourceInfo("milvus", "v2.5.4", "milvus://h:19530"), objects=objects,
        partition_rows={"_default": 7, "2024": 3}, started_at="2024-01-01T00:00:00.000000Z",
        completed_at="2024-01-01T00:01:00.000000Z", tool_version="0.3.0", options={"batch_size": 5000},
        notes=("a note",), incremental=Incremental(None, 2, 1333, 0),
    )


def shard_record() -> ShardRecord:
    return ShardRecord("run-1", Shard(1, 4), manifest(), {("title", "max_length"): 40}, attempt="0123456789abcdef",
                       supersedes=("", "fedcba9876543210"))


# --------------------------------------------------------------------------- data chunks

CHUNK_FIELDS = [
    Field("id", T.INT64, is_primary=True), Field("b", T.BOOL, nullable=True), Field("i8", T.INT8),
    Field("f", T.FLOAT), Field("d", T.DOUBLE, nullable=True), Field("s", T.VARCHAR, nullable=True),
    Field("j", T.JSON, nullable=True), Field("a", T.ARRAY, element_type=T.INT32),
    Field("av", T.ARRAY, element_type=T.VARCHAR, nullable=True), Field("fv", T.FLOAT_VECTOR, dim=4),
    Field("hv", T.FLOAT16_VECTOR, dim=2), Field("bv", T.BINARY_VECTOR, dim=16), Field("iv", T.INT8_VECTOR, dim=3),
    Field("sp", T.SPARSE_FLOAT_VECTOR, nullable=True),
    Field("g", T.GEOMETRY, nullable=True), Field("t", T.TIMESTAMPTZ, nullable=True),
    Field("bfv", T.BFLOAT16_VECTOR, dim=2),
    Field("st", T.ARRAY, element_type=T.STRUCT, nullable=True, struct_fields=(
        Field("txt", T.VARCHAR), Field("e", T.FLOAT_VECTOR, dim=2), Field("k", T.INT16))),
]


def chunk_columns(n: int) -> dict[str, Column]:
    """``n`` rows of a column of every type of CHUNK_FIELDS (nulls in the nullable ones)."""
    valid = np.array([i % 3 != 1 for i in range(n)], dtype=bool)
    return {
        "id": Column(np.arange(n, dtype=np.int64) * 7 - 3),
        "b": Column(np.array([i % 2 == 0 for i in range(n)], dtype=bool), valid),
        "i8": Column(np.arange(n, dtype=np.int8)),
        "f": Column(np.linspace(-1, 1, n, dtype=np.float32)),
        "d": Column(np.arange(n, dtype=np.float64) / 3, valid),
        "s": Column([("é" * i if ok else None) for i, ok in enumerate(valid)], valid),
        "j": Column([({"k": [i, None, "x"]} if ok else None) for i, ok in enumerate(valid)], valid),
        "a": Column([list(range(i)) for i in range(n)]),
        "av": Column([(["x" * i, ""] if ok else None) for i, ok in enumerate(valid)], valid),
        "fv": Column(np.arange(n * 4, dtype=np.float32).reshape(n, 4)),
        "hv": Column(np.arange(n * 2, dtype=np.uint16).reshape(n, 2)),
        "bv": Column(np.arange(n * 2, dtype=np.uint8).reshape(n, 2)),
        "iv": Column(np.arange(n * 3, dtype=np.int8).reshape(n, 3)),
        "sp": Column([({1: 0.5, 9: -1.0} if ok else None) for ok in valid], valid),
        "g": Column([(f"POINT ({i} 2)" if ok else None) for i, ok in enumerate(valid)], valid),
        "t": Column(np.arange(n, dtype=np.int64) * 86_400_000_123 - 10**15, valid),
        "bfv": Column(np.arange(n * 2, dtype=np.uint16).reshape(n, 2) + 0x3F80),
        "st": Column([([{"txt": "é" * j, "e": [float(j), -0.5], "k": j - i} for j in range(i % 3)] if ok else None)
                      for i, ok in enumerate(valid)], valid),
    }


def chunk(n: int) -> bytes:
    """A valid chunk of ``n`` rows holding a column of every type (nulls in the nullable ones)."""
    return encode_chunk(CHUNK_FIELDS, Chunk("p", n, chunk_columns(n)), level=1)


def split_chunk(data: bytes) -> tuple[bytes, bytes]:
    """(header bytes, buffer area) of a chunk whose prefix is intact."""
    hlen = min(struct.unpack_from("<I", data, 8)[0], len(data) - PREFIX_SIZE)
    return data[PREFIX_SIZE : PREFIX_SIZE + hlen], data[PREFIX_SIZE + hlen :]


def with_header(header: bytes, area: bytes, version: int = 1, flags: int = 0) -> bytes:
    """A chunk around ``header`` and ``area`` with a right prefix and header CRC."""
    prefix = b"VBCK" + struct.pack("<HHI", version, flags, len(header))
    return prefix + struct.pack("<I", zlib.crc32(header, zlib.crc32(prefix))) + header + area


def fix_checksums(data: bytes) -> bytes:
    """``data`` with its header CRC, and the CRC of every buffer the header places inside the buffer area, made
    right: a forgery that passes every checksum, so the validators and decoders behind them see it."""
    if len(data) < PREFIX_SIZE or data[:4] != b"VBCK":
        return data
    header, area = split_chunk(data)
    try:
        doc = orjson.loads(header)
        for col in doc["columns"]:
            for b in col["buffers"]:
                off, size = b["offset"], b["size"]
                if isinstance(off, int) and isinstance(size, int) and 0 <= off <= off + size <= len(area):
                    b["crc32"] = zlib.crc32(area[off : off + size])
        header = orjson.dumps(doc)
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError):
        pass
    version, flags = struct.unpack_from("<HH", data, 4)
    return with_header(header, area, version, flags)


# --------------------------------------------------------------------------- config and schedule files

CONFIG = b"""heartbeat = "/tmp/hb"
metrics_textfile = "/tmp/m.prom"
[defaults]
lock_wait = 30
quiet = true
[backup]
batch_size = 2000
collection = ["a", "b"]
token_file = "/run/secrets/t"
[restore]
as = "copy"
index-params = "v:M=16"
[prune]
keep_daily = 7
keep_within = "30d"
[[jobs]]
name = "articles"
source = "milvus://db:19530"
collections = ["articles"]
store = "s3://bucket/milvus"
every = "6h"
keep_daily = 7
keep_within = "30d"
gc_min_age = "24h"
[[jobs]]
name = "q"
source = "qdrant://q:6333"
all = true
store = "file:///backups"
at = "02:15"
"""
