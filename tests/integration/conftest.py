"""Session fixtures of the integration tests that need big collections: built and backed up once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import build_common, index_summary, read_rows
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
    indexed, backed up to matrix_store."""
    out = {}
    for kind, side in sides.items():
        name = f"matrix_{kind}"
        if side.client.has_collection(name):
            side.client.drop_collection(name)
        build_common(side.client, name, n=N)
        doc = cli_json("backup", side.url, matrix_store, "-c", name)
        fields = side.client.describe_collection(name)["fields"]
        out[kind] = Source(side, name, doc["backups"][0]["backup_id"], read_rows(side.client, name), fields,
                           index_summary(side.client, name)["embedding"])
        assert len(out[kind].rows) == N
    return out
