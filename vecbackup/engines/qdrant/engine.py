"""Qdrant (a server over REST or gRPC, or qdrant-client's embedded local mode) as a Source and a Sink.

docs/FORMAT.md ("Qdrant collections") specifies how a Qdrant collection is represented in the
engine-neutral :class:`~vecbackup.schema.CollectionSpec`. The translation is pure and lives in
:mod:`vecbackup.engines.qdrant.model`; :class:`QdrantEngine` only moves data and
translates every qdrant-client error into :mod:`vecbackup.errors`. qdrant-client is imported lazily.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from typing import Any

import orjson

from vecbackup.engines.base import ENGINE_ROUTED, Described, KeyCopies, PhaseReport, RestorePlan, SearchParams
from vecbackup.engines.qdrant.model import (
    LOCAL_MODE_DROPS,
    _models,
    _one_line,
    _qdrant,
    _vector_layout,
    as_json,
    chunk_to_points,
    create_calls,
    records_to_chunk,
    shard_keys_from_cluster_info,
    spec_from_collection_info,
    str_to_point_id,
    upsert_batches,
)
from vecbackup.errors import AlreadyExists, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.format.lease import LEASE_KEY
from vecbackup.format.manifest import SourceInfo
from vecbackup.format.qdrant import (
    ID_FIELD,
    PAYLOAD_INDEX_PREFIX,
)
from vecbackup.format.shard import Shard, owned_batches
from vecbackup.schema import CollectionSpec
from vecbackup.urls import QdrantURL
from vecbackup.words import param

# -- the engine -----------------------------------------------------------------------------------


class QdrantEngine:
    """One connection to a Qdrant server or local-mode folder; implements Source, Sink and Inspector."""

    #: points per scroll page and data chunk at most
    max_batch = 16384

    def __init__(self, url: QdrantURL):
        self.url = url
        self.display = url.display
        qc = _qdrant()
        self._m = _models()
        self._created: set[str] = set()
        self._connect_notes: list[str] = []
        verify = None if url.local else _verify(url)  # a bad certificate file is the user's to fix (exit 2)
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                if url.local:
                    self.client = qc.QdrantClient(path=url.path)
                else:
                    scheme = "https" if url.https else "http"
                    self.client = qc.QdrantClient(
                        url=f"{scheme}://{url.host}:{url.port}", port=url.port, grpc_port=url.grpc_port,
                        prefer_grpc=url.prefer_grpc, https=url.https, api_key=url.api_key or None,
                        prefix=url.prefix or None, timeout=max(1, int(url.timeout)), check_compatibility=False,
                        **({} if verify is None else {"verify": verify}))
        except Exception as e:
            if "already accessed by another instance" in str(e):
                raise Unreachable(f"Qdrant local folder {url.path} is in use by another client",
                                  hint="qdrant-client local mode allows one client per folder; stop the other one "
                                       "or use a Qdrant server") from None
            raise Unreachable(f"cannot open Qdrant at {self.display}: {_one_line(e)}") from None
        try:
            self._version = str(self.client.info().version)
        except Exception as e:
            self.close()
            err = translate_error(f"cannot connect to Qdrant at {self.display}", e, local=url.local)
            if isinstance(err, Unreachable) and err.hint is None:
                err.hint = "check the URL, that the server is up, and the API key"
            raise err from None
        if url.tls.insecure:
            self._connect_notes.append(f"the TLS certificate of {self.display} was not verified (--insecure)")
        if url.api_key and not url.https and not url.local:
            self._connect_notes.append(f"the API key was sent unencrypted to {self.display}; use qdrant+https:// "
                                       "(or qdrant+grpcs://) where the server has TLS")

    # -- shared -----------------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """``qdrant`` or ``qdrant-local`` (SourceInfo.engine; cross-engine restores map by it)."""
        return "qdrant-local" if self.url.local else "qdrant"

    def info(self) -> SourceInfo:
        return SourceInfo(engine=self.engine, server_version=self._version, address=self.display)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass

    def _error(self, what: str, e: BaseException) -> VecbackupError:
        return translate_error(f"Qdrant at {self.display}: {what} failed", e, local=self.url.local)

    def _call(self, what: str, fn: Any, *args: Any, notes: list[str] | None = None, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fn(*args, **kwargs)
        except Exception as e:
            raise self._error(what, e) from None
        if notes is not None:
            for w in caught:
                text = f"{what}: {_one_line(str(w.message))}"
                if text not in notes:
                    notes.append(text)
        return result

    def list_collections(self) -> list[str]:
        res = self._call("list collections", self.client.get_collections)
        return sorted(c.name for c in res.collections)

    def _aliases(self) -> dict[str, str]:
        """alias -> collection, for every alias on the server."""
        res = self._call("list aliases", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in res.aliases}

    def has_collection(self, name: str) -> bool:
        if self._call("check for collection", self.client.collection_exists, name):
            return True
        return name in self._aliases()

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        res = self._call(f"count points of {name!r}", self.client.count, name, exact=True)
        return int(res.count)

    # -- Source -----------------------------------------------------------------------------------

    def describe(self, name: str) -> Described:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}",
                           hint="`vecbackup collections` shows what is there")
        info = self._call(f"describe {name!r}", self.client.get_collection, name)
        all_aliases = self._aliases()
        real = all_aliases.get(name, name)
        aliases = [a for a, c in all_aliases.items() if c == real and a != name]
        doc = as_json(info)
        custom = doc["config"].get("params", {}).get("sharding_method") == "custom"
        shard_keys = self._shard_keys(name) if custom else None
        described = spec_from_collection_info(name, doc, aliases=aliases, shard_keys=shard_keys)
        notes = list(described.notes) + self._connect_notes
        if self.url.local:
            notes.append("qdrant-client local mode keeps only the vector and sparse-vector settings and the metadata "
                         "of a collection (no collection-wide HNSW, optimizer, WAL, quantization or strict-mode "
                         "settings, shard or replication settings, on_disk_payload or payload indexes); the backup "
                         "holds what it reports")
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

    def _shard_key(self, spec: CollectionSpec, partition: str) -> Any:
        for entry in spec.extra.get("qdrant_shard_keys", []):
            if str(entry["key"]) == partition:
                return entry["key"]
        return None

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

    # -- Sink -------------------------------------------------------------------------------------

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
            if any(i.index_type.startswith(PAYLOAD_INDEX_PREFIX) for i in spec.indexes):
                dropped.append("payload indexes")
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


    # -- drill: sample points by id, vector search, drop (used by ops/drill.py) -------------------

    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        """A backup chunk's points as (point id, point), in the form fetch_rows returns them."""
        return [(p["id"], p) for p in chunk_to_points(spec, chunk)]

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        """The points of ``name`` with these ids, round-tripped through the chunk conversion."""
        kwargs: dict[str, Any] = {"with_payload": True, "with_vectors": True}
        if partition != ENGINE_ROUTED:
            kwargs["shard_key_selector"] = self._shard_key(spec, partition)
        out: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), 256):
            records = self._call(f"retrieve points of {name!r}", self.client.retrieve, name,
                                 ids=keys[start:start + 256], **kwargs)
            if records:
                out.update(self.rows_of_chunk(spec, records_to_chunk(spec, partition, records)))
        return out

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        """The value of vector field ``field_name`` in a point from rows_of_chunk (None if it has none)."""
        for f, q, _ in _vector_layout(spec):
            if f.name == field_name:
                vector = row["vector"]
                return vector.get(q) if isinstance(vector, dict) else vector
        return None

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        return [str_to_point_id(s) for s in chunk.columns[ID_FIELD].values]

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        """Points the HNSW index does not cover (Qdrant searches them exactly): for a collection with one dense
        vector, points_count - indexed_vectors_count; unknown with several."""
        info = self._call(f"get collection {name!r}", self.client.get_collection, name)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and len(vectors) != 1:
            return None
        if info.points_count is None or info.indexed_vectors_count is None:
            return None
        return max(0, int(info.points_count) - int(info.indexed_vectors_count))

    def wait_index(self, name: str, report: PhaseReport | None = None) -> None:
        """Qdrant answers searches while it indexes (the rest by exact search); nothing to wait for."""

    def text_search(self, spec: CollectionSpec, name: str, field_name: str, queries: list[str], k: int,
                    keys: list[Any] | None = None) -> list[list[tuple[Any, float]]]:
        raise Unsupported("Qdrant has no BM25 functions: no full-text search to check")

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        """Ids of the top ``k`` points for each query vector (values as vector_of gives them)."""
        layout = {f.name: (q, kind) for f, q, kind in _vector_layout(spec)}
        if field_name not in layout or layout[field_name][1] == "multi":
            raise Unsupported(f"vector search on field {field_name!r} is not supported by the drill yet")
        q, kind = layout[field_name]
        search = self._m.SearchParams(hnsw_ef=max(params.ef, k), exact=False)
        out: list[list[Any]] = []
        for query in queries:
            vector = self._m.SparseVector(**query) if kind == "sparse" else query
            res = self._call(f"search {name!r}", self.client.query_points, name, query=vector, using=q or None,
                             limit=k, with_payload=False, with_vectors=False, search_params=search)
            out.append([p.id for p in res.points])
        return out

    def drop_collection(self, name: str) -> None:
        self._call(f"delete {name!r}", self.client.delete_collection, name)

_NAME_FORBIDDEN = frozenset('<>:"/\\|?*')


def _verify(url: QdrantURL) -> ssl.SSLContext | bool | None:
    """How the REST client (httpx) checks the server: a context with the CA bundle and our client certificate,
    False with --insecure, None for the system's defaults."""
    tls = url.tls
    if tls.insecure:
        return False
    if not (tls.ca_cert or tls.client_cert):
        return None
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_cert or None)
        if tls.client_cert:
            ctx.load_cert_chain(tls.client_cert, tls.client_key)
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"cannot load the TLS certificates for {url.display}: {e}",
                         hint=f"{param('ca_cert')}, {param('client_cert')} and {param('client_key')} take PEM files "
                              "(the key unencrypted)") from None
    return ctx


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


def translate_error(where: str, e: BaseException, *, local: bool = False) -> VecbackupError:
    """A qdrant-client exception (REST, gRPC or local mode) as a vecbackup error; ``where`` starts the message
    ("Qdrant at URL: WHAT failed"). Messages carry the server's error text, never a request header."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(e, VecbackupError):
        return e
    if isinstance(e, UnexpectedResponse):
        detail = _response_error(e)
        code = e.status_code or 0
        if code == 404:
            return NotFound(f"{where}: {detail}")
        if code in (401, 403):
            return Unreachable(f"{where}: the server refused the credentials ({code} {detail})",
                               hint=f"check the API key: {param('api_key')} or VECBACKUP_QDRANT_API_KEY")
        if code == 409:
            return AlreadyExists(f"{where}: {detail}")
        if code in (502, 503, 504):
            return Unreachable(f"{where}: {code} {detail}")
        return VecbackupError(f"{where}: {code} {detail}")
    if isinstance(e, ResponseHandlingException):
        return Unreachable(f"{where}: {_one_line(e.source)}")
    grpc_code = _grpc_code(e)
    if grpc_code is not None:
        detail = _one_line(getattr(e, "details", lambda: str(e))() or grpc_code)
        if grpc_code == "NOT_FOUND":
            return NotFound(f"{where}: {detail}")
        if grpc_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return Unreachable(f"{where}: the server refused the credentials ({detail})",
                               hint=f"check the API key: {param('api_key')} or VECBACKUP_QDRANT_API_KEY")
        if grpc_code == "ALREADY_EXISTS":
            return AlreadyExists(f"{where}: {detail}")
        if grpc_code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return Unreachable(f"{where}: {detail}")
        return VecbackupError(f"{where}: {detail}")
    if isinstance(e, NotImplementedError):  # local mode: sharding, snapshots, ...
        return Unsupported(f"{where}: {_one_line(e)}", hint="use a Qdrant server")
    msg = _one_line(e)
    if isinstance(e, ValueError) and local:
        if "not found" in msg:
            return NotFound(f"{where}: {msg}")
        if "already exists" in msg:
            return AlreadyExists(f"{where}: {msg}")
    if isinstance(e, (ConnectionError, TimeoutError, OSError)):
        return Unreachable(f"{where}: {msg}")
    return VecbackupError(f"{where}: {msg}")


def _point_vector(m: Any, vector: Any) -> Any:
    if isinstance(vector, dict):
        return {k: m.SparseVector(**v) if isinstance(v, dict) else v for k, v in vector.items()}
    return vector


def _response_error(e: Any) -> str:
    """The error text of a Qdrant REST error response ({"status": {"error": "..."}})."""
    try:
        doc = orjson.loads(e.content)
        status = doc.get("status") if isinstance(doc, dict) else None
        if isinstance(status, dict) and status.get("error"):
            return _one_line(status["error"])
    except Exception:
        pass
    text = e.content.decode("utf-8", "replace") if isinstance(e.content, bytes) else str(e.content)
    return _one_line(text or e.reason_phrase or "")


def _grpc_code(e: BaseException) -> str | None:
    code = getattr(e, "code", None)
    if not callable(code):
        return None
    try:
        import grpc
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(e, grpc.RpcError):
        return None
    try:
        value = code()
    except Exception:
        return None
    return str(getattr(value, "name", value))
