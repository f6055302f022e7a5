"""The columnar insert against the real engines: a restore that inserts columns (engines/milvus/inserts.py) and one
that inserts rows through pymilvus (`?columnar=off`) give the same collection, every row and field, for every type
each engine holds; a chunk the columnar insert does not fit goes row by row and the restore says so."""

from __future__ import annotations

from typing import Any

import pytest

import vecbackup
from tests.datasets import build_rich, build_vector_only, read_keys, read_rows
from vecbackup.engines.milvus import inserts


def _restore(engine: Any, store: str, backup_id: str, target: str, *, columnar: bool) -> Any:
    url = engine.url + ("" if columnar else ("&" if "?" in engine.url else "?") + "columnar=off")
    return vecbackup.restore(store, url, backup=backup_id, options=vecbackup.RestoreOptions(target=target))


def test_columns_and_rows_restore_the_same_collection(engine, tmp_path):
    kinds = [("rich", lambda n: build_rich(engine.client, n, engine.kind, n=700))]
    if not engine.lite:  # (binary vectors go the same way: one bytes buffer, as test_roundtrip restores them)
        kinds += [("f16", lambda n: build_vector_only(engine.client, n, "FLOAT16_VECTOR", n=400, pk_varchar=True))]
    store = f"file://{tmp_path / 'store'}"
    for label, build in kinds:
        name = engine.new_name(label)
        build(name)
        run = vecbackup.backup(engine.url, store, [name], options=vecbackup.BackupOptions(batch_size=100))
        run.raise_for_failures()
        backup_id = run.results[0].backup_id
        source = read_rows(engine.client, name)
        fast, slow = engine.new_name(f"{label}_cols"), engine.new_name(f"{label}_rows")
        r = _restore(engine, store, backup_id, fast, columnar=True)
        assert not any("row by row" in n for n in r.notes), r.notes
        _restore(engine, store, backup_id, slow, columnar=False)
        assert read_rows(engine.client, fast) == source == read_rows(engine.client, slow), label
        for p in engine.client.list_partitions(name):
            assert read_keys(engine.client, fast, p) == read_keys(engine.client, name, p)


def test_a_chunk_that_does_not_fit_goes_row_by_row(lite, tmp_path, monkeypatch: pytest.MonkeyPatch):
    name = lite.new_name("fb")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=300)
    store = f"file://{tmp_path / 'store'}"
    run = vecbackup.backup(lite.url, store, [name], options=vecbackup.BackupOptions(batch_size=100))

    def unfit(*args: Any, **kwargs: Any) -> Any:
        raise inserts.Unfit("injected: a type the columnar insert does not know")

    monkeypatch.setattr("vecbackup.engines.milvus.sink.insert_request", unfit)
    copy = lite.new_name("copy")
    r = _restore(lite, store, run.results[0].backup_id, copy, columnar=True)
    assert read_rows(lite.client, copy) == read_rows(lite.client, name)
    assert [n for n in r.notes if "inserted row by row" in n] == [
        "inserted row by row: the columnar insert does not fit (injected: a type the columnar insert does not know)"]
