"""Qdrant Edge (``qdrant-edge-py``: Qdrant's own engine, in-process, one shard per folder) as a Source, a Sink and
an Inspector.

A shard is a collection, named after its folder. ``qdrant-edge:///path`` names a shard's folder (the engine then
shows that one collection; restores of it fill a sibling folder first) or a folder whose sub-folders are shards.
The shard's configuration is described as the Qdrant config a server collection of that configuration reports
(:mod:`vecbackup.engines.qdrant.edge_config`), then through the same translation as a server's
(:mod:`vecbackup.engines.qdrant.model`), so backups of either restore onto the other. A restore builds a new shard
in a staging folder beside the target and renames it into place only once it is complete (abort removes it).
``qdrant_edge`` is imported lazily, here only.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from vecbackup.engines.base import ENGINE_ROUTED, Described, KeyCopies, PhaseReport, RestorePlan, SearchParams
from vecbackup.engines.qdrant.edge_config import EDGE_KEY, collection_config, edge_settings
from vecbackup.engines.qdrant.model import (
    _one_line,
    _vector_layout,
    chunk_to_points,
    create_calls,
    records_to_chunk,
    spec_from_collection_info,
    str_to_point_id,
    upsert_batches,
)
from vecbackup.errors import AlreadyExists, NotFound, TargetRejected, Unreachable, Unsupported, VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.format.lease import drill_scratch, restore_staging
from vecbackup.format.manifest import SourceInfo
from vecbackup.format.qdrant import ID_FIELD
from vecbackup.format.shard import Shard, owned_batches
from vecbackup.schema import CollectionSpec
from vecbackup.urls import EdgeURL

#: the file Edge keeps a shard's configuration in (and reloads it from): what makes a folder a shard
CONFIG_FILE = "edge_config.json"
#: the file in a shard's folder that holds a restore's lease (format/lease.py) while it fills the shard
LEASE_FILE = "vecbackup-lease.json"
#: the token that ends a drill's scratch name (format/lease.py: drill_scratch)
_DRILL_TOKEN = re.compile(r"[0-9a-f]{8}")
#: what Edge says when another process holds the shard (the lock on its write-ahead log)
_IN_USE = re.compile(r"WouldBlock|failed to open WAL", re.I)
#: a text payload index's settings that are objects in Edge and JSON objects on a server
TEXT_SETTINGS = ("stopwords", "stemmer", "scoring")


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError:  # pragma: no cover - depends on the install
        raise Unsupported("the Qdrant Edge support is not installed",
                          hint="pip install 'vecbackup[qdrant-edge]'") from None
    return qdrant_edge


def edge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qdrant-edge-py")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def is_shard(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_FILE))


def _json(value: Any) -> Any:
    """A qdrant-client model, enum, dict or list of them as plain JSON values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _enum_json(value: Any) -> Any:
    """An Edge enum member as Qdrant's JSON spells it (Memory.Cold -> "cold", TokenizerType.Word -> "word")."""
    return _snake(str(value).rsplit(".", 1)[-1])


class _Builder:
    """edge_config.json-shaped settings -> qdrant_edge's objects (EdgeConfig, index parameters)."""

    def __init__(self, qe: Any) -> None:
        self.qe = qe

    def enum(self, cls_name: str, value: Any) -> Any:
        if value is None:
            return None
        cls = getattr(self.qe, cls_name)
        wanted = str(value).replace("_", "").lower()
        for member in (m for m in dir(cls) if not m.startswith("_")):
            if member.lower() == wanted:
                return getattr(cls, member)
        raise Unsupported(f"Qdrant Edge has no {cls_name} {value!r}")

    def hnsw(self, h: dict[str, Any] | None) -> Any:
        if not h:
            return None
        h = dict(h)
        return self.qe.HnswIndexConfig(m=h.pop("m"), ef_construct=h.pop("ef_construct"),
                                       full_scan_threshold=h.pop("full_scan_threshold"),
                                       max_indexing_threads=h.pop("max_indexing_threads", 0),
                                       memory=self.enum("Memory", h.pop("memory", None)), **self._rest("HNSW", h))

    def quantization(self, q: dict[str, Any] | None) -> Any:
        if not q:
            return None
        (kind, c), = q.items()
        c = dict(c)
        memory = self.enum("Memory", c.pop("memory", None))
        if kind == "scalar":
            return self.qe.ScalarQuantizationConfig(type=self.enum("ScalarType", c.pop("type")), memory=memory,
                                                    **self._rest("scalar quantization", c))
        if kind == "product":
            return self.qe.ProductQuantizationConfig(compression=self.enum("CompressionRatio", c.pop("compression")),
                                                     memory=memory, **self._rest("product quantization", c))
        if kind == "binary":
            return self.qe.BinaryQuantizationConfig(
                encoding=self.enum("BinaryQuantizationEncoding", c.pop("encoding", None)),
                query_encoding=self.enum("BinaryQuantizationQueryEncoding", c.pop("query_encoding", None)),
                memory=memory, **self._rest("binary quantization", c))
        if kind in ("turbo", "turbo_quant"):
            return self.qe.TurboQuantQuantizationConfig(bits=self.enum("TurboQuantBitSize", c.pop("bits", None)),
                                                        memory=memory, **self._rest("TurboQuant", c))
        raise Unsupported(f"Qdrant Edge has no {kind} quantization")

    @staticmethod
    def _rest(what: str, rest: dict[str, Any]) -> dict[str, Any]:
        known = {"HNSW": ("on_disk", "payload_m", "inline_storage"), "scalar quantization": ("quantile", "always_ram"),
                 "product quantization": ("always_ram",), "binary quantization": ("always_ram",),
                 "TurboQuant": ("always_ram",)}[what]
        bad = sorted(set(rest) - set(known))
        if bad:
            raise Unsupported(f"Qdrant Edge's {what} settings have no {', '.join(bad)}")
        return rest

    def vector(self, vp: dict[str, Any]) -> Any:
        vp = dict(vp)
        multi = vp.pop("multivector_config", None)
        out = self.qe.EdgeVectorParams(
            size=vp.pop("size"), distance=self.enum("Distance", vp.pop("distance")), on_disk=vp.pop("on_disk", None),
            multivector_config=None if multi is None else self.qe.MultiVectorConfig(
                self.enum("MultiVectorComparator", multi["comparator"])),
            datatype=self.enum("VectorStorageDatatype", vp.pop("datatype", None)),
            quantization_config=self.quantization(vp.pop("quantization_config", None)),
            hnsw_config=self.hnsw(vp.pop("hnsw_config", None)), memory=self.enum("Memory", vp.pop("memory", None)))
        if vp:
            raise Unsupported(f"Qdrant Edge's vectors have no setting {', '.join(sorted(vp))}")
        return out

    def sparse(self, sp: dict[str, Any]) -> Any:
        sp = dict(sp)
        out = self.qe.EdgeSparseVectorParams(
            full_scan_threshold=sp.pop("full_scan_threshold", None), on_disk=sp.pop("on_disk", None),
            modifier=self.enum("Modifier", sp.pop("modifier", None)),
            datatype=self.enum("VectorStorageDatatype", sp.pop("datatype", None)),
            memory=self.enum("Memory", sp.pop("memory", None)))
        if sp:
            raise Unsupported(f"Qdrant Edge's sparse vectors have no setting {', '.join(sorted(sp))}")
        return out

    def config(self, edge: dict[str, Any]) -> Any:
        opt = edge.get("optimizers")
        return self.qe.EdgeConfig(
            vectors={k: self.vector(v) for k, v in (edge.get("vectors") or {}).items()},
            sparse_vectors={k: self.sparse(v) for k, v in (edge.get("sparse_vectors") or {}).items()},
            on_disk_payload=edge.get("on_disk_payload"), hnsw_config=self.hnsw(edge.get("hnsw_config")),
            quantization_config=self.quantization(edge.get("quantization_config")),
            optimizers=None if not opt else self.qe.EdgeOptimizersConfig(**opt),
            max_search_threads=edge.get("max_search_threads"), search_pool_core=edge.get("search_pool_core"),
            payload_memory=self.enum("Memory", edge.get("payload_memory")),
            id_tracker_memory=self.enum("Memory", edge.get("id_tracker_memory")),
            wal_enabled=edge.get("wal_enabled"))

    def payload_index(self, field: str, schema: Any) -> tuple[Any, list[str]]:
        """A payload index's schema as create_calls gives it (a type's name, or its parameters as JSON) -> Edge's,
        with notes on the parameters Edge has no place for."""
        if isinstance(schema, str):
            return self.enum("PayloadSchemaType", schema), []
        params = dict(schema)
        kind = str(params.pop("type"))
        cls = getattr(self.qe, f"{kind.capitalize()}IndexParams", None)
        if cls is None:
            raise Unsupported(f"Qdrant Edge has no {kind} payload index")
        notes = []
        for key in TEXT_SETTINGS:
            if key in params:
                try:
                    params[key] = self.text_setting(key, params[key])
                except Unsupported as e:
                    notes.append(f"the {key} setting of the {kind} payload index on {field!r} is not re-applied on "
                                 f"Qdrant Edge: {e.message}")
                    params.pop(key)
        for key in ("memory", "tokenizer"):
            if key in params:
                params[key] = self.enum({"memory": "Memory", "tokenizer": "TokenizerType"}[key], params[key])
        try:
            return cls(**params), notes
        except TypeError as e:
            raise Unsupported(f"Qdrant Edge's {kind} payload index: {_one_line(e)}") from None

    def text_setting(self, key: str, value: Any) -> Any:
        """A text index's stopwords, stemmer or scoring as a server's JSON gives it -> Edge's object (Unsupported
        where Edge has no such setting)."""
        if key == "stopwords":
            if isinstance(value, str):  # one language's
                return self.enum("Language", value)
            value = dict(value)
            languages, custom = value.pop("languages", None), value.pop("custom", None)
            if value:
                raise Unsupported(f"Qdrant Edge's stopwords have no {', '.join(sorted(value))}")
            return self.qe.StopwordsSet(
                languages=None if languages is None else {self.enum("Language", lang) for lang in languages},
                custom=None if custom is None else {str(w) for w in custom})
        if key == "stemmer":
            value = dict(value)
            kind = value.pop("type", None)
            if kind == "snowball" and set(value) == {"language"}:
                return self.qe.SnowballParams(self.enum("SnowballLanguage", value["language"]))
            if kind == "none" and not value:
                return self.qe.DisabledStemmer()
            raise Unsupported(f"Qdrant Edge has no stemmer {_one_line(json.dumps({'type': kind, **value}))}")
        if isinstance(value, bool):  # scoring: true (the defaults) or false (none)
            return value
        value = dict(value)
        kind = value.pop("type", None)
        if value:
            raise Unsupported(f"Qdrant Edge's text scoring has no {', '.join(sorted(value))}")
        return self.qe.TextScoringParams(self.enum("TextScoringType", kind))


def _payload_index_json(field: str, info: Any) -> tuple[dict[str, Any], list[str]]:
    """Edge's PayloadIndexInfo -> a server's payload_schema entry ({"data_type", "params", "points"}), and notes on
    the parameters this vecbackup does not know how to record."""
    data_type = _enum_json(info.data_type)
    out: dict[str, Any] = {"data_type": data_type, "points": int(info.points)}
    notes: list[str] = []
    p = info.params
    if p is not None:
        params: dict[str, Any] = {"type": data_type}
        for attr in sorted(a for a in dir(p) if not a.startswith("_")):
            value = getattr(p, attr)
            if value is None or callable(value):
                continue
            if attr in TEXT_SETTINGS:
                setting = text_setting_json(attr, value)
                if setting is None:
                    notes.append(f"the {attr} setting of the {data_type} payload index on {field!r} (Edge's "
                                 f"{type(value).__name__}) is not known to this vecbackup; not recorded")
                else:
                    params[attr] = setting
                continue
            params[attr] = value if isinstance(value, (bool, int, float, str)) else _enum_json(value)
        out["params"] = params
    return out, notes


def text_setting_json(key: str, value: Any) -> Any:
    """A text index's stopwords, stemmer or scoring as Edge reports them (Language or StopwordsSet;
    SnowballParams or DisabledStemmer; TextScoringParams) -> the JSON a Qdrant server reports for them in its
    payload_schema (qdrant-client's StopwordsInterface, StemmingAlgorithm, TextScoringInterface; sets sorted, as
    the server writes them); None for a kind of setting this vecbackup does not know."""
    kind = type(value).__name__
    if key == "stopwords":
        if kind == "Language":
            return _enum_json(value)
        if kind == "StopwordsSet":
            out: dict[str, Any] = {}
            if value.languages is not None:
                out["languages"] = sorted(_enum_json(lang) for lang in value.languages)
            if value.custom is not None:
                out["custom"] = sorted(str(w) for w in value.custom)
            return out
    elif key == "stemmer":
        if kind == "SnowballParams":
            return {"type": "snowball", "language": _enum_json(value.language)}
        if kind == "DisabledStemmer":
            return {"type": "none"}
    elif key == "scoring":
        if isinstance(value, bool):
            return value
        if kind == "TextScoringParams":
            return {"type": _enum_json(value.type)}
    return None


class EdgeEngine:
    """Qdrant Edge shards in a folder (or one shard's folder); implements Source, Sink and Inspector."""

    #: points per scroll page and data chunk at most
    max_batch = 16384
    #: a restore fills a staging folder and renames it to the target's name
    renames = True

    def __init__(self, url: EdgeURL) -> None:
        self.url = url
        self.display = url.display
        self._qe = _edge()
        self._build = _Builder(self._qe)
        self._version = edge_version()
        path = url.path
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotFound(f"{path} is not a folder, so not a Qdrant Edge shard",
                           hint="qdrant-edge:///PATH names a shard's folder or a folder of shards")
        #: the folder the shards are in, and the one shard the URL names (None: every shard in it)
        self.root: str = path
        self.only: str | None = None
        if is_shard(path):  # one shard: the engine shows it (and its siblings a restore or drill makes)
            self.root, self.only = os.path.dirname(path) or "/", os.path.basename(path)
        self._shards: dict[str, Any] = {}
        self._created: set[str] = set()
        #: a restore's shard counted before it took the target's name (finish), for the count the restore checks: once
        #: renamed, the target may already be another restore's, and open in its process (Edge locks an open shard)
        self._published: dict[str, int] = {}

    # -- shared -----------------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        return "qdrant-edge"

    def info(self) -> SourceInfo:
        return SourceInfo(engine=self.engine, server_version=self._version, address=self.display)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def close(self) -> None:
        for name in list(self._shards):
            self._close(name)

    def _close(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            try:
                shard.close()
            except Exception:
                pass

    def _error(self, what: str, e: BaseException) -> VecbackupError:
        if isinstance(e, VecbackupError):
            return e
        return VecbackupError(f"Qdrant Edge at {self.display}: {what} failed: {_one_line(e)}")

    def _open(self, name: str) -> Any:
        """The open shard ``name`` (opened once, kept until close())."""
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        path = self._path(name)
        if not is_shard(path):  # never load a foreign folder: Edge would add its own files to it
            if os.path.isdir(path):
                raise NotFound(f"{path} is not a Qdrant Edge shard (it has no {CONFIG_FILE})",
                               hint="qdrant-edge:///PATH names a shard's folder or a folder of shards")
            raise NotFound(f"collection {name!r} not found in {self.display}",
                           hint="`vecbackup collections` shows what is there")
        try:
            shard = self._qe.EdgeShard.load(path)
        except Exception as e:
            if _IN_USE.search(str(e)):
                raise Unreachable(f"Qdrant Edge shard {path} is open in another process",
                                  hint="Edge lets one process open a shard (it locks its write-ahead log); stop the "
                                       "other one, or back up a copy of the folder") from None
            raise self._error(f"open shard {path}", e) from None
        self._shards[name] = shard
        return shard

    def list_collections(self) -> list[str]:
        if not os.path.isdir(self.root):  # none yet: a restore creates the folder
            return []
        names = sorted(n for n in os.listdir(self.root) if is_shard(self._path(n)))
        if self.only is not None:
            mine = (self.only, restore_staging(self.only, ""), drill_scratch(self.only, ""))
            names = [n for n in names if n == self.only or n.startswith(mine[1:])]
        return names

    def has_collection(self, name: str) -> bool:
        return bool(name) and "/" not in name and is_shard(self._path(name))

    def resolve(self, name: str) -> str | None:
        return name if self.has_collection(name) else None

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        if name in self._published:  # what this restore put in place, counted before the rename (finish)
            return self._published.pop(name)
        shard = self._open(name)
        try:
            return int(shard.count(self._qe.CountRequest(exact=True)))
        except Exception as e:
            raise self._error(f"count points of {name!r}", e) from None

    # -- Source -----------------------------------------------------------------------------------

    @property
    def max_readers(self) -> int:
        """One stream: a shard is one process's, read in its id order."""
        return 1

    def describe(self, name: str) -> Described:
        shard = self._open(name)
        try:
            with open(os.path.join(self._path(name), CONFIG_FILE), "rb") as f:
                edge = json.load(f)
            payload_schema, index_notes = {}, []
            for key, info in shard.info().payload_schema.items():
                payload_schema[key], more = _payload_index_json(key, info)
                index_notes += more
        except Exception as e:
            raise self._error(f"read the configuration of {name!r}", e) from None
        config, only, notes = collection_config(edge)
        described = spec_from_collection_info(name, {"config": config, "payload_schema": payload_schema})
        spec = described.spec
        if only:
            spec = replace(spec, extra={**spec.extra, EDGE_KEY: only})
        return Described(spec, (*described.notes, *notes, *index_notes))

    def read_partitions(self, spec: CollectionSpec) -> list[str]:
        return [ENGINE_ROUTED]

    def read_notes(self, spec: CollectionSpec) -> list[str]:
        return []

    def shown_partitions(self, spec: CollectionSpec, held: list[tuple[Any, tuple[str, ...]]]) -> list[str | None]:
        return [None] * len(held)

    def read(self, spec: CollectionSpec, partition: str, batch_size: int, shard: Shard | None = None,
             ) -> Iterator[Chunk]:
        edge = self._open(spec.name)
        if shard is not None:
            yield from self._shard_pages(spec, edge, partition, batch_size, shard)
            return
        offset = None
        while True:
            try:
                records, offset = edge.scroll(self._qe.ScrollRequest(offset=offset, limit=batch_size,
                                                                     with_payload=True, with_vector=True))
            except Exception as e:
                raise self._error(f"read points of {spec.name!r}", e) from None
            if records:
                yield records_to_chunk(spec, partition, records)
            if offset is None:
                break

    def _shard_pages(self, spec: CollectionSpec, edge: Any, partition: str, batch_size: int, shard: Shard,
                     ) -> Iterator[Chunk]:
        def id_pages() -> Iterator[list[Any]]:
            offset = None
            while True:
                try:
                    records, offset = edge.scroll(self._qe.ScrollRequest(offset=offset, limit=batch_size,
                                                                         with_payload=False, with_vector=False))
                except Exception as e:
                    raise self._error(f"read point ids of {spec.name!r}", e) from None
                yield [r.id if isinstance(r.id, int) else str(r.id) for r in records]
                if offset is None:
                    return

        for batch in owned_batches(shard, id_pages(), batch_size):
            got = self._retrieve(spec.name, edge, batch)
            order = {k: i for i, k in enumerate(batch)}
            yield records_to_chunk(spec, partition, sorted(got, key=lambda r: order[_key(r.id)]))

    def _retrieve(self, name: str, edge: Any, ids: list[Any]) -> list[Any]:
        try:
            return list(edge.retrieve([uuid.UUID(i) if isinstance(i, str) else i for i in ids],
                                      with_payload=True, with_vector=True))
        except Exception as e:
            raise self._error(f"read points of {name!r}", e) from None

    # -- Sink -------------------------------------------------------------------------------------

    @property
    def max_writers(self) -> int:
        return 1

    def name_problem(self, name: str) -> str | None:
        if not name or name in (".", ".."):
            return "a Qdrant Edge shard's name is its folder's: it cannot be empty, '.' or '..'"
        if "/" in name or "\0" in name:
            return "a Qdrant Edge shard's name is its folder's: it cannot contain '/'"
        if len(name.encode()) > 200:
            return "a Qdrant Edge shard's name is its folder's: at most 200 bytes here"
        scratch = drill_scratch(self.only or "", "")
        if self.only is not None and name != self.only and not (  # a drill's scratch shard goes beside it
                name.startswith(scratch) and _DRILL_TOKEN.fullmatch(name[len(scratch):])):
            return (f"{self.display} names the shard {self.only!r}: restore as {self.only!r} (--as), or give the "
                    "folder that holds the shards")
        return None

    def _edge_config(self, spec: CollectionSpec, plan: RestorePlan) -> tuple[Any, list[tuple[str, Any]], list[str]]:
        """The EdgeConfig and payload indexes (field, Edge schema) of the shard that recreates ``spec``, and notes."""
        calls = create_calls(spec, plan.staging, shards=plan.shards, replication_factor=plan.replication_factor,
                             index_params=plan.index_params, index_types=plan.index_types)
        if calls.shard_keys:
            raise Unsupported(f"collection {spec.name!r} uses custom sharding (shard keys), which Qdrant Edge (one "
                              "shard) does not have", hint="restore it into a Qdrant server")
        body = {k: _json(v) for k, v in calls.create_collection.items() if k != "collection_name"}
        edge, notes = edge_settings(body, dict(spec.extra.get(EDGE_KEY) or {}))
        notes = [*calls.notes, *notes]
        if calls.update_collection:
            notes.append("Qdrant Edge (one shard) has no read fan-out settings; not re-applied")
        if plan.aliases:
            notes.append("Qdrant Edge has no aliases: " + ", ".join(repr(a) for a in plan.aliases) + " not created")
        try:
            config = self._build.config(edge)
            indexes = []
            for pkw in calls.payload_indexes:
                schema, more = self._build.payload_index(pkw["field_name"], _json(pkw["field_schema"]))
                indexes.append((pkw["field_name"], schema))
                notes += more
        except VecbackupError:
            raise
        except Exception as e:
            raise Unsupported(f"the recorded configuration of {spec.name!r} cannot be recreated on Qdrant Edge: "
                              f"{_one_line(e)}") from None
        return config, indexes, notes

    def check(self, spec: CollectionSpec, plan: RestorePlan) -> list[str]:
        _, _, notes = self._edge_config(spec, plan)
        return notes

    def create(self, spec: CollectionSpec, plan: RestorePlan, lease: str | None = None) -> list[str]:
        config, indexes, _ = self._edge_config(spec, plan)
        path = self._path(plan.staging)
        if os.path.exists(path):
            raise AlreadyExists(f"{path} already exists")
        os.makedirs(self.root, exist_ok=True)
        self._created.add(plan.staging)
        try:
            shard = self._qe.EdgeShard.create(path, config)
            self._shards[plan.staging] = shard
            if lease is not None:
                self.write_lease(plan.staging, lease)
            for field_name, schema in indexes:
                shard.update(self._qe.UpdateOperation.create_field_index(field_name, schema))
        except BaseException as e:
            self.abort(plan)
            if isinstance(e, Exception):
                raise TargetRejected(f"Qdrant Edge refused shard {path}: {_one_line(e)}") from None
            raise
        return []

    def write(self, spec: CollectionSpec, plan: RestorePlan, chunk: Chunk) -> int:
        qe = self._qe
        shard = self._open(plan.staging)
        written = 0
        for batch in upsert_batches(chunk_to_points(spec, chunk)):
            points = [qe.Point(p["id"] if isinstance(p["id"], int) else uuid.UUID(p["id"]),
                               _vector(qe, p["vector"]), p["payload"]) for p in batch]
            try:
                shard.update(qe.UpdateOperation.upsert_points(points))
            except Exception as e:
                raise TargetRejected(f"Qdrant Edge refused points of {plan.staging!r}: {_one_line(e)}") from None
            written += len(points)
        return written

    def finish(self, spec: CollectionSpec, plan: RestorePlan, report: PhaseReport | None = None) -> list[str]:
        shard = self._open(plan.staging)
        if report is not None:
            report("building indexes")
        try:
            shard.optimize()
            shard.flush()
            counted = int(shard.count(self._qe.CountRequest(exact=True)))
        except Exception as e:
            raise self._error(f"optimize {plan.staging!r}", e) from None
        self._close(plan.staging)
        staging, target = self._path(plan.staging), self._path(plan.target)
        self._remove_lease(staging)
        old = None
        with _folder_lock(self.root):  # another restore into this folder looks at the target and renames after us
            if os.path.lexists(target):
                if not plan.replace:
                    raise AlreadyExists(f"{target} appeared while the restore ran")
                self._close(plan.target)
                try:
                    swapped = _exchange(staging, target)  # the old shard now under the staging name
                except OSError as e:
                    raise VecbackupError(f"cannot swap {staging} and {target}: {e.strerror}") from None
                if swapped:
                    old = staging
                else:  # no atomic exchange here: the old shard is moved aside first
                    old = self._path(f"{plan.target[:200]}_vbold_{secrets.token_hex(4)}")
                    os.rename(target, old)
            if old != staging:
                try:
                    os.rename(staging, target)
                except OSError as e:
                    if old is not None:
                        os.rename(old, target)
                    raise VecbackupError(f"cannot rename {staging} to {target}: {e.strerror}") from None
        self._created.discard(plan.staging)
        self._published[plan.target] = counted
        self._remove_lease(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return [f"replaced shard {target} (--drop-existing)"] if old is not None else []

    def abort(self, plan: RestorePlan) -> None:
        self._close(plan.staging)
        if plan.staging in self._created:
            shutil.rmtree(self._path(plan.staging), ignore_errors=True)
            self._created.discard(plan.staging)

    def key_copies(self, spec: CollectionSpec) -> KeyCopies:
        """One point per id, as on a server: an upsert replaces the point."""
        return KeyCopies(held=False, counted=False, last_shown=True)

    def settle(self, plan: RestorePlan) -> None:
        """Nothing: every update is applied when it returns."""

    def partition_counts(self, spec: CollectionSpec, name: str, partitions: list[str]) -> dict[str, int]:
        return {p: self.count(name) for p in partitions}

    # -- the lease of a restore: a file in the shard's folder, which Edge ignores ----------------------------

    def read_lease(self, name: str) -> str | None:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}")
        try:
            with open(os.path.join(self._path(name), LEASE_FILE), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_lease(self, name: str, value: str) -> None:
        path = self._path(name)
        if not os.path.isdir(path):
            raise NotFound(f"collection {name!r} not found in {self.display}")
        tmp = os.path.join(path, f".{LEASE_FILE}.{secrets.token_hex(4)}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(value)
        os.replace(tmp, os.path.join(path, LEASE_FILE))

    def clear_lease(self, name: str) -> None:
        """Remove the lease file (nothing to do where the shard is gone: it took another name)."""
        self._remove_lease(self._path(name))

    @staticmethod
    def _remove_lease(path: str) -> None:
        try:
            os.remove(os.path.join(path, LEASE_FILE))
        except FileNotFoundError:
            pass

    # -- drill: points by id, vector search, drop ---------------------------------------------------------

    def rows_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[tuple[Any, dict[str, Any]]]:
        return [(p["id"], p) for p in chunk_to_points(spec, chunk)]

    def keys_of_chunk(self, spec: CollectionSpec, chunk: Chunk) -> list[Any]:
        return [str_to_point_id(s) for s in chunk.columns[ID_FIELD].values]

    def fetch_rows(self, spec: CollectionSpec, name: str, keys: list[Any], partition: str = ENGINE_ROUTED,
                   ) -> dict[Any, dict[str, Any]]:
        edge = self._open(name)
        out: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), 256):
            records = self._retrieve(name, edge, keys[start:start + 256])
            if records:
                out.update(self.rows_of_chunk(spec, records_to_chunk(spec, partition, records)))
        return out

    def vector_of(self, spec: CollectionSpec, row: dict[str, Any], field_name: str) -> Any:
        for f, q, _ in _vector_layout(spec):
            if f.name == field_name:
                vector = row["vector"]
                return vector.get(q) if isinstance(vector, dict) else vector
        return None

    def search_keys(self, spec: CollectionSpec, name: str, field_name: str, queries: list[Any], k: int,
                    params: SearchParams) -> list[list[Any]]:
        qe = self._qe
        layout = {f.name: (q, kind) for f, q, kind in _vector_layout(spec)}
        if field_name not in layout or layout[field_name][1] == "multi":
            raise Unsupported(f"vector search on field {field_name!r} is not supported by the drill yet")
        q, kind = layout[field_name]
        edge = self._open(name)
        out: list[list[Any]] = []
        for query in queries:
            vector = qe.SparseVector(list(query["indices"]), list(query["values"])) if kind == "sparse" else query
            request = qe.QueryRequest(query=qe.Query.Nearest(vector, using=q), limit=k, with_payload=False,
                                      with_vector=False, params=qe.SearchParams(hnsw_ef=max(params.ef, k)))
            try:
                hits = edge.query(request)
            except Exception as e:
                raise self._error(f"search {name!r}", e) from None
            out.append([_key(h.id) for h in hits])
        return out

    def unindexed_rows(self, name: str, field_name: str) -> int | None:
        """Points the HNSW index does not cover (Edge searches them exactly): for a shard with one dense vector and
        no sparse one, points_count - indexed_vectors_count, as on a server; unknown with several."""
        edge = self._open(name)
        try:
            with open(os.path.join(self._path(name), CONFIG_FILE), "rb") as f:
                config = json.load(f)
            info = edge.info()
        except Exception as e:
            raise self._error(f"read the configuration of {name!r}", e) from None
        if len(config.get("vectors") or {}) != 1 or config.get("sparse_vectors"):
            return None
        return max(0, int(info.points_count) - int(info.indexed_vectors_count))

    def text_search(self, spec: CollectionSpec, name: str, field_name: str, queries: list[str], k: int,
                    keys: list[Any] | None = None) -> list[list[tuple[Any, float]]]:
        raise Unsupported("Qdrant has no BM25 functions: no full-text search to check")

    def wait_index(self, name: str, report: PhaseReport | None = None) -> None:
        """A restore ends with the shard optimized (its indexes built); nothing to wait for."""

    def drop_collection(self, name: str) -> None:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} not found in {self.display}")
        self._close(name)
        shutil.rmtree(self._path(name))


#: renameat2(2)'s flag that swaps two paths in one step, and the directory fd meaning "the current folder"
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: str, b: str) -> bool:
    """Swap folders ``a`` and ``b`` in one step (Linux renameat2 with RENAME_EXCHANGE), so that no instant has
    neither under its name; False where the system or its file system has no such call (nothing is changed then),
    OSError for any other failure."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)


@contextmanager
def _folder_lock(path: str) -> Iterator[None]:
    """Folder ``path`` locked (flock on the folder itself: no file is left in it), waiting for another process that
    holds it; the kernel lets go of it when the holder dies."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key(pid: Any) -> Any:
    """A point id as the drill and the id column hold it: an int, or the UUID's canonical text."""
    return pid if isinstance(pid, int) else str(pid)


def _vector(qe: Any, vector: Any) -> Any:
    """A point's vectors as chunk_to_points gives them -> Edge's (sparse ones as SparseVector)."""
    if isinstance(vector, dict):
        return {k: qe.SparseVector(list(v["indices"]), list(v["values"])) if isinstance(v, dict) else v
                for k, v in vector.items()}
    return vector


__all__ = ["EdgeEngine", "is_shard"]
