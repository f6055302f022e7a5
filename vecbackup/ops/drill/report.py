"""A drill's report: one result per check, the recovery times, JSON (JUnit is vecbackup.ops.drill.junit), and how it
shows primary keys and field values (:class:`Values`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from vecbackup.format.crypto import REPORT_HASH, RepositoryKey
from vecbackup.stores.base import BlobStore
from vecbackup.stores.encrypted import is_encrypted

SUITE = "vecbackup-drill"
CHECKS = ("restore", "row_count", "sample_rows", "search_recall", "text_search", "backup_age")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
SHOWN, HASHED = "shown", "hashed"  # how a report shows primary keys and field values
_SHOWN_CHARS = 120


def canonical(value: Any) -> bytes:
    """The bytes a value is hashed from: its JSON, object keys sorted, numpy values as JSON numbers and lists, bytes
    as ``{"$bytes": "<hex>"}`` (NaN and infinities become null, as in any JSON)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                        default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    item = getattr(value, "item", None)  # a numpy scalar orjson does not take (float16)
    if callable(item):
        return item()
    return repr(value)


@dataclass(frozen=True)
class Values:
    """How a report shows a primary key or a field value: as it is (``repr``, cut to 120 characters), or, with a
    repository key, hashed (RepositoryKey.report_hash of :func:`canonical`): a row someone holds can be matched with
    a reported one only by someone who can open the store."""

    key: RepositoryKey | None = None

    @classmethod
    def for_store(cls, store: BlobStore, *, report_values: bool) -> Values:
        """Hashed on an encrypted store unless ``report_values``; shown on an unencrypted one."""
        if report_values or not is_encrypted(store):
            return cls()
        key = getattr(store, "repository_key", None)
        return cls(key if isinstance(key, RepositoryKey) else RepositoryKey.generate())  # unmatchable, never shown

    @property
    def mode(self) -> str:
        return SHOWN if self.key is None else HASHED

    def show(self, value: Any) -> str:
        if self.key is not None:
            return self.key.report_hash(canonical(value))
        text = repr(value)
        return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."


def report_hash(store: BlobStore, value: Any) -> str:
    """What a drill report on the encrypted ``store`` shows for ``value`` (a primary key or a field value as the
    engine returns it), to match a row one holds with a reported one. ValueError for an unencrypted store (whose
    reports show values)."""
    key = getattr(store, "repository_key", None)
    if not isinstance(key, RepositoryKey):
        raise ValueError(f"store {store.display} is not encrypted: its drill reports show values as they are")
    return key.report_hash(canonical(value))


@dataclass
class Check:
    name: str
    status: str = SKIPPED
    message: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                "seconds": round(self.seconds, 3), "details": self.details}


@dataclass
class DrillReport:
    backup_id: str
    collection: str
    store: str
    target: str
    scratch_collection: str
    started_at: str
    source: str | None = None
    finished_at: str = ""
    backup_completed_at: str = ""
    rto_seconds: float | None = None  # the restore's wall time
    rpo_seconds: float | None = None  # the backup's age when the drill ran
    seed: int = 0
    values: str = SHOWN  # how primary keys and field values appear in the checks (SHOWN or HASHED)
    scratch_dropped: bool = False
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "exit_code": 0 if self.ok else 12, "suite": SUITE,
            "backup_id": self.backup_id, "collection": self.collection, "store": self.store,
            "target": self.target, "source": self.source, "scratch_collection": self.scratch_collection,
            "scratch_dropped": self.scratch_dropped, "started_at": self.started_at, "finished_at": self.finished_at,
            "backup_completed_at": self.backup_completed_at,
            "rto_seconds": None if self.rto_seconds is None else round(self.rto_seconds, 3),
            "rpo_seconds": None if self.rpo_seconds is None else round(self.rpo_seconds, 3),
            "seed": self.seed, "values": self.values,
            "checks": [c.to_dict() for c in self.checks],
            "failures": [f"{c.name}: {c.message}" for c in self.failures],
            "notes": self.notes,
        }


def write_json(report: DrillReport, path: str) -> None:
    with open(path, "wb") as f:
        f.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str) + b"\n")


__all__ = ["CHECKS", "FAILED", "HASHED", "PASSED", "REPORT_HASH", "SHOWN", "SKIPPED", "SUITE", "Check", "DrillReport",
           "Values", "canonical", "report_hash", "write_json"]
