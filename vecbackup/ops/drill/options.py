"""What a drill is asked to do (``vecbackup drill``'s options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vecbackup.errors import UsageError
from vecbackup.sources.base import SearchParams

#: the recall floor when no live source is there to compare with (see DrillOptions.min_recall)
DEFAULT_MIN_RECALL = 0.8


@dataclass
class DrillOptions:
    sample: int = 100
    queries: int = 100
    top_k: int = 10
    #: floor for the restored copy's recall@k against exact search; None: DEFAULT_MIN_RECALL when there is no
    #: source to compare with, no floor when there is (the comparison decides)
    min_recall: float | None = None
    recall_tolerance: float = 0.05  # with a source: how far below the source's recall the restored copy may be
    search: SearchParams = field(default_factory=SearchParams)
    max_age: float | None = None  # seconds
    max_source_drift: int | None = None  # rows
    source_collection: str | None = None  # the live collection to compare with (default: the backup's name)
    keep: bool = False
    seed: int | None = None
    index_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    index_types: dict[str, str] = field(default_factory=dict)  # per field, instead of the recorded index type
    index_fallback: bool = False
    drop_functions: bool = False  # restore without the collection's functions (RestoreOptions.drop_functions)
    field_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    collection_params: dict[str, Any] = field(default_factory=dict)
    #: on an encrypted store, show primary keys and field values in the report as they are (by default they are
    #: hashed: the report leaves the store's protection, e.g. as a CI artifact); an unencrypted store always shows
    #: them
    report_values: bool = False

    def __post_init__(self) -> None:
        """UsageError naming the parameter that is out of range, before anything is restored (the CLI's ranges)."""
        for name, low in (("sample", 0), ("queries", 0), ("top_k", 1), ("max_source_drift", 0)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise UsageError(f"DrillOptions({name}={value!r}) is out of range", hint=f"use an integer >= {low}")
        for name in ("min_recall", "recall_tolerance"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise UsageError(f"DrillOptions({name}={value!r}) is out of range", hint="use a number from 0 to 1")
        if self.max_age is not None and not (isinstance(self.max_age, (int, float)) and self.max_age >= 0):
            raise UsageError(f"DrillOptions(max_age={self.max_age!r}) is out of range",
                             hint="use seconds >= 0 (the CLI's --max-age takes 25h, 7d, ...)")


__all__ = ["DEFAULT_MIN_RECALL", "DrillOptions"]
