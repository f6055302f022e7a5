"""The pure planning of a segment backup's listing (vecbackup/engines/milvus/segments.py): which files of the server's
storage belong to which reported segment, in log order, and what a re-list calls a change."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecbackup.engines.milvus.segments import (
    ReportedSegment,
    check_rows,
    check_server_version,
    listing_changes,
    open_segment_storage,
    plan_listing,
)
from vecbackup.errors import MissingData, NotFound, Unsupported, UsageError, VecbackupError
from vecbackup.stores import ObjectInfo
from vecbackup.words import cli_words

CID, P0, P1 = 4001, 4002, 4003
FIELDS = {"id": 100, "vec": 101, "$meta": 102}


def seg_files(sid: int, pid: int, logs: tuple[int, ...] = (7,), fields: tuple[int, ...] = (0, 1, 100, 101, 102),
              deltas: tuple[int, ...] = ()) -> list[ObjectInfo]:
    out = [ObjectInfo(f"insert_log/{CID}/{pid}/{sid}/{fid}/{log}", 10 + fid, 1.5) for fid in fields for log in logs]
    out += [ObjectInfo(f"delta_log/{CID}/{pid}/{sid}/{log}", 33, 2.5) for log in deltas]
    return out


def plan(reported: list[ReportedSegment], objects: list[ObjectInfo], count: int | None = None):  # type: ignore[no-untyped-def]
    return plan_listing(collection="c", collection_id=CID, flush_ts=99, field_ids=FIELDS,
                        partitions={"_default": P0, "p1": P1}, reported=reported, objects=objects,
                        storage="file:///srv", count=count)


def test_files_of_reported_segments_only_in_log_order() -> None:
    objects = (seg_files(11, P0, logs=(10, 9), deltas=(30, 4)) + seg_files(12, P1)
               + seg_files(13, P0)  # compacted away: still in storage, not reported
               + seg_files(14, P0, logs=(1,))  # another collection's would not be under the prefix; not reported
               + [ObjectInfo(f"insert_log/{CID}/{P0}/11/100/.tmp", 1, 1.0), ObjectInfo("stats_log/x", 1, 1.0)])
    listing = plan([ReportedSegment(12, P1, 50, "Flushed"), ReportedSegment(11, P0, 70, "Flushed")], objects,
                   count=100)
    assert [(s.segment_id, s.partition, s.rows) for s in listing.segments] == [(11, "_default", 70), (12, "p1", 50)]
    s11 = listing.segments[0]
    assert sorted(s11.binlogs) == [0, 1, 100, 101, 102]
    assert [f.path.rsplit("/", 1)[1] for f in s11.binlogs[101]] == ["9", "10"]  # by number, not by text
    assert [f.path for f in s11.deltalogs] == [f"delta_log/{CID}/{P0}/11/4", f"delta_log/{CID}/{P0}/11/30"]
    assert s11.binlogs[100][0].size == 110 and s11.binlogs[100][0].mtime == 1.5
    assert listing.rows == 120 and listing.count == 100 and listing.flush_ts == 99
    assert listing.skipped == 10  # the 5 + 5 binlogs of segments 13 and 14
    assert listing.size == sum(f.size for f in listing.files())
    assert check_rows(listing, 20) is None
    assert "110 live rows" in (check_rows(listing, 10) or "")


def test_unflushed_segments_are_left_out_with_a_note() -> None:
    listing = plan([ReportedSegment(11, P0, 5, "Flushed"), ReportedSegment(12, P0, 5, "Flushing")],
                   seg_files(11, P0) + seg_files(12, P0))
    assert [s.segment_id for s in listing.segments] == [11]
    assert listing.notes and "not flushed" in listing.notes[0]


def test_an_empty_segment_without_files_is_skipped() -> None:
    assert plan([ReportedSegment(11, P0, 0, "Flushed")], []).segments == ()


def test_missing_files_are_missing_data() -> None:
    with pytest.raises(MissingData, match=r"no files of segment 11 .*insert_log/4001/4002/11/"):
        plan([ReportedSegment(11, P0, 5, "Flushed")], seg_files(12, P0))
    with pytest.raises(MissingData, match="no binlog of field id 101 "):
        plan([ReportedSegment(11, P0, 5, "Flushed")], seg_files(11, P0, fields=(0, 1, 100, 102)))


def test_inconsistent_storage_is_refused() -> None:
    uneven = seg_files(11, P0, logs=(1, 2))[:-1]  # field 102 has one log less
    with pytest.raises(VecbackupError, match="uneven"):
        plan([ReportedSegment(11, P0, 5, "Flushed")], uneven)
    with pytest.raises(Unsupported, match="of field id 105 the schema does not have"):
        plan([ReportedSegment(11, P0, 5, "Flushed")], seg_files(11, P0, fields=(0, 1, 100, 101, 102, 105)))
    with pytest.raises(VecbackupError, match="partition id 4003"):
        plan([ReportedSegment(11, P0, 5, "Flushed")], seg_files(11, P1))
    with pytest.raises(VecbackupError, match="does not list"):
        plan([ReportedSegment(11, 77, 5, "Flushed")], [])
    with pytest.raises(Unsupported, match="level L0"):
        plan([ReportedSegment(11, P0, 5, "Flushed", level="L0")], [])


def test_fewer_rows_than_counted_is_an_error() -> None:
    with pytest.raises(VecbackupError, match="hold 5 rows, but it counts 6"):
        plan([ReportedSegment(11, P0, 5, "Flushed")], seg_files(11, P0), count=6)


def test_changes_since_a_listing() -> None:
    objects = seg_files(11, P0, deltas=(3,)) + seg_files(12, P1)
    listing = plan([ReportedSegment(11, P0, 5, "Flushed"), ReportedSegment(12, P1, 5, "Flushed")], objects)
    same = [ReportedSegment(11, P0, 5, "Flushed"), ReportedSegment(12, P1, 5, "Flushed")]
    assert listing_changes(listing, same, objects) == []
    # a new delta log (deletes after the flush) and a new growing segment are no change
    later = objects + seg_files(11, P0, fields=(), deltas=(8,))
    assert listing_changes(listing, [*same, ReportedSegment(20, P0, 5, "Growing")], later) == []
    compacted = listing_changes(listing, [ReportedSegment(13, P0, 5, "Flushed"), same[1]], objects)
    assert compacted == ["segment 11 no longer reported (compacted or dropped)", "new flushed segment 13"]
    gone = listing_changes(listing, same, objects[1:])
    assert gone == [f"1 file gone from the storage (first: {objects[0].key})"]
    resized = [ObjectInfo(o.key, o.size + 1, o.mtime) if i == 2 else o for i, o in enumerate(objects)]
    assert listing_changes(listing, same, resized) == [f"1 file changed size (first: {objects[2].key})"]


@pytest.mark.parametrize("version", ["v2.3.5", "v2.3.5-lite", "2.3.13-gpu"])
def test_supported_versions(version: str) -> None:
    check_server_version(version)


@pytest.mark.parametrize("version", ["v2.4.0", "v2.2.16", "", "master-20240101"])
def test_other_versions_are_unsupported(version: str) -> None:
    with pytest.raises(Unsupported) as e:
        check_server_version(version)
    assert e.value.exit_code == 9


def test_storage_is_opened_read_only(tmp_path: Path) -> None:
    (tmp_path / "insert_log").mkdir()
    (tmp_path / "insert_log" / "x").write_bytes(b"abc")
    store = open_segment_storage(f"file://{tmp_path}")
    assert store.get("insert_log/x") == b"abc"
    assert [o.key for o in store.list("insert_log/")] == ["insert_log/x"]
    with pytest.raises(UsageError, match="does not write"):
        store.put("insert_log/y", b"")
    with pytest.raises(UsageError, match="does not delete"):
        store.delete("insert_log/x")
    assert (tmp_path / "insert_log" / "x").exists() and not (tmp_path / "insert_log" / "y").exists()


def test_storage_url_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="given by segments_from") as e:
        open_segment_storage(f"file://{tmp_path / 'nothing'}")
    with cli_words(), pytest.raises(NotFound, match="given by --segments-from"):
        open_segment_storage(f"file://{tmp_path / 'nothing'}")
    assert e.value.exit_code == 4
    assert not (tmp_path / "nothing").exists()  # never created
    with pytest.raises(UsageError, match="looks like a secret") as u:
        open_segment_storage("s3://bucket/files?secret_key=hunter2")
    assert "hunter2" not in str(u.value)


def test_segment_credentials_go_together() -> None:
    with pytest.raises(UsageError, match="go together") as e:
        open_segment_storage("s3://bucket/files", environ={"VECBACKUP_SEGMENTS_SECRET_ACCESS_KEY": "hunter2"})
    assert "hunter2" not in str(e.value)


class _Handler:
    """The pymilvus connection handler's one call the listing makes, answering with the errors given, then the ids."""

    def __init__(self, errors: list[str]) -> None:
        self.errors, self.calls = list(errors), 0

    def get_persistent_segment_infos(self, name: str) -> list[int]:
        self.calls += 1
        if self.errors:
            raise VecbackupError(self.errors.pop(0))
        return [1, 2]


class _Conn:
    display = "milvus://127.0.0.1:19530"

    @staticmethod
    def _call(what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, **kwargs)


def _rpc(handler: _Handler):  # type: ignore[no-untyped-def]
    from vecbackup.engines.milvus import segments

    rpc = object.__new__(segments._Rpc)
    rpc.conn, rpc.handler = _Conn(), handler
    return rpc


def test_a_listing_that_raced_a_compaction_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """2.3 fails the whole listing when a segment it listed was dropped before it read its information (seen in CI)."""
    from vecbackup.engines.milvus import segments

    monkeypatch.setattr(segments, "LISTING_PAUSE", 0.0)
    vanished = "Milvus at x: list the segments of 'c' failed: segment not found[segment=470973595250429347]"
    handler = _Handler([vanished, vanished])
    assert _rpc(handler)._segment_infos("c") == [1, 2] and handler.calls == 3

    handler = _Handler([vanished] * segments.LISTING_ATTEMPTS)
    with pytest.raises(VecbackupError, match="segment not found"):
        _rpc(handler)._segment_infos("c")
    assert handler.calls == segments.LISTING_ATTEMPTS

    handler = _Handler(["Milvus at x: list the segments of 'c' failed: collection not found"])
    with pytest.raises(VecbackupError, match="collection not found"):
        _rpc(handler)._segment_infos("c")
    assert handler.calls == 1
