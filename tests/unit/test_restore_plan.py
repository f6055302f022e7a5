"""The pure parts of planning a restore: user overrides of what the backup records, collection-name rules per
engine, and the option parsers behind them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vecbackup import errors
from vecbackup.cli.options import parse_collection_params, parse_field_params, parse_index_types
from vecbackup.cli.verify_cmd import checked_text
from vecbackup.engines import milvus
from vecbackup.engines.qdrant import sink as qdrant
from vecbackup.errors import UsageError
from vecbackup.ops.restore import apply_overrides
from vecbackup.schema import CollectionSpec, Field, FieldType

SPEC = CollectionSpec(
    "docs",
    (Field("id", FieldType.INT64, is_primary=True),
     Field("title", FieldType.VARCHAR, max_length=32, description="the title"),
     Field("words", FieldType.ARRAY, element_type=FieldType.VARCHAR, max_capacity=4, max_length=7,
           inferred=("max_length",)),
     Field("tenant", FieldType.VARCHAR, max_length=8, is_partition_key=True),
     Field("v", FieldType.FLOAT_VECTOR, dim=4)),
    consistency_level=None, extra={"num_partitions": None},
)


def test_no_overrides_only_notes_inferred_limits():
    spec, notes = apply_overrides(SPEC, {}, {})
    assert spec == SPEC
    assert notes == ["field 'words': max_length 7 was measured from the backup's data (the source did not report "
                     "it); --field-params words:max_length=N sets another"]


def test_field_params_replace_and_clear_inferred():
    spec, notes = apply_overrides(SPEC, {"words": {"max_length": 64}, "title": {"description": "Title, short"}}, {})
    words = spec.field("words")
    assert (words.max_length, words.inferred, words.max_capacity) == (64, (), 4)
    assert spec.field("title").description == "Title, short"
    assert "field 'words': max_length 7 -> 64 (--field-params)" in notes
    assert not any("measured from the backup" in n for n in notes)  # the user chose it now


def test_collection_params():
    spec, notes = apply_overrides(SPEC, {}, {"consistency_level": "bounded", "num_partitions": 16,
                                             "description": "restored"})
    assert (spec.consistency_level, spec.extra["num_partitions"], spec.description) == ("Bounded", 16, "restored")
    assert "collection consistency_level None -> 'Bounded' (--collection-params)" in notes
    assert "collection num_partitions None -> 16 (--collection-params)" in notes


@pytest.mark.parametrize("fields,coll,needle", [
    ({"nosuch": {"max_length": 3}}, {}, "names field 'nosuch'"),
    ({"id": {"max_length": 3}}, {}, "a INT64 field has no max_length"),
    ({"v": {"max_capacity": 3}}, {}, "a FLOAT_VECTOR field has no max_capacity"),
    ({"title": {"max_length": 0}}, {}, "max_length must be a whole number of at least 1"),
    ({"title": {"max_length": "big"}}, {}, "max_length must be a whole number"),
    ({"title": {"dim": 3}}, {}, "unknown parameter 'dim'"),
    ({}, {"consistency_level": "Sometimes"}, "is not one of Strong, Session, Bounded, Eventually"),
    ({}, {"shards": 2}, "unknown parameter 'shards'"),
])
def test_bad_overrides_are_usage_errors(fields, coll, needle):
    with pytest.raises(UsageError) as e:
        apply_overrides(SPEC, fields, coll)
    assert needle in str(e.value)


def test_num_partitions_needs_a_partition_key():
    spec = CollectionSpec("c", (Field("id", FieldType.INT64, is_primary=True), Field("v", FieldType.FLOAT_VECTOR,
                                                                                      dim=2)))
    with pytest.raises(UsageError, match="partition key"):
        apply_overrides(spec, {}, {"num_partitions": 4})


def test_option_parsers():
    assert parse_field_params(["words:max_length=64,max_capacity=8", 'title:{"description": "a, b"}',
                               "words:description=w"]) == {
        "words": {"max_length": 64, "max_capacity": 8, "description": "w"}, "title": {"description": "a, b"}}
    assert parse_collection_params(["consistency_level=Bounded,num_partitions=16", "description=x"]) == {
        "consistency_level": "Bounded", "num_partitions": 16, "description": "x"}
    for bad in (["words"], [":max_length=3"], ["words:max_length"], ["words:{not json"]):
        with pytest.raises(UsageError, match="bad --field-params"):
            parse_field_params(bad)
    with pytest.raises(UsageError, match="bad --collection-params"):
        parse_collection_params(["consistency_level"])
    assert parse_index_types(["v:IVF_FLAT", " bits : BIN_FLAT ", "v:IVF_FLAT"]) == {"v": "IVF_FLAT", "bits": "BIN_FLAT"}
    for bad in (["v"], [":HNSW"], ["v:"], ["v:index_type=IVF_PQ"], ["v:IVF_PQ,nlist=64"]):
        with pytest.raises(UsageError, match="bad --index-type"):
            parse_index_types(bad)
    with pytest.raises(UsageError, match="--index-type gives field 'v' two index types, HNSW and FLAT"):
        parse_index_types(["v:HNSW", "v:FLAT"])


@pytest.mark.parametrize("name,ok", [
    ("docs", True), ("_private", True), ("Docs_2", True), ("a" * 255, True),
    ("bad name!", False), ("1abc", False), ("é", False), ("docs-v2", False), ("", False), ("a" * 256, False),
    ("x.y", False),
])
def test_milvus_name_rules(name, ok):
    assert (milvus.name_problem(name) is None) is ok


@pytest.mark.parametrize("name,ok", [
    ("docs", True), ("docs-v2.1", True), ("bad name!", True), ("é", True), ("a" * 255, True),
    ("../etc", False), ("a/b", False), ("a\\b", False), ("x:y", False), ("tab\t", False), ("", False),
    ("a" * 256, False), ("q?", False),
])
def test_qdrant_name_rules(name, ok):
    assert (qdrant.name_problem(name) is None) is ok


def test_verify_summary_says_what_was_checked():
    assert checked_text({"stat": 0, "checksum": 2, "decode": 0}) == "2 objects read back with a matching SHA-256"
    assert checked_text({"stat": 7, "checksum": 0, "decode": 1}) == \
        "1 object fully decoded; 7 objects present with the recorded size"
    assert checked_text({"stat": 0, "checksum": 0, "decode": 0}) == "no objects"


def test_exit_codes_doc_mirrors_the_error_hierarchy():
    """docs/EXIT_CODES.md has one row per error class, with its code, and no code is left 'reserved'."""
    doc = (Path(__file__).parents[2] / "docs" / "EXIT_CODES.md").read_text()
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", doc, re.MULTILINE)}
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.VecbackupError)]
    assert {c.exit_code for c in classes} | {0, errors.EXIT_INTERRUPTED} == set(rows)
    assert "reserved" not in doc.lower()
    # the module docstring's tree lists every class with its code, too
    tree = errors.__doc__ or ""
    for c in classes:
        assert re.search(rf"{c.__name__} \.+ {c.exit_code}\b", tree), c.__name__
