"""The manifest: one JSON document per backup, written last (docs/FORMAT.md, "Manifest").

Pure: dataclasses <-> bytes. Readers accept every format version up to
FORMAT_VERSION and refuse newer ones with Unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.format.duplicates import DuplicateKeys
from vecbackup.format.layout import data_key, digests_key, parse_data_key
from vecbackup.format.ranges import Ranges, check_ranges, count, format_select, parse_select, select_positions
from vecbackup.format.sealed import refuse_sealed
from vecbackup.schema import V3_TYPES, CollectionSpec

if TYPE_CHECKING:
    import numpy as np

    from vecbackup.format.segments import SegmentRecord

FORMAT_NAME = "vecbackup"
#: version 2 adds ``select`` (a backup that uses some rows of an object); version 3 adds ``collection.functions``
#: (a collection whose functions fill fields the chunks do not hold: a reader that ignored them would restore the
#: collection without them) and the column types GEOMETRY, TIMESTAMPTZ and ARRAY of STRUCT (schema.V3_TYPES).
#: A manifest is written as the lowest version that holds it, so a backup without them stays readable by every
#: earlier vecbackup, and one with them is refused by an earlier vecbackup as a newer format (exit 9) rather than
#: as a damaged manifest. Version 4 adds a segment piece's ``select`` (a segment backup that found a rewritten
#: segment's rows in objects an earlier backup stored): a reader of version 3 would take such a piece for the first
#: rows of its object, and a backup it made on top would list other rows than the segment holds
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)


@dataclass(frozen=True)
class DataObject:
    """One data chunk of a backup: all its rows, or (``select``) the ranges ``(start, count)`` of them the backup
    holds, ascending and apart; ``rows`` counts the rows the backup holds."""

    key: str
    partition: str
    rows: int
    size: int  # stored bytes
    sha256: str  # of the stored bytes
    select: Ranges | None = None

    @property
    def stored_keys(self) -> tuple[str, str]:
        """The store keys the object stands for: its data and its row digests."""
        return self.key, digests_key(self.sha256)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"key": self.key, "partition": self.partition, "rows": self.rows,
                             "size": self.size, "sha256": self.sha256}
        if self.select is not None:
            d["select"] = format_select(self.select)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataObject:
        select = d.get("select")
        if not isinstance(d["key"], str) or parse_data_key(d["key"]) is None:  # it goes to the store as it is
            raise ValueError(f"{d['key']!r} is not a data object key (data/<aa>/<sha256>.vbc)")
        data_key(d["sha256"])  # ValueError unless 64 hex digits: it names the object's row digests in the store
        obj = cls(key=d["key"], partition=d["partition"], rows=count(d["rows"]),
                  size=count(d["size"]), sha256=d["sha256"],
                  select=None if select is None else parse_select(select))
        if obj.select is not None:
            check_ranges(obj.select, obj.rows, obj.key)
        return obj

    def positions(self) -> np.ndarray:
        """The positions in the object of the rows the backup holds (all when no ``select``), in order."""
        return select_positions(self.select, self.rows)


def _disjoint_union(a: Ranges, b: Ranges) -> Ranges | None:
    """The ranges of ``a`` and ``b`` together, or None if they share a row (computed on ranges, never on rows: a
    shard record may claim any count)."""
    joined = sorted((*a, *b))
    out: list[tuple[int, int]] = []
    for start, n in joined:
        if out and start < out[-1][0] + out[-1][1]:
            return None
        if out and start == out[-1][0] + out[-1][1]:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((start, n))
    return tuple(out)


def merge_objects(objects: Any) -> tuple[DataObject, ...]:
    """The entries in order, with the parts of one object (its rows several streams or shards of a backup each
    reused) joined into one entry where they are disjoint; anything else is kept as it is."""
    out: list[DataObject] = []
    at: dict[tuple[str, str], int] = {}
    for o in objects:
        j = at.get((o.key, o.partition))
        prev = out[j] if j is not None else None
        if prev is not None and j is not None and prev.select is not None and o.select is not None:
            joined = _disjoint_union(prev.select, o.select)
            if joined is not None:
                out[j] = DataObject(o.key, o.partition, prev.rows + o.rows, o.size, o.sha256, joined)
                continue
        if j is None and o.select is not None:
            at[(o.key, o.partition)] = len(out)
        out.append(o)
    return tuple(out)


@dataclass(frozen=True)
class Incremental:
    """How a backup was written: the earlier backup whose objects it could reuse (None: it reused none), and what
    it had to upload. Not needed to restore; reported by ``show``, ``list --json`` and ``stats``."""

    base: str | None
    new_objects: int  # data objects uploaded by this backup
    new_bytes: int  # their bytes (and their row digests')
    reused_rows: int  # rows found in the base and not uploaded again

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "new_objects": self.new_objects, "new_bytes": self.new_bytes,
                "reused_rows": self.reused_rows}

    @classmethod
    def from_dict(cls, d: Any) -> Incremental | None:
        if not isinstance(d, dict):
            return None
        base = d.get("base")
        return cls(base=None if base is None else str(base), new_objects=count(d.get("new_objects", 0)),
                   new_bytes=count(d.get("new_bytes", 0)), reused_rows=count(d.get("reused_rows", 0)))


@dataclass(frozen=True)
class SourceInfo:
    engine: str  # "milvus"
    server_version: str
    address: str  # display form of the URL: never a secret


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    collection: CollectionSpec
    source: SourceInfo
    objects: tuple[DataObject, ...]
    partition_rows: dict[str, int]
    started_at: str  # ISO 8601 UTC
    completed_at: str
    tool_version: str
    options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    incremental: Incremental | None = None
    #: keys held by more than one partition (format/duplicates.py); None: not recorded (an earlier vecbackup)
    duplicate_keys: DuplicateKeys | None = None
    #: a segment backup: where its rows came from (format/segments.py); None for a backup read through the query
    #: path. Not needed to restore: earlier readers ignore it
    segments: tuple[SegmentRecord, ...] | None = None

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def format_version(self) -> int:
        """The version this manifest is written as: the lowest that holds it (4: a segment piece with ``select``;
        3: a collection with functions or a column of a type of version 3; 2: an object with ``select``; else 1)."""
        if any(p.select is not None for r in self.segments or () for p in r.pieces):
            return 4
        if self.collection.functions or any(f.type in V3_TYPES or f.is_struct_array for f in self.collection.fields):
            return 3
        return 2 if any(o.select is not None for o in self.objects) else 1

    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "backup_id": self.backup_id,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "source": {"engine": self.source.engine, "server_version": self.source.server_version,
                       "address": self.source.address},
            "collection": self.collection.to_dict(),
            "stats": {"rows": self.rows, "bytes": self.size, "objects": len(self.objects),
                      "partition_rows": self.partition_rows},
            "options": self.options,
            "notes": list(self.notes),
            "objects": [o.to_dict() for o in self.objects],
        }
        if self.incremental is not None:
            d["incremental"] = self.incremental.to_dict()
        if self.duplicate_keys is not None:
            d["duplicate_keys"] = self.duplicate_keys.to_dict()
        if self.segments is not None:
            d["segments"] = [r.to_dict() for r in self.segments]
        return d

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "manifest") -> Manifest:
        refuse_sealed(data, where)
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise CorruptData(f"{where} is not valid JSON ({e})") from None
        return cls.from_dict(d, where=where)

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "manifest") -> Manifest:
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            raise CorruptData(f"{where} is not a vecbackup manifest")
        version = d.get("format_version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise Unsupported(
                f"{where} has format version {version!r}; this vecbackup reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}",
                hint="upgrade vecbackup",
            )
        try:
            src = d["source"]
            stats = d.get("stats", {})
            spec = CollectionSpec.from_dict(d["collection"])
            m = cls(
                backup_id=d["backup_id"],
                collection=spec,
                source=SourceInfo(src["engine"], src.get("server_version", ""), src.get("address", "")),
                objects=tuple(DataObject.from_dict(o) for o in d["objects"]),
                partition_rows={str(k): count(v) for k, v in stats.get("partition_rows", {}).items()},
                started_at=d["started_at"],
                completed_at=d["completed_at"],
                tool_version=d.get("tool_version", ""),
                options=dict(d.get("options", {})),
                notes=tuple(d.get("notes", [])),
                incremental=Incremental.from_dict(d.get("incremental")),
                duplicate_keys=None if d.get("duplicate_keys") is None else DuplicateKeys.from_dict(
                    d["duplicate_keys"], spec.partitions),
                segments=_segments(d.get("segments")),
            )
            _check_objects(m)
            return m
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptData(f"{where} is missing or has a bad field ({e!r})") from None


def _segments(value: Any) -> tuple[SegmentRecord, ...] | None:
    from vecbackup.format.segments import SegmentRecord  # (it builds on DataObject)

    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("segments is not a list")
    return tuple(SegmentRecord.from_dict(r) for r in value)


def _check_objects(m: Manifest) -> None:
    """ValueError unless every mapping read with dict() is a JSON object: dict() also takes a list of pairs, and
    [[1, 2]] read as {1: 2} could not be written back (orjson refuses a key that is not a string)."""
    spec = m.collection
    mappings = [("options", m.options), ("collection properties", spec.properties), ("collection extra", spec.extra),
                *((f"field {f.name!r} extra", f.extra) for f in spec.fields),
                *((f"index {i.index_name!r} params", i.params or {}) for i in spec.indexes),
                *((f"function {fn.name!r} params", fn.params) for fn in spec.functions)]
    for what, mapping in mappings:
        if not all(isinstance(k, str) for k in mapping):
            raise ValueError(f"{what} is not a JSON object")
