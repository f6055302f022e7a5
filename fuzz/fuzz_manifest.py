"""Manifests, shard records, closed-run marks and tombstones (format/manifest.py, format/shard.py,
format/tombstone.py): any bytes give CorruptData or Unsupported, or a manifest whose every object key is a data key
in the store and that writes back to JSON it reads again.

First byte: bit 0 = a manifest (0) or a shard record (1); bit 1 = the rest is the document (0), or (1) two bytes
picking a value in the valid document and JSON (else a string) to put there: field validators see any value.
"""

from __future__ import annotations

from typing import Any

import orjson

from fuzz._common import Bug, allow, manifest, shard_record
from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format.layout import parse_data_key
from vecbackup.format.manifest import Manifest
from vecbackup.format.shard import MAX_SHARDS, ClosedRun, ShardRecord
from vecbackup.format.tombstone import Tombstone
from vecbackup.stores.base import valid_key

MAX_LEN = 16384
ALLOWED = (CorruptData, Unsupported)
DOCS = (manifest().to_dict(), orjson.loads(shard_record().to_json()))


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


PATHS = tuple(paths(d) for d in DOCS)


def edited(which: int, body: bytes) -> bytes:
    """The valid document ``which`` with the value at the path ``body[:2]`` picks replaced by ``body[2:]``."""
    doc = orjson.loads(orjson.dumps(DOCS[which]))
    path = PATHS[which][int.from_bytes(body[:2], "little") % len(PATHS[which])]
    try:
        value = orjson.loads(body[2:])
    except orjson.JSONDecodeError:
        value = body[2:].decode("utf-8", "replace")
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return orjson.dumps(doc)


def seeds() -> list[bytes]:
    docs = [manifest().to_json(), manifest(select=False).to_json(), orjson.dumps(manifest().to_dict())]
    out = [b"\x00" + d for d in docs] + [b"\x01" + shard_record().to_json()]
    values = [b"null", b"-1", b"18446744073709551615", b"1e300", b'"../../etc/passwd"', b"[[0, 1]]", b"{}", b"x"]
    return out + [bytes([2 | which]) + i.to_bytes(2, "little") + v for which in (0, 1)
                  for i in range(0, len(PATHS[which]), 7) for v in values]


def check(m: Manifest) -> None:
    for o in m.objects:
        if not isinstance(o.key, str) or parse_data_key(o.key) is None or not valid_key(o.key):
            raise Bug(f"manifest accepted object key {o.key!r}")
    again = Manifest.from_json(m.to_json())  # what show --json, commit and a reusing backup write
    if [o.key for o in again.objects] != [o.key for o in m.objects]:
        raise Bug("a manifest read back differs")


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:] if not data[0] & 2 else edited(data[0] & 1, data[1:])
    if data[0] & 1:
        record = allow(ALLOWED, ShardRecord.from_json, body, where="shard record")
        if record is not None:
            if not 0 <= record.shard.index < record.shard.count <= MAX_SHARDS:
                raise Bug(f"shard record accepted shard {record.shard}")
            check(record.manifest)
            if ShardRecord.from_json(record.to_json(), where="again") != record:
                raise Bug("a shard record read back differs")
        for parse in (Tombstone.from_json, ClosedRun.from_json):  # the other small JSON objects of a store
            small = allow(ALLOWED, parse, body, where="x")
            if small is not None and parse(small.to_json(), where="again") != small:
                raise Bug(f"{type(small).__name__} read back differs")
        return
    m = allow(ALLOWED, Manifest.from_json, body)
    if m is not None:
        check(m)


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("manifest")
