"""Schema limits measured from rows (backup of a source that does not report them) and checked against rows (a
server that refused an insert): vecbackup.limits, pure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecbackup import limits
from vecbackup.format.codec import Chunk, Column
from vecbackup.format.manifest import Manifest
from vecbackup.schema import CollectionSpec, Field, FieldType

WORDS = Field("words", FieldType.ARRAY, element_type=FieldType.VARCHAR, max_capacity=4)  # max_length unreported
TITLE = Field("title", FieldType.VARCHAR, max_length=8)
TAGS = Field("tags", FieldType.ARRAY, element_type=FieldType.INT64)  # max_capacity unreported
SPEC = CollectionSpec("c", (Field("id", FieldType.INT64, is_primary=True), TITLE, WORDS, TAGS,
                            Field("v", FieldType.FLOAT_VECTOR, dim=2)))


def _chunk(words: list, titles: list, tags: list, valid: np.ndarray | None = None) -> Chunk:
    n = len(words)
    return Chunk("", n, {"id": Column(np.arange(n, dtype="<i8")), "title": Column(titles),
                         "words": Column(words, valid), "tags": Column(tags),
                         "v": Column(np.zeros((n, 2), dtype="<f4"))})


def test_applicable_and_unset():
    assert limits.applicable(TITLE) == ("max_length",)
    assert limits.applicable(WORDS) == ("max_capacity", "max_length")
    assert limits.applicable(TAGS) == ("max_capacity",)
    assert limits.applicable(Field("v", FieldType.FLOAT_VECTOR, dim=2)) == ()
    assert limits.unset(SPEC) == {"words": ("max_length",), "tags": ("max_capacity",)}


def test_lengths_are_utf8_bytes_and_nulls_are_skipped():
    # "ééé" is 3 characters and 6 bytes: Milvus counts bytes
    chunk = _chunk([["a"], ["ééé", "b"], None, ["x" * 50]], ["t", "éé", "", "abc"], [[1], [], [1, 2, 3], []],
                   valid=np.array([True, True, False, False]))
    assert limits.measure(WORDS, chunk.columns["words"], "max_length") == (6, 1)  # row 3 is null: not counted
    assert limits.measure(WORDS, chunk.columns["words"], "max_capacity") == (2, 1)
    assert limits.measure(TITLE, chunk.columns["title"], "max_length") == (4, 1)
    assert limits.measure(TAGS, chunk.columns["tags"], "max_capacity") == (3, 2)


def test_meter_records_the_largest_over_chunks_marked_inferred():
    meter = limits.LimitMeter(limits.unset(SPEC))
    meter.add(SPEC, _chunk([["ab"], []], ["a", "b"], [[1, 2], []]))
    meter.add(SPEC, _chunk([["abcdefghij", "c"]], ["a"], [[1]]))
    meter.add(SPEC, _chunk([["é"]], ["a"], [[1, 2, 3, 4, 5]]))
    spec, notes = limits.with_inferred(SPEC, meter.largest, "milvus-lite")
    words, tags = spec.field("words"), spec.field("tags")
    assert (words.max_length, words.inferred, words.max_capacity) == (10, ("max_length",), 4)
    assert (tags.max_capacity, tags.inferred) == (5, ("max_capacity",))
    assert spec.field("title") == TITLE  # reported: untouched
    assert len(notes) == 2 and all("milvus-lite" in n and "inferred" in n and "--field-params" in n for n in notes)
    assert any("'words'" in n and "recorded 10" in n for n in notes)


def test_an_empty_column_records_one_not_zero():
    meter = limits.LimitMeter({"words": ("max_length",)})
    meter.add(SPEC, _chunk([[], None], ["a", "b"], [[], []]))
    spec, _ = limits.with_inferred(SPEC, meter.largest, "milvus-lite")
    assert spec.field("words").max_length == 1  # a server refuses max_length 0


def test_inferred_survives_the_manifest_round_trip():
    spec, _ = limits.with_inferred(SPEC, {("words", "max_length"): 17}, "milvus-lite")
    back = CollectionSpec.from_dict(spec.to_dict())
    assert back == spec and back.field("words").inferred == ("max_length",)
    assert "inferred" not in spec.field("title").to_dict()  # only where something was inferred


def test_manifest_with_bad_inferred_is_corrupt():
    from vecbackup.errors import CorruptData

    doc = {"format": "vecbackup", "format_version": 1, "backup_id": "b", "started_at": "", "completed_at": "",
           "source": {"engine": "milvus"}, "objects": [],
           "collection": {"name": "c", "fields": [{"name": "id", "type": "INT64", "is_primary": True,
                                                   "inferred": "max_length"}]}}
    import orjson

    with pytest.raises(CorruptData):
        Manifest.from_json(orjson.dumps(doc))


def test_violations_name_the_field_the_limit_and_the_row():
    spec = CollectionSpec("c", (Field("id", FieldType.INT64, is_primary=True), TITLE,
                                Field("words", FieldType.ARRAY, element_type=FieldType.VARCHAR, max_capacity=2,
                                      max_length=3), Field("tags", FieldType.ARRAY, element_type=FieldType.INT64,
                                                           max_capacity=9), Field("v", FieldType.FLOAT_VECTOR, dim=2)))
    ok = _chunk([["abc"], []], ["12345678", ""], [[1], []])
    assert limits.violations(spec, ok) == []
    bad = _chunk([["abc"], ["a", "b", "c"], ["abcd"]], ["ok", "123456789", "é" * 5], [[], [], []])
    found = {(v.field, v.limit): v for v in limits.violations(spec, bad)}
    assert set(found) == {("title", "max_length"), ("words", "max_capacity"), ("words", "max_length")}
    assert (found["title", "max_length"].found, found["title", "max_length"].row) == (10, 2)  # 5 × 2 bytes
    assert str(found["words", "max_capacity"]) == "an array of 3 elements exceeds its max_capacity 2"
    assert str(found["title", "max_length"]) == "a value of 10 bytes exceeds its max_length 8"


@given(st.lists(st.lists(st.text(max_size=12), max_size=5) | st.none(), min_size=1, max_size=30))
def test_measured_limits_never_produce_violations(rows):
    """Whatever the rows, the limits measured from them admit them (the inferred schema holds its own data)."""
    valid = np.array([r is not None for r in rows])
    chunk = _chunk(rows, ["t"] * len(rows), [[]] * len(rows), valid=valid)
    meter = limits.LimitMeter({"words": ("max_length", "max_capacity")})
    meter.add(SPEC, chunk)
    spec, _ = limits.with_inferred(SPEC, meter.largest, "x")
    assert [v for v in limits.violations(spec, chunk) if v.field == "words"] == []
    longest = max((len(s.encode()) for r in rows if r for s in r), default=0)
    assert spec.field("words").max_length == max(longest, 1)
