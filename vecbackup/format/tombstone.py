"""Tombstones: the mark a deleted backup leaves (docs/FORMAT.md, "Tombstones"). Pure.

``delete`` and ``prune`` write ``tombstones/<collection>/<backup-id>.json`` (create-if-absent; sealed in an encrypted
store like every object but the settings and key files) before they remove the manifest. A backup with a tombstone
does not exist: it is never listed, restored, verified or used as the base of an incremental backup, and ``gc``
removes its manifest if one is there. So a manifest put back after its backup was deleted (someone who can write the
store replaying it) stays deleted. Tombstones are never removed: they are small, and a removed one would let the
manifest come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from vecbackup.errors import CorruptData
from vecbackup.format.layout import canonical_name, escape_name, is_backup_id
from vecbackup.format.sealed import refuse_sealed

TOMBSTONES = "tombstones/"
TOMBSTONE_FORMAT = "vecbackup-tombstone"
_SUFFIX = ".json"


def tombstones_prefix(collection: str | None = None) -> str:
    return TOMBSTONES if collection is None else f"{TOMBSTONES}{escape_name(collection)}/"


def tombstone_key(collection: str, backup_id: str) -> str:
    if not is_backup_id(backup_id):
        raise ValueError(f"not a backup id: {backup_id!r}")
    return f"{tombstones_prefix(collection)}{backup_id}{_SUFFIX}"


def parse_tombstone_key(key: str) -> tuple[str, str] | None:
    """(collection, backup id) of a tombstone key, or None for anything else."""
    if not key.startswith(TOMBSTONES) or not key.endswith(_SUFFIX):
        return None
    parts = key[len(TOMBSTONES):-len(_SUFFIX)].split("/")
    if len(parts) != 2 or not is_backup_id(parts[1]):
        return None
    name = canonical_name(parts[0])
    return None if name is None else (name, parts[1])


@dataclass(frozen=True)
class Tombstone:
    """A deleted backup: which, when, by what (``delete``, ``prune``), and the run of a sharded backup."""

    collection: str
    backup_id: str
    deleted_at: str
    by: str
    run: str | None = None

    @property
    def key(self) -> str:
        return tombstone_key(self.collection, self.backup_id)

    def to_json(self) -> bytes:
        d: dict[str, object] = {"format": TOMBSTONE_FORMAT, "version": 1, "collection": self.collection,
                                "backup_id": self.backup_id, "deleted_at": self.deleted_at, "by": self.by}
        if self.run is not None:
            d["run"] = self.run
        return orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> Tombstone:
        refuse_sealed(data, where)
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CorruptData(f"{where} is not valid JSON") from None
        if not isinstance(d, dict) or d.get("format") != TOMBSTONE_FORMAT or d.get("version") != 1:
            raise CorruptData(f"{where} is not a vecbackup tombstone of version 1")
        values = [d.get(k) for k in ("collection", "backup_id", "deleted_at", "by")]
        run = d.get("run")
        if not all(isinstance(v, str) for v in values) or not (run is None or isinstance(run, str)):
            raise CorruptData(f"{where} has a bad field")
        collection, backup_id, deleted_at, by = values
        return cls(collection, backup_id, deleted_at, by, run)  # type: ignore[arg-type]


__all__ = ["TOMBSTONES", "Tombstone", "parse_tombstone_key", "tombstone_key", "tombstones_prefix"]
