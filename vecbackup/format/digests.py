"""Row digests: a 16-byte digest (truncated SHA-256) of each row's values, and the ``.vbd`` object that holds the
digests of one data chunk's rows (docs/FORMAT.md, "Incremental uploads"). Pure.

A backup finds the rows it already has by their digests: a row read from the database whose digest is among the
previous backup's is not stored again; the new manifest points at the row in the object that holds it. So an insert,
update or delete changes what is uploaded by one row, wherever it falls, however the rows are batched.

The digest of a row is the first 16 bytes of the SHA-256 of its **cells**, one per field in schema order, concatenated.
A cell is one byte (1: value present, 0: null) followed by the row's part of each buffer the chunk format stores for
the field, uncompressed and little-endian, in the order of the chunk header:

* fixed-width fields (scalars, dense vectors): the row's value (zeros when null);
* VARCHAR, JSON: the row's length (uint32) then its bytes;
* ARRAY: the element count (uint32) then the elements (VARCHAR elements: their uint32 lengths, then their bytes);
* SPARSE_FLOAT_VECTOR: the entry count (uint32), then the indices (uint32), then the values (float32);
* GEOMETRY: as VARCHAR; TIMESTAMPTZ: fixed-width (its int64 of microseconds);
* ARRAY of STRUCT: the struct count (uint32), then for each struct field in order the row's structs' part of its
  buffers (a dense vector field: the structs' vectors; a VARCHAR field: their uint32 lengths, then their bytes).

Digest object layout::

    0   4  magic b"VBRD"
    4   2  uint16 LE version (1)
    6   2  uint16 LE flags (0)
    8   4  uint32 LE rows R
    12  4  uint32 LE CRC-32 of bytes 0..11 followed by the digests
    16  16R  the digests, in the chunk's row order
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator, Sequence

import numpy as np

from vecbackup.errors import CorruptData
from vecbackup.format.codec import DEFAULT_LEVEL, Chunk, encode_chunk
from vecbackup.format.sealed import refuse_sealed
from vecbackup.schema import Field

MAGIC = b"VBRD"
VERSION = 1
DIGEST_SIZE = 16
#: numpy's type for one digest: 16 opaque bytes, sorted and compared bytewise
DIGEST = np.dtype(f"V{DIGEST_SIZE}")

_HEAD = struct.Struct("<4sHHI")
_CRC = struct.Struct("<I")
_U1 = np.dtype("|u1")
_U4 = np.dtype("<u4")

Buffers = Sequence[Sequence[tuple[str, np.ndarray]]]


def encode_with_digests(fields: Sequence[Field], chunk: Chunk, *, level: int = DEFAULT_LEVEL
                        ) -> tuple[bytes, np.ndarray]:
    """The chunk's ``.vbc`` bytes and the digest of each of its rows, from one pass over its values."""
    raw: list[list[tuple[str, np.ndarray]]] = []
    data = encode_chunk(fields, chunk, level=level, raw=raw)
    return data, digests_of_buffers(raw, chunk.num_rows)


def row_digests(fields: Sequence[Field], chunk: Chunk) -> np.ndarray:
    """The digest of each row of ``chunk`` (shape ``(rows,)``, dtype DIGEST); ValueError as encode_chunk."""
    raw: list[list[tuple[str, np.ndarray]]] = []
    encode_chunk(fields, chunk, level=0, raw=raw)
    return digests_of_buffers(raw, chunk.num_rows)


#: a run of fixed-width bytes at least this wide per row is hashed where it lies; narrower parts of a row are
#: gathered into one buffer first (one hash update a row for all of them instead of one each)
_WIDE = 64

Segment = tuple[np.ndarray, "int | np.ndarray"]


def _segments(raw: Buffers, n: int) -> list[Segment]:
    """The cells as segments in row order: (bytes, row width) for runs of fixed-width parts, (bytes, row offsets:
    n + 1 of them) for the rest."""
    segments: list[Segment] = []
    fixed: list[np.ndarray] = []

    def flush() -> None:
        if fixed:
            block = np.ascontiguousarray(np.hstack(fixed))
            segments.append((block.reshape(-1), block.shape[1]))
            fixed.clear()

    for bufs in raw:
        payload = list(bufs)
        if payload and payload[0][0] == "validity":
            present = np.unpackbits(payload.pop(0)[1], count=n, bitorder="little")
        else:
            present = np.ones(n, dtype=_U1)
        fixed.append(present.astype(_U1).reshape(n, 1))
        if [k for k, _ in payload] == ["values"]:
            values = payload[0][1].view(_U1).reshape(n, -1)
            if values.shape[1] >= _WIDE:  # hashed where it lies (a vector column): not copied beside its neighbours
                flush()
                segments.append((values.reshape(-1), values.shape[1]))
            else:
                fixed.append(values)
            continue
        counts = payload[0][1].astype(_U4)
        fixed.append(counts.view(_U1).reshape(n, 4))
        flush()
        elems = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=elems[1:])
        prev: np.ndarray | None = None
        for kind, arr in payload[1:]:
            if kind == "elem_data":
                assert prev is not None
                byte_at = np.zeros(len(prev) + 1, dtype=np.int64)
                np.cumsum(prev, out=byte_at[1:])
                segments.append((np.ascontiguousarray(arr).view(_U1).reshape(-1), byte_at[elems]))
            else:  # one element per entry, or (the vectors of a struct field) ``per`` elements each
                per = arr.size // max(int(elems[-1]), 1)
                segments.append((np.ascontiguousarray(arr).view(_U1).reshape(-1), elems * (per * arr.dtype.itemsize)))
            prev = arr
    flush()
    return segments


def _gathered(run: list[Segment], n: int) -> Segment:
    """Segments of a row side by side, gathered into one buffer of the rows one after the other: (bytes, row
    offsets). The bytes of row i are those of each segment's row i, in order."""
    sources, starts, lengths, base = [], [], [], 0
    for buf, at in run:
        offsets = np.arange(n + 1, dtype=np.int64) * at if isinstance(at, int) else np.asarray(at, dtype=np.int64)
        start, length = offsets[:-1], offsets[1:] - offsets[:-1]
        sources.append(buf)
        starts.append(start + base)
        lengths.append(length)
        base += len(buf)
    src = np.concatenate(sources) if len(sources) > 1 else sources[0]
    lens = np.stack(lengths, axis=1).reshape(-1)  # row by row, segment by segment
    begin = np.stack(starts, axis=1).reshape(-1)
    ends = np.cumsum(lens)
    total = int(ends[-1]) if len(ends) else 0
    index = np.repeat(begin - (ends - lens), lens) + np.arange(total, dtype=np.int64)
    rows = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens.reshape(n, len(run)).sum(axis=1), out=rows[1:])
    return src[index], rows


def _parts(segments: list[Segment], n: int) -> list[tuple[memoryview, int | list[int]]]:
    """The segments as fewer parts to hash a row at a time: wide fixed-width runs as they are, everything between
    them gathered into one buffer (_gathered)."""
    parts: list[tuple[memoryview, int | list[int]]] = []
    run: list[Segment] = []

    def close() -> None:
        if run:
            buf, at = run[0] if len(run) == 1 and isinstance(run[0][1], int) else _gathered(run, n)
            parts.append((buf.data, at if isinstance(at, int) else np.asarray(at).tolist()))
            run.clear()

    for seg in segments:
        if isinstance(seg[1], int) and seg[1] >= _WIDE:
            close()
            parts.append((seg[0].data, seg[1]))
        else:
            run.append(seg)
    close()
    return parts


def digests_of_buffers(raw: Buffers, n: int) -> np.ndarray:
    """Row digests from a chunk's uncompressed buffers (as ``encode_chunk(raw=...)`` gives them)."""
    if n == 0:
        return np.empty(0, dtype=DIGEST)
    sha = hashlib.sha256  # twice as fast as BLAKE2b where the CPU has SHA instructions
    rows = [_row_views(mv, at, n) for mv, at in _parts(_segments(raw, n), n)]
    if len(rows) == 1:
        digests = [sha(a).digest() for a in rows[0]]
    elif len(rows) == 2:  # fixed-width fields, then the others; or the key, then a vector
        digests = []
        for a, b in zip(*rows, strict=True):
            h = sha(a)
            h.update(b)
            digests.append(h.digest())
    elif len(rows) == 3:  # the key, a vector, then the others
        digests = []
        for a, b, c in zip(*rows, strict=True):
            h = sha(a)
            h.update(b)
            h.update(c)
            digests.append(h.digest())
    else:
        digests = []
        for row in zip(*rows, strict=True):
            h = sha()
            for part in row:
                h.update(part)
            digests.append(h.digest())
    full = np.frombuffer(b"".join(digests), dtype=_U1).reshape(n, -1)  # whole SHA-256 digests, then truncated
    return np.ascontiguousarray(full[:, :DIGEST_SIZE]).view(DIGEST).reshape(n)


def _row_views(mv: memoryview, at: int | list[int], n: int) -> Iterator[memoryview]:
    """Each row's part of a buffer: ``at`` bytes a row, or between the row offsets ``at``."""
    if isinstance(at, int):
        return map(mv.__getitem__, map(slice, range(0, n * at, at), range(at, (n + 1) * at, at)))
    return map(mv.__getitem__, map(slice, at[:-1], at[1:]))


def encode_digests(digests: np.ndarray) -> bytes:
    body = np.ascontiguousarray(digests, dtype=DIGEST).tobytes()
    head = _HEAD.pack(MAGIC, VERSION, 0, len(body) // DIGEST_SIZE)
    return head + _CRC.pack(zlib.crc32(body, zlib.crc32(head))) + body


def decode_digests(data: bytes, *, where: str = "digest object") -> np.ndarray:
    """The digests a ``.vbd`` object holds; CorruptData if it is damaged or not one."""
    refuse_sealed(data, where)
    if len(data) < 16:
        raise CorruptData(f"{where} is truncated ({len(data)} bytes)")
    magic, version, _flags, rows = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CorruptData(f"{where} is not a vecbackup row-digest object")
    if version != VERSION:
        raise CorruptData(f"{where} has version {version}; this vecbackup reads version {VERSION}")
    if len(data) != 16 + rows * DIGEST_SIZE:
        raise CorruptData(f"{where} has {len(data)} bytes, its header says {rows} rows")
    (crc,) = _CRC.unpack_from(data, 12)
    if zlib.crc32(data[16:], zlib.crc32(data[:12])) != crc:
        raise CorruptData(f"{where} fails its CRC-32 check")
    return np.frombuffer(data, dtype=DIGEST, offset=16)


__all__ = ["DIGEST", "DIGEST_SIZE", "decode_digests", "digests_of_buffers", "encode_digests", "encode_with_digests",
           "row_digests"]
