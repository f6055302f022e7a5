"""Qdrant as a Source: a collection described (engines/qdrant/model.py translates it), its points scrolled in id
order, one shard key at a time where the collection has custom sharding, or only the points a shard of a sharded
backup owns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vecbackup.engines.base import ENGINE_ROUTED, Described
from vecbackup.engines.qdrant.connection import Connection
from vecbackup.engines.qdrant.model import (
    as_json,
    records_to_chunk,
    shard_keys_from_cluster_info,
    spec_from_collection_info,
)
from vecbackup.errors import NotFound
from vecbackup.format.codec import Chunk
from vecbackup.format.shard import Shard, owned_batches
from vecbackup.schema import CollectionSpec


class QdrantSource(Connection):
    def describe(self, name: str) -> Described:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}",
                           hint="`vecbackup collections` shows what is there")
        info = self._call(f"describe {name!r}", self.client.get_collection, name)
        all_aliases = self._aliases()
        real = all_aliases.get(name, name)
        aliases = [a for a, c in all_aliases.items() if c == real and a != name]
        doc = as_json(info)
        if self.url.local:
            doc["payload_schema"] = {**_local_text_indexes(self.client, name), **(doc.get("payload_schema") or {})}
        custom = doc["config"].get("params", {}).get("sharding_method") == "custom"
        shard_keys = self._shard_keys(name) if custom else None
        described = spec_from_collection_info(name, doc, aliases=aliases, shard_keys=shard_keys)
        notes = list(described.notes) + self._connect_notes
        if self.url.local:
            notes.append("qdrant-client local mode keeps only the vector and sparse-vector settings and the metadata "
                         "of a collection, and its text indexes with scoring (no collection-wide HNSW, optimizer, "
                         "WAL, quantization or strict-mode settings, shard or replication settings, on_disk_payload "
                         "or other payload indexes); the backup holds what it keeps")
        return Described(described.spec, tuple(notes))

    def _shard_keys(self, name: str) -> list[dict[str, Any]]:
        try:
            info = self.client.collection_cluster_info(name)
            keys = shard_keys_from_cluster_info(info)
            if keys:
                return keys
        except Exception:
            pass
        res = self._call(f"list the shard keys of {name!r}", self.client.list_shard_keys, name)
        return [{"key": d.key} for d in (res.shard_keys or [])]

    def read_notes(self, spec: CollectionSpec) -> list[str]:
        return []

    def shown_partitions(self, spec: CollectionSpec, held: list[tuple[Any, tuple[str, ...]]]) -> list[str | None]:
        """Not told: a point id is unique within a shard key only, and a read without a shard key is not known to
        prefer one."""
        return [None] * len(held)

    @property
    def max_readers(self) -> int:
        """Streams read at once: a server serves several; local mode is one process's sqlite, one at a time."""
        return 1 if self.url.local else 4

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        if spec.extra.get("qdrant_shard_keys") is not None:
            return list(spec.partitions)
        return [ENGINE_ROUTED]

    def read(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard | None = None,
             ) -> Iterator[Chunk]:
        kwargs: dict[str, Any] = {"limit": batch_size, "with_vectors": True, "with_payload": True}
        if partition != ENGINE_ROUTED:
            kwargs["shard_key_selector"] = self._shard_key(spec, partition)
        if shard is not None:
            yield from self._shard_pages(spec, partition, batch_size, shard, kwargs.get("shard_key_selector"))
            return
        offset = None
        while True:
            records, offset = self._call(f"read points of {spec.name!r}", self.client.scroll, spec.name,
                                         offset=offset, **kwargs)
            if records:
                yield records_to_chunk(spec, partition, records)
            if offset is None:
                break

    def _shard_pages(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard, selector: Any,
                     ) -> Iterator[Chunk]:
        """The points ``shard`` owns: every point id (scrolled without payload or vectors), this shard's kept, the
        points retrieved ``batch_size`` at a time, in scroll (id) order."""
        kwargs: dict[str, Any] = {"limit": batch_size, "with_vectors": False, "with_payload": False}
        if selector is not None:
            kwargs["shard_key_selector"] = selector

        def id_pages() -> Iterator[list[Any]]:
            offset = None
            while True:
                records, offset = self._call(f"read point ids of {spec.name!r}", self.client.scroll, spec.name,
                                             offset=offset, **kwargs)
                yield [r.id for r in records]
                if offset is None:
                    return

        for batch in owned_batches(shard, id_pages(), batch_size):
            got = self._call(f"read points of {spec.name!r}", self.client.retrieve, spec.name, ids=batch,
                             with_payload=True, with_vectors=True,
                             **({"shard_key_selector": selector} if selector is not None else {}))
            if got:
                order = {k: i for i, k in enumerate(batch)}
                yield records_to_chunk(spec, partition, sorted(got, key=lambda r: order[r.id]))


def _local_text_indexes(client: Any, name: str) -> dict[str, dict[str, Any]]:
    """The text indexes with scoring qdrant-client's local mode keeps for collection ``name`` (for its text
    queries; the only payload indexes it keeps, and it lists none: its get_collection reports an empty
    payload_schema), as a server's payload_schema entries. Read from local mode's collection object; nothing where
    that is not there (another qdrant-client version, a client that is not local mode)."""
    collection = (getattr(getattr(client, "_client", None), "collections", None) or {}).get(name)
    indexes = getattr(collection, "text_indexes", None)
    if not isinstance(indexes, dict):
        return {}
    return {field: {"data_type": "text", "params": as_json(params)} for field, params in sorted(indexes.items())}
