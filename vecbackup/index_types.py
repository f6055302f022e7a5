"""Index types and the build parameters each takes, and how a restore's ``--index-type`` / ``--index-params`` turn
the backup's indexes into the ones the target builds (docs/COMPATIBILITY.md, "Index types and build parameters").

Pure: :func:`plan_indexes` is called while a restore is planned, before anything is created; a key the index type
does not take, an index type the field cannot have, or one the target's engine does not build is a UsageError
naming the field, the key or type, and what is taken instead. What the table does not know (an index type of a
newer Milvus, AUTOINDEX's parameters, which differ by field) is not checked: the server decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vecbackup.errors import UsageError
from vecbackup.format.qdrant import HNSW_NAMES
from vecbackup.schema import CollectionSpec, Field, FieldType, Index
from vecbackup.words import either

#: the kinds of field an index is built on
DENSE, BINARY, SPARSE, SCALAR = "dense", "binary", "sparse", "scalar"
#: how messages name each kind
KIND_NAMES = {DENSE: "dense vector", BINARY: "binary vector", SPARSE: "sparse vector", SCALAR: "scalar"}

#: the engine families of a restore target (ops/mapping.py)
MILVUS, QDRANT = "milvus", "qdrant"


@dataclass(frozen=True)
class IndexType:
    """A Milvus index type: its spelling, the kinds of field it is built on, and its build parameters (None: not
    checked). ``defaults``: the parameters knowhere (Milvus's index library) declares as defaults, built where the
    source did not report the parameters and the server refuses to build without them (a 2.3 server)."""

    name: str
    kinds: frozenset[str]
    params: tuple[str, ...] | None = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _types(*types: IndexType) -> dict[str, IndexType]:
    return {t.name.upper(): t for t in types}


_D, _B, _S, _C = frozenset({DENSE}), frozenset({BINARY}), frozenset({SPARSE}), frozenset({SCALAR})
_SPARSE_PARAMS = ("drop_ratio_build", "inverted_index_algo", "bm25_k1", "bm25_b", "bm25_avgdl")
_REFINE = ("refine", "refine_type")

#: Milvus index types (upper-cased name -> type), from the Milvus documentation of 2.3 to 2.6
MILVUS_TYPES: dict[str, IndexType] = _types(
    IndexType("FLAT", _D),
    IndexType("IVF_FLAT", _D, ("nlist",), {"nlist": 128}),
    IndexType("IVF_SQ8", _D, ("nlist",), {"nlist": 128}),
    IndexType("IVF_PQ", _D, ("nlist", "m", "nbits")),
    IndexType("IVF_RABITQ", _D, ("nlist", *_REFINE)),
    IndexType("HNSW", _D, ("M", "efConstruction"), {"M": 16, "efConstruction": 200}),
    IndexType("HNSW_SQ", _D, ("M", "efConstruction", "sq_type", *_REFINE)),
    IndexType("HNSW_PQ", _D, ("M", "efConstruction", "m", "nbits", *_REFINE)),
    IndexType("HNSW_PRQ", _D, ("M", "efConstruction", "m", "nbits", "nrq", *_REFINE)),
    IndexType("SCANN", _D, ("nlist", "with_raw_data")),
    IndexType("DISKANN", _D, ("max_degree", "search_list_size", "pq_code_budget_gb_ratio",
                              "search_cache_budget_gb_ratio")),
    IndexType("GPU_CAGRA", _D, ("intermediate_graph_degree", "graph_degree", "build_algo", "cache_dataset_on_device",
                                "adapt_for_cpu")),
    IndexType("GPU_IVF_FLAT", _D, ("nlist", "cache_dataset_on_device")),
    IndexType("GPU_IVF_PQ", _D, ("nlist", "m", "nbits", "cache_dataset_on_device")),
    IndexType("GPU_BRUTE_FORCE", _D),
    IndexType("BIN_FLAT", _B),
    IndexType("BIN_IVF_FLAT", _B, ("nlist",), {"nlist": 128}),
    IndexType("SPARSE_INVERTED_INDEX", _S, _SPARSE_PARAMS),
    IndexType("SPARSE_WAND", _S, _SPARSE_PARAMS),
    IndexType("INVERTED", _C, ("json_path", "json_cast_type")),
    IndexType("STL_SORT", _C),
    IndexType("Trie", _C),
    IndexType("BITMAP", _C),
    IndexType("NGRAM", _C, ("min_gram", "max_gram")),
    IndexType("RTREE", _C),
    #: on every kind of field; its parameters depend on the field (BM25's on a sparse one, a JSON path's on JSON)
    IndexType("AUTOINDEX", frozenset({DENSE, BINARY, SPARSE, SCALAR}), None),
)
#: parameters every Milvus index takes besides its own (index mmap, Milvus 2.4 and later)
EVERY_INDEX = ("mmap.enabled",)

#: what Qdrant builds on a dense vector: an HNSW graph, or none (HNSW with m=0: exact search, shown as FLAT)
QDRANT_DENSE = ("HNSW", "FLAT")


def field_kind(f: Field) -> str:
    """DENSE, BINARY, SPARSE or SCALAR (a Qdrant multivector, held as an ARRAY of FLOAT: DENSE)."""
    if f.type is FieldType.BINARY_VECTOR:
        return BINARY
    if f.type is FieldType.SPARSE_FLOAT_VECTOR:
        return SPARSE
    return DENSE if f.type.is_vector or "multivector" in f.extra else SCALAR


def milvus_type(name: str) -> IndexType | None:
    """The Milvus index type of that name (any case), or None when the table does not know it."""
    return MILVUS_TYPES.get(name.upper())


def takes(name: str) -> tuple[str, ...] | None:
    """The build parameters a Milvus index of type ``name`` takes (its own and EVERY_INDEX); None: not known."""
    t = milvus_type(name)
    return None if t is None or t.params is None else (*t.params, *EVERY_INDEX)


def defaults(name: str) -> dict[str, Any] | None:
    """knowhere's declared default build parameters of index type ``name`` (None: none declared)."""
    t = milvus_type(name)
    return dict(t.defaults) if t is not None and t.defaults else None


def types_for(kind: str) -> list[str]:
    """The Milvus index types built on fields of ``kind``, as spelt."""
    return [t.name for t in MILVUS_TYPES.values() if kind in t.kinds]


def choose_type(f: Field, wanted: str, family: str) -> str:
    """The index type ``--index-type FIELD:wanted`` builds on field ``f`` of a ``family`` target, as the engine
    spells it; UsageError if the field cannot have it or the engine does not build it."""
    option = type_option(f.name, wanted)
    kind = field_kind(f)
    if family == QDRANT:
        if kind != DENSE:
            raise UsageError(f"{option}: Qdrant has one kind of index for a {KIND_NAMES[kind]} such as {f.name!r}; "
                             f"{type_option()} applies to its dense vectors (HNSW or FLAT)",
                             hint=f"restore without {type_option(f.name, '...')}")
        if wanted.upper() not in QDRANT_DENSE:
            raise UsageError(f"{option}: into Qdrant only HNSW applies (FLAT: HNSW with m=0, exact search)",
                             hint=f"{type_option(f.name, 'HNSW')} with "
                                  f"{params_option(f.name, {'M': 16, 'efConstruction': 100})}, or a Milvus target")
        return wanted.upper()
    t = milvus_type(wanted)
    if t is None:
        raise UsageError(f"{option}: not an index type vecbackup knows", hint=f"index types of {KIND_NAMES[kind]} "
                         f"fields like {f.name!r} ({f.type_name}): " + ", ".join(types_for(kind)))
    if kind not in t.kinds:
        raise UsageError(f"{option}: {t.name} is built on " + " or ".join(KIND_NAMES[k] for k in sorted(t.kinds))
                         + f" fields; {f.name!r} is {f.type_name}",
                         hint=f"index types of {KIND_NAMES[kind]} fields: " + ", ".join(types_for(kind)))
    return t.name


def type_option(field_name: str | None = None, wanted: str | None = None) -> str:
    """The option that picks an index type, in the caller's words: ``--index-type v:IVF_FLAT`` on the command line,
    ``index_types={'v': 'IVF_FLAT'}`` to the API (the option's name alone without a field)."""
    if field_name is None:
        return either("index_types", "--index-type")
    return either(f"index_types={{{field_name!r}: {wanted!r}}}", f"--index-type {field_name}:{wanted}")


def params_option(field_name: str | None = None, params: Mapping[str, Any] | None = None) -> str:
    """The option that gives index parameters, in the caller's words: ``--index-params v:M=16`` on the command line,
    ``index_params={'v': {'M': 16}}`` to the API (without parameters: the field's entry; without a field: the
    option's name)."""
    if field_name is None:
        return either("index_params", "--index-params")
    if params is None:
        return either(f"index_params[{field_name!r}]", f"--index-params {field_name}")
    return either(f"index_params={{{field_name!r}: {dict(params)!r}}}",
                  f"--index-params {field_name}:" + ",".join(f"{k}={v}" for k, v in params.items()))


def check_keys(field_name: str, index_type: str, keys: list[str], how: str) -> None:
    """UsageError unless a Milvus index of ``index_type`` takes every key of ``keys`` (``--index-params``);
    ``how`` says where the type came from ("recorded", "--index-type")."""
    t = milvus_type(index_type)
    if t is None or t.params is None:
        return
    bad = [k for k in keys if k not in t.params and k not in EVERY_INDEX]
    if not bad:
        return
    own = ", ".join(t.params) if t.params else "no build parameters"
    hint = (f"{type_option(field_name, 'TYPE')} builds another index type; {params_option()} then gives that "
            "type's parameters" if how == "recorded" else
            f"give {params_option(field_name)} the parameters of {t.name}")
    raise UsageError(f"{params_option(field_name)}: index type {t.name} ({how}) takes {own} (and "
                     f"{', '.join(EVERY_INDEX)}), not {', '.join(bad)}", hint=hint)


def plan_indexes(spec: CollectionSpec, family: str, index_types: Mapping[str, str],
                 index_params: Mapping[str, Mapping[str, Any]]) -> tuple[CollectionSpec, list[str]]:
    """``spec`` (as the target's engine holds it) with the indexes the restore builds: ``index_types`` (field ->
    type, ``--index-type``) replaces a recorded index type, whose recorded parameters then no longer apply;
    ``index_params`` (field -> parameters, ``--index-params``) are laid over the recorded ones key by key, or are
    the only ones of a replaced type. A note for each index the options change. UsageError (nothing is created)
    for a field without an index, a type the field or engine cannot have, a key the index type does not take."""
    indexed = {i.field_name: i for i in spec.indexes}
    for option, fields in ((type_option(), index_types), (params_option(), index_params)):
        for name in fields:
            if name not in indexed:
                raise UsageError(f"{option} names field {name!r}, which has no index in the backup",
                                 hint="indexed fields: " + (", ".join(indexed) or "none"))
    notes: list[str] = []
    indexes = []
    for index in spec.indexes:
        name = index.field_name
        new = index
        wanted = index_types.get(name)
        retyped = False
        if wanted is not None:
            chosen = choose_type(_field(spec, name), wanted, family)
            retyped = chosen.upper() != index.index_type.upper()
            # nothing is recorded for another type: Milvus builds it with its defaults (params None: not recorded,
            # so a server that requires them gets knowhere's), Qdrant with its own
            new = dataclasses.replace(index, index_type=chosen,
                                      params=(None if family == MILVUS else {}) if retyped else index.params)
        given = dict(index_params.get(name) or {})
        if given:
            if family == MILVUS:
                check_keys(name, new.index_type, list(given), type_option() if wanted is not None else "recorded")
            elif field_kind(_field(spec, name)) == DENSE:  # Qdrant's HNSW names are held as the engine-neutral ones
                given = {HNSW_NAMES.get(k, k): v for k, v in given.items()}
            new = dataclasses.replace(new, params={**(new.params or {}), **given})
        if new != index:
            options = [o for o, d in ((type_option(), index_types), (params_option(), index_params)) if name in d]
            notes.append(f"index on {name!r}: {describe(index)} -> "
                         f"{describe(new, 'the engine default parameters') if retyped else describe(new)} "
                         f"({', '.join(options)})")
        indexes.append(new)
    return dataclasses.replace(spec, indexes=tuple(indexes)), notes


def _field(spec: CollectionSpec, name: str) -> Field:
    """The field ``name`` of ``spec``; a Qdrant payload key with a payload index, which is not one, as JSON."""
    try:
        return spec.field(name)
    except KeyError:
        return Field(name, FieldType.JSON)


def describe(index: Index, unset: str = "parameters not recorded (the engine's defaults)") -> str:
    """``HNSW (COSINE) M=16, efConstruction=200`` (``unset`` in place of parameters that are None)."""
    params = unset if index.params is None else ", ".join(f"{k}={v}" for k, v in index.params.items())
    return " ".join(p for p in (index.index_type, f"({index.metric_type})" if index.metric_type else "", params) if p)


__all__ = ["BINARY", "DENSE", "EVERY_INDEX", "MILVUS", "MILVUS_TYPES", "QDRANT", "QDRANT_DENSE", "SCALAR", "SPARSE",
           "IndexType", "check_keys", "choose_type", "defaults", "describe", "field_kind", "milvus_type",
           "plan_indexes", "takes", "types_for"]
