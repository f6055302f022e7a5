"""The pure choice of versions behind --as-of and undelete (vecbackup/stores/versions.py), checked against a plain
model: a key's history replayed event by event up to the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecbackup.errors import UsageError
from vecbackup.stores.versions import UNKNOWN_TIME, ObjectVersion, at, parse_as_of, plan_undelete, visible_at

NOW = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


def hist(key: str, *events: tuple[float, bool]) -> list[ObjectVersion]:
    """A key's entries newest first from its events (time, deleted) in the order they happened."""
    out = [ObjectVersion(key, f"{key}-{i}", 0 if deleted else 10 + i, t, deleted)
           for i, (t, deleted) in enumerate(events)]
    out.reverse()
    return [ObjectVersion(v.key, v.version_id, v.size, v.mtime, v.deleted, latest=(i == 0)) for i, v in enumerate(out)]


def test_parse_as_of() -> None:
    assert parse_as_of("2026-12-07T05:00:00Z", NOW) == datetime(2026, 12, 7, 5, tzinfo=UTC)
    assert parse_as_of("2026-12-07T07:00:00+02:00", NOW) == datetime(2026, 12, 7, 5, tzinfo=UTC)
    assert parse_as_of("3h", NOW) == NOW - timedelta(hours=3)
    assert parse_as_of("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_as_of("2d", NOW) == NOW - timedelta(days=2)


@pytest.mark.parametrize(("text", "words"), [
    ("2026-12-07T05:00:00", "no time zone"), ("2026-12-07", "no time zone"), ("2026-12-08T00:00:00Z", "future"),
    ("yesterday", "bad --as-of"), ("", "empty"), ("3x", "bad duration"), ("2026-13-01T00:00:00Z", "bad --as-of"),
])
def test_parse_as_of_refuses(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_as_of(text, NOW)


def test_the_version_a_key_held() -> None:
    h = hist("k", (10, False), (20, False), (30, True), (40, False))
    assert at(h, 5) is None  # not written yet
    assert at(h, 10).version_id == "k-0"  # type: ignore[union-attr]  # a version written at the time counts
    assert at(h, 25).version_id == "k-1"  # type: ignore[union-attr]
    assert at(h, 35) is None  # deleted then
    assert at(h, 99).version_id == "k-3"  # type: ignore[union-attr]


def test_visible_at_picks_one_version_per_key_in_key_order() -> None:
    versions = hist("b", (10, False), (30, True)) + hist("a", (20, False)) + hist("c", (31, False))
    t = datetime.fromtimestamp(25, UTC)
    assert [(v.key, v.version_id) for v in visible_at(versions, t)] == [("a", "a-0"), ("b", "b-0")]


def test_undelete_removes_the_markers_since_and_leaves_rewrites_and_locks() -> None:
    t = datetime.fromtimestamp(25, UTC)
    versions = (hist("data/aa/x.vbc", (10, False), (30, True), (31, True))  # deleted twice since: both markers go
                + hist("manifests/c/1.json", (10, False), (30, False))  # rewritten since: left, reported
                + hist("manifests/c/2.json", (10, False), (20, True))  # deleted before T: stays deleted
                + hist("manifests/c/3.json", (26, False), (27, True))  # written and deleted since: not brought back
                + hist("locks/l.json", (10, False), (30, True))  # a lock: never
                + hist("tombstones/c/1.json", (30, False))  # written since: deleted
                + hist("tombstones/c/0.json", (5, False))  # there at T: kept
                + hist("digests/aa/x.vbd", (10, False), (30, True), (32, False), (33, True)))  # written again since
    plan = plan_undelete(versions, t)
    assert [(m.key, m.version_id) for m in plan.markers] == [("data/aa/x.vbc", "data/aa/x.vbc-2"),
                                                            ("data/aa/x.vbc", "data/aa/x.vbc-1")]
    assert [v.version_id for v in plan.restored] == ["data/aa/x.vbc-0"]
    assert plan.overwritten == ["digests/aa/x.vbd", "manifests/c/1.json"]
    assert plan.tombstones == ["tombstones/c/1.json"]
    assert plan.skipped == ["locks/l.json"]


events = st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=8).map(
    lambda evs: sorted(evs, key=lambda e: e[0]))


@given(st.dictionaries(st.sampled_from(["data/a", "data/b", "manifests/m", "tombstones/t", "locks/l"]), events,
                       min_size=1), st.integers(0, 21))
def test_against_replaying_each_history(histories: dict[str, list[tuple[int, bool]]], t: int) -> None:
    """At any time: what visible_at chooses is what replaying each key's events up to it gives; after undelete's
    plan is applied (its markers removed, its tombstones deleted), every key that held a version at the time and has
    no version written since holds that version again, and nothing else changed."""
    versions = [v for key, evs in histories.items() for v in hist(key, *evs)]
    when = datetime.fromtimestamp(t, UTC)

    def replay(key: str, until: float) -> str | None:
        held = None
        for i, (ti, deleted) in enumerate(histories[key]):
            if ti <= until:
                held = None if deleted else f"{key}-{i}"
        return held

    assert {v.key: v.version_id for v in visible_at(versions, when)} == \
        {k: held for k in histories if (held := replay(k, t)) is not None}

    plan = plan_undelete(versions, when)
    removed = {m.version_id for m in plan.markers}
    for key, evs in histories.items():
        now = [v for v in hist(key, *evs) if v.version_id not in removed]
        current = None if not now or now[0].deleted else now[0].version_id
        then = replay(key, t)
        written_since = any(not d and ti > t for ti, d in evs)
        if key in plan.tombstones:
            assert then is None and current is not None  # written since, deleted by the plan
        elif then is not None and not written_since and not key.startswith("locks/"):
            assert current == then
        else:
            assert current == (None if evs[-1][1] else f"{key}-{len(evs) - 1}")  # unchanged


@given(st.dictionaries(st.sampled_from(["data/a", "data/b", "manifests/m", "locks/l"]),
                       st.tuples(st.lists(st.integers(0, 20), min_size=1, max_size=6, unique=True).map(sorted),
                                 st.booleans()), min_size=1), st.integers(0, 21))
def test_a_deletion_of_unknown_time_hides_nothing_before_now(histories: dict[str, tuple[list[int], bool]],
                                                             t: int) -> None:
    """Azure's listing (stores/azure.py): a key's versions, and over a deleted one a marker of unknown time. At any
    past time each key holds the newest version written by then, deleted since or not; undelete brings back each
    deleted key's version at that time, unless a version was written after it."""
    versions: list[ObjectVersion] = []
    for key, (times, deleted) in histories.items():
        entries = [ObjectVersion(key, f"{key}-{i}", 10 + i, ti, False, latest=(not deleted and i == len(times) - 1))
                   for i, ti in enumerate(times)]
        entries.reverse()
        if deleted:
            entries.insert(0, ObjectVersion(key, "", 0, UNKNOWN_TIME, True, True))
        versions += entries
    when = datetime.fromtimestamp(t, UTC)

    def newest(key: str) -> str | None:
        held = [i for i, ti in enumerate(histories[key][0]) if ti <= t]
        return f"{key}-{held[-1]}" if held else None

    assert {v.key: v.version_id for v in visible_at(versions, when)} == \
        {k: held for k in histories if (held := newest(k)) is not None}
    plan = plan_undelete(versions, when)
    expected = {k for k, (times, deleted) in histories.items()
                if deleted and newest(k) is not None and times[-1] <= t and not k.startswith("locks/")}
    assert {v.key for v in plan.restored} == expected
    assert all(v.version_id == newest(v.key) for v in plan.restored)
    assert {m.key for m in plan.markers} == expected


def test_a_listed_version_is_input_like_any_other() -> None:
    """ListObjectVersions' entries as S3 gives them become versions; one without its key, id or time is CorruptData
    (one line), and keys outside the store's prefix or that no store would write are left out."""
    from vecbackup.errors import CorruptData
    from vecbackup.stores.s3 import S3Store

    store = S3Store("bucket", "backups", client=object())
    t = datetime(2026, 12, 7, 5, tzinfo=UTC)
    v = store._version({"Key": "backups/data/aa/x.vbc", "VersionId": "v1", "Size": 7, "LastModified": t,
                        "IsLatest": True}, False, "backups/data/")
    assert v == ObjectVersion("data/aa/x.vbc", "v1", 7, t.timestamp(), False, True)
    assert store._version({"Key": "backups/../x", "VersionId": "v", "LastModified": t}, True, "backups/") is None
    assert store._version({"Key": "other/x", "VersionId": "v", "LastModified": t}, True, "backups/") is None
    for bad in ({"VersionId": "v", "LastModified": t}, {"Key": "backups/x", "LastModified": t},
                {"Key": "backups/x", "VersionId": "v", "LastModified": "yesterday"}):
        with pytest.raises(CorruptData, match="without its key, version id or time"):
            store._version(bad, False, "backups/")


def test_a_store_as_of_a_time_lists_each_top_level_prefix_once() -> None:
    """Reading objects one by one (restore, verify) lists the versions of each top-level prefix once, not of each
    key: the listing per key made verify --read-data --as-of take 1.8 times as long (benchmarks/RESULTS.md)."""
    from vecbackup.stores.base import ObjectNotFound
    from vecbackup.stores.versions import PointInTimeStore

    history = [*hist("data/aa/1.vbc", (10, False), (30, True)), *hist("data/bb/2.vbc", (11, False)),
               *hist("digests/aa/1.vbd", (10, False)), *hist("vecbackup.json", (5, False), (20, False)),
               *hist("data/cc/3.vbc", (26, False))]

    class Versions:
        display = "s3://b/"

        def __init__(self) -> None:
            self.asked: list[str] = []

        def versions(self, prefix: str = "") -> list[ObjectVersion]:
            self.asked.append(prefix)
            return [v for v in history if v.key.startswith(prefix)]

        def get_version(self, key: str, version_id: str, *, offset: int = 0, length: int | None = None) -> bytes:
            return version_id.encode()

    inner = Versions()
    past = PointInTimeStore(inner, datetime.fromtimestamp(25, UTC))  # type: ignore[arg-type]
    assert past.get("data/aa/1.vbc") == b"data/aa/1.vbc-0"  # deleted since: as it was
    assert past.get("data/bb/2.vbc") == b"data/bb/2.vbc-0"
    assert past.stat("digests/aa/1.vbd").size == 10
    assert past.get("vecbackup.json") == b"vecbackup.json-1"
    with pytest.raises(ObjectNotFound):
        past.get("data/cc/3.vbc")  # written after the time
    with pytest.raises(ObjectNotFound):
        past.get("data/dd/4.vbc")  # never written
    assert inner.asked == ["data/", "digests/", "vecbackup.json"]
