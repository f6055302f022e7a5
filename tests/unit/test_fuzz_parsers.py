"""Hostile input: property tests over every parser of stored or user-given text (the fuzz targets of fuzz/, in
hypothesis form, fast enough for every test run).

For any input, a parser returns a value or raises the one error class its contract names, with a one-line message;
it never raises anything else, never allocates by a length field it has not checked against the input, and never
turns a name or an id into a path outside the store. Inputs are random bytes and text, and mutations of valid
inputs (a real encoded chunk, a real manifest): flipped, inserted and deleted bytes, changed JSON values, with the
checksums fixed up so the forgery reaches the layers behind them. Every crasher found is kept below as an explicit
example (``@example``) or a plain test with its input inline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
import tempfile
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fuzz import fuzz_binlog, fuzz_crypto  # their own checks (Milvus binlogs; key files, settings, sealed objects)
from fuzz._common import (
    CHUNK_FIELDS,
    CONFIG,
    SHA,
    chunk_columns,
    fix_checksums,
    one_line,
    shard_record,
    split_chunk,
    with_header,
)
from fuzz._common import manifest as make_manifest
from vecbackup import config as settings_file
from vecbackup.errors import CorruptData, Unsupported, UsageError, VecbackupError
from vecbackup.format import layout
from vecbackup.format.codec import Chunk, decode_chunk, encode_chunk, read_chunk_header
from vecbackup.format.digests import DIGEST, decode_digests, encode_digests
from vecbackup.format.manifest import Manifest
from vecbackup.format.shard import (
    MAX_SHARDS,
    ClosedRun,
    Shard,
    ShardRecord,
    check_run,
    closed_key,
    parse_closed_key,
    parse_record_key,
    record_key,
)
from vecbackup.format.tombstone import Tombstone, parse_tombstone_key, tombstone_key
from vecbackup.retention import Policy, format_duration
from vecbackup.schema import FieldType
from vecbackup.stores.base import valid_key
from vecbackup.stores.local import LocalStore
from vecbackup.times import parse_duration
from vecbackup.urls import parse_milvus_url, parse_qdrant_url, parse_store_url

T = FieldType
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def only(*allowed: type[BaseException]) -> Iterator[None]:
    """The body may raise ``allowed`` (with a one-line message), nothing else."""
    try:
        yield
    except allowed as e:
        one_line(e)


# --------------------------------------------------------------------------- mutation of valid inputs

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF]
INTERESTING_U32 = [0, 1, 7, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1-4 random edits: a bit flip, an interesting byte or uint32, an insertion, a deletion, a
    duplicated run, or a splice of another seed."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "u32", "insert", "delete", "dup", "splice"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and pos < len(data):
            data[pos] = draw(st.sampled_from(INTERESTING) | st.integers(0, 255))
        elif op == "u32":
            data[pos : pos + 4] = struct.pack("<I", draw(st.sampled_from(INTERESTING_U32)))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == "dup":
            n = draw(st.integers(1, 32))
            data[pos:pos] = data[pos : pos + n]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            at = draw(st.integers(0, len(other)))
            data[pos:] = other[at:]
    return bytes(data)


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a parsed JSON document (the root excluded)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += json_paths(v, (*prefix, i))
    return out


def json_edit(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` replaced (``DELETE``: removed)."""
    doc = orjson.loads(orjson.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


DELETE = object()
text_st = st.text(max_size=8) | st.sampled_from(["", "..", ".", "/", "../../etc/passwd", "/etc/passwd", "a\\..\\b",
                                                  "\x00", "é", "\u202e", "%2E%2E", "data/ab/x.vbc"])
json_leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
             allow_infinity=False) | text_st | st.sampled_from([-1, 0, 2**31, 2**32, 2**63 - 1, 2**64 - 1, 1e300]))
json_st = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(text_st, c, max_size=3),
                       max_leaves=8)
json_value = json_st | st.just(DELETE)


# --------------------------------------------------------------------------- manifests and shard records

MANIFEST = make_manifest()
MANIFEST_JSON = MANIFEST.to_json()
MANIFEST_DOC = orjson.loads(MANIFEST_JSON)
MANIFEST_SEEDS = [MANIFEST_JSON, make_manifest(select=False).to_json(), orjson.dumps(MANIFEST_DOC)]
RECORD = shard_record()
RECORD_JSON = RECORD.to_json()
RECORD_DOC = orjson.loads(RECORD_JSON)


def check_manifest(data: bytes) -> None:
    """Manifest.from_json: CorruptData or Unsupported, or a manifest whose every object key is a data key and that
    writes back to a manifest it reads again."""
    try:
        m = Manifest.from_json(data, where="manifest")
    except (CorruptData, Unsupported) as e:
        one_line(e)
        return
    for o in m.objects:
        assert isinstance(o.key, str) and layout.parse_data_key(o.key) == o.key[-68:-4], o.key
        assert valid_key(o.key)
    again = Manifest.from_json(m.to_json())
    assert [o.key for o in again.objects] == [o.key for o in m.objects]


def check_record(data: bytes) -> None:
    """ShardRecord, and the other small JSON objects of a store (ClosedRun, Tombstone): CorruptData or Unsupported,
    or an object that writes back to JSON it reads again."""
    for parse in (ClosedRun.from_json, Tombstone.from_json):
        try:
            small = parse(data, where="x")
        except (CorruptData, Unsupported) as e:
            one_line(e)
        else:
            assert parse(small.to_json(), where="again") == small
    try:
        r = ShardRecord.from_json(data, where="shard record")
    except (CorruptData, Unsupported) as e:
        one_line(e)
        return
    assert 0 <= r.shard.index < r.shard.count <= MAX_SHARDS
    for o in r.manifest.objects:
        assert layout.parse_data_key(o.key) is not None, o.key
    assert ShardRecord.from_json(r.to_json(), where="again") == r


@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xff\xfe")
@example(b"[" * 5000)
@example(b'{"format": "vecbackup", "format_version": 1e400}')
def test_manifest_random_bytes(data: bytes) -> None:
    check_manifest(data)
    check_record(data)


@FUZZ
@given(json_st)
def test_manifest_any_json_value(value: Any) -> None:
    check_manifest(orjson.dumps(value))
    check_manifest(orjson.dumps({"format": "vecbackup", "format_version": 1, "x": value}))


@FUZZ
@given(path=st.sampled_from(json_paths(MANIFEST_DOC)), value=json_value)
def test_manifest_with_one_value_changed(path: tuple[Any, ...], value: Any) -> None:
    check_manifest(orjson.dumps(json_edit(MANIFEST_DOC, path, value)))


@FUZZ
@given(mutated(MANIFEST_SEEDS))
def test_manifest_with_bytes_mutated(data: bytes) -> None:
    check_manifest(data)


@FEW
@given(path=st.sampled_from(json_paths(RECORD_DOC)), value=json_value)
def test_shard_record_with_one_value_changed(path: tuple[Any, ...], value: Any) -> None:
    check_record(orjson.dumps(json_edit(RECORD_DOC, path, value)))


@FEW
@given(mutated([RECORD_JSON]))
def test_shard_record_with_bytes_mutated(data: bytes) -> None:
    check_record(data)


_ID, _AT = "20240101T000000.000000Z-0a1b2c3d", "2026-12-06T00:00:00.000000Z"
SMALL_DOCS = [orjson.loads(Tombstone("docs", _ID, _AT, "prune", "run-1").to_json()),
              orjson.loads(ClosedRun("docs", "run-1", _ID, _AT).to_json())]


@FEW
@given(doc=st.sampled_from(SMALL_DOCS), data=st.data())
def test_tombstone_and_closed_run_with_one_value_changed(doc: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(json_paths(doc)))
    check_record(orjson.dumps(json_edit(doc, path, data.draw(json_value))))


@pytest.mark.parametrize("key", [
    "../../etc/passwd", "/etc/passwd", "data/ab/../../../x", f"data/ab/{SHA}.vbc/..", "data\\ab\\x.vbc",
    f"data/ab/{SHA}.vbc\x00", f"data/cd/{SHA}.vbc", f"data/ab/{SHA.upper()}.vbc", "manifests/x/y.json", "", 5, None,
    ["data"], f"digests/ab/{SHA}.vbd",
])
def test_crasher_manifest_object_key_outside_data_is_corrupt(key: Any) -> None:
    """Found by test_manifest_with_one_value_changed: a manifest naming an object by any key was accepted, and the
    key went straight to the store (the local store raised ValueError, a traceback, on '../..')."""
    doc = json_edit(MANIFEST_DOC, ("objects", 0, "key"), key)
    with pytest.raises(CorruptData, match="data object key"):
        Manifest.from_json(orjson.dumps(doc))
    with pytest.raises(CorruptData):
        ShardRecord.from_json(orjson.dumps(json_edit(RECORD_DOC, ("manifest", "objects", 0, "key"), key)),
                              where="shard record")


@pytest.mark.parametrize(("path", "value"), [
    (("objects", 0, "select"), "18446744073709551615+1,1+1"), (("objects", 1, "rows"), 2**64 - 1),
    (("objects", 1, "size"), -1), (("objects", 1, "rows"), 1e300), (("stats", "partition_rows", "2024"), 2**63),
    (("incremental", "new_bytes"), -5), (("objects", 0, "sha256"), "../../x"), (("objects", 0, "sha256"), 5),
    (("objects", 0, "sha256"), SHA.upper()),
])
def test_crasher_manifest_value_that_cannot_be_written_back(path: tuple[Any, ...], value: Any) -> None:
    """Found by test_manifest_with_one_value_changed: a select start of 1.8e19 became an int beyond 64 bits, so the
    manifest read but to_json() (show --json, a reusing backup, commit) raised TypeError; and a sha256 that is not
    64 hex digits read, then layout.digests_key() raised ValueError when a backup looked for its row digests."""
    with pytest.raises(CorruptData):
        Manifest.from_json(orjson.dumps(json_edit(MANIFEST_DOC, path, value)))


@pytest.mark.parametrize("path", [("options",), ("collection", "properties"), ("collection", "extra"),
                                  ("collection", "fields", 0, "extra"), ("collection", "indexes", 0, "params")])
@pytest.mark.parametrize("pairs", [[[1, 2]], [[None, 1]], [[1.5, "x"], ["ok", 1]]])
def test_crasher_manifest_mapping_given_as_pairs_with_a_key_that_is_not_text(path: tuple[Any, ...],
                                                                               pairs: list[list[Any]]) -> None:
    """Found by fuzz/fuzz_manifest.py (its value-editing mode): dict() takes a list of pairs, so "options": [[1, 2]]
    read as {1: 2}, and to_json() (show --json, commit) raised TypeError: orjson refuses a key that is not a
    string. Pairs with string keys still read, as they always did."""
    with pytest.raises(CorruptData, match="not a JSON object"):
        Manifest.from_json(orjson.dumps(json_edit(MANIFEST_DOC, path, pairs)))
    assert Manifest.from_json(orjson.dumps(json_edit(MANIFEST_DOC, path, [["k", 1]]))).to_json()


@pytest.mark.parametrize("size", [2**64 - 1, 1e30, -1])
def test_crasher_shard_record_measured_size_beyond_64_bits(size: Any) -> None:
    """Found by test_shard_record_with_one_value_changed: commit turns the measured size into a field's max_length,
    which the committed manifest could not then hold."""
    with pytest.raises(CorruptData):
        ShardRecord.from_json(orjson.dumps(json_edit(RECORD_DOC, ("measured", 0, 2), size)), where="shard record")


@pytest.mark.parametrize("version", ["e\n\n\ufffd", "2\r\nx", ["\n"]])
def test_crasher_manifest_format_version_message_on_several_lines(version: Any) -> None:
    """Found by fuzz/fuzz_manifest.py: a format_version string holding a newline went into the Unsupported message
    as it was (the CLI prints one line per error)."""
    with pytest.raises(Unsupported) as e:
        Manifest.from_json(orjson.dumps(json_edit(MANIFEST_DOC, ("format_version",), version)))
    one_line(e.value)


def test_manifest_round_trips() -> None:
    assert Manifest.from_json(MANIFEST_JSON) == MANIFEST
    assert ShardRecord.from_json(RECORD_JSON, where="r") == RECORD


# --------------------------------------------------------------------------- data chunks

CHUNKS = [encode_chunk(CHUNK_FIELDS, Chunk("p", n, chunk_columns(n)), level=1) for n in (0, 1, 4)]
SMALL_CHUNK = encode_chunk(CHUNK_FIELDS[:2], Chunk("", 2, {k: v for k, v in chunk_columns(2).items()
                                                             if k in ("id", "b")}))
CHUNK_SEEDS = [*CHUNKS, SMALL_CHUNK]


def edit_header(data: bytes, path: tuple[Any, ...], value: Any) -> bytes:
    header, area = split_chunk(data)
    return with_header(orjson.dumps(json_edit(orjson.loads(header), path, value)), area)


def frames_of(data: bytes) -> list[tuple[tuple[int, int], dict[str, Any]]]:
    header, _ = split_chunk(data)
    doc = orjson.loads(header)
    return [((i, j), b) for i, c in enumerate(doc["columns"]) for j, b in enumerate(c["buffers"])]


def replace_frame(data: bytes, at: tuple[int, int], frame: bytes, raw_size: int) -> bytes:
    """The chunk with buffer ``at`` (column, buffer) stored as ``frame``, its header entry and the offsets of the
    buffers after it updated, every checksum right."""
    header, area = split_chunk(data)
    doc = orjson.loads(header)
    parts, offset = [], 0
    for i, col in enumerate(doc["columns"]):
        for j, b in enumerate(col["buffers"]):
            stored = frame if (i, j) == at else area[b["offset"] : b["offset"] + b["size"]]
            if (i, j) == at:
                b["raw_size"] = raw_size
            b["offset"], b["size"], b["crc32"] = offset, len(stored), zlib.crc32(stored)
            offset += len(stored)
            parts.append(stored)
    return with_header(orjson.dumps(doc), b"".join(parts))


def check_chunk(data: bytes) -> None:
    """decode_chunk / read_chunk_header: CorruptData or Unsupported, or a chunk that matches its header."""
    try:
        header = read_chunk_header(data)
    except (CorruptData, Unsupported) as e:
        one_line(e)
        header = None
    try:
        chunk = decode_chunk(data)
    except (CorruptData, Unsupported) as e:
        one_line(e)
        return
    assert header is not None and chunk.num_rows == header["rows"]
    for col in chunk.columns.values():
        assert len(col.values) == chunk.num_rows
        if isinstance(col.values, np.ndarray):
            assert not col.values.flags.writeable


@FUZZ
@given(st.binary(max_size=200))
@example(b"VBCK")
@example(b"VBCK\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00")
def test_chunk_random_bytes(data: bytes) -> None:
    check_chunk(data)
    check_chunk(with_header(data, b""))
    check_chunk(fix_checksums(b"VBCK\x01\x00\x00\x00" + data))


@FUZZ
@given(data=mutated(CHUNK_SEEDS), fix=st.booleans())
def test_chunk_with_bytes_mutated(data: bytes, fix: bool) -> None:
    check_chunk(fix_checksums(data) if fix else data)


HEADER_PATHS = [(c, p) for c in CHUNK_SEEDS for p in json_paths(orjson.loads(split_chunk(c)[0]))]
BIG_INTS = st.sampled_from([-1, 0, 1, 8, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**62, 2**63 - 1, 2**64 - 8,
                            2**64 - 1])


@FUZZ
@given(where=st.sampled_from(HEADER_PATHS), value=json_value | BIG_INTS)
@example(where=(CHUNKS[0], ("columns", 9, "dim")), value=2**63 - 1)
@example(where=(CHUNKS[0], ("columns", 11, "dim")), value=2**64 - 8)
@example(where=(CHUNKS[0], ("columns", 12, "dim")), value=2**64 - 1)
def test_chunk_with_one_header_value_changed(where: tuple[bytes, tuple[Any, ...]], value: Any) -> None:
    chunk, path = where
    check_chunk(fix_checksums(edit_header(chunk, path, value)))


@FEW
@given(where=st.sampled_from([(c, at) for c in CHUNK_SEEDS for at, _ in frames_of(c)]),
       raw=st.binary(max_size=64) | st.sampled_from([b"\x00" * 64, b"\xff" * 64, struct.pack("<I", 0xFFFFFFFF) * 4]),
       declared=st.sampled_from([None, 0, 1, 2**20]), content_size=st.booleans(), garbage=st.booleans())
def test_chunk_with_a_forged_frame(where: tuple[bytes, tuple[int, int]], raw: bytes, declared: int | None,
                                   content_size: bool, garbage: bool) -> None:
    """Each buffer in turn replaced by another well-formed zstd frame (or garbage) with right checksums: lengths
    that overrun their data, bad UTF-8 and JSON, booleans other than 0/1, unsorted sparse indices..."""
    chunk, at = where
    frame = raw if garbage else zstandard.ZstdCompressor(level=1, write_content_size=content_size).compress(raw)
    check_chunk(replace_frame(chunk, at, frame, len(raw) if declared is None else declared))


@contextlib.contextmanager
def peak_memory(limit: int) -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= limit, f"peak {peak} bytes > {limit}"


@FEW
@given(where=st.sampled_from([w for w in HEADER_PATHS if isinstance(w[1][-1], str)
                              and w[1][-1] in ("rows", "dim", "raw_size", "size", "offset")]), value=BIG_INTS)
def test_chunk_length_fields_never_size_an_allocation(where: tuple[bytes, tuple[Any, ...]], value: int) -> None:
    """A length field set to anything up to 2**64 - 1: a few MiB at most for a chunk of a few KiB, whatever it
    claims (only the zstd ratio bound lets a small frame grow, and these frames are small)."""
    chunk, path = where
    forged = fix_checksums(edit_header(chunk, path, value))
    with peak_memory(4 << 20):
        check_chunk(forged)


@pytest.mark.parametrize(("column", "dim"), [(9, 2**63 - 1), (11, 2**64 - 8), (12, 2**64 - 1), (10, 2**33)])
def test_crasher_zero_row_vector_column_with_a_huge_dim_is_corrupt(column: int, dim: int) -> None:
    """Found by test_chunk_with_one_header_value_changed: a 0-row chunk whose vector column declares dim 2**63 - 1
    passed every check (0 rows need 0 bytes) and numpy's reshape(0, dim) raised ValueError."""
    forged = edit_header(CHUNKS[0], ("columns", column, "dim"), dim)
    with pytest.raises(CorruptData, match="dim"):
        decode_chunk(forged)
    with pytest.raises(CorruptData, match="dim"):
        read_chunk_header(forged)


@pytest.mark.parametrize("dim", [2**31, 2**63 - 1, 0, -1, "4", None])
def test_a_struct_field_dim_out_of_range_is_corrupt_before_any_allocation(dim: Any) -> None:
    """The struct fields of an ARRAY of STRUCT column (the last of CHUNK_FIELDS) carry their own dim, bounded as a
    column's is."""
    st_col = len(CHUNK_FIELDS) - 1
    for data in (CHUNKS[0], CHUNKS[2]):
        forged = edit_header(data, ("columns", st_col, "struct_fields", 1, "dim"), dim)
        with pytest.raises(CorruptData, match="dim"):
            read_chunk_header(forged)


def test_new_column_types_are_in_the_seeds() -> None:
    """GEOMETRY, TIMESTAMPTZ, the 16-bit and int8 vectors and an ARRAY of STRUCT are among what the chunk fuzzers
    start from (fuzz/_common.py), so their validators and decoders get fuzzed."""
    columns = orjson.loads(split_chunk(CHUNKS[2])[0])["columns"]
    kinds = {(c["type"], c.get("element_type")) for c in columns}
    assert {("GEOMETRY", None), ("TIMESTAMPTZ", None), ("FLOAT16_VECTOR", None), ("BFLOAT16_VECTOR", None),
            ("INT8_VECTOR", None), ("ARRAY", "STRUCT")} <= kinds
    assert any(b["kind"] == "validity" for c in columns if c["type"] in ("GEOMETRY", "TIMESTAMPTZ")
               for b in c["buffers"])


def test_chunk_seeds_decode() -> None:
    for data in CHUNK_SEEDS:
        assert decode_chunk(fix_checksums(data)).num_rows == decode_chunk(data).num_rows


# --------------------------------------------------------------------------- row digests

DIGEST_SEEDS = [encode_digests(np.frombuffer(bytes(range(16)) * n, dtype=DIGEST)) for n in (0, 1, 3)]


def fix_digest_crc(data: bytes) -> bytes:
    if len(data) < 16:
        return data
    return data[:12] + struct.pack("<I", zlib.crc32(data[16:], zlib.crc32(data[:12]))) + data[16:]


def check_digests(data: bytes) -> None:
    try:
        out = decode_digests(data)
    except CorruptData as e:
        one_line(e)
        return
    assert out.dtype == DIGEST and len(out) == struct.unpack_from("<I", data, 8)[0]


@FUZZ
@given(data=st.binary(max_size=80) | mutated(DIGEST_SEEDS), fix=st.booleans())
@example(data=b"VBRD\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00", fix=True)
def test_digests(data: bytes, fix: bool) -> None:
    check_digests(fix_digest_crc(data) if fix else data)


# --------------------------------------------------------------------------- encrypted stores

CRYPTO_SEEDS = fuzz_crypto.seeds()
KEY_DOC = orjson.loads(CRYPTO_SEEDS[0][1:])


@FUZZ
@given(st.binary(max_size=300) | mutated(CRYPTO_SEEDS))
@example(b"\0" + orjson.dumps({**KEY_DOC, "kdf": {**KEY_DOC["kdf"], "n": 2**40}}))
@example(b"\2VBE1")
def test_crypto_inputs(data: bytes) -> None:
    fuzz_crypto.one_input(data)


@FEW
@given(path=st.sampled_from(json_paths(KEY_DOC)), value=json_value)
def test_key_file_with_one_value_changed(path: tuple[Any, ...], value: Any) -> None:
    fuzz_crypto.one_input(b"\0" + orjson.dumps(json_edit(KEY_DOC, path, value)))


# --------------------------------------------------------------------------- store keys and names

ODD_NAMES = ["..", ".", "...", "/", "//", "\\", "a/../../x", "/etc/passwd", "../../etc/passwd", "a\\..\\b", "\x00",
             "a\x00b", "%2E%2E", "%2e%2e", "%2F", "%", "%%41", "%zz", "%C3%A9", "é", "日本語", "\u202e", "\ufeff",
             "\u200b", "🦀", "a b", "a\nb", "CON", "~", "x" * 300, "．．", "\u2025", "\uff0f", "\ufffd",
             "\U0010ffff"]
name_st = st.sampled_from(ODD_NAMES) | st.text(min_size=1, max_size=12) | st.lists(
    st.sampled_from(ODD_NAMES), min_size=1, max_size=4).map("".join)
ID = "20240101T000000.000000Z-0a1b2c3d"


def encodable(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


@FUZZ
@given(name_st)
@example("\udcff")  # what sys.argv holds for an argument that is not UTF-8
@example("\ud800")
def test_any_collection_name_is_one_segment_under_manifests(name: str) -> None:
    if not encodable(name):
        # Found by this test: escape_name raised UnicodeEncodeError for a lone surrogate
        with pytest.raises(UsageError, match="not valid Unicode"):
            layout.manifest_key(name, ID)
        return
    segment = layout.escape_name(name)
    assert segment and segment not in (".", "..") and set(segment) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-%")
    key = layout.manifest_key(name, ID)
    assert valid_key(key) and key.split("/") == ["manifests", segment, f"{ID}.json"]
    assert Path("/store", key).parts[2:] == ("manifests", segment, f"{ID}.json")  # no folder normalises it away
    assert layout.parse_manifest_key(key) == (name, ID)
    assert layout.manifests_prefix(name) == f"manifests/{segment}/"
    rkey = record_key(name, "run1", Shard(2, 3), "0123456789abcdef")
    assert valid_key(rkey) and parse_record_key(rkey) == (name, "run1", Shard(2, 3), "0123456789abcdef")


key_st = (st.text(max_size=40) | st.lists(st.sampled_from(["manifests", "data", "digests", "shards", "ab", SHA, ID,
          f"{SHA}.vbc", f"{SHA}.vbd", f"{ID}.json", "0001-of-0004.json", "0001-of-0004.0123456789abcdef.json",
          "closed.json", "tombstones", "run1", *ODD_NAMES]), max_size=5).map(
          "/".join))


@FUZZ
@given(key_st)
@example(f"manifests/%2E%2E/{ID}.json")
@example(f"manifests/\udcff/{ID}.json")
@example("shards/a/r/١٢٣٤-of-٩٩٩٩.json")
def test_parsing_any_key(key: str) -> None:
    """The key parsers return None or what the key names; nothing they return leads outside its prefix."""
    parsed = layout.parse_manifest_key(key)
    if parsed is not None:
        coll, backup_id = parsed
        assert layout.is_backup_id(backup_id) and key.startswith("manifests/")
        if encodable(coll):
            assert layout.parse_manifest_key(layout.manifest_key(coll, backup_id)) == parsed
    for parse, build in ((layout.parse_data_key, layout.data_key), (layout.parse_digests_key, layout.digests_key)):
        sha = parse(key)
        assert sha is None or build(sha) == key
    tomb = parse_tombstone_key(key)
    if tomb is not None and encodable(tomb[0]):
        assert layout.is_backup_id(tomb[1]) and tombstone_key(*tomb) == key
    closed = parse_closed_key(key)
    if closed is not None and encodable(closed[0]):
        assert check_run(closed[1]) == closed[1] and closed_key(*closed) == key
    record = parse_record_key(key)
    if record is not None:
        coll, run, shard, attempt = record
        assert check_run(run) == run and 0 <= shard.index < shard.count <= MAX_SHARDS
        if encodable(coll):
            assert parse_record_key(record_key(coll, run, shard, attempt)) == record


@FUZZ
@given(st.text(max_size=40) | st.sampled_from(["1/2", " 3 / 4 ", "0/0", "4/4", "-1/2", "1/1025", "١/٢", "1" * 5000 +
                                                "/2", "2/" + "9" * 5000]))
@example("1" * 5000 + "/2")  # Found by this test: int() of more than 4300 digits raised ValueError
def test_shard_option(text: str) -> None:
    with only(UsageError):
        s = Shard.parse(text)
        assert 0 <= s.index < s.count <= MAX_SHARDS


@FUZZ
@given(st.text(max_size=140) | st.sampled_from(["..", ".", "a/b", "a\x00", "-x", "a" * 129, "a..", "a\n"]))
def test_run_id(text: str) -> None:
    with only(UsageError):
        assert check_run(text) == text
        assert "/" not in text and text not in (".", "..") and valid_key(f"shards/c/{text}/0000-of-0001.json")


# --------------------------------------------------------------------------- the local store: no path outside

class Escaped(AssertionError):
    """The store touched a path outside its root."""


class Sandbox:
    """A store folder beside a folder it must never touch. While ``watch()`` is on, an audit hook (and os.stat)
    check every path the process opens, creates, renames, removes or lists: inside the store root, or Escaped."""

    WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def __init__(self) -> None:
        self.base = Path(os.path.realpath(tempfile.mkdtemp(prefix="vecbackup-fuzz-")))
        self.root = self.base / "store"
        self.root.mkdir()
        (self.base / "outside").mkdir()
        (self.base / "outside" / "victim").write_bytes(b"do not touch")
        self.store = LocalStore(self.root)

    def outside(self) -> list[str]:
        """Every path under the sandbox but outside the store, as it is now."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.base):
            if Path(dirpath) == self.base:
                dirnames.remove(self.root.name)
            out += [os.path.join(dirpath, n) for n in dirnames + filenames]
        return sorted(out)

    def _check(self, event: str, path: Any, *, strict: bool) -> None:
        if isinstance(path, int) or path is None:
            return
        p = os.path.normpath(os.path.join(os.getcwd(), os.fsdecode(path)))
        root = str(self.root)
        if not (p.startswith(root + os.sep) or (p == root and not strict)):
            raise Escaped(f"{event} {p!r} is outside the store {root!r}")

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & self.WRITES)
            self._check(event, path, strict=writes)
        elif event in ("os.rename", "os.link", "os.symlink"):
            self._check(event, args[0], strict=True)
            self._check(event, args[1], strict=True)
        elif event in ("os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.utime"):
            self._check(event, args[0], strict=True)
        elif event in ("os.mkdir", "os.scandir", "os.listdir"):
            self._check(event, args[0], strict=False)

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        real_stat, real_lstat = os.stat, os.lstat

        def stat(path: Any, *a: Any, **kw: Any) -> os.stat_result:
            self._check("stat", path, strict=False)
            return real_stat(path, *a, **kw)

        def lstat(path: Any, *a: Any, **kw: Any) -> os.stat_result:
            self._check("lstat", path, strict=False)
            return real_lstat(path, *a, **kw)

        os.stat, os.lstat = stat, lstat
        _WATCHED.append(self)
        try:
            yield
        finally:
            _WATCHED.clear()
            os.stat, os.lstat = real_stat, real_lstat


_WATCHED: list[Sandbox] = []  # the sandbox whose watch() is on, if any


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _WATCHED:
        _WATCHED[0].audit(event, args)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sys.addaudithook(_audit)  # (once: the module's tests share this fixture; a hook stays, idle, to the end)
    sb = Sandbox()
    yield sb
    shutil.rmtree(sb.base, ignore_errors=True)


def store_op(sb: Sandbox, op: str, key: str, data: bytes = b"x") -> None:
    """One store call on ``key``: done, or a clean error (a VecbackupError, or the ValueError of an invalid key)."""
    before = sb.outside()
    try:
        with sb.watch():
            if op == "put":
                sb.store.put(key, data)
                assert sb.store.get(key) == data
            elif op == "put_if_absent":
                sb.store.put(key, data, if_absent=True)
            elif op == "get":
                sb.store.get(key)
            elif op == "stat":
                sb.store.stat(key)
            elif op == "delete":
                sb.store.delete(key)
            else:
                for info in sb.store.list(key):
                    assert valid_key(info.key) and info.key.startswith(key)
    except VecbackupError:
        pass
    except ValueError as e:
        assert str(e).startswith("invalid store key"), repr(e)
    assert sb.outside() == before


STORE_KEYS = ["../x", "a/../../x", "/etc/passwd", "a\\..\\b", "a\x00b", "..", "../outside/victim", "x" * 300,
              "x" * 300 + "/y",
              "a/" * 200 + "b", ".", "./.", ".//", "./", "a/.", "\ud800", "\udcff", "outside", "store.tmp-x", "~"]
store_key_st = st.sampled_from(STORE_KEYS) | st.text(max_size=20) | st.lists(
    st.sampled_from(["..", ".", "", "a", "outside", "victim", "\\", "\x00", "é", "\ud800", "%2E%2E"]),
    min_size=1, max_size=4).map("/".join)
OPS = ["put", "put_if_absent", "get", "stat", "delete", "list"]


@FEW
@given(op=st.sampled_from(OPS), key=store_key_st)
def test_local_store_keeps_every_key_inside_its_folder(sandbox: Sandbox, op: str, key: str) -> None:
    store_op(sandbox, op, key)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("key", STORE_KEYS)
def test_local_store_hostile_keys(sandbox: Sandbox, op: str, key: str) -> None:
    """Found by test_local_store_keeps_every_key_inside_its_folder and fuzz/fuzz_local_store.py: "." (and "./.",
    ".//") named the store folder itself, so put() wrote its temporary file beside the folder and tried to rename it
    over the folder, and delete() unlinked the folder's own path (a symlinked store lost its link); a key holding a
    lone surrogate ("\\ud800") raised UnicodeEncodeError from open(); a name longer than the file system takes
    (an escaped collection name of 100 emoji is 1200 characters) raised OSError from put(), whose cleanup called
    exists() on the too-long temporary name, and from list(), whose is_dir() does not swallow ENAMETOOLONG."""
    store_op(sandbox, op, key)


def test_the_sandbox_catches_an_escape(sandbox: Sandbox) -> None:
    with pytest.raises(Escaped), sandbox.watch():
        open(sandbox.base / "outside" / "victim", "rb").close()


# --------------------------------------------------------------------------- URLs

SECRET = "Zq9SeCrEt"
url_part = st.sampled_from(["", "/", "//", "@", ":", "[", "]", "[::1]", "%", "%40", "%2F", "?", "#", "&", "=",
                            "columnar=off", "columnar=x", "db=d", "timeout=1", "timeout=nan", "rest_port=0",
                            "rest_port=99999", "concurrency=8", "concurrency=²", "concurrency=١٢", "region=x",
                            "secret=1", "host", "h:19530", "h:x", "h:99999", "h:-1", "ﬀ", "\u2100", "..", "\x00",
                            "é", " ", "\n", "a" * 5000, "1" * 5000]) | st.text(max_size=6)
SCHEMES = ["milvus", "MILVUS", "milvus+http", "milvus+https", "milvuss", "milvus-lite", "qdrant", "qdrant+http",
           "qdrant+https", "qdrant+grpc", "qdrant+grpcs", "qdrant-local", "file", "s3", "azure", "http", ""]
url_st = st.text(max_size=40) | st.builds(lambda s, sep, parts: s + sep + "".join(parts), st.sampled_from(SCHEMES),
                                          st.sampled_from(["://", ":", ":///", "//"]), st.lists(url_part, max_size=6))


def parse_every_url(url: str) -> list[Any]:
    out: list[Any] = []
    for parse in (lambda u: parse_milvus_url(u, environ={}), lambda u: parse_qdrant_url(u, environ={}),
                  parse_store_url):
        try:
            out.append(parse(url))
        except UsageError as e:
            one_line(e)
            out.append(e)
    return out


@FUZZ
@given(url_st)
@example("s3://bucket/p?concurrency=²")
@example("azure://c/p?concurrency=" + "1" * 5000)
@example("s3://bucket/p?concurrency=١٢")
def test_any_url(url: str) -> None:
    for result in parse_every_url(url):
        if not isinstance(result, UsageError):
            assert "\n" not in result.display or "\n" in url


@pytest.mark.parametrize("value", ["²", "1" * 5000, "0" * 4999 + "8", "٨", "８"])
def test_crasher_store_url_concurrency_that_int_refuses(value: str) -> None:
    """Found by test_any_url: ``"²".isdigit()`` is true but int("²") raises ValueError, as does int() of more than
    4300 digits; and int("٨") is 8, which the stores' own int() would then take."""
    with pytest.raises(UsageError, match="concurrency"):
        parse_store_url(f"s3://bucket/prefix?concurrency={value}")
    assert parse_store_url("s3://bucket/prefix?concurrency=08").options["concurrency"] == "08"


NETWORK_SCHEMES = ["milvus", "milvus+https", "milvuss", "qdrant", "qdrant+grpc", "s3", "azure"]


@FUZZ
@given(scheme=st.sampled_from(NETWORK_SCHEMES), user=st.sampled_from(["", "u", "root"]),
       rest=st.lists(url_part, max_size=5).map("".join))
@example(scheme="milvus", user="", rest="℀")
@example(scheme="s3", user="u", rest="h\uff03")
def test_a_password_in_a_url_never_reaches_a_message_or_display(scheme: str, user: str, rest: str) -> None:
    url = f"{scheme}://{user}:{SECRET}@{rest}"
    for result in parse_every_url(url):
        shown = str(result) if isinstance(result, UsageError) else f"{result.display} {result!r}"
        assert SECRET not in shown, shown
        if not isinstance(result, UsageError) and hasattr(result, "uri"):
            assert SECRET not in result.uri


@pytest.mark.parametrize("scheme", ["milvus", "qdrant", "s3", "azure"])
def test_crasher_a_password_in_urlsplits_own_error(scheme: str) -> None:
    """Found by test_a_password_in_a_url_never_reaches_a_message_or_display: urlsplit refuses a host that NFKC
    normalisation changes (℀ becomes a/c) with a message quoting the whole netloc, password included, and the
    parsers put that message in theirs."""
    url = f"{scheme}://user:{SECRET}@\u2100/x"
    for result in parse_every_url(url):
        assert isinstance(result, UsageError) and SECRET not in str(result), result


# --------------------------------------------------------------------------- config and schedule files

_COMMANDS: list[Any] = []


def commands() -> Any:
    if not _COMMANDS:
        import typer.main

        from vecbackup.cli import app

        _COMMANDS.append(settings_file.command_options(typer.main.get_command(app)))
    return _COMMANDS[0]


CONFIG_SEEDS = [CONFIG, b"[defaults]\nlock_wait = 1\n", b'[[jobs]]\nname = "x"\nevery = "1h"\n']


def check_config(data: bytes) -> None:
    """The config file and the schedule file, from the bytes of the file: UsageError or a value."""
    from vecbackup.scheduler import parse_schedule

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "vecbackup.toml"
        path.write_bytes(data)
        with only(UsageError):
            settings_file.build_default_map(path, commands(), {})
        try:
            doc = settings_file.load_toml(path)
        except UsageError as e:
            one_line(e)
            return
    with only(UsageError):
        for job in parse_schedule(doc, ignore=frozenset({"defaults", *commands()})).jobs:
            assert job.interval >= 1
            assert datetime.now(UTC) + timedelta(seconds=job.interval) > datetime.now(UTC)  # what the loop adds
            if job.policy is not None:
                job.policy.describe()


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    return repr(v)


config_key = st.sampled_from(["lock_wait", "batch_size", "quiet", "collection", "token", "token_file", "all",
                              "password", "api-key", "every", "at", "keep_within", "keep_daily", "gc_min_age",
                              "name", "source", "store", "collections", "nope", "as", "index-params"])
config_value = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "6h", "0s", "1" * 400, "99999999999w", "25:61", "02:15", "milvus://u:pw@h", "qdrant://h",
                     "s3://b/p", "x" * 300, "\x00", "é"]) | st.text(max_size=8),
    st.lists(st.sampled_from(["a", "", 1, True]), max_size=3),
)


@st.composite
def toml_docs(draw: st.DrawFn) -> bytes:
    lines = []
    for key, value in draw(st.dictionaries(st.sampled_from(["heartbeat", "metrics_textfile", "x"]), config_value,
                                           max_size=2)).items():
        lines.append(f"{key} = {toml_value(value)}")
    for table in draw(st.lists(st.sampled_from(["defaults", "backup", "restore", "prune", "nope", "[jobs]",
                                                '"a\\nb"', '"x\\u2028y"', '"\\t"']), max_size=3)):
        lines.append(f"[{table}]")
        for key, value in draw(st.dictionaries(config_key, config_value, max_size=6)).items():
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines).encode()


def test_crasher_config_unknown_table_whose_name_holds_a_newline() -> None:
    """Found by reading what fuzz/fuzz_config.py checks: a quoted TOML table name may hold any character, and
    "unknown table [a<newline>b]" printed on two lines."""
    check_config(b'["a\\nb"]\nx = 1\n')
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.toml").write_bytes(b'["a\\nb"]\nx = 1\n')
        with pytest.raises(UsageError, match=r"unknown table \['a\\nb'\]"):
            settings_file.build_default_map(Path(d) / "c.toml", commands(), {})


@FEW
@given(toml_docs() | mutated(CONFIG_SEEDS) | st.binary(max_size=40))
@example(b"\xff")  # Found by this test: tomllib decodes the file itself and raised UnicodeDecodeError
@example(b"a = " + b"[" * 3000 + b"]" * 3000)  # ... and RecursionError
@example(b'[[jobs]]\nname = "a"\nsource = "milvus://h"\nstore = "/s"\nall = true\nevery = "' + b"1" * 400 + b'"\n')
@example(b'[[jobs]]\nname = "a"\nsource = "milvus://h"\nstore = "/s"\nall = true\nevery = "99999999999w"\n')
def test_any_config_file(data: bytes) -> None:
    check_config(data)


# --------------------------------------------------------------------------- durations

duration_st = st.text(max_size=12) | st.builds(
    lambda n, sp, u: n + sp + u, st.sampled_from(["0", "1", "1.5", "007", "1" * 400, "9" * 20, "١٢", "1e3", ".5",
                                                  "99999999999", "4.3e9", "1" * 5000]),
    st.sampled_from(["", " ", "\t", "\u3000"]), st.sampled_from(["", "s", "m", "h", "d", "w", "S", "W", "y", "ms"]))


@FUZZ
@given(duration_st)
@example("1" * 400)  # float('1' * 400) is inf: timedelta(seconds=inf) raised OverflowError
@example("99999999999w")  # finite, but past what timedelta and datetime hold: OverflowError
def test_any_duration(text: str) -> None:
    with only(UsageError):
        seconds = parse_duration(text)
        assert 0 <= seconds < float("inf")
        now = datetime.now(UTC)
        assert now - timedelta(seconds=seconds) <= now <= now + timedelta(seconds=seconds)  # --keep-within, every
        format_duration(seconds)
        Policy(keep_within=seconds).describe()


def test_crasher_read_data_subset_with_a_huge_slice() -> None:
    """Subset.parse (parse_subset then) int()ed more than 4300 digits (ValueError, not UsageError)."""
    from vecbackup.ops.verify import Subset

    with pytest.raises(UsageError):
        Subset.parse("1/" + "9" * 5000)


@FEW
@given(st.text(max_size=30) | st.sampled_from(["10%", "100%", "0%", "101%", "3/10", "0/1", "١/٢", "1e3%"]))
def test_any_read_data_subset(text: str) -> None:
    from vecbackup.ops.verify import Subset

    with only(UsageError):
        Subset.parse(text)


# --------------------------------------------------------------------------- Milvus binlogs (segment backups)

BINLOG_SEEDS = fuzz_binlog.seeds()
#: a Parquet payload whose column name is not UTF-8 (pyarrow raised UnicodeDecodeError reading it)
_BAD_NAME = fuzz_binlog.payload(pa.array([1], pa.int64())).replace(b"val", b"\x94al")
#: a binlog whose Parquet row group claims 27,223,062,141 rows of its file's 3 (pyarrow allocated by the claim: OOM)
_ROW_GROUP_CLAIM = bytes.fromhex(
    "00bcfaff00010000000000000000660000006a000000010000000000000002000000000000000300000000000000640000000000"
    "00000a000000000000001400000000000000030000003410101010101010150000007b226f726967696e616c5f73697a65223a22"
    "30227d010031000000000001fc010000660200000a0000000000000014000000000000005041523115041518152a4c1506150012"
    "000028b52ffd200c610000010000000203d500000000001500151415262c15061510150615061c18040300000018040100000016"
    "00280403000000180401000000111100000028b52ffd200a510000020000000601020324001504192c33001806736368656d6115"
    "020015022502180376616c001606191c191c26001c1502193500061019180376616c150c160616a60116ca01264e26081c180403"
    "0000001804010000001600280403000000180401000000111100192c15041500150200150015101502003c290619260006000000"
    "16a60116fad9f7e9ca0100191c180c4152524f573a736368656d6118ac012f2f2f2f2f33674141414151414141414141414b4141"
    "7741426741464141674143674141414141424241414d414141414341414941414141424141494141414142414141414145414141"
    "41554141414145414155414167414267414841417741414141514142414141414141414145434541414141427741414141454141"
    "41414141414141414d4141414232595777414341414d41416741427741494141414141414141415341414141413d001820706172"
    "717565742d6370702d6172726f772076657273696f6e2032362e342e31191c1c0000006a01000050415231"
)


@FUZZ
@given(st.binary(max_size=2048) | mutated(BINLOG_SEEDS))
@example(b"\0" + fuzz_binlog.build_binlog(5, [_BAD_NAME]))
@example(_ROW_GROUP_CLAIM)
@example(b"\0" + fuzz_binlog.build_binlog(1, [fuzz_binlog.payload(pa.array([], pa.binary(8)))]))
def test_binlog_inputs(data: bytes) -> None:
    fuzz_binlog.one_input(data)


@FEW
@given(st.lists(st.text(max_size=20) | st.sampled_from(["v:M=16", "v:{}", "v:{\"a\": [1]}", "v:[1]", "v:x=1e400",
                                                          "v:x=--1", "v:x=１２", "v:x=²", ":x=1", "v:=1", "v:a=1,,b"]),
                max_size=3))
def test_any_cli_params_option(values: list[str]) -> None:
    from vecbackup.cli.options import (
        parse_collection_params,
        parse_field_params,
        parse_index_params,
        parse_index_types,
    )

    for parse in (parse_index_params, parse_index_types, parse_field_params, parse_collection_params):
        with only(UsageError):
            parse(values)


def test_every_target_of_fuzz_has_a_property_here() -> None:
    """fuzz/ runs the same parsers for minutes (make fuzz); this file keeps their crashers and a fast version."""
    names: dict[str, Callable[..., Any]] = {
        "manifest": check_manifest, "chunk": check_chunk, "digests": check_digests, "keys": test_parsing_any_key,
        "local_store": store_op, "urls": parse_every_url, "config": check_config, "options": test_any_duration,
        "crypto": test_crypto_inputs, "binlog": test_binlog_inputs,
    }
    fuzz = Path(__file__).resolve().parents[2] / "fuzz"
    if fuzz.is_dir():
        assert {p.stem.removeprefix("fuzz_") for p in fuzz.glob("fuzz_*.py")} == set(names)
