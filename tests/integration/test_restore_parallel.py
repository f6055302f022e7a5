"""Restore with several insert requests in flight (`restore --parallel K`) against the real engines: the rows come
back complete, no more than K inserts ever run at once, and a failing insert stops the restore, lets the requests
already sent finish, and leaves no collection behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENGINE_KINDS, Engine, open_engine
from tests.datasets import build_vector_only, read_rows
from tests.integration.common import run_cli
from vecbackup import api
from vecbackup.errors import VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.ops.restore import RestoreOptions


@pytest.fixture(scope="module", params=ENGINE_KINDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine for this module's tests on it (conftest's is one a test): they restore the same backup."""
    e = open_engine(request.param, request, tmp_path_factory.mktemp("engine"))
    yield e
    e.client.close()


@pytest.fixture(scope="module")
def backed_up(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Any]]:
    """1,200 rows backed up in 12 chunks, once an engine (the tests only read the collection and the store): the
    store, the collection's name and every row of it."""
    store_dir = tmp_path_factory.mktemp("par") / "backups"
    name = engine.new_name("par")
    build_vector_only(engine.client, name, "FLOAT_VECTOR", n=1200)
    code, _, err = run_cli("backup", engine.url, store_dir, "-c", name, "--batch-size", "100", "--json")
    assert code == 0, err
    yield store_dir, name, read_rows(engine.client, name)
    if engine.kind == "standalone":
        engine.client.drop_collection(name)


class CountingEngine:
    """A real engine whose inserts are slowed a little and counted: how many run at once (fault injection around the
    real sink, as tests/faulty.py does for stores). ``fail_at``: the insert (1-based) that raises instead."""

    def __init__(self, engine: Any, fail_at: int | None = None) -> None:
        self.engine, self.fail_at = engine, fail_at
        self.lock = threading.Lock()
        self.running = self.most = self.calls = self.finished = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def write(self, spec: Any, plan: Any, chunk: Chunk) -> int:
        with self.lock:
            self.calls += 1
            call = self.calls
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            if call == self.fail_at:
                raise VecbackupError("injected insert failure")
            return int(self.engine.write(spec, plan, chunk))
        finally:
            with self.lock:
                self.running -= 1
                self.finished += 1


@pytest.mark.parametrize("parallel", [1, 4])
def test_parallel_restore_is_complete_and_bounded(engine, backed_up, parallel):
    store_dir, name, source = backed_up
    target = CountingEngine(api.connect(engine.url))
    try:
        result = api.restore(f"file://{store_dir}", target, collection=name,
                             options=RestoreOptions(target=f"{name}_r{parallel}", parallel=parallel))
    finally:
        target.close()
    assert result.rows == 1200 and target.calls == 12
    assert target.most == parallel  # K in flight, never more
    assert read_rows(engine.client, f"{name}_r{parallel}") == source


def test_a_failing_insert_stops_the_restore_and_leaves_nothing(engine, backed_up):
    store_dir, name, _ = backed_up
    before = set(engine.client.list_collections())
    target = CountingEngine(api.connect(engine.url), fail_at=5)
    try:
        with pytest.raises(VecbackupError, match="injected insert failure"):
            api.restore(f"file://{store_dir}", target, collection=name,
                        options=RestoreOptions(target=f"{name}_failed", parallel=4))
    finally:
        target.close()
    assert target.running == 0 and target.finished == target.calls  # every request sent had finished
    assert target.calls < 12  # the rest were never sent
    assert set(engine.client.list_collections()) == before  # the staging collection is gone


def test_parallel_is_capped_by_what_the_target_takes(cli, store_dir, memory_tmp_path):
    """Qdrant local mode is one process's sqlite: one upsert at a time, whatever --parallel says."""
    import numpy as np
    from qdrant_client import QdrantClient, models

    folder = memory_tmp_path / "q"
    client = QdrantClient(path=str(folder))
    client.create_collection("pts", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    rng = np.random.default_rng(1)
    client.upsert("pts", [models.PointStruct(id=i, vector=rng.normal(size=4).tolist()) for i in range(300)])
    client.close()
    url = f"qdrant-local://{folder}"
    assert cli("backup", url, store_dir, "-c", "pts", "--batch-size", "50").code == 0
    target = CountingEngine(api.connect(url))
    try:
        api.restore(f"file://{store_dir}", target, collection="pts",
                    options=RestoreOptions(target="pts_r", parallel=4))
        assert target.count("pts_r") == 300
    finally:
        target.close()
    assert target.calls == 6 and target.most == 1


def test_parallel_option(cli, tmp_path):
    r = cli("restore", tmp_path / "store", "milvus-lite:///tmp/x.db", "--parallel", "0")
    assert r.code == 2 and "--parallel" in r.stderr
