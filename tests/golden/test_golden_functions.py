"""The committed golden backup of a collection with a BM25 function (manifest format version 3) must always decode
and restore with its function, whatever the code becomes (made by tests/golden/make_golden_functions.py)."""

from __future__ import annotations

from pathlib import Path

from tests.datasets import _norm, read_rows
from tests.integration.test_functions import full_text
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.fetch import iter_chunks
from vecbackup.schema import DYNAMIC_COLUMN
from vecbackup.engines.milvus import chunk_to_rows
from vecbackup.stores.local import LocalStore

GOLDEN = Path(__file__).parent / "functions-v3"




def test_golden_manifest_records_the_function(golden_store, expected):
    store = LocalStore(golden_store)
    m: Manifest = catalog.load(store, catalog.list_refs(store)[0])
    assert m.backup_id == expected["backup_id"] and m.format_version == 3 and m.rows == 80
    (fn,) = m.collection.functions
    assert (fn.name, fn.type, fn.input_field_names, fn.output_field_names) == ("text_bm25", "BM25", ("text",),
                                                                               ("sparse",))
    text = m.collection.field("text")
    assert text.extra["enable_analyzer"] == "true" and "stop_words" in text.extra["analyzer_params"]
    index = next(i for i in m.collection.indexes if i.field_name == "sparse")
    assert (index.index_type, index.metric_type) == ("SPARSE_INVERTED_INDEX", "BM25")


def test_golden_chunks_hold_no_function_output(golden_store, expected):
    store = LocalStore(golden_store)
    m = catalog.load(store, catalog.list_refs(store)[0])
    decoded = {}
    for _obj, chunk in iter_chunks(store, m.objects):
        assert set(chunk.columns) == {"id", "text", "dense", "n", DYNAMIC_COLUMN}
        for row in chunk_to_rows(m.collection, chunk):
            decoded[str(row["id"])] = {k: _norm(v) for k, v in row.items()}
    assert decoded == expected["rows"]


def test_golden_backup_restores_with_its_function(cli, lite, golden_store, expected):
    r = cli("restore", golden_store, lite.url, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == 80
    assert lite.client.describe_collection("golden_fn")["functions"][0]["name"] == "text_bm25"
    rows = {str(k): {f: v for f, v in row.items() if f != "sparse"} for k, row in read_rows(lite.client,
                                                                                             "golden_fn").items()}
    assert rows == expected["rows"]
    hits = [[key for key, _ in q] for q in full_text(lite.client, "golden_fn", expected["queries"])]
    assert hits == expected["top10"]
