"""Milvus as a Sink: check that a server can hold the collection, create it under a staging name, insert chunks,
build the indexes (with fallbacks and knowhere's defaults where the backup does not know them), load, rename.
Refusals become one line naming the field and the flag that fixes it."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import orjson

import vecbackup.engines.milvus.binlog_import as binlog_import
import vecbackup.engines.milvus.bulk as bulk
import vecbackup.engines.milvus.features as features
import vecbackup.index_types as index_types
import vecbackup.limits as limits
from vecbackup.engines.base import ENGINE_ROUTED, ImportState, KeyCopies, PhaseReport, RestorePlan
from vecbackup.engines.milvus.columnar import Unfit, send_with_retries
from vecbackup.engines.milvus.connection import (
    _ALLOW_AUTO_ID,
    MAX_BATCH,
    Connection,
    Look,
    _message,
    _pymilvus,
    waiting,
)
from vecbackup.engines.milvus.inserts import insert_request
from vecbackup.engines.milvus.rows import chunk_to_rows
from vecbackup.errors import NotFound, TargetRejected, Unreachable, Unsupported, VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.format.lease import LEASE_KEY
from vecbackup.index_types import params_option, type_option
from vecbackup.schema import DYNAMIC_COLUMN, LITE_DROPPED_KEY, CollectionSpec, Field, FieldType, Function, Index
from vecbackup.times import instant_text
from vecbackup.words import either, number, param


class MilvusSink(Connection):
    renames = True  # a restore fills a staging collection and renames it when complete
    max_writers = 8  # one gRPC channel carries concurrent inserts

    def name_problem(self, name: str) -> str | None:
        return name_problem(name)

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        notes = self._check_functions(spec)
        dt = self._DataType
        for f in spec.fields:
            if not hasattr(dt, f.type.value):
                raise Unsupported(f"field {f.name!r} has type {f.type.value}, which this pymilvus cannot create")
        lacking = lacking_types(spec, self._version, lite=bool(self.url.lite))
        if lacking:
            where = "Milvus Lite" if self.url.lite else f"Milvus {self._version}"
            raise Unsupported(f"{where} at {self.display} cannot hold " + "; ".join(lacking),
                              hint=lacking_hint(spec, lite=bool(self.url.lite)))
        vectors = [f for f in spec.fields if f.type.is_vector]
        if self._version.startswith("v2.3") or self._version.startswith("2.3"):
            if len(vectors) > 1:
                raise Unsupported(
                    f"Milvus {self._version} at {self.display} allows one vector field per collection; "
                    f"the backup has {len(vectors)} ({', '.join(f.name for f in vectors)})",
                    hint="restore into Milvus 2.4 or newer")
            for f in spec.fields:  # (the types it lacks: lacking_types)
                if f.nullable or f.default_value is not None:
                    raise Unsupported(f"field {f.name!r}: Milvus {self._version} has no nullable or default "
                                      "values", hint="restore into Milvus 2.5 or newer")
        unset = limits.unset(spec)
        if unset and not self.url.lite:  # a server requires every limit (Milvus Lite takes a schema without them)
            what = "; ".join(f"field {name!r} ({spec.field(name).type_name}): the backup does not record its "
                             f"{' and '.join(missing)}" for name, missing in unset.items())
            raise TargetRejected(f"{what}, which Milvus at {self.display} requires", hint="restore with " + " ".join(
                _field_params(name, dict.fromkeys(missing, "N")) for name, missing in unset.items()))
        if plan.shards is not None and plan.shards != spec.num_shards:
            notes.append(f"num_shards {spec.num_shards if spec.num_shards is not None else 'default'} -> "
                         f"{plan.shards} (--shards)")
        return notes + self._settings_check(spec, plan)

    def _settings_check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        """What this target drops or stores unused of the spec's settings, and the scalar indexes it cannot build
        (refused here, before anything is created, unless --index-fallback): features.py, measured."""
        kind = features.target_kind(self._version, self.url.lite)
        if kind is None:
            return []
        shown = dataclasses.replace(spec, num_shards=plan.shards or spec.num_shards)
        notes = [n for n in (features.dropped(shown, kind), features.unused(spec, kind, self._version)) if n]
        problems = [(index, p) for index in spec.indexes
                    if (p := features.index_problem(kind, spec.field(index.field_name), index)) is not None]
        if problems and not plan.index_fallback:
            raise Unsupported(f"Milvus at {self.display} " + "; ".join(
                f"cannot build index {index.index_type} on field {index.field_name!r}: {p}" for index, p in problems),
                hint="pass --index-fallback to build the engine's default index instead")
        notes += [features.index_note(kind, self._version, spec.field(index.field_name), index, p)
                  for index, p in problems]
        return notes

    def _check_functions(self, spec: CollectionSpec) -> list[str]:
        """Unsupported unless this target can recreate every function of ``spec`` (one line naming them all and
        --drop-functions); else a note per function saying what the target computes."""
        problems = [(fn, why) for fn in spec.functions if (why := function_problem(fn, self._version, self.url.lite,
                                                                                 _pymilvus()))]
        if problems:
            raise Unsupported("; ".join(f"{fn.label} cannot be recreated: {why}" for fn, why in problems),
                              hint="restore into a Milvus that has it (BM25: 2.5 or newer), or pass "
                                   f"{param('drop_functions', True)} to restore without functions and their output "
                                   "fields")
        notes = []
        for fn in spec.functions:
            outs = ", ".join(repr(n) for n in fn.output_field_names)
            ins = ", ".join(repr(n) for n in fn.input_field_names)
            notes.append(f"{fn.label}: recreated; Milvus at {self.display} computes {outs} from {ins} as the rows "
                         "are inserted" + (" (calling the function's model provider for every row)"
                                           if fn.type == "TEXTEMBEDDING" else ""))
            if fn.withheld:
                notes.append(f"{fn.label}: {number(len(fn.withheld), 'parameter')} "
                             f"{', '.join(repr(n) for n in fn.withheld)} (credentials) "
                             "are not in the backup: the target must supply them from its own configuration "
                             "(Milvus Lite: e.g. OPENAI_API_KEY in its environment)")
        return notes

    def create(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        self._write_notes = []
        pm = _pymilvus()
        dt = self._DataType
        primary = spec.primary
        schema = pm.MilvusClient.create_schema(
            auto_id=primary.auto_id, enable_dynamic_field=spec.enable_dynamic_field, description=spec.description,
            **({"enable_namespace": True} if spec.extra.get("enable_namespace") else {}),
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
            if f.default_value is not None:  # a TIMESTAMPTZ's is kept as microseconds; pymilvus takes ISO text
                kw["default_value"] = instant_text(f.default_value) if f.type is FieldType.TIMESTAMPTZ \
                    else f.default_value
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
            _keep_params(schema.fields[-1], f)
        for fn in spec.functions:  # the server fills their output fields from the inserted inputs
            function = self._call(f"define function {fn.name!r}", pm.Function, fn.name, pm.FunctionType[fn.type],
                                  list(fn.input_field_names), list(fn.output_field_names),
                                  description=fn.description, params=dict(fn.params))
            self._call(f"add function {fn.name!r}", schema.add_function, function)
        ckw: dict[str, Any] = {"schema": schema}
        if spec.consistency_level:
            ckw["consistency_level"] = spec.consistency_level
        shards = plan.shards if plan.shards is not None else spec.num_shards
        if shards:
            ckw["num_shards"] = shards
        if spec.extra.get("num_partitions"):
            ckw["num_partitions"] = spec.extra["num_partitions"]
        properties = {k: v for k, v in spec.properties.items() if k != LEASE_KEY}
        if lease is not None:  # with the collection, so it never exists without its lease
            properties[LEASE_KEY] = lease
        if self._auto_id_helper(spec, plan):
            properties[_ALLOW_AUTO_ID] = "true"  # Milvus 2.5+: accept the recorded primary keys
        if properties:
            ckw["properties"] = properties
        try:
            self.client.create_collection(plan.staging, **ckw)
        except self._exc as e:
            raise _create_refused(spec, self.display, _message(e)) from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: create collection failed: {_message(e)}") from None
        self._ensure_partitions(spec, plan.staging)
        return []

    def _ensure_partitions(self, spec: CollectionSpec, name: str) -> None:
        """Create the backup's partitions that collection ``name`` lacks (one another worker creates at the same
        moment is no error)."""
        if any(f.is_partition_key for f in spec.fields):
            return  # the engine makes them
        for p in spec.partitions:
            if p != "_default" and not self.client.has_partition(name, p):
                try:
                    self._call(f"create partition {p!r}", self.client.create_partition, name, p)
                except VecbackupError:
                    if not self.client.has_partition(name, p):
                        raise

    def _auto_id_helper(self, spec: CollectionSpec, plan: RestorePlan) -> bool:
        """Whether the staging collection gets the property that lets a server take recorded auto-ids."""
        return spec.primary.auto_id and plan.keep_ids and self.url.lite is False

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        if self.url.lite:
            _refuse_lite_dropped_keys(spec, chunk, self.display)
        partition = chunk.partition if chunk.partition not in (ENGINE_ROUTED, "_default") else ""
        try:
            if self.columnar:
                try:
                    return self._insert_columns(spec, plan, chunk, partition)
                except Unfit as e:
                    note = f"inserted row by row: the columnar insert does not fit ({e})"
                    if note not in self._write_notes:
                        self._write_notes.append(note)
            rows = chunk_to_rows(spec, chunk, keep_ids=plan.keep_ids)
            res = self.client.insert(plan.staging, rows, **({"partition_name": partition} if partition else {}))
            return int(res.get("insert_count", len(rows)) if isinstance(res, dict) else len(rows))
        except self._exc as e:
            msg = _message(e)
            if spec.primary.auto_id and plan.keep_ids and "number of fields" in msg:
                raise Unsupported(
                    f"Milvus {self._version} at {self.display} does not accept recorded primary keys for "
                    f"auto-id field {spec.primary.name!r}",
                    hint=f"pass {param('new_ids', True)} to let the server assign new ids") from None
            raise _insert_refused(spec, chunk, self.display, msg) from None
        except (Unfit, VecbackupError):
            raise
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: insert failed: {_message(e)}") from None

    def _insert_columns(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk, partition: str) -> int:
        """One InsertRequest built from the chunk's columns (inserts.py), through pymilvus's own connection."""
        request = insert_request(spec, chunk, plan.staging, partition, keep_ids=plan.keep_ids)
        try:
            from pymilvus.client.utils import check_status

            stub = self.client._get_connection()._stub
        except Exception as e:
            raise Unfit(f"pymilvus internals not as expected ({type(e).__name__})") from None
        response = send_with_retries(lambda: stub.Insert(request, timeout=self.url.timeout))
        check_status(response.status)  # a refusal raises MilvusException, as pymilvus's insert does
        return int(response.insert_cnt)

    def finish(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        return [*self.prepare(spec, plan, report), *self.publish(spec, plan)]

    def prepare(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        """Flush the staging collection, build its indexes and load it (it keeps its staging name), telling
        ``report`` each of these phases and, on a server, how many rows each index covers and how much of the
        collection is loaded, as it reports them (Milvus Lite reports neither while it works)."""
        c = self.client
        notes: list[str] = list(self._write_notes)
        waiting(report, "flushing", lambda: self._call("flush", c.flush, plan.staging))
        if self._auto_id_helper(spec, plan) and _ALLOW_AUTO_ID not in spec.properties:
            # we only set it to insert the recorded ids: leave the schema as the source had it
            try:
                c.drop_collection_properties(plan.staging, [_ALLOW_AUTO_ID])
            except Exception:  # older servers: the property is inert there
                notes.append(f"could not remove the helper property {_ALLOW_AUTO_ID!r} after inserting ids")
        built = self._built_indexes(plan.staging)  # by a commit that stopped after building them (restore_shard)
        for index in spec.indexes:
            if not is_built(spec, index, built):
                notes.extend(self._create_index(spec, plan, index, report))
        waiting(report, "loading", lambda: self._call(f"load {plan.staging!r}", c.load_collection, plan.staging),
                None if self.url.lite else lambda: self._load_progress(plan.staging))
        return notes

    def _load_progress(self, name: str) -> tuple[int, int, str] | None:
        """How much of collection ``name`` is loaded, in percent, as the server reports it."""
        state = self.client.get_load_state(name)
        if "progress" in state:
            return int(state["progress"]), 100, "%"
        return (100, 100, "%") if "Loaded" in str(state.get("state")) else None

    def _index_progress(self, name: str, index: Index) -> tuple[int, int, str] | None:
        """The rows of collection ``name`` the index being built for ``index`` covers, of the rows it has, as the
        server reports them (none before the server has the index)."""
        c = self.client
        names = c.list_indexes(name, field_name=index.field_name)
        wanted = [n for n in names if n == index.index_name] or names
        if len(wanted) != 1:
            return None
        indexed, total, _ = self.index_rows(name, wanted[0])
        return (indexed, total, "rows") if total else None

    def _built_indexes(self, name: str) -> set[tuple[str, str]]:
        """The (field, index name) of every index collection ``name`` has."""
        c = self.client
        names = self._call(f"list the indexes of {name!r}", c.list_indexes, name)
        return {(str(d.get("field_name")), str(d.get("index_name") or n))
                for n in names for d in [self._call(f"describe index {n!r}", c.describe_index, name, n)]}

    def publish(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        """Give the prepared staging collection the target's name (dropping the target first when replacing it,
        and moving its aliases over), then create the backup's aliases that are free."""
        c = self.client
        notes: list[str] = []
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
                     report: PhaseReport | None = None) -> str | None:
        """Build one index (telling ``report``, with the rows it covers as the server reports them); None on
        success, else the server's reason."""
        ip = self.client.prepare_index_params()
        kw: dict[str, Any] = {"index_type": index_type, "params": dict(params)}
        if index.index_name:
            kw["index_name"] = index.index_name
        if index.metric_type and field.type.is_vector:
            kw["metric_type"] = index.metric_type
        ip.add_index(index.field_name, **kw)
        look: Look | None = None if self.url.lite else lambda: self._index_progress(staging, index)
        try:
            waiting(report, f"building index {index.index_name or index.field_name}",
                    lambda: self.client.create_index(staging, ip), look)
            return None
        except self._exc as e:
            return _message(e)
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: create index failed: {_message(e)}") from None

    def _create_index(self, spec: CollectionSpec, plan: RestorePlan, index: Index,
                      report: PhaseReport | None = None) -> list[str]:
        """Build ``index`` as the plan has it (its type and parameters: recorded, or chosen by --index-type and
        --index-params); the notes on what was built otherwise."""
        field = spec.field(index.field_name)
        unknown = index.params is None  # neither recorded by the source nor given (--index-params)
        params = index.params or {}
        kind = features.target_kind(self._version, self.url.lite)
        predicted = features.index_problem(kind, field, index)
        if predicted is not None:  # check() refused it unless --index-fallback, and the plan says what is built
            fallback = features.fallback_index(kind, field)
            if fallback is None:
                return []
            reason = self._build_index(plan.staging, field, fallback, index, {}, report)
            if reason is None:
                return []
            raise Unsupported(f"Milvus at {self.display} cannot build index {fallback} on field "
                              f"{index.field_name!r} either: {reason}")
        chosen = index.field_name in plan.index_types
        why_unknown = (f"{type_option(index.field_name, index.index_type)} was given no {params_option()}" if chosen
                       else "the source did not report its build parameters")
        reason = self._build_index(plan.staging, field, index.index_type, index, params, report)
        if reason is None:
            if not unknown:
                return []
            return [f"index {index.index_name or index.field_name!r}: " + (
                f"{why_unknown}; built with the engine defaults" if chosen
                else "parameters were not recorded by the source; built with the engine defaults")]
        declared = index_types.defaults(index.index_type) if unknown else None
        if declared is not None and self._build_index(plan.staging, field, index.index_type, index,
                                                      declared, report) is None:
            shown = ",".join(f"{k}={v}" for k, v in declared.items())
            return [f"index {index.index_name or index.field_name!r} ({index.index_type}): {why_unknown} and Milvus "
                    f"at {self.display} requires them ({reason}); built with knowhere's defaults {shown} "
                    f"(--index-params {index.field_name}:... chooses others)"]
        if not plan.index_fallback:
            hint = "pass --index-fallback to build the engine's default index instead"
            if unknown:
                hint = (f"{why_unknown}: pass --index-params {index.field_name}:PARAM=VALUE,..., or --index-fallback "
                        "to build the engine's default index")
            raise Unsupported(f"Milvus at {self.display} cannot build index {index.index_type} on field "
                              f"{index.field_name!r}: {reason}", hint=hint)
        for fallback in _fallbacks(field.type):
            if fallback == index.index_type:
                continue
            if self._build_index(plan.staging, field, fallback, index, {}, report) is None:
                return [f"index on {index.field_name!r}: {index.index_type} could not be built ({reason}); "
                        f"built {fallback} instead (--index-fallback)"]
        if field.type.is_vector:
            raise Unsupported(f"Milvus at {self.display} cannot build any index on vector field "
                              f"{index.field_name!r}: {reason}")
        return [f"scalar index {index.index_type} on {index.field_name!r} could not be built ({reason}) "
                "and has no fallback here; left unindexed (--index-fallback)"]

    # -- the lease of a restore (ops/leases.py, format/lease.py): a collection property ------------------------------

    def read_lease(self, name: str) -> str | None:
        try:
            d = self.client.describe_collection(name)
        except Exception as e:
            if not self.has_collection(name):
                raise NotFound(f"collection {name!r} not found in {self.display}") from None
            raise Unreachable(f"Milvus at {self.display}: describe {name!r} failed: {_message(e)}") from None
        value = (d.get("properties") or {}).get(LEASE_KEY)
        return None if value is None else str(value)

    def write_lease(self, name: str, value: str) -> None:
        self._call(f"set the lease of {name!r}", self.client.alter_collection_properties, name, {LEASE_KEY: value})

    def clear_lease(self, name: str) -> None:
        """Remove the lease property; a 2.3 server cannot remove a property ("only support alter collection
        properties"), so there it is emptied (an empty lease is none)."""
        try:
            self.client.drop_collection_properties(name, [LEASE_KEY])
        except Exception:
            self._call(f"clear the lease of {name!r}", self.client.alter_collection_properties, name,
                       {LEASE_KEY: ""})

    def resolve(self, name: str) -> str | None:
        if not self.has_collection(name):
            return None
        try:
            return str(self.client.describe_collection(name).get("collection_name") or name)  # an alias: its own
        except Exception:
            return name

    def abort(self, plan: RestorePlan) -> None:
        if plan.staging != plan.target:
            try:
                if self.client.has_collection(plan.staging):
                    self.client.drop_collection(plan.staging)
            except Exception:  # best effort: the error that got us here is the one to report
                pass

    # -- keys held by more than one partition (ops/duplicates.py) -----------------------------------------------

    def key_copies(self, spec: CollectionSpec) -> KeyCopies:
        """Milvus keeps a key in each partition it is written into. A 2.3 server counts every copy and its
        collection-level reads return one or the other (changing from one kind of read to another); Milvus Lite
        counts each key once and its collection-level reads return the copy written last, and it keeps an older
        copy only once that is flushed (measured: docs/COMPATIBILITY.md)."""
        if self.url.lite:
            return KeyCopies(held=True, counted=False, last_shown=True)
        return KeyCopies(held=True, counted=True, last_shown=False)

    def settle(self, plan: RestorePlan) -> None:
        if self.url.lite:
            self._call(f"flush {plan.staging!r}", self.client.flush, plan.staging)

    def partition_counts(self, spec: CollectionSpec, name: str, partitions: list[str]) -> dict[str, int]:
        """A server counts each partition (count(*)); Milvus Lite's count(*) ignores partitions, so its keys are
        read, partition by partition."""
        self.ensure_loaded(name)
        out: dict[str, int] = {}
        for p in partitions:
            if not self.url.lite:
                res = self._call(f"count rows of {name!r}", self.client.query, name, filter="",
                                 output_fields=["count(*)"], partition_names=[p], consistency_level="Strong")
                out[p] = int(res[0]["count(*)"])
                continue
            it = self._call(f"open an iterator over {name!r}", self.client.query_iterator, name,
                            batch_size=MAX_BATCH, output_fields=[spec.primary.name], partition_names=[p],
                            consistency_level="Strong")
            n = 0
            try:
                while page := self._call(f"read keys of {name!r}", it.next):
                    n += len(page)
            finally:
                it.close()
            out[p] = n
        return out


    # -- a restore by several workers into one staging collection (ops/restore_shard.py) -------------------------

    def ensure_staging(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        """Create the run's staging collection with its partitions (and ``lease``), unless another worker already
        has: every worker calls this, in any order, at the same time too."""
        self._write_notes = []
        if not self.has_collection(plan.staging):
            try:
                return self.create(spec, plan, lease)
            except VecbackupError:
                if not self.has_collection(plan.staging):  # not another worker's create that came first
                    raise
        self._ensure_partitions(spec, plan.staging)
        return []

    def markers(self, name: str) -> set[str]:
        """The marker names (aliases) collection ``name`` carries."""
        res = self._call(f"list the aliases of {name!r}", self.client.list_aliases, collection_name=name)
        return set(res.get("aliases", []))

    def add_marker(self, name: str, marker: str) -> None:
        """Mark collection ``name`` (an alias: atomic, listed with the collection, and outside its data)."""
        try:
            self._call(f"create alias {marker!r}", self.client.create_alias, name, marker)
        except VecbackupError:
            if marker not in self.markers(name):  # Lite refuses an alias that exists, a 2.3 server does not
                raise

    def drop_markers(self, markers: list[str]) -> None:
        for marker in markers:
            self._call(f"drop alias {marker!r}", self.client.drop_alias, marker)

    def delete_keys(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> None:
        """Delete from the staging collection's partition of ``chunk`` every row with a primary key of the chunk (a
        no-op for keys it does not hold): inserting the chunk afterwards then leaves each key once there, however
        often it is repeated, and the copies other partitions hold of a key alone."""
        column = chunk.columns[spec.primary.name].values
        keys = column.tolist() if isinstance(column, np.ndarray) else list(column)
        where = {} if chunk.partition == ENGINE_ROUTED else {"partition_name": chunk.partition}
        for expr in key_filters(spec.primary.name, keys):
            self._call(f"delete rows of {plan.staging!r}", self.client.delete, plan.staging, filter=expr, **where)

    def claim(self, staging: str, name: str) -> bool:
        """Rename ``staging`` to ``name`` if it still exists: True for the one caller that did it, False for the
        others (the server serialises renames, so this is a compare-and-swap)."""
        try:
            self.client.rename_collection(staging, name)
            return True
        except Exception as e:
            if self.has_collection(staging):
                raise Unreachable(f"Milvus at {self.display}: rename {staging!r} to {name!r} failed: "
                                  f"{_message(e)}") from None
            return False

    # -- a restore through the server's own import (ops/bulk_restore.py) ----------------------------------------

    def import_refusal(self, spec: CollectionSpec, plan: RestorePlan) -> str | None:
        if self.url.lite:
            return "Milvus Lite has no import of files"
        if self._version.lstrip("v").startswith("2.3"):
            for f in spec.fields:  # measured: 0.7486942425747212 came back as 0.7486942410469055
                if f.type is FieldType.ARRAY and f.element_type is FieldType.DOUBLE:
                    return (f"field {f.name!r} is an ARRAY<DOUBLE>, whose values Milvus {self._version}'s import "
                            "reads as float32 (losing digits)")
        return bulk.refusal(spec, plan.keep_ids)

    def start_import(self, plan: RestorePlan, partition: str, paths: list[str]) -> int:
        """One import task (the Import RPC behind 2.3's utility.do_bulk_insert)."""
        part = partition if partition not in (ENGINE_ROUTED, "_default") else ""
        handler, context = self._import_handler()
        return int(self._call(f"start an import into {plan.staging!r}", handler.do_bulk_insert, plan.staging,
                              part, paths, timeout=self.url.timeout, context=context))

    # -- the server's binlog import (engines/milvus/binlog_import.py) ---------------------------------------------

    def binlog_refusal(self, spec: CollectionSpec, plan: RestorePlan) -> str | None:
        if self.url.lite:
            return "Milvus Lite has no import of files"
        if not self._version.lstrip("v").startswith("2.3"):
            return (f"vecbackup writes Milvus 2.3's binlogs and has not been tested with the binlog import of "
                    f"Milvus {self._version}")
        return binlog_import.refusal(spec, plan.keep_ids)

    def binlog_field_ids(self, name: str) -> dict[str, int]:
        """Field name -> field id of collection ``name`` on the server, ``$meta`` included when it has dynamic
        fields: the field folders staged binlogs carry (binlog_import.target_field_ids)."""
        d = self._call(f"describe {name!r}", self.client.describe_collection, name)
        return binlog_import.target_field_ids(d.get("fields") or [], bool(d.get("enable_dynamic_field")))

    def start_binlog_import(self, plan: RestorePlan, partition: str, insert_dir: str) -> int:
        """One import task reading binlogs (the Import RPC with the ``backup`` option) into the staging collection's
        ``partition``: an insert folder of ``<segment>/<field id>/<log>`` and no delta folder."""
        part = "_default" if partition in (ENGINE_ROUTED, "") else partition  # the backup option needs a name
        handler, context = self._import_handler()
        return int(self._call(f"start a binlog import into {plan.staging!r}", handler.do_bulk_insert, plan.staging,
                              part, [insert_dir, ""], timeout=self.url.timeout, context=context, backup="true"))

    def _import_handler(self) -> tuple[Any, Any]:
        """pymilvus's connection and the call context naming the URL's database (pymilvus 3 sends the database with
        each call: without it an import looks for the collection in the default database)."""
        try:
            return self.client._get_connection(), self.client._generate_call_context()
        except Exception as e:
            raise Unsupported(f"pymilvus internals not as expected ({type(e).__name__}): no import",
                              hint=f"restore without {either('bulk_import', '--bulk-import-via')}") from None

    def import_state(self, task: int) -> ImportState:
        handler, context = self._import_handler()
        state = self._call(f"get the state of import task {task}", handler.get_bulk_insert_state, task,
                           timeout=self.url.timeout, context=context)
        failure = None
        if state.state in (state.ImportFailed, state.ImportFailedAndCleaned):
            failure = " ".join(str(state.infos.get(state.FAILED_REASON) or state.state_name).split())[:300]
        return ImportState(done=state.state == state.ImportCompleted, rows=int(state.row_count), failure=failure)


#: the first Milvus server version that has a field type (docs/COMPATIBILITY.md); types not listed: every version here
FIRST_SERVER_VERSION: dict[FieldType, tuple[int, ...]] = {
    FieldType.SPARSE_FLOAT_VECTOR: (2, 4), FieldType.BFLOAT16_VECTOR: (2, 4), FieldType.INT8_VECTOR: (2, 6),
    FieldType.GEOMETRY: (2, 6, 4), FieldType.TIMESTAMPTZ: (2, 6, 6),
}
#: field types Milvus Lite refuses in create_collection (measured on 3.2.2: "Phase 10.2 supports: BOOL, INT8/16/32/64,
#: FLOAT, DOUBLE, VARCHAR, JSON, ARRAY, GEOMETRY, TIMESTAMPTZ, FLOAT_VECTOR, SPARSE_FLOAT_VECTOR")
LITE_LACKS: frozenset[FieldType] = frozenset({FieldType.BINARY_VECTOR, FieldType.FLOAT16_VECTOR,
                                              FieldType.BFLOAT16_VECTOR, FieldType.INT8_VECTOR})
#: the Milvus Lite versions LITE_LACKS was measured on (a later Lite may hold more: it is left to say so itself)
LITE_MEASURED = (3, 2)


def _version_tuple(version: str) -> tuple[int, ...] | None:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(x) for x in m.groups() if x is not None) if m else None


def lacking_types(spec: CollectionSpec, version: str, *, lite: bool) -> list[str]:
    """The fields of ``spec`` whose type a Milvus of ``version`` (Milvus Lite's, with ``lite``) cannot hold, one
    phrase each (empty when it holds them all, or its version is not one we can read). Pure."""
    have = _version_tuple(version)
    out: list[str] = []
    for f in spec.fields:
        if f.is_struct_array:  # Milvus Lite accepts it in create_collection and drops the field (measured, 3.2.2)
            out.append(f"field {f.name!r} (ARRAY<STRUCT>): vecbackup does not write struct arrays into Milvus yet")
        elif lite and have is not None and have[:2] <= LITE_MEASURED and f.type in LITE_LACKS:
            out.append(f"field {f.name!r}: Milvus Lite has no {f.type.value}")
        elif not lite and have is not None and have < FIRST_SERVER_VERSION.get(f.type, ()):
            first = ".".join(map(str, FIRST_SERVER_VERSION[f.type]))
            out.append(f"field {f.name!r}: {f.type.value} needs Milvus {first} or newer")
    return out


def lacking_hint(spec: CollectionSpec, *, lite: bool) -> str:
    """Where a backup refused by lacking_types can go instead."""
    needed = max((FIRST_SERVER_VERSION.get(f.type, ()) for f in spec.fields), default=())
    if lite or not needed:
        return "docs/COMPATIBILITY.md says which engine holds them"
    return f"restore into Milvus {'.'.join(map(str, needed))} or newer"
def is_built(spec: CollectionSpec, index: Index, built: set[tuple[str, str]]) -> bool:
    """Whether the backup's ``index`` is among the ``built`` (field, index name) pairs of a collection: by name
    where the backup has several indexes on its field (JSON path indexes), else by field (the name may differ:
    Milvus Lite names an index after its field)."""
    if sum(i.field_name == index.field_name for i in spec.indexes) > 1:
        return (index.field_name, index.index_name) in built
    return any(field == index.field_name for field, _ in built)


#: the longest delete expression delete_keys sends (a batch of 16,384 long string keys is split over several)
MAX_FILTER_CHARS = 1 << 20


def key_filters(pk: str, keys: list[Any], max_chars: int = MAX_FILTER_CHARS) -> list[str]:
    """``pk in [...]`` filters that together name every key once, each at most ``max_chars`` long (or one key).
    Keys are written as JSON literals (strings quoted and escaped), as the Milvus expression grammar reads them."""
    head = f"{pk} in ["
    filters: list[str] = []
    parts: list[str] = []
    size = len(head) + 1
    for key in keys:
        literal = orjson.dumps(key).decode()
        if parts and size + len(literal) + 1 > max_chars:
            filters.append(head + ",".join(parts) + "]")
            parts, size = [], len(head) + 1
        parts.append(literal)
        size += len(literal) + 1
    if parts:
        filters.append(head + ",".join(parts) + "]")
    return filters


#: the Milvus server release that first holds each function type in a collection schema; a type not listed (RERANK,
#: one a newer server defines) is left to the server to accept or refuse
FUNCTION_SINCE: dict[str, tuple[int, int]] = {"BM25": (2, 5), "TEXTEMBEDDING": (2, 6), "MINHASH": (2, 6)}
#: the function types Milvus Lite (3.x) creates (it answers others with "uses unsupported type")
LITE_FUNCTIONS = ("BM25", "TEXTEMBEDDING")


def function_problem(fn: Function, version: str, lite: bool, pymilvus: Any) -> str | None:
    """Why a Milvus of ``version`` (Milvus Lite if ``lite``), driven by ``pymilvus``, cannot recreate ``fn``, or
    None (pure but for reading pymilvus's FunctionType)."""
    function_type = getattr(pymilvus, "FunctionType", None)
    if function_type is None or fn.type not in function_type.__members__:
        return f"this pymilvus has no {fn.type} functions"
    if lite:
        return None if fn.type in LITE_FUNCTIONS else f"Milvus Lite has no {fn.type} functions"
    since = FUNCTION_SINCE.get(fn.type)
    release = server_release(version)
    if since is None or release is None or release >= since:
        return None
    return f"Milvus {version} has no {fn.type} functions (since {since[0]}.{since[1]})"


def server_release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a Milvus server version (``v2.3.5``, ``2.5.4-gpu``), or None if it is not one."""
    m = re.match(r"v?(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


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


def _keep_params(built: Any, f: Field) -> None:
    """Put on the pymilvus field ``built`` the recorded field parameters pymilvus left out (it sends only those it
    knows: a newer server's, or one this pymilvus does not know, would be lost), as the server reported them."""
    params = getattr(built, "_type_params", None)
    if not isinstance(params, dict):  # pymilvus internals not as expected: what it kept is sent
        return
    for k, v in f.extra.items():
        params.setdefault(k, v)  # sent as a string (a value that is not one: as JSON)


def _create_refused(spec: CollectionSpec, display: str, msg: str) -> VecbackupError:
    """A refused create_collection as one line naming the field when the server's message lets us find it
    (a 2.3 server names the parameter and the field type, not the field)."""
    for limit in (limits.MAX_LENGTH, limits.MAX_CAPACITY):
        if f"({limit})" in msg:
            for name, missing in limits.unset(spec).items():
                if limit in missing:
                    return TargetRejected(
                        f"Milvus at {display} refused field {name!r}: it requires a {limit} the backup does not "
                        "record", hint=f"restore with {_field_params(name, {limit: 'N'})}")
    prop = _named_property(spec, msg)
    if prop is not None:
        return TargetRejected(f"Milvus at {display} refused collection property {prop!r}: {msg}",
                              hint=either(f"collection_params={{'properties.{prop}': None}} leaves it out, "
                                          f"{{'properties.{prop}': VALUE}} sets another value",
                                          f"--collection-params properties.{prop}= leaves it out, "
                                          f"properties.{prop}=VALUE sets another value"))
    named = _named_field(spec, msg)
    where = f" (field {named!r})" if named else ""
    return TargetRejected(f"Milvus at {display} refused to create the collection{where}: {msg}",
                          hint=f"{param('field_params')} / {param('collection_params')} set what the backup does not "
                               "record")


def _field_params(name: str, params: dict[str, str]) -> str:
    """``field_params={'title': {'max_length': N}}`` / ``--field-params title:max_length=N``: values set for one
    field, in the caller's words (vecbackup.words)."""
    return either(f"field_params={{{name!r}: {{" + ", ".join(f"{k!r}: {v}" for k, v in params.items()) + "}}",
                  f"--field-params {name}:" + ",".join(f"{k}={v}" for k, v in params.items()))


def _insert_refused(spec: CollectionSpec, chunk: Chunk, display: str, msg: str) -> VecbackupError:
    """A refused insert as one line naming the field and the value that broke its limit, found in the chunk."""
    found = limits.violations(spec, chunk)
    if found:
        v = found[0]
        return TargetRejected(f"Milvus at {display} refused rows: field {v.field!r}: {v} (chunk row {v.row})",
                              hint=f"restore with a larger {_field_params(v.field, {v.limit: 'N'})}, at least "
                                   f"{v.found}")
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


def _named_property(spec: CollectionSpec, msg: str) -> str | None:
    """The collection property a server message names (quoted, or a dotted key as it is), if any."""
    for key in sorted(spec.properties, key=len, reverse=True):
        if key and (any(q.format(key) in msg for q in ("'{}'", '"{}"', "{{{}}}", "[{}]"))
                    or ("." in key and key in msg)):
            return key
    return None


def _named_field(spec: CollectionSpec, msg: str) -> str | None:
    """The field a server message names ({name}, 'name' or "name"), if any."""
    for f in spec.fields:
        if any(q.format(f.name) in msg for q in ("{{{}}}", "'{}'", '"{}"', "field {} ")):
            return f.name
    return None
