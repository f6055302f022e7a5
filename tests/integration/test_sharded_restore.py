"""Restores by several workers against the real engines: n separate `vecbackup restore --shard I/N --run RUN`
processes fill one staging collection, and a commit (a step of its own, or the last worker's --commit) gives it the
target's name once every worker is done; the result is identical, row for row and index for index, to the
collection backed up. A commit refuses while a worker is missing; the target is untouched until the commit;
a worker that failed or was killed mid-way is run again and every row is there once; --abandon gives a run up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

import vecbackup
from tests.datasets import build_in_own_process, build_rich, index_summary, read_keys, read_rows
from tests.faulty import FaultyStore
from tests.integration.common import STANDALONE_URL, cli_json, finish_json, spawn_cli
from vecbackup.errors import Unreachable
from vecbackup.format.manifest import DataObject
from vecbackup.format.shard import Shard
from vecbackup.ops.restore_shard import assigned, run_names
from vecbackup.stores import open_store

URL = STANDALONE_URL


def _run(*args: Any) -> tuple[int, str]:
    """A vecbackup process's exit code and its error line (a Milvus Lite file stays locked by the process that
    opened it, so what touches the target runs in a process of its own)."""
    proc = spawn_cli(*args)
    _, err = proc.communicate(timeout=600)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == (proc.returncode != 0), err
    return proc.returncode, "".join(lines)


def _workers(store: Path, target: str, backup_id: str, n: int, run: str, only: list[int], *extra: str,
             ) -> list[dict[str, Any]]:
    """Workers ``only`` of ``n`` (all at once, one process each); their JSON reports."""
    procs = [spawn_cli("restore", store, target, "--backup", backup_id, "--shard", f"{i}/{n}", "--run", run,
                        "--json", *extra) for i in only]
    return [finish_json(p) for p in procs]


def _left_over(client: MilvusClient) -> list[str]:
    """Collections of restore runs still on the server."""
    return [c for c in client.list_collections() if "_vbrun_" in c or "_vbcommit_" in c]


@pytest.fixture(scope="module")
def backed_up(standalone: Any, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[MilvusClient, Path, str, dict[Any, Any], dict[str, set[Any]], dict[str, Any]]]:
    """build_rich (900 rows, 3 partitions, HNSW with parameters, dynamic fields) on the standalone server, backed
    up once in 64-row objects, and dropped: the client, the store, the backup id, the rows, the keys of each
    partition, and the indexes (type, metric, build parameters), which a restore gives back as they were."""
    client = MilvusClient(standalone.uri)
    name = "shard_restore_src"
    if client.has_collection(name):
        client.drop_collection(name)
    build_rich(client, name, "standalone", n=900)
    store = tmp_path_factory.mktemp("sharded-restore") / "store"
    backup = finish_json(spawn_cli("backup", URL, store, "-c", name, "--batch-size", "64", "--json"))
    backup_id = backup["backups"][0]["backup_id"]
    rows = read_rows(client, name)
    partitions = {p: read_keys(client, name, p) for p in client.list_partitions(name)}
    assert len(partitions) == 3 and all(partitions.values())
    indexes = index_summary(client, name)
    client.drop_collection(name)
    yield client, store, backup_id, rows, partitions, indexes
    client.close()


def _assert_identical(client: MilvusClient, name: str, rows: dict[Any, Any], partitions: dict[str, set[Any]],
                      indexes: dict[str, Any]) -> None:
    assert read_rows(client, name) == rows
    assert {p: read_keys(client, name, p) for p in client.list_partitions(name)} == partitions
    assert index_summary(client, name) == indexes
    assert client.query(name, filter="", output_fields=["count(*)"],
                        consistency_level="Strong")[0]["count(*)"] == len(rows)  # each key once
    assert client.list_aliases(collection_name=name).get("aliases", []) == []  # no marker left
    assert _left_over(client) == []


def test_a_commit_step_joins_two_workers_and_replaces_the_target_only_then_standalone(cli, backed_up):
    client, store, backup_id, rows, partitions, indexes = backed_up
    target = "shard_restore_dr"
    # an existing collection of the target's name: --drop-existing replaces it, but only at the commit
    client.create_collection(target, dimension=8)
    client.insert(target, [{"id": i, "vector": [0.5] * 8} for i in range(5)])
    client.flush(target)
    old = read_rows(client, target)
    assert len(old) == 5
    done = _workers(store, URL, backup_id, 2, "dr-2", [0], "--as", target, "--drop-existing")
    assert done[0]["staging"] == run_names(target, "dr-2", backup_id).staging
    assert done[0]["rows"] == sum(o.rows for o in _objects(store, backup_id)[0::2]) and done[0]["commit"] is None

    r = cli("restore", store, URL, "--backup", backup_id, "--as", target, "--drop-existing", "--run", "dr-2",
            "--commit")
    assert r.code == 8, r.stderr
    assert "shard 1 of 2 has not finished" in r.error_line()
    assert read_rows(client, target) == old  # untouched while a worker is missing

    _workers(store, URL, backup_id, 2, "dr-2", [1], "--as", target, "--drop-existing")
    assert read_rows(client, target) == old  # every worker done: still untouched until the commit
    r = cli("restore", store, URL, "--backup", backup_id, "--as", target, "--drop-existing", "--run", "dr-2",
            "--commit", "--json")
    assert r.code == 0, r.stderr
    c = r.json()
    assert c["state"] == "committed" and c["rows"] == 900 and c["shards"] == 2 and c["missing"] == []
    _assert_identical(client, target, rows, partitions, indexes)
    again = cli("restore", store, URL, "--backup", backup_id, "--as", target, "--run", "dr-2", "--commit")
    assert again.code == 4 and "committed already?" in again.error_line()


def _objects(store: Path, backup_id: str) -> list[DataObject]:
    return list(vecbackup.show(open_store(f"file://{store}"), backup_id).objects)


def test_the_last_of_four_workers_commits_when_all_race_standalone(backed_up):
    client, store, backup_id, rows, partitions, indexes = backed_up
    target = "shard_restore_four"
    done = _workers(store, URL, backup_id, 4, "race-4", [0, 1, 2, 3], "--as", target, "--commit")
    states = sorted(d["commit"]["state"] for d in done)
    assert states.count("committed") == 1, states  # one commit, however the four finished
    assert sum(d["rows"] for d in done) == 900
    committed = next(d["commit"] for d in done if d["commit"]["state"] == "committed")
    assert committed["rows"] == 900 and committed["shards"] == 4
    _assert_identical(client, target, rows, partitions, indexes)


def test_a_worker_that_failed_or_was_killed_is_run_again_and_every_row_is_there_once_standalone(cli, backed_up):
    client, store, backup_id, rows, partitions, indexes = backed_up
    target = "shard_restore_rerun"
    names = run_names(target, "rerun-2", backup_id)
    # worker 0 fails on reading its third object, after inserting the first two
    third = assigned(_objects(store, backup_id), Shard(0, 2))[2].key
    faulty = FaultyStore(open_store(f"file://{store}"))
    faulty.inject("get", lambda: Unreachable("store went away"), match=lambda key: key == third, times=99)
    opts = vecbackup.RestoreOptions(target=target)
    with pytest.raises(Unreachable):
        vecbackup.restore_shard(faulty, URL, backup=backup_id, shard=Shard(0, 2), run="rerun-2", options=opts)
    markers = set(client.list_aliases(collection_name=names.staging)["aliases"])
    assert names.started(Shard(0, 2)) in markers and names.done(Shard(0, 2)) not in markers
    assert not client.has_collection(target)

    # worker 1 is killed (SIGKILL) while it inserts: it has set its started marker and not its done marker
    proc = subprocess.Popen([sys.executable, "-m", "vecbackup", "restore", str(store), URL, "--backup", backup_id,
                             "--as", target, "--shard", "1/2", "--run", "rerun-2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while names.started(Shard(1, 2)) not in set(client.list_aliases(collection_name=names.staging)["aliases"]):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    r = cli("restore", store, URL, "--backup", backup_id, "--as", target, "--run", "rerun-2", "--commit")
    assert r.code == 8, r.stderr  # neither is done
    assert "shards 0, 1 of 2 have not finished" in r.error_line()
    # the re-runs continue: each deletes what its earlier run inserted of an object before inserting it again
    done = _workers(store, URL, backup_id, 2, "rerun-2", [0, 1], "--as", target, "--commit")
    assert sorted(d["commit"]["state"] for d in done) in (["committed", "elsewhere"], ["committed", "waiting"])
    _assert_identical(client, target, rows, partitions, indexes)


def test_workers_on_milvus_lite_and_giving_a_run_up(cli, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=700)
    store = tmp_path / "store"
    finish_json(spawn_cli("backup", f"milvus-lite://{db}", store, "-c", "docs", "--batch-size", "64", "--json"))
    backup_id = cli("list", store, "--json").json()["backups"][0]["backup_id"]
    target = tmp_path / "dst.db"
    url = f"milvus-lite://{target}"
    # Milvus Lite lets one process at a time open its file: the workers run one after the other
    first = _workers(store, url, backup_id, 2, "lite", [0], "--as", "copy", "--commit")[0]
    assert first["commit"]["state"] == "waiting" and first["commit"]["missing"] == [1]
    # a worker of another N is refused before it inserts anything
    code, error = _run("restore", store, url, "--backup", backup_id, "--as", "copy", "--shard", "1/3", "--run", "lite")
    assert code == 2 and "started with 2 workers, not 3" in error
    again = _workers(store, url, backup_id, 2, "lite", [0], "--as", "copy")[0]
    assert again["rows"] == 0 and "already restored" in again["notes"][-1]
    last = _workers(store, url, backup_id, 2, "lite", [1], "--as", "copy", "--commit")[0]
    assert last["commit"]["state"] == "committed" and last["commit"]["rows"] == 700
    assert first["rows"] + last["rows"] == 700

    # a run given up: its staging collection and markers go, the target and everything else stay
    _workers(store, url, backup_id, 2, "given-up", [1], "--as", "copy", "--drop-existing")
    abandoned = finish_json(spawn_cli("restore", store, url, "--backup", backup_id, "--as", "copy", "--run",
                                   "given-up", "--abandon", "--json"))
    assert abandoned["dropped"] == [run_names("copy", "given-up", backup_id).staging]
    code, error = _run("restore", store, url, "--backup", backup_id, "--as", "copy", "--drop-existing", "--run",
                       "given-up", "--commit")
    assert code == 4 and "no restore run given-up" in error

    restored, source = MilvusClient(str(target)), MilvusClient(str(db))
    try:
        assert restored.list_collections() == ["copy"]
        assert read_rows(restored, "copy") == read_rows(source, "docs")
        assert len(read_rows(restored, "copy")) == 700
        assert restored.list_aliases(collection_name="copy").get("aliases", []) == []
    finally:
        restored.close()
        source.close()


def test_a_qdrant_target_is_restored_by_one_process(cli, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=50)
    store = tmp_path / "store"
    assert cli("backup", f"milvus-lite://{db}", store, "-c", "docs").code == 0  # nothing opens db afterwards
    backup_id = cli("list", store, "--json").json()["backups"][0]["backup_id"]
    r = cli("restore", store, f"qdrant-local://{tmp_path / 'q'}", "--backup", backup_id, "--shard", "0/2", "--run",
            "q")
    assert r.code == 9, r.stderr
    assert "cannot be restored into by several workers" in r.error_line()


def _lose_the_race(store: Path, url: str, backup_id: str, target: str, rows: int) -> None:
    """A run whose two workers are done; a worker's commit whose rival renames the staging collection (its claim)
    between this commit's look at it and its listing of the markers: "elsewhere", not an error. A commit on its own
    then finishes the claimed run."""
    from vecbackup.engines.milvus import MilvusEngine
    from vecbackup.ops.restore import RestoreOptions, plan_restore
    from vecbackup.ops.restore_shard import commit_restore
    from vecbackup.urls import parse_milvus_url

    for i in (0, 1):  # one after the other (Milvus Lite: one process at a time)
        _workers(store, url, backup_id, 2, "race", [i], "--as", target)
    manifest = vecbackup.show(str(store), backup_id)
    names = run_names(target, "race", backup_id)
    engine = MilvusEngine(parse_milvus_url(url))
    try:
        listing = engine.markers

        def rival_claims_first(name: str) -> set[str]:
            engine.markers = listing  # type: ignore[method-assign]
            assert engine.claim(names.staging, names.committing)  # the other worker's commit, just now
            return listing(name)

        engine.markers = rival_claims_first  # type: ignore[method-assign]
        plan = plan_restore(manifest, engine, RestoreOptions(target=target))
        result = commit_restore(manifest, engine, plan, "race", worker=True)
        assert result.state == "elsewhere", result
        assert engine.has_collection(names.committing) and not engine.has_collection(target)
    finally:
        engine.close()
    # in this process, which serves a Milvus Lite file now: a commit on its own takes the claimed run over
    done = cli_json("restore", store, url, "--backup", backup_id, "--as", target, "--run", "race", "--commit")
    assert done["state"] == "committed" and done["rows"] == rows, done


def test_a_commit_that_loses_the_race_reports_it_lite(cli, tmp_path):
    """Seen in `make bench` on the 2.3 server: two workers finishing together, each with --commit, and the one that
    lost failed with "list the aliases of ..._vbrun_... failed: collection not found". Milvus Lite lists no markers
    for a missing collection instead of failing: both ways are covered."""
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=300)
    store = tmp_path / "store"
    finish_json(spawn_cli("backup", f"milvus-lite://{db}", store, "-c", "docs", "--batch-size", "64", "--json"))
    backup_id = cli("list", store, "--json").json()["backups"][0]["backup_id"]
    _lose_the_race(store, f"milvus-lite://{tmp_path / 'dst.db'}", backup_id, "copy", 300)


def test_a_commit_that_loses_the_race_reports_it_standalone(backed_up):
    client, store, backup_id, rows, _, _ = backed_up
    try:
        _lose_the_race(store, URL, backup_id, "race_copy", len(rows))
        assert read_rows(client, "race_copy") == rows
    finally:
        client.drop_collection("race_copy")
