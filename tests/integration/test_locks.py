"""Store locks over every store: a prune, delete or gc never runs alongside a backup."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tests.datasets import build_in_own_process, build_vector_only
from vecbackup.errors import Locked
from vecbackup.ops.lock import LOCKS, acquire, list_locks, locked


def test_shared_locks_coexist_exclusive_ones_do_not(any_store):
    store = any_store.open()
    a = acquire(store, "backup", exclusive=False)
    b = acquire(store, "backup", exclusive=False)  # two backups at once are fine
    with pytest.raises(Locked) as ei:
        acquire(store, "prune", exclusive=True)
    assert ei.value.exit_code == 11 and "shared backup lock" in str(ei.value)
    a.release()
    b.release()
    with locked(store, "prune", exclusive=True):
        with pytest.raises(Locked):
            acquire(store, "backup", exclusive=False)
        with pytest.raises(Locked):
            acquire(store, "gc", exclusive=True)
    assert list_locks(store) == []  # released locks leave nothing behind


def test_waiting_for_a_lock(any_store):
    store = any_store.open()
    held = acquire(store, "backup", exclusive=False)
    threading.Timer(1.0, held.release).start()
    t0 = time.monotonic()
    with locked(store, "gc", exclusive=True, wait=30):
        assert time.monotonic() - t0 >= 0.9
    assert list_locks(store) == []


def test_stale_lock_is_ignored_and_unlock_removes_it(cli, any_store):
    store = any_store.open()
    lock = acquire(store, "backup", exclusive=True, ttl=0.5)
    lock._stop.set()  # a run that died: nobody refreshes its lock any more
    time.sleep(1.0)
    with locked(store, "gc", exclusive=True):  # the stale lock does not block
        pass
    listed = cli("unlock", any_store.url, "--list", "--json")
    assert len(listed.json()["locks"]) == 1
    r = cli("unlock", any_store.url, "--json")
    assert r.code == 0 and len(r.json()["removed"]) == 1
    assert list(store.list(LOCKS)) == []


def test_live_lock_is_refreshed(any_store):
    store = any_store.open()
    lock = acquire(store, "backup", exclusive=False, ttl=0.9)
    first = lock.info.expires_at
    time.sleep(1.5)  # three refreshes at ttl/3
    assert list_locks(store)[0].expires_at > first
    with pytest.raises(Locked):
        acquire(store, "prune", exclusive=True)
    lock._stop.set()
    lock._thread.join()
    # each refresh wrote a new lock object and removed the previous one: no lock object is ever rewritten
    (current,) = list_locks(store)
    assert current.generation >= 2 and current == lock.info
    assert [i.key for i in store.list(LOCKS)] == [lock.info.key] != [f"{LOCKS}{lock.info.lock_id}.json"]
    lock.release()
    assert list(store.list(LOCKS)) == []


def test_cli_commands_respect_locks(cli, lite, any_store):
    name = lite.new_name("lk")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=50)
    r = cli("backup", lite.url, any_store.url, "-c", name, "--json")
    assert r.code == 0, r.stderr
    backup_id = r.json()["backups"][0]["backup_id"]
    store = any_store.open()
    held = acquire(store, "backup", exclusive=False)  # a backup is running
    for args in (["delete", any_store.url, backup_id], ["gc", any_store.url, "--min-age", "0"]):
        r = cli(*args)
        assert r.code == 11, r.stderr
        assert "locked" in r.stderr and "--lock-wait" in r.stderr
    assert cli("gc", any_store.url, "--dry-run").code == 0  # reading needs no lock
    assert cli("verify", any_store.url).code == 0
    r = cli("backup", lite.url, any_store.url, "-c", name)  # another backup may run alongside
    assert r.code == 0, r.stderr
    held.release()
    exclusive = acquire(store, "prune", exclusive=True)
    r = cli("backup", lite.url, any_store.url, "-c", name, "--lock-wait", "0.5")
    assert r.code == 11
    exclusive.release()
    assert cli("delete", any_store.url, backup_id).code == 0


def _start_backup(args: list[str]) -> subprocess.Popen[str]:
    """A backup process, returned once it holds its lock and is reading (its progress line is out)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and not line.startswith("backup big"):  # warnings may come first
        line = proc.stderr.readline()
    assert line.startswith("backup big")
    return proc


def test_gc_during_a_real_backup_exits_locked_and_the_backup_completes(cli, tmp_path):
    store_dir = tmp_path / "store"
    db = tmp_path / "own.db"
    build_in_own_process(db, "big", n=4000)
    proc = _start_backup([sys.executable, "-m", "vecbackup", "backup", f"milvus-lite://{db}", str(store_dir),
                          "-c", "big", "--batch-size", "10"])
    r = cli("gc", store_dir, "--min-age", "0", "--json")
    assert r.code == 11, r.stderr
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    backup_id = cli("list", store_dir, "--json").json()["backups"][0]["backup_id"]
    assert cli("verify", store_dir, backup_id).code == 0
    assert cli("gc", store_dir, "--min-age", "0", "--json").json()["deleted"] == 0


def test_prune_waits_for_or_refuses_a_running_backup(cli, any_store):
    store = any_store.open()
    held = acquire(store, "backup", exclusive=False)
    r = cli("prune", any_store.url, "--keep-last", "1")
    assert r.code == 11, r.stderr
    assert cli("prune", any_store.url, "--keep-last", "1", "--dry-run").code == 0  # reads only
    threading.Timer(1.0, held.release).start()
    r = cli("prune", any_store.url, "--keep-last", "1", "--lock-wait", "30", "--json")
    assert r.code == 0, r.stderr


def test_prune_during_a_real_backup_exits_locked_and_the_backup_completes(cli, tmp_path):
    """A prune started while a real backup runs exits 11 (or, given --lock-wait, waits), and the backup
    completes and verifies."""
    store_dir = tmp_path / "store"
    db = tmp_path / "own.db"
    build_in_own_process(db, "big", n=4000)
    backup = [sys.executable, "-m", "vecbackup", "backup", f"milvus-lite://{db}", str(store_dir), "-c", "big",
              "--batch-size", "10"]
    subprocess.run(backup, check=True, capture_output=True)  # an earlier backup for prune to consider
    proc = _start_backup(backup)
    r = cli("prune", store_dir, "--keep-last", "1", "--json")
    assert r.code == 11, r.stderr
    waiting = cli("prune", store_dir, "--keep-last", "1", "--lock-wait", "300", "--json")  # waits for the backup
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert waiting.code == 0, waiting.stderr
    listed = cli("list", store_dir, "--json").json()["backups"]
    assert len(listed) == 1  # the prune ran after the second backup committed, and kept only it
    assert cli("verify", store_dir, listed[0]["backup_id"]).code == 0
