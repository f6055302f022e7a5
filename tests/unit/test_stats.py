"""Store statistics (vecbackup.ops.stats): the pure planner on hand-built manifests and listings, and
collect_stats on a folder store, where a backup's unique bytes must be exactly what deleting it frees."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbackup.errors import NotFound
from vecbackup.format import layout
from vecbackup.format.manifest import DataObject, Incremental, Manifest, SourceInfo
from vecbackup.format.shard import SHARDS
from vecbackup.ops.delete import delete_backup
from vecbackup.ops.stats import collect_stats, store_stats
from vecbackup.schema import CollectionSpec, Field, FieldType
from vecbackup.stores.base import ObjectInfo
from vecbackup.stores.local import LocalStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def key(name: str) -> str:
    return layout.data_key(sha(name))


def obj(name: str, size: int, rows: int = 10, select: tuple[tuple[int, int], ...] | None = None) -> DataObject:
    held = rows if select is None else sum(n for _, n in select)
    return DataObject(key(name), "_default", held, size, sha(name), select)


def manifest(n: int, collection: str, *objects: DataObject, new_bytes: int | None = None) -> Manifest:
    backup_id = layout.new_backup_id(T0 + timedelta(hours=n))
    spec = CollectionSpec(collection, (Field("id", FieldType.INT64, is_primary=True),))
    return Manifest(backup_id=backup_id, collection=spec, source=SourceInfo("milvus", "2.4", "milvus://x"),
                    objects=objects, partition_rows={"_default": sum(o.rows for o in objects)},
                    started_at=f"2026-01-01T{n:02d}:00:00Z", completed_at=f"2026-01-01T{n:02d}:00:01Z",
                    tool_version="test",
                    incremental=None if new_bytes is None else Incremental(None, 1, new_bytes, 0))


def listing(*entries: tuple[str, int, int], manifests: dict[str, int] | None = None) -> list[ObjectInfo]:
    """Data objects (name, size, digests size; digests size 0: no digests object) and manifest keys -> size."""
    out = []
    for name, size, dsize in entries:
        out.append(ObjectInfo(key(name), size, 0.0))
        if dsize:
            out.append(ObjectInfo(layout.digests_key(sha(name)), dsize, 0.0))
    out += [ObjectInfo(k, s, 0.0) for k, s in (manifests or {}).items()]
    return out


def by_id(stats):
    return {b.backup_id: b for b in stats.backups}


def test_shared_objects_are_unique_to_nobody():
    a = manifest(1, "c", obj("x", 100), obj("y", 200), new_bytes=330)
    b = manifest(2, "c", obj("y", 200), obj("z", 50), new_bytes=55)
    s = store_stats([a, b], [], listing(("x", 100, 10), ("y", 200, 20), ("z", 50, 5)))
    got = by_id(s)
    assert got[a.backup_id].unique_bytes == 110 and got[a.backup_id].unique_objects == 1
    assert got[b.backup_id].unique_bytes == 55 and got[b.backup_id].unique_objects == 1
    assert got[a.backup_id].referenced_bytes == 300 and got[b.backup_id].referenced_bytes == 250
    assert got[a.backup_id].uploaded_bytes == 330 and got[b.backup_id].uploaded_bytes == 55
    assert (s.data_bytes, s.digests_bytes, s.manifests_bytes, s.data_objects) == (350, 35, 0, 3)
    assert s.total_bytes == 385
    assert s.referenced_bytes == 550 and s.referenced_stored_bytes == 350
    assert s.dedup_ratio == pytest.approx(550 / 350)
    assert s.unreferenced_bytes == 0 and s.unreferenced_objects == 0 and s.missing_objects == 0


def test_selected_rows_still_hold_the_whole_object():
    """A backup that uses some rows of an object keeps all of it: the object is not unique to the other one, and
    each backup's size counts it whole."""
    a = manifest(1, "c", obj("x", 1000, rows=100))
    b = manifest(2, "c", obj("x", 1000, rows=100, select=((0, 40), (60, 40))), obj("new", 30, rows=20))
    s = store_stats([a, b], [], listing(("x", 1000, 80), ("new", 30, 16)))
    got = by_id(s)
    assert got[a.backup_id].unique_bytes == 0 and got[a.backup_id].unique_objects == 0
    assert got[b.backup_id].unique_bytes == 46
    assert got[b.backup_id].rows == 100 and got[b.backup_id].referenced_bytes == 1030
    assert s.dedup_ratio == pytest.approx(2030 / 1030)


def test_an_object_listed_twice_by_one_backup_is_still_unique_to_it():
    a = manifest(1, "c", obj("x", 100, rows=10, select=((0, 3),)), obj("x", 100, rows=10, select=((2, 5),)))
    s = store_stats([a], [], listing(("x", 100, 10)))
    assert s.backups[0].unique_bytes == 110 and s.backups[0].unique_objects == 1
    assert s.referenced_stored_bytes == 100 and s.referenced_bytes == 200


def test_collection_lists_its_backups_but_uniqueness_is_store_wide():
    a = manifest(1, "articles", obj("shared", 100), obj("mine", 40))
    b = manifest(2, "users", obj("shared", 100), obj("theirs", 60))
    listed = listing(("shared", 100, 0), ("mine", 40, 4), ("theirs", 60, 6),
                     manifests={layout.manifest_key("articles", a.backup_id): 7,
                                layout.manifest_key("users", b.backup_id): 9})
    s = store_stats([a, b], [], listed, collection="articles")
    assert [x.backup_id for x in s.backups] == [a.backup_id]
    assert s.backups[0].unique_bytes == 44  # "shared" is the users backup's too
    assert s.referenced_bytes == 140 and s.referenced_stored_bytes == 140 and s.dedup_ratio == 1.0
    # the store's totals stay store-wide
    assert (s.data_bytes, s.digests_bytes, s.manifests_bytes, s.total_bytes) == (200, 10, 16, 226)
    alone = store_stats([a], [], listed, collection="articles")
    assert alone.backups[0].unique_bytes == 144


def test_pending_shard_records_keep_their_objects():
    a = manifest(1, "c", obj("x", 100), obj("y", 200))
    record = manifest(2, "c", obj("y", 200), obj("z", 10))  # a shard of a run not committed yet
    records = [ObjectInfo(f"{SHARDS}c/run-1/0-of-2.json", 33, 0.0)]
    s = store_stats([a], [record], listing(("x", 100, 1), ("y", 200, 2), ("z", 10, 3)) + records)
    assert s.backups[0].unique_bytes == 101  # "y" is the record's too
    assert s.unreferenced_bytes == 0  # "z" is the record's: not garbage
    assert s.pending_records == 1 and s.shard_records_bytes == 33 and s.total_bytes == 316 + 33
    assert s.referenced_bytes == 300 and s.referenced_stored_bytes == 300  # records are not backups


def test_garbage_is_unreferenced_data_and_orphan_digests():
    a = manifest(1, "c", obj("x", 100))
    orphan_digests = ObjectInfo(layout.digests_key(sha("gone")), 7, 0.0)
    s = store_stats([a], [], [*listing(("x", 100, 10), ("left", 500, 50)), orphan_digests])
    assert s.unreferenced_bytes == 557 and s.unreferenced_objects == 3
    assert s.data_objects == 2 and s.data_bytes == 600 and s.digests_bytes == 67
    assert s.backups[0].unique_bytes == 110
    assert s.referenced_stored_bytes == 100  # the ratio counts only objects the backups use
    assert s.dedup_ratio == 1.0


def test_missing_objects_are_counted_and_free_nothing():
    a = manifest(1, "c", obj("x", 100), obj("lost", 70))
    s = store_stats([a], [], listing(("x", 100, 10)))
    assert s.missing_objects == 1
    assert s.backups[0].unique_bytes == 110 and s.backups[0].unique_objects == 2
    assert s.referenced_bytes == 170 and s.referenced_stored_bytes == 100


def test_unreadable_manifests_make_uniqueness_unknown():
    a = manifest(1, "c", obj("x", 100))
    s = store_stats([a], [], listing(("x", 100, 10), ("y", 5, 0)), unreadable=["manifests/c/bad.json: not JSON"])
    assert s.backups[0].unique_bytes is None and s.backups[0].unique_objects is None
    assert s.unreferenced_bytes is None and s.unreferenced_objects is None
    assert s.total_bytes == 115 and s.dedup_ratio == 1.0
    assert s.to_dict()["unreadable"] == ["manifests/c/bad.json: not JSON"]


def test_empty_store():
    s = store_stats([], [], [])
    assert s.backups == [] and s.total_bytes == 0 and s.dedup_ratio is None
    d = s.to_dict()
    assert d["dedup_ratio"] is None and d["backups"] == [] and d["total_bytes"] == 0


def test_other_keys_are_not_counted():
    listed = [ObjectInfo("locks/abc.json", 99, 0.0), ObjectInfo("README", 5, 0.0),
              ObjectInfo("data/zz/not-a-sha.vbc", 3, 0.0)]
    s = store_stats([], [], listed)
    assert s.total_bytes == 3 and s.data_bytes == 3 and s.data_objects == 0  # data/ counts; locks do not
    assert s.unreferenced_objects == 0  # gc ignores what is not a data or digests key, and so does this


def test_to_dict():
    a = manifest(1, "c", obj("x", 100), new_bytes=110)
    d = store_stats([a], [], listing(("x", 100, 10), ("y", 1, 0))).to_dict()
    assert d["total_bytes"] == 111 and d["data_bytes"] == 101 and d["digests_bytes"] == 10
    assert d["unreferenced_bytes"] == 1 and d["dedup_ratio"] == 1.0 and d["collection"] is None
    assert d["backups"] == [{"backup_id": a.backup_id, "collection": "c", "completed_at": a.completed_at,
                             "rows": 10, "objects": 1, "referenced_bytes": 100, "uploaded_bytes": 110,
                             "unique_bytes": 110, "unique_objects": 1}]


# -- on a folder store: unique bytes are what delete frees -------------------------------------------------------


def _write(store: LocalStore, m: Manifest, digests: dict[str, int]) -> None:
    for o in m.objects:
        store.put(o.key, b"d" * o.size)
        if digests.get(o.sha256):
            store.put(layout.digests_key(o.sha256), b"g" * digests[o.sha256])
    store.put(layout.manifest_key(m.collection.name, m.backup_id), m.to_json())


def _folder_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and "locks" not in f.parts)


OBJECT_SIZES = [100, 230, 57, 1000, 4]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uses=st.lists(st.sets(st.integers(0, len(OBJECT_SIZES) - 1), min_size=1), min_size=1, max_size=4),
       collections=st.lists(st.sampled_from(["a", "b"]), min_size=4, max_size=4),
       victim=st.integers(0, 3))
def test_unique_bytes_are_what_delete_frees(tmp_path_factory, uses, collections, victim):
    root = tmp_path_factory.mktemp("store")
    store = LocalStore(root)
    names = [f"o{i}" for i in range(len(OBJECT_SIZES))]
    digests = {sha(n): 3 + i for i, n in enumerate(names) if i % 2 == 0}  # some objects have no digests
    manifests = [manifest(i, collections[i], *(obj(names[j], OBJECT_SIZES[j]) for j in sorted(u)))
                 for i, u in enumerate(uses)]
    for m in manifests:
        _write(store, m, digests)
    s = collect_stats(store)
    assert s.total_bytes == _folder_bytes(root)
    assert s.store == store.display
    target = manifests[victim % len(manifests)]
    expected = by_id(s)[target.backup_id]
    data_before = _folder_bytes(root) - s.manifests_bytes
    r = delete_backup(store, target)
    after = collect_stats(store)
    assert data_before - (after.data_bytes + after.digests_bytes) == expected.unique_bytes
    assert r.objects_deleted == expected.unique_objects
    assert r.bytes_freed == expected.unique_bytes  # data objects and their digests


def test_collect_stats_reports_unreadable_manifests(tmp_path):
    store = LocalStore(tmp_path)
    a = manifest(1, "c", obj("x", 100))
    _write(store, a, {})
    bad = layout.manifest_key("c", layout.new_backup_id(T0 + timedelta(hours=5)))
    store.put(bad, b"{not json")
    s = collect_stats(store)
    assert len(s.unreadable) == 1 and bad in s.unreadable[0]
    assert [b.backup_id for b in s.backups] == [a.backup_id]
    assert s.backups[0].unique_bytes is None and s.unreferenced_bytes is None
    assert s.total_bytes == _folder_bytes(tmp_path)


def test_collect_stats_of_a_missing_folder_is_not_found(tmp_path):
    import vecbackup

    with pytest.raises(NotFound):
        vecbackup.stats(f"file://{tmp_path / 'nothing'}")
