"""Row digests (format/digests.py): any bytes give CorruptData from decode_digests, or exactly the digests the header
counts. First byte: even = as it is, odd = with the CRC fixed (so the length and version checks are reached)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from fuzz._common import Bug, allow
from vecbackup.errors import CorruptData
from vecbackup.format.digests import DIGEST, decode_digests, encode_digests

MAX_LEN = 1024


def seeds() -> list[bytes]:
    objs = [encode_digests(np.frombuffer(bytes(range(16)) * n, dtype=DIGEST)) for n in (0, 1, 3)]
    return [bytes([mode]) + o for o in objs for mode in (0, 1)]


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    if data[0] & 1 and len(body) >= 16:
        body = body[:12] + struct.pack("<I", zlib.crc32(body[16:], zlib.crc32(body[:12]))) + body[16:]
    out = allow((CorruptData,), decode_digests, body)
    if out is not None and (out.dtype != DIGEST or len(out) != struct.unpack_from("<I", body, 8)[0]):
        raise Bug(f"decode_digests gave {len(out)} digests of {out.dtype}")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("digests")
