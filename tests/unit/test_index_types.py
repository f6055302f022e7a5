"""Index types and their build parameters (vecbackup/index_types.py): what --index-type and --index-params may ask
of a restore, checked while it is planned, before anything is created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vecbackup.errors import UsageError
from vecbackup.index_types import (
    BINARY,
    DENSE,
    MILVUS,
    MILVUS_TYPES,
    QDRANT,
    SCALAR,
    SPARSE,
    check_keys,
    choose_type,
    defaults,
    describe,
    field_kind,
    plan_indexes,
    takes,
    types_for,
)
from vecbackup.schema import CollectionSpec, Field, FieldType, Index
from vecbackup.words import api_words, cli_words

F = FieldType
SPEC = CollectionSpec("docs", (
    Field("id", F.INT64, is_primary=True),
    Field("v", F.FLOAT_VECTOR, dim=8),
    Field("bits", F.BINARY_VECTOR, dim=16),
    Field("sp", F.SPARSE_FLOAT_VECTOR),
    Field("title", F.VARCHAR, max_length=20),
    Field("n", F.INT32),
), indexes=(
    Index("v", "HNSW", "v_idx", "COSINE", {"M": 16, "efConstruction": 200}),
    Index("bits", "BIN_IVF_FLAT", "", "HAMMING", {"nlist": 64}),
    Index("sp", "SPARSE_INVERTED_INDEX", "", "IP", None),
    Index("title", "Trie", "", None, {}),
))


def test_the_table() -> None:
    """The build parameters of the index types the issue names, as the Milvus documentation gives them."""
    expected = {"HNSW": ("M", "efConstruction"), "IVF_FLAT": ("nlist",), "IVF_SQ8": ("nlist",),
                "IVF_PQ": ("nlist", "m", "nbits"), "FLAT": (), "BIN_FLAT": (), "BIN_IVF_FLAT": ("nlist",),
                "STL_SORT": (), "Trie": (), "BITMAP": ()}
    for name, params in expected.items():
        assert takes(name) == (*params, "mmap.enabled"), name
    assert "drop_ratio_build" in (takes("SPARSE_INVERTED_INDEX") or ()) and "bm25_k1" in (takes("SPARSE_WAND") or ())
    assert takes("hnsw") == takes("HNSW") and takes("TRIE") == takes("Trie")  # any case
    assert takes("AUTOINDEX") is None and takes("NO_SUCH_TYPE") is None  # not checked: the server decides
    assert defaults("HNSW") == {"M": 16, "efConstruction": 200} and defaults("ivf_flat") == {"nlist": 128}
    assert defaults("IVF_PQ") is None and defaults("FLAT") is None
    assert all(t.name.upper() == key for key, t in MILVUS_TYPES.items())
    assert set(types_for(BINARY)) == {"BIN_FLAT", "BIN_IVF_FLAT", "AUTOINDEX"}
    assert set(types_for(SPARSE)) == {"SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX"}
    assert "HNSW" in types_for(DENSE) and "HNSW" not in types_for(SCALAR) and "Trie" in types_for(SCALAR)


@pytest.fixture(autouse=True)
def _command_line_words() -> Iterator[None]:
    """The messages below as the command line words them (test_api_words: as the API does)."""
    with cli_words():
        yield


def test_api_words() -> None:
    """Called through the API, the same refusals name the API's parameters (RestoreOptions.index_types /
    index_params), not the command line's flags."""
    with api_words():
        with pytest.raises(UsageError) as e:
            plan_indexes(SPEC, MILVUS, {}, {"v": {"index_type": "IVF_PQ", "nlist": 64}})
        assert e.value.message == ("index_params['v']: index type HNSW (recorded) takes M, efConstruction (and "
                                   "mmap.enabled), not index_type, nlist")
        assert e.value.hint == ("index_types={'v': 'TYPE'} builds another index type; index_params then gives that "
                                "type's parameters")
        with pytest.raises(UsageError) as e:
            plan_indexes(SPEC, MILVUS, {"v": "HNSWX"}, {})
        assert e.value.message == "index_types={'v': 'HNSWX'}: not an index type vecbackup knows"
        with pytest.raises(UsageError, match=r"^index_types names field 'n', which has no index"):
            plan_indexes(SPEC, MILVUS, {"n": "STL_SORT"}, {})
        with pytest.raises(UsageError) as e:
            plan_indexes(SPEC, QDRANT, {"v": "IVF_FLAT"}, {})
        assert e.value.hint == ("index_types={'v': 'HNSW'} with index_params={'v': {'M': 16, 'efConstruction': "
                                "100}}, or a Milvus target")
        _, notes = plan_indexes(SPEC, MILVUS, {"v": "IVF_FLAT"}, {"v": {"nlist": 8}})
        assert notes[0].endswith("(index_types, index_params)")


def test_field_kinds() -> None:
    assert [field_kind(SPEC.field(n)) for n in ("v", "bits", "sp", "title")] == [DENSE, BINARY, SPARSE, SCALAR]
    assert field_kind(Field("f16", F.FLOAT16_VECTOR, dim=4)) == DENSE
    multi = Field("mv", F.ARRAY, element_type=F.FLOAT, dim=4, extra={"multivector": {"comparator": "max_sim"}})
    assert field_kind(multi) == DENSE  # a Qdrant multivector


def test_the_issues_refusal() -> None:
    """--index-params v:index_type=IVF_PQ,nlist=64,m=8,nbits=8 on an HNSW backup: refused in the plan, one line
    naming the field, the keys, the index type and the keys it takes."""
    with pytest.raises(UsageError) as e:
        plan_indexes(SPEC, MILVUS, {}, {"v": {"index_type": "IVF_PQ", "nlist": 64, "m": 8, "nbits": 8}})
    assert e.value.message == ("--index-params v: index type HNSW (recorded) takes M, efConstruction (and "
                               "mmap.enabled), not index_type, nlist, m, nbits")
    assert "--index-type v:TYPE" in (e.value.hint or "")
    assert "\n" not in str(e.value)


def test_index_type_with_its_parameters() -> None:
    spec, notes = plan_indexes(SPEC, MILVUS, {"v": "ivf_pq"}, {"v": {"nlist": 64, "m": 8, "nbits": 8}})
    v = next(i for i in spec.indexes if i.field_name == "v")
    assert v == Index("v", "IVF_PQ", "v_idx", "COSINE", {"nlist": 64, "m": 8, "nbits": 8})  # the recorded M goes
    assert notes == ["index on 'v': HNSW (COSINE) M=16, efConstruction=200 -> IVF_PQ (COSINE) nlist=64, m=8, nbits=8 "
                     "(--index-type, --index-params)"]
    assert spec.indexes[1:] == SPEC.indexes[1:] and spec.fields == SPEC.fields


def test_index_type_alone_builds_with_defaults() -> None:
    spec, notes = plan_indexes(SPEC, MILVUS, {"v": "IVF_FLAT"}, {})
    assert spec.indexes[0].params is None  # nothing recorded for this type: the sink builds the engine's defaults
    assert notes == ["index on 'v': HNSW (COSINE) M=16, efConstruction=200 -> IVF_FLAT (COSINE) the engine default "
                     "parameters (--index-type)"]
    with pytest.raises(UsageError, match=r"index type IVF_FLAT \(--index-type\) takes nlist .*not M"):
        plan_indexes(SPEC, MILVUS, {"v": "IVF_FLAT"}, {"v": {"M": 16}})  # the new type's keys, not the recorded


def test_same_type_params_are_laid_over_the_recorded() -> None:
    spec, notes = plan_indexes(SPEC, MILVUS, {"v": "hnsw"}, {"v": {"M": 32}})
    assert spec.indexes[0] == Index("v", "HNSW", "v_idx", "COSINE", {"M": 32, "efConstruction": 200})
    assert notes == ["index on 'v': HNSW (COSINE) M=16, efConstruction=200 -> HNSW (COSINE) M=32, efConstruction=200 "
                     "(--index-type, --index-params)"]
    spec, notes = plan_indexes(SPEC, MILVUS, {}, {"sp": {"bm25_k1": 1.2}, "v": {"mmap.enabled": True}})
    assert spec.indexes[2].params == {"bm25_k1": 1.2}  # over parameters the source did not report
    assert spec.indexes[0].params == {"M": 16, "efConstruction": 200, "mmap.enabled": True}
    assert plan_indexes(SPEC, MILVUS, {}, {}) == (SPEC, [])


@pytest.mark.parametrize("types,params,needle", [
    ({"v": "HNSWX"}, {}, "--index-type v:HNSWX: not an index type vecbackup knows"),
    ({"v": "BIN_FLAT"}, {}, "--index-type v:BIN_FLAT: BIN_FLAT is built on binary vector fields; 'v' is FLOAT_VECTOR"),
    ({"bits": "HNSW"}, {}, "HNSW is built on dense vector fields; 'bits' is BINARY_VECTOR"),
    ({"title": "IVF_FLAT"}, {}, "IVF_FLAT is built on dense vector fields; 'title' is VARCHAR"),
    ({"sp": "Trie"}, {}, "Trie is built on scalar fields; 'sp' is SPARSE_FLOAT_VECTOR"),
    ({"n": "STL_SORT"}, {}, "--index-type names field 'n', which has no index in the backup"),
    ({}, {"nosuch": {"M": 4}}, "--index-params names field 'nosuch', which has no index in the backup"),
    ({}, {"bits": {"M": 4}}, "index type BIN_IVF_FLAT (recorded) takes nlist (and mmap.enabled), not M"),
    ({}, {"title": {"nlist": 4}}, "index type Trie (recorded) takes no build parameters (and mmap.enabled), not nlist"),
    ({"v": "FLAT"}, {"v": {"nlist": 4}}, "index type FLAT (--index-type) takes no build parameters"),
])
def test_refusals(types: dict[str, str], params: dict[str, dict[str, int]], needle: str) -> None:
    with pytest.raises(UsageError) as e:
        plan_indexes(SPEC, MILVUS, types, params)
    assert needle in e.value.message


def test_unknown_types_are_not_checked() -> None:
    """A recorded index type the table does not know (a newer Milvus), and AUTOINDEX: any keys (the server
    decides)."""
    newer = CollectionSpec("n", SPEC.fields[:2], indexes=(Index("v", "FUTURE_ANN", params={"x": 1}),))
    spec, _ = plan_indexes(newer, MILVUS, {}, {"v": {"y": 2}})
    assert spec.indexes[0].params == {"x": 1, "y": 2}
    spec, _ = plan_indexes(SPEC, MILVUS, {"sp": "AUTOINDEX"}, {"sp": {"bm25_k1": 1.2}})
    assert (spec.indexes[2].index_type, spec.indexes[2].params) == ("AUTOINDEX", {"bm25_k1": 1.2})
    check_keys("v", "FUTURE_ANN", ["anything"], "recorded")  # no error


def test_qdrant_target() -> None:
    """Into Qdrant only HNSW applies to a dense vector (FLAT: no graph, m=0); Qdrant's own HNSW names are held as the
    engine-neutral ones; its other keys are checked by qdrant-client's models (engines/qdrant/model.py)."""
    q = CollectionSpec("q", (Field("id", F.VARCHAR, max_length=36, is_primary=True),
                             Field("v", F.FLOAT_VECTOR, dim=4), Field("sp", F.SPARSE_FLOAT_VECTOR)),
                       indexes=(Index("v", "HNSW", metric_type="COSINE", params={"M": 16}),
                                Index("sp", "SPARSE_INVERTED_INDEX", metric_type="IP", params={}),
                                Index("tenant", "PAYLOAD_KEYWORD", params={})))
    spec, _ = plan_indexes(q, QDRANT, {}, {"v": {"m": 32, "ef_construct": 128, "on_disk": True}})
    assert spec.indexes[0].params == {"M": 32, "efConstruction": 128, "on_disk": True}
    spec, notes = plan_indexes(q, QDRANT, {"v": "flat"}, {})
    assert notes == ["index on 'v': HNSW (COSINE) M=16 -> FLAT (COSINE) (--index-type)"]
    assert (spec.indexes[0].index_type, spec.indexes[0].params) == ("FLAT", {})
    assert choose_type(q.field("v"), "hnsw", QDRANT) == "HNSW"
    with pytest.raises(UsageError) as e:
        plan_indexes(q, QDRANT, {"v": "IVF_FLAT"}, {})
    assert e.value.message == ("--index-type v:IVF_FLAT: into Qdrant only HNSW applies (FLAT: HNSW with m=0, exact "
                               "search)")
    for name in ("sp", "tenant"):  # a sparse vector; a payload key, which is no schema field
        with pytest.raises(UsageError, match=f"--index-type {name}:HNSW: Qdrant has one kind of index for a"):
            plan_indexes(q, QDRANT, {name: "HNSW"}, {})


def test_describe() -> None:
    assert describe(SPEC.indexes[0]) == "HNSW (COSINE) M=16, efConstruction=200"
    assert describe(SPEC.indexes[2]) == "SPARSE_INVERTED_INDEX (IP) parameters not recorded (the engine's defaults)"
    assert describe(SPEC.indexes[3]) == "Trie"
