"""A drill's report: one result per check, the recovery times, JSON (JUnit is vecbackup.report_junit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SUITE = "vecbackup-drill"
CHECKS = ("restore", "row_count", "sample_rows", "search_recall", "backup_age")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


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
            "seed": self.seed,
            "checks": [c.to_dict() for c in self.checks],
            "failures": [f"{c.name}: {c.message}" for c in self.failures],
            "notes": self.notes,
        }


def write_json(report: DrillReport, path: str) -> None:
    with open(path, "wb") as f:
        f.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str) + b"\n")


__all__ = ["CHECKS", "FAILED", "PASSED", "SKIPPED", "SUITE", "Check", "DrillReport", "write_json"]
