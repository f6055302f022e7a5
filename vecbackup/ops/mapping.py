"""Cross-engine restore: how a backup's collection is reshaped for another engine (docs/FORMAT.md,
"Restoring across engines").

Pure: :func:`plan_mapping` turns the recorded :class:`~vecbackup.schema.CollectionSpec` into the spec the
target's sink expects (a Milvus schema, or the Qdrant representation of docs/FORMAT.md "Qdrant collections"),
with one human sentence per decision and every problem that makes the restore impossible;
:func:`transform_chunk` reshapes each decoded chunk the same way before the sink writes it. Between two engines
of the same family (milvus / milvus-lite, qdrant / qdrant-local) the mapping is the identity.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecbackup.errors import Unsupported
from vecbackup.format.codec import Chunk, Column
from vecbackup.format.qdrant import (
    HNSW_NAMES,
    ID_FIELD,
    ID_MAX_LENGTH,
    PAYLOAD_INDEX_PREFIX,
    field_names,
    vector_configs,
)
from vecbackup.schema import DYNAMIC_COLUMN, LITE_DROPPED_KEY, CollectionSpec, Field, FieldType, Index
from vecbackup.times import instant_text
from vecbackup.words import number

MILVUS = "milvus"
QDRANT = "qdrant"
LABELS = {MILVUS: "Milvus", QDRANT: "Qdrant"}

#: namespace of the uuid5 point ids made from VARCHAR primary keys (Milvus -> Qdrant); fixed forever
PK_NAMESPACE = uuid.UUID("5b0c3f3e-7a53-5d1e-9a8e-76656362616b")
#: Qdrant -> Milvus: a payload key equal to a field name (often "id") becomes this prefix + the key
RENAMED_KEY_PREFIX = "payload_"
#: payload key that receives a row's Milvus partition when the collection has more than one
PARTITION_PAYLOAD_KEY = "_partition"

#: Milvus metric_type <-> Qdrant distance
_TO_QDRANT_DISTANCE = {"L2": "Euclid", "IP": "Dot", "COSINE": "Cosine"}
_TO_MILVUS_METRIC = {"Cosine": "COSINE", "Euclid": "L2", "Dot": "IP", "Manhattan": "MANHATTAN"}
#: Milvus scalar type -> Qdrant payload index type
_PAYLOAD_INDEX_TYPES = {
    FieldType.INT8: "INTEGER", FieldType.INT16: "INTEGER", FieldType.INT32: "INTEGER", FieldType.INT64: "INTEGER",
    FieldType.FLOAT: "FLOAT", FieldType.DOUBLE: "FLOAT", FieldType.VARCHAR: "KEYWORD", FieldType.BOOL: "BOOL",
    FieldType.TIMESTAMPTZ: "DATETIME",
}
#: what a payload key holds for the Milvus types whose values are not JSON as they are (-> Qdrant)
_PAYLOAD_FORMS = {
    FieldType.GEOMETRY: "its WKT text as the source returned it (Qdrant has no geometry type: its geo payloads are "
                        "{lon, lat} points, which a WKT text is not in general)",
    FieldType.TIMESTAMPTZ: "RFC 3339 text in UTC (2024-03-03T23:36:07.123456Z): the same instant, to the microsecond "
                           "(Qdrant has no time type; its datetime payload index reads this text)",
}
_INT_TYPES = (FieldType.INT8, FieldType.INT16, FieldType.INT32, FieldType.INT64)
_MILVUS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# how a column is converted (_Move.op)
_COPY, _INT_ID, _UUID5_ID, _F16_TO_F32, _BF16_TO_F32, _F32_TO_F16 = (
    "copy", "int_id", "uuid5_id", "f16_to_f32", "bf16_to_f32", "f32_to_f16")


def engine_family(engine: str) -> str:
    """``milvus`` or ``qdrant`` for a SourceInfo.engine value (milvus, milvus-lite, qdrant, qdrant-local)."""
    e = engine.lower()
    for family in (MILVUS, QDRANT):
        if e == family or e.startswith(family + "-"):
            return family
    raise Unsupported(f"backups of engine {engine!r} cannot be restored by this vecbackup")


@dataclass(frozen=True)
class Decision:
    """What became of one source field (or other part of the collection) on the target."""

    source: str  # source field name, "$meta", "partitions", an index, ...
    target: str  # target field, payload key, "" when dropped
    kind: str  # what it became: "point id", "dense vector", "payload key", "note", ...
    text: str  # one sentence for people
    note: bool = False  # something changes or is lost: also reported as a restore note

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class Problem:
    """A field (or other part) the target cannot hold: the restore is refused before anything is created."""

    field: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"field {self.field!r} ({self.type}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "type": self.type, "reason": self.reason}


@dataclass(frozen=True)
class _Move:
    """Source column -> target column, converted by ``op``; ``required``: a null stops the restore."""

    source: str
    target: str
    op: str = _COPY
    required: bool = False
    what: str = ""  # for the error message: "FLOAT_VECTOR", ...


@dataclass
class Mapping:
    source_engine: str
    target_engine: str
    spec: CollectionSpec  # what the target's sink creates
    decisions: list[Decision] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    identity: bool = False
    # -- how chunks are transformed (see transform_chunk) --
    moves: tuple[_Move, ...] = ()
    payload_fields: tuple[tuple[str, FieldType], ...] = ()  # -> Qdrant: source columns that become payload keys
    pk_payload_key: str | None = None  # -> Qdrant: payload key keeping the original VARCHAR primary key
    partition_payload_key: str | None = None  # -> Qdrant: payload key receiving the row's partition
    reserved_keys: frozenset[str] = frozenset()  # -> Milvus: payload keys that would clash with fields
    partition_names: dict[str, str] = field(default_factory=dict)  # source partition -> target partition

    @property
    def source_family(self) -> str:
        return engine_family(self.source_engine)

    @property
    def target_family(self) -> str:
        return engine_family(self.target_engine)

    @property
    def restorable(self) -> bool:
        return not self.problems

    @property
    def notes(self) -> list[str]:
        return [d.text for d in self.decisions if d.note]

    def error(self) -> Unsupported:
        """Every problem, field by field, on one line."""
        return Unsupported(f"cannot restore into {LABELS[self.target_family]}: "
                           + "; ".join(str(p) for p in self.problems))

    def to_dict(self) -> dict[str, Any]:
        return {"source_engine": self.source_engine, "target_engine": self.target_engine,
                "identity": self.identity, "restorable": self.restorable,
                "decisions": [d.to_dict() for d in self.decisions],
                "problems": [p.to_dict() for p in self.problems]}


def plan_mapping(spec: CollectionSpec, source_engine: str, target_engine: str, *,
                 drop_functions: bool = False) -> Mapping:
    """How ``spec`` (backed up from ``source_engine``) is recreated on ``target_engine``; ``drop_functions``:
    without the collection's functions and their output fields (restore --drop-functions)."""
    src, dst = engine_family(source_engine), engine_family(target_engine)
    dropped: list[Decision] = []
    if drop_functions:
        spec, dropped = without_functions(spec)
    if src == dst:
        mapping = Mapping(source_engine, target_engine, spec, identity=True, decisions=[Decision(
            "*", "*", "identity", f"same kind of database ({LABELS[src]}): restored as recorded")])
    elif src == MILVUS:
        mapping = _milvus_to_qdrant(spec, source_engine, target_engine)
    else:
        mapping = _qdrant_to_milvus(spec, source_engine, target_engine)
    mapping.decisions[:0] = dropped
    return mapping


def without_functions(spec: CollectionSpec) -> tuple[CollectionSpec, list[Decision]]:
    """``spec`` without its functions, their output fields and those fields' indexes (the chunks hold no column
    for them, so the rows are unchanged), and one decision (a note) per function."""
    outputs = spec.function_outputs
    decisions = [Decision(fn.name, "", "function", (
        f"{fn.label}: not recreated (--drop-functions); its output {number(len(fn.output_field_names), 'field')} "
        f"{', '.join(repr(n) for n in fn.output_field_names)} left out, "
        f"{', '.join(repr(n) for n in fn.input_field_names)} restored as recorded"), note=True)
        for fn in spec.functions]
    return dataclasses.replace(spec, functions=(), fields=tuple(f for f in spec.fields if f.name not in outputs),
                               indexes=tuple(i for i in spec.indexes if i.field_name not in outputs)), decisions


# -- Milvus -> Qdrant -------------------------------------------------------------------------------


def _milvus_to_qdrant(spec: CollectionSpec, source_engine: str, target_engine: str) -> Mapping:
    decisions: list[Decision] = []
    problems: list[Problem] = []
    moves: list[_Move] = []
    payload: list[tuple[str, FieldType]] = []
    fields: list[Field] = [Field(name=ID_FIELD, type=FieldType.VARCHAR, max_length=ID_MAX_LENGTH, is_primary=True)]
    indexes: list[Index] = []
    vectors: dict[str, dict[str, Any]] = {}
    sparse: dict[str, dict[str, Any]] = {}
    index_of = {i.field_name: i for i in spec.indexes}
    pk_payload_key = None

    pk = spec.primary
    if pk.type in _INT_TYPES:
        moves.append(_Move(pk.name, ID_FIELD, _INT_ID, what=pk.type.value))
        decisions.append(Decision(pk.name, ID_FIELD, "point id", f"primary key {pk.name!r} ({pk.type.value}) -> "
                                  "integer point ids (a negative key stops the restore: Qdrant ids are unsigned)"))
    elif pk.type is FieldType.VARCHAR:
        moves.append(_Move(pk.name, ID_FIELD, _UUID5_ID, what=pk.type.value))
        pk_payload_key = pk.name
        payload.append((pk.name, pk.type))  # listed for clash checks; filled from the key itself
        indexes.append(Index(field_name=pk.name, index_type=PAYLOAD_INDEX_PREFIX + "KEYWORD", params={}))
        decisions.append(Decision(pk.name, ID_FIELD, "point id", (
            f"primary key {pk.name!r} (VARCHAR) -> point id uuid5({PK_NAMESPACE}, key) (Qdrant ids are integers or "
            f"UUIDs); the original key is kept in payload key {pk.name!r}, with a keyword payload index"), note=True))
    else:
        problems.append(Problem(pk.name, pk.type.value, "a primary key of this type cannot be a Qdrant point id"))
    if pk.auto_id:
        decisions.append(Decision(pk.name, ID_FIELD, "note", f"primary key {pk.name!r} is auto-id in Milvus: the "
                                  "recorded keys become the point ids (Qdrant has no server-assigned ids)"))

    others = [f for f in spec.fields if not f.is_primary]
    vec_fields = [f for f in others if f.type.is_vector]
    names = dict(zip([f.name for f in vec_fields], field_names([f.name for f in vec_fields]), strict=True))
    for f in others:
        t = f.type
        function = spec.output_of(f.name)
        if function is not None:
            problems.append(Problem(f.name, t.value, (
                f"the output of {function.label}: Qdrant has no functions and the backup does not hold function "
                f"outputs (restore with --drop-functions to leave {f.name!r} out; "
                f"{', '.join(repr(n) for n in function.input_field_names)} still become payload keys)")))
        elif t in (FieldType.FLOAT_VECTOR, FieldType.FLOAT16_VECTOR, FieldType.BFLOAT16_VECTOR):
            target = names[f.name]
            idx = index_of.get(f.name)
            vp: dict[str, Any] = {"size": int(f.dim or 0)}
            how: list[str] = []
            metric = (idx.metric_type or "").upper() if idx is not None else ""
            if idx is None or not metric:
                vp["distance"] = "Cosine"
                how.append("no index recorded: distance Cosine (the default)")
                metric = "COSINE"
            elif metric in _TO_QDRANT_DISTANCE:
                vp["distance"] = _TO_QDRANT_DISTANCE[metric]
                how.append(f"metric {metric} -> distance {vp['distance']}")
            else:
                problems.append(Problem(f.name, t.value, f"Qdrant has no {metric} distance"))
                continue
            op = _COPY
            if t is FieldType.FLOAT16_VECTOR:
                vp["datatype"] = "float16"
                op = _F16_TO_F32
                how.append("datatype float16")
            elif t is FieldType.BFLOAT16_VECTOR:
                op = _BF16_TO_F32
                how.append("bfloat16 values as float32 (Qdrant has no bfloat16; exact)")
            hnsw: dict[str, Any] = {}
            index_type = "HNSW"
            if idx is not None and idx.index_type.upper() == "HNSW" and idx.params:
                for theirs, ours in HNSW_NAMES.items():
                    if idx.params.get(ours) is not None:
                        hnsw[theirs] = int(idx.params[ours])
                how.append("HNSW " + ", ".join(f"{k}={v}" for k, v in hnsw.items()) if hnsw
                           else "HNSW with Qdrant's default settings")
            elif idx is not None and idx.index_type.upper() == "FLAT":
                hnsw["m"] = 0
                index_type = "FLAT"
                how.append("FLAT -> no HNSW graph (m=0): exact search")
            elif idx is not None:
                how.append(f"index {idx.index_type or 'of unknown type'} -> HNSW with Qdrant's default settings")
            if hnsw:
                vp["hnsw_config"] = hnsw
            if metric == "COSINE":
                how.append("Qdrant stores Cosine vectors normalized to unit length")
            vectors[target] = vp
            moves.append(_Move(f.name, target, op, what=t.value))
            fields.append(Field(name=target, type=FieldType.FLOAT_VECTOR, dim=f.dim, nullable=True,
                                extra={"qdrant_name": target}))
            indexes.append(Index(field_name=target, index_type=index_type, metric_type=metric,
                                 params={HNSW_NAMES[k]: v for k, v in hnsw.items() if k in HNSW_NAMES}))
            decisions.append(Decision(f.name, target, "dense vector", f"{t.value} field {f.name!r} (dim {f.dim}) -> "
                                      f"named dense vector {target!r}: " + "; ".join(how),
                                      note=idx is None or op is _BF16_TO_F32))
        elif t is FieldType.SPARSE_FLOAT_VECTOR:
            target = names[f.name]
            sparse[target] = {}
            moves.append(_Move(f.name, target, _COPY, what=t.value))
            fields.append(Field(name=target, type=t, nullable=True, extra={"qdrant_name": target}))
            indexes.append(Index(field_name=target, index_type="SPARSE_INVERTED_INDEX", metric_type="IP", params={}))
            decisions.append(Decision(f.name, target, "sparse vector", f"sparse field {f.name!r} -> sparse vector "
                                      f"{target!r} (dot product, as Milvus's IP)"))
        elif t is FieldType.BINARY_VECTOR:
            problems.append(Problem(f.name, t.value, "Qdrant has no binary vectors"))
        elif f.is_struct_array:
            problems.append(Problem(f.name, f.type_name, "vecbackup does not map struct arrays into Qdrant"))
        elif t.is_vector:
            problems.append(Problem(f.name, t.value, f"Qdrant has no {t.value} vectors"))
        else:
            payload.append((f.name, t))
            what = f"{t.value}" + (f" of {f.element_type.value}" if f.element_type is not None else "")
            extra = ""
            lost = False
            idx = index_of.get(f.name)
            if idx is not None:
                ptype = _PAYLOAD_INDEX_TYPES.get(t)
                if ptype is not None:
                    indexes.append(Index(field_name=f.name, index_type=PAYLOAD_INDEX_PREFIX + ptype, params={}))
                    extra = f"; its {idx.index_type} index -> a {ptype.lower()} payload index"
                else:
                    extra = f"; its {idx.index_type} index has no Qdrant counterpart and is not recreated"
                    lost = True
            if f.is_partition_key:
                extra += "; it was the partition key (Qdrant has no partition key: consider a tenant payload index)"
                lost = True
            if f.is_clustering_key:
                extra += "; it was the clustering key (not kept)"
                lost = True
            if t in _PAYLOAD_FORMS:
                extra = f": {_PAYLOAD_FORMS[t]}" + extra
                lost = True
            decisions.append(Decision(f.name, f.name, "payload key", f"{what} field {f.name!r} -> payload key "
                                      f"{f.name!r}" + extra, note=lost))
    if spec.enable_dynamic_field:
        decisions.append(Decision(DYNAMIC_COLUMN, "payload", "payload keys",
                                  "dynamic fields ($meta) -> payload keys of the same names"))
    partition_key = None
    if not any(f.is_partition_key for f in spec.fields):
        user = [p for p in spec.partitions if p != "_default"]
        if len(spec.partitions) > 1:
            partition_key = PARTITION_PAYLOAD_KEY
            if any(n == PARTITION_PAYLOAD_KEY for n, _ in payload):
                problems.append(Problem(PARTITION_PAYLOAD_KEY, spec.field(PARTITION_PAYLOAD_KEY).type.value,
                                        "the payload key that would hold the partition names is taken"))
            decisions.append(Decision("partitions", PARTITION_PAYLOAD_KEY, "payload key", (
                f"partitions {', '.join(repr(p) for p in spec.partitions)} -> one collection (Qdrant has no "
                f"partitions); each point's partition name is in payload key {PARTITION_PAYLOAD_KEY!r}"), note=True))
        elif user:
            decisions.append(Decision("partitions", "", "note", "partition " + repr(user[0]) +
                                      " -> one collection (Qdrant has no partitions)", note=True))
    _common_notes(spec, decisions, drop_props=True)
    _milvus_settings_note(spec, decisions)
    config: dict[str, Any] = {"params": {"vectors": vectors}}
    if sparse:
        config["params"]["sparse_vectors"] = sparse
    out = CollectionSpec(name=spec.name, fields=tuple(fields), enable_dynamic_field=True, partitions=(),
                         indexes=tuple(indexes), aliases=spec.aliases, extra={"qdrant": config})
    return Mapping(source_engine, target_engine, out, decisions, problems, moves=tuple(moves),
                   payload_fields=tuple(p for p in payload if p[0] != pk_payload_key), pk_payload_key=pk_payload_key,
                   partition_payload_key=partition_key)


def _common_notes(spec: CollectionSpec, decisions: list[Decision], *, drop_props: bool) -> None:
    if spec.description:
        decisions.append(Decision("description", "", "note", "the collection description is not kept", note=True))
    if drop_props and spec.properties:
        decisions.append(Decision("properties", "", "note", "collection properties " +
                                  ", ".join(sorted(spec.properties)) + " are not kept", note=True))


def _milvus_settings_note(spec: CollectionSpec, decisions: list[Decision]) -> None:
    """One note for the Milvus settings a Qdrant collection has no place for (docs/COMPATIBILITY.md)."""
    items = []
    if spec.consistency_level:
        items.append(f"consistency level {spec.consistency_level}")
    if spec.num_shards:
        items.append(f"{spec.num_shards} shards (--shards sets Qdrant's shard_number)")
    if spec.extra.get("num_partitions"):
        items.append(f"num_partitions {spec.extra['num_partitions']}")
    if spec.extra.get("enable_namespace"):
        items.append("namespaces (enable_namespace)")
    described = [f.name for f in spec.fields if f.description]
    if described:
        items.append("field descriptions (" + ", ".join(described) + ")")
    items += [f"field {f.name!r}: " + ", ".join(f.extra) for f in spec.fields if f.extra]
    named = [i.index_name for i in spec.indexes if i.index_name and i.index_name != i.field_name]
    if named:
        items.append("index names (" + ", ".join(named) + ")")
    if items:
        decisions.append(Decision("settings", "", "note", "Milvus settings Qdrant has no place for are not kept: "
                                  + "; ".join(items), note=True))


# -- Qdrant -> Milvus -------------------------------------------------------------------------------


def _milvus_names(names: list[str], taken: set[str]) -> dict[str, str]:
    """A valid, unique Milvus field name for each name (kept when it already is one)."""
    out: dict[str, str] = {}
    for n in names:
        base = n if _MILVUS_NAME.match(n) else re.sub(r"[^A-Za-z0-9_]", "_", n) or "field"
        if not _MILVUS_NAME.match(base):
            base = "_" + base
        base = base[:250]
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        out[n] = name
    return out


def _qdrant_to_milvus(spec: CollectionSpec, source_engine: str, target_engine: str) -> Mapping:
    decisions: list[Decision] = []
    problems: list[Problem] = []
    moves: list[_Move] = []
    lite = target_engine.lower() == "milvus-lite"
    cfg: dict[str, Any] = spec.extra.get("qdrant") or {}
    params: dict[str, Any] = cfg.get("params") or {}
    vector_params = dict(vector_configs(params))
    sparse_params: dict[str, Any] = params.get("sparse_vectors") or {}
    index_of = {i.field_name: i for i in spec.indexes}

    pk = spec.primary
    fields = [Field(name=pk.name, type=FieldType.VARCHAR, max_length=pk.max_length or ID_MAX_LENGTH, is_primary=True)]
    moves.append(_Move(pk.name, pk.name, _COPY))
    decisions.append(Decision(pk.name, pk.name, "primary key", (
        f"point ids -> VARCHAR({pk.max_length or ID_MAX_LENGTH}) primary key {pk.name!r}: an integer id as its "
        "decimal digits, a UUID as written (the backup alone cannot prove every id is an integer)"), note=True))
    indexes: list[Index] = []
    others = [f for f in spec.fields if not f.is_primary]
    names = _milvus_names([f.name for f in others], {pk.name, DYNAMIC_COLUMN})
    for f in others:
        q = str(f.extra.get("qdrant_name", f.name))
        target = names[f.name]
        renamed = f" (renamed: {f.name!r} is not a valid Milvus field name)" if target != f.name else ""
        label = repr(q) if q else "(the unnamed vector)"
        if f.type is FieldType.ARRAY and "multivector" in f.extra:
            problems.append(Problem(f.name, "multivector", "Milvus has no multivector type"))
        elif f.type is FieldType.FLOAT_VECTOR:
            vp = vector_params.get(q) or {}
            idx = index_of.get(f.name)
            metric = (idx.metric_type if idx is not None and idx.metric_type else
                      _TO_MILVUS_METRIC.get(str(vp.get("distance")), str(vp.get("distance", "")).upper()))
            if metric not in _TO_QDRANT_DISTANCE:
                problems.append(Problem(f.name, f.type.value, f"Milvus has no {metric.title() or 'such'} distance "
                                        "for float vectors"))
                continue
            datatype = str(vp.get("datatype") or "float32")
            how: list[str] = []
            ftype, op = FieldType.FLOAT_VECTOR, _COPY
            if datatype == "float16" and not lite:
                ftype, op = FieldType.FLOAT16_VECTOR, _F32_TO_F16
                how.append("float16 datatype -> FLOAT16_VECTOR")
            elif datatype != "float32":
                how.append(f"{datatype} datatype -> FLOAT_VECTOR (holds its values exactly"
                           + ("; Milvus Lite has no FLOAT16_VECTOR)" if datatype == "float16" else ")"))
            if idx is not None and idx.index_type == "FLAT":
                index = Index(field_name=target, index_type="FLAT", index_name=target, metric_type=metric, params={})
                how.append(f"metric {metric}, FLAT index (no HNSW graph in Qdrant)")
            else:
                hp = {k: int(v) for k, v in ((idx.params or {}) if idx is not None else {}).items()
                      if k in HNSW_NAMES.values() and v is not None}
                index = Index(field_name=target, index_type="HNSW", index_name=target, metric_type=metric, params=hp)
                how.append(f"metric {metric}, HNSW " + (", ".join(f"{k}={v}" for k, v in hp.items()) or "defaults"))
            indexes.append(index)
            moves.append(_Move(f.name, target, op, required=True, what=ftype.value))
            fields.append(Field(name=target, type=ftype, dim=f.dim))
            decisions.append(Decision(f.name, target, "dense vector", (
                f"dense vector {label} (size {f.dim}) -> {ftype.value} field {target!r}{renamed}: " + "; ".join(how)
                + "; a point without this vector stops the restore (Milvus vectors cannot be null)"),
                note=bool(renamed)))
        elif f.type is FieldType.SPARSE_FLOAT_VECTOR:
            modifier = (sparse_params.get(q) or {}).get("modifier")
            idf = f"; the {modifier} modifier is not kept (Milvus scores plain dot products)" \
                if modifier and modifier != "none" else ""
            indexes.append(Index(field_name=target, index_type="SPARSE_INVERTED_INDEX", index_name=target,
                                 metric_type="IP", params={}))
            moves.append(_Move(f.name, target, _COPY, required=True, what=f.type.value))
            fields.append(Field(name=target, type=FieldType.SPARSE_FLOAT_VECTOR))
            decisions.append(Decision(f.name, target, "sparse vector", (
                f"sparse vector {label} -> SPARSE_FLOAT_VECTOR field {target!r}{renamed} with SPARSE_INVERTED_INDEX, "
                f"metric IP{idf}; a point without this vector stops the restore (Milvus has no empty or null sparse "
                "vectors)"), note=bool(renamed or idf)))
        else:
            problems.append(Problem(f.name, f.type.value, "this column has no place in a Milvus collection"))
    reserved = [f.name for f in fields] + ([LITE_DROPPED_KEY] if lite else [])
    decisions.append(Decision(DYNAMIC_COLUMN, DYNAMIC_COLUMN, "dynamic fields", (
        "payload -> dynamic fields (enable_dynamic_field): each payload key a dynamic field; a payload key equal to a "
        "field name (" + ", ".join(f.name for f in fields) + f") is renamed {RENAMED_KEY_PREFIX}<key>"
        + (f", as is {LITE_DROPPED_KEY!r}, which Milvus Lite drops from inserted rows" if lite else "")), note=True))
    for i in spec.indexes:
        if i.index_type.startswith(PAYLOAD_INDEX_PREFIX):
            decisions.append(Decision(i.field_name, "", "note", (
                f"payload index {i.index_type[len(PAYLOAD_INDEX_PREFIX):].lower()} on {i.field_name!r} is not "
                "recreated (Milvus indexes dynamic fields only through JSON path indexes)"), note=True))
    partitions: tuple[str, ...] = ("_default",)
    partition_names: dict[str, str] = {}
    if spec.partitions:
        pnames = _milvus_names(list(spec.partitions), {"_default"})
        partition_names = dict(pnames)
        partitions = ("_default", *pnames.values())
        decisions.append(Decision("partitions", "partitions", "partitions", (
            "shard keys " + ", ".join(f"{k!r} -> partition {v!r}" for k, v in pnames.items())
            + " (custom sharding -> partitions)"), note=any(k != v for k, v in pnames.items())))
    dropped = sorted(k for k in cfg if k != "params") + sorted(
        k for k in params if k not in ("vectors", "sparse_vectors"))
    if dropped:
        decisions.append(Decision("extra.qdrant", "", "note", "Qdrant-only settings are not applied: "
                                  + ", ".join(dropped)))
    out = CollectionSpec(name=spec.name, fields=tuple(fields), description=spec.description,
                         enable_dynamic_field=True, partitions=partitions, indexes=tuple(indexes),
                         aliases=spec.aliases)
    return Mapping(source_engine, target_engine, out, decisions, problems, moves=tuple(moves),
                   reserved_keys=frozenset(reserved), partition_names=partition_names)


# -- chunks ---------------------------------------------------------------------------------------


def transform_chunk(mapping: Mapping, chunk: Chunk) -> Chunk:
    """A decoded chunk of the backup -> the chunk the target's sink writes (the same chunk for the identity).

    Raises Unsupported, naming the field and the row, for data the target cannot hold: a negative integer key
    going to Qdrant, or a missing vector going to Milvus."""
    if mapping.identity:
        return chunk
    if mapping.problems:
        raise mapping.error()
    n = chunk.num_rows
    columns: dict[str, Column] = {}
    for mv in mapping.moves:
        columns[mv.target] = _move(mapping, mv, chunk)
    if mapping.target_family == QDRANT:
        columns[DYNAMIC_COLUMN] = Column(_payloads(mapping, chunk))
        return Chunk(partition="", num_rows=n, columns=columns)
    meta = chunk.columns.get(DYNAMIC_COLUMN)
    if meta is not None:
        columns[DYNAMIC_COLUMN] = Column([_rename_reserved(p, mapping.reserved_keys) for p in meta.values])
    partition = mapping.partition_names.get(chunk.partition, chunk.partition)
    return Chunk(partition=partition, num_rows=n, columns=columns)


def _rename_reserved(payload: Any, reserved: frozenset[str]) -> Any:
    """A payload whose keys clash with Milvus field names (often ``id``), with those keys renamed
    ``payload_<key>`` (``payload_<key>_2``, ... if that is taken too): a dynamic field cannot share a field's name."""
    if not payload or not isinstance(payload, dict) or not reserved.intersection(payload):
        return payload
    out = {}
    for k, v in payload.items():
        if k in reserved:
            new, n = f"{RENAMED_KEY_PREFIX}{k}", 1
            while new in payload or new in reserved or new in out:
                n += 1
                new = f"{RENAMED_KEY_PREFIX}{k}_{n}"
            out[new] = v
        else:
            out[k] = v
    return out


def _row_id(mapping: Mapping, chunk: Chunk, i: int) -> str:
    name = mapping.moves[0].source if mapping.moves else ""
    col = chunk.columns.get(name)
    return str(col.values[i]) if col is not None else str(i)


def _move(mapping: Mapping, mv: _Move, chunk: Chunk) -> Column:
    col = chunk.columns[mv.source]
    valid = col.valid
    if mv.required and valid is not None and not bool(valid.all()):
        i = int(np.flatnonzero(~valid)[0])
        raise Unsupported(
            f"cannot restore into {LABELS[mapping.target_family]}: field {mv.target!r} ({mv.what}): point "
            f"{_row_id(mapping, chunk, i)} has no vector {mv.source!r}, and Milvus vector fields cannot be null",
            hint="give every point this vector in the source collection, or restore into Qdrant")
    values: Any = col.values
    if mv.op == _INT_ID:
        arr = np.asarray(values)
        if arr.size and int(arr.min()) < 0:
            bad = int(arr[np.flatnonzero(arr < 0)[0]])
            raise Unsupported(f"cannot restore into Qdrant: field {mv.source!r} ({mv.what}): primary key {bad} is "
                              "negative; Qdrant point ids are unsigned integers or UUIDs")
        values = [str(v) for v in arr.tolist()]
    elif mv.op == _UUID5_ID:
        values = [str(uuid.uuid5(PK_NAMESPACE, str(v))) for v in values]
    elif mv.op == _F16_TO_F32:
        values = np.asarray(values, dtype="<u2").view("<f2").astype("<f4")
    elif mv.op == _BF16_TO_F32:
        values = (np.asarray(values, dtype="<u2").astype("<u4") << 16).view("<f4")
    elif mv.op == _F32_TO_F16:
        values = np.asarray(values, dtype="<f4").astype("<f2").view("<u2")
    return Column(values, valid)


def _py_values(col: Column, n: int) -> list[Any]:
    """A column's values as JSON-ready Python values, None at nulls."""
    values = col.values
    out: list[Any] = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if col.valid is not None:
        for i in np.flatnonzero(~col.valid).tolist():
            out[i] = None
    if len(out) != n:  # pragma: no cover - the codec guarantees it
        raise ValueError("column length differs from num_rows")
    return out


def _payloads(mapping: Mapping, chunk: Chunk) -> list[dict[str, Any]]:
    n = chunk.num_rows
    payloads: list[dict[str, Any]] = [{} for _ in range(n)]
    if mapping.pk_payload_key is not None:
        keys = _py_values(chunk.columns[mapping.pk_payload_key], n)
        for p, v in zip(payloads, keys, strict=True):
            p[mapping.pk_payload_key] = v
    for name, ftype in mapping.payload_fields:
        values = _py_values(chunk.columns[name], n)
        if ftype is FieldType.TIMESTAMPTZ:
            values = [None if v is None else instant_text(v) for v in values]
        for p, v in zip(payloads, values, strict=True):
            p[name] = v
    meta = chunk.columns.get(DYNAMIC_COLUMN)
    if meta is not None:
        for p, extra in zip(payloads, meta.values, strict=True):
            if extra:
                for k, v in extra.items():
                    p.setdefault(k, v)
    if mapping.partition_payload_key is not None:
        for p in payloads:
            p[mapping.partition_payload_key] = chunk.partition
    return payloads
