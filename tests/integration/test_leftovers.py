"""What restores and drills that died leave on an engine: a restore (or drill) process is SIGKILLed once its
collection exists and is being filled, on the 2.3 server, Milvus Lite and Qdrant local mode; the re-run drops what
it left before it restores, `gc ENGINE_URL` reports and drops it, and collections whose lease is live (a running
restore in another process, or a lease of another machine that has not run out) or that carry no lease are never
touched. Everything that opens a Milvus Lite file or a Qdrant local folder runs in a process of its own (each allows
one process at a time)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymilvus import MilvusClient

from tests.datasets import build_in_own_process, build_rich, read_rows
from tests.integration.common import STANDALONE_URL, finish_json, spawn_cli
from vecbackup.format.lease import LEASE_KEY, SKEW_MARGIN, Lease, Owner

URL = STANDALONE_URL


# -- helpers ---------------------------------------------------------------------------------------------------------


def _cli(*args: Any) -> tuple[int, dict[str, Any], str]:
    """`vecbackup ARGS... --json` in a process of its own: exit code, JSON document (or {}), stderr."""
    proc = spawn_cli(*args, "--json")
    out, err = proc.communicate(timeout=600)
    assert "Traceback" not in err, err
    return proc.returncode, (orjson.loads(out) if out.strip() else {}), err


def _ok(*args: Any) -> dict[str, Any]:
    code, doc, err = _cli(*args)
    assert code == 0, err
    return doc


class Filling:
    """A `vecbackup restore|drill` process watched until its collection exists and is being filled: its progress
    line ("restore NAME: N rows") is printed right after the collection is created with its lease."""

    def __init__(self, *args: Any) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vecbackup", *map(str, args)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        stderr = self.proc.stderr
        threading.Thread(target=lambda: [self.lines.put(line) for line in stderr], daemon=True).start()
        deadline = time.monotonic() + 300
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no progress line within 300 s: {self.seen}") from None
            self.seen.append(line)
            m = re.match(r"restore (\S+): \d+ rows$", line.strip())
            if m:
                self.collection = m.group(1)  # the target (a drill's: its scratch collection)
                return
            assert self.proc.poll() is None or not self.lines.empty(), self.seen

    def kill(self, after: float = 0.0) -> None:
        time.sleep(after)
        assert self.proc.poll() is None, f"it finished before it was killed: {self.seen}"
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume_and_finish(self) -> int:
        os.killpg(self.proc.pid, signal.SIGCONT)
        return self.proc.wait(timeout=600)


def _lease(target: str, *, expires_in: float, kind: str = "restore", state: str = "filling",
           owner: Owner | None = None, collection: str | None = None, run: str | None = None) -> str:
    """A lease as docs/FORMAT.md describes it; by default of a process on another machine."""
    now = time.time()
    return Lease(kind=kind, state=state, target=target, collection=collection or target,
                 backup_id="20260101T000000Z-0000", run=run,
                 owner=owner or Owner(host="elsewhere", pid=4242, boot="not-this-machine", pidns="pid:[1]",
                                      start="1"), lease_id="0123456789abcdef", created=now - 3600,
                 expires=None if kind == "run" else now + expires_in).to_json()


_PLANT = """
import sys, orjson
from pymilvus import MilvusClient
uri, todo = sys.argv[1], orjson.loads(sys.argv[2])
c = MilvusClient(uri)
for name, value in todo:
    c.create_collection(name, dimension=4, **({"properties": {"vecbackup.lease": value}} if value is not None else {}))
    c.insert(name, [{"id": i, "vector": [0.5] * 4} for i in range(3)])
c.close()
"""


def _plant_milvus(uri: str, todo: list[tuple[str, str | None]]) -> None:
    """Collections of 3 rows, each with the given lease value (or none), made in a process of its own."""
    subprocess.run([sys.executable, "-c", _PLANT, uri, orjson.dumps(todo).decode()], check=True, timeout=300)


def _dead_owner() -> Owner:
    """The owner a process of this machine that has exited wrote into its lease."""
    out = subprocess.run([sys.executable, "-c", "import dataclasses, orjson; from vecbackup.ops.leases import "
                          "this_owner; print(orjson.dumps(dataclasses.asdict(this_owner())).decode())"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return Owner(**orjson.loads(out))


def _names(doc: dict[str, Any], action: str) -> list[str]:
    return sorted(x["collection"] for x in doc["collections"] if x["action"] == action)


# -- gc on an engine: which leases it acts on --------------------------------------------------------------------


@pytest.fixture(params=["lite", "standalone"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL for the CLI, URI for pymilvus) of an empty Milvus Lite file or the 2.3 server (named as conftest's
    fixture, which this replaces, so the 2.3 server's collections a test leaves are dropped after it: conftest.py)."""
    if request.param == "lite":
        path = tmp_path / "target.db"
        yield f"milvus-lite://{path}", str(path)
        return
    server = request.getfixturevalue("standalone")
    yield URL, server.uri


def _ours(doc: dict[str, Any]) -> dict[str, Any]:
    """A gc report with only this test's collections (the 2.3 server has the other tests' too)."""
    doc["collections"] = [x for x in doc["collections"] if x["collection"].startswith("lv_")]
    for action in ("dropped", "cleared", "kept"):
        doc[action] = [name for name in doc[action] if name.startswith("lv_")]
    return doc


def test_gc_on_an_engine_drops_what_dead_owners_left_and_nothing_else(engine: tuple[str, str]) -> None:
    url, uri = engine
    dead = _dead_owner()
    _plant_milvus(uri, [
        ("lv_gone_vbrestore_0000aaaa", _lease("lv_gone", expires_in=-3600)),  # ran out an hour ago: dead
        ("lv_pid_vbrestore_0000bbbb", _lease("lv_pid", expires_in=600, owner=dead)),  # this machine, process gone
        ("lv_half", _lease("lv_half", expires_in=-3600)),  # a dead restore's target filled in place
        ("lv_drill_0000cccc", _lease("lv_drill_0000cccc", expires_in=-3600, kind="drill", collection="lv")),
        ("lv_done", _lease("lv_done", expires_in=-3600, state="complete")),  # complete under its name: clear
        ("lv_live_vbrestore_0000dddd", _lease("lv_live", expires_in=600)),  # another machine's, renewed
        ("lv_skew_vbrestore_0000eeee", _lease("lv_skew", expires_in=-SKEW_MARGIN / 5)),  # within the margin
        ("lv_run_vbrun_0123456789ab", _lease("lv_run", expires_in=0, kind="run", run="nightly")),
        ("lv_mine_vbrestore_deadbeef", None),  # named like one, no lease: the user's
        ("lv_odd", "not a lease"),
        ("lv_plain", None),
    ])
    dry = _ours(_ok("gc", url, "--dry-run"))
    assert dry["dry_run"] is True
    assert sorted(dry["dropped"]) == ["lv_drill_0000cccc", "lv_gone_vbrestore_0000aaaa", "lv_half",
                                      "lv_pid_vbrestore_0000bbbb"]
    assert dry["cleared"] == ["lv_done"]
    assert sorted(dry["kept"]) == ["lv_live_vbrestore_0000dddd", "lv_mine_vbrestore_deadbeef", "lv_odd",
                                   "lv_run_vbrun_0123456789ab", "lv_skew_vbrestore_0000eeee"]
    assert not any(x["done"] for x in dry["collections"])
    reasons = {x["collection"]: x["reason"] for x in dry["collections"]}
    assert "half-filled" in reasons["lv_half"] and "ran out" in reasons["lv_gone_vbrestore_0000aaaa"]
    assert f"pid {dead.pid} on {dead.host} is gone" in reasons["lv_pid_vbrestore_0000bbbb"]
    assert "holds it (pid 4242 on elsewhere" in reasons["lv_live_vbrestore_0000dddd"]
    assert "clock" in reasons["lv_skew_vbrestore_0000eeee"]
    assert "carries no lease" in reasons["lv_mine_vbrestore_deadbeef"]
    assert "--run nightly --abandon" in reasons["lv_run_vbrun_0123456789ab"]

    done = _ours(_ok("gc", url))
    assert done["dropped"] == dry["dropped"] and done["cleared"] == dry["cleared"] and done["kept"] == dry["kept"]
    assert all(x["done"] == (x["action"] != "keep") for x in done["collections"])
    left = {c["name"]: c["rows"] for c in _ok("collections", url)["collections"] if c["name"].startswith("lv_")}
    assert sorted(left) == sorted(["lv_done", "lv_plain", *dry["kept"]])
    assert all(rows == 3 for rows in left.values())  # kept ones untouched
    again = _ours(_ok("gc", url))
    assert again["dropped"] == [] and again["cleared"] == [] and again["kept"] == dry["kept"]  # lv_done is ordinary


def test_gc_on_an_engine_prints_what_it_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _plant_milvus(str(path), [("p_vbrestore_0000aaaa", _lease("p", expires_in=-3600))])
    proc = spawn_cli("gc", f"milvus-lite://{path}")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.splitlines()[0].startswith("dropped 'p_vbrestore_0000aaaa': left by a restore into 'p' that died "
                                          "(its lease ran out at ")
    assert out.splitlines()[-1].endswith(": 1 collection dropped, 0 leases cleared, 0 kept")
    code, _, err = _cli("gc", f"milvus-lite://{path}", "--min-age", "1h")
    assert code == 2 and "--min-age applies to stores" in err
    # a store's --min-age from the environment (or the config file) is no error for a database
    env = {**os.environ, "VECBACKUP_GC_MIN_AGE": "7d"}
    done = subprocess.run([sys.executable, "-m", "vecbackup", "gc", f"milvus-lite://{path}", "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and orjson.loads(done.stdout)["collections"] == [], done.stderr


# -- a restore killed with SIGKILL: Milvus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_backup(standalone: Any, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[tuple[MilvusClient, Path, str, dict[Any, Any]]]:
    """build_rich (900 rows) on the 2.3 server, backed up in 30-row objects (30 inserts: a restore fills its
    staging collection for a while), and dropped: the client, the store, the backup id and the rows."""
    client = MilvusClient(standalone.uri)
    name = "leftover_src"
    if client.has_collection(name):
        client.drop_collection(name)
    build_rich(client, name, "standalone", n=900)
    store = tmp_path_factory.mktemp("leftovers") / "store"
    backup = finish_json(spawn_cli("backup", URL, store, "-c", name, "--batch-size", "30", "--json"))
    rows = read_rows(client, name)
    client.drop_collection(name)
    yield client, store, backup["backups"][0]["backup_id"], rows
    client.close()


def _staging(client: MilvusClient, target: str) -> list[str]:
    return [c for c in client.list_collections() if c.startswith(f"{target}_vbrestore_")]


def test_a_killed_restore_is_dropped_by_the_rerun_and_by_gc_while_a_running_one_is_kept_standalone(
        server_backup: Any) -> None:
    client, store, backup_id, rows = server_backup
    # a restore killed while it fills its staging collection: the whole partial copy stays, the target never came
    Filling("restore", store, URL, "--backup", backup_id, "--as", "lo_copy").kill(after=0.1)
    [dead] = _staging(client, "lo_copy")
    assert not client.has_collection("lo_copy")
    client.flush(dead)  # (a 2.3 server loads no collection without its index: counted from its segments)
    assert 0 < int(client.get_collection_stats(dead)["row_count"]) <= 900  # it holds rows

    # another restore runs (stopped, so it is still filling when gc looks): its lease's owner is alive
    live = Filling("restore", store, URL, "--backup", backup_id, "--as", "lo_live")
    live.pause()
    try:
        [running] = _staging(client, "lo_live")
        dry = _ok("gc", URL, "--dry-run")
        assert dry["dropped"] == [dead] and running in dry["kept"]
        reasons = {x["collection"]: x["reason"] for x in dry["collections"]}
        assert f"a restore into 'lo_live' is running (pid {live.proc.pid} on " in reasons[running]
        assert "left by a restore into 'lo_copy' that died" in reasons[dead]
        assert client.has_collection(dead)  # a dry run drops nothing

        # the re-run drops what the killed run left, says so, and restores
        doc = _ok("restore", store, URL, "--backup", backup_id, "--as", "lo_copy")
        assert doc["dropped"] == [dead] and doc["rows"] == 900
        assert any(n.startswith(f"dropped {dead!r}: left by a restore into 'lo_copy' that died") for n in doc["notes"])
        assert not client.has_collection(dead) and _staging(client, "lo_copy") == []
        assert read_rows(client, "lo_copy") == rows
        assert client.describe_collection("lo_copy")["properties"].get(LEASE_KEY, "") == ""  # cleared (2.3: emptied)

        # gc drops the next one a killed restore leaves, and keeps the running restore's
        Filling("restore", store, URL, "--backup", backup_id, "--as", "lo_other").kill(after=0.3)
        [other] = _staging(client, "lo_other")
        done = _ok("gc", URL)
        assert done["dropped"] == [other] and running in done["kept"]
        assert not client.has_collection(other) and client.has_collection(running)
    finally:
        code = live.resume_and_finish()
    assert code == 0, live.seen
    assert read_rows(client, "lo_live") == rows and _staging(client, "lo_live") == []
    assert not [x for x in _ok("gc", URL, "--dry-run")["collections"] if x["collection"].startswith("lo_")]


def test_a_killed_restore_on_milvus_lite_is_dropped_by_the_rerun_and_by_gc(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=3000)
    store = tmp_path / "store"
    backup_id = _ok("backup", f"milvus-lite://{db}", store, "-c", "docs", "--batch-size", "25")["backups"][0][
        "backup_id"]
    url = f"milvus-lite://{tmp_path / 'target.db'}"
    Filling("restore", store, url, "--as", "copy").kill(after=0.05)
    found = _ok("gc", url, "--dry-run")
    [left] = found["collections"]
    assert left["collection"].startswith("copy_vbrestore_") and left["action"] == "drop", left
    assert (left["kind"], left["state"], left["target"], left["backup_id"]) == ("restore", "filling", "copy",
                                                                                 backup_id)
    assert "is gone" in left["reason"]
    assert "copy" not in {c["name"] for c in _ok("collections", url)["collections"]}

    doc = _ok("restore", store, url, "--as", "copy")
    assert doc["dropped"] == [left["collection"]] and doc["rows"] == 3000
    assert {c["name"]: c["rows"] for c in _ok("collections", url)["collections"]} == {"copy": 3000}

    Filling("restore", store, url, "--as", "again").kill(after=0.05)
    done = _ok("gc", url)
    [gone] = done["dropped"]
    assert gone.startswith("again_vbrestore_") and done["kept"] == []
    assert {c["name"]: c["rows"] for c in _ok("collections", url)["collections"]} == {"copy": 3000}
    assert _ok("gc", url)["collections"] == []  # the restored collection carries no lease


# -- a drill killed with SIGKILL -------------------------------------------------------------------------------------


def test_a_killed_drill_is_dropped_by_the_next_drill_and_by_gc(engine: tuple[str, str], tmp_path: Path) -> None:
    url, _ = engine
    db = tmp_path / "src.db"
    build_in_own_process(db, "dr", n=2000)
    store = tmp_path / "store"
    _ok("backup", f"milvus-lite://{db}", store, "-c", "dr", "--batch-size", "25")
    drill = ("drill", store, url, "-c", "dr", "--sample", "20", "--queries", "5")
    Filling(*drill).kill(after=0.05)
    found = _ok("gc", url, "--dry-run")
    [left] = found["collections"]
    assert left["kind"] == "drill" and left["action"] == "drop" and "_drill_" in left["collection"], left
    assert "scratch collection of a drill of 'dr' that died" in left["reason"]

    report = _ok(*drill)
    assert report["ok"], report["failures"]
    assert any(n.startswith(f"dropped {left['collection']!r}: scratch collection of a drill") for n in report["notes"])
    assert not [c for c in _ok("collections", url)["collections"] if "_drill_" in c["name"]]

    Filling(*drill).kill(after=0.05)
    done = _ok("gc", url)
    assert len(done["dropped"]) == 1 and "_drill_" in done["dropped"][0] and done["kept"] == []
    assert not [c for c in _ok("collections", url)["collections"] if "_drill_" in c["name"]]


# -- a restore into Qdrant local mode, filling the target itself ---------------------------------------------------


_QDRANT_BUILD = """
import sys
from qdrant_client import QdrantClient, models as m
c = QdrantClient(path=sys.argv[1])
c.create_collection("pts", vectors_config=m.VectorParams(size=8, distance=m.Distance.DOT))
n = int(sys.argv[2])
for start in range(0, n, 500):
    c.upsert("pts", [m.PointStruct(id=i, vector=[float(i % 7), 1.0, 0.5, 0.25, 0.0, -1.0, float(i % 3), 2.0],
                                   payload={"i": i}) for i in range(start, min(n, start + 500))])
c.close()
"""

_QDRANT_LOOK = """
import sys, orjson
from qdrant_client import QdrantClient
c = QdrantClient(path=sys.argv[1])
out = {}
for col in c.get_collections().collections:
    info = c.get_collection(col.name)
    out[col.name] = {"points": c.count(col.name, exact=True).count, "metadata": info.config.metadata}
print(orjson.dumps(out).decode())
c.close()
"""

_QDRANT_PLANT = """
import sys
from qdrant_client import QdrantClient, models as m
c = QdrantClient(path=sys.argv[1])
c.create_collection(sys.argv[2], vectors_config=m.VectorParams(size=8, distance=m.Distance.DOT),
                    metadata={"vecbackup.lease": sys.argv[3]})
c.close()
"""


def _qdrant(script: str, *args: Any) -> str:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, capture_output=True,
                          text=True, timeout=300).stdout


def test_a_killed_restore_into_qdrant_local_leaves_a_half_filled_target_the_rerun_and_gc_drop(
        tmp_path: Path, memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "src"
    _qdrant(_QDRANT_BUILD, src, 1500)
    store = tmp_path / "store"
    backup_id = _ok("backup", f"qdrant-local://{src}", store, "-c", "pts", "--batch-size", "10")["backups"][0][
        "backup_id"]
    folder = tmp_path / "target"  # on disk: local mode commits every point, so a restore takes a while
    url = f"qdrant-local://{folder}"

    # killed while it fills the new collection under the target's own name (Qdrant cannot rename)
    Filling("restore", store, url).kill(after=0.2)
    look = orjson.loads(_qdrant(_QDRANT_LOOK, folder))
    assert list(look) == ["pts"] and 0 < look["pts"]["points"] < 1500, look  # looks like a collection
    lease = orjson.loads(look["pts"]["metadata"][LEASE_KEY])
    assert (lease["kind"], lease["state"], lease["target"], lease["backup_id"]) == ("restore", "filling", "pts",
                                                                                   backup_id)
    dry = _ok("restore", store, url, "--dry-run")  # not "already exists": the real restore drops it first
    assert dry["ok"] and dry["target_exists"] is False
    assert any(n.startswith("would drop 'pts': left half-filled by a restore into 'pts' that died")
               for n in dry["notes"])
    found = _ok("gc", url, "--dry-run")
    assert found["dropped"] == ["pts"] and "half-filled" in found["collections"][0]["reason"]

    doc = _ok("restore", store, url)
    assert doc["dropped"] == ["pts"] and doc["rows"] == 1500
    look = orjson.loads(_qdrant(_QDRANT_LOOK, folder))
    assert look["pts"]["points"] == 1500 and LEASE_KEY not in (look["pts"]["metadata"] or {})
    # a backup of the restored collection records no lease and no metadata (the source had none)
    again = _ok("backup", url, tmp_path / "store2", "-c", "pts")
    assert "metadata" not in _ok("show", tmp_path / "store2")["collection"]["extra"]["qdrant"], again

    Filling("restore", store, url, "--as", "pts2").kill(after=0.2)
    done = _ok("gc", url)
    assert done["dropped"] == ["pts2"] and done["kept"] == []
    assert sorted(orjson.loads(_qdrant(_QDRANT_LOOK, folder))) == ["pts"]


def test_a_qdrant_target_whose_restore_still_holds_its_lease_is_refused_saying_so(tmp_path: Path,
                                                                                  memory_tmp_path: Path) -> None:
    src = memory_tmp_path / "src"
    _qdrant(_QDRANT_BUILD, src, 50)
    store = tmp_path / "store"
    _ok("backup", f"qdrant-local://{src}", store, "-c", "pts")
    folder = memory_tmp_path / "target"
    _qdrant(_QDRANT_PLANT, folder, "pts", _lease("pts", expires_in=600))  # another machine's restore, running
    code, _, err = _cli("restore", store, f"qdrant-local://{folder}")
    assert code == 5, err
    assert ("collection 'pts' already exists in qdrant-local://" in err and "half-filled: a restore into it holds its "
            "lease (pid 4242 on elsewhere, renewed until " in err), err
    found = _ok("gc", f"qdrant-local://{folder}")
    assert found["dropped"] == [] and found["kept"] == ["pts"]
    assert sorted(orjson.loads(_qdrant(_QDRANT_LOOK, folder))) == ["pts"]


# -- a restore by several workers: kept, and shown ----------------------------------------------------------------


def test_the_staging_collection_of_a_restore_by_several_workers_is_shown_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=300)
    store = tmp_path / "store"
    backup_id = _ok("backup", f"milvus-lite://{db}", store, "-c", "docs", "--batch-size", "64")["backups"][0][
        "backup_id"]
    url = f"milvus-lite://{tmp_path / 'target.db'}"
    first = _ok("restore", store, url, "--backup", backup_id, "--shard", "0/2", "--run", "r1")
    found = _ok("gc", url)
    [run] = found["collections"]
    assert run["collection"] == first["staging"] and run["action"] == "keep" and run["run"] == "r1", run
    assert f"--backup {backup_id} --as docs --run r1 --abandon" in run["reason"]
    _ok("restore", store, url, "--backup", backup_id, "--shard", "1/2", "--run", "r1", "--commit")
    assert _ok("gc", url)["collections"] == []  # committed: an ordinary collection, its lease cleared
    assert {c["name"]: c["rows"] for c in _ok("collections", url)["collections"]} == {"docs": 300}


# -- holding a lease, against the real engines ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lite", "qdrant"])
def test_a_held_lease_is_renewed_follows_its_collection_and_is_cleared(kind: str, tmp_path: Path) -> None:
    import vecbackup
    from vecbackup.format.lease import parse_lease
    from vecbackup.ops.leases import HeldLease, new_lease

    engine: Any = vecbackup.connect(f"milvus-lite://{tmp_path / 'l.db'}" if kind == "lite" else
                                    f"qdrant-local://{tmp_path / 'q'}")
    try:
        held = HeldLease(engine, new_lease("restore", "t", "t", "B"), every=0.05)
        staging = "t_vbrestore_00000000" if kind == "lite" else "t"
        if kind == "lite":
            engine.client.create_collection(staging, dimension=4, properties={LEASE_KEY: held.value(staging)})
        else:
            from qdrant_client import models as m

            engine.client.create_collection(staging, vectors_config=m.VectorParams(size=4, distance=m.Distance.DOT),
                                            metadata={LEASE_KEY: held.value(staging), "mine": 1})

        def renewed_after(name: str, than: float) -> Lease:
            deadline = time.monotonic() + 30
            while True:
                lease = parse_lease(engine.read_lease(name))
                assert lease is not None
                if lease.expires is not None and lease.expires > than:
                    return lease
                assert time.monotonic() < deadline and held.renew_error is None, held.renew_error
                time.sleep(0.02)

        first = parse_lease(engine.read_lease(staging))
        assert first is not None and first.state == "filling" and first.owner.pid == os.getpid()
        held.start()
        second = renewed_after(staging, first.expires or 0)
        assert second.lease_id == first.lease_id and second.created == first.created
        held.complete()
        third = parse_lease(engine.read_lease(staging))
        assert third is not None and third.state == "complete"
        if kind == "lite":  # Milvus renames the complete copy: renewals follow it
            with held.moving("t"):
                engine.client.rename_collection(staging, "t")
            renewed_after("t", third.expires or 0)
        assert held.release() is None
        assert engine.read_lease("t") is None
        if kind == "qdrant":  # the rest of the metadata is left as it was
            assert engine.client.get_collection("t").config.metadata == {"mine": 1}
    finally:
        engine.close()


def test_a_restore_renewing_its_lease_all_along_completes_standalone(server_backup: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Renewals (every 60 s in earnest) during the inserts, flush, index build, load and rename of a 2.3 server
    restore: every 20 ms here. Each is a real alter_collection_properties; the restore is as it would be."""
    import vecbackup
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.ops import leases

    client, store, backup_id, rows = server_backup
    renewed: list[str] = []
    write = MilvusEngine.write_lease

    def counted(self: Any, name: str, value: str) -> None:
        renewed.append(name)
        write(self, name, value)

    monkeypatch.setattr(leases, "RENEW_EVERY", 0.02)
    monkeypatch.setattr(MilvusEngine, "write_lease", counted)
    result = vecbackup.restore(f"file://{store}", URL, backup=backup_id,
                               options=vecbackup.RestoreOptions(target="lo_renew"))
    assert result.rows == 900 and read_rows(client, "lo_renew") == rows
    staging = [n for n in renewed if n != "lo_renew"]
    assert len(staging) >= 10 and all(n.startswith("lo_renew_vbrestore_") for n in staging), renewed
    assert client.describe_collection("lo_renew")["properties"].get(LEASE_KEY, "") == ""
    assert _staging(client, "lo_renew") == []
