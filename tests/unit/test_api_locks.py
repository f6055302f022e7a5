"""vecbackup.locks and vecbackup.unlock: what `vecbackup unlock --list` and `vecbackup unlock [--all]` do, as API
functions (the command line calls them; it no longer reaches into ops/lock.py)."""

from __future__ import annotations

import time
from pathlib import Path

import vecbackup
from vecbackup.ops.lock import acquire


def test_locks_lists_and_unlock_removes_the_stale_ones_then_all(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = vecbackup.open_store(url, create=True)
    assert vecbackup.locks(url) == []
    dead = acquire(store, "backup", exclusive=True, ttl=0.5)
    dead._stop.set()  # a run that died: nobody refreshes its lock any more
    time.sleep(1.0)
    live = acquire(store, "backup", exclusive=False)
    try:
        assert sorted((lk.lock_id, lk.exclusive) for lk in vecbackup.locks(store)) == sorted(
            [(dead.info.lock_id, True), (live.info.lock_id, False)])
        assert [lk.lock_id for lk in vecbackup.unlock(url)] == [dead.info.lock_id]  # the stale one only
        assert [lk.lock_id for lk in vecbackup.locks(url)] == [live.info.lock_id]
        assert [lk.lock_id for lk in vecbackup.unlock(store, all=True)] == [live.info.lock_id]
        assert vecbackup.locks(store) == []
    finally:
        live._stop.set()
