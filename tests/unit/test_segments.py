"""The pure part of segment backups (format/segments.py): which rows are live, which pieces a manifest lists, and the
segment records a manifest carries."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecbackup.errors import CorruptData
from vecbackup.format import layout
from vecbackup.format.manifest import DataObject, Manifest, SourceInfo, merge_objects
from vecbackup.format.segments import Deletes, Piece, SegmentRecord, files_fingerprint, reusable
from vecbackup.ops.segment_backup import objects_of
from vecbackup.schema import CollectionSpec, Field, FieldType

SHA = "ab" * 32


def _piece(i: int, rows: int) -> Piece:
    sha = f"{i:064x}"
    return Piece(f"data/{sha[:2]}/{sha}.vbc", sha, 100 + i, rows)


def test_a_row_is_live_unless_a_delete_of_its_key_is_newer():
    d = Deletes()
    d.add(np.array([1, 2, 3], dtype=np.int64), np.array([10, 20, 30], dtype=np.uint64))
    d.add([2], [5])  # an older delete of key 2 does not lower the newest
    keys = np.array([1, 1, 2, 3, 4], dtype=np.int64)
    ts = np.array([9, 11, 19, 30, 1], dtype=np.uint64)  # key 1 written before and after its delete; key 3 upserted
    assert d.live(keys, ts).tolist() == [False, True, False, True, True]


def test_string_keys():
    d = Deletes()
    d.add(["a", "b"], [10, 10])
    assert d.live(["a", "b", "c", "a"], np.array([5, 11, 1, 9], dtype=np.uint64)).tolist() == [False, True, True,
                                                                                                 False]


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 100)), max_size=40),
       st.lists(st.tuples(st.integers(0, 20), st.integers(1, 100)), max_size=60))
def test_live_matches_the_rule_row_by_row(deletes, rows):
    d = Deletes()
    d.add(np.array([k for k, _ in deletes], dtype=np.int64), np.array([t for _, t in deletes], dtype=np.uint64))
    newest: dict[int, int] = {}
    for k, t in deletes:
        newest[k] = max(newest.get(k, 0), t)
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    ts = np.array([t for _, t in rows], dtype=np.uint64)
    assert d.live(keys, ts).tolist() == [t >= newest.get(k, 0) for k, t in rows]


def test_objects_of_selects_the_live_rows_of_each_piece_and_leaves_out_empty_ones():
    record = SegmentRecord(7, "p1", SHA, (_piece(1, 3), _piece(2, 4), _piece(3, 2)))
    live = np.array([True, True, True, False, True, False, True, False, False])
    objs = objects_of(record, live)
    assert [(o.key, o.rows, o.select, o.partition) for o in objs] == [
        (record.pieces[0].key, 3, None, "p1"), (record.pieces[1].key, 2, ((1, 1), (3, 1)), "p1")]
    with pytest.raises(ValueError):
        objects_of(record, live[:-1])


def test_fingerprint_depends_on_the_files_not_their_order():
    files = [(100, "insert_log/1/2/3/100/4", 10), (101, "insert_log/1/2/3/101/5", 20)]
    assert files_fingerprint(files) == files_fingerprint(list(reversed(files)))
    assert files_fingerprint(files) != files_fingerprint([files[0], (101, files[1][1], 21)])
    assert files_fingerprint(files) != files_fingerprint(files[:1])


def test_reusable_needs_the_same_segment_partition_and_files():
    r = SegmentRecord(7, "p1", SHA, (_piece(1, 3),))
    assert reusable([r], "p1", 7, SHA) is r
    assert reusable([r], "p2", 7, SHA) is None
    assert reusable([r], "p1", 8, SHA) is None
    assert reusable([r], "p1", 7, "cd" * 32) is None


def _manifest(segments: tuple[SegmentRecord, ...] | None) -> Manifest:
    spec = CollectionSpec(name="c", fields=(Field("id", FieldType.INT64, is_primary=True),
                                            Field("v", FieldType.FLOAT_VECTOR, dim=2)))
    p = _piece(1, 3)
    return Manifest(backup_id="20261206T000000.000000Z-00000000", collection=spec,
                    source=SourceInfo("milvus", "v2.3.5", "milvus://h:19530"),
                    objects=(DataObject(p.key, "_default", 2, p.size, p.sha256, ((0, 2),)),),
                    partition_rows={"_default": 2}, started_at="2026-12-06T00:00:00.000000Z",
                    completed_at="2026-12-06T00:00:01.000000Z", tool_version="0.4.0", segments=segments)


def test_manifest_round_trip_and_older_readers():
    segs = (SegmentRecord(7, "_default", SHA, (_piece(1, 3),)),)
    m = _manifest(segs)
    back = Manifest.from_json(m.to_json())
    assert back.segments == segs and back == m
    assert Manifest.from_json(_manifest(None).to_json()).segments is None
    assert m.format_version == 2  # segments need no newer reader: restoring uses the objects alone


@pytest.mark.parametrize("bad", [
    "not a list", [{"id": 7}], [{"id": -1, "partition": "p", "fingerprint": SHA, "pieces": []}],
    [{"id": 7, "partition": "p", "fingerprint": "short", "pieces": []}],
    [{"id": 7, "partition": "p", "fingerprint": SHA, "pieces": [["../../etc/passwd", SHA, 1, 1]]}],
    [{"id": 7, "partition": "p", "fingerprint": SHA, "pieces": [[_piece(1, 3).key, SHA, 1, 1, 1]]}],
    [{"id": 7, "partition": "p", "fingerprint": SHA, "rows": 4, "pieces": [_piece(1, 3).to_list()]}],
])
def test_a_bad_segment_record_is_a_corrupt_manifest(bad):
    d = _manifest(None).to_dict()
    d["segments"] = bad
    with pytest.raises(CorruptData):
        Manifest.from_json(orjson.dumps(d))


def test_live_on_large_random_input_equals_a_dict_lookup():
    rng = random.Random(3)
    d = Deletes()
    dk = [rng.randrange(10_000) for _ in range(3000)]
    dt = [rng.randrange(1, 1000) for _ in dk]
    d.add(np.array(dk, dtype=np.int64), np.array(dt, dtype=np.uint64))
    newest: dict[int, int] = {}
    for k, t in zip(dk, dt, strict=True):
        newest[k] = max(newest.get(k, 0), t)
    keys = np.array([rng.randrange(10_000) for _ in range(20_000)], dtype=np.int64)
    ts = np.array([rng.randrange(1, 1000) for _ in keys], dtype=np.uint64)
    assert d.live(keys, ts).tolist() == [int(t) >= newest.get(int(k), 0) for k, t in zip(keys, ts, strict=True)]


def test_the_backup_is_the_collection_as_of_the_flush():
    """A delete after the flush is left out and a row written after it is not live: an upsert after the flush
    (its delete at T > flush, its new row at T in a segment sealed later) leaves the old row, not neither."""
    d = Deletes(until=15)
    d.add(np.array([1, 2], dtype=np.int64), np.array([10, 20], dtype=np.uint64))
    keys = np.array([1, 2, 2, 3], dtype=np.int64)
    ts = np.array([5, 12, 20, 16], dtype=np.uint64)  # key 2: old row, and its upsert at 20; key 3 written after
    assert d.live(keys, ts).tolist() == [False, True, False, False]
    assert d.live(["1", "2", "2", "3"], ts).tolist() == [True, True, False, False]  # no string deletes
    assert Deletes(until=15).live(keys, ts).tolist() == [True, True, False, False]


def test_a_servers_local_files_are_mapped_within_its_storage_folder(tmp_path):
    """The files of a log group in the server's local storage: mapped (the bytes as the file holds them, an empty
    one too), a path the listing gives that leads out of the folder refused as the store refuses such a key, and a
    file gone since the listing is ObjectNotFound (the backup lists the segments again)."""
    from vecbackup.engines.milvus.segment_reader import _LocalFiles
    from vecbackup.stores.base import ObjectNotFound
    from vecbackup.stores.local import LocalStore

    (tmp_path / "storage" / "insert_log").mkdir(parents=True)
    (tmp_path / "storage" / "insert_log" / "1").write_bytes(b"binlog bytes")
    (tmp_path / "storage" / "insert_log" / "2").write_bytes(b"")
    (tmp_path / "secret").write_bytes(b"not the server's")
    files = _LocalFiles(LocalStore(tmp_path / "storage"), {1: "insert_log/1", 2: "insert_log/2", 3: "../secret",
                                                            4: "insert_log/gone"})
    mapped = files[1]
    assert isinstance(mapped, memoryview) and bytes(mapped) == b"binlog bytes"
    assert bytes(files[2]) == b""
    with pytest.raises(ValueError):
        files[3]
    with pytest.raises(ObjectNotFound):
        files[4]


def test_a_mapped_binlog_stays_whole_when_the_server_removes_it(tmp_path):
    """The server's garbage collection removes the files of segments a compaction replaced, possibly while a backup
    reads them. A mapped file removed (unlinked) stays readable, whole and unchanged, until it is unmapped; even a
    new file written under its name since does not change what the map holds."""
    from vecbackup.engines.milvus.segment_reader import _LocalFiles
    from vecbackup.stores.local import LocalStore

    folder = tmp_path / "storage" / "insert_log"
    folder.mkdir(parents=True)
    data = bytes(range(256)) * 4096  # 1 MiB, several pages
    (folder / "1").write_bytes(data)
    mapped = _LocalFiles(LocalStore(tmp_path / "storage"), {1: "insert_log/1"})[1]
    (folder / "1").unlink()
    (folder / "1").write_bytes(b"another file")
    assert isinstance(mapped, memoryview) and len(mapped) == len(data) and bytes(mapped) == data


def test_a_piece_found_in_an_earlier_backups_object_names_its_rows_there():
    """A piece with ``select``: rows of a rewritten segment found in an object the base stored. Its live rows are
    listed at their positions in that object; the manifest holding one is format version 4 (a reader of 3 would take
    the piece for the object's first rows)."""
    found = Piece(_piece(2, 0).key, _piece(2, 0).sha256, 102, 4, ((1, 2), (5, 2)))
    assert found.positions().tolist() == [1, 2, 5, 6]
    assert Piece.from_list(found.to_list()) == found and found.to_list()[4] == "1+2,2+2"
    record = SegmentRecord(9, "p1", SHA, (_piece(1, 3), found))
    live = np.array([True, False, True, True, False, True, True])
    objs = objects_of(record, live)
    assert [(o.key, o.rows, o.select) for o in objs] == [(record.pieces[0].key, 2, ((0, 1), (2, 1))),
                                                         (found.key, 3, ((1, 1), (5, 2)))]
    assert objects_of(record, np.ones(7, dtype=bool))[1].select == found.select  # every row live: as found
    m = _manifest((record,))
    assert m.format_version == 4 and Manifest.from_json(m.to_json()).segments == (record,)
    assert _manifest((SegmentRecord(9, "p1", SHA, (_piece(1, 3),)),)).format_version == 2
    with pytest.raises(ValueError, match="ascending, apart and non-empty"):
        Piece(found.key, found.sha256, 102, 2, ((3, 1), (1, 1)))
    with pytest.raises(ValueError):
        Piece(found.key, found.sha256, 102, 3, ((1, 2),))  # 2 rows selected, 3 claimed


@pytest.mark.parametrize("select", ["1+x", "", "-1+2", 3])
def test_a_piece_with_a_bad_select_is_a_corrupt_manifest(select):
    d = _manifest(None).to_dict()
    d["segments"] = [{"id": 7, "partition": "p", "fingerprint": SHA, "rows": 2,
                      "pieces": [[_piece(1, 3).key, SHA, 1, 2, select]]}]
    with pytest.raises(CorruptData):
        Manifest.from_json(orjson.dumps(d))


def test_a_found_piece_is_read_back_against_the_keys_of_its_rows(tmp_path):
    """The check a segment backup makes of the pieces it reuses (_check_pieces), on a piece that selects rows of an
    object: the object's keys at the selected positions must be the keys the server's files hold there."""
    from vecbackup.format.codec import Chunk, Column
    from vecbackup.ops.backup import _store_chunk
    from vecbackup.ops.segment_backup import _check_pieces
    from vecbackup.stores.local import LocalStore

    store = LocalStore(tmp_path / "s", create=True)
    spec = CollectionSpec(name="c", fields=(Field("id", FieldType.INT64, is_primary=True),
                                            Field("v", FieldType.FLOAT_VECTOR, dim=2)))
    keys = np.arange(10, 20, dtype=np.int64)
    chunk = Chunk("p", 10, {"id": Column(keys), "v": Column(np.zeros((10, 2), np.float32))})
    o = _store_chunk(store, spec.columns, chunk, 1).obj
    piece = Piece(o.key, o.sha256, o.size, 4, ((2, 3), (8, 1)))
    assert _check_pieces(store, spec, [(piece, np.array([12, 13, 14, 18]))], 1.0) == 1
    with pytest.raises(CorruptData, match="does not hold the rows"):
        _check_pieces(store, spec, [(piece, np.array([12, 13, 14, 19]))], 1.0)
    # pieces of one object (a batch found with deleted rows in between: a piece per stretch) are checked from one
    # read of it, each against its own keys
    other = Piece(o.key, o.sha256, o.size, 2, ((0, 2),))
    assert _check_pieces(store, spec, [(piece, np.array([12, 13, 14, 18])), (other, np.array([10, 11]))], 1.0) == 1
    with pytest.raises(CorruptData, match="does not hold the rows"):
        _check_pieces(store, spec, [(piece, np.array([12, 13, 14, 18])), (other, np.array([10, 12]))], 1.0)
    assert _check_pieces(store, spec, [(other, np.array([10, 11]))] * 100, 0.02) == 1  # a share of the objects
    beyond = Piece(o.key, o.sha256, o.size, 4, ((7, 4),))
    with pytest.raises(CorruptData, match="selects rows up to 11"):
        _check_pieces(store, spec, [(beyond, np.array([17, 18, 19, 20]))], 1.0)


def test_a_batch_with_rows_deleted_since_is_found_and_only_those_rows_are_stored(tmp_path, monkeypatch):
    """_BaseRows.claim: a batch of a segment read anew whose live rows the base holds (a logical backup holds no
    deleted row) is named in the base's objects, and its deleted rows alone are stored, as one new chunk whose
    pieces fill the gaps in the segment's order; the manifest then selects the base's rows, each as read."""
    from vecbackup.format.codec import Chunk, Column
    from vecbackup.format.digests import decode_digests
    from vecbackup.ops.backup import _store_chunk
    from vecbackup.ops.fetch import fetch_chunk
    from vecbackup.ops.incremental import PartitionRows
    from vecbackup.ops.segment_backup import _BaseRows
    from vecbackup.ops.segment_workers import encode_batch
    from vecbackup.stores.local import LocalStore

    store = LocalStore(tmp_path / "s", create=True)
    spec = CollectionSpec(name="c", fields=(Field("id", FieldType.INT64, is_primary=True),
                                            Field("v", FieldType.FLOAT_VECTOR, dim=2)))

    def chunk(keys: list[int]) -> Chunk:
        k = np.array(keys, dtype=np.int64)
        return Chunk("p", len(k), {"id": Column(k), "v": Column(np.stack([k, -k], axis=1).astype(np.float32))})

    base = _store_chunk(store, spec.columns, chunk(list(range(10, 20))), 1).obj  # a logical backup's object
    held = decode_digests(store.get(layout.digests_key(base.sha256)))

    def found_in_base() -> _BaseRows:
        return _BaseRows("b", {"p": PartitionRows([base], [held])})

    keys = [10, 11, 90, 12, 13, 91, 92, 15]  # 90-92 deleted since the logical backup: it does not hold them
    live = np.array([k < 90 for k in keys])
    enc = encode_batch(spec.columns, chunk(keys), np.arange(8, dtype=np.uint64), "id", 1)
    rows = found_in_base()
    hit = rows.claim("p", enc.digests, live)
    assert hit is not None and hit.dead.tolist() == [2, 5, 6]
    pieces, done = hit.place(store, spec.columns, enc, 1, "p", False)
    assert done is not None and done.obj.rows == 3 and done.new
    assert fetch_chunk(store, done.obj).columns["id"].values.tolist() == [90, 91, 92]
    assert [(p.key, p.rows, p.select) for p in pieces] == [
        (base.key, 2, ((0, 2),)), (done.obj.key, 1, ((0, 1),)), (base.key, 2, ((2, 2),)),
        (done.obj.key, 2, ((1, 2),)), (base.key, 1, ((5, 1),))]
    objs = objects_of(SegmentRecord(1, "p", SHA, tuple(pieces)), live)
    assert [fetch_chunk(store, o).columns["id"].values.tolist() for o in objs] == [[10, 11], [12, 13], [15]]
    [merged] = merge_objects(objs)  # as the backup lists them: the base's object once, with its rows
    assert merged.key == base.key and fetch_chunk(store, merged).columns["id"].values.tolist() == [10, 11, 12, 13, 15]
    assert rows.claim("p", enc.digests, live) is None  # each base row claimed once
    again = found_in_base().claim("p", enc.digests, live)  # the batch as read (no worker process): the same pieces
    assert again is not None and again.place(store, spec.columns, chunk(keys), 1, "p", False)[0] == pieces

    every_live = found_in_base().claim("p", enc.digests, np.ones(8, dtype=bool))
    assert every_live is None  # 90-92 are live: the base does not hold every live row
    all_dead = found_in_base().claim("p", enc.digests, np.zeros(8, dtype=bool))
    assert all_dead is None  # nothing to find: stored as read
    clean = encode_batch(spec.columns, chunk([12, 13, 14]), np.arange(3, dtype=np.uint64), "id", 1)
    whole = found_in_base().claim("p", clean.digests, np.ones(3, dtype=bool))
    assert whole is not None and not len(whole.dead)
    assert whole.place(store, spec.columns, clean, 1, "p", False) == ([Piece(base.key, base.sha256, base.size, 3,
                                                                             ((2, 3),))], None)

    # deleted rows scattered over more than max(MAX_RUNS, rows / 32) stretches: a piece each would cost more than it
    # saves, so the batch is stored as read, and nothing is claimed
    scattered = [k for pair in zip(range(10, 20), range(100, 110), strict=True) for k in pair]  # 10 dead stretches
    enc = encode_batch(spec.columns, chunk(scattered), np.arange(20, dtype=np.uint64), "id", 1)
    live = np.array([k < 100 for k in scattered])
    rows = found_in_base()
    monkeypatch.setattr(_BaseRows, "MAX_RUNS", 9)
    assert rows.claim("p", enc.digests, live) is None and not rows.rows["p"].used.any()
    monkeypatch.setattr(_BaseRows, "MAX_RUNS", 10)
    hit = rows.claim("p", enc.digests, live)
    assert hit is not None and len(hit.layout) == 20 and rows.rows["p"].used.all()
