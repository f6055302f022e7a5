"""Milvus binlogs (format/binlog.py): any bytes give CorruptData from read_insert_log, iter_insert_log (in batches
of 3 rows: the same rows, or the same refusal) and read_delta_log, or a log whose values match its row count (and,
for a delta log, keys of one type).

Random bytes rarely get past the magic number and the descriptor, so the first byte picks how the rest becomes a
binlog:

* 0: as it is;
* 1: a right descriptor (byte 1 picks its data type, byte 2 the event type) and one event whose payload is the
  rest: Parquet readers see any bytes;
* 2: a right descriptor and one event with a valid Parquet payload of one column whose values are the rest, split
  at 0xFF bytes, as the binary (or string) values of an ARRAY, JSON, VARCHAR, vector or delta payload: the
  ScalarField, JSON, UTF-8 and delete-record decoders see any content;
* 3: a valid binlog (byte 1 picks it) with its bytes from offset byte 2 on overwritten by the rest (headers,
  lengths, the descriptor's fields and extras).
"""

from __future__ import annotations

import io
import struct
from typing import Any

import orjson

from fuzz._common import Bug, allow
from vecbackup.errors import CorruptData
from vecbackup.format.binlog import iter_insert_log, read_delta_log, read_insert_log
from vecbackup.format.codec import Packed

MAX_LEN = 16384
ALLOWED = (CorruptData,)

#: Milvus data type numbers a 2.3 server writes (schemapb.DataType), and a few it does not
DATA_TYPES = (1, 2, 3, 4, 5, 10, 11, 20, 21, 22, 23, 100, 101, 102, 103, 104, 0, -1, 999)


def payload(values: Any) -> bytes:
    """A Parquet file of one column ``val`` holding the pyarrow array ``values``, as Milvus writes a payload."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"val": values}), out, compression="zstd")
    return out.getvalue()


def build_binlog(data_type: int, payloads: list[bytes], *, field_id: int = 100, event: int = 1,
                 extras: dict[str, Any] | None = None, ids: tuple[int, int, int] = (1, 2, 3),
                 ts: tuple[int, int] = (10, 20)) -> bytes:
    """A binlog as Milvus 2.3 lays it out: magic, descriptor event, one event (type ``event``) per payload."""
    extra = orjson.dumps({"original_size": "0"} if extras is None else extras)
    fixed = struct.pack("<qqqqQQi", *ids, field_id, *ts, data_type) + bytes([52, 16, 16, 16, 16, 16, 16, 16])
    body = fixed + struct.pack("<i", len(extra)) + extra
    start = 4 + 17 + len(body)
    out = [struct.pack("<i", 0xFFFABC), struct.pack("<Qbii", 1, 0, 17 + len(body), start), body]
    pos = start
    for p in payloads:
        length = 17 + 16 + len(p)
        out += [struct.pack("<Qbii", 1, event, length, pos + length), struct.pack("<QQ", *ts), p]
        pos += length
    return b"".join(out)


def _column(data_type: int, values: list[bytes]) -> Any:
    import pyarrow as pa

    if data_type in (20, 21):
        return pa.array([v.decode("utf-8", "replace") for v in values], pa.string())
    if data_type in (100, 101, 102, 103):
        width = max(1, len(values[0]) if values else 1)
        return pa.array([(v * width)[:width].ljust(width, b"\0") for v in values], pa.binary(width))
    return pa.array(values, pa.binary())


def seeds() -> list[bytes]:
    import numpy as np
    import pyarrow as pa

    ints = pa.array([1, -2, 3], pa.int64())
    logs = [
        build_binlog(5, [payload(ints)], field_id=0),
        build_binlog(1, [payload(pa.array([True, False, True]))]),
        build_binlog(2, [payload(pa.array([-128, 0, 127], pa.int8()))]),
        build_binlog(3, [payload(pa.array([1, 2, 3], pa.int32()))]),
        build_binlog(10, [payload(pa.array([0.5, 1.5], pa.float32())), payload(pa.array([2.5], pa.float32()))]),
        build_binlog(11, [payload(pa.array([0.5], pa.float64()))]),
        build_binlog(21, [payload(pa.array(["a", "é", ""]))]),
        build_binlog(23, [payload(pa.array([b'{"a":1}', b"{}"], pa.binary()))]),
        build_binlog(22, [payload(pa.array([b"\x1a\x04\x0a\x02\x01\x02", b"\x32\x05\x0a\x03abc", b""],
                                           pa.binary()))]),
        build_binlog(101, [payload(pa.array([np.ones(2, "<f4").tobytes()], pa.binary(8)))]),
        build_binlog(100, [payload(pa.array([b"\x01\x02"], pa.binary(2)))]),
        build_binlog(20, [payload(pa.array(['{"pk":1,"ts":5,"pkType":5}', "7,9"]))], field_id=-1, event=2),
        build_binlog(20, [payload(pa.array(['{"pk":"k","ts":5,"pkType":21}']))], field_id=-1, event=2),
    ]
    out = [b"\x00" + b for b in logs]
    out += [b"\x01" + bytes([i, 1]) + payload(ints) for i in range(len(DATA_TYPES))]
    out += [b"\x02\x06\x01" + b'\x1a\x04\x0a\x02\x01\x02\xff{"a":1}', b"\x02\x07\x02" + b'{"pk":1,"ts":2}\xff1,2']
    out += [b"\x03" + bytes([i, 90]) + b"\xff\xff\xff\x7f" for i in range(len(logs))]
    return out


_LOGS: list[bytes] = []


def forge(data: bytes) -> bytes:
    mode, body = data[0] & 3, data[1:]
    if mode == 0 or len(body) < 2:
        return body
    dtype = DATA_TYPES[body[0] % len(DATA_TYPES)]
    if mode == 1:
        return build_binlog(dtype, [bytes(body[2:])], event=1 + body[1] % 2, field_id=-1 if body[1] & 2 else 101)
    if mode == 2:
        values = bytes(body[2:]).split(b"\xff")
        return build_binlog(dtype, [payload(_column(dtype, values))], event=1 + body[1] % 2,
                            field_id=-1 if body[1] & 2 else 101)
    if not _LOGS:
        _LOGS.extend(s[1:] for s in seeds() if s[0] == 0)
    base = bytearray(_LOGS[body[0] % len(_LOGS)])
    at = body[1] % max(1, len(base))
    base[at : at + len(body) - 2] = body[2:]
    return bytes(base)


def one_input(data: bytes) -> None:
    if not data:
        return
    forged = forge(data)
    log = allow(ALLOWED, read_insert_log, forged)
    if log is not None:
        col = log.column
        if len(col.values) != log.num_rows or (col.valid is not None and len(col.valid) != log.num_rows):
            raise Bug(f"an insert log of {log.num_rows} rows has {len(col.values)} values")
    parts = allow(ALLOWED, lambda: list(iter_insert_log(forged, batch_rows=3)))
    if (parts is None) != (log is None) or (log is not None and sum(p.num_rows for p in parts or ()) != log.num_rows):
        raise Bug("iter_insert_log and read_insert_log disagree")
    packed = allow(ALLOWED, lambda: list(iter_insert_log(forged, batch_rows=3, packed=True)))
    if (packed is None) != (parts is None):
        raise Bug("the packed reading of an insert log fails where the decoded one does not, or the other way")
    for plain, as_is in zip(parts or (), packed or (), strict=True):  # repr: a NaN element is not equal to itself
        if isinstance(as_is.column.values, Packed) and repr(list(as_is.column.values)) != repr(plain.column.values):
            raise Bug("the packed reading of an insert log holds other values than the decoded one")
    delta = allow(ALLOWED, read_delta_log, forged)
    if delta is not None:
        if len(delta.pks) != delta.num_rows:
            raise Bug(f"a delta log of {delta.num_rows} timestamps has {len(delta.pks)} keys")
        if not isinstance(delta.pks, list) and delta.pks.dtype.kind != "i":
            raise Bug(f"a delta log's keys are {delta.pks.dtype}")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("binlog")
