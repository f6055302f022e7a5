"""What a Milvus target does with a collection's settings, as measured on Milvus Lite 3.2.2 and a Milvus 2.3.5 server
(docs/COMPATIBILITY.md, "Schema features"): which it drops, which it stores without using, which scalar indexes it
cannot build. Pure: the sink's check turns these into the plan's notes and refusals before anything is created.
A server of another version (2.4 and later) is taken to keep everything; what it refuses, it says at create time."""

from __future__ import annotations

import re

from vecbackup.schema import CollectionSpec, Field, FieldType, Index
from vecbackup.words import param

LITE = "Milvus Lite"

#: field parameters Milvus Lite keeps (besides dim, max_length and max_capacity); it accepts and drops the others
LITE_FIELD_PARAMS = frozenset({"enable_analyzer", "enable_match", "analyzer_params"})
#: field parameters a 2.3 server stores but does not use: analyzers and text match came in 2.5, field mmap and
#: warmup later (a 2.3 server stores any field parameter it is given)
UNUSED_BY_23_FIELD = ("enable_analyzer", "enable_match", "analyzer_params", "multi_analyzer_params", "mmap_enabled",
                      "warmup")
#: collection properties a 2.3 server stores but does not use (collection mmap came in 2.4, isolation in 2.5.4)
UNUSED_BY_23_PROPERTY = ("partitionkey.isolation", "mmap.enabled")
#: index parameters a 2.3 server stores but does not use (index mmap came in 2.4)
UNUSED_BY_23_INDEX = ("mmap.enabled",)

_NUMBERS = frozenset({FieldType.INT8, FieldType.INT16, FieldType.INT32, FieldType.INT64, FieldType.FLOAT,
                      FieldType.DOUBLE})


def target_kind(version: str, lite: bool) -> str | None:
    """``LITE``, ``"2.3"`` (a 2.3 server), or None (any other server: nothing predicted)."""
    if lite:
        return LITE
    if re.match(r"v?2\.3(\D|$)", version):
        return "2.3"
    return None


def _target(kind: str, version: str) -> str:
    return LITE if kind == LITE else f"Milvus {version.lstrip('v')}"


def dropped(spec: CollectionSpec, kind: str | None) -> str | None:
    """One note listing what ``spec`` sets that the target accepts and then does not keep (None: nothing)."""
    if kind == LITE:
        items = _lite_drops(spec)
        if items:
            return ("Milvus Lite does not keep " + "; ".join(items) + " (it accepts them and reports them no more): "
                    "the restored copy is without them")
    elif kind == "2.3":
        items = []
        if spec.extra.get("enable_namespace"):
            items.append("namespaces (enable_namespace)")
        keys = [f.name for f in spec.fields if f.is_clustering_key]
        if keys:
            items.append("the clustering key (" + ", ".join(keys) + ")")
        if items:
            return ("Milvus 2.3 does not keep " + "; ".join(items) + " (it has none): the restored copy is without "
                    "them")
    return None


def _lite_drops(spec: CollectionSpec) -> list[str]:
    items = []
    if spec.description:
        items.append("the collection description")
    if spec.consistency_level not in (None, "Strong"):
        items.append(f"consistency level {spec.consistency_level} (Lite is always Strong)")
    if spec.num_shards not in (None, 1):
        items.append(f"{spec.num_shards} shards (Lite has 1)")
    if spec.extra.get("num_partitions") not in (None, 16):
        items.append(f"num_partitions {spec.extra['num_partitions']} (Lite makes 16)")
    if spec.extra.get("enable_namespace"):
        items.append("namespaces (enable_namespace)")
    described = [f.name for f in spec.fields if f.description]
    if described:
        items.append("field descriptions (" + ", ".join(described) + ")")
    keys = [f.name for f in spec.fields if f.is_clustering_key]
    if keys:
        items.append("the clustering key (" + ", ".join(keys) + ")")
    for f in spec.fields:
        lost = [k for k in f.extra if k not in LITE_FIELD_PARAMS]
        if lost:
            items.append(f"field {f.name!r}: " + ", ".join(lost))
    named = [i.index_name for i in spec.indexes if i.index_name and i.index_name != i.field_name]
    if named:
        items.append("index names (" + ", ".join(named) + "; Lite names an index after its field)")
    params = [f"{i.index_name or i.field_name}: " + ", ".join(i.params) for i in spec.indexes if i.params]
    if params:
        items.append("index parameters (" + "; ".join(params) + ")")
    return items


def unused(spec: CollectionSpec, kind: str | None, version: str) -> str | None:
    """One note listing the settings a 2.3 server stores (and reports) but does not use (None: nothing)."""
    if kind != "2.3":
        return None
    items = []
    for f in spec.fields:
        keys = [k for k in f.extra if k in UNUSED_BY_23_FIELD]
        if keys:
            items.append(f"field {f.name!r}: " + ", ".join(keys))
    props = [k for k in spec.properties if k in UNUSED_BY_23_PROPERTY]
    if props:
        items.append("properties " + ", ".join(props))
    for i in spec.indexes:
        keys = [k for k in (i.params or {}) if k in UNUSED_BY_23_INDEX]
        if keys:
            items.append(f"index {i.index_name or i.field_name!r}: " + ", ".join(keys))
    if not items:
        return None
    return (f"{_target(kind, version)} stores these settings without using them (they came in later releases): "
            + "; ".join(items) + "; a later restore from a backup of this copy carries them on")


def index_problem(kind: str | None, field: Field, index: Index) -> str | None:
    """Why the target cannot build ``index`` on ``field`` (a scalar index whose type it lacks for the field's type);
    None when it can or nothing is known."""
    if field.type.is_vector or kind is None:
        return None
    wanted = index.index_type.upper()
    what = field.type_name
    if kind == LITE:
        if field.type in (FieldType.JSON, FieldType.ARRAY):
            return f"it has no scalar index on a {what} field"
        if wanted != "INVERTED":
            return "it builds INVERTED only on scalar fields"
        return None
    if field.type in _NUMBERS:
        return None if wanted == "STL_SORT" else "it builds STL_SORT only on numbers"
    if field.type is FieldType.VARCHAR:
        return None if wanted == "TRIE" else "it builds Trie only on VARCHAR"
    return f"it has no index on a {what} field"


def fallback_index(kind: str | None, field: Field) -> str | None:
    """The index --index-fallback builds where :func:`index_problem` finds one (None: the field is left unindexed)."""
    if kind == LITE:
        return None if field.type in (FieldType.JSON, FieldType.ARRAY) else "INVERTED"
    if field.type in _NUMBERS:
        return "STL_SORT"
    if field.type is FieldType.VARCHAR:
        return "Trie"
    return None


def index_note(kind: str, version: str, field: Field, index: Index, problem: str) -> str:
    """The plan's note for an index --index-fallback replaces (or leaves out)."""
    fallback = fallback_index(kind, field)
    option = param("index_fallback", True)
    instead = f"{option} builds {fallback} instead" if fallback else f"{option} leaves it unindexed"
    return (f"index on {field.name!r}: {_target(kind, version)} cannot build {index.index_type} on "
            f"{field.type_name} fields ({problem}); {instead}")
