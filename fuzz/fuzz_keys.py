"""Store keys and names (format/layout.py, format/shard.py, stores/base.py): for any collection name the manifest key
stays one segment under manifests/ and parses back to the name; any key parses to None or to what it names, and
nothing parsed leads outside its prefix; a run id is valid or a UsageError. The input is text (fuzz._common.text)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from fuzz._common import Bug, allow, as_text, text
from vecbackup.errors import UsageError
from vecbackup.format import layout
from vecbackup.format.shard import MAX_SHARDS, Shard, check_run, parse_record_key, record_key
from vecbackup.stores.base import valid_key

MAX_LEN = 512
ID = "20240101T000000.000000Z-0a1b2c3d"
SHA = "ab" * 32
_SEGMENT = re.compile(r"[A-Za-z0-9_.%\-]+")


def seeds() -> list[bytes]:
    names = ["articles", "..", ".", "a/b", "/etc/passwd", "a\\..\\b", "a\x00b", "%2E%2E", "é", "\ud800", "\udcff",
             f"manifests/%2E%2E/{ID}.json", f"manifests/a/{ID}.json", f"data/ab/{SHA}.vbc", f"digests/ab/{SHA}.vbd",
             "shards/a%2Fb/run-1/0001-of-0004.json", "run-1"]
    return [as_text(n, mode) for n in names for mode in (1, 2)]


def check_name(name: str) -> None:
    try:
        name.encode()
    except UnicodeEncodeError:
        if allow((UsageError,), layout.manifest_key, name, ID) is not None:
            raise Bug(f"manifest_key took {name!r}, which no key can hold") from None
        return
    if not name:
        return
    segment = layout.escape_name(name)
    key = layout.manifest_key(name, ID)
    if segment in (".", "..") or not _SEGMENT.fullmatch(segment) or key.split("/") != ["manifests", segment,
                                                                                         f"{ID}.json"]:
        raise Bug(f"collection {name!r} gives key {key!r}")
    if not valid_key(key) or PurePosixPath(key).parts != ("manifests", segment, f"{ID}.json"):
        raise Bug(f"collection {name!r} gives key {key!r}, which a folder would read otherwise")
    if layout.parse_manifest_key(key) != (name, ID):
        raise Bug(f"collection {name!r}: {key!r} parses to {layout.parse_manifest_key(key)!r}")
    rkey = record_key(name, "run-1", Shard(1, 4), "0123456789abcdef")
    if not valid_key(rkey) or parse_record_key(rkey) != (name, "run-1", Shard(1, 4), "0123456789abcdef"):
        raise Bug(f"collection {name!r}: shard record key {rkey!r} does not parse back")


def check_key(key: str) -> None:
    parsed = layout.parse_manifest_key(key)
    if parsed is not None:
        coll, backup_id = parsed
        if not layout.is_backup_id(backup_id) or not key.startswith("manifests/"):
            raise Bug(f"{key!r} parsed to {parsed!r}")
        rebuilt = allow((UsageError,), layout.manifest_key, coll, backup_id)
        if rebuilt is not None and layout.parse_manifest_key(rebuilt) != parsed:
            raise Bug(f"{key!r} parsed to {parsed!r}, whose key {rebuilt!r} does not")
    for parse, build in ((layout.parse_data_key, layout.data_key), (layout.parse_digests_key, layout.digests_key)):
        sha = parse(key)
        if sha is not None and build(sha) != key:
            raise Bug(f"{key!r} parsed to {sha!r}")
    record = parse_record_key(key)
    if record is not None:
        _coll, run, shard, _attempt = record
        if check_run(run) != run or not 0 <= shard.index < shard.count <= MAX_SHARDS:
            raise Bug(f"{key!r} parsed to {record!r}")


def one_input(data: bytes) -> None:
    s = text(data)
    check_name(s)
    check_key(s)
    run = allow((UsageError,), check_run, s)
    if run is not None and ("/" in run or run in (".", "..") or not valid_key(f"shards/c/{run}/0000-of-0001.json")):
        raise Bug(f"run id {run!r} accepted")


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("keys")
