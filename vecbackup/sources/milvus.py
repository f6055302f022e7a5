"""Milvus (standalone, distributed, Zilliz, Milvus Lite) as a Source and a Sink, through pymilvus.

pymilvus is imported lazily so ``vecbackup --help`` stays fast; every pymilvus
error is translated here into :mod:`vecbackup.errors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from vecbackup import limits
from vecbackup.errors import NotFound, TargetRejected, Unreachable, Unsupported, VecbackupError
from vecbackup.format.codec import Chunk, Column
from vecbackup.format.manifest import SourceInfo
from vecbackup.schema import (
    DYNAMIC_COLUMN,
    LITE_DROPPED_KEY,
    SCALAR_DTYPES,
    VECTOR_DTYPES,
    CollectionSpec,
    Field,
    FieldType,
    Index,
    vector_width,
)
from vecbackup.sources.base import ENGINE_ROUTED, Described, RestorePlan, SearchParams
from vecbackup.urls import MilvusURL

#: describe_index keys that are state, not build parameters
_INDEX_STATE_KEYS = {
    "field_name", "index_name", "index_type", "metric_type", "indexed_rows", "pending_index_rows",
    "state", "total_rows", "index_state_fail_reason", "index_param", "params",
}
#: describe_collection field keys we map to Field attributes (anything else goes to Field.extra)
_FIELD_PARAM_KEYS = {"dim", "max_length", "max_capacity"}
_CONSISTENCY = {0: "Strong", 1: "Session", 2: "Bounded", 3: "Eventually", 4: "Customized"}
_ALLOW_AUTO_ID = "allow_insert_auto_id"
#: Milvus caps one query page at 16384 rows
MAX_BATCH = 16384


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:  # pragma: no cover - depends on the install
        raise Unsupported("the Milvus support is not installed", hint="pip install 'vecbackup[milvus]'") from None
    for name in ("pymilvus", "milvus_lite", "grpc"):  # they log tracebacks of errors we report ourselves
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return pymilvus


def _message(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e)
    return " ".join(str(msg).split())[:300]


class MilvusEngine:
    """One connection to a Milvus server or Milvus Lite file; implements Source, Sink and Inspector."""

    #: rows per data chunk at most (one query page holds at most this many)
    max_batch = MAX_BATCH

    def __init__(self, url: MilvusURL):
        self.url = url
        self.display = url.display
        pm = _pymilvus()
        self._DataType = pm.DataType
        self._exc = pm.MilvusException
        self._loaded_by_us: set[str] = set()
        self._added_properties: set[str] = set()
        kwargs: dict[str, Any] = {"uri": url.uri, "timeout": url.timeout}
        if url.token:
            kwargs["token"] = url.token
        if url.user:
            kwargs["user"] = url.user
            kwargs["password"] = url.password
        if url.db_name:
            kwargs["db_name"] = url.db_name
        if url.server_pem_path:
            kwargs["server_pem_path"] = url.server_pem_path
        try:
            self.client = pm.MilvusClient(**kwargs)
            self._version = str(self.client.get_server_version())
        except Exception as e:
            if url.lite and _lite_file_locked(url.uri):
                raise Unreachable(f"Milvus Lite file {url.uri} is in use by another process",
                                  hint="Milvus Lite allows one process per file; stop the other one") from None
            raise Unreachable(f"cannot connect to Milvus at {self.display}: {_message(e)}",
                              hint="check the URL, that the server is up, and the credentials") from None

    # -- shared -----------------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """``milvus`` or ``milvus-lite`` (SourceInfo.engine; cross-engine restores map by it)."""
        return "milvus-lite" if self.url.lite else "milvus"

    def info(self) -> SourceInfo:
        return SourceInfo(engine=self.engine, server_version=self._version, address=self.display)

    def close(self) -> None:
        for name in self._loaded_by_us:
            try:
                self.client.release_collection(name)
            except Exception:  # best effort: leave the server as we found it
                pass
        self._loaded_by_us.clear()
        try:
            self.client.close()
        except Exception:  # closing a dead connection is not an error worth reporting
            pass

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._exc as e:
            raise VecbackupError(f"Milvus at {self.display}: {what} failed: {_message(e)}") from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: {what} failed: {_message(e)}") from None

    def has_collection(self, name: str) -> bool:
        return bool(self._call("has_collection", self.client.has_collection, name))

    def list_collections(self) -> list[str]:
        return sorted(self._call("list_collections", self.client.list_collections))

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        self.ensure_loaded(name)
        res = self._call(f"count rows of {name!r}", self.client.query, name, filter="",
                         output_fields=["count(*)"], consistency_level="Strong")
        return int(res[0]["count(*)"])

    def ensure_loaded(self, name: str) -> None:
        """Queries need a loaded collection: load it if needed, and release it again on close()."""
        if name in self._loaded_by_us:
            return
        state = self._call(f"get the load state of {name!r}", self.client.get_load_state, name)
        if "NotLoad" in str(state.get("state")):
            self._call(f"load {name!r}", self.client.load_collection, name)
            self._loaded_by_us.add(name)

    # -- Source -----------------------------------------------------------------------------------

    def describe(self, name: str) -> Described:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}",
                           hint=f"`vecbackup collections {self.display}` lists what is there")
        d = self._call(f"describe {name!r}", self.client.describe_collection, name)
        notes: list[str] = []
        if d.get("functions"):
            raise Unsupported(f"collection {name!r} uses functions (e.g. BM25); they are not supported yet")
        fields = tuple(self._field_from_milvus(name, f, d) for f in d["fields"])
        partitions = tuple(self._call("list_partitions", self.client.list_partitions, name))
        indexes = []
        for index_name in self._call("list_indexes", self.client.list_indexes, name):
            raw = self._call(f"describe index {index_name!r}", self.client.describe_index, name, index_name)
            index, note = self._index_from_milvus(raw, index_name)
            indexes.append(index)
            if note:
                notes.append(note)
        try:
            aliases = tuple(self.client.list_aliases(collection_name=name).get("aliases", []))
        except Exception:
            aliases = tuple(d.get("aliases", []))
        level = d.get("consistency_level_name") or _CONSISTENCY.get(d.get("consistency_level", -1))
        num_shards = d.get("num_shards")
        extra: dict[str, Any] = {}
        partition_key = any(f.is_partition_key for f in fields)
        if partition_key:
            extra["num_partitions"] = d.get("num_partitions")
        if self.url.lite:
            # Milvus Lite answers describe_collection with fixed values for these (Strong, 1 shard, 17 partitions
            # whatever was asked, empty descriptions): record them as unknown rather than as the source's settings
            level, num_shards = None, None
            unknown = ["the consistency level", "the shard count"]
            if partition_key:
                extra["num_partitions"] = None
                unknown.append("the partition-key partition count")
            unknown.append("descriptions (of the collection and its fields)")
            notes.append("Milvus Lite does not report " + ", ".join(unknown) + ": recorded as unknown; a restore "
                         "uses the target's defaults unless given --collection-params (consistency_level=, "
                         "num_partitions=, description=), --shards or --field-params FIELD:description=")
        spec = CollectionSpec(
            name=name,
            fields=fields,
            description=d.get("description", ""),
            enable_dynamic_field=bool(d.get("enable_dynamic_field", False)),
            consistency_level=level,
            num_shards=num_shards,
            partitions=partitions,
            indexes=tuple(indexes),
            aliases=aliases,
            properties={str(k): v for k, v in (d.get("properties") or {}).items()},
            extra=extra,
        )
        return Described(spec, tuple(notes))

    def _field_from_milvus(self, coll: str, f: dict[str, Any], d: dict[str, Any]) -> Field:
        dtype = f["type"]
        tname = getattr(dtype, "name", str(dtype))
        try:
            ftype = FieldType(tname)
        except ValueError:
            raise Unsupported(f"field {f['name']!r} of collection {coll!r} has type {tname}, "
                              "which vecbackup cannot back up yet") from None
        params = dict(f.get("params") or {})
        element_type = None
        if ftype is FieldType.ARRAY:
            et = f.get("element_type")
            ename = getattr(et, "name", str(et))
            try:
                element_type = FieldType(ename)
            except ValueError:
                raise Unsupported(f"field {f['name']!r}: ARRAY of {ename} is not supported yet") from None
        default = f.get("default_value")
        if default is not None and hasattr(default, "WhichOneof"):
            which = default.WhichOneof("data")
            default = getattr(default, which) if which else None
        is_primary = bool(f.get("is_primary", False))
        extra = {k: v for k, v in params.items() if k not in _FIELD_PARAM_KEYS}
        return Field(
            name=f["name"],
            type=ftype,
            dim=int(params["dim"]) if "dim" in params else None,
            element_type=element_type,
            max_length=int(params["max_length"]) if "max_length" in params else None,
            max_capacity=int(params["max_capacity"]) if "max_capacity" in params else None,
            nullable=bool(f.get("nullable", False)),
            default_value=default,
            is_primary=is_primary,
            auto_id=bool(f.get("auto_id", False) or (is_primary and d.get("auto_id", False))),
            is_partition_key=bool(f.get("is_partition_key", False)),
            is_clustering_key=bool(f.get("is_clustering_key", False)),
            description=f.get("description", "") or "",
            extra=_jsonable(extra),
        )

    def _index_from_milvus(self, raw: dict[str, Any], index_name: str) -> tuple[Index, str | None]:
        params: dict[str, Any] | None = {}
        assert params is not None
        nested = raw.get("params")
        if isinstance(nested, str):
            try:
                nested = orjson.loads(nested)
            except orjson.JSONDecodeError:
                nested = None
        if isinstance(nested, dict):
            params.update(nested)
        for k, v in raw.items():
            if k not in _INDEX_STATE_KEYS:
                params[k] = _number(v)
        note = None
        if self.url.lite:
            # Milvus Lite's describe_index never reports build parameters: record them as unknown
            params = None
            note = (f"index {index_name!r} on {raw.get('field_name')!r}: Milvus Lite does not report index "
                    "parameters; restore uses the engine defaults unless given --index-params")
        metric = raw.get("metric_type")
        index = Index(
            field_name=raw["field_name"],
            index_name=raw.get("index_name", index_name),
            index_type=str(raw.get("index_type", "")),
            metric_type=None if metric in (None, "", "NONE") else metric,  # Lite says NONE for scalar indexes
            params=params,
        )
        return index, note

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        if any(f.is_partition_key for f in spec.fields):
            return [ENGINE_ROUTED]
        return list(spec.partitions)

    def read(self, spec: CollectionSpec, partition: str, batch_size: int) -> Iterator[Chunk]:
        kwargs: dict[str, Any] = {"batch_size": min(batch_size, MAX_BATCH), "output_fields": ["*"],
                                  "consistency_level": "Strong"}
        if partition != ENGINE_ROUTED:
            kwargs["partition_names"] = [partition]
        self.ensure_loaded(spec.name)
        it = self._call(f"open an iterator over {spec.name!r}", self.client.query_iterator, spec.name, **kwargs)
        pending: list[dict[str, Any]] = []
        try:
            while True:
                page = self._call(f"read rows of {spec.name!r}", it.next)
                if not page:
                    break
                pending.extend(page)
                while len(pending) >= batch_size:
                    yield rows_to_chunk(spec, partition, pending[:batch_size])
                    del pending[:batch_size]
            if pending:
                yield rows_to_chunk(spec, partition, pending)
        finally:
            try:
                it.close()
            except Exception:  # the iterator's server-side state expires on its own
                pass

    # -- Sink -------------------------------------------------------------------------------------

    renames = True  # a restore fills a staging collection and renames it when complete

    def name_problem(self, name: str) -> str | None:
        return name_problem(name)

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        dt = self._DataType
        for f in spec.fields:
            if not hasattr(dt, f.type.value):
                raise Unsupported(f"field {f.name!r} has type {f.type.value}, which this pymilvus cannot create")
        vectors = [f for f in spec.fields if f.type.is_vector]
        if self._version.startswith("v2.3") or self._version.startswith("2.3"):
            if len(vectors) > 1:
                raise Unsupported(
                    f"Milvus {self._version} at {self.display} allows one vector field per collection; "
                    f"the backup has {len(vectors)} ({', '.join(f.name for f in vectors)})",
                    hint="restore into Milvus 2.4 or newer")
            for f in spec.fields:
                if f.type in (FieldType.SPARSE_FLOAT_VECTOR, FieldType.INT8_VECTOR):
                    raise Unsupported(f"field {f.name!r}: Milvus {self._version} has no {f.type.value}",
                                      hint="restore into Milvus 2.4 or newer")
                if f.nullable or f.default_value is not None:
                    raise Unsupported(f"field {f.name!r}: Milvus {self._version} has no nullable or default "
                                      "values", hint="restore into Milvus 2.5 or newer")
        unset = limits.unset(spec)
        if unset and not self.url.lite:  # a server requires every limit (Milvus Lite takes a schema without them)
            what = "; ".join(f"field {name!r} ({spec.field(name).type_name}): the backup does not record its "
                             f"{' and '.join(missing)}" for name, missing in unset.items())
            raise TargetRejected(f"{what}, which Milvus at {self.display} requires", hint="restore with " + " ".join(
                f"--field-params {name}:" + ",".join(f"{m}=N" for m in missing) for name, missing in unset.items()))
        notes = []
        if plan.shards is not None and plan.shards != spec.num_shards:
            notes.append(f"num_shards {spec.num_shards if spec.num_shards is not None else 'default'} -> "
                         f"{plan.shards} (--shards)")
        return notes

    def create(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        pm = _pymilvus()
        dt = self._DataType
        primary = spec.primary
        schema = pm.MilvusClient.create_schema(
            auto_id=primary.auto_id, enable_dynamic_field=spec.enable_dynamic_field, description=spec.description
        )
        for f in spec.fields:
            kw: dict[str, Any] = {}
            if f.dim is not None:
                kw["dim"] = f.dim
            if f.max_length is not None:
                kw["max_length"] = f.max_length
            if f.max_capacity is not None:
                kw["max_capacity"] = f.max_capacity
            if f.element_type is not None:
                kw["element_type"] = getattr(dt, f.element_type.value)
            if f.nullable:
                kw["nullable"] = True
            if f.default_value is not None:
                kw["default_value"] = f.default_value
            if f.is_primary:
                kw["is_primary"] = True
                kw["auto_id"] = f.auto_id
            if f.is_partition_key:
                kw["is_partition_key"] = True
            if f.is_clustering_key:
                kw["is_clustering_key"] = True
            for k, v in f.extra.items():  # e.g. enable_analyzer, mmap_enabled
                kw.setdefault(k, v)
            self._call(f"define field {f.name!r}", schema.add_field, f.name, getattr(dt, f.type.value),
                       description=f.description, **kw)
        ckw: dict[str, Any] = {"schema": schema}
        if spec.consistency_level:
            ckw["consistency_level"] = spec.consistency_level
        shards = plan.shards if plan.shards is not None else spec.num_shards
        if shards:
            ckw["num_shards"] = shards
        if spec.extra.get("num_partitions"):
            ckw["num_partitions"] = spec.extra["num_partitions"]
        properties = dict(spec.properties)
        if primary.auto_id and plan.keep_ids and self.url.lite is False:
            properties[_ALLOW_AUTO_ID] = "true"  # Milvus 2.5+: accept the recorded primary keys
            self._added_properties.add(_ALLOW_AUTO_ID)
        if properties:
            ckw["properties"] = properties
        try:
            self.client.create_collection(plan.staging, **ckw)
        except self._exc as e:
            raise _create_refused(spec, self.display, _message(e)) from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: create collection failed: {_message(e)}") from None
        if not any(f.is_partition_key for f in spec.fields):
            for p in spec.partitions:
                if p != "_default" and not self.client.has_partition(plan.staging, p):
                    self._call(f"create partition {p!r}", self.client.create_partition, plan.staging, p)
        return []

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        if self.url.lite:
            _refuse_lite_dropped_keys(spec, chunk, self.display)
        rows = chunk_to_rows(spec, chunk, keep_ids=plan.keep_ids)
        kwargs: dict[str, Any] = {}
        if chunk.partition not in (ENGINE_ROUTED, "_default"):
            kwargs["partition_name"] = chunk.partition
        try:
            res = self.client.insert(plan.staging, rows, **kwargs)
        except self._exc as e:
            msg = _message(e)
            if spec.primary.auto_id and plan.keep_ids and "number of fields" in msg:
                raise Unsupported(
                    f"Milvus {self._version} at {self.display} does not accept recorded primary keys for "
                    f"auto-id field {spec.primary.name!r}",
                    hint="pass --new-ids to let the server assign new ids") from None
            raise _insert_refused(spec, chunk, self.display, msg) from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: insert failed: {_message(e)}") from None
        return int(res.get("insert_count", len(rows)) if isinstance(res, dict) else len(rows))

    def finish(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        c = self.client
        notes: list[str] = []
        self._call("flush", c.flush, plan.staging)
        if _ALLOW_AUTO_ID in self._added_properties and _ALLOW_AUTO_ID not in spec.properties:
            # we only set it to insert the recorded ids: leave the schema as the source had it
            try:
                c.drop_collection_properties(plan.staging, [_ALLOW_AUTO_ID])
            except Exception:  # older servers: the property is inert there
                notes.append(f"could not remove the helper property {_ALLOW_AUTO_ID!r} after inserting ids")
        for index in spec.indexes:
            notes.extend(self._create_index(spec, plan, index))
        self._call(f"load {plan.staging!r}", c.load_collection, plan.staging)
        if plan.staging != plan.target:
            if plan.replace and self.has_collection(plan.target):
                moved = self._aliases_of(plan.target)
                self._call(f"drop {plan.target!r}", c.drop_collection, plan.target)
                notes.append(f"dropped the existing collection {plan.target!r} (--drop-existing)")
            else:
                moved = []
            self._call(f"rename {plan.staging!r} to {plan.target!r}", c.rename_collection, plan.staging, plan.target)
            for alias in moved:
                self._call(f"alias {alias!r}", c.create_alias, plan.target, alias)
        for alias in plan.aliases:
            try:
                current = c.describe_alias(alias).get("collection_name")
            except Exception:
                current = None
            if current is None:
                self._call(f"create alias {alias!r}", c.create_alias, plan.target, alias)
            elif current != plan.target:
                notes.append(f"alias {alias!r} points to {current!r} on the target; left as it is")
        return notes

    def _aliases_of(self, name: str) -> list[str]:
        try:
            return list(self.client.list_aliases(collection_name=name).get("aliases", []))
        except Exception:
            return []

    def _build_index(self, staging: str, field: Field, index_type: str, index: Index, params: dict[str, Any],
                     ) -> str | None:
        """Build one index; None on success, else the server's reason."""
        ip = self.client.prepare_index_params()
        kw: dict[str, Any] = {"index_type": index_type, "params": dict(params)}
        if index.index_name:
            kw["index_name"] = index.index_name
        if index.metric_type and field.type.is_vector:
            kw["metric_type"] = index.metric_type
        ip.add_index(index.field_name, **kw)
        try:
            self.client.create_index(staging, ip)
            return None
        except self._exc as e:
            return _message(e)
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: create index failed: {_message(e)}") from None

    def _create_index(self, spec: CollectionSpec, plan: RestorePlan, index: Index) -> list[str]:
        field = spec.field(index.field_name)
        params = plan.index_params.get(index.field_name)
        unknown = params is None and index.params is None  # the source did not report them
        if params is None:
            params = index.params or {}
        reason = self._build_index(plan.staging, field, index.index_type, index, params)
        if reason is None:
            return [f"index {index.index_name or index.field_name!r}: parameters were not recorded by the source; "
                    "built with the engine defaults"] if unknown else []
        defaults = KNOWHERE_DEFAULTS.get(index.index_type.upper()) if unknown else None
        if defaults is not None and self._build_index(plan.staging, field, index.index_type, index, defaults) is None:
            shown = ",".join(f"{k}={v}" for k, v in defaults.items())
            return [f"index {index.index_name or index.field_name!r} ({index.index_type}): the source did not report "
                    f"its build parameters and Milvus at {self.display} requires them ({reason}); built with "
                    f"knowhere's defaults {shown} (--index-params {index.field_name}:... chooses others)"]
        if not plan.index_fallback:
            hint = "pass --index-fallback to build the engine's default index instead"
            if unknown:
                hint = (f"the source did not report its build parameters: pass --index-params "
                        f"{index.field_name}:PARAM=VALUE,..., or --index-fallback to build the engine's default index")
            raise Unsupported(f"Milvus at {self.display} cannot build index {index.index_type} on field "
                              f"{index.field_name!r}: {reason}", hint=hint)
        for fallback in _fallbacks(field.type):
            if fallback == index.index_type:
                continue
            if self._build_index(plan.staging, field, fallback, index, {}) is None:
                return [f"index on {index.field_name!r}: {index.index_type} could not be built ({reason}); "
                        f"built {fallback} instead (--index-fallback)"]
        if field.type.is_vector:
            raise Unsupported(f"Milvus at {self.display} cannot build any index on vector field "
                              f"{index.field_name!r}: {reason}")
        return [f"scalar index {index.index_type} on {index.field_name!r} could not be built ({reason}) "
                "and has no fallback here; left unindexed (--index-fallback)"]

    def abort(self, plan: RestorePlan) -> None:
        if plan.staging != plan.target:
            try:
                if self.client.has_collection(plan.staging):
                    self.client.drop_collection(plan.staging)
            except Exception:  # best effort: the error that got us here is the one to report
                pass

    def wait_index(self, name: str, timeout: float = 600.0) -> None:
        """Wait until every index of ``name`` has indexed all rows (used by tests and drills)."""
        deadline = time.monotonic() + timeout
        for index_name in self.client.list_indexes(name):
            while time.monotonic() < deadline:
                d = self.client.describe_index(name, index_name)
                if (d.get("state") == "Finished" and not d.get("pending_index_rows")
                        and int(d.get("indexed_rows") or 0) >= int(d.get("total_rows") or 0)):
                    break
                time.sleep(0.5)


    # -- drill: sample rows by primary key, vector search, drop (used by ops/drill.py) ------------

    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        """A backup chunk's rows as (primary key, row), in the form fetch_rows returns them."""
        pk = spec.primary.name
        return [(row[pk], row) for row in chunk_to_rows(spec, chunk)]

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        """The rows of ``name`` with these primary keys (in ``partition`` unless ENGINE_ROUTED), round-tripped
        through the chunk conversion so they compare exactly with rows_of_chunk."""
        self.ensure_loaded(name)
        kwargs: dict[str, Any] = {"output_fields": ["*"]}
        if partition != ENGINE_ROUTED:
            kwargs["partition_names"] = [partition]
        out: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            got = self._call(f"get rows of {name!r}", self.client.get, name, ids=keys[start:start + 500], **kwargs)
            rows = list(got)
            if rows:
                out.update(self.rows_of_chunk(spec, rows_to_chunk(spec, partition, rows)))
        return out

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        """The value of vector field ``field_name`` in a row from rows_of_chunk (None if it has none)."""
        return row.get(field_name)

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        values = chunk.columns[spec.primary.name].values
        return values.tolist() if isinstance(values, np.ndarray) else list(values)

    def _index_of(self, name: str, field_name: str) -> dict[str, Any] | None:
        """describe_index of the index on ``field_name`` of collection ``name`` (what was built, not recorded)."""
        for index_name in self._call(f"list indexes of {name!r}", self.client.list_indexes, name):
            d = self._call(f"describe index {index_name!r}", self.client.describe_index, name, index_name)
            if d.get("field_name") == field_name:
                return dict(d)
        return None

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        index = self._index_of(name, field_name)
        if index is None or index.get("indexed_rows") is None:
            return None
        return max(0, self.count(name) - int(index["indexed_rows"]))

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        """Primary keys of the top ``k`` hits for each query vector (values as rows_of_chunk gives them), with
        the metric of the field's recorded index and search parameters for the index the collection has."""
        field = spec.field(field_name)
        recorded = next((i for i in spec.indexes if i.field_name == field_name), None)
        t = field.type
        if t in (FieldType.FLOAT16_VECTOR, FieldType.BFLOAT16_VECTOR, FieldType.INT8_VECTOR):
            data: list[Any] = [np.frombuffer(q, dtype=VECTOR_DTYPES[t]) for q in queries]
        elif t in (FieldType.FLOAT_VECTOR, FieldType.BINARY_VECTOR, FieldType.SPARSE_FLOAT_VECTOR):
            data = list(queries)
        else:
            raise Unsupported(f"vector search on {t.value} fields is not supported by the drill yet")
        self.ensure_loaded(name)
        built = self._index_of(name, field_name) or {}
        index_type = str(built.get("index_type") or "").upper()
        search: dict[str, Any] = {}
        if index_type.startswith("HNSW"):
            search["ef"] = max(params.ef, k)
        elif index_type == "DISKANN":
            search["search_list"] = max(params.ef, k)
        elif "IVF" in index_type or index_type == "SCANN":
            nlist = _number(built.get("nlist"))
            search["nprobe"] = min(params.nprobe, nlist) if isinstance(nlist, int) and nlist > 0 else params.nprobe
        search_params: dict[str, Any] = {"params": search}
        metric = built.get("metric_type") or (recorded.metric_type if recorded else None)
        if metric:
            search_params["metric_type"] = metric
        pk = spec.primary.name
        out: list[list[Any]] = []
        for start in range(0, len(data), 16):
            res = self._call(f"search {name!r}", self.client.search, name, data=data[start:start + 16],
                             anns_field=field_name, limit=k, search_params=search_params, output_fields=[pk],
                             consistency_level="Strong")
            for hits in res:
                out.append([h[pk] if pk in h else h["id"] for h in hits])
        return out

    def drop_collection(self, name: str) -> None:
        self._loaded_by_us.discard(name)
        self._call(f"drop {name!r}", self.client.drop_collection, name)


# -- restoring: names, index parameters and fallbacks, refusals -----------------------------------


#: build parameters knowhere (Milvus's index library) declares as defaults, used only for an index whose
#: parameters the source did not report (Milvus Lite) on a server that refuses to build it without them (2.3)
KNOWHERE_DEFAULTS: dict[str, dict[str, Any]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 128},
    "IVF_SQ8": {"nlist": 128},
    "BIN_IVF_FLAT": {"nlist": 128},
}
_NUMERIC = {FieldType.INT8, FieldType.INT16, FieldType.INT32, FieldType.INT64, FieldType.FLOAT, FieldType.DOUBLE}


def name_problem(name: str) -> str | None:
    """Milvus's collection name rules (a 2.3 server's own wording)."""
    if not name:
        return "a collection name cannot be empty"
    if len(name) > 255:
        return "the length of a collection name must be less than 255 characters"
    if not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        return "the first character of a collection name must be an underscore or letter"
    if not all(c == "_" or (c.isascii() and c.isalnum()) for c in name):
        return "a collection name can only contain numbers, letters and underscores"
    return None


def _fallbacks(ftype: FieldType) -> list[str]:
    """Index types to try, in order, when the recorded one cannot be built (--index-fallback)."""
    if ftype is FieldType.SPARSE_FLOAT_VECTOR:
        return ["SPARSE_INVERTED_INDEX", "AUTOINDEX"]
    if ftype is FieldType.BINARY_VECTOR:
        return ["BIN_FLAT", "AUTOINDEX"]
    if ftype.is_vector:
        return ["AUTOINDEX", "FLAT"]
    if ftype in _NUMERIC:  # Milvus 2.3 builds only STL_SORT on numbers, Trie on strings
        return ["INVERTED", "STL_SORT", "AUTOINDEX"]
    if ftype is FieldType.VARCHAR:
        return ["INVERTED", "Trie", "AUTOINDEX"]
    return ["INVERTED", "AUTOINDEX"]


def _create_refused(spec: CollectionSpec, display: str, msg: str) -> VecbackupError:
    """A refused create_collection as one line naming the field when the server's message lets us find it
    (a 2.3 server names the parameter and the field type, not the field)."""
    for param in (limits.MAX_LENGTH, limits.MAX_CAPACITY):
        if f"({param})" in msg:
            for name, missing in limits.unset(spec).items():
                if param in missing:
                    return TargetRejected(
                        f"Milvus at {display} refused field {name!r}: it requires a {param} the backup does not "
                        "record", hint=f"restore with --field-params {name}:{param}=N")
    named = _named_field(spec, msg)
    where = f" (field {named!r})" if named else ""
    return TargetRejected(f"Milvus at {display} refused to create the collection{where}: {msg}",
                          hint="--field-params / --collection-params set what the backup does not record")


def _insert_refused(spec: CollectionSpec, chunk: Chunk, display: str, msg: str) -> VecbackupError:
    """A refused insert as one line naming the field and the value that broke its limit, found in the chunk."""
    found = limits.violations(spec, chunk)
    if found:
        v = found[0]
        return TargetRejected(f"Milvus at {display} refused rows: field {v.field!r}: {v} (chunk row {v.row})",
                              hint=f"restore with a larger --field-params {v.field}:{v.limit}=N, at least {v.found}")
    named = _named_field(spec, msg)
    where = f" for field {named!r}" if named else ""
    return TargetRejected(f"Milvus at {display} refused rows{where}: {msg}")


def _refuse_lite_dropped_keys(spec: CollectionSpec, chunk: Chunk, display: str) -> None:
    """Milvus Lite silently drops a dynamic field named ``_partition`` from inserted rows: refuse rather than lose
    it (a Qdrant backup restored into Lite has the key renamed by the mapping instead)."""
    meta = chunk.columns.get(DYNAMIC_COLUMN)
    if meta is None:
        return
    for i, extra in enumerate(meta.values):
        if isinstance(extra, dict) and LITE_DROPPED_KEY in extra:
            key = chunk.columns[spec.primary.name].values[i]
            key = key.item() if isinstance(key, np.generic) else key
            raise TargetRejected(f"row {key!r} has a dynamic field {LITE_DROPPED_KEY!r}, which Milvus Lite at "
                                 f"{display} would silently drop", hint="restore into a Milvus server")


def _named_field(spec: CollectionSpec, msg: str) -> str | None:
    """The field a server message names ({name}, 'name' or "name"), if any."""
    for f in spec.fields:
        if any(q.format(f.name) in msg for q in ("{{{}}}", "'{}'", '"{}"', "field {} ")):
            return f.name
    return None


# -- helpers ----------------------------------------------------------------------------------------


def _lite_file_locked(path: str) -> bool:
    """After a failed open: does another process hold the Milvus Lite file's lock?"""
    import fcntl
    import os

    lock = os.path.join(path, "LOCK") if os.path.isdir(path) else path  # milvus-lite 3 locks DIR/LOCK
    try:
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        pass
    return False


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(d, default=str))


# -- rows <-> columns -----------------------------------------------------------------------------


def _vector_bytes(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, np.ndarray):
        return v.tobytes()
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], (bytes, bytearray)):
        return bytes(v[0])  # pymilvus returns byte vectors as [b"..."]
    return np.asarray(v).tobytes()


def rows_to_chunk(spec: CollectionSpec, partition: str, rows: list[dict[str, Any]]) -> Chunk:
    """pymilvus query rows -> a columnar chunk."""
    n = len(rows)
    columns: dict[str, Column] = {}
    names = {f.name for f in spec.fields}
    for f in spec.fields:
        raw = [r.get(f.name) for r in rows]
        valid = None
        if any(v is None for v in raw):
            valid = np.fromiter((v is not None for v in raw), dtype=bool, count=n)
        t = f.type
        if t in SCALAR_DTYPES:
            values: Any = np.array([0 if v is None else v for v in raw], dtype=SCALAR_DTYPES[t])
        elif t is FieldType.FLOAT_VECTOR:
            width = vector_width(t, f.dim or 0)
            values = np.array([v if v is not None else [0.0] * width for v in raw], dtype="<f4").reshape(n, width)
        elif t in VECTOR_DTYPES:
            width = vector_width(t, f.dim or 0)
            itemsize = np.dtype(VECTOR_DTYPES[t]).itemsize
            zero = bytes(width * itemsize)
            buf = b"".join(zero if v is None else _vector_bytes(v) for v in raw)
            values = np.frombuffer(buf, dtype=VECTOR_DTYPES[t]).reshape(n, width)
        elif t is FieldType.SPARSE_FLOAT_VECTOR:
            values = [None if v is None else {int(k): float(x) for k, x in v.items()} for v in raw]
        else:  # VARCHAR, JSON, ARRAY
            values = raw
        columns[f.name] = Column(values, valid)
    if spec.enable_dynamic_field:
        columns[DYNAMIC_COLUMN] = Column([{k: v for k, v in r.items() if k not in names} for r in rows])
    return Chunk(partition=partition, num_rows=n, columns=columns)


def chunk_to_rows(spec: CollectionSpec, chunk: Chunk, *, keep_ids: bool = True) -> list[dict[str, Any]]:
    """A decoded chunk -> rows for MilvusClient.insert."""
    n = chunk.num_rows
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for f in spec.fields:
        if f.is_primary and f.auto_id and not keep_ids:
            continue
        col = chunk.columns[f.name]
        t = f.type
        if t in SCALAR_DTYPES or t is FieldType.FLOAT_VECTOR:
            values: list[Any] = col.values.tolist()  # type: ignore[union-attr]
        elif t in VECTOR_DTYPES:
            arr = col.values
            values = [arr[i].tobytes() for i in range(n)]
        else:
            values = list(col.values)
        if col.valid is not None:
            for i in np.flatnonzero(~col.valid):
                values[i] = None
        name = f.name
        for row, v in zip(rows, values, strict=True):
            row[name] = v
    if spec.enable_dynamic_field and DYNAMIC_COLUMN in chunk.columns:
        for row, extra in zip(rows, chunk.columns[DYNAMIC_COLUMN].values, strict=True):
            if extra:
                for k, v in extra.items():
                    row.setdefault(k, v)
    return rows
