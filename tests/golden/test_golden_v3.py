"""The committed golden backup of format version 3 (GEOMETRY and TIMESTAMPTZ, from Milvus Lite) and the golden struct
array chunk must always decode, and the backup restore, whatever the code becomes: their encodings are frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tests.datasets import _norm, read_rows
from vecbackup.format.codec import decode_chunk, read_chunk_header
from vecbackup.format.digests import row_digests
from vecbackup.format.manifest import Manifest
from vecbackup.ops import catalog
from vecbackup.ops.fetch import iter_chunks
from vecbackup.schema import Field, FieldType
from vecbackup.engines.milvus import chunk_to_rows
from vecbackup.stores.local import LocalStore

GOLDEN = Path(__file__).parent / "v3"




def test_golden_v3_manifest_reads(golden_store: Path, expected: dict[str, Any]) -> None:
    store = LocalStore(golden_store)
    refs = catalog.list_refs(store)
    assert [r.backup_id for r in refs] == [expected["backup_id"]]
    m: Manifest = catalog.load(store, refs[0])
    assert m.format_version == 3
    assert orjson.loads(next((golden_store / "manifests").rglob("*.json")).read_bytes())["format_version"] == 3
    assert m.rows == len(expected["rows"]) == 60
    types = {f.name: f.type for f in m.collection.fields}
    assert types["g"] is types["g_def"] is FieldType.GEOMETRY and types["t"] is types["t_def"] is FieldType.TIMESTAMPTZ
    defaults = {f.name: f.default_value for f in m.collection.fields if f.default_value is not None}
    assert defaults == {"g_def": "POINT (0 0)", "t_def": 1735660800000001, "label": "none"}


def test_golden_v3_chunks_decode_to_the_recorded_rows(golden_store: Path, expected: dict[str, Any]) -> None:
    store = LocalStore(golden_store)
    m = catalog.load(store, catalog.list_refs(store)[0])
    decoded = {}
    for obj, chunk in iter_chunks(store, m.objects):
        header = {c["name"]: c for c in read_chunk_header(store.get(obj.key))["columns"]}
        assert [b["kind"] for b in header["g"]["buffers"]][-2:] == ["lengths", "data"]
        assert [(b["kind"], b["dtype"]) for b in header["t"]["buffers"]][-1] == ("values", "<i8")
        for row in chunk_to_rows(m.collection, chunk):
            decoded[str(row["id"])] = {k: _norm(v) for k, v in row.items()}
    assert decoded == expected["rows"]


def test_golden_v3_backup_restores_and_verifies(cli: Any, lite: Any, golden_store: Path,
                                                 expected: dict[str, Any]) -> None:
    assert cli("verify", golden_store, "--read-data").code == 0  # its row digests are the rows' digests today
    r = cli("restore", golden_store, lite.url, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rows"] == 60
    assert {str(k): v for k, v in read_rows(lite.client, "golden").items()} == expected["rows"]
    for p, ids in expected["partitions"].items():
        assert sorted(read_rows(lite.client, "golden", p)) == ids
    # and a backup of the restored copy reuses every row of the golden one: the same digests
    r = cli("backup", lite.url, golden_store, "-c", "golden", "--batch-size", "25", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["backups"][0]["rows_reused"] == 60 and r.json()["backups"][0]["bytes_uploaded"] == 0


def test_golden_struct_array_chunk_decodes_to_its_rows_and_digests() -> None:
    doc = orjson.loads((GOLDEN / "chunks" / "struct_array.json").read_bytes())
    fields = [Field.from_dict(f) for f in doc["fields"]]
    data = (GOLDEN / "chunks" / "struct_array.vbc").read_bytes()
    chunk = decode_chunk(data)
    assert chunk.num_rows == 12 and list(chunk.columns) == ["id", "clips"]
    ids = chunk.columns["id"].values
    assert isinstance(ids, np.ndarray) and ids.tolist() == doc["ids"]
    assert chunk.columns["clips"].values == doc["rows"]
    valid = chunk.columns["clips"].valid
    assert valid is not None and valid.tolist() == [r is not None for r in doc["rows"]]
    clips = read_chunk_header(data)["columns"][1]
    assert (clips["type"], clips["element_type"]) == ("ARRAY", "STRUCT")
    assert clips["struct_fields"] == [{"name": "text", "type": "VARCHAR"}, {"name": "emb", "type": "FLOAT_VECTOR",
                                      "dim": 3}, {"name": "half", "type": "FLOAT16_VECTOR", "dim": 2},
                                      {"name": "at", "type": "INT64"}, {"name": "ok", "type": "BOOL"},
                                      {"name": "score", "type": "DOUBLE"}]
    assert [b["kind"] for b in clips["buffers"]] == ["validity", "lengths", "elem_lengths", "elem_data", "values",
                                                     "values", "values", "values", "values"]
    assert [bytes(d).hex() for d in row_digests(fields, chunk)] == doc["digests"]
