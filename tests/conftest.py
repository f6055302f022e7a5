"""Fixtures: real Milvus engines (Milvus Lite, the standalone server, MILVUS_URI if set), stores, the CLI."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.servers import SESSION_URL, MilvusStandalone, session_server


@dataclass
class Engine:
    """A Milvus engine under test: its URL for the CLI and a pymilvus client for setup and checks."""

    kind: str  # "lite" | "standalone" | "remote"
    url: str
    client: Any

    @property
    def lite(self) -> bool:
        return self.kind == "lite"

    def new_name(self, prefix: str = "c") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusStandalone]:
    server = session_server(tmp_path_factory.mktemp("milvus-standalone") / "data")
    server.start()  # a server that does not start fails the tests that need it, with its log
    yield server
    server.stop()


def _client(uri: str, **kw: Any) -> Any:
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri, **kw)


#: collections of session fixtures on the standalone server (tests/integration/conftest.py: sources), kept
SESSION_COLLECTIONS = ("matrix_",)


@pytest.fixture(autouse=True)
def _drop_new_standalone_collections(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the standalone server, drop the collections it left there: every loaded collection
    costs the server CPU on each time tick, which on this 2-core machine slows every later test."""
    callspec = getattr(request.node, "callspec", None)
    on_server = "standalone" in request.fixturenames or (
        callspec is not None and callspec.params.get("engine") == "standalone")
    if not on_server:
        yield
        return
    client = _client(request.getfixturevalue("standalone").uri)
    try:
        before = set(client.list_collections())
        yield
        for name in set(client.list_collections()) - before:
            if not name.startswith(SESSION_COLLECTIONS):
                try:
                    client.drop_collection(name)
                except Exception:  # cleanup only: a test's outcome does not depend on it
                    pass
    finally:
        client.close()


#: the modules whose tests ``make test`` runs in a session of their own, its standalone ones against a second 2.3
#: server (scripts/run_tests.py): about half of the standalone tests' time, every user of the matrix collections
#: (tests/integration/conftest.py: sources), which a session builds once, and the S3-storage server of
#: test_segments_listing (which the other sessions then need not run beside theirs). (Moving duplicate keys and
#: sharded restores back to the first session made the suite slower: 918 s against 894, their Lite tests to the rest.)
SECOND_SERVER_MODULES = frozenset({"test_bulk_restore", "test_matrix", "test_drill_recall", "test_leftovers",
                                   "test_duplicate_keys", "test_sharded_restore", "test_schema_settings",
                                   "test_segments_listing"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``standalone`` every test that needs the session's Milvus server: through the ``standalone`` fixture
    (directly or by a fixture that uses it), or by a parameter naming that engine; and ``second_server`` every test
    of SECOND_SERVER_MODULES (``make test`` runs the standalone tests, those of the second server and the rest as
    three sessions at once, scripts/run_tests.py)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec is not None else []
        values = [v for p in params for v in (p if isinstance(p, tuple) else (p,))]
        if "standalone" in getattr(item, "fixturenames", ()) or any(isinstance(v, str) and v == "standalone"
                                                                     for v in values):
            item.add_marker(pytest.mark.standalone)
        if item.path.stem in SECOND_SERVER_MODULES:
            item.add_marker(pytest.mark.second_server)


ENGINE_KINDS = ["lite", "standalone"] + (["remote"] if os.environ.get("MILVUS_URI") else [])


def open_engine(kind: str, request: pytest.FixtureRequest, folder: Path) -> Engine:
    """An engine of ``kind`` ("lite": a new database file in ``folder``); the caller closes its client."""
    if kind == "lite":
        path = folder / "lite.db"
        return Engine(kind, f"milvus-lite://{path}", _client(str(path)))
    if kind == "standalone":
        server = request.getfixturevalue("standalone")
        return Engine(kind, SESSION_URL, _client(server.uri))
    uri = os.environ["MILVUS_URI"]
    token = os.environ.get("MILVUS_TOKEN", "")
    url = uri.replace("https://", "milvus+https://").replace("http://", "milvus://")
    return Engine(kind, url, _client(uri, token=token) if token else _client(uri))


@pytest.fixture(params=ENGINE_KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    e = open_engine(request.param, request, tmp_path)
    yield e
    e.client.close()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "lite.db"
    e = Engine("lite", f"milvus-lite://{path}", _client(str(path)))
    yield e
    e.client.close()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)

    def error_line(self) -> str:
        """The one `error: ...` line a failed command prints; asserts there is exactly one and no traceback."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, self.stderr
        assert "Traceback" not in self.stderr + self.stdout
        return lines[0]


@pytest.fixture
def cli() -> Any:
    """Run `vecbackup ARGS...` in-process; returns exit code, stdout and stderr."""
    from vecbackup.cli import run

    def invoke(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = run([str(a) for a in args])
        return CliResult(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def memory_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """A fresh, empty folder in memory (tmpfs, /dev/shm) when there is one with room, else tmp_path / "mem"; removed
    after the test. For Qdrant local mode, whose sqlite storage commits once per point: 1.7 ms a point on this disk,
    0.07 ms on tmpfs (the same code either way; a file system that syncs less)."""
    shm = Path("/dev/shm")
    try:
        fits = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * 1024**3
    except OSError:
        fits = False
    if not fits:
        folder = tmp_path / "mem"
        folder.mkdir()
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="vecbackup-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- stores: a local folder, S3 (SeaweedFS) and Azure Blob (Azurite), all real -------------------------


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.seaweedfs import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()  # fails the tests that need it, with its log, if it does not start
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.azurite import Azurite

    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.start()
    yield server
    server.stop()


@dataclass
class StoreUnderTest:
    """A fresh, empty store of one kind: its URL for the CLI and the environment holding its credentials."""

    kind: str  # "local" | "s3" | "azure"
    url: str
    env: dict[str, str]
    server: Any = None

    def open(self, **settings: Any) -> Any:
        """The provider's own store object (no retry wrapper), with optional attribute overrides."""
        from vecbackup.stores import open_store
        from vecbackup.urls import parse_store_url

        store = open_store(parse_store_url(self.url), create=True)
        store = getattr(store, "inner", store)
        for k, v in settings.items():
            if hasattr(store, k):
                setattr(store, k, v)
        return store


STORE_KINDS = ["local", "s3", "azure"]


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               ) -> StoreUnderTest:
    name = f"vb{uuid.uuid4().hex[:12]}"
    if kind == "local":
        return StoreUnderTest(kind, f"file://{tmp_path / 'store'}", {})
    if kind == "s3":
        server = request.getfixturevalue("seaweedfs")
        server.create_bucket(name)
        sut = StoreUnderTest(kind, f"s3://{name}/backups?endpoint={server.endpoint}&path_style=1", server.env(),
                             server)
    else:
        server = request.getfixturevalue("azurite")
        server.create_container(name)
        sut = StoreUnderTest(kind, f"azure://{name}/backups", server.env(), server)
    for k, v in sut.env.items():
        monkeypatch.setenv(k, v)
    return sut


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreUnderTest:
    return make_store(request.param, request, tmp_path, monkeypatch)
