"""Collections with functions (BM25, TEXTEMBEDDING, ...) without an engine: how they are recorded in a manifest
(format version 3), which columns a chunk holds, what reading and inserting do with a function's output, what a
target without functions plans, and the drill's full-text comparison."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pymilvus
import pytest
from pymilvus import FunctionType

from tests.unit.test_milvus_columnar import ROWS, SPEC, _as_pymilvus_rows, _fields_data
from vecbackup.engines.milvus.bulk import refusal
from vecbackup.engines.milvus.columnar import columns_of
from vecbackup.engines.milvus.inserts import insert_request
from vecbackup.engines.milvus.rows import chunk_to_rows, rows_to_chunk
from vecbackup.engines.milvus.sink import function_problem, server_release
from vecbackup.engines.milvus.source import _function_from_milvus
from vecbackup.errors import CorruptData
from vecbackup.format.codec import Chunk, Column, decode_chunk, encode_chunk
from vecbackup.format.digests import row_digests
from vecbackup.format.manifest import DataObject, Manifest, SourceInfo
from vecbackup.ops.drill.text import identical, query_of, ranked_agreement, text_function
from vecbackup.ops.incremental import digest_layout
from vecbackup.ops.mapping import plan_mapping, without_functions
from vecbackup.schema import DYNAMIC_COLUMN, CollectionSpec, Field, FieldType, Function, Index

F = FieldType
BM25 = Function("text_bm25", "BM25", ("text",), ("sparse",))


def bm25_spec(**kw: Any) -> CollectionSpec:
    fields = (Field("id", F.INT64, is_primary=True),
              Field("text", F.VARCHAR, max_length=100, extra={"enable_analyzer": "true",
                                                              "analyzer_params": '{"tokenizer": "standard"}'}),
              Field("sparse", F.SPARSE_FLOAT_VECTOR), Field("dense", F.FLOAT_VECTOR, dim=2))
    indexes = (Index("dense", "HNSW", "dense", "COSINE", {"M": 8}), Index("sparse", "SPARSE_INVERTED_INDEX",
                                                                          "sparse", "BM25", None))
    defaults: dict[str, Any] = {"name": "docs", "fields": fields, "indexes": indexes, "functions": (BM25,),
                                "enable_dynamic_field": True}
    defaults.update(kw)
    return CollectionSpec(**defaults)


def manifest_of(spec: CollectionSpec) -> Manifest:
    sha = "ab" * 32
    return Manifest("20261206T000000.000000Z-00000000", spec, SourceInfo("milvus-lite", "3.2.2", "lite"),
                    (DataObject(f"data/ab/{sha}.vbc", "_default", 2, 100, sha),), {"_default": 2},
                    "2026-12-06T00:00:00.000000Z", "2026-12-06T00:00:01.000000Z", "0.3.0")


def chunk_of(spec: CollectionSpec) -> Chunk:
    return Chunk("_default", 2, {"id": Column(np.array([1, 2], dtype="<i8")), "text": Column(["a b", "c"]),
                                 "dense": Column(np.array([[1, 0], [0, 1]], dtype="<f4")),
                                 DYNAMIC_COLUMN: Column([{"k": 1}, {}])})


# -- what the manifest records ----------------------------------------------------------------------


def test_functions_make_a_version_3_manifest_that_round_trips() -> None:
    emb = Function("embed", "TEXTEMBEDDING", ("text",), ("dense",), {"provider": "openai", "dimensions": "2"},
                   description="d", withheld=("api_key",))
    spec = bm25_spec(functions=(BM25, emb))
    m = manifest_of(spec)
    d = orjson.loads(m.to_json())
    assert d["format_version"] == 3
    assert d["collection"]["functions"] == [
        {"name": "text_bm25", "type": "BM25", "input_field_names": ["text"], "output_field_names": ["sparse"],
         "params": {}},
        {"name": "embed", "type": "TEXTEMBEDDING", "input_field_names": ["text"], "output_field_names": ["dense"],
         "params": {"provider": "openai", "dimensions": "2"}, "description": "d", "withheld": ["api_key"]}]
    assert Manifest.from_json(m.to_json()) == m
    plain = manifest_of(bm25_spec(functions=(), fields=bm25_spec().stored_fields, indexes=()))
    assert plain.format_version == 1 and "functions" not in orjson.loads(plain.to_json())["collection"]


def _edited(edit: Any) -> bytes:
    d = orjson.loads(manifest_of(bm25_spec()).to_json())
    edit(d["collection"]["functions"])
    return orjson.dumps(d)


@pytest.mark.parametrize("edit", [
    lambda fns: fns[0].update(input_field_names=["nope"]),  # a field the collection does not have
    lambda fns: fns[0].update(output_field_names=[]),
    lambda fns: fns[0].update(output_field_names=["text"], input_field_names=["text"]),
    lambda fns: fns.append(dict(fns[0], name="again")),  # one output filled by two functions
    lambda fns: fns[0].update(params=[["a", 1]]),
    lambda fns: fns[0].update(type=""),
    lambda fns: fns[0].pop("name"),
    lambda fns: fns[0].update(withheld="api_key"),
    lambda fns: fns.clear() or fns.append("BM25"),
], ids=["unknown field", "no output", "input is output", "output twice", "params", "type", "name", "withheld",
        "not an object"])
def test_a_bad_function_is_a_corrupt_manifest(edit: Any) -> None:
    with pytest.raises(CorruptData):
        Manifest.from_json(_edited(edit))


def test_chunks_hold_every_field_but_function_outputs() -> None:
    spec = bm25_spec()
    assert [f.name for f in spec.stored_fields] == ["id", "text", "dense"]
    assert [f.name for f in spec.columns] == ["id", "text", "dense", DYNAMIC_COLUMN]
    assert spec.function_outputs == {"sparse"} and spec.output_of("sparse") == BM25 and spec.output_of("text") is None
    chunk = chunk_of(spec)
    data = encode_chunk(spec.columns, chunk)
    assert set(decode_chunk(data).columns) == {"id", "text", "dense", DYNAMIC_COLUMN}
    assert len(row_digests(spec.columns, chunk)) == 2
    # an incremental backup's base must digest rows over the same columns: the output is not among them
    assert [c[0] for c in digest_layout(spec)] == ["id", "text", "dense", DYNAMIC_COLUMN]


# -- reading from and inserting into Milvus ----------------------------------------------------------


def _with_function(spec: CollectionSpec) -> CollectionSpec:
    return CollectionSpec(spec.name, spec.fields, enable_dynamic_field=spec.enable_dynamic_field,
                          functions=(Function("bm", "BM25", ("t",), ("sp",)),))


def test_reading_leaves_a_returned_output_out_of_the_chunk_and_of_the_dynamic_fields() -> None:
    spec = _with_function(SPEC)  # Milvus Lite returns a BM25 output on query; a 2.5+ server leaves it out
    columnar = columns_of(spec, "p", _fields_data(ROWS))
    rows = rows_to_chunk(spec, "p", _as_pymilvus_rows(ROWS))
    assert "sp" not in columnar.columns and "sp" not in rows.columns
    assert rows.columns[DYNAMIC_COLUMN].values == [{"color": "red"}, {}]  # not a dynamic field either
    assert encode_chunk(spec.columns, columnar) == encode_chunk(spec.columns, rows)
    without = [{k: v for k, v in r.items() if k != "sp"} for r in _as_pymilvus_rows(ROWS)]
    assert encode_chunk(spec.columns, rows_to_chunk(spec, "p", without)) == encode_chunk(spec.columns, rows)


def test_inserting_sends_no_value_for_a_function_output() -> None:
    spec = bm25_spec()
    chunk = chunk_of(spec)
    assert all("sparse" not in row for row in chunk_to_rows(spec, chunk))
    request = insert_request(spec, chunk, "docs", "", keep_ids=True)
    assert [fd.field_name for fd in request.fields_data] == ["id", "text", "dense", "$meta"]


def test_the_import_path_is_refused_for_functions() -> None:
    assert "functions" in (refusal(bm25_spec(), True) or "")


def test_a_function_is_read_as_recorded_but_for_credentials() -> None:
    raw = {"name": "embed", "id": 0, "description": "", "type": FunctionType.TEXTEMBEDDING,
           "params": {"provider": "openai", "dimensions": "8", "api_key": "sk-secret", "Token": "t"},
           "input_field_names": ["text"], "input_field_ids": [], "output_field_names": ["emb"]}
    fn = _function_from_milvus(raw)
    assert fn == Function("embed", "TEXTEMBEDDING", ("text",), ("emb",), {"provider": "openai", "dimensions": "8"},
                          withheld=("Token", "api_key"))
    assert "sk-secret" not in orjson.dumps(fn.to_dict()).decode()
    unknown = _function_from_milvus({"name": "f", "type": 42, "params": None, "input_field_names": ["a"],
                                     "output_field_names": ["b"]})
    assert unknown.type == "42" and unknown.params == {}  # a type this pymilvus cannot name: kept as the number


def test_which_milvus_can_recreate_which_function() -> None:
    assert server_release("v2.3.5") == (2, 3) and server_release("2.5.4-gpu") == (2, 5)
    assert server_release("milvus_lite-3.2.2") is None
    bm25 = BM25
    emb = Function("e", "TEXTEMBEDDING", ("text",), ("dense",))
    assert function_problem(bm25, "v2.3.5", False, pymilvus) == "Milvus v2.3.5 has no BM25 functions (since 2.5)"
    assert function_problem(bm25, "v2.5.0", False, pymilvus) is None
    assert function_problem(emb, "v2.5.9", False, pymilvus) == \
        "Milvus v2.5.9 has no TEXTEMBEDDING functions (since 2.6)"
    assert function_problem(emb, "v2.6.1", False, pymilvus) is None
    assert function_problem(bm25, "milvus_lite-3.2.2", True, pymilvus) is None
    assert function_problem(Function("m", "MINHASH", ("t",), ("b",)), "x", True, pymilvus) == \
        "Milvus Lite has no MINHASH functions"
    assert function_problem(Function("r", "RERANK", ("t",), ("o",)), "v2.6.0", False, pymilvus) is None  # server
    assert function_problem(Function("n", "NEWKIND", ("t",), ("o",)), "v9.0", False, pymilvus) == \
        "this pymilvus has no NEWKIND functions"


# -- targets without functions ------------------------------------------------------------------------


def test_qdrant_refuses_a_function_output_until_it_is_dropped() -> None:
    spec = bm25_spec()
    m = plan_mapping(spec, "milvus-lite", "qdrant-local")
    assert [(p.field, p.type) for p in m.problems] == [("sparse", "SPARSE_FLOAT_VECTOR")]
    reason = m.problems[0].reason
    assert reason.startswith("the output of BM25 function 'text_bm25' ('text' -> 'sparse'): Qdrant has no functions")
    assert "--drop-functions" in reason and "'text' still become payload keys" in reason
    dropped = plan_mapping(spec, "milvus-lite", "qdrant-local", drop_functions=True)
    assert dropped.restorable and dropped.spec.extra["qdrant"]["params"].get("sparse_vectors") is None
    assert dropped.decisions[0].kind == "function" and dropped.decisions[0].note
    assert "not recreated (--drop-functions)" in dropped.notes[0]
    assert any(d.source == "text" and d.kind == "payload key" for d in dropped.decisions)


def test_drop_functions_leaves_out_the_outputs_and_their_indexes() -> None:
    spec = bm25_spec()
    same = plan_mapping(spec, "milvus-lite", "milvus")
    assert same.identity and same.spec is spec and not same.notes
    dropped = plan_mapping(spec, "milvus-lite", "milvus", drop_functions=True)
    assert dropped.identity and dropped.spec == without_functions(spec)[0]
    out = dropped.spec
    assert out.functions == () and [f.name for f in out.fields] == ["id", "text", "dense"]
    assert [i.field_name for i in out.indexes] == ["dense"]
    assert out.columns == spec.columns  # the chunks fit it as they are
    assert dropped.notes == ["BM25 function 'text_bm25' ('text' -> 'sparse'): not recreated (--drop-functions); "
                             "its output field 'sparse' left out, 'text' restored as recorded"]


# -- the drill's full-text check -----------------------------------------------------------------------


def test_ranked_agreement_counts_ties_at_the_cut_as_agreeing() -> None:
    truth = [(1, 3.0), (2, 2.0), (3, 1.0), (4, 1.0)]
    assert ranked_agreement(truth, truth, 4) == 1.0 and identical(truth, truth, 4)
    tied = [(1, 3.0), (2, 2.0), (3, 1.0), (9, 1.0)]  # 9 has the 4th score too: the engine met it first
    assert ranked_agreement(truth, tied, 4) == 1.0 and not identical(truth, tied, 4)
    assert ranked_agreement(truth, [(1, 3.0), (2, 2.0), (3, 1.0), (9, 0.5)], 4) == 0.75  # below the cut: a miss
    assert ranked_agreement(truth, [(1, 3.0), (2, 2.0)], 4) == 0.5  # rows the copy does not find
    assert ranked_agreement([(1, 3.0)], [(1, 3.0), (7, 0.1)], 4) == 0.5  # rows only the copy finds
    assert ranked_agreement([], [], 10) == 1.0 and ranked_agreement([], [(1, 1.0)], 10) == 0.0
    assert ranked_agreement([(1, 1.0)], [(2, 1.0)], 4) == 0.0  # fewer than k hits: no cut to tie with
    assert identical([(1, -2.5)], [(1, -2.5000001)], 1) and not identical([(1, 2.5)], [(1, 2.6)], 1)
    assert not identical([(1, 2.0), (2, 1.0)], [(2, 1.0), (1, 2.0)], 2)


def test_query_words_and_the_function_searched() -> None:
    rng = random.Random(1)
    for _ in range(200):
        q = query_of("one two three four five six", rng)
        assert q is not None and 1 <= len(q.split()) <= 4 and q in "one two three four five six"
    assert query_of("   ", rng) is None and query_of(None, rng) is None and query_of(["a"], rng) is None
    assert query_of("solo", rng) == "solo"
    spec = bm25_spec()
    assert text_function(spec) == BM25
    assert text_function(bm25_spec(indexes=spec.indexes[:1])) is None  # no index on the output: not searchable
    assert text_function(bm25_spec(functions=(Function("e", "TEXTEMBEDDING", ("text",), ("dense",)),))) is None
