"""Milvus 2.3 binlogs decoded (vecbackup/format/binlog.py) against the server that wrote them.

A collection of every type the 2.3 server holds (each of its vector types in a collection of its own: 2.3 allows
one vector field per collection), two partitions, dynamic fields, deletes and upserts, several flushes: the
segment files in the server's local storage, decoded and with the deletes applied, are exactly the rows a Strong
query returns, partition by partition.

``VECBACKUP_WRITE_BINLOG_GOLDEN=DIR`` copies the files of the FLOAT_VECTOR and BINARY_VECTOR collections to DIR
(tests/golden/binlogs-2.3/README.md says how they are laid out and what they hold)."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.binlog_rows import DELETED_FIRST, DELETED_LAST, KINDS, UPSERTED, key, row, surviving, upserted
from tests.binlog_rows import spec as hand_spec
from tests.datasets import _norm, read_rows
from tests.integration.common import STANDALONE_URL
from vecbackup.engines.milvus.rows import chunk_to_rows
from vecbackup.format.binlog import DeltaLog, deletes, read_delta_log, read_insert_log, segment_chunks
from vecbackup.format.codec import decode_chunk, encode_chunk
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec


def build(client: Any, name: str, kind: str) -> None:
    from pymilvus import DataType, MilvusClient

    vec, vtype, pk_type = KINDS[kind]
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    if pk_type == "INT64":
        s.add_field("pk", DataType.INT64, is_primary=True)
    else:
        s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    for fname, t in (("b", DataType.BOOL), ("i8", DataType.INT8), ("i16", DataType.INT16), ("i32", DataType.INT32),
                     ("i64", DataType.INT64), ("f", DataType.FLOAT), ("d", DataType.DOUBLE)):
        s.add_field(fname, t)
    s.add_field("s", DataType.VARCHAR, max_length=100)
    s.add_field("j", DataType.JSON)
    s.add_field("ai", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    s.add_field("as_", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=5, max_length=20)
    for fname, t in (("ab", DataType.BOOL), ("af", DataType.FLOAT), ("ad", DataType.DOUBLE), ("a8", DataType.INT8),
                     ("a16", DataType.INT16), ("a32", DataType.INT32)):
        s.add_field(fname, DataType.ARRAY, element_type=t, max_capacity=5)
    dim = 16 if vtype == "BINARY_VECTOR" else 4
    s.add_field(vec, getattr(DataType, vtype), dim=dim)
    # created without an index, so not loaded while rows go in: the 2.3.5 server's query node panics on inserts
    # into a loaded FLOAT16_VECTOR collection ("unsupported data type: Float16Vector") and takes the server down
    client.create_collection(name, schema=s, consistency_level="Strong")
    client.create_partition(name, "p1")
    client.insert(name, [row(i, kind) for i in range(100)])
    client.flush(name)
    client.insert(name, [row(i, kind) for i in range(100, 200)], partition_name="p1")
    client.flush(name)
    client.delete(name, ids=[key(i, pk_type) for i in DELETED_FIRST])
    client.upsert(name, [upserted(UPSERTED[0], kind)])
    client.upsert(name, [upserted(UPSERTED[1], kind)], partition_name="p1")
    client.insert(name, [row(i, kind) for i in range(200, 250)])
    client.flush(name)
    client.delete(name, ids=[key(i, pk_type) for i in DELETED_LAST])
    client.flush(name)
    ip = client.prepare_index_params()
    ip.add_index(vec, index_type="BIN_FLAT" if vtype == "BINARY_VECTOR" else "FLAT",
                 metric_type="HAMMING" if vtype == "BINARY_VECTOR" else "L2")
    client.create_index(name, ip)
    client.load_collection(name)


def segments(client: Any, name: str) -> list[tuple[int, str, int]]:
    """(segment id, partition name, rows) of every flushed segment of ``name``, as the server reports them."""
    from pymilvus.grpc_gen import common_pb2, milvus_pb2

    conn = client._get_connection()
    parts = conn._stub.ShowPartitions(milvus_pb2.ShowPartitionsRequest(collection_name=name))
    names = dict(zip(parts.partitionIDs, parts.partition_names, strict=True))
    return [(s.segmentID, names[s.partitionID], s.num_rows) for s in conn.get_persistent_segment_infos(name)
            if s.state == common_pb2.SegmentState.Flushed]


def files(folder: Path) -> list[bytes]:
    """The logs in ``folder`` in log order (log ids grow with each write)."""
    return [p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: int(p.name))] if folder.is_dir() else []


def normalized(spec: CollectionSpec, chunks: list[Any]) -> dict[Any, dict[str, Any]]:
    return {r["pk"]: {k: _norm(v) for k, v in r.items()} for c in chunks for r in chunk_to_rows(spec, c)}


@pytest.mark.parametrize("kind", list(KINDS))
def test_segment_files_decode_to_the_rows_a_query_returns(standalone, kind):
    from pymilvus import MilvusClient

    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.urls import parse_milvus_url

    client = MilvusClient(uri=standalone.uri)
    source = MilvusEngine(parse_milvus_url(STANDALONE_URL))
    name = f"binlog_{kind}"
    try:
        build(client, name, kind)
        desc = client.describe_collection(name)
        spec = source.describe(name).spec
        field_ids = {f["name"]: f["field_id"] for f in desc["fields"]}
        root = standalone.data_dir / "data"
        coll = root / "insert_log" / str(desc["collection_id"])
        listed = segments(client, name)
        assert {p for _, p, _ in listed} == {"_default", "p1"} and len(listed) >= 4
        paths = {seg: next(coll.glob(f"*/{seg}")) for seg, _, _ in listed}

        # the deletes of the whole collection: every delta log of every flushed segment
        delta_root = root / "delta_log" / str(desc["collection_id"])
        logs: list[DeltaLog] = []
        for seg in paths:
            for folder in delta_root.glob(f"*/{seg}"):
                logs += [read_delta_log(b) for b in files(folder)]
        deleted = deletes(logs)
        expected_keys = {key(i, KINDS[kind][2]) for i in (*DELETED_FIRST, *DELETED_LAST, *UPSERTED)}
        assert set(deleted) == expected_keys

        decoded: dict[str, list[Any]] = defaultdict(list)
        for seg, partition, rows in listed:
            binlogs = {int(d.name): files(d) for d in paths[seg].iterdir()}
            assert sum(read_insert_log(b).num_rows for b in binlogs[0]) == rows  # every row before the deletes
            first = read_insert_log(binlogs[field_ids["pk"]][0])
            assert (first.descriptor.collection_id, first.descriptor.segment_id) == (desc["collection_id"], seg)
            for chunk in segment_chunks(spec, field_ids, binlogs, deleted, partition):
                assert chunk.partition == partition
                assert list(chunk.columns) == [c.name for c in spec.columns]
                assert decode_chunk(encode_chunk(spec.columns, chunk)).num_rows == chunk.num_rows
                decoded[partition].append(chunk)

        formula = surviving(kind)  # what the unit test expects of the golden files, checked here against the server
        for partition in ("_default", "p1"):
            truth = read_rows(client, name, partition)
            got = normalized(spec, decoded[partition])
            assert got.keys() == truth.keys(), partition
            assert got == truth, partition
            assert {k: {n: _norm(v) for n, v in r.items()} for k, r in formula[partition].items()} == truth
        assert [(f.name, f.type, f.element_type, f.dim) for f in hand_spec(kind).columns] == [
            (f.name, f.type, f.element_type, f.dim) for f in spec.columns]
        gone = {key(i, KINDS[kind][2]) for i in (*DELETED_FIRST, *DELETED_LAST)}
        assert not gone & {k for p in decoded.values() for k in normalized(spec, p)}
        meta = [m for c in decoded["_default"] for m in c.columns[DYNAMIC_COLUMN].values]
        assert {"dyn": {"x": 0, "l": [0]}, "dz": "z0"} in meta and {} in meta

        out = os.environ.get("VECBACKUP_WRITE_BINLOG_GOLDEN")
        if out and kind in ("float", "binary"):
            _write_golden(Path(out) / kind, root, desc["collection_id"], listed, field_ids)
    finally:
        source.close()
        client.close()


def _write_golden(out: Path, root: Path, collection_id: int, listed: list[tuple[int, str, int]],
                  field_ids: dict[str, int]) -> None:
    """The files of every listed segment as <partition>/<segment>/{insert_log/<field>,delta_log}/<log>, and
    segments.json: each segment's partition and rows, and the field ids."""
    shutil.rmtree(out, ignore_errors=True)
    for seg, partition, _ in listed:
        for kind in ("insert_log", "delta_log"):
            for src in (root / kind / str(collection_id)).glob(f"*/{seg}"):
                shutil.copytree(src, out / partition / str(seg) / kind)
    doc = {"segments": [{"segment_id": s, "partition": p, "rows": n} for s, p, n in listed], "field_ids": field_ids}
    (out / "segments.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
