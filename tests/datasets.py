"""Test collections with every type each real engine supports, and ways to read them back for comparison."""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DIM = 32


@dataclass
class Built:
    name: str
    rows: int
    vector_field: str
    metric: str
    partitions: list[str] = field(default_factory=list)
    index_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # as created, per field


def _words(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = ["alpha", "βeta", "gamma", "δ", "ünïcode", "", "x" * 16, "emoji🙂", "tab\t", "quote\""]
    return [alphabet[int(i)] for i in rng.integers(0, len(alphabet), n)]


def build_rich(client: Any, name: str, kind: str, n: int = 600, seed: int = 7) -> Built:
    """One collection with every scalar type, JSON, ARRAY, a dense vector (HNSW with explicit
    parameters), dynamic fields and three partitions; on engines that have them also sparse vectors,
    nullable fields and defaults."""
    from pymilvus import DataType, MilvusClient

    modern = kind in ("lite", "remote")  # Milvus 2.3 has no sparse vectors / nullable / defaults
    rng = np.random.default_rng(seed)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True, description="rich test collection")
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("title", DataType.VARCHAR, max_length=128)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    s.add_field("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=32)
    s.add_field("scores", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=3)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("f", DataType.FLOAT)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("b", DataType.BOOL)
    if modern:
        s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("opt", DataType.INT32, nullable=True)
        s.add_field("note", DataType.VARCHAR, max_length=32, nullable=True)
        s.add_field("dflt", DataType.DOUBLE, default_value=1.5)
    ip = client.prepare_index_params()
    hnsw = {"M": 16, "efConstruction": 120}
    ip.add_index("vec", index_type="HNSW", metric_type="L2", params=hnsw)
    index_params = {"vec": hnsw}
    if modern:
        ip.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    else:
        ip.add_index("i32", index_type="STL_SORT")
        ip.add_index("title", index_type="Trie")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
    partitions = ["_default", "p1", "p2"]
    for p in partitions[1:]:
        client.create_partition(name, p)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    titles = _words(rng, n)
    rows = []
    for i in range(n):
        r: dict[str, Any] = {
            "id": int(i * 7 - 1000),
            "vec": vecs[i].tolist(),
            "title": f"{titles[i]}-{i}",
            "meta": {"i": i, "nested": {"list": [i, str(i), None, True], "f": i / 7}, "s": titles[i]},
            "tags": [int(x) for x in rng.integers(-(2**40), 2**40, int(rng.integers(0, 9)))],
            "words": _words(rng, int(rng.integers(0, 5))),
            "scores": [float(x) for x in rng.normal(size=int(rng.integers(0, 4)))],
            "i8": int(rng.integers(-128, 128)),
            "i16": int(rng.integers(-(2**15), 2**15)),
            "i32": int(rng.integers(-(2**31), 2**31)),
            "f": float(np.float32(rng.normal())),
            "d": float(rng.normal() * 1e6),
            "b": bool(i % 3 == 0),
        }
        if i % 4 == 0:
            r["color"] = ["red", "green"][i % 2]  # dynamic fields, only on some rows
        if i % 5 == 0:
            r["extra_obj"] = {"k": [1, 2, {"z": i}]}
        if modern:
            nnz = int(rng.integers(1, 6))
            idx = rng.choice(10_000, nnz, replace=False)
            r["sp"] = {int(k): float(np.float32(v)) for k, v in zip(idx, rng.random(nnz) + 0.01, strict=True)}
            r["opt"] = None if i % 3 == 0 else int(i)
            r["note"] = None if i % 2 else f"n{i}"
            if i % 2:
                r["dflt"] = float(i) / 2
        rows.append(r)
    for k, p in enumerate(partitions):
        part = rows[k::3]
        for start in range(0, len(part), 500):
            client.insert(name, part[start : start + 500], partition_name=p)
    client.flush(name)
    return Built(name, n, "vec", "L2", partitions, index_params)


def build_vector_only(client: Any, name: str, vtype: str, n: int = 400, seed: int = 3,
                      index: tuple[str, str, dict[str, Any]] | None = None, pk_varchar: bool = False,
                      auto_id: bool = False) -> Built:
    """A collection with one vector field of ``vtype`` (FLOAT_VECTOR, FLOAT16_VECTOR, BINARY_VECTOR, ...)."""
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(seed)
    dim = 64 if vtype == "BINARY_VECTOR" else 16
    s = MilvusClient.create_schema(auto_id=auto_id, enable_dynamic_field=False)
    if pk_varchar:
        s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=40, auto_id=auto_id)
    else:
        s.add_field("pk", DataType.INT64, is_primary=True, auto_id=auto_id)
    s.add_field("v", getattr(DataType, vtype), dim=dim)
    s.add_field("label", DataType.VARCHAR, max_length=20)
    index = index or {"FLOAT_VECTOR": ("FLAT", "L2", {}),
                      "FLOAT16_VECTOR": ("HNSW", "IP", {"M": 8, "efConstruction": 64}),
                      "BFLOAT16_VECTOR": ("HNSW", "L2", {"M": 8, "efConstruction": 64}),
                      "INT8_VECTOR": ("HNSW", "L2", {"M": 8, "efConstruction": 64}),
                      "BINARY_VECTOR": ("BIN_IVF_FLAT", "HAMMING", {"nlist": 8})}[vtype]
    ip = client.prepare_index_params()
    ip.add_index("v", index_type=index[0], metric_type=index[1], params=index[2])
    # a FLOAT16 collection is indexed and loaded only once its rows are in: the 2.3.5 server's query node panics on
    # inserts into a loaded one ("unsupported data type: Float16Vector") and takes the server down
    late = vtype == "FLOAT16_VECTOR"
    client.create_collection(name, schema=s, consistency_level="Strong", **({} if late else {"index_params": ip}))
    rows = []
    for i in range(n):
        if vtype == "FLOAT_VECTOR":
            v: Any = rng.normal(size=dim).astype(np.float32).tolist()
        elif vtype == "FLOAT16_VECTOR":
            v = rng.normal(size=dim).astype(np.float16).tobytes()
        elif vtype == "BFLOAT16_VECTOR":
            v = (rng.normal(size=dim).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
        elif vtype == "INT8_VECTOR":
            v = rng.integers(-128, 128, dim).astype(np.int8).tobytes()
        else:
            v = rng.integers(0, 256, dim // 8).astype(np.uint8).tobytes()
        r: dict[str, Any] = {"v": v, "label": f"l{i % 17}"}
        if not auto_id:
            r["pk"] = f"key-{i:05d}" if pk_varchar else i
        rows.append(r)
    for start in range(0, n, 500):
        client.insert(name, rows[start : start + 500])
    client.flush(name)
    if late:
        client.create_index(name, ip)
        client.load_collection(name)
    return Built(name, n, "v", index[1], ["_default"], {"v": index[2]})


#: GEOMETRY values (WKT as Milvus Lite keeps it: the text given) and TIMESTAMPTZ values (with offsets) build_geo_time
#: writes
WKT = ["POINT (1 2)", "point(1.0000000001 2e3)", "POINT (-73.985 40.748)", "POINT(0.1 0.30000000000000004)",
       "POLYGON ((0 0, 1 0, 1 1, 0 0))", "POLYGON ((30 10, 40 40, 20 40, 10 20, 30 10))", "POINT (1e300 -0)"]
TIMES = ["2024-03-04T05:06:07.123456+05:30", "1970-01-01T00:00:00Z", "2024-12-31T23:59:59.999999-08:00",
         "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2024-03-04 05:06:07.5+01:00", "1969-12-31T23:59:59Z"]


def build_geo_time(client: Any, name: str, n: int = 240, seed: int = 21) -> None:
    """Every kind of GEOMETRY / TIMESTAMPTZ field Lite holds: nullable, with a default, both, an INVERTED index on a
    TIMESTAMPTZ; plus a dense vector, other nullable and default fields, dynamic fields and two partitions."""
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("g_def", DataType.GEOMETRY, default_value="POINT (0 0)")
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("t_def", DataType.TIMESTAMPTZ, nullable=True, default_value="2025-01-01T00:00:00.000001+08:00")
    s.add_field("label", DataType.VARCHAR, max_length=16, nullable=True, default_value="none")
    s.add_field("n", DataType.INT32, nullable=True)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    ip.add_index("t", index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip)
    client.create_partition(name, "p1")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        r: dict[str, Any] = {"id": i, "vec": rng.normal(size=8).astype(np.float32).tolist(),
                             "g": None if i % 5 == 0 else WKT[i % len(WKT)],
                             "t": None if i % 6 == 0 else TIMES[i % len(TIMES)]}
        if i % 3:  # else: left out, the server fills in the default
            r["g_def"] = WKT[(i + 1) % len(WKT)]
            r["t_def"] = None if i % 4 == 0 else TIMES[(i + 2) % len(TIMES)]
            r["label"] = None if i % 7 == 0 else f"l{i}"
        r["n"] = None if i % 2 else i
        if i % 9 == 0:
            r["extra"] = {"i": i}
        rows.append(r)
    client.insert(name, [r for r in rows if r["id"] % 2 == 0])
    client.insert(name, [r for r in rows if r["id"] % 2], partition_name="p1")
    client.flush(name)


# -- reading back ----------------------------------------------------------------------------------


#: values _norm returns as they are (float(x) of a float is the same value)
_PLAIN = frozenset((float, int, str, bool, type(None)))


def _norm(v: Any) -> Any:
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], (bytes, bytearray)):
        return bytes(v[0])
    if isinstance(v, np.ndarray):
        return v.tobytes()
    if isinstance(v, float):
        return float(v)
    if isinstance(v, dict):
        return {str(k): _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        if all(type(x) in _PLAIN for x in v):  # a float vector, an ARRAY: the same list, without a call per element
            return list(v)
        return [_norm(x) for x in v]
    return v


def _pages(client: Any, name: str, partition: str | None, keys_only: bool) -> Iterator[tuple[str, list[Any]]]:
    """(primary key field, page) for every page of a Strong query iterator over ``name`` (its ``partition``), every
    field or (``keys_only``) the primary key alone; loads the collection if it is not loaded."""
    desc = client.describe_collection(name)
    pk = next(f["name"] for f in desc["fields"] if f.get("is_primary"))
    kwargs: dict[str, Any] = {"batch_size": 5000, "output_fields": [pk] if keys_only else ["*"],
                              "consistency_level": "Strong"}
    if partition:
        kwargs["partition_names"] = [partition]
    state = client.get_load_state(name)
    if "NotLoad" in str(state.get("state")):
        client.load_collection(name)
    it = client.query_iterator(name, **kwargs)
    try:
        while page := it.next():
            yield pk, page
    finally:
        it.close()


def read_rows(client: Any, name: str, partition: str | None = None) -> dict[Any, dict[str, Any]]:
    """Every row, normalised for comparison, keyed by primary key."""
    return {r[pk]: {k: _norm(v) for k, v in r.items()} for pk, page in _pages(client, name, partition, keys_only=False)
            for r in page}


def read_keys(client: Any, name: str, partition: str | None = None) -> set[Any]:
    """The primary keys of every row (of ``partition``): the keys of read_rows, read without the other fields."""
    return {r[pk] for pk, page in _pages(client, name, partition, keys_only=True) for r in page}


def index_summary(client: Any, name: str) -> dict[str, dict[str, Any]]:
    """Per indexed field: type, metric and every reported build parameter (no state counters)."""
    state_keys = {"indexed_rows", "pending_index_rows", "state", "total_rows", "index_name",
                  "index_state_fail_reason"}
    out = {}
    for index_name in client.list_indexes(name):
        d = client.describe_index(name, index_name)
        out[d["field_name"]] = {k: str(v) for k, v in d.items() if k not in state_keys}
    return out


def search_ids(client: Any, name: str, field: str, queries: list[Any], metric: str, k: int = 10,
               params: dict[str, Any] | None = None) -> list[list[Any]]:
    res = client.search(name, data=queries, anns_field=field, limit=k, consistency_level="Strong",
                        search_params={"metric_type": metric, "params": params or {}})
    return [[hit.id for hit in hits] for hits in res]


#: Milvus Lite databases build_in_own_process made, by (collection, rows): each is built once a session and copied
_LITE_TEMPLATES: dict[tuple[str, int], Path] = {}


def build_in_own_process(db: Any, name: str, n: int) -> None:
    """build_vector_only(FLOAT_VECTOR) into the Milvus Lite file ``db``, from another process: Milvus Lite lets
    one process at a time open a file, and this one's in-process server keeps its lock after the client closes.

    The same (name, n) always gives the same rows (a fixed seed), so the first call of a session builds them into a
    template and each call copies it (a Lite database is a folder; a copy is what a fresh process opening the
    original sees, collection not loaded): 3,000 rows cost 3.8 s to build, 0.01 s to copy."""
    import shutil

    db = Path(db)
    if db.exists():  # a database with other collections: build into it
        _build_lite(db, name, n)
        return
    template = _LITE_TEMPLATES.get((name, n))
    if template is None or not template.exists():
        root = Path(tempfile.mkdtemp(prefix="vecbackup-lite-template-"))
        atexit.register(shutil.rmtree, root, True)
        template = root / "src.db"
        _build_lite(template, name, n)
        _LITE_TEMPLATES[(name, n)] = template
    shutil.copytree(template, db, symlinks=True)


def _build_lite(db: Path, name: str, n: int) -> None:
    import subprocess
    import sys

    code = ("from pymilvus import MilvusClient; from tests.datasets import build_vector_only; "
            f"build_vector_only(MilvusClient({str(db)!r}), {name!r}, 'FLOAT_VECTOR', n={n})")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


#: the fields of build_common, in schema order (every type Milvus Lite, a Milvus 2.3 server and Qdrant all hold)
COMMON_SCALARS = ("title", "meta", "words", "tags", "scores", "i8", "i16", "i32", "f", "d", "b")
COMMON_PARTITIONS = ("_default", "p1", "p2")


def build_common(client: Any, name: str, n: int = 20_000, dim: int = 128, seed: int = 11,
                 index: tuple[str, str, dict[str, Any]] = ("HNSW", "COSINE", {"M": 24, "efConstruction": 180}),
                 ) -> Built:
    """A collection with every type both Milvus Lite and a Milvus 2.3 server hold: INT64 key, a FLOAT_VECTOR of
    ``dim`` dimensions drawn from a normal distribution (hard data: HNSW is really approximate on it), VARCHAR,
    JSON, ARRAY of VARCHAR / INT64 / DOUBLE, INT8/16/32, FLOAT, DOUBLE, BOOL, dynamic fields on some rows, and
    rows in three partitions (row i in COMMON_PARTITIONS[i % 3]). Flushed, and indexed before it returns."""
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(seed)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=64)
    s.add_field("meta", DataType.JSON)
    s.add_field("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=24)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    s.add_field("scores", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=3)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("f", DataType.FLOAT)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("b", DataType.BOOL)
    ip = client.prepare_index_params()
    ip.add_index("embedding", index_type=index[0], metric_type=index[1], params=index[2])
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
    for p in COMMON_PARTITIONS[1:]:
        client.create_partition(name, p)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    words = _words(rng, 4 * n)
    i8, i16, i32 = rng.integers(-128, 128, n), rng.integers(-(2**15), 2**15, n), rng.integers(-(2**31), 2**31, n)
    fs, ds = rng.normal(size=n).astype(np.float32), rng.normal(size=n) * 1e6
    rows: list[list[dict[str, Any]]] = [[] for _ in COMMON_PARTITIONS]
    for i in range(n):
        r: dict[str, Any] = {
            "id": i * 3 + 1, "embedding": vecs[i].tolist(), "title": f"{words[i]}-{i}",
            "meta": {"i": i, "nested": {"list": [i, str(i), None, True]}, "w": words[i]},
            "words": words[4 * i + 1: 4 * i + 1 + i % 4], "tags": list(range(i % 9)),
            "scores": [i / 3, -i / 7][: i % 3], "i8": int(i8[i]), "i16": int(i16[i]), "i32": int(i32[i]),
            "f": float(fs[i]), "d": float(ds[i]), "b": bool(i % 3 == 0),
        }
        if i % 4 == 0:
            r["color"] = ["red", "green"][i % 8 // 4]
        if i % 10 == 3:
            r["extra_obj"] = {"k": [1, 2, {"z": i}]}
        rows[i % 3].append(r)
    for p, part in zip(COMMON_PARTITIONS, rows, strict=True):
        for start in range(0, len(part), 2000):
            client.insert(name, part[start: start + 2000], partition_name=p)
    client.flush(name)
    wait_indexed(client, name)
    return Built(name, n, "embedding", index[1], list(COMMON_PARTITIONS), {"embedding": index[2]})


def wait_indexed(client: Any, name: str, timeout: float = 300.0) -> None:
    """Until every index of ``name`` covers every row (a fair source for a drill's recall comparison)."""
    import time

    deadline = time.monotonic() + timeout
    for index_name in client.list_indexes(name):
        while True:
            d = client.describe_index(name, index_name)
            if d.get("state") == "Finished" and int(d.get("indexed_rows") or 0) >= int(d.get("total_rows") or 0) \
                    and not d.get("pending_index_rows"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"index {index_name} of {name} not built after {timeout}s: {d}")
            time.sleep(0.5)
