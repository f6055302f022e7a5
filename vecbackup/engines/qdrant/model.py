"""Qdrant collections in the engine-neutral format: the pure translation (docs/FORMAT.md, "Qdrant collections").

Collection config -> CollectionSpec (:func:`spec_from_collection_info`), CollectionSpec -> the calls that recreate
it (:func:`create_calls`), scroll records <-> columnar chunks (:func:`records_to_chunk`, :func:`chunk_to_points`).
No I/O; qdrant-client's models are imported lazily where a call needs them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from vecbackup.engines.base import Described
from vecbackup.errors import Unsupported, UsageError, VecbackupError
from vecbackup.format.codec import Chunk, Column
from vecbackup.format.lease import LEASE_KEY
from vecbackup.format.qdrant import (
    HNSW_NAMES,
    ID_FIELD,
    ID_MAX_LENGTH,
    METRICS,
    PAYLOAD_INDEX_PREFIX,
    field_names,
    is_single_vector,
    vector_configs,
)
from vecbackup.index_types import params_option, type_option
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType, Index

#: one upsert request carries at most this many points and about this many bytes of JSON
UPSERT_MAX_POINTS = 1024
UPSERT_MAX_BYTES = 8 * 1024 * 1024

#: recorded settings qdrant-client local mode accepts but does not keep (payload indexes aside)
LOCAL_MODE_DROPS = ("quantization_config", "strict_mode_config", "shard_number", "replication_factor",
                    "write_consistency_factor", "read_fan_out_factor", "on_disk_payload")
#: CollectionParams keys create_collection takes
_CREATE_PARAMS = ("vectors", "sparse_vectors", "shard_number", "sharding_method", "replication_factor",
                  "write_consistency_factor", "on_disk_payload", "payload", "id_tracker")
#: CollectionParams keys only update_collection takes (applied right after the create)
_UPDATE_PARAMS = ("read_fan_out_factor", "read_fan_out_delay_ms")
#: CollectionConfig key -> CreateCollection key
_CREATE_CONFIG = {"hnsw_config": "hnsw_config", "optimizer_config": "optimizers_config", "wal_config": "wal_config",
                  "quantization_config": "quantization_config", "strict_mode_config": "strict_mode_config",
                  "metadata": "metadata"}
#: CreateCollection attribute -> create_collection keyword
_CREATE_KWARGS = {"vectors": "vectors_config", "sparse_vectors": "sparse_vectors_config"}
#: Qdrant's m when none is configured (an HNSW graph where a recorded m=0 had none: --index-type FIELD:HNSW)
QDRANT_DEFAULT_M = 16
#: engine-neutral HNSW parameter names <-> Qdrant's
_HNSW_NAMES_BACK = {v: k for k, v in HNSW_NAMES.items()}


def _qdrant() -> Any:
    try:
        import qdrant_client
    except ImportError:  # pragma: no cover - depends on the install
        raise Unsupported("the Qdrant support is not installed", hint="pip install 'vecbackup[qdrant]'") from None
    for name in ("qdrant_client", "httpx", "httpcore", "grpc"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return qdrant_client


def _models() -> Any:
    _qdrant()
    from qdrant_client.http import models

    return models


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def as_json(obj: Any) -> Any:
    """A qdrant-client model (or an already JSON-shaped dict) as plain JSON values without nulls."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=True)
    return _drop_none(orjson.loads(orjson.dumps(obj)))


def keeps_in_local_mode(field_schema: Any) -> bool:
    """Whether qdrant-client's local mode keeps a payload index of this schema (a text index with scoring)."""
    return bool(getattr(field_schema, "type", None) == "text" and getattr(field_schema, "scoring", None))


def _hnsw_index(fname: str, effective: dict[str, Any], distance: str) -> Index:
    params = {HNSW_NAMES.get(k, k): v for k, v in effective.items()}
    return Index(field_name=fname, index_type="FLAT" if effective.get("m") == 0 else "HNSW",
                 metric_type=METRICS.get(distance, str(distance).upper()), params=params)


def shard_keys_from_cluster_info(info: Any) -> list[dict[str, Any]]:
    """``collection_cluster_info`` -> [{"key": shard key, "shards_number": shards of that key}, ...],
    in the order of the keys' lowest shard id."""
    d = as_json(info)
    shards: dict[int, Any] = {}
    for s in [*d.get("local_shards", []), *d.get("remote_shards", [])]:
        if s.get("shard_key") is not None:
            shards[int(s["shard_id"])] = s["shard_key"]
    keys: dict[str, dict[str, Any]] = {}
    for sid in sorted(shards):
        k = shards[sid]
        entry = keys.setdefault(orjson.dumps(k).decode(), {"key": k, "shards_number": 0})
        entry["shards_number"] += 1
    return list(keys.values())


def spec_from_collection_info(
    name: str,
    info: Any,
    *,
    aliases: Iterable[str] = (),
    shard_keys: list[dict[str, Any]] | None = None,
) -> Described:
    """A ``get_collection`` answer (a CollectionInfo, or its JSON) -> the engine-neutral spec.

    ``shard_keys`` ([{"key": ..., optional "shards_number": ...}]) is required for custom sharding."""
    d = as_json(info)
    config: dict[str, Any] = d["config"]
    metadata = config.get("metadata")
    if isinstance(metadata, dict) and LEASE_KEY in metadata:  # a restore's lease is vecbackup's, not the collection's
        config = {**config, "metadata": {k: v for k, v in metadata.items() if k != LEASE_KEY}}
    if config.get("metadata") == {}:  # none, or only a cleared lease: nothing to record
        config = {k: v for k, v in config.items() if k != "metadata"}
    params: dict[str, Any] = config.get("params", {})
    notes: list[str] = []
    dense = vector_configs(params)
    sparse = list((params.get("sparse_vectors") or {}).items())
    names = field_names([q for q, _ in dense] + [q for q, _ in sparse])
    fields = [Field(name=ID_FIELD, type=FieldType.VARCHAR, max_length=ID_MAX_LENGTH, is_primary=True)]
    indexes: list[Index] = []
    collection_hnsw = config.get("hnsw_config") or {}
    for (q, vp), fname in zip(dense, names, strict=False):
        extra: dict[str, Any] = {"qdrant_name": q}
        if vp.get("multivector_config") is not None:
            extra["multivector"] = dict(vp["multivector_config"])
            fields.append(Field(name=fname, type=FieldType.ARRAY, element_type=FieldType.FLOAT, dim=int(vp["size"]),
                                nullable=True, extra=extra))
        else:
            fields.append(Field(name=fname, type=FieldType.FLOAT_VECTOR, dim=int(vp["size"]), nullable=True,
                                extra=extra))
        effective = {**collection_hnsw, **(vp.get("hnsw_config") or {})}
        indexes.append(_hnsw_index(fname, effective, vp.get("distance", "")))
    for (q, sp), fname in zip(sparse, names[len(dense):], strict=True):
        fields.append(Field(name=fname, type=FieldType.SPARSE_FLOAT_VECTOR, nullable=True, extra={"qdrant_name": q}))
        indexes.append(Index(field_name=fname, index_type="SPARSE_INVERTED_INDEX", metric_type="IP",
                             params=dict(sp.get("index") or {})))
    for key, pi in (d.get("payload_schema") or {}).items():
        indexes.append(Index(field_name=key, index_type=PAYLOAD_INDEX_PREFIX + str(pi["data_type"]).upper(),
                             params=dict(pi.get("params") or {})))
    extra_spec: dict[str, Any] = {"qdrant": config}
    partitions: tuple[str, ...] = ()
    if params.get("sharding_method") == "custom":
        if shard_keys is None:
            raise Unsupported(f"collection {name!r} uses custom sharding, and its shard keys could not be listed")
        partitions = tuple(str(e["key"]) for e in shard_keys)
        if len(set(partitions)) != len(partitions):
            raise Unsupported(f"collection {name!r} has shard keys that differ only in type (e.g. 5 and \"5\"); "
                              "vecbackup cannot keep them apart")
        extra_spec["qdrant_shard_keys"] = [dict(e) for e in shard_keys]
    spec = CollectionSpec(
        name=name,
        fields=tuple(fields),
        enable_dynamic_field=True,
        num_shards=params.get("shard_number"),
        partitions=partitions,
        indexes=tuple(indexes),
        aliases=tuple(sorted(aliases)),
        extra=extra_spec,
    )
    return Described(spec, tuple(notes))


# -- spec -> the calls that recreate the collection -------------------------------------------------


@dataclass
class CreateCalls:
    """Keyword arguments of every client call that recreates a collection, in call order."""

    create_collection: dict[str, Any]
    update_collection: dict[str, Any] | None = None  # settings create_collection does not take
    shard_keys: list[dict[str, Any]] = field(default_factory=list)
    payload_indexes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _vector_layout(spec: CollectionSpec) -> list[tuple[Field, str, str]]:
    """(field, Qdrant vector name, "dense" | "multi" | "sparse") for every vector column."""
    out = []
    for f in spec.fields:
        if f.is_primary:
            continue
        q = f.extra.get("qdrant_name", f.name)
        if f.type is FieldType.FLOAT_VECTOR:
            out.append((f, q, "dense"))
        elif f.type is FieldType.SPARSE_FLOAT_VECTOR:
            out.append((f, q, "sparse"))
        elif f.type is FieldType.ARRAY and "multivector" in f.extra:
            out.append((f, q, "multi"))
    return out


def check_spec(spec: CollectionSpec) -> None:
    """Raise Unsupported unless the spec is a Qdrant collection as docs/FORMAT.md describes it."""
    cfg = spec.extra.get("qdrant")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("params"), dict):
        raise Unsupported(f"the backup of {spec.name!r} is not of a Qdrant collection; restoring it into Qdrant "
                          "is not supported yet", hint="restore it into the kind of database it came from")
    primary = spec.primary
    if primary.name != ID_FIELD or primary.type is not FieldType.VARCHAR:
        raise Unsupported(f"primary key {primary.name!r} ({primary.type.value}) is not a Qdrant point id")
    mapped = {f.name for f, _, _ in _vector_layout(spec)} | {ID_FIELD}
    for f in spec.fields:
        if f.name not in mapped:
            raise Unsupported(f"field {f.name!r} ({f.type.value}) has no place in a Qdrant point")


def _hnsw_diff(given: dict[str, Any]) -> dict[str, Any]:
    return {_HNSW_NAMES_BACK.get(k, k): v for k, v in given.items()}


def _check_keys(fname: str, what: str, given: dict[str, Any], model: Any, aliases: tuple[str, ...] = ()) -> None:
    """UsageError unless qdrant-client's ``model`` of the index (or ``aliases``: M, efConstruction) has every key of
    ``given`` (--index-params FIELD:...)."""
    takes = [*aliases, *(k for k in model.model_fields if k != "type")]
    bad = [k for k in given if k not in takes]
    if bad:
        raise UsageError(f"{params_option(fname)}: Qdrant's {what} takes {', '.join(takes)}, not {', '.join(bad)}",
                         hint="into Qdrant only HNSW applies to a dense vector" if what == "HNSW" else None)


def create_calls(
    spec: CollectionSpec,
    name: str,
    *,
    shards: int | None = None,
    replication_factor: int | None = None,
    index_params: dict[str, dict[str, Any]] | None = None,
    index_types: dict[str, str] | None = None,
) -> CreateCalls:
    """The create_collection / update_collection / create_shard_key / create_payload_index calls that
    recreate ``spec`` (recorded in ``extra["qdrant"]``) as collection ``name``, with the topology
    overrides (--shards, --replication-factor), per-field index parameters (--index-params: a dense vector's HNSW
    settings, M and efConstruction as Milvus names them or Qdrant's own names) and a dense vector's index type
    (--index-type: HNSW, or FLAT = no graph, m=0; index_types.choose_type refused the others). UsageError names
    a parameter Qdrant's index of that vector or payload key does not take."""
    m = _models()
    check_spec(spec)
    cfg = copy.deepcopy(spec.extra["qdrant"])
    params: dict[str, Any] = cfg.get("params", {})
    notes: list[str] = []
    body: dict[str, Any] = {}
    update_params: dict[str, Any] = {}
    for k, v in params.items():
        if k in _CREATE_PARAMS:
            body[k] = v
        elif k in _UPDATE_PARAMS:
            update_params[k] = v
        else:
            notes.append(f"collection setting params.{k} = {v!r} is not known to this vecbackup; not re-applied")
    for k, v in cfg.items():
        if k == "params":
            continue
        if k in _CREATE_CONFIG:
            body[_CREATE_CONFIG[k]] = v
        else:
            notes.append(f"collection setting {k} is not known to this vecbackup; not re-applied")

    if shards is not None and shards != body.get("shard_number"):
        notes.append(f"shard_number {body.get('shard_number', 'default')} -> {shards} (--shards)")
        body["shard_number"] = shards
    if replication_factor is not None and replication_factor != body.get("replication_factor"):
        notes.append(f"replication_factor {body.get('replication_factor', 'default')} -> {replication_factor} "
                     "(--replication-factor)")
        body["replication_factor"] = replication_factor
        wcf = body.get("write_consistency_factor")
        if wcf is not None and wcf > replication_factor:
            notes.append(f"write_consistency_factor {wcf} -> {replication_factor} (cannot exceed the replication "
                         "factor)")
            body["write_consistency_factor"] = replication_factor

    payload_overrides: dict[str, dict[str, Any]] = {}
    layout = {f.name: (q, kind) for f, q, kind in _vector_layout(spec)}
    for fname in {*(index_params or {}), *(index_types or {})}:
        given = (index_params or {}).get(fname) or {}
        if fname not in layout:
            payload_overrides[fname] = given
            continue
        q, kind = layout[fname]
        if kind == "sparse":
            _check_keys(fname, "sparse vector index", given, m.SparseIndexParams)
            sv = body.setdefault("sparse_vectors", {}).setdefault(q, {})
            sv["index"] = {**(sv.get("index") or {}), **given}
            continue
        vectors = body.get("vectors")
        vp = vectors if is_single_vector(vectors) and q == "" else (vectors or {}).get(q)
        if vp is None:
            raise UsageError(f"{params_option()}: vector {q!r} is not in the recorded configuration")
        _check_keys(fname, "HNSW", given, m.HnswConfigDiff, aliases=tuple(HNSW_NAMES.values()))
        hnsw = {**(vp.get("hnsw_config") or {}), **_hnsw_diff(given)}
        wanted = (index_types or {}).get(fname)
        if wanted == "FLAT":
            if hnsw.get("m"):
                raise UsageError(f"{type_option(fname, 'FLAT')} builds no HNSW graph (m=0): it takes no M",
                                 hint=f"{type_option(fname, 'HNSW')} with {params_option(fname, {'M': hnsw['m']})}")
            hnsw["m"] = 0
        elif wanted == "HNSW" and {**(body.get("hnsw_config") or {}), **hnsw}.get("m") == 0:
            hnsw["m"] = QDRANT_DEFAULT_M  # a graph where the source had none
        if hnsw:
            vp["hnsw_config"] = hnsw

    try:
        cc = m.CreateCollection.model_validate(body)
    except Exception as e:  # pydantic.ValidationError
        raise Unsupported(f"the recorded Qdrant configuration of {spec.name!r} cannot be recreated: "
                          f"{_one_line(e)}", hint="upgrade qdrant-client (pip install -U qdrant-client)") from None
    kwargs: dict[str, Any] = {"collection_name": name}
    for k in body:
        value = getattr(cc, k)
        if value is not None:
            kwargs[_CREATE_KWARGS.get(k, k)] = value
    calls = CreateCalls(create_collection=kwargs, notes=notes)
    if update_params:
        calls.update_collection = {"collection_name": name,
                                   "collection_params": m.CollectionParamsDiff.model_validate(update_params)}

    for entry in spec.extra.get("qdrant_shard_keys", []):
        skw: dict[str, Any] = {"collection_name": name, "shard_key": entry["key"]}
        number = shards if shards is not None else entry.get("shards_number")
        if number is not None:
            skw["shards_number"] = number
        if replication_factor is not None:
            skw["replication_factor"] = replication_factor
        calls.shard_keys.append(skw)

    for index in spec.indexes:
        if not index.index_type.startswith(PAYLOAD_INDEX_PREFIX):
            continue
        data_type = index.index_type[len(PAYLOAD_INDEX_PREFIX):].lower()
        given = payload_overrides.get(index.field_name) or {}
        ip = {**(index.params or {}), **given}
        schema: Any
        cls = getattr(m, f"{data_type.capitalize()}IndexParams", None)
        if given and cls is not None:
            _check_keys(index.field_name, f"{data_type} payload index", given, cls)
        try:
            if ip:
                ip.setdefault("type", data_type)
                schema = getattr(m, f"{data_type.capitalize()}IndexParams").model_validate(ip)
            else:
                schema = m.PayloadSchemaType(data_type)
        except Exception as e:
            raise Unsupported(f"payload index {index.index_type} on {index.field_name!r} cannot be recreated: "
                              f"{_one_line(e)}", hint="upgrade qdrant-client (pip install -U qdrant-client)") from None
        calls.payload_indexes.append({"collection_name": name, "field_name": index.field_name,
                                      "field_schema": schema, "wait": True})
    return calls


# -- points <-> columns ---------------------------------------------------------------------------


def _get(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else getattr(record, key)


def point_id_to_str(pid: Any) -> str:
    """A point id for the id column: an integer id as its decimal digits, a UUID as the server spells it
    (canonical, lower-case, hyphenated)."""
    return str(pid)


def str_to_point_id(s: str) -> int | str:
    """Back from the id column: an all-digit string is an integer id, anything else a UUID."""
    return int(s) if s.isascii() and s.isdigit() else s


def _sparse_dict(v: Any) -> dict[int, float]:
    indices = _get(v, "indices")
    values = _get(v, "values")
    return {int(i): float(x) for i, x in zip(indices, values, strict=True)}


def records_to_chunk(spec: CollectionSpec, partition: str, records: Sequence[Any]) -> Chunk:
    """Scrolled points (qdrant-client Records, or dicts with id/vector/payload) -> a columnar chunk."""
    n = len(records)
    columns: dict[str, Column] = {ID_FIELD: Column([point_id_to_str(_get(r, "id")) for r in records])}
    vectors: list[dict[str, Any]] = []
    for r in records:
        v = _get(r, "vector")
        vectors.append(v if isinstance(v, dict) else ({} if v is None else {"": v}))
    for f, q, kind in _vector_layout(spec):
        raw = [v.get(q) for v in vectors]
        valid = None
        if any(x is None for x in raw):
            valid = np.fromiter((x is not None for x in raw), dtype=bool, count=n)
        values: Any
        if kind == "dense":
            dim = f.dim or 0
            arr = np.zeros((n, dim), dtype="<f4")
            for i, x in enumerate(raw):
                if x is not None:
                    if len(x) != dim:
                        raise VecbackupError(f"point {columns[ID_FIELD].values[i]}: vector {q!r} has {len(x)} "
                                             f"dimensions, the collection {dim}")
                    arr[i] = x
            values = arr
        elif kind == "multi":
            dim = f.dim or 0
            values = []
            for i, x in enumerate(raw):
                if x is None:
                    values.append(None)
                    continue
                if any(len(sub) != dim for sub in x):
                    raise VecbackupError(f"point {columns[ID_FIELD].values[i]}: multivector {q!r} holds a vector "
                                         f"that does not have {dim} dimensions")
                values.append([float(e) for sub in x for e in sub])
        else:
            values = [None if x is None else _sparse_dict(x) for x in raw]
        columns[f.name] = Column(values, valid)
    columns[DYNAMIC_COLUMN] = Column([_get(r, "payload") or {} for r in records])
    return Chunk(partition=partition, num_rows=n, columns=columns)


def chunk_to_points(spec: CollectionSpec, chunk: Chunk) -> list[dict[str, Any]]:
    """A decoded chunk -> points as dicts (id, vector, payload) ready for models.PointStruct."""
    n = chunk.num_rows
    ids = chunk.columns[ID_FIELD].values
    layout = _vector_layout(spec)
    vectors: list[dict[str, Any]] = [{} for _ in range(n)]
    for f, q, kind in layout:
        col = chunk.columns[f.name]
        valid = col.valid.tolist() if col.valid is not None else [True] * n
        if kind == "dense":
            rows: list[Any] = np.asarray(col.values, dtype="<f4").tolist()
        elif kind == "multi":
            dim = f.dim or 1
            rows = [None if x is None else [list(x[i:i + dim]) for i in range(0, len(x), dim)] for x in col.values]
        else:
            rows = [None if x is None else {"indices": list(x.keys()), "values": list(x.values())}
                    for x in col.values]
        for i in range(n):
            if valid[i] and rows[i] is not None:
                vectors[i][q] = rows[i]
    single = len(layout) == 1 and layout[0][1] == "" and layout[0][2] != "sparse"
    payloads = chunk.columns[DYNAMIC_COLUMN].values if DYNAMIC_COLUMN in chunk.columns else [None] * n
    points = []
    for i in range(n):
        vector: Any = vectors[i]
        if single:
            vector = vector.get("")
            if vector is None:
                vector = {}
        points.append({"id": str_to_point_id(ids[i]), "vector": vector, "payload": payloads[i] or {}})
    return points


def _point_bytes(p: dict[str, Any]) -> int:
    """A rough size of the point's JSON, to keep requests well under Qdrant's 32 MiB limit."""
    size = 64 + len(orjson.dumps(p["payload"]))
    vec = p["vector"]
    for v in (vec.values() if isinstance(vec, dict) else [vec]):
        if isinstance(v, dict):
            size += 24 * len(v["indices"])
        elif v and isinstance(v[0], list):
            size += 20 * sum(len(sub) for sub in v)
        else:
            size += 20 * len(v)
    return size


def upsert_batches(points: list[dict[str, Any]], max_points: int = UPSERT_MAX_POINTS,
                   max_bytes: int = UPSERT_MAX_BYTES) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for p in points:
        b = _point_bytes(p)
        if batch and (len(batch) >= max_points or size + b > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += b
    if batch:
        yield batch

def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split())[:300]
