"""Engine-neutral description of a collection: fields, indexes, partitions.

Sources translate their engine's schema into these frozen dataclasses, the
manifest stores them, and sinks translate them back. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    """Every column type the format can hold (see docs/FORMAT.md)."""

    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    VARCHAR = "VARCHAR"
    JSON = "JSON"
    ARRAY = "ARRAY"
    GEOMETRY = "GEOMETRY"
    TIMESTAMPTZ = "TIMESTAMPTZ"
    #: the element type of an ARRAY of structs (Field.struct_fields); never a column's own type
    STRUCT = "STRUCT"
    FLOAT_VECTOR = "FLOAT_VECTOR"
    FLOAT16_VECTOR = "FLOAT16_VECTOR"
    BFLOAT16_VECTOR = "BFLOAT16_VECTOR"
    BINARY_VECTOR = "BINARY_VECTOR"
    INT8_VECTOR = "INT8_VECTOR"
    SPARSE_FLOAT_VECTOR = "SPARSE_FLOAT_VECTOR"

    @property
    def is_vector(self) -> bool:
        return self.name.endswith("_VECTOR")

    @property
    def is_dense_vector(self) -> bool:
        return self.is_vector and self is not FieldType.SPARSE_FLOAT_VECTOR


#: numpy dtype (little-endian) of fixed-width scalar columns and array elements
SCALAR_DTYPES: dict[FieldType, str] = {
    FieldType.BOOL: "|b1",
    FieldType.INT8: "|i1",
    FieldType.INT16: "<i2",
    FieldType.INT32: "<i4",
    FieldType.INT64: "<i8",
    FieldType.FLOAT: "<f4",
    FieldType.DOUBLE: "<f8",
}

#: numpy dtype of every fixed-width scalar column: the numbers above and TIMESTAMPTZ, an instant as microseconds since
#: 1970-01-01T00:00:00Z (docs/FORMAT.md, "Column encodings")
FIXED_DTYPES: dict[FieldType, str] = {**SCALAR_DTYPES, FieldType.TIMESTAMPTZ: "<i8"}

#: column types that are new in manifest format version 3 (vecbackup 0.3 and earlier refuse such a backup as a newer
#: format instead of misreading it); ARRAY of STRUCT is one too (Field.struct_fields)
V3_TYPES: frozenset[FieldType] = frozenset({FieldType.GEOMETRY, FieldType.TIMESTAMPTZ})

#: numpy dtype and values-per-row of dense vector columns (dim = declared dimension)
#: FLOAT16/BFLOAT16 are kept as their raw 16-bit patterns; BINARY packs 8 dims per byte.
VECTOR_DTYPES: dict[FieldType, str] = {
    FieldType.FLOAT_VECTOR: "<f4",
    FieldType.FLOAT16_VECTOR: "<u2",
    FieldType.BFLOAT16_VECTOR: "<u2",
    FieldType.BINARY_VECTOR: "|u1",
    FieldType.INT8_VECTOR: "|i1",
}


def vector_width(ftype: FieldType, dim: int) -> int:
    """Number of array elements one row of a dense vector column holds."""
    if ftype is FieldType.BINARY_VECTOR:
        return dim // 8
    return dim


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    dim: int | None = None  # dense vectors
    element_type: FieldType | None = None  # ARRAY
    max_length: int | None = None  # VARCHAR, ARRAY of VARCHAR
    max_capacity: int | None = None  # ARRAY
    nullable: bool = False
    default_value: Any = None  # None means "no default"
    is_primary: bool = False
    auto_id: bool = False
    is_partition_key: bool = False
    is_clustering_key: bool = False
    description: str = ""
    #: engine-specific extras we keep but do not interpret (e.g. analyzer params)
    extra: dict[str, Any] = field(default_factory=dict)
    #: attributes the source did not report and the backup measured from the data instead (e.g. max_length)
    inferred: tuple[str, ...] = ()
    #: ARRAY of STRUCT: the fields of one struct, in order (each a scalar of an ARRAY element type or a dense vector)
    struct_fields: tuple[Field, ...] = ()

    @property
    def type_name(self) -> str:
        """The type as messages show it: ``VARCHAR``, ``ARRAY<VARCHAR>``, ``ARRAY<STRUCT>``."""
        if self.type is FieldType.ARRAY and self.element_type is not None:
            return f"ARRAY<{self.element_type.value}>"
        return self.type.value

    @property
    def is_struct_array(self) -> bool:
        return self.type is FieldType.ARRAY and self.element_type is FieldType.STRUCT

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type.value}
        for key in ("dim", "max_length", "max_capacity", "default_value"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        if self.element_type is not None:
            d["element_type"] = self.element_type.value
        for key in ("nullable", "is_primary", "auto_id", "is_partition_key", "is_clustering_key"):
            if getattr(self, key):
                d[key] = True
        if self.description:
            d["description"] = self.description
        if self.extra:
            d["extra"] = self.extra
        if self.inferred:
            d["inferred"] = list(self.inferred)
        if self.struct_fields:
            d["struct_fields"] = [f.to_dict() for f in self.struct_fields]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Field:
        return cls(
            name=d["name"],
            type=FieldType(d["type"]),
            dim=d.get("dim"),
            element_type=FieldType(d["element_type"]) if d.get("element_type") else None,
            max_length=d.get("max_length"),
            max_capacity=d.get("max_capacity"),
            nullable=bool(d.get("nullable", False)),
            default_value=d.get("default_value"),
            is_primary=bool(d.get("is_primary", False)),
            auto_id=bool(d.get("auto_id", False)),
            is_partition_key=bool(d.get("is_partition_key", False)),
            is_clustering_key=bool(d.get("is_clustering_key", False)),
            description=d.get("description", ""),
            extra=dict(d.get("extra", {})),
            inferred=_names(d.get("inferred", [])),
            struct_fields=tuple(cls.from_dict(f) for f in d.get("struct_fields", [])),
        )


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of names, not {value!r}")
    return tuple(value)


#: name of the column that carries a row's dynamic fields (a JSON object)
DYNAMIC_COLUMN = "$meta"
#: a dynamic field name Milvus Lite (3.x) silently drops from inserted rows (a 2.3 server keeps it): a restore into
#: Lite renames it when it comes from a Qdrant payload (vecbackup.ops.mapping) and refuses it otherwise
LITE_DROPPED_KEY = "_partition"


@dataclass(frozen=True)
class Index:
    field_name: str
    index_type: str
    index_name: str = ""
    metric_type: str | None = None
    #: build parameters (e.g. {"M": 16, "efConstruction": 200}); None = the engine did not report them
    params: dict[str, Any] | None = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "field_name": self.field_name,
            "index_name": self.index_name,
            "index_type": self.index_type,
            "metric_type": self.metric_type,
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Index:
        params = d.get("params")
        return cls(
            field_name=d["field_name"],
            index_type=d["index_type"],
            index_name=d.get("index_name", ""),
            metric_type=d.get("metric_type"),
            params=dict(params) if params is not None else None,
        )


@dataclass(frozen=True)
class Function:
    """A function of the collection's schema (Milvus 2.5+: BM25, TEXTEMBEDDING, ...): the server computes its
    output fields from its input fields on insert. Recorded as the source reports it; the rows of its output
    fields are not stored (docs/FORMAT.md, "Functions")."""

    name: str
    type: str  # as the engine names it: BM25, TEXTEMBEDDING, RERANK, MINHASH, or a type a newer server defines
    input_field_names: tuple[str, ...]
    output_field_names: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: params the source reported whose values are credentials (e.g. ``api_key``): not recorded, named here
    withheld: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How messages name it: ``BM25 function 'bm25' ('text' -> 'sparse')``."""
        ins = ", ".join(repr(n) for n in self.input_field_names)
        outs = ", ".join(repr(n) for n in self.output_field_names)
        return f"{self.type} function {self.name!r} ({ins} -> {outs})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "input_field_names": list(self.input_field_names),
                             "output_field_names": list(self.output_field_names), "params": self.params}
        if self.description:
            d["description"] = self.description
        if self.withheld:
            d["withheld"] = list(self.withheld)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Function:
        params = d.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise ValueError(f"function {d.get('name')!r}: params must be a JSON object")
        if not isinstance(d["name"], str) or not isinstance(d["type"], str) or not d["type"]:
            raise ValueError("a function needs a name and a type")
        return cls(name=d["name"], type=d["type"], input_field_names=_names(d["input_field_names"]),
                   output_field_names=_names(d["output_field_names"]), params=dict(params),
                   description=str(d.get("description", "")), withheld=_names(d.get("withheld", [])))


@dataclass(frozen=True)
class CollectionSpec:
    """Everything needed to recreate a collection, minus its rows."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    enable_dynamic_field: bool = False
    consistency_level: str | None = None
    num_shards: int | None = None
    partitions: tuple[str, ...] = ("_default",)
    indexes: tuple[Index, ...] = ()
    aliases: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    #: engine-specific extras we keep (e.g. the partition-key partition count)
    extra: dict[str, Any] = field(default_factory=dict)
    #: functions of the schema (e.g. BM25): the server fills their output fields, which chunks do not hold
    functions: tuple[Function, ...] = ()

    @property
    def primary(self) -> Field:
        for f in self.fields:
            if f.is_primary:
                return f
        raise ValueError(f"collection {self.name!r} has no primary key field")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def function_outputs(self) -> frozenset[str]:
        """Names of the fields a function of the schema fills (not stored: docs/FORMAT.md, "Functions")."""
        return frozenset(n for fn in self.functions for n in fn.output_field_names)

    def output_of(self, name: str) -> Function | None:
        """The function whose output field ``name`` is, if any."""
        return next((fn for fn in self.functions if name in fn.output_field_names), None)

    @property
    def stored_fields(self) -> tuple[Field, ...]:
        """The fields whose values a data chunk holds: all but function outputs, in schema order."""
        outputs = self.function_outputs
        return tuple(f for f in self.fields if f.name not in outputs) if outputs else self.fields

    @property
    def columns(self) -> tuple[Field, ...]:
        """The columns a data chunk holds: every field but function outputs, plus $meta when dynamic fields are
        on."""
        cols = self.stored_fields
        if self.enable_dynamic_field:
            cols = (*cols, Field(name=DYNAMIC_COLUMN, type=FieldType.JSON, nullable=True))
        return cols

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "fields": [f.to_dict() for f in self.fields],
            "enable_dynamic_field": self.enable_dynamic_field,
            "consistency_level": self.consistency_level,
            "num_shards": self.num_shards,
            "partitions": list(self.partitions),
            "indexes": [i.to_dict() for i in self.indexes],
            "aliases": list(self.aliases),
            "properties": self.properties,
            "extra": self.extra,
            **({"functions": [fn.to_dict() for fn in self.functions]} if self.functions else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSpec:
        return cls(
            name=d["name"],
            description=d.get("description", ""),
            fields=tuple(Field.from_dict(f) for f in d["fields"]),
            enable_dynamic_field=bool(d.get("enable_dynamic_field", False)),
            consistency_level=d.get("consistency_level"),
            num_shards=d.get("num_shards"),
            partitions=tuple(d.get("partitions", ["_default"])),
            indexes=tuple(Index.from_dict(i) for i in d.get("indexes", [])),
            aliases=tuple(d.get("aliases", [])),
            properties=dict(d.get("properties", {})),
            extra=dict(d.get("extra", {})),
            functions=_functions(d.get("functions", []), [f["name"] for f in d["fields"]]),
        )


def _functions(value: Any, fields: list[str]) -> tuple[Function, ...]:
    """The functions of a collection object, each naming fields it has; an output field filled by one function
    only, and never an input (ValueError otherwise)."""
    if not isinstance(value, list):
        raise ValueError("functions must be a list")
    out = tuple(Function.from_dict(d) for d in value)
    outputs = [n for fn in out for n in fn.output_field_names]
    for fn in out:
        for n in (*fn.input_field_names, *fn.output_field_names):
            if n not in fields:
                raise ValueError(f"function {fn.name!r} names field {n!r}, which the collection does not have")
        if not fn.output_field_names:
            raise ValueError(f"function {fn.name!r} has no output field")
    if len(outputs) != len(set(outputs)) or set(outputs) & {n for fn in out for n in fn.input_field_names}:
        raise ValueError("a function output field must be filled by one function and be no function's input")
    return out
