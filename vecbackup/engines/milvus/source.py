"""Milvus as a Source: describe a collection (schema, indexes, partitions, what Milvus Lite does not report) and
read its rows in batches, as columnar chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from vecbackup.engines.base import ENGINE_ROUTED, Described
from vecbackup.engines.milvus.columnar import ColumnarReader, Unfit, rebatch
from vecbackup.engines.milvus.connection import (
    _CONSISTENCY,
    _FIELD_PARAM_KEYS,
    _INDEX_STATE_KEYS,
    MAX_BATCH,
    Connection,
    _message,
)
from vecbackup.engines.milvus.rows import _jsonable, _number, default_of, rows_to_chunk
from vecbackup.errors import NotFound, Unreachable, Unsupported, VecbackupError
from vecbackup.format.codec import ARRAY_ELEMENT_TYPES, Chunk
from vecbackup.format.digests import row_digests
from vecbackup.format.lease import LEASE_KEY
from vecbackup.format.shard import Shard, owned_batches
from vecbackup.schema import CollectionSpec, Field, FieldType, Function, Index
from vecbackup.words import number

#: function parameters whose values are credentials (Milvus Lite's TEXTEMBEDDING takes an ``api_key``): never
#: recorded; their names are (Function.withheld)
SECRET_PARAMS = frozenset({"api_key", "apikey", "api-key", "secret", "secret_key", "access_key", "access_key_id",
                           "secret_access_key", "token", "password", "authorization"})


#: build parameters of index types that take them (knowhere's defaults), as an example in the note on what Milvus
#: Lite does not report
EXAMPLE_INDEX_PARAMS = {"HNSW": "M=16,efConstruction=200", "IVF_FLAT": "nlist=128", "IVF_SQ8": "nlist=128",
                        "IVF_PQ": "nlist=128,m=8,nbits=8", "BIN_IVF_FLAT": "nlist=128"}


def unreported_index_params(indexes: list[Index]) -> str:
    """The one note of a Milvus Lite backup on the build parameters of its indexes, which Lite does not report:
    which indexes, and how a restore or drill is given them (the option, and the config key that holds them for
    every run). Pure."""
    shown = sorted(indexes, key=lambda i: (i.field_name, i.index_name or ""))
    which = ", ".join(f"index {i.index_name or i.field_name!r} on {i.field_name!r}" for i in shown)
    example = next((f"{i.field_name}:{EXAMPLE_INDEX_PARAMS[i.index_type.upper()]}" for i in shown
                    if i.index_type.upper() in EXAMPLE_INDEX_PARAMS), f"{shown[0].field_name}:PARAM=VALUE")
    return (f"Milvus Lite does not report index parameters ({which}): recorded as unknown, and a restore or drill "
            "builds them with the target's defaults; to build them as they were, give restore and drill "
            f"--index-params FIELD:PARAM=VALUE,... (e.g. --index-params {example}), or record them once in the config "
            f'file: index_params = ["{example}"] in its [restore] and [drill] tables (docs/CONFIG.md)')


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names)


def _function_from_milvus(raw: dict[str, Any]) -> Function:
    """One entry of describe_collection's ``functions`` as recorded: its type by name (pymilvus's FunctionType;
    a number it does not know stays that number, as a string), params verbatim but for credentials."""
    ftype = raw.get("type")
    tname = getattr(ftype, "name", None) or str(ftype)
    params = _jsonable(dict(raw.get("params") or {}))
    withheld = tuple(sorted(k for k in params if k.lower() in SECRET_PARAMS))
    return Function(name=str(raw.get("name", "")), type=tname,
                    input_field_names=tuple(raw.get("input_field_names") or ()),
                    output_field_names=tuple(raw.get("output_field_names") or ()),
                    params={k: v for k, v in params.items() if k not in withheld},
                    description=str(raw.get("description") or ""), withheld=withheld)


class MilvusSource(Connection):
    # -- Source -----------------------------------------------------------------------------------

    max_readers = 8  # one gRPC channel carries concurrent queries

    def describe(self, name: str) -> Described:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}",
                           hint=f"`vecbackup collections {self.display}` lists what is there")
        d = self._call(f"describe {name!r}", self.client.describe_collection, name)
        extra: dict[str, Any] = schema_settings(name, d)
        notes: list[str] = []
        fields = tuple(self._field_from_milvus(name, f, d) for f in d["fields"])
        functions = tuple(_function_from_milvus(fn) for fn in d.get("functions") or ())
        for fn in functions:
            notes.append(f"{fn.label}: recorded; the rows of {_names(fn.output_field_names)} are not stored (the "
                         "server computes them from the inputs again on restore)")
            if fn.withheld:
                notes.append(f"{fn.label}: {number(len(fn.withheld), 'parameter')} {_names(fn.withheld)} "
                             f"{'holds' if len(fn.withheld) == 1 else 'hold'} credentials and "
                             f"{'is' if len(fn.withheld) == 1 else 'are'} not "
                             "recorded; the restore target must provide them itself (e.g. from its own "
                             "configuration or environment)")
        partitions = tuple(self._call("list_partitions", self.client.list_partitions, name))
        indexes = []
        for index_name in self._call("list_indexes", self.client.list_indexes, name):
            raw = self._call(f"describe index {index_name!r}", self.client.describe_index, name, index_name)
            indexes.append(self._index_from_milvus(raw, index_name))
        if self.url.lite and indexes:
            notes.append(unreported_index_params(indexes))
        try:
            aliases = tuple(self.client.list_aliases(collection_name=name).get("aliases", []))
        except Exception:
            aliases = tuple(d.get("aliases", []))
        level = d.get("consistency_level_name") or _CONSISTENCY.get(d.get("consistency_level", -1))
        num_shards = d.get("num_shards")
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
            unknown.append("descriptions (of the collection, its fields" + (" and functions)" if functions else ")"))
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
            # sorted: a 2.3 server lists indexes in a different order from one call to the next
            indexes=tuple(sorted(indexes, key=lambda i: (i.field_name, i.index_name or ""))),
            aliases=tuple(sorted(aliases)),
            # a restore's lease (format/lease.py) is vecbackup's, not the collection's
            properties={str(k): v for k, v in (d.get("properties") or {}).items() if k != LEASE_KEY},
            extra=extra,
            functions=functions,
        )
        return Described(spec, tuple(notes))

    def _field_from_milvus(self, coll: str, f: dict[str, Any], d: dict[str, Any]) -> Field:
        dtype = f["type"]
        tname = getattr(dtype, "name", str(dtype))
        try:
            ftype = FieldType(tname)
            if ftype is FieldType.STRUCT:
                raise ValueError(tname)
        except ValueError:
            raise Unsupported(f"field {f['name']!r} of collection {coll!r} has type {tname}, "
                              "which vecbackup cannot back up yet") from None
        params = dict(f.get("params") or {})
        element_type = None
        if ftype is FieldType.ARRAY:
            et = f.get("element_type")
            ename = getattr(et, "name", str(et))
            if ename == FieldType.STRUCT.value:  # the format holds them (docs/FORMAT.md); no engine here serves them
                raise Unsupported(f"field {f['name']!r} of collection {coll!r} is an ARRAY of STRUCT (a struct "
                                  "array), which vecbackup cannot read from Milvus yet (docs/COMPATIBILITY.md)")
            try:
                element_type = FieldType(ename)
                if element_type not in ARRAY_ELEMENT_TYPES:
                    raise ValueError(ename)
            except ValueError:
                raise Unsupported(f"field {f['name']!r}: ARRAY of {ename} is not supported yet") from None
        default = default_of(f["name"], ftype, f.get("default_value"))
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

    def _index_from_milvus(self, raw: dict[str, Any], index_name: str) -> Index:
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
        if self.url.lite:  # Milvus Lite's describe_index never reports build parameters: recorded as unknown
            params = None
        metric = raw.get("metric_type")
        return Index(
            field_name=raw["field_name"],
            index_name=raw.get("index_name", index_name),
            index_type=str(raw.get("index_type", "")),
            metric_type=None if metric in (None, "", "NONE") else metric,  # Lite says NONE for scalar indexes
            params=params,
        )

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        if any(f.is_partition_key for f in spec.fields):
            return [ENGINE_ROUTED]
        return list(spec.partitions)

    #: (set from the URL's ``columnar=``, default on) read through the columnar path (engines/milvus/columnar.py),
    #: falling back to the row path where a server's answer does not fit it; False: always the row path
    columnar: bool

    def read_notes(self, spec: CollectionSpec) -> list[str]:
        return list(self._read_notes.get(spec.name, []))

    def shown_partitions(self, spec: CollectionSpec, held: list[tuple[Any, tuple[str, ...]]]) -> list[str | None]:
        """Milvus Lite: the partition whose copy a collection-level query returns (it returns the copy written
        last), found by comparing whole rows with each partition's copy; identical copies: the first partition's.
        A Milvus server does not tell: which copy its collection-level reads return changes from one kind of
        read to another (measured on 2.3: a filter query and get() answered with different copies)."""
        if not self.url.lite:
            return [None] * len(held)
        out: list[str | None] = []
        for start in range(0, len(held), 1000):
            batch = held[start:start + 1000]
            shown = self._row_digests(spec, ENGINE_ROUTED, [k for k, _ in batch])
            copies = {p: self._row_digests(spec, p, [k for k, ps in batch if p in ps])
                      for p in sorted({p for _, ps in batch for p in ps})}
            for key, partitions in batch:
                row = shown.get(key)
                out.append(next((p for p in partitions if row is not None and copies[p].get(key) == row), None))
        return out

    def _row_digests(self, spec: CollectionSpec, partition: str, keys: list[Any]) -> dict[Any, bytes]:
        """The digest of the row of each key, read from ``partition`` (or collection-level)."""
        chunk = self._fetch_rows(spec, partition, keys)
        if chunk is None:
            return {}
        column = chunk.columns[spec.primary.name].values
        found = column.tolist() if hasattr(column, "tolist") else list(column)
        return {k: d.tobytes() for k, d in zip(found, row_digests(spec.columns, chunk), strict=True)}

    def read(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard | None = None,
             ) -> Iterator[Chunk]:
        self.ensure_loaded(spec.name)
        if shard is not None:
            yield from self._shard_pages(spec, partition, batch_size, shard)
            return
        if self.columnar:
            yielded = False
            try:
                for chunk in rebatch(self._columnar_pages(spec, partition, batch_size), batch_size):
                    yielded = True
                    yield chunk
                return
            except Unfit as e:
                if yielded:
                    raise VecbackupError(f"Milvus at {self.display}: reading {spec.name!r} column by column stopped "
                                         f"part-way: {e}") from None
                self._note(spec, f"read row by row: the columnar read does not fit ({e})")
        yield from self._row_pages(spec, partition, batch_size)

    def _note(self, spec: CollectionSpec, note: str) -> None:
        notes = self._read_notes.setdefault(spec.name, [])
        if note not in notes:
            notes.append(note)

    def _reader(self, spec: CollectionSpec, partition: str, batch_size: int) -> ColumnarReader:
        d = self._call(f"describe {spec.name!r}", self.client.describe_collection, spec.name)
        return ColumnarReader(self.client, spec, int(d.get("collection_id") or 0),
                              [] if partition == ENGINE_ROUTED else [partition], min(batch_size, MAX_BATCH),
                              timeout=self.url.timeout)

    def _shard_pages(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard) -> Iterator[Chunk]:
        """The rows ``shard`` owns: the partition's primary keys page by page (the key column alone), this shard's
        kept, their rows fetched ``batch_size`` keys at a time (``pk in [...]``), in key order."""
        by_rows: Callable[[list[Any]], Chunk | None] = lambda keys: self._fetch_rows(spec, partition, keys)  # noqa: E731
        fetch = by_rows
        if self.columnar:
            try:
                reader = self._reader(spec, partition, batch_size)
                fetch = lambda keys: self._guarded(spec, lambda: reader.fetch(partition, keys))  # noqa: E731
            except Unfit as e:
                self._note(spec, f"read row by row: the columnar read does not fit ({e})")
        yielded = False
        pk = spec.primary.name
        key_pages = ([row[pk] for row in page] for page in self._pages(spec, partition, [pk], MAX_BATCH))
        for batch in owned_batches(shard, key_pages, batch_size):
            try:
                chunk = fetch(batch)
            except Unfit as e:
                if yielded:
                    raise VecbackupError(f"Milvus at {self.display}: reading {spec.name!r} column by column "
                                         f"stopped part-way: {e}") from None
                self._note(spec, f"read row by row: the columnar read does not fit ({e})")
                fetch = by_rows
                chunk = fetch(batch)
            if chunk is not None:
                yielded = True
                yield Chunk(partition, chunk.num_rows, chunk.columns)

    def _pages(self, spec: CollectionSpec, partition: str, fields: list[str], page_size: int,
               ) -> Iterator[list[dict[str, Any]]]:
        """pymilvus's query_iterator over one partition (or all): pages of rows with ``fields``."""
        kwargs: dict[str, Any] = {"batch_size": min(page_size, MAX_BATCH), "output_fields": fields,
                                  "consistency_level": "Strong"}
        if partition != ENGINE_ROUTED:
            kwargs["partition_names"] = [partition]
        it = self._call(f"open an iterator over {spec.name!r}", self.client.query_iterator, spec.name, **kwargs)
        try:
            while True:
                page = self._call(f"read rows of {spec.name!r}", it.next)
                if not page:
                    return
                yield page
        finally:
            try:
                it.close()
            except Exception:  # the iterator's server-side state expires on its own
                pass

    def _guarded(self, spec: CollectionSpec, fn: Any) -> Any:
        """``fn()``, with a pymilvus or gRPC failure translated into the errors hierarchy."""
        try:
            return fn()
        except (Unfit, VecbackupError):
            raise
        except self._exc as e:
            raise VecbackupError(f"Milvus at {self.display}: read rows of {spec.name!r} failed: "
                                 f"{_message(e)}") from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: read rows of {spec.name!r} failed: "
                              f"{_message(e)}") from None

    def _fetch_rows(self, spec: CollectionSpec, partition: str, keys: list[Any]) -> Chunk | None:
        pk = spec.primary.name
        kwargs: dict[str, Any] = {"filter": f"{pk} in {orjson.dumps(keys).decode()}", "output_fields": ["*"],
                                  "consistency_level": "Strong", "limit": len(keys)}
        if partition != ENGINE_ROUTED:
            kwargs["partition_names"] = [partition]
        rows = self._call(f"read rows of {spec.name!r}", self.client.query, spec.name, **kwargs)
        if not rows:
            return None
        return rows_to_chunk(spec, partition, sorted(rows, key=lambda r: r[pk]))

    def _columnar_pages(self, spec: CollectionSpec, partition: str, batch_size: int) -> Iterator[Chunk]:
        pages = self._reader(spec, partition, batch_size).chunks(partition)
        while (chunk := self._guarded(spec, lambda: next(pages, None))) is not None:
            yield chunk

    def _row_pages(self, spec: CollectionSpec, partition: str, batch_size: int) -> Iterator[Chunk]:
        """pymilvus's query_iterator, one dict per row, turned into columns (rows_to_chunk)."""
        pending: list[dict[str, Any]] = []
        for page in self._pages(spec, partition, ["*"], batch_size):
            pending.extend(page)
            while len(pending) >= batch_size:
                yield rows_to_chunk(spec, partition, pending[:batch_size])
                del pending[:batch_size]
        if pending:
            yield rows_to_chunk(spec, partition, pending)


def schema_settings(name: str, d: dict[str, Any]) -> dict[str, Any]:
    """The collection-level settings of ``describe_collection`` that go to the spec's ``extra`` (only when set, so
    a backup of a collection without them is as before): ``enable_namespace``. An external collection (its rows
    are read from files elsewhere, ``external_source``) is refused: a backup of its rows would restore as an
    ordinary collection, and its source is not ours to copy."""
    if d.get("external_source"):
        raise Unsupported(f"collection {name!r} is an external collection: its rows are read from an external "
                          "source, which vecbackup does not back up", hint="back up the external source itself")
    return {"enable_namespace": True} if d.get("enable_namespace") else {}
