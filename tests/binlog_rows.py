"""The rows of the collections tests/integration/test_binlog_decode.py writes on the Milvus 2.3 server, and whose
segment files tests/golden/binlogs-2.3/ holds (tests/unit/test_binlog.py decodes them and expects these rows)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: the vector field of each collection, its type and the primary key type
KINDS = {"float": ("v", "FLOAT_VECTOR", "INT64"), "binary": ("bv", "BINARY_VECTOR", "VARCHAR"),
         "float16": ("hv", "FLOAT16_VECTOR", "INT64")}
#: keys deleted after the second flush, and after the third
DELETED_FIRST = (1, 2, 150)
DELETED_LAST = (210, 3)
UPSERTED = (5, 160)


def key(i: int, pk_type: str) -> Any:
    return i if pk_type == "INT64" else f"k{i}"


def row(i: int, kind: str) -> dict[str, Any]:
    """Row ``i`` of a collection of ``kind`` (the golden files hold these)."""
    vec, vtype, pk_type = KINDS[kind]
    r: dict[str, Any] = {
        "pk": key(i, pk_type), "b": i % 2 == 0, "i8": (i % 256) - 128, "i16": i * 7 - 300, "i32": i * 1000 - 7,
        "i64": i * 10**12 - 2**62, "f": i / 3, "d": i / 7, "s": f"str{i}é" * (i % 4),
        "j": {"a": i, "b": [1, "x", None]} if i % 3 else {"n": None, "big": 2**62 + i, "u": "ü", "f": 0.5},
        "ai": list(range(i % 5)), "as_": [f"w{i}"] * (i % 3), "ab": [True, False][: i % 3], "af": [i / 2],
        "ad": [i / 9, 1.5], "a8": [i % 100 - 50], "a16": [i, -i], "a32": [i * 70000, -i],
    }
    if vtype == "FLOAT_VECTOR":
        r[vec] = [float(i), 0.5, -1.0, i / 4]
    elif vtype == "BINARY_VECTOR":
        r[vec] = bytes([i % 256, 255 - i % 256])
    else:
        r[vec] = np.array([i, 0.5, -1.0, i / 4], dtype=np.float16).tobytes()
    if i % 4 == 0:
        r["dyn"] = {"x": i, "l": [i]}
        r["dz"] = f"z{i}"
    return r


def upserted(i: int, kind: str) -> dict[str, Any]:
    r = row(i, kind)
    r["s"], r["i64"] = f"upserted{i}", -i
    return r


def partition_of(i: int) -> str:
    return "p1" if 100 <= i < 200 else "_default"


def surviving(kind: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Per partition, every row a query returns after build(): by primary key, as chunk_to_rows gives it (FLOAT
    values rounded to float32, dynamic fields beside the others)."""
    gone = set(DELETED_FIRST) | set(DELETED_LAST)
    out: dict[str, dict[Any, dict[str, Any]]] = {"_default": {}, "p1": {}}
    for i in range(250):
        if i in gone:
            continue
        r = upserted(i, kind) if i in UPSERTED else row(i, kind)
        r["f"] = float(np.float32(r["f"]))
        r["af"] = np.array(r["af"], dtype=np.float32).tolist()
        vec, vtype, _ = KINDS[kind]
        if vtype == "FLOAT_VECTOR":
            r[vec] = np.array(r[vec], dtype=np.float32).tolist()
        out[partition_of(i)][r["pk"]] = r
    return out


def spec(kind: str) -> Any:
    """The CollectionSpec of build()'s collection, as a backup of the 2.3 server records its fields."""
    from vecbackup.schema import CollectionSpec, Field, FieldType

    vec, vtype, pk_type = KINDS[kind]
    t = FieldType
    fields = [Field("pk", t(pk_type), is_primary=True, max_length=64 if pk_type == "VARCHAR" else None)]
    fields += [Field(n, ft) for n, ft in (("b", t.BOOL), ("i8", t.INT8), ("i16", t.INT16), ("i32", t.INT32),
                                          ("i64", t.INT64), ("f", t.FLOAT), ("d", t.DOUBLE))]
    fields += [Field("s", t.VARCHAR, max_length=100), Field("j", t.JSON),
               Field("ai", t.ARRAY, element_type=t.INT64, max_capacity=5),
               Field("as_", t.ARRAY, element_type=t.VARCHAR, max_capacity=5, max_length=20)]
    fields += [Field(n, t.ARRAY, element_type=et, max_capacity=5)
               for n, et in (("ab", t.BOOL), ("af", t.FLOAT), ("ad", t.DOUBLE), ("a8", t.INT8), ("a16", t.INT16),
                             ("a32", t.INT32))]
    fields.append(Field(vec, t(vtype), dim=16 if vtype == "BINARY_VECTOR" else 4))
    return CollectionSpec(name=f"binlog_{kind}", fields=tuple(fields), enable_dynamic_field=True,
                          partitions=("_default", "p1"))
