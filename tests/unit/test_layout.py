"""Store key layout (vecbackup.format.layout): backup ids, manifest keys, data keys, name escaping."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecbackup.format import layout
from vecbackup.format.layout import (
    data_key,
    escape_name,
    is_backup_id,
    make_backup_id,
    manifest_key,
    manifests_prefix,
    new_backup_id,
    parse_data_key,
    parse_manifest_key,
    unescape_name,
)
from vecbackup.ops.commit import derived_backup_id

FAST = settings(max_examples=200, deadline=None)
SHA = hashlib.sha256(b"vecbackup").hexdigest()
ID = "20240229T235959.123456Z-0a1b2c3d"

# --------------------------------------------------------------------------- backup ids


def test_backup_id_shape() -> None:
    bid = new_backup_id(datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC))
    assert re.fullmatch(r"20240229T235959\.123456Z-[0-9a-f]{8}", bid)
    assert is_backup_id(bid)


def test_backup_id_format_is_pinned() -> None:
    """The one place a backup id is made: the UTC time to the microsecond, '-', 8 lower-case hex digits
    (docs/FORMAT.md); a random id and a sharded backup's derived one both come from it."""
    at = datetime(2026, 12, 1, 2, 15, 0, 123456, tzinfo=UTC)
    assert make_backup_id(at, "9f3a0c1e") == "20261201T021500.123456Z-9f3a0c1e"
    minus5 = at.astimezone(timezone(timedelta(hours=-5)))
    assert make_backup_id(minus5, "00000000") == "20261201T021500.123456Z-00000000"
    assert make_backup_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "abcdef01") == "20260102T030405.000000Z-abcdef01"
    assert new_backup_id(at).startswith("20261201T021500.123456Z-")
    run = hashlib.sha256(b"docs\0nightly-1").hexdigest()[:8]
    assert derived_backup_id("docs", "nightly-1", "2026-12-01T02:15:00.123456Z") == f"20261201T021500.123456Z-{run}"
    for bad in ("9F3A0C1E", "9f3a0c1", "9f3a0c1e0", "9f3a0c1g", ""):
        with pytest.raises(ValueError):
            make_backup_id(at, bad)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)),
       st.text("0123456789abcdef", min_size=8, max_size=8))
@FAST
def test_made_ids_are_backup_ids_and_round_trip_through_manifest_keys(at: datetime, suffix: str) -> None:
    bid = make_backup_id(at, suffix)
    assert is_backup_id(bid)
    assert datetime.strptime(bid[:23], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC) == at and bid[24:] == suffix
    assert parse_manifest_key(manifest_key("c/ü", bid)) == ("c/ü", bid)


def test_backup_id_default_is_now() -> None:
    before = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    bid = new_backup_id()
    after = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    assert is_backup_id(bid)
    assert before <= bid.split("-")[0] <= after


def test_backup_id_converts_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    bid = new_backup_id(datetime(2024, 1, 1, 1, 30, 0, 0, tzinfo=plus2))
    assert bid.startswith("20231231T233000.000000Z-")


def test_backup_ids_sort_by_time() -> None:
    base = datetime(2023, 12, 31, 23, 59, 58, 999998, tzinfo=UTC)
    steps = [
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(microseconds=2),
        timedelta(seconds=1),
        timedelta(seconds=1, microseconds=1),
        timedelta(minutes=1),
        timedelta(hours=5),
        timedelta(days=40),
        timedelta(days=400),
    ]
    times = [base + s for s in steps]
    ids = [new_backup_id(t) for t in times]
    assert sorted(ids) == ids
    # shuffled input still sorts back into time order
    assert sorted(reversed(ids)) == ids


@given(
    st.lists(
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)),
        min_size=2,
        max_size=10,
        unique=True,
    )
)
@FAST
def test_backup_ids_sort_like_datetimes(times: list[datetime]) -> None:
    ids = {new_backup_id(t): t for t in times}
    assert [ids[i] for i in sorted(ids)] == sorted(times)


def test_same_datetime_gives_distinct_ids() -> None:
    t = datetime(2024, 5, 5, 5, 5, 5, 5, tzinfo=UTC)
    ids = {new_backup_id(t) for _ in range(200)}
    assert len(ids) == 200
    assert len({i.split("-")[0] for i in ids}) == 1  # same time part, different random suffix


def test_ten_thousand_ids_in_a_tight_loop_are_unique() -> None:
    ids = [new_backup_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert all(is_backup_id(i) for i in ids)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20240229T235959.123456Z",  # no suffix
        "20240229T235959.123456Z-0a1b2c3",  # short suffix
        "20240229T235959.123456Z-0a1b2c3d0",  # long suffix
        "20240229T235959.123456Z-0A1B2C3D",  # upper-case hex
        "20240229T235959.123456-0a1b2c3d",  # no Z
        "20240229T235959Z-0a1b2c3d",  # no microseconds
        "2024-02-29T23:59:59.123456Z-0a1b2c3d",  # ISO punctuation
        "x20240229T235959.123456Z-0a1b2c3d",
        "20240229T235959.123456Z-0a1b2c3d.json",
        "../20240229T235959.123456Z-0a1b2c3d",
    ],
)
def test_is_backup_id_rejects(value: str) -> None:
    assert not is_backup_id(value)


def test_is_backup_id_rejects_trailing_newline() -> None:
    assert not is_backup_id(ID + "\n")


# --------------------------------------------------------------------------- name escaping


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("plain_Name-1.v2", "plain_Name-1.v2"),
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "..."),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("sp ace", "sp%20ace"),
        ("é", "%C3%A9"),
        ("back\\slash", "back%5Cslash"),
    ],
)
def test_escape_name_examples(name: str, segment: str) -> None:
    assert escape_name(name) == segment
    assert unescape_name(segment) == name


@given(st.text(min_size=1, max_size=40))
@FAST
def test_escape_name_round_trip_and_is_one_safe_segment(name: str) -> None:
    seg = escape_name(name)
    assert unescape_name(seg) == name
    assert "/" not in seg
    assert seg not in (".", "..")
    assert re.fullmatch(r"[A-Za-z0-9_.\-%]+", seg)


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
@FAST
def test_escape_name_is_injective(a: str, b: str) -> None:
    if a != b:
        assert escape_name(a) != escape_name(b)


# --------------------------------------------------------------------------- manifest keys


def test_manifest_key_shape() -> None:
    assert manifest_key("docs", ID) == f"manifests/docs/{ID}.json"
    assert manifest_key("a/b", ID) == f"manifests/a%2Fb/{ID}.json"
    assert manifests_prefix() == "manifests/"
    assert manifests_prefix("a/b") == "manifests/a%2Fb/"
    assert manifest_key("a/b", ID).startswith(manifests_prefix("a/b"))


@pytest.mark.parametrize("name", ["docs", "a/b", "..", ".", "x.json", "日本語", "with space", "100%", "$meta", "a\nb"])
def test_manifest_key_round_trip_examples(name: str) -> None:
    key = manifest_key(name, ID)
    assert parse_manifest_key(key) == (name, ID)
    segments = key.split("/")
    assert len(segments) == 3
    assert ".." not in segments and "." not in segments


@given(st.text(min_size=1, max_size=40))
@FAST
def test_manifest_key_round_trip(name: str) -> None:
    bid = new_backup_id()
    key = manifest_key(name, bid)
    assert parse_manifest_key(key) == (name, bid)
    segments = key.split("/")
    assert len(segments) == 3
    assert all(s not in ("", ".", "..") for s in segments)
    assert key.startswith(manifests_prefix(name))


def test_manifest_prefix_does_not_match_other_collections() -> None:
    assert not manifest_key("ab", ID).startswith(manifests_prefix("a"))


@pytest.mark.parametrize(
    "key",
    [
        f"manifests/docs/{ID}",  # no suffix
        f"manifests/docs/{ID}.json.tmp-abc",
        f"manifest/docs/{ID}.json",
        f"docs/{ID}.json",
        f"manifests/{ID}.json",  # no collection segment
        f"manifests/a/b/{ID}.json",  # too many segments
        "manifests/docs/not-an-id.json",
        f"data/aa/{ID}.json",
        "",
    ],
)
def test_parse_manifest_key_rejects(key: str) -> None:
    assert parse_manifest_key(key) is None


# --------------------------------------------------------------------------- data keys


def test_data_key_shape() -> None:
    key = data_key(SHA)
    assert key == f"data/{SHA[:2]}/{SHA}.vbc"
    assert key.startswith(layout.DATA) and key.endswith(layout.DATA_SUFFIX)
    assert parse_data_key(key) == SHA


@given(st.binary(max_size=64))
@FAST
def test_data_key_round_trip(blob: bytes) -> None:
    sha = hashlib.sha256(blob).hexdigest()
    assert parse_data_key(data_key(sha)) == sha


@pytest.mark.parametrize(
    "value",
    [
        "",
        SHA[:-1],  # 63 chars
        SHA + "0",  # 65 chars
        SHA.upper(),
        "g" * 64,
        " " + SHA[1:],
        hashlib.sha1(b"x").hexdigest(),
        "../" + SHA[3:],
        SHA[:32] + "/" + SHA[33:],
    ],
)
def test_data_key_rejects_non_sha(value: str) -> None:
    with pytest.raises(ValueError):
        data_key(value)


def test_data_key_rejects_trailing_newline() -> None:
    with pytest.raises(ValueError):
        data_key(SHA + "\n")


@pytest.mark.parametrize(
    "key",
    [
        f"data/{SHA[:2]}/{SHA}",  # no suffix
        f"data/{SHA}.vbc",  # no fan-out folder
        f"data/zz/{SHA}.vbc",  # wrong fan-out folder
        f"data/{SHA[:2]}/x/{SHA}.vbc",  # extra folder
        f"data/{SHA[:2]}/{SHA.upper()}.vbc",
        f"data/{SHA[:2]}/{SHA[:-1]}.vbc",
        f"manifests/{SHA[:2]}/{SHA}.vbc",
        f"data/{SHA[:2]}/{SHA}.vbc.tmp-0123",
        "data/",
        "",
    ],
)
def test_parse_data_key_rejects(key: str) -> None:
    assert parse_data_key(key) is None


@pytest.mark.parametrize("segment", ["abc%41", "a%2fb", "%64ocs", "x%FF", "%2e%2e"])
def test_a_manifest_key_we_would_not_write_is_not_a_backup(segment: str) -> None:
    # "abc%41" reads as collection "abcA", whose manifest key is another one: delete or prune would act on that one
    assert parse_manifest_key(f"manifests/{segment}/{ID}.json") is None
    assert parse_manifest_key(f"manifests/abc/{ID.replace('1', '١', 1)}.json") is None  # Arabic-Indic digit
