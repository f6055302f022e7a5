"""Session fixtures of the integration tests that need big collections: built and backed up once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import COMMON_PARTITIONS, build_common, index_summary, read_keys, read_rows
from tests.integration.common import STANDALONE_URL, N, Side, Source, cli_json


@pytest.fixture(scope="session")
def matrix_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix") / "store"


@pytest.fixture(scope="session")
def sides(tmp_path_factory: pytest.TempPathFactory, standalone: Any) -> Iterator[dict[str, Side]]:
    """Milvus Lite (one file for the session: the source and every Lite target) and the standalone server."""
    from pymilvus import MilvusClient

    path = tmp_path_factory.mktemp("matrix-lite") / "lite.db"
    lite, server = MilvusClient(str(path)), MilvusClient(uri=standalone.uri)
    yield {"lite": Side("lite", f"milvus-lite://{path}", lite),
           "standalone": Side("standalone", STANDALONE_URL, server)}
    lite.close()
    server.close()


@pytest.fixture(scope="session")
def sources(sides: dict[str, Side], matrix_store: Path) -> dict[str, Source]:
    """tests.datasets.build_common (20,000 rows, 128-d, HNSW COSINE M=24 efConstruction=180) on each engine,
    indexed, backed up to matrix_store.

    The two engines build at once, each from its own thread and client (the server's flush, index build and load
    waits overlap Milvus Lite's work in this process); each is backed up and read back in this thread as soon as it
    is built (the CLI runs in this process and redirects its stdout, so one at a time)."""

    def build(kind: str) -> str:
        side, name = sides[kind], f"matrix_{kind}"
        if side.client.has_collection(name):
            side.client.drop_collection(name)
        build_common(side.client, name, n=N)
        return kind

    out = {}
    with ThreadPoolExecutor(len(sides)) as pool:
        for built in as_completed([pool.submit(build, kind) for kind in sides]):
            kind = built.result()
            side, name = sides[kind], f"matrix_{kind}"
            doc = cli_json("backup", side.url, matrix_store, "-c", name)
            fields = side.client.describe_collection(name)["fields"]
            out[kind] = Source(side, name, doc["backups"][0]["backup_id"], read_rows(side.client, name), fields,
                               index_summary(side.client, name)["embedding"],
                               {p: read_keys(side.client, name, p) for p in COMMON_PARTITIONS})
            assert len(out[kind].rows) == N
    return {kind: out[kind] for kind in sides}
