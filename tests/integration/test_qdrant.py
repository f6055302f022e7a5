"""Back up and restore Qdrant collections through the CLI against a real engine.

The ``qdrant`` fixture always yields qdrant-client's embedded local mode (a folder per test), and also a
real server when QDRANT_URL is set (QDRANT_API_KEY too if it needs one), so the same tests run on both:

    QDRANT_URL=http://localhost:6333 QDRANT_API_KEY=... .venv/bin/pytest tests/integration/test_qdrant.py

Local mode allows one QdrantClient per folder per process (a second one raises "Storage folder ... is already
accessed by another instance"), and the ``cli`` fixture runs vecbackup in this process, so a test's own
client is closed before each CLI call (``Qdrant.run``) and reopened when next used.

What local mode keeps and drops is in docs/FORMAT.md ("Qdrant collections"); assertions that need a server
are guarded by ``q.local``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models as m

from tests.unit.test_qdrant_config import contains, drop_none

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")

QDRANT_KINDS = ["local"] + (["remote"] if os.environ.get("QDRANT_URL") else [])


@dataclass
class Qdrant:
    """A Qdrant engine under test: its URL for the CLI and a qdrant-client for setup and checks."""

    kind: str  # "local" | "remote"
    url: str
    path: Path | None = None
    server_url: str = ""
    api_key: str | None = None
    names: list[str] = field(default_factory=list)
    _client: Any = None

    @property
    def local(self) -> bool:
        return self.kind == "local"

    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            if self.local:
                self._client = QdrantClient(path=str(self.path))
            else:
                self._client = QdrantClient(url=self.server_url, api_key=self.api_key, timeout=60)
        return self._client

    def release(self) -> None:
        """Close the test's local-mode client so the CLI (same process) can open the folder."""
        if self.local and self._client is not None:
            self._client.close()
            self._client = None

    def run(self, cli: Any, *args: Any) -> Any:
        self.release()
        return cli(*args)

    def new_name(self, prefix: str = "c") -> str:
        name = f"vbt_{prefix}_{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        return name

    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}


@pytest.fixture(params=QDRANT_KINDS)
def qdrant(request: pytest.FixtureRequest, memory_tmp_path: Path) -> Iterator[Qdrant]:
    if request.param == "local":
        q = Qdrant("local", f"qdrant-local://{memory_tmp_path / 'qdrant'}", path=memory_tmp_path / "qdrant")
    else:
        server = os.environ["QDRANT_URL"].rstrip("/")
        scheme, _, rest = server.partition("://")
        q = Qdrant("remote", ("qdrant+https://" if scheme == "https" else "qdrant://") + rest, server_url=server,
                   api_key=os.environ.get("QDRANT_API_KEY") or None)
    yield q
    if not q.local and q.names:  # leave a shared server as it was
        for name in q.collections():
            if any(name.startswith(n) for n in q.names):
                q.client.delete_collection(name)
    if q._client is not None:
        q._client.close()


# -- data -----------------------------------------------------------------------------------------

DENSE_DIM, HALF_DIM, COS_DIM, MULTI_DIM = 8, 4, 6, 3


@dataclass
class Built:
    name: str
    ids: list[int | str]


def _payload(rng: np.random.Generator, i: int) -> dict[str, Any]:
    words = ["alpha", "βeta", "ünïcode", "emoji🙂", "quote\"", "", "tab\t"]
    p: dict[str, Any] = {
        "tenant": f"t{i % 3}",
        "n": int(rng.integers(-(2**62), 2**62)),
        "body": " ".join(words[int(k)] for k in rng.integers(0, len(words), 5)),
        "meta": {"color": ["red", "green", None][i % 3], "depth": {"x": [1, 2.5, {"y": None}], "ok": bool(i % 2)},
                 "tags": [words[int(k)] for k in rng.integers(0, len(words), i % 4)]},
        "score": float(rng.normal()),
    }
    if i % 5 == 0:
        p = {}  # some points have no payload
    return p


def build_rich(client: QdrantClient, name: str, n: int = 450, seed: int = 3) -> Built:
    """Named dense vectors (Dot with its own HNSW, float16 Euclid, Cosine on disk), a max_sim multivector,
    a sparse vector with the idf modifier, int and UUID ids, nested payloads, payload indexes, settings."""
    rng = np.random.default_rng(seed)
    client.create_collection(
        name,
        vectors_config={
            "dense": m.VectorParams(size=DENSE_DIM, distance=m.Distance.DOT,
                                    hnsw_config=m.HnswConfigDiff(m=8, ef_construct=64)),
            "half": m.VectorParams(size=HALF_DIM, distance=m.Distance.EUCLID, datatype=m.Datatype.FLOAT16),
            "cos": m.VectorParams(size=COS_DIM, distance=m.Distance.COSINE, on_disk=True),
            "multi": m.VectorParams(size=MULTI_DIM, distance=m.Distance.DOT,
                                    multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)),
        },
        sparse_vectors_config={"sparse": m.SparseVectorParams(
            modifier=m.Modifier.IDF, index=m.SparseIndexParams(full_scan_threshold=1000))},
        hnsw_config=m.HnswConfigDiff(m=12, ef_construct=90),
        optimizers_config=m.OptimizersConfigDiff(indexing_threshold=15000, default_segment_number=2),
        wal_config=m.WalConfigDiff(wal_capacity_mb=48),
        quantization_config=m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8,
                                                                                   quantile=0.98)),
        on_disk_payload=True,
        shard_number=2,
    )
    client.create_payload_index(name, "tenant", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True))
    client.create_payload_index(name, "n", m.IntegerIndexParams(type=m.IntegerIndexType.INTEGER, lookup=False,
                                                                 range=True))
    client.create_payload_index(name, "body", m.TextIndexParams(type=m.TextIndexType.TEXT,
                                                                 tokenizer=m.TokenizerType.WORD, min_token_len=2,
                                                                 lowercase=True))
    client.create_payload_index(name, "meta.color", m.PayloadSchemaType.KEYWORD)
    ids: list[int | str] = []
    points = []
    for i in range(n):
        pid: int | str = i * 7 if i % 2 == 0 else str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i))
        ids.append(pid)
        vec: dict[str, Any] = {"dense": rng.normal(size=DENSE_DIM).astype(np.float32).tolist(),
                               "cos": rng.normal(size=COS_DIM).tolist()}
        if i % 3:
            vec["half"] = rng.normal(size=HALF_DIM).astype(np.float16).astype(np.float32).tolist()
        if i % 4:
            vec["multi"] = rng.normal(size=(1 + i % 3, MULTI_DIM)).astype(np.float32).tolist()
        if i % 6:
            idx = sorted({int(k) for k in rng.integers(0, 5000, 1 + i % 7)})
            vec["sparse"] = m.SparseVector(indices=idx, values=rng.random(len(idx)).astype(np.float32).tolist())
        points.append(m.PointStruct(id=pid, vector=vec, payload=_payload(rng, i)))
    for k in range(0, n, 128):
        client.upsert(name, points[k:k + 128], wait=True)
    return Built(name, ids)


def read_points(client: QdrantClient, name: str) -> dict[Any, tuple[dict[str, Any], dict[str, Any]]]:
    """id -> (payload, vectors) of every point, vectors as plain lists / (indices, values) pairs."""
    out: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
    offset = None
    while True:
        records, offset = client.scroll(name, limit=100, offset=offset, with_payload=True, with_vectors=True)
        for r in records:
            raw: dict[str, Any] = r.vector if isinstance(r.vector, dict) else {"": r.vector}
            out[r.id] = (r.payload or {}, {k: (tuple(v.indices), tuple(v.values)) if isinstance(v, m.SparseVector)
                                           else v for k, v in raw.items()})
        if offset is None:
            return out


def assert_same_points(client: QdrantClient, src: str, dst: str, cosine: tuple[str, ...] = ("cos",)) -> None:
    a, b = read_points(client, src), read_points(client, dst)
    assert len(a) == len(b)
    assert a.keys() == b.keys()
    for pid, (payload, vec) in a.items():
        payload2, vec2 = b[pid]
        assert payload2 == payload, pid
        assert vec2.keys() == vec.keys(), pid
        for k, v in vec.items():
            if k in cosine:
                # Qdrant normalizes Cosine vectors on every insert; re-normalizing a unit float32 vector may
                # move its last bit
                np.testing.assert_allclose(vec2[k], v, rtol=0, atol=1e-6, err_msg=f"{pid} {k}")
            else:
                assert vec2[k] == v, (pid, k)


def comparable_config(client: QdrantClient, name: str) -> dict[str, Any]:
    info = client.get_collection(name)
    schema = {k: (v.data_type, v.params) for k, v in info.payload_schema.items()}
    config = info.config.model_dump(mode="json", exclude_none=True)
    if config.get("metadata") == {}:  # what clearing a restore's lease leaves where there was none (FORMAT.md)
        del config["metadata"]
    return {"config": config, "payload_schema": schema}


def _backup(q: Qdrant, cli: Any, store: Path, name: str, *extra: str) -> dict[str, Any]:
    r = q.run(cli, "backup", q.url, store, "-c", name, "--batch-size", "97", "--json", *extra)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] and len(doc["backups"]) == 1
    backup: dict[str, Any] = doc["backups"][0]
    return backup


def _restore(q: Qdrant, cli: Any, store: Path, backup_id: str, *extra: str) -> dict[str, Any]:
    r = q.run(cli, "restore", store, q.url, "--backup", backup_id, "--json", *extra)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = r.json()
    return doc




def _manifest(store: Path, name: str) -> dict[str, Any]:
    files = sorted((store / "manifests" / name).glob("*.json"))
    doc: dict[str, Any] = orjson.loads(files[-1].read_bytes())
    return doc


# -- round trips ----------------------------------------------------------------------------------


def test_rich_collection_round_trip(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    name = q.new_name("rich")
    built = build_rich(q.client, name)
    q.client.update_collection_aliases(change_aliases_operations=[
        m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=name, alias_name=f"{name}_alias"))])
    backup = _backup(q, cli, store_dir, name)
    assert backup["rows"] == len(built.ids)
    assert backup["objects"] == math.ceil(len(built.ids) / 97)

    doc = _manifest(store_dir, name)
    assert doc["source"]["engine"] == ("qdrant-local" if q.local else "qdrant")
    coll = doc["collection"]
    assert [f["name"] for f in coll["fields"]] == ["id", "dense", "half", "cos", "multi", "sparse"]
    assert coll["enable_dynamic_field"] and coll["aliases"] == [f"{name}_alias"]
    assert coll["extra"]["qdrant"]["params"]["vectors"]["half"]["datatype"] == "float16"
    assert coll["extra"]["qdrant"]["params"]["sparse_vectors"]["sparse"]["modifier"] == "idf"
    if not q.local:
        assert {i["field_name"] for i in coll["indexes"]} >= {"tenant", "n", "body", "meta.color"}
        assert coll["extra"]["qdrant"]["params"]["shard_number"] == 2

    copy = q.new_name("copy")
    restored = _restore(q, cli, store_dir, backup["backup_id"], "--as", copy)
    assert restored["rows"] == len(built.ids) and restored["collection"] == copy
    assert_same_points(q.client, name, copy)
    ids = set(read_points(q.client, copy))
    assert any(isinstance(i, int) for i in ids) and any(isinstance(i, str) for i in ids)
    assert comparable_config(q.client, copy) == comparable_config(q.client, name)
    assert copy not in q.aliases().values()  # aliases only come back under the original name
    assert not [c for c in q.collections() if "vbrestore" in c]


def test_sharded_backup_round_trip(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    """Three shards (integer and UUID ids spread by the shard rule), the last one commits: one backup, restored
    identical."""
    q = qdrant
    name = q.new_name("shard")
    built = build_rich(q.client, name)
    rows = []
    for i in range(3):
        r = q.run(cli, "backup", q.url, store_dir, "-c", name, "--shard", f"{i}/3", "--run", "q1", "--batch-size",
                  "40", "--json", "--commit")
        assert r.code == 0, r.stderr
        rows.append(r.json()["backups"][0]["rows"])
    assert sum(rows) == len(built.ids) and all(rows)
    done = r.json()["backups"][0]
    assert done["commit"]["committed"] and done["backup_id"] == done["commit"]["backup_id"]
    copy = q.new_name("copy")
    restored = _restore(q, cli, store_dir, done["backup_id"], "--as", copy)
    assert restored["rows"] == len(built.ids)
    assert_same_points(q.client, name, copy)


def test_restore_under_same_name_recreates_aliases(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    name = q.new_name("alias")
    build_rich(q.client, name, n=60)
    q.client.update_collection_aliases(change_aliases_operations=[
        m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=name, alias_name=f"{name}_a"))])
    backup = _backup(q, cli, store_dir, name)
    before = read_points(q.client, name)
    q.client.delete_collection(name)
    assert f"{name}_a" not in q.aliases()
    _restore(q, cli, store_dir, backup["backup_id"])
    assert q.aliases()[f"{name}_a"] == name
    assert name in q.collections()  # no rename needed: restored straight into the name
    after = read_points(q.client, name)
    assert after.keys() == before.keys()
    assert q.client.count(f"{name}_a", exact=True).count == 60


def test_drop_existing_points_the_name_at_the_new_collection(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    src = q.new_name("src")
    build_rich(q.client, src, n=120)
    backup = _backup(q, cli, store_dir, src)
    target = q.new_name("tgt")
    build_rich(q.client, target, n=10, seed=9)
    q.client.update_collection_aliases(change_aliases_operations=[
        m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=target, alias_name=f"{target}_al"))])

    r = q.run(cli, "restore", store_dir, q.url, "--backup", backup["backup_id"], "--as", target)
    assert r.code == 5 and "--drop-existing" in r.stderr
    assert q.client.count(target, exact=True).count == 10

    doc = _restore(q, cli, store_dir, backup["backup_id"], "--as", target, "--drop-existing")
    aliases = q.aliases()
    staging = aliases[target]
    assert staging.startswith(f"{target}_vbrestore_") and aliases[f"{target}_al"] == staging
    assert target not in q.collections()  # the old collection is gone; the name is an alias now
    assert any("alias" in n and staging in n for n in doc["notes"])
    assert_same_points(q.client, src, target)

    # again: now the target name is an alias, switched atomically, and the previous copy is deleted
    _restore(q, cli, store_dir, backup["backup_id"], "--as", target, "--drop-existing")
    aliases = q.aliases()
    assert aliases[target] != staging and aliases[f"{target}_al"] == aliases[target]
    assert staging not in q.collections()
    assert [c for c in q.collections() if c.startswith(target)] == [aliases[target]]
    assert_same_points(q.client, src, target)
    r = q.run(cli, "collections", q.url, "--json")
    assert r.code == 0 and {"name": aliases[target], "rows": 120} in r.json()["collections"]


def test_failed_restore_leaves_nothing_behind(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    name = q.new_name("fail")
    build_rich(q.client, name, n=300)
    backup = _backup(q, cli, store_dir, name)
    files = sorted((store_dir / "data").rglob("*.vbc"))
    # a damaged object: the restore fails part-way; the new collection it was filling is deleted
    good = files[-1].read_bytes()
    files[-1].write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    target = q.new_name("t")
    r = q.run(cli, "restore", store_dir, q.url, "--backup", backup["backup_id"], "--as", target)
    assert r.code == 7, r.stderr
    r.error_line()
    assert target not in q.collections() and target not in q.aliases()
    # --drop-existing over an existing collection: it stays untouched, the staging copy is deleted
    r = q.run(cli, "restore", store_dir, q.url, "--backup", backup["backup_id"], "--as", name, "--drop-existing")
    assert r.code == 7, r.stderr
    assert q.client.count(name, exact=True).count == 300
    assert not [c for c in q.collections() if "vbrestore" in c]
    files[-1].write_bytes(good)


def test_unnamed_vector_and_empty_collections(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    plain = q.new_name("plain")
    q.client.create_collection(plain, vectors_config=m.VectorParams(size=5, distance=m.Distance.EUCLID),
                               sparse_vectors_config={"text": m.SparseVectorParams(modifier=m.Modifier.IDF)})
    rng = np.random.default_rng(1)
    q.client.upsert(plain, [m.PointStruct(
        id=i if i % 2 else str(uuid.UUID(int=i + 1)),
        vector={"": rng.normal(size=5).astype(np.float32).tolist(),
                **({"text": m.SparseVector(indices=[i, i + 10], values=[1.0, 0.5])} if i % 3 else {})},
        payload={"i": i}) for i in range(40)])
    only = q.new_name("only")
    q.client.create_collection(only, vectors_config=m.VectorParams(size=3, distance=m.Distance.MANHATTAN))
    q.client.upsert(only, [m.PointStruct(id=i, vector=[float(i), 0.5, -1.0]) for i in range(10)])
    sparse_only = q.new_name("sparse")
    q.client.create_collection(sparse_only, vectors_config={}, sparse_vectors_config={"s": m.SparseVectorParams()})
    q.client.upsert(sparse_only, [m.PointStruct(id=i, vector={"s": m.SparseVector(indices=[i], values=[0.25])},
                                                payload={"k": [i]}) for i in range(1, 12)])
    empty = q.new_name("empty")
    q.client.create_collection(empty, vectors_config={"v": m.VectorParams(size=2, distance=m.Distance.DOT)})
    for name, rows in ((plain, 40), (only, 10), (sparse_only, 11), (empty, 0)):
        backup = _backup(q, cli, store_dir, name)
        assert backup["rows"] == rows
        copy = q.new_name("copy")
        assert _restore(q, cli, store_dir, backup["backup_id"], "--as", copy)["rows"] == rows
        assert_same_points(q.client, name, copy)
        assert comparable_config(q.client, copy) == comparable_config(q.client, name)
    coll = _manifest(store_dir, plain)["collection"]
    assert coll["fields"][1] == {"name": "vector", "type": "FLOAT_VECTOR", "dim": 5, "nullable": True,
                                 "extra": {"qdrant_name": ""}}


def test_topology_overrides(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    q = qdrant
    name = q.new_name("topo")
    build_rich(q.client, name, n=50)
    backup = _backup(q, cli, store_dir, name)
    copy = q.new_name("topo_copy")
    doc = _restore(q, cli, store_dir, backup["backup_id"], "--as", copy, "--shards", "3", "--replication-factor", "1")
    assert any("--shards" in n for n in doc["notes"])
    assert q.client.count(copy, exact=True).count == 50
    if not q.local:
        params = q.client.get_collection(copy).config.params
        assert (params.shard_number, params.replication_factor) == (3, 1)
    r = q.run(cli, "restore", store_dir, "milvus-lite:///tmp/x.db", "--replication-factor", "2")
    assert r.code == 2 and "Qdrant targets only" in r.error_line()
    r = q.run(cli, "restore", store_dir, q.url, "--as", "x", "--shards", "0")
    assert r.code == 2


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_collection(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    qdrant.client.get_collections()  # the database exists (local mode: its folder); the collection does not
    r = qdrant.run(cli, "backup", qdrant.url, store_dir, "-c", "vbt_nope_nope")
    assert r.code == 4
    assert "'vbt_nope_nope' not found" in r.error_line()
    assert not (store_dir / "manifests").exists()


def test_unreachable_server_and_no_key_in_output(cli: Any, store_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "qdrant-S3CRET-api-key"
    for url in ("qdrant://127.0.0.1:1", "qdrant+grpc://127.0.0.1:1?rest_port=1"):
        r = cli("backup", url, store_dir, "-c", "x", "--api-key", secret, "--json")
        assert r.code == 6, (url, r.stderr)
        assert f"cannot connect to Qdrant at {url.split('?')[0]}" in r.error_line()
        assert secret not in r.stdout + r.stderr
        assert r.json()["exit_code"] == 6
    monkeypatch.setenv("QDRANT_API_KEY", secret)
    r = cli("collections", "qdrant+https://127.0.0.1:1", "--json")
    assert r.code == 6 and secret not in r.stdout + r.stderr


def test_api_key_never_in_output_or_manifest(cli: Any, qdrant: Qdrant, store_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    q = qdrant
    name = q.new_name("key")
    build_rich(q.client, name, n=20)
    secret = q.api_key or "local-mode-ignores-this-S3CRET"
    monkeypatch.setenv("VECBACKUP_QDRANT_API_KEY", secret)
    r = q.run(cli, "backup", q.url, store_dir, "-c", name, "--json")
    assert r.code == 0, r.stderr
    r2 = q.run(cli, "restore", store_dir, q.url, "--as", q.new_name("k2"), "--api-key", secret, "--json")
    assert r2.code == 0, r2.stderr
    stored = b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert secret not in r.stdout + r.stderr + r2.stdout + r2.stderr


def test_local_folder_in_use(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    if not qdrant.local:
        pytest.skip("local mode only")
    qdrant.client.get_collections()  # the test's client holds the folder
    r = cli("backup", qdrant.url, store_dir, "-c", "x")
    assert r.code == 6
    assert "in use by another client" in r.error_line()


def test_milvus_backup_with_negative_keys_cannot_go_into_qdrant(cli: Any, lite: Any, qdrant: Qdrant,
                                                                store_dir: Path) -> None:
    """Milvus backups restore into Qdrant (tests/integration/test_cross_engine.py), but not a negative INT64
    key: the restore stops, naming it, and leaves nothing behind."""
    from tests.datasets import build_vector_only

    name = lite.new_name("mv")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=20)
    lite.client.insert(name, [{"pk": -1, "v": [0.0] * 16, "label": "negative"}])
    r = cli("backup", lite.url, store_dir, "-c", name, "--json")
    assert r.code == 0, r.stderr
    r = qdrant.run(cli, "restore", store_dir, qdrant.url, "--as", qdrant.new_name("x"))
    assert r.code == 9
    assert "field 'pk' (INT64): primary key -1 is negative" in r.error_line()
    assert not [c for c in qdrant.collections() if c.startswith("vbt_x_")]


# -- a server's recorded configuration, restored through the engine -------------------------------


def test_recorded_server_config_is_recreated(qdrant: Qdrant) -> None:
    """The multi-node configuration of tests/qdrant_fixtures/cluster_named_vectors.json, with points, goes
    through check/create/write/finish of the real client: a server recreates it (topology aside, for a
    single node); local mode accepts every setting and the restore says which ones it does not keep."""
    from vecbackup.engines.base import RestorePlan
    from vecbackup.engines.qdrant import QdrantEngine
    from vecbackup.engines.qdrant.model import records_to_chunk, spec_from_collection_info
    from vecbackup.urls import parse_qdrant_url

    q = qdrant
    raw = orjson.loads((Path(__file__).parents[1] / "qdrant_fixtures" / "cluster_named_vectors.json").read_bytes())
    spec = spec_from_collection_info("recorded", m.CollectionInfo.model_validate(raw["result"])).spec
    rng = np.random.default_rng(5)
    records = []
    for i in range(30):
        vec: dict[str, Any] = {
            "text": rng.normal(size=768).tolist(),
            "image": rng.normal(size=512).astype(np.float16).astype(np.float32).tolist(),
            "code": rng.integers(0, 256, 16).astype(np.float32).tolist(),
            "geo": rng.normal(size=8).astype(np.float32).tolist(),
            "bm25": m.SparseVector(indices=[i, 100 + i], values=[1.0, 2.0]),
        }
        if i % 2:
            vec["colbert"] = rng.normal(size=(2, 128)).tolist()
            vec["splade"] = m.SparseVector(indices=[7], values=[0.5])
        records.append(m.Record(id=i if i % 3 else str(uuid.UUID(int=i + 1)), vector=vec,
                                payload={"tenant_id": f"t{i % 2}", "year": 2000 + i, "body": "hello world"}))
    chunk = records_to_chunk(spec, "", records)
    name = q.new_name("recorded")
    q.release()
    engine = QdrantEngine(parse_qdrant_url(q.url, api_key=q.api_key))
    try:
        topology = {} if q.local else {"shards": 1, "replication_factor": 1}  # a single-node test server
        plan = RestorePlan(target=name, staging=name, replace=False, keep_ids=True, **topology)
        notes = engine.check(spec, plan)
        notes += engine.create(spec, plan)
        assert engine.write(spec, plan, chunk) == 30
        notes += engine.finish(spec, plan)
        assert engine.count(name) == 30
        back = list(engine.read(dataclasses.replace(spec, name=name), "", 7))
    finally:
        engine.close()
    assert [c.num_rows for c in back] == [7, 7, 7, 7, 2]
    assert {pid for c in back for pid in c.columns["id"].values} == {str(r.id) for r in records}
    by_id = {str(r.id): r for r in records}
    for c in back:
        for row, pid in enumerate(c.columns["id"].values):
            src = by_id[pid]
            sv: Any = src.vector
            assert c.columns["$meta"].values[row] == src.payload
            for fname in ("image", "code", "geo"):
                assert c.columns[fname].values[row].tolist() == sv[fname], (pid, fname)
            assert c.columns["bm25"].values[row] == dict(zip(sv["bm25"].indices, sv["bm25"].values, strict=True))
    if q.local:
        assert any("does not keep these recorded settings: quantization_config, strict_mode_config" in n
                   and n.endswith("on_disk_payload, payload indexes") for n in notes), notes
    else:
        info = q.client.get_collection(name)
        expected = dict(drop_none(raw["result"]["config"]))
        expected["params"] = {**expected["params"], "shard_number": 1, "replication_factor": 1,
                              "write_consistency_factor": 1}
        assert contains(info.config.model_dump(mode="json", exclude_none=True), expected)
        assert {k: v.params.model_dump(mode="json", exclude_none=True) if v.params else None
                for k, v in info.payload_schema.items()} == {
            k: v.get("params") for k, v in raw["result"]["payload_schema"].items()}



def test_incremental_backup_uploads_changed_points_only(cli: Any, qdrant: Qdrant, store_dir: Path) -> None:
    """Points changed, deleted and added over the id range (integer and UUID ids): the next backup uploads those
    points, reuses the rest from the first backup, and each backup restores to the collection at its time."""
    q = qdrant
    name = q.new_name("inc")
    built = build_rich(q.client, name)
    before = read_points(q.client, name)
    first = _backup(q, cli, store_dir, name)
    changed, gone = built.ids[5::60], built.ids[31::60]
    q.client.set_payload(name, {"n": -1, "tenant": "changed"}, points=list(changed), wait=True)
    q.client.delete(name, points_selector=m.PointIdsList(points=list(gone)), wait=True)
    q.client.upsert(name, [m.PointStruct(id=10_001 + k, vector={"dense": [0.5] * DENSE_DIM, "cos": [1.0] * COS_DIM},
                                         payload={"n": k}) for k in range(4)], wait=True)
    second = _backup(q, cli, store_dir, name)
    n_now = len(built.ids) - len(gone) + 4
    assert second["base"] == first["backup_id"] and second["rows"] == n_now
    assert second["rows_reused"] == len(built.ids) - len(changed) - len(gone)
    assert second["bytes_uploaded"] < first["bytes_uploaded"] / 5
    copy = q.new_name("copy")
    assert _restore(q, cli, store_dir, second["backup_id"], "--as", copy)["rows"] == n_now
    assert_same_points(q.client, name, copy)
    old = q.new_name("old")
    assert _restore(q, cli, store_dir, first["backup_id"], "--as", old)["rows"] == len(built.ids)
    restored = read_points(q.client, old)
    assert restored.keys() == before.keys()
    assert {k: p for k, (p, _) in restored.items()} == {k: p for k, (p, _) in before.items()}
