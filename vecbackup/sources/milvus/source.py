"""Milvus as a Source: describe a collection (schema, indexes, partitions, what Milvus Lite does not report) and
read its rows in batches, as columnar chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from vecbackup.errors import NotFound, Unsupported
from vecbackup.format.codec import Chunk
from vecbackup.schema import CollectionSpec, Field, FieldType, Index
from vecbackup.sources.base import ENGINE_ROUTED, Described
from vecbackup.sources.milvus.connection import (
    _CONSISTENCY,
    _FIELD_PARAM_KEYS,
    _INDEX_STATE_KEYS,
    MAX_BATCH,
    Connection,
)
from vecbackup.sources.milvus.rows import _jsonable, _number, rows_to_chunk


class MilvusSource(Connection):
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
