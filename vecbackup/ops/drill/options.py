"""What a drill is asked to do (``vecbackup drill``'s options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vecbackup.engines.base import SearchParams
from vecbackup.errors import check_number, check_whole
from vecbackup.words import either

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
            check_whole(name, getattr(self, name), low, of="DrillOptions", optional=name == "max_source_drift")
        check_number("min_recall", self.min_recall, 0, 1, of="DrillOptions", optional=True)
        check_number("recall_tolerance", self.recall_tolerance, 0, 1, of="DrillOptions")
        check_number("max_age", self.max_age, 0, of="DrillOptions", optional=True,
                     hint=either("use seconds, 0 or more", "use a duration, e.g. 25h or 7d"))


__all__ = ["DEFAULT_MIN_RECALL", "DrillOptions"]
