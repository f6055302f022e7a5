"""The committed golden backup of format v1 must always decode and restore, whatever the code becomes."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from tests.datasets import _norm, read_rows
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.fetch import iter_chunks
from vecbackup.sources.milvus import chunk_to_rows
from vecbackup.stores.local import LocalStore

GOLDEN = Path(__file__).parent / "v1"


@pytest.fixture
def golden_store(tmp_path: Path) -> Path:
    """A copy, so no test can alter the committed files."""
    dst = tmp_path / "golden-store"
    shutil.copytree(GOLDEN / "store", dst)
    return dst


@pytest.fixture(scope="module")
def expected() -> dict:
    return orjson.loads((GOLDEN / "expected.json").read_bytes())


def test_golden_manifest_reads(golden_store, expected):
    store = LocalStore(golden_store)
    refs = catalog.list_refs(store)
    assert [r.backup_id for r in refs] == [expected["backup_id"]]
    m: Manifest = catalog.load(store, refs[0])
    assert m.format_version == 1
    assert m.rows == len(expected["rows"]) == 90
    assert m.collection.name == "golden" and m.collection.aliases == ("golden_alias",)
    assert {i.field_name: i.index_type for i in m.collection.indexes} == {"vec": "HNSW", "sp": "SPARSE_INVERTED_INDEX"}


def test_golden_chunks_decode_to_the_recorded_rows(golden_store, expected):
    store = LocalStore(golden_store)
    m = catalog.load(store, catalog.list_refs(store)[0])
    decoded = {}
    for _obj, chunk in iter_chunks(store, m.objects):
        for row in chunk_to_rows(m.collection, chunk):
            decoded[str(row["id"])] = {k: _norm(v) for k, v in row.items()}
    assert decoded == expected["rows"]


def test_golden_backup_restores(cli, lite, golden_store, expected):
    r = cli("restore", golden_store, lite.url, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == 90
    rows = {str(k): v for k, v in read_rows(lite.client, "golden").items()}
    assert rows == expected["rows"]
    for p, ids in expected["partitions"].items():
        assert sorted(read_rows(lite.client, "golden", p)) == ids
    assert lite.client.describe_alias("golden_alias")["collection_name"] == "golden"
