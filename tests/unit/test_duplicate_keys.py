"""Keys held by more than one partition, the pure parts: finding them (format/duplicates.py KeyIndex), the manifest's
record (DuplicateKeys, old and new manifests), and a restore's plan for them on each kind of target
(ops/duplicates.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from vecbackup.engines.base import KeyCopies
from vecbackup.errors import CorruptData, Unsupported, UsageError
from vecbackup.format import duplicates as dup_module
from vecbackup.format.duplicates import LISTED, DuplicateGroup, DuplicateKeys, KeyIndex, ListedKey
from vecbackup.format.manifest import DataObject, Manifest, SourceInfo
from vecbackup.ops.duplicates import Choice, plan_duplicates, restore_order, waves
from vecbackup.schema import CollectionSpec, Field, FieldType
from vecbackup.words import cli_words

LITE = KeyCopies(held=True, counted=False, last_shown=True)
SERVER = KeyCopies(held=True, counted=True, last_shown=False)
ONE_POINT = KeyCopies(held=False, counted=False, last_shown=True)
SHA = "ab" * 32

# -- finding them ---------------------------------------------------------------------------------


def test_integer_keys_are_found_exactly_whatever_the_order_of_chunks():
    index = KeyIndex(["_default", "p1", "p2"], exact=True)
    index.add("p1", np.array([5, -3, 2**62], dtype=np.int64))
    index.add("_default", np.array([7, 5], dtype=np.int64))
    index.add("p2", np.array([5, 9], dtype=np.int64))
    index.add("p1", np.array([7, 11], dtype=np.int64))
    index.add("_default", np.array([-3], dtype=np.int64))
    assert index.held() == [(-3, ("_default", "p1")), (5, ("_default", "p1", "p2")), (7, ("_default", "p1"))]


def test_a_key_twice_in_one_partition_is_not_held_by_two():
    index = KeyIndex(["a", "b"], exact=True)
    index.add("a", np.array([1, 1, 2]))
    index.add("b", np.array([3]))
    assert index.held() == []


def test_many_chunks_are_joined_as_they_come():
    index = KeyIndex(["a", "b"], exact=True)
    for i in range(200):
        index.add("a", np.arange(i * 10, i * 10 + 10))
    index.add("b", np.array([0, 1999, 5000]))
    assert len(index._parts["a"]) < 70
    assert index.held() == [(0, ("a", "b")), (1999, ("a", "b"))]


def test_hashed_keys_are_confirmed_against_the_keys_themselves(monkeypatch):
    """A hash shared by two different keys (forced here: every key hashes to its length) is never recorded."""
    def by_length(keys: Any, exact: bool) -> np.ndarray:
        return np.array([len(str(k)) for k in keys], dtype="<u8")

    monkeypatch.setattr(dup_module, "key_values", by_length)
    chunks = {"a": [["xx", "yyy", "q"]], "b": [["zz", "yyy"], ["wwww"]]}
    index = KeyIndex(["a", "b"], exact=False)
    for p, cs in chunks.items():
        for c in cs:
            index.add(p, c)
    assert set(index.suspects()) == {"a", "b"}  # "xx"/"zz" and "yyy" collide by hash
    for p, cs in chunks.items():
        for c in cs:
            index.confirm(p, c)
    assert index.held() == [("yyy", ("a", "b"))]


def test_hashed_keys_without_a_shared_hash_read_nothing_again():
    index = KeyIndex(["a", "b"], exact=False)
    index.add("a", ["k1", "k2"])
    index.add("b", ["k3"])
    assert index.suspects() == {}
    assert index.held() == []


def test_the_record_groups_counts_and_lists_at_most_LISTED_keys():
    held = [(i, ("_default", "p1")) for i in range(LISTED + 5)] + [(1000, ("_default", "p1", "p2"))]
    shown = ["_default"] * (LISTED + 4) + [None, "p2"]
    d = DuplicateKeys.found(held, shown)
    assert d.keys == LISTED + 6
    assert d.groups == (DuplicateGroup(("_default", "p1"), LISTED + 4, "_default"),
                        DuplicateGroup(("_default", "p1"), 1, None),
                        DuplicateGroup(("_default", "p1", "p2"), 1, "p2"))
    assert d.copies == LISTED + 5 + 2
    assert d.holdings == {("_default", "p1"): LISTED + 5, ("_default", "p1", "p2"): 1}
    assert len(d.listed) == LISTED and d.listed[0] == ListedKey(0, ("_default", "p1"), "_default")
    assert d.summary() == ("106 keys held by more than one partition (107 rows beyond one copy each; e.g. key "
                           "0 in '_default' and 'p1')")


def test_shards_join_their_records_and_one_without_makes_it_unrecorded():
    a = DuplicateKeys.found([(4, ("_default", "p1")), (8, ("_default", "p1"))], ["_default", "_default"])
    b = DuplicateKeys.found([(1, ("_default", "p1"))], ["p1"])
    joined = DuplicateKeys.join([a, b, DuplicateKeys()])
    assert joined is not None and joined.keys == 3
    assert [x.key for x in joined.listed] == [1, 4, 8]
    assert joined.groups == (DuplicateGroup(("_default", "p1"), 2, "_default"), DuplicateGroup(("_default", "p1"), 1,
                                                                                               "p1"))
    assert DuplicateKeys.join([a, None]) is None


# -- the manifest's record ------------------------------------------------------------------------


def _spec(partitions: tuple[str, ...] = ("_default", "p1", "p2")) -> CollectionSpec:
    return CollectionSpec(name="c", fields=(Field("id", FieldType.INT64, is_primary=True),
                                            Field("v", FieldType.FLOAT_VECTOR, dim=2)), partitions=partitions)


def _manifest(duplicates: DuplicateKeys | None, rows: dict[str, int] | None = None, engine: str = "milvus-lite",
              ) -> Manifest:
    rows = rows or {"_default": 12, "p1": 10, "p2": 0}
    objects = tuple(DataObject(f"data/ab/{SHA}.vbc", p, n, 100, SHA) for p, n in rows.items() if n)
    return Manifest(backup_id="b", collection=_spec(), source=SourceInfo(engine, "v", "addr"), objects=objects,
                    partition_rows=rows, started_at="2026-01-01T00:00:00.000000Z",
                    completed_at="2026-01-01T00:00:01.000000Z", tool_version="0.2.0", duplicate_keys=duplicates)


TWO = DuplicateKeys.found([(3, ("_default", "p1")), (4, ("_default", "p1"))], ["_default", "_default"])


def test_a_manifest_round_trips_its_record_and_stays_readable_by_earlier_readers():
    m = _manifest(TWO)
    doc = orjson.loads(m.to_json())
    assert doc["duplicate_keys"] == {
        "keys": 2, "groups": [{"partitions": ["_default", "p1"], "keys": 2, "shown": "_default"}],
        "listed": [{"key": 3, "partitions": ["_default", "p1"], "shown": "_default"},
                   {"key": 4, "partitions": ["_default", "p1"], "shown": "_default"}]}
    assert doc["format_version"] == 1  # an optional key: every earlier reader reads the manifest (and ignores it)
    assert Manifest.from_json(m.to_json()).duplicate_keys == TWO
    none = _manifest(DuplicateKeys())
    assert orjson.loads(none.to_json())["duplicate_keys"] == {"keys": 0, "groups": [], "listed": []}
    assert Manifest.from_json(none.to_json()).duplicate_keys == DuplicateKeys()
    del doc["duplicate_keys"]  # a manifest of an earlier vecbackup: not recorded
    assert Manifest.from_dict(doc).duplicate_keys is None


@pytest.mark.parametrize("change", [
    lambda d: d.update(keys=3),
    lambda d: d["groups"][0].update(partitions=["_default", "nope"]),
    lambda d: d["groups"][0].update(partitions=["_default"]),
    lambda d: d["groups"][0].update(shown="p2"),
    lambda d: d["listed"][0].update(key=True),
    lambda d: d["listed"].extend(d["listed"]),
    lambda d: d.update(groups={}),
    lambda d: d.update(keys=-1),
])
def test_a_bad_record_is_a_corrupt_manifest(change):
    doc = orjson.loads(_manifest(TWO).to_json())
    change(doc["duplicate_keys"])
    with pytest.raises(CorruptData):
        Manifest.from_dict(doc)


# -- planning a restore ---------------------------------------------------------------------------


def test_choices_parse():
    assert Choice.parse("keep") == Choice()
    assert Choice.parse(" shown ") == Choice("shown")
    assert Choice.parse("partition:p1, _default") == Choice("partition", ("p1", "_default"))
    assert Choice.parse("partition:p1,_default").label == "partition:p1,_default"
    for bad in ("all", "partition:", "partition:a,,b", "partition:a,a", ""):
        with pytest.raises(UsageError):
            Choice.parse(bad)


def test_the_order_puts_each_chosen_partition_after_the_others_and_finds_circles():
    g = DuplicateGroup(("_default", "p1"), 1)
    h = DuplicateGroup(("p1", "p2"), 1)
    assert restore_order(["_default", "p1", "p2"], []) == ("_default", "p1", "p2")
    assert restore_order(["_default", "p1", "p2"], [(g, "_default")]) == ("p1", "_default", "p2")
    assert restore_order(["_default", "p1", "p2"], [(g, "_default"), (h, "p1")]) == ("p2", "p1", "_default")
    assert restore_order(["_default", "p1"], [(g, "_default"), (g, "p1")]) is None


def test_milvus_lite_keeps_every_copy_restored_in_order_and_counted_by_partition():
    plan = plan_duplicates(_manifest(TWO), LITE, Choice(), "Milvus Lite file x")
    assert plan.order == ("p1", "_default", "p2") and plan.settle and plan.ordered
    assert plan.count == 20 and plan.partition_rows == {"_default": 12, "p1": 10, "p2": 0} and plan.dropped == 0
    assert "the copy collection-level reads showed on the source (restored last)" in plan.notes[1]
    chosen = plan_duplicates(_manifest(TWO), LITE, Choice.parse("partition:p1"), "Milvus Lite file x")
    assert chosen.order == ("_default", "p1", "p2") and chosen.count == 20
    from_server = DuplicateKeys.found([(3, ("_default", "p1"))], [None])  # a 2.3 server does not tell
    plan = plan_duplicates(_manifest(from_server, engine="milvus"), LITE, Choice(), "Milvus Lite file x")
    assert plan.order == ("_default", "p1", "p2") and plan.settle and plan.count == 21
    assert plan.notes[1].endswith("show one copy of each key: for 1 key the backup does not know which copy the "
                                  "source showed (a Milvus server does not tell): the copy of the partition restored "
                                  "last (order: '_default', 'p1', 'p2')")


def test_a_milvus_server_keeps_and_counts_every_copy_in_any_order():
    plan = plan_duplicates(_manifest(TWO), SERVER, Choice(), "Milvus at h")
    assert plan.order == () and not plan.settle and not plan.ordered
    assert plan.count == 22 and plan.partition_rows is None
    assert "not fixed by the engine" in plan.notes[1]


def test_a_target_of_one_point_per_key_is_refused_unless_told_which_copy_to_keep():
    with pytest.raises(Unsupported) as e:
        plan_duplicates(_manifest(TWO), ONE_POINT, Choice(), "Qdrant at q")
    assert "holds one point per key, so 2 rows of the backup cannot be restored" in e.value.message
    assert "duplicate_keys='shown'" in str(e.value.hint) and "duplicate_keys='partition:" in str(e.value.hint)
    with cli_words(), pytest.raises(Unsupported) as e:
        plan_duplicates(_manifest(TWO), ONE_POINT, Choice(), "Qdrant at q")
    assert "--duplicate-keys shown" in str(e.value.hint) and "--duplicate-keys partition:" in str(e.value.hint)
    shown = plan_duplicates(_manifest(TWO), ONE_POINT, Choice("shown"), "Qdrant at q")
    assert shown.order == ("p1", "_default", "p2") and not shown.settle
    assert shown.count == 20 and shown.dropped == 2 and shown.partition_rows is None
    assert "2 rows of the backup are not (--duplicate-keys shown)" in shown.notes[1]
    p1 = plan_duplicates(_manifest(TWO), ONE_POINT, Choice("partition", ("p1",)), "Qdrant at q")
    assert p1.order == ("_default", "p1", "p2") and p1.count == 20


def test_choices_the_backup_cannot_answer_are_refused():
    unknown = DuplicateKeys.found([(3, ("_default", "p1"))], [None])  # a 2.3 server does not tell
    with pytest.raises(Unsupported, match="does not record which copy collection-level reads showed for 1"):
        plan_duplicates(_manifest(unknown, engine="milvus"), ONE_POINT, Choice("shown"), "Qdrant at q")
    three = DuplicateKeys.found([(3, ("_default", "p1")), (5, ("p1", "p2"))], ["_default", "p2"])
    with pytest.raises(Unsupported, match=r"1 key is held by none of these partitions"):
        plan_duplicates(_manifest(three), ONE_POINT, Choice("partition", ("_default",)), "Qdrant at q")
    with pytest.raises(UsageError, match="'p9', which the backup does not have"):
        plan_duplicates(_manifest(three), ONE_POINT, Choice("partition", ("p9",)), "Qdrant at q")
    circle = DuplicateKeys.found([(3, ("_default", "p1")), (5, ("_default", "p1"))], ["_default", "p1"])
    with pytest.raises(Unsupported, match="no one order of restoring"):
        plan_duplicates(_manifest(circle), ONE_POINT, Choice("shown"), "Qdrant at q")
    kept = plan_duplicates(_manifest(circle), LITE, Choice(), "Milvus Lite file x")  # every copy is still held
    assert kept.order == ("_default", "p1", "p2") and "another copy than the source's" in kept.notes[1]


def test_a_backup_that_does_not_record_them():
    old = _manifest(None)
    lite = plan_duplicates(old, LITE, Choice(), "Milvus Lite file x")
    assert lite.unrecorded and lite.settle and lite.order == ("_default", "p1", "p2") and not lite.ordered
    assert lite.count == 22 and lite.partition_rows == {"_default": 12, "p1": 10, "p2": 0} and lite.notes == ()
    server = plan_duplicates(old, SERVER, Choice(), "Milvus at h")
    assert server.unrecorded and not server.settle and server.order == () and server.count == 22
    one = plan_duplicates(_manifest(None, rows={"_default": 5, "p1": 0, "p2": 0}), LITE, Choice(), "x")
    assert not one.unrecorded and not one.settle
    assert plan_duplicates(_manifest(DuplicateKeys()), ONE_POINT, Choice(), "x") == plan_duplicates(
        _manifest(DuplicateKeys()), LITE, Choice(), "x")


def test_waves_go_partition_by_partition_in_the_plan_order():
    objects = [DataObject(f"data/ab/{SHA}.vbc", p, 1, 1, SHA) for p in ("_default", "p1", "_default", "p2")]
    plan = plan_duplicates(_manifest(TWO), LITE, Choice(), "x")
    assert [[o.partition for o in w] for w in waves(objects, plan)] == [["p1"], ["_default", "_default"], ["p2"]]
    server = plan_duplicates(_manifest(TWO), SERVER, Choice(), "x")
    assert waves(objects, server) == [objects]
