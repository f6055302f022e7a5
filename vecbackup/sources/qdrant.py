"""Qdrant (a server over REST or gRPC, or qdrant-client's embedded local mode) as a Source and a Sink.

docs/FORMAT.md ("Qdrant collections") specifies how a Qdrant collection is represented in the
engine-neutral :class:`~vecbackup.schema.CollectionSpec`. The translation is pure and lives in the
module-level functions (:func:`spec_from_collection_info`, :func:`create_calls`,
:func:`records_to_chunk`, :func:`chunk_to_points`); :class:`QdrantEngine` only moves data and
translates every qdrant-client error into :mod:`vecbackup.errors`. qdrant-client is imported lazily.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from vecbackup.config import QdrantURL
from vecbackup.errors import AlreadyExists, NotFound, Unreachable, Unsupported, UsageError, VecbackupError
from vecbackup.format.codec import Chunk, Column
from vecbackup.format.manifest import SourceInfo
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType, Index
from vecbackup.sources.base import ENGINE_ROUTED, Described, RestorePlan

#: the primary-key field: every point id as a string (str(int) or the canonical UUID)
ID_FIELD = "id"
#: a UUID string is 36 characters; an unsigned 64-bit integer at most 20 digits
ID_MAX_LENGTH = 36
#: field name used for the unnamed (default) vector, with extra {"qdrant_name": ""}
UNNAMED_VECTOR_FIELD = "vector"
#: Qdrant distance -> engine-neutral metric_type
METRICS = {"Cosine": "COSINE", "Euclid": "L2", "Dot": "IP", "Manhattan": "MANHATTAN"}
#: index_type prefix of payload indexes: PAYLOAD_KEYWORD, PAYLOAD_TEXT, ...
PAYLOAD_INDEX_PREFIX = "PAYLOAD_"
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
#: engine-neutral HNSW parameter names <-> Qdrant's
_HNSW_NAMES = {"m": "M", "ef_construct": "efConstruction"}
_HNSW_NAMES_BACK = {v: k for k, v in _HNSW_NAMES.items()}


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


def _is_single_vector(vectors: Any) -> bool:
    """config.params.vectors is either one VectorParams (the unnamed vector) or name -> VectorParams."""
    return isinstance(vectors, dict) and isinstance(vectors.get("size"), int)


def _vector_configs(params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    vectors: dict[str, Any] = params.get("vectors") or {}
    if _is_single_vector(vectors):
        return [("", vectors)]
    return list(vectors.items())


def _field_names(qnames: Sequence[str]) -> list[str]:
    """Field names for the Qdrant vector names: the name itself unless it is "" (-> "vector") or
    would clash with "id", "$meta" or another field; then ``<base>_<k>`` with the smallest free k."""
    taken = {ID_FIELD, DYNAMIC_COLUMN}
    out: list[str | None] = []
    for q in qnames:
        if q and q not in taken:
            taken.add(q)
            out.append(q)
        else:
            out.append(None)
    for i, q in enumerate(qnames):
        if out[i] is None:
            base = q or UNNAMED_VECTOR_FIELD
            name, k = base, 1
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            out[i] = name
    return [n for n in out if n is not None]


def _hnsw_index(fname: str, effective: dict[str, Any], distance: str) -> Index:
    params = {_HNSW_NAMES.get(k, k): v for k, v in effective.items()}
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
    params: dict[str, Any] = config.get("params", {})
    notes: list[str] = []
    dense = _vector_configs(params)
    sparse = list((params.get("sparse_vectors") or {}).items())
    names = _field_names([q for q, _ in dense] + [q for q, _ in sparse])
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


def create_calls(
    spec: CollectionSpec,
    name: str,
    *,
    shards: int | None = None,
    replication_factor: int | None = None,
    index_params: dict[str, dict[str, Any]] | None = None,
) -> CreateCalls:
    """The create_collection / update_collection / create_shard_key / create_payload_index calls that
    recreate ``spec`` (recorded in ``extra["qdrant"]``) as collection ``name``, with the topology
    overrides (--shards, --replication-factor) and per-field index parameters (--index-params)."""
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
    for fname, given in (index_params or {}).items():
        if fname in layout:
            q, kind = layout[fname]
            if kind == "sparse":
                sv = body.setdefault("sparse_vectors", {}).setdefault(q, {})
                sv["index"] = {**(sv.get("index") or {}), **given}
            else:
                vectors = body.get("vectors")
                vp = vectors if _is_single_vector(vectors) and q == "" else (vectors or {}).get(q)
                if vp is None:
                    raise UsageError(f"--index-params: vector {q!r} is not in the recorded configuration")
                vp["hnsw_config"] = {**(vp.get("hnsw_config") or {}), **_hnsw_diff(given)}
        else:
            payload_overrides[fname] = given

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
        ip = {**(index.params or {}), **payload_overrides.get(index.field_name, {})}
        schema: Any
        try:
            if ip:
                ip.setdefault("type", data_type)
                cls = getattr(m, f"{data_type.capitalize()}IndexParams")
                schema = cls.model_validate(ip)
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


# -- the engine -----------------------------------------------------------------------------------


class QdrantEngine:
    """One connection to a Qdrant server or local-mode folder; implements Source and Sink."""

    def __init__(self, url: QdrantURL):
        self.url = url
        self.display = url.display
        qc = _qdrant()
        self._m = _models()
        self._created: set[str] = set()
        self._connect_notes: list[str] = []
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
                        prefix=url.prefix or None, timeout=max(1, int(url.timeout)), check_compatibility=False)
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

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        if spec.extra.get("qdrant_shard_keys") is not None:
            return list(spec.partitions)
        return [ENGINE_ROUTED]

    def _shard_key(self, spec: CollectionSpec, partition: str) -> Any:
        for entry in spec.extra.get("qdrant_shard_keys", []):
            if str(entry["key"]) == partition:
                return entry["key"]
        return None

    def read(self, spec: CollectionSpec, partition: str, batch_size: int) -> Iterator[Chunk]:
        kwargs: dict[str, Any] = {"limit": batch_size, "with_vectors": True, "with_payload": True}
        if partition != ENGINE_ROUTED:
            kwargs["shard_key_selector"] = self._shard_key(spec, partition)
        offset = None
        while True:
            records, offset = self._call(f"read points of {spec.name!r}", self.client.scroll, spec.name,
                                         offset=offset, **kwargs)
            if records:
                yield records_to_chunk(spec, partition, records)
            if offset is None:
                break

    # -- Sink -------------------------------------------------------------------------------------

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        calls = create_calls(spec, plan.staging, shards=plan.shards, replication_factor=plan.replication_factor,
                             index_params=plan.index_params)  # validates everything before data moves
        if self.url.local and calls.shard_keys:
            raise Unsupported(f"collection {spec.name!r} uses custom sharding, which qdrant-client local mode "
                              "does not have", hint="restore into a Qdrant server")
        plan.notes.extend(self._connect_notes)
        if self.url.local:
            cfg = spec.extra["qdrant"]
            dropped = [k for k in LOCAL_MODE_DROPS if k in cfg or k in cfg.get("params", {})]
            if any(i.index_type.startswith(PAYLOAD_INDEX_PREFIX) for i in spec.indexes):
                dropped.append("payload indexes")
            if dropped:
                plan.notes.append("qdrant-client local mode does not keep these recorded settings: "
                                  + ", ".join(dropped))
        if not plan.replace:
            # Qdrant cannot rename a collection: fill the target directly (abort() deletes it on failure)
            plan.staging = plan.target

    def create(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        calls = create_calls(spec, plan.staging, shards=plan.shards, replication_factor=plan.replication_factor,
                             index_params=plan.index_params)
        notes: list[str] = []
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
        plan.notes.extend(calls.notes)
        plan.notes.extend(notes)

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

    def finish(self, spec: CollectionSpec, plan: RestorePlan) -> None:
        m = self._m
        collection = plan.staging  # where the data is; after a replace the target name is an alias of it
        if plan.staging != plan.target:
            self._replace(plan)
        self._created.discard(plan.staging)  # complete: abort() must not delete it any more
        existing = self._aliases() if plan.aliases else {}
        for alias in plan.aliases:
            current = existing.get(alias)
            if current is None:
                self._call(f"create alias {alias!r}", self.client.update_collection_aliases,
                           change_aliases_operations=[m.CreateAliasOperation(
                               create_alias=m.CreateAlias(collection_name=collection, alias_name=alias))])
            elif current != collection:
                plan.notes.append(f"alias {alias!r} points to {current!r} on the target; left as it is")

    def _replace(self, plan: RestorePlan) -> None:
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
        plan.notes.append(f"replaced {plan.target!r} (--drop-existing): Qdrant cannot rename collections, so the "
                          f"data is in collection {collection!r} and {plan.target!r} is an alias of it"
                          + (f" (as are {', '.join(repr(a) for a in moved)})" if moved else ""))

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

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    ) -> list[list[Any]]:
        """Ids of the top ``k`` points for each query vector (values as vector_of gives them)."""
        layout = {f.name: (q, kind) for f, q, kind in _vector_layout(spec)}
        if field_name not in layout or layout[field_name][1] == "multi":
            raise Unsupported(f"vector search on field {field_name!r} is not supported by the drill yet")
        q, kind = layout[field_name]
        out: list[list[Any]] = []
        for query in queries:
            vector = self._m.SparseVector(**query) if kind == "sparse" else query
            res = self._call(f"search {name!r}", self.client.query_points, name, query=vector, using=q or None,
                             limit=k, with_payload=False, with_vectors=False)
            out.append([p.id for p in res.points])
        return out

    def drop_collection(self, name: str) -> None:
        self._call(f"delete {name!r}", self.client.delete_collection, name)

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
                               hint="check the API key: --api-key or VECBACKUP_QDRANT_API_KEY")
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
                               hint="check the API key: --api-key or VECBACKUP_QDRANT_API_KEY")
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
