"""Which rows a backup reuses from its base (ops/incremental.py): matched by digest, each base row once."""

from __future__ import annotations

import os

import numpy as np

from vecbackup.format import layout
from vecbackup.format.digests import DIGEST, encode_digests
from vecbackup.format.manifest import DataObject, Manifest, SourceInfo
from vecbackup.ops.incremental import REUSE_AT_LEAST, PartitionRows, load_partition
from vecbackup.schema import CollectionSpec, Field, FieldType
from vecbackup.stores.local import LocalStore


def digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), dtype=DIGEST)


def obj(name: str, rows: int, select: tuple[tuple[int, int], ...] | None = None) -> DataObject:
    sha = (name * 64)[:64]
    return DataObject(layout.data_key(sha), "p", rows, 100, sha, select)


def test_rows_are_matched_by_digest_in_any_order_and_each_once() -> None:
    a, b = digests(6), digests(4)
    rows = PartitionRows([obj("a", 6), obj("b", 4)], [a, b])
    assert len(rows) == 10
    batch = np.concatenate([b[[3, 0]], digests(2), a[[5]], a[[5]]])  # a[5] read twice: reused once
    assert rows.match(batch).tolist() == [True, True, False, False, True, False]
    assert rows.match(b[[3]]).tolist() == [False]  # already claimed
    assert rows.reused() == [DataObject(obj("a", 6).key, "p", 1, 100, obj("a", 6).sha256, ((5, 1),)),
                             DataObject(obj("b", 4).key, "p", 2, 100, obj("b", 4).sha256, ((0, 1), (3, 1)))]
    assert rows.match(np.concatenate([a[:5], b[1:3]])).all()
    whole = rows.reused()
    assert [o.select for o in whole] == [None, None] and [o.rows for o in whole] == [6, 4]


def test_only_the_selected_rows_of_a_base_object_are_known() -> None:
    a = digests(8)
    rows = PartitionRows([obj("a", 3, ((1, 2), (6, 1)))], [a])
    assert rows.match(a).tolist() == [False, True, True, False, False, False, True, False]
    assert rows.reused()[0].select == ((1, 2), (6, 1))


def test_empty_and_unknown() -> None:
    rows = PartitionRows([obj("a", 3)], [None])
    assert len(rows) == 0 and rows.match(digests(3)).tolist() == [False] * 3 and rows.reused() == []


def _manifest(objects: tuple[DataObject, ...]) -> Manifest:
    spec = CollectionSpec(name="c", fields=(Field("id", FieldType.INT64, is_primary=True),))
    return Manifest("20240101T000000.000000Z-00000000", spec, SourceInfo("milvus", "", ""), objects,
                    {"p": sum(o.rows for o in objects)}, "", "", "")


def test_load_partition_skips_missing_damaged_mismatched_and_mostly_unused_objects(tmp_path) -> None:
    store = LocalStore(tmp_path)
    good, sparse, damaged, wrong = digests(10), digests(10), digests(4), digests(7)
    objects = (obj("1", 10), obj("2", int(REUSE_AT_LEAST * 10) - 1, ((0, int(REUSE_AT_LEAST * 10) - 1),)),
               obj("3", 4), obj("4", 5), obj("5", 6))
    for o, d in zip(objects, [good, sparse, damaged, None, wrong], strict=True):
        if d is not None:
            blob = encode_digests(d)
            store.put(layout.digests_key(o.sha256), blob[:-1] if d is damaged else blob)
    notes: list[str] = []
    rows = load_partition(store, _manifest(objects), "p", notes)
    assert len(rows) == 10  # only the first: the rest are unreadable, absent, of another size, or half unused
    assert rows.match(np.concatenate([good, sparse[:1], wrong[:1]])).tolist() == [True] * 10 + [False, False]
    assert len(notes) == 2 and "damaged" in notes[0] and obj("3", 4).key in notes[0]
    assert "1 object of backup" in notes[1] and "has no row digests" in notes[1]  # the missing one
    assert load_partition(store, _manifest(objects), "other", []).match(good).sum() == 0


def test_a_batch_is_claimed_whole_or_not_at_all() -> None:
    """claim_all (a segment backup's batch of a rewritten segment): every row found, each base row once, in at most
    ``max_runs`` runs of ascending positions in one object, or nothing claimed."""
    a, b = digests(6), digests(4)
    rows = PartitionRows([obj("a", 6), obj("b", 4)], [a, b])
    runs = rows.claim_all(np.concatenate([a[[0, 2, 3]], b[[1, 3]]]), max_runs=2)
    assert runs is not None
    assert [(o.key, at.tolist()) for o, at in runs] == [(obj("a", 6).key, [0, 2, 3]), (obj("b", 4).key, [1, 3])]
    assert rows.claim_all(a[[2]], max_runs=2) is None  # claimed already
    assert rows.claim_all(np.concatenate([a[[1]], digests(1)]), max_runs=2) is None  # one row unknown ...
    assert rows.claim_all(a[[1, 1]], max_runs=2) is None  # ... or the same row twice
    assert rows.claim_all(a[[5, 4]], max_runs=1) is None  # two runs (positions go back), one allowed
    assert rows.match(a[[1, 4, 5]]).all()  # and none of those claimed anything
    assert rows.claim_all(np.zeros(0, dtype=DIGEST), max_runs=1) is None
    assert PartitionRows([obj("a", 6)], [None]).claim_all(a[:1], max_runs=1) is None
