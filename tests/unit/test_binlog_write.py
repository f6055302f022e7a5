"""Milvus 2.3 insert binlogs as a restore writes them for the server's binlog import (vecbackup/format/binlog_write.py,
vecbackup/engines/milvus/binlog_import.py), without a server: every real insert log of tests/golden/binlogs-2.3
re-encoded is what the server wrote (values, descriptor, post-header lengths, Parquet column types, the ARRAY values'
bytes), random columns of every type read back unchanged, what a 2.3 binlog cannot hold is refused, and one task's
files (BinlogGroup) read back as a segment by format/binlog.py. The real server imports such files in
tests/integration/test_bulk_restore.py."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.binlog_rows import spec as golden_spec
from vecbackup.engines.milvus.binlog_import import (
    INSERT_DIR,
    BinlogGroup,
    log_name,
    refusal,
    target_field_ids,
)
from vecbackup.engines.milvus.rows import chunk_to_rows, rows_to_chunk
from vecbackup.format.binlog import DATA_TYPES, read_insert_log, segment_batches
from vecbackup.format.binlog_write import (
    DATA_TYPE_CODES,
    POST_HEADER_LENGTHS,
    encodable,
    hybrid_ts,
    scalar_fields,
    system_logs,
    write_insert_log,
)
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, CollectionSpec, Field
from vecbackup.schema import FieldType as T

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "binlogs-2.3"
#: the ARRAY fields' element types (tests/golden/binlogs-2.3/README.md)
ELEMENTS = {"ai": T.INT64, "as_": T.VARCHAR, "ab": T.BOOL, "af": T.FLOAT, "ad": T.DOUBLE, "a8": T.INT8,
            "a16": T.INT16, "a32": T.INT32}


def _golden_logs() -> list[Any]:
    """(kind, field name, file) of every insert log of the golden segments; the name is None for the row ids (0)
    and timestamps (1), "$meta" for the dynamic field's id, which segments.json does not list."""
    out = []
    for kind in ("float", "binary"):
        doc = orjson.loads((GOLDEN / kind / "segments.json").read_bytes())
        names: dict[int, str | None] = {fid: name for name, fid in doc["field_ids"].items()}
        for n, seg in enumerate(doc["segments"]):
            folder = GOLDEN / kind / seg["partition"] / str(seg["segment_id"]) / "insert_log"
            for d in sorted(folder.iterdir(), key=lambda d: int(d.name)):
                fid = int(d.name)
                name = None if fid in (0, 1) else names.get(fid, DYNAMIC_COLUMN)
                for f in sorted(d.iterdir()):
                    out.append(pytest.param(kind, name, f, id=f"{kind}-seg{n}-{name or fid}"))
    return out


def _payload(data: bytes) -> bytes:
    """The Parquet payload of a binlog's one insert event, found by the documented layout (docs/FORMAT.md, "Byte
    layout") rather than by the decoder: the event must run to the end of the file."""
    (extras,) = struct.unpack_from("<i", data, 81)
    pos = 85 + extras
    _ts, code, length, nxt = struct.unpack_from("<Qbii", data, pos)
    assert code == 1 and nxt == pos + length == len(data)
    return data[pos + 33 : pos + length]


def _parquet(data: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.ParquetFile(pa.BufferReader(_payload(data)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    return bool(orjson.dumps(a) == orjson.dumps(b))  # lists: also 1 vs 1.0 vs True, and JSON's key order


# --------------------------------------------------------------------------- 1. the server's own files


@pytest.mark.parametrize("kind,name,path", _golden_logs())
def test_a_golden_insert_log_re_encoded_is_what_the_server_wrote(kind, name, path):
    golden = path.read_bytes()
    field = golden_spec(kind).field(name) if name not in (None, DYNAMIC_COLUMN) else None
    log = read_insert_log(golden, field)
    d = log.descriptor
    element_type = ELEMENTS.get(name or "")
    assert (log.type is T.ARRAY) == (element_type is not None)
    if d.field_id == 1:  # the server's start and end are its rows' first and last timestamp (ours: all are ts)
        assert (d.start_ts, d.end_ts) == (log.column.values.min(), log.column.values.max())
    ours = write_insert_log(log.type, log.column, log.num_rows, field_id=d.field_id, segment_id=d.segment_id,
                            ts=d.start_ts, dim=log.dim, element_type=element_type, collection_id=d.collection_id,
                            partition_id=d.partition_id)
    back = read_insert_log(ours, field)
    assert back.num_rows == log.num_rows and back.type is log.type and back.dim == log.dim
    assert back.column.valid is None and log.column.valid is None
    assert _same(back.column.values, log.column.values)
    assert (back.descriptor.field_id, back.descriptor.segment_id, back.descriptor.data_type) == (
        d.field_id, d.segment_id, d.data_type)
    assert back.descriptor.extras == d.extras  # original_size counted as 2.3 counts it (GetMemorySize)
    assert ours[73:81] == golden[73:81] == POST_HEADER_LENGTHS == bytes([52, 16, 16, 16, 16, 16, 16, 16])
    # the whole descriptor event but its timestamps (the header's at 4..12, start and end at 53..69): magic,
    # lengths, ids, data type, post-header lengths, extras
    end = 85 + struct.unpack_from("<i", golden, 81)[0]
    assert ours[:4] + ours[12:53] + ours[69:end] == golden[:4] + golden[12:53] + golden[69:end]
    assert struct.unpack_from("<QQ", ours, 53) == (d.start_ts, d.start_ts)
    ours_pq, golden_pq = _parquet(ours), _parquet(golden)
    ours_col, golden_col = ours_pq.schema.column(0), golden_pq.schema.column(0)
    assert ours_col.name == golden_col.name == "val"
    assert ours_col.physical_type == golden_col.physical_type
    # the annotation: INT8 and INT16 as Int(8) / Int(16) of an INT32, VARCHAR as String, like the server's; but
    # pyarrow leaves a plain INT32 / INT64 unannotated where the server's Go Arrow writes Int(32|64, signed): the
    # same column (an unannotated INT32 or INT64 is a signed integer of that width, by the Parquet spec)
    theirs = str(golden_col.logical_type)
    if ours_col.physical_type in ("INT32", "INT64") and str(ours_col.logical_type) == "None":
        assert theirs == f"Int(bitWidth={ours_col.physical_type[3:]}, isSigned=true)"
    else:
        assert str(ours_col.logical_type) == theirs
    assert ours_col.max_definition_level == golden_col.max_definition_level == 0  # a required column
    assert ours_pq.schema_arrow.types == golden_pq.schema_arrow.types
    if element_type is not None:
        # Each ARRAY row as the server serialized its ScalarField: the element type's member, numbers packed (the
        # proto3 default, which Go and Python's protobuf both write), an empty array as the member with no
        # elements. The golden rows include empty ones (ai, as_, ab) and every element type.
        theirs = golden_pq.read().column(0).to_pylist()
        assert ours_pq.read().column(0).to_pylist() == theirs
        assert scalar_fields(log.column.values, element_type) == theirs


def test_every_golden_kind_and_field_is_covered():
    params = _golden_logs()
    names = {(p.values[0], p.values[1]) for p in params}
    for kind in ("float", "binary"):
        s = golden_spec(kind)
        assert {n for k, n in names if k == kind} == {None, DYNAMIC_COLUMN, *(f.name for f in s.fields)}
    assert len(params) == 2 * 4 * 22  # 2 collections, 4 segments, 19 fields + $meta + row ids + timestamps


def test_what_the_writer_writes_into_parquet():
    """docs/FORMAT.md, "Written for the server's binlog import": snappy, no dictionary, no statistics, one row
    group; the descriptor's timestamps and the event's are ``ts``."""
    ts = hybrid_ts(1_700_000_000_000)
    data = write_insert_log(T.VARCHAR, Column(["a", "bb", "a"]), 3, field_id=101, segment_id=7, ts=ts)
    pf = _parquet(data)
    assert pf.metadata.num_row_groups == 1 and pf.metadata.num_columns == 1
    chunk = pf.metadata.row_group(0).column(0)
    assert chunk.compression == "SNAPPY" and not chunk.is_stats_set
    assert not any("DICTIONARY" in e for e in chunk.encodings)
    assert struct.unpack_from("<Q", data, 4)[0] == ts  # the descriptor event's header
    d = read_insert_log(data).descriptor
    assert (d.collection_id, d.partition_id, d.start_ts, d.end_ts, d.data_type) == (0, 0, ts, ts, 21)
    assert d.extras == {"original_size": str(1 + 2 + 1 + 3 * 16)}
    pos = 85 + struct.unpack_from("<i", data, 81)[0]
    assert struct.unpack_from("<Qb", data, pos) == (ts, 1)  # the insert event's header, then its start and end
    assert struct.unpack_from("<QQ", data, pos + 17) == (ts, ts)


def test_type_codes_are_the_decoders():
    assert hybrid_ts(1) == 1 << 18 and hybrid_ts(1_700_000_000_000) >> 18 == 1_700_000_000_000
    for ftype, code in DATA_TYPE_CODES.items():
        assert DATA_TYPES[code] is ftype
    assert DATA_TYPE_CODES[T.VARCHAR] == 21  # VarChar, as 2.3 writes a VARCHAR field (20, String, is the delta log's)


# --------------------------------------------------------------------------- 2. any column of any type

_INT_RANGES = {T.INT8: 2**7, T.INT16: 2**15, T.INT32: 2**31, T.INT64: 2**63}


def _element(t: T) -> st.SearchStrategy[Any]:
    if t is T.BOOL:
        return st.booleans()
    if t in _INT_RANGES:
        return st.integers(-_INT_RANGES[t], _INT_RANGES[t] - 1)
    if t is T.FLOAT:
        return st.floats(width=32, allow_nan=False)
    if t is T.DOUBLE:
        return st.floats(allow_nan=False)
    assert t is T.VARCHAR
    return st.text(max_size=20)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)

#: (type, ARRAY element type) of every column write_insert_log writes
CASES = [(t, None) for t in (*SCALAR_DTYPES, T.VARCHAR, T.JSON, T.FLOAT_VECTOR, T.BINARY_VECTOR)] + [
    (T.ARRAY, e) for e in ELEMENTS.values()]


def _column(data: st.DataObject, ftype: T, element_type: T | None, rows: int) -> tuple[Column, int | None]:
    if ftype in SCALAR_DTYPES:
        values = data.draw(st.lists(_element(ftype), min_size=rows, max_size=rows))
        return Column(np.array(values, dtype=SCALAR_DTYPES[ftype])), None
    if ftype is T.VARCHAR:
        return Column(data.draw(st.lists(st.text(max_size=30), min_size=rows, max_size=rows))), None
    if ftype is T.JSON:
        return Column(data.draw(st.lists(_JSON, min_size=rows, max_size=rows))), None
    if ftype is T.ARRAY:
        assert element_type is not None
        elements = st.lists(_element(element_type), max_size=6)
        values = data.draw(st.lists(elements, min_size=rows, max_size=rows))
        if data.draw(st.booleans()):  # as format/codec.py decodes numbers: numpy arrays
            values = [np.array(v, dtype=SCALAR_DTYPES.get(element_type, object)) for v in values]
        return Column(values), None
    if ftype is T.FLOAT_VECTOR:
        dim = data.draw(st.integers(1, 64))
        raw = data.draw(st.binary(min_size=rows * dim * 4, max_size=rows * dim * 4))  # NaNs too: compared as bytes
        return Column(np.frombuffer(raw, dtype="<f4").reshape(rows, dim)), dim
    dim = 8 * data.draw(st.integers(1, 8))
    raw = data.draw(st.binary(min_size=rows * dim // 8, max_size=rows * dim // 8))
    return Column(np.frombuffer(raw, dtype=np.uint8).reshape(rows, dim // 8)), dim


def _expected(ftype: T, values: Any) -> Any:
    if ftype is T.JSON:
        # a JSON null is written as {}, as the files' import writes it (bulk.py: a 2.3 JSON field holds an object)
        return [{} if v is None else v for v in values]
    if ftype is T.ARRAY:
        return [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
    return values


@pytest.mark.parametrize("ftype,element_type", CASES, ids=lambda c: c.value if c else "")
@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_column_reads_back(ftype, element_type, data):
    rows = data.draw(st.integers(0, 50))
    column, dim = _column(data, ftype, element_type, rows)
    ours = write_insert_log(ftype, column, rows, field_id=105, segment_id=3, ts=hybrid_ts(5), dim=dim,
                            element_type=element_type)
    field = Field("x", ftype, dim=dim, element_type=element_type)
    for back in (read_insert_log(ours, field), read_insert_log(ours)):  # with the schema and without
        assert back.num_rows == rows and back.type is ftype and back.column.valid is None
        assert back.dim == dim  # also with no rows: the Parquet column's width says it
        assert _same(back.column.values, _expected(ftype, column.values))
        assert back.descriptor.field_id == 105 and back.descriptor.data_type == DATA_TYPE_CODES[ftype]
    if ftype is T.ARRAY:  # the bytes the real schema (pymilvus' schemapb) serializes
        from pymilvus.grpc_gen import schema_pb2

        member = {T.BOOL: "bool_data", T.INT64: "long_data", T.FLOAT: "float_data", T.DOUBLE: "double_data",
                  T.VARCHAR: "string_data"}.get(element_type, "int_data")
        want = []
        for v in _expected(T.ARRAY, column.values):
            sf = schema_pb2.ScalarField()
            getattr(sf, member).SetInParent()
            getattr(sf, member).data.extend(v)
            want.append(sf.SerializeToString())
        assert _parquet(ours).read().column(0).to_pylist() == want


# --------------------------------------------------------------------------- 3. refusals


@pytest.mark.parametrize("ftype,column,rows,kw,message", [
    (T.FLOAT16_VECTOR, Column(np.zeros((1, 4), "<u2")), 1, {"dim": 4}, "FLOAT16_VECTOR field is not a 2.3 type"),
    (T.SPARSE_FLOAT_VECTOR, Column([{1: 0.5}]), 1, {}, "SPARSE_FLOAT_VECTOR field is not a 2.3 type"),
    (T.ARRAY, Column([[1]]), 1, {"element_type": None}, "ARRAY of None is not a 2.3 type"),
    (T.INT64, Column(np.array([1, 2]), np.array([True, False])), 2, {}, "INT64 column with nulls"),
    (T.VARCHAR, Column(["a", None], np.array([True, False])), 2, {}, "VARCHAR column with nulls"),
    (T.INT64, Column(np.array([1, 2])), 3, {}, r"INT64 column of shape \(2,\) for 3 rows"),
    (T.VARCHAR, Column(["a"]), 2, {}, "VARCHAR column of 1 values for 2 rows"),
    (T.JSON, Column([{}, {}]), 1, {}, "JSON column of 2 values for 1 rows"),
    (T.ARRAY, Column([[1]]), 2, {"element_type": T.INT64}, "ARRAY column of 1 values for 2 rows"),
    (T.FLOAT_VECTOR, Column(np.zeros((2, 4), "<f4")), 3, {"dim": 4}, r"FLOAT_VECTOR\(4\) column of 32 bytes for 3"),
    (T.FLOAT_VECTOR, Column(np.zeros((2, 3), "<f4")), 2, {"dim": 4}, r"FLOAT_VECTOR\(4\) column of 24 bytes for 2"),
    (T.BINARY_VECTOR, Column(np.zeros((2, 3), np.uint8)), 2, {"dim": 16}, r"BINARY_VECTOR\(16\) column of 6 bytes"),
    (T.FLOAT_VECTOR, Column(np.zeros((1, 4), "<f4")), 1, {}, "FLOAT_VECTOR needs its dim"),
])
def test_what_a_2_3_binlog_cannot_hold_is_refused(ftype, column, rows, kw, message):
    with pytest.raises(ValueError, match=message):
        write_insert_log(ftype, column, rows, field_id=100, segment_id=1, ts=1, **kw)


def _spec(*fields: Field, dynamic: bool = False) -> CollectionSpec:
    return CollectionSpec("c", (Field("id", T.INT64, is_primary=True), *fields), enable_dynamic_field=dynamic)


def test_which_collections_the_binlog_import_takes():
    assert refusal(_spec(Field("v", T.FLOAT_VECTOR, dim=4)), keep_ids=True) is None
    assert refusal(_spec(Field("v", T.FLOAT_VECTOR, dim=4)), keep_ids=False) is None
    # ARRAY<DOUBLE>: the files' import loses digits of it; the binlogs hold it as it is
    assert refusal(_spec(Field("a", T.ARRAY, element_type=T.DOUBLE, max_capacity=4)), keep_ids=True) is None
    got = refusal(_spec(Field("h", T.FLOAT16_VECTOR, dim=4)), keep_ids=True)
    assert got is not None and "'h'" in got and "FLOAT16_VECTOR" in got and "2.3 binlogs" in got
    got = refusal(_spec(Field("s", T.SPARSE_FLOAT_VECTOR)), keep_ids=True)
    assert got is not None and "'s'" in got
    got = refusal(_spec(Field("n", T.INT32, nullable=True)), keep_ids=True)
    assert got is not None and "'n'" in got and "nullable" in got
    got = refusal(_spec(Field("n", T.INT32, default_value=3)), keep_ids=True)
    assert got is not None and "'n'" in got and "default value" in got
    auto = CollectionSpec("c", (Field("id", T.INT64, is_primary=True, auto_id=True),
                                Field("v", T.FLOAT_VECTOR, dim=4)))
    assert refusal(auto, keep_ids=True) is None  # the binlog import keeps the recorded keys
    got = refusal(auto, keep_ids=False)
    assert got is not None and "'id'" in got and "auto-id" in got and "new ids" in got
    assert not encodable(T.ARRAY, None) and not encodable(T.ARRAY, T.JSON) and encodable(T.ARRAY, T.INT8)


# --------------------------------------------------------------------------- 4. one task's files


def _group_spec() -> CollectionSpec:
    return CollectionSpec("g", (
        Field("id", T.INT64, is_primary=True), Field("v", T.FLOAT_VECTOR, dim=4), Field("s", T.VARCHAR, max_length=9),
        Field("ad", T.ARRAY, element_type=T.DOUBLE, max_capacity=3), Field("j", T.JSON),
    ), enable_dynamic_field=True, partitions=("_default", "p"))


def _group_rows(start: int, n: int) -> list[dict[str, Any]]:
    return [{"id": i * 3 - 2**40, "v": [i / 3, -1.0, 0.5, float(i)], "s": "ü" * (i % 4),
             "ad": [i / 9, 1e300][: i % 3], "j": {"i": i, "l": [None, "x"]},
             **({"dyn": i, "deep": {"k": [i]}} if i % 2 else {})} for i in range(start, start + n)]


def test_a_group_is_one_segment_of_the_chunks():
    spec = _group_spec()
    described = [{"name": f.name, "field_id": 100 + i} for i, f in enumerate(spec.fields)]
    ids = target_field_ids(described, spec.enable_dynamic_field)
    assert ids[DYNAMIC_COLUMN] == 105
    chunks = [rows_to_chunk(spec, "p", _group_rows(0, 7)), rows_to_chunk(spec, "p", _group_rows(7, 1)),
              rows_to_chunk(spec, "p", _group_rows(8, 5))]
    del chunks[1].columns[DYNAMIC_COLUMN]  # a chunk without the dynamic fields' column: {} on every row
    ts = hybrid_ts(1_700_000_000_000)
    group = BinlogGroup(spec, "p", ids, segment_id=9, first_row_id=3 << 32, ts=ts)
    assert group.offer(chunks[0], limit=0)  # the first chunk, whatever the limit
    first = group.size
    assert first == sum(len(b) for b in group.files.values()) and group.logs == 1 and group.rows == 7
    assert not group.offer(chunks[1], limit=first)  # the group takes the limit: full
    assert group.logs == 1 and group.size == first
    assert group.offer(chunks[1], limit=first + 1)
    assert group.offer(chunks[2], limit=group.size + 1)
    assert not group.offer(chunks[2], limit=0)
    assert (group.rows, group.logs) == (13, 3) and group.size == sum(len(b) for b in group.files.values())

    files = group.encode(limit=0)
    fids = {0, 1, 100, 101, 102, 103, 104, 105}
    assert set(files) == {f"{INSERT_DIR}/9/{fid}/{log_name(i)}" for fid in fids for i in range(3)}
    assert log_name(0) == "000000" and log_name(2) == "000002" and f"{INSERT_DIR}/9/105/000001" in files
    logs = {name: read_insert_log(data) for name, data in files.items()}
    for name, log in logs.items():
        _, seg, fid, _ = name.split("/")
        assert log.descriptor.segment_id == int(seg) == 9 and log.descriptor.field_id == int(fid)
        assert log.descriptor.start_ts == ts
    row_ids = np.concatenate([logs[f"{INSERT_DIR}/9/0/{log_name(i)}"].column.values for i in range(3)])
    assert row_ids.tolist() == list(range(3 << 32, (3 << 32) + 13))  # consecutive across the chunks
    stamps = np.concatenate([logs[f"{INSERT_DIR}/9/1/{log_name(i)}"].column.values for i in range(3)])
    assert stamps.tolist() == [ts] * 13
    assert logs[f"{INSERT_DIR}/9/105/{log_name(1)}"].column.values == [{}]
    assert [logs[f"{INSERT_DIR}/9/0/{log_name(i)}"].num_rows for i in range(3)] == [7, 1, 5]

    # the decoder reads the files as a segment of the staging collection: the chunks' rows, in order
    binlogs: dict[int, list[bytes]] = {}
    for name in sorted(files):  # log names sort in log order
        binlogs.setdefault(int(name.split("/")[2]), []).append(files[name])
    for field_ids in (ids, {k: v for k, v in ids.items() if k != DYNAMIC_COLUMN}):  # $meta's id found or given
        got = list(segment_batches(spec, field_ids, binlogs, "p"))
        assert [c.num_rows for c, _ in got] == [7, 1, 5]
        assert all(born.tolist() == [ts] * c.num_rows for c, born in got)
        assert [r for c, _ in got for r in chunk_to_rows(spec, c)] == [
            r for c in chunks for r in chunk_to_rows(spec, c)]
    rows = [r for c, _ in got for r in chunk_to_rows(spec, c)]
    assert rows[7] == {"id": 7 * 3 - 2**40, "v": [np.float32(7 / 3), -1.0, 0.5, 7.0], "s": "ü" * 3,
                       "ad": [7 / 9], "j": {"i": 7, "l": [None, "x"]}}  # no dynamic fields: its chunk had none
    assert rows[1]["dyn"] == 1 and rows[1]["deep"] == {"k": [1]} and rows[2]["ad"] == [2 / 9, 1e300]


def test_a_group_without_dynamic_fields_has_no_meta_log():
    spec = CollectionSpec("g", (Field("id", T.INT64, is_primary=True), Field("v", T.BINARY_VECTOR, dim=16)))
    ids = target_field_ids([{"name": "id", "field_id": 100}, {"name": "v", "field_id": 101}], False)
    assert ids == {"id": 100, "v": 101}
    chunk = Chunk("_default", 2, {"id": Column(np.array([5, 6])), "v": Column(np.array([[1, 2], [3, 4]], np.uint8))})
    group = BinlogGroup(spec, "_default", ids, segment_id=1, first_row_id=0, ts=hybrid_ts(1))
    assert group.offer(chunk, limit=1)
    assert sorted(group.files) == [f"{INSERT_DIR}/1/{fid}/000000" for fid in (0, 1, 100, 101)]
    assert read_insert_log(group.files[f"{INSERT_DIR}/1/101/000000"]).column.values.tolist() == [[1, 2], [3, 4]]


def test_system_logs():
    logs = system_logs(10, 3, segment_id=4, ts=77)
    assert sorted(logs) == [0, 1]
    ids, stamps = read_insert_log(logs[0]), read_insert_log(logs[1])
    assert ids.column.values.tolist() == [10, 11, 12] and stamps.column.values.tolist() == [77] * 3
    assert (ids.descriptor.field_id, stamps.descriptor.field_id, ids.descriptor.segment_id) == (0, 1, 4)
    assert ids.descriptor.data_type == stamps.descriptor.data_type == 5


# --------------------------------------------------------------------------- 5. the staging collection's field ids


def test_target_field_ids():
    described = [{"name": "pk", "field_id": 100}, {"name": "v", "field_id": 107}, {"name": "s", "field_id": 103}]
    assert target_field_ids(described, True) == {"pk": 100, "v": 107, "s": 103, DYNAMIC_COLUMN: 108}
    assert target_field_ids(described, False) == {"pk": 100, "v": 107, "s": 103}
    assert target_field_ids([*described, {"name": DYNAMIC_COLUMN, "field_id": 120}], True)[DYNAMIC_COLUMN] == 120
    assert target_field_ids([], True) == {DYNAMIC_COLUMN: 100}
    assert target_field_ids([{"name": "pk", "field_id": "101"}], True) == {"pk": 101, DYNAMIC_COLUMN: 102}
