"""One pymilvus connection to a Milvus server or a Milvus Lite file, and what every role of the engine shares:
calls translated into vecbackup.errors, counting, loading. pymilvus is imported lazily."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from vecbackup.engines.base import PhaseReport
from vecbackup.errors import Unreachable, Unsupported, VecbackupError
from vecbackup.format.manifest import SourceInfo
from vecbackup.schema import CollectionSpec
from vecbackup.urls import MilvusURL

T = TypeVar("T")

#: describe_index keys that are state, not build parameters
_INDEX_STATE_KEYS = {
    "field_name", "index_name", "index_type", "metric_type", "indexed_rows", "pending_index_rows",
    "state", "total_rows", "index_state_fail_reason", "index_param", "params",
}
#: describe_collection field keys we map to Field attributes (anything else goes to Field.extra)
_FIELD_PARAM_KEYS = {"dim", "max_length", "max_capacity"}
_CONSISTENCY = {0: "Strong", 1: "Session", 2: "Bounded", 3: "Eventually", 4: "Customized"}
_ALLOW_AUTO_ID = "allow_insert_auto_id"
#: Milvus caps one query page at 16384 rows
MAX_BATCH = 16384
#: seconds between two looks at how far an index build or a load the server is waiting on has come
POLL_SECONDS = 1.0
#: what a look at a waiting call's progress finds: (done, total, unit), or None when the server does not say
Look = Callable[[], tuple[int, int, str] | None]
#: gRPC options of a Milvus Lite connection: no keepalive pings (INT_MAX disables them) to the in-process server
_LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:  # pragma: no cover - depends on the install
        raise Unsupported("the Milvus support is not installed", hint="pip install 'vecbackup[milvus]'") from None
    for name in ("pymilvus", "milvus_lite", "grpc"):  # they log tracebacks of errors we report ourselves
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return pymilvus


def _message(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e)
    return " ".join(str(msg).split())[:300]


class Connection:
    """The connection the Source, Sink and Inspector roles of :class:`MilvusEngine` share."""

    def __init__(self, url: MilvusURL):
        self.url = url
        self.display = url.display
        pm = _pymilvus()
        self._DataType = pm.DataType
        self._exc = pm.MilvusException
        self._loaded_by_us: set[str] = set()
        self._read_notes: dict[str, list[str]] = {}  # per collection: what reading did differently (read_notes)
        #: read (MilvusSource.read) and insert (MilvusSink.write) columns, or go through pymilvus's rows
        self.columnar = url.columnar
        self._write_notes: list[str] = []  # what inserting did differently (MilvusSink.finish reports them)
        kwargs: dict[str, Any] = {"uri": url.uri, "timeout": url.timeout}
        if url.token:
            kwargs["token"] = url.token
        if url.user:
            kwargs["user"] = url.user
            kwargs["password"] = url.password
        if url.db_name:
            kwargs["db_name"] = url.db_name
        tls = url.tls
        if tls.client_cert:  # mutual TLS: pymilvus takes the CA as ca_pem_path then
            kwargs.update(secure=True, client_pem_path=tls.client_cert, client_key_path=tls.client_key,
                          ca_pem_path=tls.ca_cert)
        elif url.server_pem_path:
            kwargs.update(secure=True, server_pem_path=url.server_pem_path)
        # A channel of our own, never pymilvus's shared one: it keys on address and token only, so another client's
        # TLS settings would be used, and a Lite file's channel would be shared with every other client of it in
        # this process (a drill's source and target, an API caller's own client)
        kwargs["dedicated"] = True
        if url.lite:  # Milvus Lite serves the file from threads of this process: nothing to keep alive, and its gRPC
            kwargs["grpc_options"] = _LITE_GRPC_OPTIONS  # server answers pymilvus's 10 s pings with GOAWAY
        try:
            self.client = pm.MilvusClient(**kwargs)
            self._version = str(self.client.get_server_version())
        except Exception as e:
            if url.lite and _lite_file_locked(url.uri):
                raise Unreachable(f"Milvus Lite file {url.uri} is in use by another process",
                                  hint="Milvus Lite allows one process per file; stop the other one") from None
            where = f"Milvus Lite file {url.uri}" if url.lite else f"Milvus at {self.display}"
            raise Unreachable(f"cannot connect to {where}: {_message(e)}",
                              hint="check the URL, that the server is up, and the credentials") from None

    # -- shared -----------------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """``milvus`` or ``milvus-lite`` (SourceInfo.engine; cross-engine restores map by it)."""
        return "milvus-lite" if self.url.lite else "milvus"

    def info(self) -> SourceInfo:
        return SourceInfo(engine=self.engine, server_version=self._version, address=self.display)

    def close(self) -> None:
        for name in self._loaded_by_us:
            try:
                self.client.release_collection(name)
            except Exception:  # best effort: leave the server as we found it
                pass
        self._loaded_by_us.clear()
        try:
            self.client.close()
        except Exception:  # closing a dead connection is not an error worth reporting
            pass

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._exc as e:
            raise VecbackupError(f"Milvus at {self.display}: {what} failed: {_message(e)}") from None
        except Exception as e:
            raise Unreachable(f"Milvus at {self.display}: {what} failed: {_message(e)}") from None

    def has_collection(self, name: str) -> bool:
        return bool(self._call("has_collection", self.client.has_collection, name))

    def list_collections(self) -> list[str]:
        return sorted(self._call("list_collections", self.client.list_collections))

    def count(self, spec_or_name: CollectionSpec | str) -> int:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        self.ensure_loaded(name)
        res = self._call(f"count rows of {name!r}", self.client.query, name, filter="",
                         output_fields=["count(*)"], consistency_level="Strong")
        return int(res[0]["count(*)"])

    def index_rows(self, name: str, index_name: str) -> tuple[int, int, bool]:
        """(rows indexed, rows in the collection, finished) of index ``index_name`` of collection ``name``, as
        ``describe_index`` reports them: what the sink's progress and the drill's wait read."""
        d = self.client.describe_index(name, index_name)
        indexed, total = int(d.get("indexed_rows") or 0), int(d.get("total_rows") or 0)
        finished = d.get("state") == "Finished" and not d.get("pending_index_rows") and indexed >= total
        return min(indexed, total) if total else indexed, total, finished

    def ensure_loaded(self, name: str) -> None:
        """Queries need a loaded collection: load it if needed, and release it again on close()."""
        if name in self._loaded_by_us:
            return
        state = self._call(f"get the load state of {name!r}", self.client.get_load_state, name)
        if "NotLoad" in str(state.get("state")):
            self._call(f"load {name!r}", self.client.load_collection, name)
            self._loaded_by_us.add(name)


def waiting(report: PhaseReport | None, phase: str, call: Callable[[], T], look: Look | None = None) -> T:
    """``call()`` (a server call that returns once a flush, an index build or a load is done), with ``report``
    told ``phase`` and, while it runs, every POLL_SECONDS what ``look`` finds. The call runs on a thread of its own
    so the looks (and the reports) stay on this one; its result or error is this function's. Without a look (Milvus
    Lite reports nothing while it builds, and answers nothing else meanwhile) the call runs here, and the renderer
    shows the phase's name and how long it has taken."""
    if report is not None:
        report(phase)
    if report is None or look is None:
        return call()
    outcome: list[tuple[bool, Any]] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as e:  # handed to the waiting thread, which raises it
            outcome.append((False, e))
        finally:
            finished.set()

    # a daemon: an interrupt of the waiting thread is not held up by the call (a restore's abort then drops the
    # collection it waits on)
    threading.Thread(target=run, name="vecbackup-wait", daemon=True).start()
    while not finished.wait(POLL_SECONDS):
        seen = _look(look)
        if seen is not None and not finished.is_set():
            report(phase, *seen)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _look(look: Look) -> tuple[int, int, str] | None:
    """What ``look`` finds, or None when it fails: progress is only shown, never a reason to stop."""
    try:
        return look()
    except Exception:
        return None


def _lite_file_locked(path: str) -> bool:
    """After a failed open: does another process hold the Milvus Lite file's lock? Not when this process serves the
    file itself (it holds the lock then, and the open failed for another reason, which the caller reports)."""
    import fcntl
    import os

    if _served_here(path):
        return False
    lock = os.path.join(path, "LOCK") if os.path.isdir(path) else path  # milvus-lite 3 locks DIR/LOCK
    try:
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        pass
    return False


def _served_here(path: str) -> bool:
    """Does milvus-lite serve this file from this process (pymilvus opened it here before)?"""
    import os

    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # pragma: no cover - depends on the install
        return False
    return os.path.abspath(path) in getattr(server_manager_instance, "_servers", {})
