"""The two protocols between operations and databases: Source (read) and Sink (write)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vecbackup.format.codec import Chunk
from vecbackup.format.manifest import SourceInfo
from vecbackup.schema import CollectionSpec

if TYPE_CHECKING:
    from vecbackup.mapping import Mapping

#: partition value for rows the engine routes itself (partition-key collections)
ENGINE_ROUTED = ""


@dataclass(frozen=True)
class Described:
    spec: CollectionSpec
    notes: tuple[str, ...] = ()  # what the engine could not tell us (e.g. unreported index parameters)


class Source(Protocol):
    display: str

    def info(self) -> SourceInfo: ...

    def list_collections(self) -> list[str]: ...

    def describe(self, name: str) -> Described:
        """Schema, indexes, partitions, aliases and properties; NotFound for an unknown collection."""
        ...

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        """The partitions to read one by one (or [ENGINE_ROUTED] for one pass over everything)."""
        ...

    def count(self, spec: CollectionSpec) -> int:
        """Rows in the collection now (strong consistency)."""
        ...

    def read(self, spec: CollectionSpec, partition: str, batch_size: int) -> Iterator[Chunk]:
        """Every row of a partition, ``batch_size`` rows at a time, as columnar chunks."""
        ...

    def close(self) -> None: ...


@dataclass
class RestorePlan:
    """How a backup's collection is recreated; built before any data moves."""

    target: str  # final collection name
    staging: str  # name the data is loaded under before it takes the final name
    replace: bool  # drop an existing target at the end
    keep_ids: bool  # insert recorded primary keys even for auto-id collections
    index_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per field, user-given
    index_fallback: bool = False
    aliases: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)  # what was done differently, for the report
    shards: int | None = None  # topology override (--shards); None = as recorded. Qdrant only
    replication_factor: int | None = None  # topology override (--replication-factor); None = as recorded
    mapping: Mapping | None = None  # how the backup maps onto the target's engine (set by ops.restore.plan_restore)


class Sink(Protocol):
    display: str

    def info(self) -> SourceInfo: ...

    def has_collection(self, name: str) -> bool: ...

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        """Raise Unsupported, naming the field, if the target cannot hold this collection."""
        ...

    def create(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        """Create the staging collection with its schema and partitions (no indexes yet)."""
        ...

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        """Insert one chunk into the staging collection; returns rows written."""
        ...

    def finish(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        """Flush, build every index, load, move staging to the target name, recreate aliases."""
        ...

    def abort(self, plan: RestorePlan) -> None:
        """Drop the staging collection after a failure (never the target)."""
        ...

    def count(self, name: str) -> int: ...

    def close(self) -> None: ...
