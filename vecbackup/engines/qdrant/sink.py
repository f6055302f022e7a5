"""Qdrant as a Sink: a collection created as recorded (engines/qdrant/model.py plans the calls), points upserted,
aliases made; ``--drop-existing`` points the target name at the restored collection as an alias (Qdrant cannot
rename); the lease of a restore is a key of the collection's metadata."""

from __future__ import annotations

from typing import Any

import orjson

from vecbackup.engines.base import ENGINE_ROUTED, KeyCopies, PhaseReport, RestorePlan
from vecbackup.engines.qdrant.connection import Connection
from vecbackup.engines.qdrant.model import (
    LOCAL_MODE_DROPS,
    chunk_to_points,
    create_calls,
    keeps_in_local_mode,
    upsert_batches,
)
from vecbackup.errors import NotFound, Unsupported, VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.format.lease import LEASE_KEY
from vecbackup.schema import CollectionSpec


class QdrantSink(Connection):
    #: Qdrant cannot rename a collection: a restore fills the target directly (abort() deletes it on failure),
    #: or with --drop-existing a staging collection that the target name then points at as an alias
    renames = False

    @property
    def max_writers(self) -> int:
        """Upserts in flight at once: a server takes several; local mode is one process's sqlite, one at a time."""
        return 1 if self.url.local else 4

    def name_problem(self, name: str) -> str | None:
        return name_problem(name)

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        # validates everything before data moves
        calls = create_calls(spec, plan.staging, shards=plan.shards, replication_factor=plan.replication_factor,
                             index_params=plan.index_params, index_types=plan.index_types)
        if self.url.local and calls.shard_keys:
            raise Unsupported(f"collection {spec.name!r} uses custom sharding, which qdrant-client local mode "
                              "does not have", hint="restore into a Qdrant server")
        notes = [*self._connect_notes, *calls.notes]
        if self.url.local:
            cfg = spec.extra["qdrant"]
            dropped = [k for k in LOCAL_MODE_DROPS if k in cfg or k in cfg.get("params", {})]
            kept = [pkw for pkw in calls.payload_indexes if keeps_in_local_mode(pkw["field_schema"])]
            if len(kept) < len(calls.payload_indexes):
                dropped.append("payload indexes" if not kept else "payload indexes other than text indexes with "
                               "scoring")
            if dropped:
                notes.append("qdrant-client local mode does not keep these recorded settings: " + ", ".join(dropped))
        return notes

    def create(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        calls = create_calls(spec, plan.staging, shards=plan.shards, replication_factor=plan.replication_factor,
                             index_params=plan.index_params, index_types=plan.index_types)
        notes: list[str] = []
        if lease is not None:  # with the collection, so it never exists without its lease
            calls.create_collection["metadata"] = {**(calls.create_collection.get("metadata") or {}), LEASE_KEY: lease}
        self._call(f"create collection {plan.staging!r}", self.client.create_collection, notes=notes,
                   **calls.create_collection)
        self._created.add(plan.staging)
        try:
            if calls.update_collection:
                self._call(f"configure {plan.staging!r}", self.client.update_collection, notes=notes,
                           **calls.update_collection)
            for skw in calls.shard_keys:
                self._call(f"create shard key {skw['shard_key']!r}", self.client.create_shard_key, notes=notes,
                           **skw)
            for pkw in calls.payload_indexes:
                self._call(f"create payload index on {pkw['field_name']!r}", self.client.create_payload_index,
                           notes=notes, **pkw)
        except BaseException:
            self.abort(plan)
            raise
        if lease is not None and self.read_lease(plan.staging) is None:
            notes.append(f"Qdrant at {self.display} keeps no collection metadata, where a restore keeps its lease: "
                         f"if this restore dies, nothing tells {plan.staging!r} from a complete collection")
        return notes

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        m = self._m
        kwargs: dict[str, Any] = {"wait": True}
        if chunk.partition != ENGINE_ROUTED:
            key = self._shard_key(spec, chunk.partition)
            if key is None:
                raise VecbackupError(f"data object of shard key {chunk.partition!r}, which the backup's "
                                     "collection does not list")
            kwargs["shard_key_selector"] = key
        written = 0
        for batch in upsert_batches(chunk_to_points(spec, chunk)):
            points = [m.PointStruct(id=p["id"], vector=_point_vector(m, p["vector"]), payload=p["payload"])
                      for p in batch]
            self._call(f"upsert into {plan.staging!r}", self.client.upsert, plan.staging, points, **kwargs)
            written += len(points)
        return written

    def finish(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        m = self._m
        collection = plan.staging  # where the data is; after a replace the target name is an alias of it
        notes = [self._replace(plan)] if plan.staging != plan.target else []
        self._created.discard(plan.staging)  # complete: abort() must not delete it any more
        existing = self._aliases() if plan.aliases else {}
        for alias in plan.aliases:
            current = existing.get(alias)
            if current is None:
                self._call(f"create alias {alias!r}", self.client.update_collection_aliases,
                           change_aliases_operations=[m.CreateAliasOperation(
                               create_alias=m.CreateAlias(collection_name=collection, alias_name=alias))])
            elif current != collection:
                notes.append(f"alias {alias!r} points to {current!r} on the target; left as it is")
        return notes

    def _replace(self, plan: RestorePlan) -> str:
        """--drop-existing: the complete staging collection takes the target's place. Qdrant has no rename, so
        the target name becomes an alias of the staging collection (as do the aliases of the old one)."""
        m = self._m
        collection = plan.staging
        aliases = self._aliases()
        old_alias_of = aliases.get(plan.target)  # the target name is itself an alias (an earlier replace)
        old = old_alias_of or plan.target
        moved = [a for a, c in aliases.items() if c == old and a != plan.target]
        # from here on the restored collection is the only copy: never delete it on a later failure
        self._created.discard(collection)
        ops: list[Any] = []
        if old_alias_of is None:
            # a real collection of that name must go before an alias can take its name (this also drops the
            # aliases that pointed at it; they are recreated below)
            self._call(f"delete {old!r}", self.client.delete_collection, old)
            remaining = self._aliases()
            ops += [m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=a)) for a in moved if a in remaining]
        else:
            ops += [m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=a)) for a in (plan.target, *moved)]
        ops += [m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=collection, alias_name=a))
                for a in (plan.target, *moved)]
        try:
            self._call(f"point alias {plan.target!r} at {collection!r}", self.client.update_collection_aliases,
                       change_aliases_operations=ops)
        except VecbackupError as e:
            raise type(e)(f"{e.message}; the restored data is complete in collection {collection!r}",
                          hint=f"create the alias {plan.target!r} -> {collection!r} by hand") from None
        if old_alias_of is not None and old_alias_of != collection:
            self._call(f"delete {old!r}", self.client.delete_collection, old)
        return (f"replaced {plan.target!r} (--drop-existing): Qdrant cannot rename collections, so the data is in "
                f"collection {collection!r} and {plan.target!r} is an alias of it"
                + (f" (as are {', '.join(repr(a) for a in moved)})" if moved else ""))

    def key_copies(self, spec: CollectionSpec) -> KeyCopies:
        """One point per id: an upsert of an id replaces the point, so the copy written last stays. With custom
        sharding an id is unique within a shard key only (Qdrant's documentation; qdrant-client local mode has no
        custom sharding, so this is not tested here): each shard key keeps its copy."""
        if spec.extra.get("qdrant_shard_keys"):
            return KeyCopies(held=True, counted=True, last_shown=False)
        return KeyCopies(held=False, counted=False, last_shown=True)

    def settle(self, plan: RestorePlan) -> None:
        """Nothing: every upsert waits until it is applied."""

    def partition_counts(self, spec: CollectionSpec, name: str, partitions: list[str]) -> dict[str, int]:
        out = {}
        for p in partitions:
            key = self._shard_key(spec, p)
            res = self._call(f"count points of {name!r}", self.client.count, name, exact=True,
                             **({} if key is None else {"shard_key_selector": key}))
            out[p] = int(res.count)
        return out

    # -- the lease of a restore (ops/leases.py, format/lease.py): a key of the collection's metadata ---------------

    def read_lease(self, name: str) -> str | None:
        if not self._call("check for collection", self.client.collection_exists, name):
            raise NotFound(f"collection {name!r} not found in {self.display}")
        info = self._call(f"get collection {name!r}", self.client.get_collection, name)
        value = (getattr(info.config, "metadata", None) or {}).get(LEASE_KEY)
        if value is None or isinstance(value, str):
            return value
        return orjson.dumps(value).decode()  # not ours (we write a string): shown, never taken for a lease

    def write_lease(self, name: str, value: str) -> None:
        self._call(f"set the lease of {name!r}", self.client.update_collection, name, metadata={LEASE_KEY: value})

    def clear_lease(self, name: str) -> None:
        """Remove the lease key (a null in a metadata update removes a key); empty it where that did not."""
        try:
            self._call(f"clear the lease of {name!r}", self.client.update_collection, name,
                       metadata={LEASE_KEY: None})
        except VecbackupError:  # a server that takes no null there: emptied below
            pass
        if self.read_lease(name):
            self._call(f"clear the lease of {name!r}", self.client.update_collection, name, metadata={LEASE_KEY: ""})

    def resolve(self, name: str) -> str | None:
        if self._call("check for collection", self.client.collection_exists, name):
            return name
        return self._aliases().get(name)

    def abort(self, plan: RestorePlan) -> None:
        if plan.staging in self._created:
            try:
                self.client.delete_collection(plan.staging)
            except Exception:
                pass
            self._created.discard(plan.staging)


_NAME_FORBIDDEN = frozenset('<>:"/\\|?*')


def name_problem(name: str) -> str | None:
    """Qdrant's collection name rules: 1 to 255 characters, none of ``<>:"/\\|?*``, no control character."""
    if not name:
        return "a collection name cannot be empty"
    if len(name) > 255:
        return "a collection name can be at most 255 characters long"
    bad = sorted({c for c in name if c in _NAME_FORBIDDEN or ord(c) < 32 or ord(c) == 127})
    if bad:
        return "a collection name cannot contain " + " ".join(repr(c) for c in bad)
    return None


def _point_vector(m: Any, vector: Any) -> Any:
    if isinstance(vector, dict):
        return {k: m.SparseVector(**v) if isinstance(v, dict) else v for k, v in vector.items()}
    return vector
