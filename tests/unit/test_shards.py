"""Sharded backups, the pure parts: which shard owns a key, shard record keys and JSON, and joining the records of a
run into one manifest (vecbackup.format.shard, vecbackup.ops.commit.join)."""

from __future__ import annotations

import dataclasses
import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecbackup.errors import CorruptData, MissingData, NotFound, UsageError, VecbackupError
from vecbackup.format import layout
from vecbackup.format.manifest import DataObject, Manifest, SourceInfo
from vecbackup.format.shard import (
    Shard,
    ShardRecord,
    check_run,
    closed_key,
    owned_batches,
    parse_closed_key,
    parse_record_key,
    record_key,
    shard_of,
)
from vecbackup.ops.commit import current_records, derived_backup_id, join
from vecbackup.schema import CollectionSpec, Field, FieldType
from vecbackup.words import cli_words

T = FieldType


def spec(name: str = "docs") -> CollectionSpec:
    return CollectionSpec(name=name, fields=(Field("pk", T.INT64, is_primary=True), Field("v", T.FLOAT_VECTOR, dim=4),
                                             Field("tags", T.ARRAY, element_type=T.VARCHAR, max_capacity=8)),
                          partitions=("_default", "p1"))


def record(index: int, count: int, *, run: str = "nightly-1", rows: int = 10, started: str | None = None,
           measured: dict[tuple[str, str], int] | None = None, s: CollectionSpec | None = None,
           notes: tuple[str, ...] = ()) -> ShardRecord:
    sha = f"{index:02x}" * 32
    obj = DataObject(layout.data_key(sha), "_default", rows, 100 + index, sha)
    m = Manifest(backup_id=run, collection=s or spec(), source=SourceInfo("milvus", "2.3.5", "milvus://db:19530"),
                 objects=(obj,), partition_rows={"_default": rows, "p1": 0},
                 started_at=started or f"2026-12-01T02:15:0{index}.000000Z",
                 completed_at=f"2026-12-01T02:20:0{index}.000000Z", tool_version="0.2.0",
                 options={"batch_size": 5000, "compression_level": 3}, notes=notes)
    return ShardRecord(run, Shard(index, count), m, measured or {})


# -- which shard owns a key -------------------------------------------------------------------------


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(min_value=1, max_value=64))
def test_every_integer_key_has_exactly_one_shard(key: int, n: int):
    owners = [i for i in range(n) if Shard(i, n).owns(key)]
    assert owners == [key % n]


@given(st.text(), st.integers(min_value=1, max_value=64))
def test_every_string_key_has_exactly_one_shard(key: str, n: int):
    assert len([i for i in range(n) if Shard(i, n).owns(key)]) == 1


def test_shard_rule_is_stable_and_balanced():
    # the rule is part of the format (a run's workers may run different vecbackup builds): pin its values
    assert [shard_of(k, 4) for k in (0, 1, 5, -1, -4, 2**63 - 1)] == [0, 1, 1, 3, 0, 3]
    import zlib

    assert shard_of("ключ", 7) == zlib.crc32("ключ".encode()) % 7
    u = str(uuid.UUID(int=12345))
    assert shard_of(u, 3) == zlib.crc32(u.encode()) % 3
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"key-{i:05d}", 4)] += 1
    assert min(counts) > 850  # crc32 spreads string keys evenly
    with pytest.raises(TypeError):
        shard_of(True, 2)
    import numpy as np

    assert [shard_of(np.int64(k), 4) for k in (5, -1, 2**63 - 1)] == [1, 3, 3]  # as Python ints, never as text


@pytest.mark.parametrize("text", ["4/4", "-1/4", "0/0", "1", "a/b", "1/2/3", "0/1025"])
def test_bad_shard_options_are_usage_errors(text: str):
    with cli_words(), pytest.raises(UsageError, match=r"^--shard|out of range"):
        Shard.parse(text)
    with pytest.raises(UsageError, match=r"^shard=|out of range"):  # a schedule file's key, the API's parameter
        Shard.parse(text)


def test_shard_parse():
    assert Shard.parse("0/4") == Shard(0, 4) and Shard.parse(" 3 / 4 ").label == "3/4"


@pytest.mark.parametrize("run", ["", ".hidden", "-x", "a/b", "..", "a b", "x" * 129, "é"])
def test_bad_run_ids_are_refused(run: str):
    with pytest.raises(UsageError, match="run="):
        check_run(run)
    with cli_words(), pytest.raises(UsageError, match="--run"):
        check_run(run)


def test_record_keys_round_trip():
    key = record_key("docs/é v2", "vecbackup-sharded-29415", Shard(2, 16), "0123456789abcdef")
    assert key == "shards/docs%2F%C3%A9%20v2/vecbackup-sharded-29415/0002-of-0016.0123456789abcdef.json"
    assert parse_record_key(key) == ("docs/é v2", "vecbackup-sharded-29415", Shard(2, 16), "0123456789abcdef")
    legacy = record_key("docs", "r", Shard(2, 16))  # the one record a vecbackup before 0.3 wrote per shard
    assert legacy == "shards/docs/r/0002-of-0016.json" and parse_record_key(legacy) == ("docs", "r", Shard(2, 16), "")
    assert closed_key("docs", "r") == "shards/docs/r/closed.json" and parse_closed_key("shards/docs/r/closed.json") \
        == ("docs", "r") and parse_record_key("shards/docs/r/closed.json") is None
    for bad in ["shards/docs/run/0002-of-0016.tmp", "shards/docs/run/0016-of-0016.json",
                "shards/docs/0000-of-0001.json", "manifests/docs/x.json", "shards/docs/.run/0000-of-0001.json",
                "shards/docs/run/0002-of-0016.0123456789ABCDEF.json", "shards/docs/run/0002-of-0016.01234.json",
                "shards/docs/run/0002-of-0016..json", "shards/docs/run/٠٠٠٢-of-٠٠١٦.json"]:
        assert parse_record_key(bad) is None, bad
    with pytest.raises(ValueError):
        record_key("docs", "r", Shard(0, 1), "../x")


def test_record_json_round_trip():
    r = record(1, 3, measured={("tags", "max_length"): 17})
    assert ShardRecord.from_json(r.to_json(), where="x") == r
    assert orjson.loads(r.to_json())["format_version"] == 1  # no attempt: as a vecbackup before 0.3 wrote it
    r2 = dataclasses.replace(r, attempt="0123456789abcdef", supersedes=("", "fedcba9876543210"))
    assert ShardRecord.from_json(r2.to_json(), where="x") == r2
    assert orjson.loads(r2.to_json())["format_version"] == 2
    bad = r2.to_json().replace(b'"0123456789abcdef"', b'"../../x"')
    with pytest.raises(CorruptData):
        ShardRecord.from_json(bad, where="x")


def _attempt(r: ShardRecord, attempt: str, *supersedes: str) -> ShardRecord:
    return dataclasses.replace(r, attempt=attempt, supersedes=supersedes)


A, B, C = "a" * 16, "b" * 16, "c" * 16


def test_current_records_take_the_attempt_that_replaces_the_others():
    r0, r1 = record(0, 2), record(1, 2)
    assert current_records([_attempt(r0, A), _attempt(r1, B)], "nightly-1") == [_attempt(r0, A), _attempt(r1, B)]
    # a re-run of shard 1 names the attempts it found: B (and a record of a vecbackup before 0.3, "")
    newer = _attempt(r1, C, B, "")
    assert current_records([_attempt(r0, A), _attempt(r1, B), newer, r1], "nightly-1") == [_attempt(r0, A), newer]


@pytest.mark.parametrize("shard1", [
    [_attempt(record(1, 2), A), _attempt(record(1, 2), B)],  # two workers of one shard, or a record put back
    [_attempt(record(1, 2), A, B), _attempt(record(1, 2), B, A)],  # each claims to replace the other
    [_attempt(record(1, 2), A, B), _attempt(record(1, 2), B), _attempt(record(1, 2), C)],  # C unknown to A
])
def test_current_records_refuse_a_shard_whose_records_do_not_say_which_is_current(shard1):
    with pytest.raises(CorruptData, match=r"shard 1/2 has .* none replaces the others"):
        current_records([_attempt(record(0, 2), C), *shard1], "nightly-1")


@pytest.mark.parametrize("mutate", [
    lambda d: d.replace(b'"vecbackup-shard"', b'"vecbackup"'),
    lambda d: d.replace(b'"rule": "int-mod/crc32-utf8-mod"', b'"rule": "range"'),
    lambda d: d.replace(b'"shard": 1', b'"shard": 7'),
    lambda d: d[: len(d) // 2],
])
def test_damaged_records_are_corrupt_data(mutate):
    with pytest.raises(CorruptData):
        ShardRecord.from_json(mutate(record(1, 3).to_json()), where="shard record x")


# -- joining a run -----------------------------------------------------------------------------------


def test_join_makes_one_backup_of_every_shard_in_order():
    recs = [record(2, 3, rows=7), record(0, 3, rows=5, notes=("a note",)), record(1, 3, rows=6, notes=("a note",))]
    m = join(recs, "docs", "nightly-1")
    assert [o.rows for o in m.objects] == [5, 6, 7]
    assert m.rows == 18 and m.partition_rows == {"_default": 18, "p1": 0}
    assert m.started_at == "2026-12-01T02:15:00.000000Z" and m.completed_at == "2026-12-01T02:20:02.000000Z"
    assert m.backup_id == derived_backup_id("docs", "nightly-1", m.started_at)
    assert layout.is_backup_id(m.backup_id) and m.backup_id.startswith("20261201T021500.000000Z-")
    assert m.options == {"batch_size": 5000, "compression_level": 3, "shards": 3, "run": "nightly-1"}
    assert m.notes.count("a note") == 1 and any("3 shards (run nightly-1)" in n for n in m.notes)
    # the same records always give the same backup (a second commit finds it), whatever their order
    assert join(list(reversed(recs)), "docs", "nightly-1") == m


def test_backup_id_depends_on_collection_and_run():
    ids = {derived_backup_id(c, r, "2026-12-01T02:15:00.000000Z") for c in ("a", "b") for r in ("r1", "r2")}
    assert len(ids) == 4


def test_join_refuses_while_a_shard_is_missing():
    with pytest.raises(MissingData, match=r"shard 1/4, 3/4 missing \(2 of 4 present\)") as e:
        join([record(0, 4), record(2, 4)], "docs", "nightly-1")
    assert "BackupOptions(shard=Shard(I, 4), run='nightly-1')" in (e.value.hint or "")
    with cli_words(), pytest.raises(MissingData) as e:
        join([record(0, 4), record(2, 4)], "docs", "nightly-1")
    assert "--shard I/4 --run nightly-1" in (e.value.hint or "")
    with pytest.raises(NotFound):
        join([], "docs", "nightly-1")


def test_join_refuses_mixed_counts_and_changed_schemas():
    with pytest.raises(UsageError, match="different counts"):
        join([record(0, 2), record(1, 3)], "docs", "r")
    changed = dataclasses.replace(spec(), partitions=("_default", "p1", "p2"))
    with pytest.raises(VecbackupError, match="shard 1/2 saw a different definition"):
        join([record(0, 2), record(1, 2, s=changed)], "docs", "r")


def test_join_infers_limits_from_the_largest_shard():
    recs = [record(0, 2, measured={("tags", "max_length"): 9}), record(1, 2, measured={("tags", "max_length"): 31})]
    m = join(recs, "docs", "r")
    tags = m.collection.field("tags")
    assert tags.max_length == 31 and "max_length" in tags.inferred
    assert any("recorded 31" in n for n in m.notes)


def test_join_ignores_the_order_an_engine_lists_indexes_in():
    from vecbackup.schema import Index

    a = dataclasses.replace(spec(), indexes=(Index("v", "HNSW", index_name="v"), Index("pk", "STL_SORT",
                                                                                        index_name="pk")))
    b = dataclasses.replace(a, indexes=tuple(reversed(a.indexes)))
    assert join([record(0, 2, s=a), record(1, 2, s=b)], "docs", "r").collection == a


def test_owned_batches_cut_the_shards_keys_across_pages():
    pages = [[0, 1, 2, 3], [], [4, 5], [6, 7, 8, 9, 10]]
    assert list(owned_batches(Shard(1, 2), pages, 2)) == [[1, 3], [5, 7], [9]]
    assert list(owned_batches(Shard(0, 3), pages, 10)) == [[0, 3, 6, 9]]
    assert list(owned_batches(Shard(0, 1), [], 5)) == []
