"""The columnar read against the real engines: the same data objects, byte for byte (same SHA-256 keys), as the row
path through pymilvus's query_iterator, for every type each engine holds; and where the columnar path does not fit,
the row path takes over before anything is read and the backup says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vecbackup
from tests.datasets import build_rich, build_vector_only
from vecbackup.engines.milvus import columnar


def _objects(engine: Any, store: Path, name: str, *, use_columnar: bool) -> tuple[list[str], tuple[str, ...]]:
    e = vecbackup.connect(engine.url)
    e.columnar = use_columnar
    try:
        run = vecbackup.backup(e, f"file://{store}", [name], options=vecbackup.BackupOptions(batch_size=70))
    finally:
        e.close()
    run.raise_for_failures()
    m = vecbackup.show(f"file://{store}", run.results[0].backup_id)
    return [o.key for o in m.objects], m.notes


def test_columnar_and_row_paths_write_identical_objects(engine, tmp_path):
    kinds = [("rich", lambda n: build_rich(engine.client, n, engine.kind, n=1000))]
    if not engine.lite:  # types Milvus Lite does not have
        # float16 in one insert: Milvus 2.3.5's query node panics ("unsupported data type: Float16Vector") when a
        # second insert reaches a loaded collection's growing segment
        kinds += [("f16", lambda n: build_vector_only(engine.client, n, "FLOAT16_VECTOR", n=400, pk_varchar=True)),
                  ("bin", lambda n: build_vector_only(engine.client, n, "BINARY_VECTOR", n=700))]
    for label, build in kinds:
        name = engine.new_name(label)
        build(name)
        fast, notes = _objects(engine, tmp_path / f"{label}-columnar", name, use_columnar=True)
        slow, _ = _objects(engine, tmp_path / f"{label}-rows", name, use_columnar=False)
        assert len(fast) >= 5 and fast == slow, label
        assert not any("row by row" in n for n in notes)


def test_an_answer_that_does_not_fit_falls_back_to_the_row_path(lite, tmp_path, monkeypatch: pytest.MonkeyPatch):
    name = lite.new_name("fb")
    build_vector_only(lite.client, name, "FLOAT_VECTOR", n=400)
    expected, _ = _objects(lite, tmp_path / "rows", name, use_columnar=False)

    def unfit(self: Any, partition: str) -> Any:
        raise columnar.Unfit("injected: a page not in primary-key order")
        yield  # a generator, like the real one

    monkeypatch.setattr(columnar.ColumnarReader, "chunks", unfit)
    got, notes = _objects(lite, tmp_path / "fallback", name, use_columnar=True)
    assert got == expected
    assert any("read row by row: the columnar read does not fit (injected" in n for n in notes), notes


def test_columnar_and_parallel_backups_restore_identical_to_the_row_path(engine, tmp_path):
    """The row path, the columnar path and `--parallel 2` (two streams, by primary key) back up the same
    collection: the first two write the same objects, and the parallel backup (other chunks: each stream cuts its
    own) restores to every row and field of the source, partitions included."""
    from tests.datasets import read_keys, read_rows

    name = engine.new_name("par")
    build_rich(engine.client, name, engine.kind, n=1000)
    source = read_rows(engine.client, name)
    partitions = list(engine.client.list_partitions(name))
    assert len(partitions) >= 2
    store = f"file://{tmp_path / 'store'}"
    keys = {}
    for label, use_columnar, parallel in (("rows", False, 1), ("columns", True, 1), ("parallel", True, 2)):
        e = vecbackup.connect(engine.url)
        e.columnar = use_columnar
        try:
            run = vecbackup.backup(e, store, [name], options=vecbackup.BackupOptions(batch_size=64, parallel=parallel))
        finally:
            e.close()
        run.raise_for_failures()
        assert run.results[0].rows == 1000
        manifest = vecbackup.show(store, run.results[0].backup_id)
        assert not any("stream" in n or "row by row" in n for n in manifest.notes), manifest.notes
        keys[label] = ([o.key for o in manifest.objects], run.results[0].backup_id)
    assert keys["rows"][0] == keys["columns"][0]
    again = vecbackup.backup(engine.url, store, [name], options=vecbackup.BackupOptions(batch_size=64, parallel=2))
    assert again.results[0].bytes_uploaded == 0  # the streams cut the same chunks every time
    assert [o.key for o in vecbackup.show(store, again.results[0].backup_id).objects] == keys["parallel"][0]
    copy = engine.new_name("copy")
    vecbackup.restore(store, engine.url, backup=keys["parallel"][1], options=vecbackup.RestoreOptions(target=copy))
    assert read_rows(engine.client, copy) == source
    for p in partitions:
        assert read_keys(engine.client, copy, p) == read_keys(engine.client, name, p), p


def test_parallel_and_sharded_reads_are_complete_over_many_segments(engine, tmp_path):
    """Rows spread over several sealed segments and a growing one (a flush after each insert, and one insert
    after the last flush): the plain columnar read, every stream of `--parallel 3` and every shard get all of their
    rows. (A fetch by key must not stop at the first segment that runs out, as an iterator page may: on the 2.3
    server that lost 72 of 6,000 rows.)"""
    import numpy as np
    from pymilvus import DataType, MilvusClient

    from tests.datasets import read_rows

    name = engine.new_name("segs")
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=64)
    ip = engine.client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    engine.client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
    rng = np.random.default_rng(9)
    keys = rng.permutation(6000)  # each segment holds keys from all over the range
    for part in np.array_split(keys, 4):
        engine.client.insert(name, [{"pk": int(k), "v": rng.normal(size=64).astype(np.float32).tolist(),
                                     "extra": int(k) % 7} for k in part])
        if len(part) and part[0] != np.array_split(keys, 4)[-1][0]:
            engine.client.flush(name)
    source = read_rows(engine.client, name)
    assert len(source) == 6000
    store = f"file://{tmp_path / 'store'}"
    plain = vecbackup.backup(engine.url, store, [name], options=vecbackup.BackupOptions(batch_size=500))
    assert plain.results[0].rows == 6000  # the columnar pages (pk > last) over the same segments
    run = vecbackup.backup(engine.url, store, [name], options=vecbackup.BackupOptions(batch_size=500, parallel=3))
    run.raise_for_failures()
    assert run.results[0].rows == 6000
    for i in range(2):
        shard = vecbackup.backup(engine.url, store, [name], options=vecbackup.BackupOptions(
            batch_size=700, shard=vecbackup.Shard(i, 2), run="segs"))
        shard.raise_for_failures()
    committed = vecbackup.commit(store, name, "segs")
    assert committed.rows == 6000
    for backup_id in (run.results[0].backup_id, committed.backup_id):
        copy = engine.new_name("copy")
        vecbackup.restore(store, engine.url, backup=backup_id, options=vecbackup.RestoreOptions(target=copy))
        assert read_rows(engine.client, copy) == source
