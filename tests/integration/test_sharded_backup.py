"""Sharded backups against the real engines: n separate `vecbackup backup --shard I/N --run RUN` processes, joined
by `vecbackup commit` into one backup that restores identical to an unsharded backup of the same collection;
commit refuses while a shard is missing; a killed shard's re-run completes; gc and delete keep what a run not yet
committed wrote; --commit lets the last worker commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

from tests.datasets import build_in_own_process, build_rich, read_keys, read_rows
from tests.integration.common import STANDALONE_URL, finish_json, spawn_cli

SHARDS = (2, 4)


def _shards(url: str, store: Path, name: str, n: int, run: str, *, together: bool, only: list[int] | None = None,
            extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Back up shards ``only`` (default all) of ``n``, one process each: at once (``together``) or one after the
    other (Milvus Lite lets one process at a time open its file)."""
    args = [("backup", url, store, "-c", name, "--shard", f"{i}/{n}", "--run", run, "--batch-size", "64", "--json",
             *extra) for i in (range(n) if only is None else only)]
    if together:
        procs = [spawn_cli(*a) for a in args]
        return [finish_json(p) for p in procs]
    return [finish_json(spawn_cli(*a)) for a in args]


def _records(store: Path) -> list[Path]:
    return sorted(p for p in store.glob("shards/**/*.json") if p.name != "closed.json")


def _data(store: Path) -> set[Path]:
    return set(store.glob("data/*/*.vbc"))


@pytest.fixture(scope="module")
def rich_on_server(standalone: Any) -> Iterator[tuple[Any, str, dict[Any, Any], dict[str, set[Any]]]]:
    """build_rich (900 rows) on the standalone server, once for both shard counts (they only read it): the client,
    its name, every row and the keys of partitions _default and p1."""
    client = MilvusClient(standalone.uri)
    name = "sharded_src"
    if client.has_collection(name):
        client.drop_collection(name)
    build_rich(client, name, "standalone", n=900)
    yield client, name, read_rows(client, name), {p: read_keys(client, name, p) for p in ("_default", "p1")}
    client.drop_collection(name)
    client.close()


@pytest.mark.parametrize("n", SHARDS)
def test_shards_commit_into_one_backup_identical_to_an_unsharded_one_standalone(cli, rich_on_server, store_dir, n):
    client, name, source_rows, source_keys = rich_on_server
    url = STANDALONE_URL
    run = f"nightly-{n}"
    done = _shards(url, store_dir, name, n, run, together=True, only=list(range(n - 1)))
    assert [d["backups"][0]["shard"] for d in done] == [f"{i}/{n}" for i in range(n - 1)]
    # a shard missing: commit refuses, names it, and there is no backup
    r = cli("commit", store_dir, "-c", name, "--run", run)
    assert r.code == 8, r.stderr
    assert f"shard {n - 1}/{n} missing ({n - 1} of {n} present)" in r.stderr
    assert cli("list", store_dir, "--json").json()["backups"] == []
    assert cli("restore", store_dir, url, "-c", name, "--as", f"{name}_x").code == 4
    _shards(url, store_dir, name, n, run, together=True, only=[n - 1])
    shard_rows = sum(d["backups"][0]["rows"] for d in done) if done else 0
    assert 0 < shard_rows < 900

    r = cli("commit", store_dir, "-c", name, "--run", run, "--json")
    assert r.code == 0, r.stderr
    c = r.json()
    assert c["committed"] and not c["already"] and c["rows"] == 900 and c["missing"] == []
    assert _records(store_dir) == []  # the records are gone once the manifest is written
    again = cli("commit", store_dir, "-c", name, "--run", run, "--json")  # committing twice finds the backup
    assert again.code == 0 and again.json()["already"] and again.json()["backup_id"] == c["backup_id"]

    assert [b["backup_id"] for b in cli("list", store_dir, "--json").json()["backups"]] == [c["backup_id"]]
    assert cli("verify", store_dir, c["backup_id"], "--read-data").code == 0
    # (that it equals an unsharded backup of the same rows: test_shards_on_milvus_lite_... below)
    copy = f"{name}_sharded_{n}"
    r = cli("restore", store_dir, url, "--backup", c["backup_id"], "--as", copy, "--json")
    assert r.code == 0, r.stderr
    assert read_rows(client, copy) == source_rows
    for p in ("_default", "p1"):
        assert read_keys(client, copy, p) == source_keys[p]
    client.drop_collection(copy)


def test_shards_on_milvus_lite_restore_identical_to_an_unsharded_backup(cli, store_dir, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=700)
    url = f"milvus-lite://{db}"
    for n in SHARDS:
        _shards(url, store_dir, "docs", n, f"lite-{n}", together=False)
        assert cli("commit", store_dir, "-c", "docs", "--run", f"lite-{n}").code == 0
    finish_json(spawn_cli("backup", url, store_dir, "-c", "docs", "--batch-size", "64", "--json"))
    backups = cli("list", store_dir, "--json").json()["backups"]
    assert len(backups) == 3 and all(b["rows"] == 700 for b in backups)
    target = tmp_path / "dst.db"
    copies = []
    for i, b in enumerate(backups):
        r = cli("restore", store_dir, f"milvus-lite://{target}", "--backup", b["backup_id"], "--as", f"copy{i}")
        assert r.code == 0, r.stderr
        copies.append(f"copy{i}")
    client = MilvusClient(str(target))
    rows = [read_rows(client, c) for c in copies]
    assert len(rows[0]) == 700 and rows[0] == rows[1] == rows[2]


def test_a_killed_shard_rerun_completes(cli, store_dir, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=3000)
    url = f"milvus-lite://{db}"
    _shards(url, store_dir, "docs", 2, "k", together=False, only=[1])
    before = _data(store_dir)
    proc = spawn_cli("backup", url, store_dir, "-c", "docs", "--shard", "0/2", "--run", "k", "--batch-size", "10")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_data(store_dir) - before) < 3:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert len(_data(store_dir) - before) >= 3  # it had written data when it died
    assert len(_records(store_dir)) == 1  # ...but no record: the shard does not exist
    r = cli("commit", store_dir, "-c", "docs", "--run", "k")
    assert r.code == 8 and "shard 0/2 missing" in r.stderr
    _shards(url, store_dir, "docs", 2, "k", together=False, only=[0], extra=("--commit",))  # the re-run commits
    backups = cli("list", store_dir, "--json").json()["backups"]
    assert len(backups) == 1 and backups[0]["rows"] == 3000
    finish_json(spawn_cli("backup", url, store_dir, "-c", "docs", "--batch-size", "500", "--json"))
    target = tmp_path / "dst.db"
    for name, b in zip(("sharded", "plain"), cli("list", store_dir, "--json").json()["backups"], strict=True):
        r = cli("restore", store_dir, f"milvus-lite://{target}", "--backup", b["backup_id"], "--as", name)
        assert r.code == 0, r.stderr
    client = MilvusClient(str(target))
    assert len(read_rows(client, "sharded")) == 3000
    assert read_rows(client, "sharded") == read_rows(client, "plain")


def test_gc_and_delete_keep_what_an_uncommitted_run_wrote(cli, store_dir, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=400)
    url = f"milvus-lite://{db}"
    finish_json(spawn_cli("backup", url, store_dir, "-c", "docs", "--batch-size", "64", "--json"))
    first = cli("list", store_dir, "--json").json()["backups"][0]["backup_id"]
    objects = _data(store_dir)
    # one shard of one holds the same rows in the same order: the same chunks, so the run only reuses objects
    # that the first backup references too
    _shards(url, store_dir, "docs", 1, "r1", together=False)
    assert _data(store_dir) == objects and len(_records(store_dir)) == 1
    r = cli("delete", store_dir, first, "--json")
    assert r.code == 0 and r.json()["objects_deleted"] == 0, r.stdout  # the pending run still uses them
    r = cli("gc", store_dir, "--min-age", "0", "--json")
    assert r.code == 0 and r.json()["deleted"] == 0, r.stdout
    assert _data(store_dir) == objects
    r = cli("commit", store_dir, "-c", "docs", "--run", "r1", "--json")
    assert r.code == 0, r.stderr
    assert cli("verify", store_dir, r.json()["backup_id"], "--read-data").code == 0
    # a run given up: its records go, and gc then collects its data (--full: new chunks, not the reused rows)
    _shards(url, store_dir, "docs", 3, "r2", together=False, only=[0], extra=("--full",))
    assert _data(store_dir) > objects
    assert cli("commit", store_dir, "-c", "docs", "--run", "r2", "--abandon").code == 0
    assert _records(store_dir) == []
    assert cli("gc", store_dir, "--min-age", "0").code == 0
    assert _data(store_dir) == objects
    assert cli("delete", store_dir, r.json()["backup_id"]).code == 0
    assert _data(store_dir) == set() and not list(store_dir.glob("digests/*/*.vbd"))


def test_the_last_worker_commits_with_commit_flag(cli, store_dir, tmp_path):
    db = tmp_path / "src.db"
    build_in_own_process(db, "docs", n=300)
    url = f"milvus-lite://{db}"
    docs = _shards(url, store_dir, "docs", 3, "auto", together=False, extra=("--commit",))
    commits = [d["backups"][0]["commit"] for d in docs]
    assert [c["committed"] for c in commits] == [False, False, True]
    assert commits[0]["missing"] == [1, 2] and commits[1]["missing"] == [2]
    backups = cli("list", store_dir, "--json").json()["backups"]
    assert [b["backup_id"] for b in backups] == [commits[2]["backup_id"]] and backups[0]["rows"] == 300


def test_bad_shard_options(cli, store_dir, tmp_path):
    url = f"milvus-lite://{tmp_path / 'x.db'}"
    for args, message in [(("--shard", "2/2", "--run", "r"), "out of range"),
                          (("--shard", "0/2"), "--shard needs --run"),
                          (("--run", "r"), "--run needs --shard"),
                          (("--shard", "0/2", "--run", "../x"), "not a valid run id"),
                          (("--commit",), "--commit needs --shard")]:
        r = cli("backup", url, store_dir, "-c", "docs", *args)
        assert r.code == 2 and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not store_dir.exists() or not any(store_dir.rglob("*.json"))
