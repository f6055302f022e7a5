"""Data chunks (format/codec.py): any bytes give CorruptData or Unsupported from decode_chunk and
read_chunk_header, or a chunk that matches its header; never an allocation beyond what the zstd ratio bound lets
the input claim (the harness runs under an RSS limit).

Random bytes rarely get past the magic and the checksums, so the first byte picks how the rest becomes a chunk:

* 0: as it is;
* 1: two bytes of header length, the header JSON, the buffer area: wrapped in a right prefix, every checksum fixed;
* 2: a whole chunk with every checksum fixed (header CRC, and each buffer's CRC where the header places it);
* 3: a valid chunk (byte 1 picks it) with one buffer (byte 2 picks it) replaced by the rest, zstd-compressed,
  its sizes and checksums right: the decoders then see any buffer content (lengths that overrun their data,
  bad UTF-8, unsorted sparse indices, booleans other than 0/1...).
"""

from __future__ import annotations

import struct
import zlib

import orjson
import zstandard

from fuzz._common import Bug, allow, chunk, fix_checksums, split_chunk, with_header
from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format.codec import decode_chunk, read_chunk_header

MAX_LEN = 16384
ALLOWED = (CorruptData, Unsupported)
CHUNKS = [chunk(0), chunk(1), chunk(4)]
_CCTX = zstandard.ZstdCompressor(level=1)


def seeds() -> list[bytes]:
    out = []
    for c in CHUNKS:
        header, area = split_chunk(c)
        out += [b"\x00" + c, b"\x01" + struct.pack("<H", len(header)) + header + area, b"\x02" + c]
    buffers = sum(len(col["buffers"]) for col in orjson.loads(split_chunk(CHUNKS[2])[0])["columns"])
    out += [b"\x03\x02" + bytes([i]) + struct.pack("<4I", 1, 0, 2, 3) for i in range(buffers)]
    return out


def replace_buffer(data: bytes, which: int, raw: bytes) -> bytes:
    header, area = split_chunk(data)
    doc = orjson.loads(header)
    buffers = [b for col in doc["columns"] for b in col["buffers"]]
    at = which % len(buffers)
    parts, offset = [], 0
    for i, b in enumerate(buffers):
        stored = _CCTX.compress(raw) if i == at else area[b["offset"] : b["offset"] + b["size"]]
        if i == at:
            b["raw_size"], b["shuffle"] = len(raw), 0
        b["offset"], b["size"], b["crc32"] = offset, len(stored), zlib.crc32(stored)
        offset += len(stored)
        parts.append(stored)
    return with_header(orjson.dumps(doc), b"".join(parts))


def forge(data: bytes) -> bytes:
    mode, body = data[0] & 3, data[1:]
    if mode == 0:
        return body
    if mode == 1:
        hlen = min(int.from_bytes(body[:2], "little"), max(0, len(body) - 2))
        return fix_checksums(with_header(body[2 : 2 + hlen], body[2 + hlen :]))
    if mode == 2:
        return fix_checksums(body)
    if len(body) < 2:
        return body
    return replace_buffer(CHUNKS[body[0] % len(CHUNKS)], body[1], body[2:])


def one_input(data: bytes) -> None:
    if not data:
        return
    forged = forge(data)
    header = allow(ALLOWED, read_chunk_header, forged)
    decoded = allow(ALLOWED, decode_chunk, forged)
    if decoded is None:
        return
    if header is None or decoded.num_rows != header["rows"]:
        raise Bug("decode_chunk accepted a chunk read_chunk_header refused, or disagrees on its rows")
    for name, col in decoded.columns.items():
        if len(col.values) != decoded.num_rows or (col.valid is not None and len(col.valid) != decoded.num_rows):
            raise Bug(f"column {name!r} has {len(col.values)} values for {decoded.num_rows} rows")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("chunk")
