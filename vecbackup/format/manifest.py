"""The manifest: one JSON document per backup, written last (docs/FORMAT.md, "Manifest").

Pure: dataclasses <-> bytes. Readers accept every format version up to
FORMAT_VERSION and refuse newer ones with Unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from vecbackup.errors import CorruptData, Unsupported
from vecbackup.schema import CollectionSpec

FORMAT_NAME = "vecbackup"
FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)


@dataclass(frozen=True)
class DataObject:
    """One data chunk of a backup."""

    key: str
    partition: str
    rows: int
    size: int  # stored bytes
    sha256: str  # of the stored bytes

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "partition": self.partition, "rows": self.rows,
                "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataObject:
        return cls(key=d["key"], partition=d["partition"], rows=int(d["rows"]),
                   size=int(d["size"]), sha256=d["sha256"])


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
    format_version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        return {
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

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "manifest") -> Manifest:
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
                f"{where} has format version {version}; this vecbackup reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}",
                hint="upgrade vecbackup",
            )
        try:
            src = d["source"]
            stats = d.get("stats", {})
            return cls(
                backup_id=d["backup_id"],
                collection=CollectionSpec.from_dict(d["collection"]),
                source=SourceInfo(src["engine"], src.get("server_version", ""), src.get("address", "")),
                objects=tuple(DataObject.from_dict(o) for o in d["objects"]),
                partition_rows={str(k): int(v) for k, v in stats.get("partition_rows", {}).items()},
                started_at=d["started_at"],
                completed_at=d["completed_at"],
                tool_version=d.get("tool_version", ""),
                options=dict(d.get("options", {})),
                notes=tuple(d.get("notes", [])),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptData(f"{where} is missing or has a bad field ({e!r})") from None
