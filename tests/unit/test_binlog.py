"""Milvus 2.3 binlogs (vecbackup/format/binlog.py) without a server: the real segment files of
tests/golden/binlogs-2.3/ (README there) decode to the rows the server returned, and malformed input of every kind
is CorruptData with one line."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import fuzz_binlog
from fuzz.fuzz_binlog import build_binlog, payload
from tests.binlog_rows import KINDS, spec, surviving
from vecbackup.engines.milvus.rows import chunk_to_rows
from vecbackup.errors import CorruptData
from vecbackup.format.binlog import (
    BATCH_ROWS,
    MAGIC,
    DeltaLog,
    _arrays,
    _fast_class,
    _packed_array_column,
    _packed_arrays,
    _scalar_field,
    _scalar_field_fast,
    deletes,
    iter_insert_log,
    read_delta_log,
    read_insert_log,
    segment_chunks,
    segment_groups,
)
from vecbackup.format.codec import Chunk, Column, Packed, decode_chunk, encode_chunk
from vecbackup.format.digests import encode_with_digests
from vecbackup.schema import DYNAMIC_COLUMN, Field, FieldType

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "binlogs-2.3"


def _logs(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: int(p.name))] if folder.is_dir() else []


def _segments(kind: str) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Path]]]:
    doc = orjson.loads((GOLDEN / kind / "segments.json").read_bytes())
    return doc, [(s, GOLDEN / kind / s["partition"] / str(s["segment_id"])) for s in doc["segments"]]


def _decode(kind: str, field_ids: dict[str, int] | None = None, **kw: Any) -> dict[str, dict[Any, dict[str, Any]]]:
    doc, segs = _segments(kind)
    deleted = deletes([read_delta_log(b) for _, path in segs for b in _logs(path / "delta_log")])
    s = spec(kind)
    out: dict[str, dict[Any, dict[str, Any]]] = {"_default": {}, "p1": {}}
    for seg, path in segs:
        binlogs = {int(d.name): _logs(d) for d in (path / "insert_log").iterdir()}
        assert sum(read_insert_log(b).num_rows for b in binlogs[0]) == seg["rows"]
        for chunk in segment_chunks(s, field_ids or doc["field_ids"], binlogs, deleted, seg["partition"], **kw):
            assert decode_chunk(encode_chunk(s.columns, chunk)).num_rows == chunk.num_rows
            for r in chunk_to_rows(s, chunk):
                assert r["pk"] not in out[seg["partition"]]
                out[seg["partition"]][r["pk"]] = r
    return out


def _plain(rows: dict[str, dict[Any, dict[str, Any]]]) -> dict[str, dict[Any, dict[str, Any]]]:
    return {p: {k: {n: v.tolist() if isinstance(v, np.ndarray) else v for n, v in r.items()} for k, r in d.items()}
            for p, d in rows.items()}


@pytest.mark.parametrize("kind", ["float", "binary"])
@pytest.mark.parametrize("batch_rows", [BATCH_ROWS, 7])
def test_golden_segments_decode_to_the_rows_the_server_returned(kind, batch_rows):
    assert _plain(_decode(kind, batch_rows=batch_rows)) == _plain(surviving(kind))


def test_a_log_is_decoded_a_batch_at_a_time():
    doc, segs = _segments("float")
    _, path = segs[0]
    data = _logs(path / "insert_log" / str(doc["field_ids"]["j"]))[0]
    whole = read_insert_log(data)
    parts = list(iter_insert_log(data, batch_rows=30))
    assert [p.num_rows for p in parts] == [30, 30, 30, 10]
    assert [v for p in parts for v in p.column.values] == whole.column.values
    binlogs = {int(d.name): _logs(d) for d in (path / "insert_log").iterdir()}
    chunks = list(segment_chunks(spec("float"), doc["field_ids"], binlogs, {}, "_default", batch_rows=30))
    assert [c.num_rows for c in chunks] == [30, 30, 30, 10]
    with pytest.raises(ValueError):
        iter_insert_log(data, batch_rows=0)
    with pytest.raises(CorruptData, match="not a Milvus binlog"):
        iter_insert_log(b"\0" * 100)  # the descriptor is checked at once


def test_the_dynamic_field_is_found_without_its_id():
    doc, _ = _segments("float")
    with_meta = {**doc["field_ids"], DYNAMIC_COLUMN: 119}
    assert _decode("float", with_meta) == _decode("float")


def test_golden_descriptors_and_columns():
    doc, segs = _segments("float")
    seg, path = segs[0]
    ids = doc["field_ids"]
    logs = {fid: read_insert_log(_logs(path / "insert_log" / str(fid))[0]) for fid in (0, 1, *ids.values())}
    pk = logs[ids["pk"]]
    assert pk.descriptor.segment_id == seg["segment_id"] and pk.descriptor.field_id == ids["pk"]
    assert pk.descriptor.data_type == 5 and pk.type is FieldType.INT64
    assert pk.descriptor.start_ts <= pk.descriptor.end_ts and int(pk.descriptor.extras["original_size"]) > 0
    assert pk.column.values.tolist() == list(range(100))
    assert logs[ids["i8"]].column.values.dtype == np.dtype("i1")  # stored as Parquet INT32
    assert logs[ids["i16"]].column.values.dtype == np.dtype("<i2")
    v = logs[ids["v"]]
    assert v.dim == 4 and v.column.values.shape == (100, 4) and v.column.values.dtype == np.dtype("<f4")
    assert logs[ids["a8"]].column.values[:2] == [[-50], [-49]]
    ts = logs[1].column.values
    assert ts.dtype == np.dtype("<i8") and (ts >= pk.descriptor.start_ts).all() and (ts <= pk.descriptor.end_ts).all()
    assert logs[0].num_rows == 100


def test_golden_delta_logs():
    _, segs = _segments("binary")
    logs = [read_delta_log(b) for _, path in segs for b in _logs(path / "delta_log")]
    assert all(isinstance(log.pks, list) and log.descriptor.field_id == -1 for log in logs)
    assert set(deletes(logs)) == {f"k{i}" for i in (1, 2, 150, 210, 3, 5, 160)}
    _, segs = _segments("float")
    logs = [read_delta_log(b) for _, path in segs for b in _logs(path / "delta_log")]
    assert all(isinstance(log.pks, np.ndarray) and log.pks.dtype == np.int64 for log in logs)
    assert all(log.timestamps.dtype == np.uint64 for log in logs)


def test_a_row_survives_a_delete_with_its_own_timestamp_only():
    """An upsert: delete and new row share a timestamp; the row stays. A delete later than a row removes it."""
    s = spec("float")
    doc, segs = _segments("float")
    _, path = segs[0]
    binlogs = {int(d.name): _logs(d) for d in (path / "insert_log").iterdir()}
    ts = read_insert_log(binlogs[1][0]).column.values
    keys = read_insert_log(binlogs[100][0]).column.values.tolist()
    born = dict(zip(keys, ts.tolist(), strict=True))

    def kept(deleted: dict[int, int]) -> set[int]:
        return {k for c in segment_chunks(s, doc["field_ids"], binlogs, deleted, "_default")
                for k in c.columns["pk"].values.tolist()}

    assert kept({7: born[7], 8: born[8] + 1, 9: born[9] - 1}) == set(keys) - {8}


def _delta(records: list[str]) -> bytes:
    import pyarrow as pa

    return build_binlog(20, [payload(pa.array(records, pa.string()))], field_id=-1, event=2)


def test_delta_log_record_forms():
    got = read_delta_log(_delta(['{"pk":-9223372036854775808,"ts":18446744073709551615,"pkType":5}', "7,9"]))
    assert got.pks.tolist() == [-(2**63), 7] and got.timestamps.tolist() == [2**64 - 1, 9]
    got = read_delta_log(_delta(['{"pk":"ü","ts":3,"pkType":21}']))
    assert got.pks == ["ü"] and deletes([got, got]) == {"ü": 3}


def _insert(dtype: int, values: Any, **kw: Any) -> bytes:
    return build_binlog(dtype, [payload(values)], **kw)


def _bad() -> list[tuple[str, bytes, str]]:
    import pyarrow as pa

    good = _insert(5, pa.array([1, 2], pa.int64()))
    return [
        ("empty", b"", "too short"),
        ("magic", b"\0\0\0\0" + good[4:], "not a Milvus binlog"),
        ("descriptor type", good[:12] + b"\x01" + good[13:], "not the descriptor"),
        ("extras length", good[:81] + struct.pack("<i", 10**6) + good[85:], "overrun"),
        ("extras json", build_binlog(5, [], extras=None).replace(b'{"original_size":"0"}', b'{"original_size":"0"]'),
         "not JSON"),
        ("no events", build_binlog(5, []), "without events"),
        ("event cut", good[:-5], "do not fit"),
        ("event type", _insert(5, pa.array([1], pa.int64()), event=2), "expected 1"),
        ("parquet", build_binlog(5, [b"PAR1 not parquet PAR1"]), "bad Parquet"),
        # found by fuzz/fuzz_binlog.py: pyarrow raised UnicodeDecodeError for the column's name
        ("column name", build_binlog(5, [payload(pa.array([1], pa.int64())).replace(b"val", b"\x94al")]),
         "bad Parquet payload"),
        ("type mismatch", _insert(5, pa.array(["a"])), "payload holds"),
        ("unknown type", _insert(999, pa.array([1], pa.int64())), "unknown payload data type"),
        ("int8 range", _insert(2, pa.array([300], pa.int32())), "INT8 payload holds 300"),
        ("vector width", _insert(101, pa.array([b"abc"], pa.binary(3))), "rows of 3 bytes"),
        ("json", _insert(23, pa.array([b"{"], pa.binary())), "not JSON"),
        ("utf8", _insert(21, pa.array([b"\xff"], pa.binary())), "not UTF-8"),
        ("array proto", _insert(22, pa.array([b"\x1a\x09\x0a"], pa.binary())), "cut short"),
        ("array member", _insert(22, pa.array([b"\x42\x00"], pa.binary())), "ScalarField field 8"),
        ("system type", _insert(21, pa.array(["a"]), field_id=1), "system field 1"),
    ]


@pytest.mark.parametrize("case", _bad(), ids=lambda c: c[0])
def test_malformed_insert_logs_are_corrupt_data_on_one_line(case):
    _, data, message = case
    with pytest.raises(CorruptData) as e:
        read_insert_log(data)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("records,message", [
    (['{"pk":1,"ts":2,"pkType":7}'], "pkType 7"),
    (['{"pk":"x","ts":2,"pkType":5}'], "INT64 key"),
    (['{"pk":1,"ts":-2,"pkType":5}'], "timestamp"),
    (['{"pk":1,"ts":2,"pkType":5}', '{"pk":"a","ts":2,"pkType":21}'], "mixes"),
    (["1;2"], "neither JSON nor"),
    (["[1]"], "neither JSON nor"),
    (['{"pk":1,'], "not JSON"),
])
def test_malformed_delta_logs_are_corrupt_data_on_one_line(records, message):
    with pytest.raises(CorruptData) as e:
        read_delta_log(_delta(records))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_insert_log_is_not_a_delta_log():
    import pyarrow as pa

    with pytest.raises(CorruptData, match="not String"):
        read_delta_log(_insert(5, pa.array([1], pa.int64())))


def test_a_field_that_does_not_match_its_binlog():
    import pyarrow as pa

    vectors = _insert(101, pa.array([b"\0" * 16], pa.binary(16)))
    assert read_insert_log(vectors, Field("v", FieldType.FLOAT_VECTOR, dim=4)).dim == 4
    with pytest.raises(CorruptData, match="has dim 8 but its binlog holds vectors of dim 4"):
        read_insert_log(vectors, Field("v", FieldType.FLOAT_VECTOR, dim=8))
    with pytest.raises(CorruptData, match="is INT64 but its binlog holds FLOAT_VECTOR"):
        read_insert_log(vectors, Field("v", FieldType.INT64))
    longs = _insert(22, pa.array([b"\x1a\x03\x0a\x01\x05"], pa.binary()))
    assert read_insert_log(longs, Field("a", FieldType.ARRAY, element_type=FieldType.INT64)).column.values == [[5]]
    with pytest.raises(CorruptData, match="ARRAY<VARCHAR> value holds long_data"):
        read_insert_log(longs, Field("a", FieldType.ARRAY, element_type=FieldType.VARCHAR))


def test_segments_whose_fields_disagree():
    s = spec("float")
    doc, segs = _segments("float")
    _, path = segs[0]
    binlogs = {int(d.name): _logs(d) for d in (path / "insert_log").iterdir()}
    _, other = segs[2]
    shorter = {**binlogs, 101: _logs(other / "insert_log" / "101")}
    with pytest.raises(CorruptData, match="binlog 0 of field 'b' has 51 rows where the timestamps have 100"):
        list(segment_chunks(s, doc["field_ids"], shorter, {}, "_default"))
    swapped = {**binlogs, 101: binlogs[102]}
    with pytest.raises(CorruptData, match=r"binlog 0 of field 'b' \(id 101\) holds field 102"):
        list(segment_chunks(s, doc["field_ids"], swapped, {}, "_default"))
    with pytest.raises(CorruptData, match="is BOOL but its binlog holds INT8"):
        list(segment_chunks(s, {**doc["field_ids"], "b": 102, "i8": 101}, swapped, {}, "_default"))
    with pytest.raises(CorruptData, match="cannot tell the dynamic field"):
        list(segment_chunks(s, doc["field_ids"], {k: v for k, v in binlogs.items() if k != 119}, {}, "_default"))
    with pytest.raises(CorruptData, match=r"the segment has no binlog of field 'v' \(id 118\)"):
        list(segment_chunks(s, doc["field_ids"], {k: v for k, v in binlogs.items() if k != 118}, {}, "_default"))
    with pytest.raises(CorruptData, match="different numbers of binlogs"):
        list(segment_chunks(s, doc["field_ids"], {**binlogs, 101: binlogs[101] * 2}, {}, "_default"))


@given(st.sampled_from(["bool_data", "int_data", "long_data", "float_data", "double_data", "string_data"]),
       st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_scalar_fields_decode_as_protobuf_does(member, data):
    """Our ScalarField reader against protobuf's own, on what pymilvus' schema_pb2 serializes."""
    from pymilvus.grpc_gen import schema_pb2

    elems = {
        "bool_data": st.booleans(), "int_data": st.integers(-(2**31), 2**31 - 1),
        "long_data": st.integers(-(2**63), 2**63 - 1), "float_data": st.floats(width=32, allow_nan=False),
        "double_data": st.floats(allow_nan=False), "string_data": st.text(),
    }[member]
    values = data.draw(st.lists(elems, max_size=8))
    sf = schema_pb2.ScalarField()
    getattr(sf, member).data.extend(values)
    raw = sf.SerializeToString()
    got, elements = _scalar_field(raw)
    assert elements == list(getattr(sf, member).data)
    assert got == member or not values
    fast = _scalar_field_fast(_fast_class(), raw)  # the protobuf runtime's path agrees where it answers
    assert fast is None or fast == (got, elements)
    assert fast is not None or not values  # canonical bytes with elements: it answers


@given(st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_the_fast_path_answers_only_where_the_exact_reader_agrees(b):
    """On arbitrary bytes the protobuf runtime's path answers exactly what _scalar_field answers, or leaves the
    bytes to it (which may refuse them)."""
    fast = _scalar_field_fast(_fast_class(), b)
    if fast is not None:
        assert _scalar_field(b) == fast


_ELEMENTS = {
    FieldType.BOOL: ("bool_data", st.booleans()), FieldType.INT8: ("int_data", st.integers(-(2**7), 2**7 - 1)),
    FieldType.INT16: ("int_data", st.integers(-(2**15), 2**15 - 1)),
    FieldType.INT32: ("int_data", st.integers(-(2**31), 2**31 - 1)),
    FieldType.INT64: ("long_data", st.integers(-(2**63), 2**63 - 1)),
    FieldType.FLOAT: ("float_data", st.floats(width=32, allow_nan=False)),
    FieldType.DOUBLE: ("double_data", st.floats(allow_nan=False)),
}


def _rows_by_row(col: Any, element_type: FieldType) -> Any:
    """_arrays' row-by-row reading alone (the column-at-once one made to decline)."""
    import vecbackup.format.binlog as binlog

    real = binlog._packed_arrays
    binlog._packed_arrays = lambda chunk, et: None  # type: ignore[assignment]
    try:
        return _arrays(col, element_type)
    except CorruptData as e:
        return e.message
    finally:
        binlog._packed_arrays = real  # type: ignore[assignment]


@given(st.sampled_from(sorted(_ELEMENTS, key=lambda t: t.value)), st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_column_of_arrays_decodes_at_once_as_row_by_row(element_type, data):
    """ARRAY columns whose rows are what protobuf writes (and rows of other kinds mixed in: another member,
    an element out of the type's range, bytes cut short or extended, empty rows, large_binary): the column-at-once
    reader answers exactly the lists the row-by-row reader answers, or declines and leaves the rows to it."""
    import pyarrow as pa
    from pymilvus.grpc_gen import schema_pb2

    member, elements = _ELEMENTS[element_type]
    rows, kinds = [], set()
    for _ in range(data.draw(st.integers(0, 12))):
        kind = data.draw(st.sampled_from(["ok", "ok", "ok", "empty", "member-empty", "other", "wide", "cut", "junk"]))
        kinds.add(kind)
        sf = schema_pb2.ScalarField()
        if kind == "empty":
            rows.append(b"")
            continue
        if kind == "other":
            getattr(sf, "string_data" if member != "string_data" else "long_data").data.extend([1] if member ==
                                                                                              "string_data" else ["x"])
        elif kind == "wide" and element_type in (FieldType.INT8, FieldType.INT16, FieldType.INT32):
            getattr(sf, member).data.extend([2**31 - 1 if element_type is not FieldType.INT32 else 0, -(2**31)])
            if element_type is FieldType.INT32:  # out of int32: written by hand as a 64-bit varint
                rows.append(b"\x12\x0b\x0a\x09" + b"\xff" * 8 + b"\x01")
                continue
        else:
            getattr(sf, member).data.extend(data.draw(st.lists(elements, max_size=6)))
        raw = sf.SerializeToString()
        if kind == "member-empty":
            raw = bytes([_member_tag(member), 0])
        elif kind == "cut" and raw:
            raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
        elif kind == "junk":
            raw += data.draw(st.binary(min_size=1, max_size=4))
        rows.append(raw)
    large = data.draw(st.booleans())
    col = pa.chunked_array([pa.array(rows, type=pa.large_binary() if large else pa.binary())])
    expected = _rows_by_row(col, element_type)
    at_once = _packed_arrays(col.chunks[0], element_type)
    if at_once is not None:
        assert at_once == expected
        assert [[type(v) for v in row] for row in at_once] == [[type(v) for v in row] for row in expected]
    if kinds <= {"ok", "empty", "member-empty"}:
        assert at_once is not None  # what protobuf writes is read at once
    packed = _packed_array_column(col, element_type)  # a segment backup's: stored as the lists would be
    assert (packed is None) == (at_once is None)
    if packed is not None:
        field = Field("a", FieldType.ARRAY, element_type=element_type, max_capacity=64)
        assert packed.tolist() == expected
        assert encode_chunk([field], Chunk("p", len(rows), {"a": Column(packed)})) == \
            encode_chunk([field], Chunk("p", len(rows), {"a": Column(expected)}))


def _member_tag(member: str) -> int:
    number = {"bool_data": 1, "int_data": 2, "long_data": 3, "float_data": 4, "double_data": 5}[member]
    return number << 3 | 2


def test_a_column_of_arrays_with_a_null_or_a_slice_is_read_right():
    import pyarrow as pa
    from pymilvus.grpc_gen import schema_pb2

    rows = []
    for values in ([1, -2, 3], [], [2**40], None, [7]):
        if values is None:
            rows.append(None)
            continue
        sf = schema_pb2.ScalarField()
        sf.long_data.data.extend(values)
        rows.append(sf.SerializeToString())
    arr = pa.array(rows, type=pa.binary())
    assert _arrays(pa.chunked_array([arr]), FieldType.INT64) == [[1, -2, 3], [], [2**40], None, [7]]
    assert _packed_arrays(arr, FieldType.INT64) is None  # a null: read row by row
    assert _arrays(pa.chunked_array([arr.slice(1, 3), arr.slice(4)]), FieldType.INT64) == [[], [2**40], None, [7]]
    assert _packed_arrays(arr.slice(0, 3), FieldType.INT64) == [[1, -2, 3], [], [2**40]]
    assert _packed_arrays(arr.slice(4), FieldType.INT64) == [[7]]
    # an unknown field after the packed data inside the LongArray: skipped row by row, never read as elements
    extra = pa.array([b"\x1a\x06\x0a\x02\x01\x02\x10\x01"], type=pa.binary())
    assert _packed_arrays(extra, FieldType.INT64) is None
    assert _arrays(pa.chunked_array([extra]), FieldType.INT64) == [[1, 2]]


def test_fuzz_seeds_decode():
    for seed in fuzz_binlog.seeds():
        fuzz_binlog.one_input(seed)


def test_magic_number():
    assert MAGIC == 0xFFFABC
    assert isinstance(read_delta_log(_delta(["1,2"])), DeltaLog)


def test_kinds_cover_every_vector_type_of_the_2_3_server():
    assert {v[1] for v in KINDS.values()} == {"FLOAT_VECTOR", "BINARY_VECTOR", "FLOAT16_VECTOR"}


# --------------------------------------------------------------------------- packed VARCHAR and JSON values


@pytest.mark.parametrize("kind", ["float", "binary"])
def test_packed_values_encode_to_the_same_chunks_and_digests(kind):
    """A segment backup asks for VARCHAR and JSON values packed (the bytes the chunk stores, without a Python value
    per row): every batch of the server's own segments encodes to the same bytes and row digests as decoded, and
    reads back as the same values; the primary key stays a list of keys."""
    doc, segs = _segments(kind)
    s = spec(kind)
    packed_columns: set[str] = set()
    for seg, path in segs:
        binlogs = {int(d.name): _logs(d) for d in (path / "insert_log").iterdir()}
        for group in segment_groups(s, doc["field_ids"], binlogs, seg["partition"]):
            for (plain, ts), (packed, ts2) in zip(group.batches(7), group.batches(7, packed=True), strict=True):
                assert np.array_equal(ts, ts2)
                data, digests = encode_with_digests(s.columns, plain)
                data2, digests2 = encode_with_digests(s.columns, packed)
                assert data2 == data and np.array_equal(digests2, digests)
                for name, col in packed.columns.items():
                    if isinstance(col.values, Packed):
                        packed_columns.add(name)
                        assert name != s.primary.name
                        assert col.values.tolist() == list(plain.columns[name].values)
    # the golden segments' VARCHAR, JSON and ARRAY fields (but an ARRAY of VARCHAR) are packed
    assert packed_columns == {f.name for f in s.columns if f.name != s.primary.name and (
        f.type in (FieldType.VARCHAR, FieldType.JSON) or f.name == DYNAMIC_COLUMN
        or (f.type is FieldType.ARRAY and f.element_type is not FieldType.VARCHAR))}


def _json_log(values: list[bytes], large: bool = False) -> bytes:
    import pyarrow as pa

    return _insert(23, pa.array(values, pa.large_binary() if large else pa.binary()))


def _both(data: bytes) -> tuple[Any, Any]:
    """The column read per row and packed, each a list of values or the CorruptData message."""
    out = []
    for packed in (False, True):
        try:
            out.append(next(iter_insert_log(data, packed=packed)).column.values)
        except CorruptData as e:
            out.append(e.message)
    return out[0], out[1]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@given(st.lists(st.one_of(
    _JSON.map(orjson.dumps),  # as pymilvus writes JSON
    _JSON.map(lambda v: __import__("json").dumps(v, ensure_ascii=False).encode()),  # with spaces, or as Go writes it
    st.sampled_from([b"[1", b"2],3", b"1,2", b"", b" 1", b"{}", b"[]", b'"a,b"', b"1e999", b"-0", b"1.50",
                     b'"\\u00fc"', b"\"", b"NaN", b"[", b"]",
                     # pieces whose joining puts a comma inside a string or a nested array, with escapes about
                     b'"a', b'b"', b'"x\\\\', b'\\""', b'"\\"', b'{"k":[1', b'2]}', b'["\\\\"', b'"]']),
), min_size=1, max_size=12), st.booleans())
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_packed_json_is_what_decoding_row_by_row_stores(values, large):
    """Whatever a JSON payload holds (JSON as orjson writes it, JSON written otherwise, pieces that only parse
    joined, such as "[1" and "2],3", empty or broken values), the packed column is stored exactly as the values
    decoded one by one, or decoding fails with the same one-line message."""
    plain, packed = _both(_json_log(values, large))
    if isinstance(plain, str):
        assert packed == plain
        return
    field = Field("j", FieldType.JSON)
    as_list = encode_chunk([field], Chunk("p", len(values), {"j": Column(plain)}))
    as_packed = encode_chunk([field], Chunk("p", len(values), {"j": Column(packed)}))
    assert as_packed == as_list
    if isinstance(packed, Packed):  # only values that are each one JSON value, as orjson writes it
        assert [orjson.dumps(orjson.loads(v)) for v in values] == values


def test_json_pieces_that_parse_only_when_joined_are_not_packed():
    plain, packed = _both(_json_log([b"[1", b"2],3"]))
    assert plain == packed and "not JSON" in plain
    # as many values as pieces, written as orjson writes them, but a comma put between two pieces falls inside a
    # string or a nested array: each piece alone is no JSON
    for pieces in ([b'"a', b'b"', b"1"], [b'{"k":[1', b'2]}', b"3"], [b'"x\\', b'\\",', b"3"],
                   [b'"\\"', b'"', b"2"]):
        plain, packed = _both(_json_log(pieces))
        assert plain == packed and "not JSON" in plain, pieces
    # escaped backslashes and quotes inside strings that are each one value: packed
    _, packed = _both(_json_log([b'"x\\\\"', b'"\\""', b'["\\\\",",\\"]"]']))
    assert isinstance(packed, Packed) and packed.tolist() == ["x\\", '"', ["\\", ',"]']]
    plain, packed = _both(_json_log([b'{"a": 1}', b"[1,2]"]))  # JSON, but not as orjson writes it
    assert not isinstance(packed, Packed) and packed == plain == [{"a": 1}, [1, 2]]
    _, packed = _both(_json_log([b'{"a":1}', b"[1,2]", b'"\\u00fc"']))  # orjson writes ü as UTF-8
    assert not isinstance(packed, Packed)
    _, packed = _both(_json_log([b'{"a":1}', b"[1,2]", '"ü"'.encode()]))
    assert isinstance(packed, Packed) and packed.tolist() == [{"a": 1}, [1, 2], "ü"]


def test_packed_varchar_is_checked_utf8():
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = _insert(21, pa.array(["a", "", "ü" * 3]))
    _, packed = _both(good)
    assert isinstance(packed, Packed) and packed.tolist() == ["a", "", "üüü"] and packed[2] == "üüü"
    # a string column whose bytes are not UTF-8 (pyarrow writes it unchecked; only a full validation sees it)
    bad = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(np.array([0, 1, 2], np.int32)),
                                                  pa.py_buffer(b"a\xff")])
    import io
    out = io.BytesIO()
    pq.write_table(pa.table({"val": bad}), out)
    plain, packed = _both(build_binlog(21, [out.getvalue()]))
    assert "not UTF-8" in plain and "not UTF-8" in packed
    with_null = _insert(21, pa.array(["a", None]))
    plain, packed = _both(with_null)
    assert packed == plain == ["a", None]  # nulls: decoded per row
