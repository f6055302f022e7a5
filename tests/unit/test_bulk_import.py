"""The files a restore through Milvus's import stages (vecbackup.engines.milvus.bulk): numpy sets and row JSON read
back to the chunk's values for every type the server imports, groups stay within the file size, and the
collections the import cannot take are refused with the field named. The real server imports them in
tests/integration/test_bulk_restore.py."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecbackup.engines.milvus.bulk import (
    JSON_FILE,
    Group,
    import_path,
    json_rows,
    numpy_files,
    refusal,
    task_keys,
    uses_json,
)
from vecbackup.engines.milvus.rows import rows_to_chunk
from vecbackup.schema import CollectionSpec, Field
from vecbackup.schema import FieldType as T


def spec_numpy(*, auto_id: bool = False, dynamic: bool = True) -> CollectionSpec:
    return CollectionSpec("flat", (
        Field("id", T.INT64, is_primary=True, auto_id=auto_id), Field("b", T.BOOL), Field("i8", T.INT8),
        Field("i16", T.INT16), Field("i32", T.INT32), Field("f", T.FLOAT), Field("d", T.DOUBLE),
        Field("s", T.VARCHAR, max_length=256), Field("j", T.JSON), Field("fv", T.FLOAT_VECTOR, dim=4),
    ), enable_dynamic_field=dynamic)


def spec_arrays() -> CollectionSpec:
    return CollectionSpec("arrays", (
        Field("pk", T.VARCHAR, is_primary=True, max_length=16), Field("bv", T.BINARY_VECTOR, dim=16),
        Field("a_s", T.ARRAY, element_type=T.VARCHAR, max_length=8, max_capacity=4),
        Field("a_i", T.ARRAY, element_type=T.INT64, max_capacity=4), Field("j", T.JSON),
    ), enable_dynamic_field=True)


def rows_numpy(n: int, start: int = 0, text: str = "wörld 🦀 \"q\"") -> list[dict[str, Any]]:
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        r: dict[str, Any] = {"id": i * 7 - 2**62, "b": i % 2 == 0, "i8": i % 256 - 128, "i16": -(2**15) + i,
                             "i32": 2**31 - 1 - i, "f": float(np.float32(i / 3)), "d": i / 7 + 1e300 * (i == 0),
                             "s": text * (i % 3), "j": {"k": [i, None, "x"], "n": {"m": True}} if i % 2 else [i],
                             "fv": rng.normal(size=4).astype(np.float32).tolist()}
        if i % 3 == 0:
            r["color"] = "red"
        out.append(r)
    return out


def rows_arrays(n: int) -> list[dict[str, Any]]:
    return [{"pk": f"k{i}", "bv": [bytes([i % 256, 255 - i % 256])], "a_s": ["a", "日本"][: i % 3],
             "a_i": [2**62, -i][: i % 3], "j": {"i": i}, **({"tag": i} if i % 2 else {})} for i in range(n)]


def load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def test_numpy_files_read_back_to_the_rows():
    spec = spec_numpy()
    rows = rows_numpy(5) + rows_numpy(4, start=5)
    chunks = [rows_to_chunk(spec, "p", rows[:5]), rows_to_chunk(spec, "p", rows[5:])]
    files = numpy_files(spec, chunks, keep_ids=True)
    assert set(files) == {f"{f.name}.npy" for f in spec.fields} | {"$meta.npy"}
    arrays = {name[:-4]: load(data) for name, data in files.items()}
    assert arrays["id"].dtype == np.int64 and arrays["i8"].dtype == np.int8 and arrays["f"].dtype == np.float32
    assert arrays["fv"].dtype == np.float32 and arrays["fv"].shape == (9, 4)
    assert arrays["s"].dtype.kind == "U"  # the server takes VARCHAR (and JSON text) as numpy unicode
    for name in ("id", "b", "i8", "i16", "i32", "f", "d", "s"):
        assert arrays[name].tolist() == [r[name] for r in rows], name
    assert arrays["fv"].tolist() == [r["fv"] for r in rows]
    assert [orjson.loads(str(t)) for t in arrays["j"]] == [r["j"] for r in rows]
    assert [orjson.loads(str(t)) for t in arrays["$meta"]] == [{"color": "red"} if i % 3 == 0 else {} for i in range(9)]


def test_numpy_files_leave_out_a_key_the_server_assigns():
    spec = spec_numpy(auto_id=True, dynamic=False)
    chunk = rows_to_chunk(spec, "p", rows_numpy(3))
    assert "id.npy" in numpy_files(spec, [chunk], keep_ids=True)
    files = numpy_files(spec, [chunk], keep_ids=False)
    assert "id.npy" not in files and "$meta.npy" not in files and "fv.npy" in files


def test_json_rows_read_back_to_the_rows():
    spec = spec_arrays()
    rows = rows_arrays(7)
    doc = orjson.loads(json_rows(spec, [rows_to_chunk(spec, "p", rows[:3]), rows_to_chunk(spec, "p", rows[3:])],
                                 keep_ids=True))
    assert len(doc["rows"]) == 7
    for got, want in zip(doc["rows"], rows, strict=True):
        assert got["bv"] == list(want["bv"][0])  # binary vectors as their byte values
        assert {k: got[k] for k in ("pk", "a_s", "a_i", "j")} == {k: want[k] for k in ("pk", "a_s", "a_i", "j")}
        assert got["$meta"] == ({"tag": want["tag"]} if "tag" in want else {})


def test_json_rows_keep_float32_vectors_exact():
    spec = spec_numpy(dynamic=False)
    rows = rows_numpy(50)
    doc = orjson.loads(json_rows(spec, [rows_to_chunk(spec, "p", rows)], keep_ids=True))
    for got, want in zip(doc["rows"], rows, strict=True):
        assert np.asarray(got["fv"], dtype=np.float32).tobytes() == np.asarray(want["fv"], dtype=np.float32).tobytes()
        assert got["d"] == want["d"] and got["id"] == want["id"]


def test_arrays_go_as_row_json():
    assert uses_json(spec_arrays()) and not uses_json(spec_numpy())
    spec = spec_arrays()
    group = Group(spec, "p", keep_ids=True)
    assert group.offer(rows_to_chunk(spec, "p", rows_arrays(4)), limit=1 << 20)
    assert list(group.encode(1 << 20)) == [JSON_FILE]


def test_a_chunk_of_long_strings_alone_goes_as_row_json():
    """numpy strings are fixed-width: one long value pads every row; a chunk whose numpy files would pass the file
    size by themselves is written as row JSON instead."""
    spec = spec_numpy(dynamic=False)
    rows = rows_numpy(40, text="x")
    rows[0]["s"] = "y" * 250
    group = Group(spec, "p", keep_ids=True)
    assert group.offer(rows_to_chunk(spec, "p", rows), limit=8_000)
    assert list(group.encode(8_000)) == [JSON_FILE]
    assert set(group.encode(1 << 20)) == {f"{f.name}.npy" for f in spec.fields}


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=12), limit=st.integers(500, 6_000),
       long_every=st.integers(1, 5))
def test_groups_stay_within_the_file_size(sizes: list[int], limit: int, long_every: int):
    """Chunks offered in order fill groups that each hold at least one chunk, keep the order, and measure at most
    the limit unless they hold a single chunk; the measure is what the numpy files' arrays take (numpy gives an
    array of empty strings one character)."""
    spec = spec_numpy()
    groups: list[Group] = [Group(spec, "p", keep_ids=True)]
    chunks = []
    start = 0
    for k, n in enumerate(sizes):
        chunk = rows_to_chunk(spec, "p", rows_numpy(n, start=start, text="ab" * (k % long_every)))
        start += n
        chunks.append(chunk)
        if not groups[-1].offer(chunk, limit):
            groups.append(Group(spec, "p", keep_ids=True))
            assert groups[-1].offer(chunk, limit)
    assert [c for g in groups for c in g.chunks] == chunks
    for g in groups:
        assert g.chunks and g.rows == sum(c.num_rows for c in g.chunks)
        assert g.size <= limit or len(g.chunks) == 1
        files = g.encode(1 << 30)  # numpy
        assert 0 <= sum(load(b).nbytes for b in files.values()) - g.size <= 4 * g.rows * 3  # s, j, $meta


def test_refusals_name_the_field():
    assert refusal(spec_numpy(), keep_ids=True) is None
    assert refusal(spec_arrays(), keep_ids=True) is None
    for vtype in (T.FLOAT16_VECTOR, T.BFLOAT16_VECTOR, T.INT8_VECTOR, T.SPARSE_FLOAT_VECTOR):
        spec = CollectionSpec("c", (Field("id", T.INT64, is_primary=True), Field("v", vtype, dim=4)))
        why = refusal(spec, keep_ids=True)
        assert why is not None and "'v'" in why and vtype.value in why
    nullable = CollectionSpec("c", (Field("id", T.INT64, is_primary=True), Field("n", T.INT32, nullable=True)))
    assert "'n'" in (refusal(nullable, keep_ids=True) or "")
    auto = spec_numpy(auto_id=True)
    assert "--new-ids" in (refusal(auto, keep_ids=True) or "")
    assert refusal(auto, keep_ids=False) is None


@pytest.mark.parametrize("scheme,location,prefix,want", [
    ("file", "/srv/milvus/import", "", "/srv/milvus/import/vecbackup-import/c/000001/id.npy"),
    ("s3", "milvus-bucket", "", "vecbackup-import/c/000001/id.npy"),
    ("s3", "milvus-bucket", "restores/", "restores/vecbackup-import/c/000001/id.npy"),
    ("azure", "milvus", "x/y/", "x/y/vecbackup-import/c/000001/id.npy"),
])
def test_import_paths_are_what_the_server_opens(scheme: str, location: str, prefix: str, want: str):
    key = task_keys("c", 1, {"id.npy": b""})["id.npy"]
    assert key == "vecbackup-import/c/000001/id.npy"
    assert import_path(scheme, location, prefix, key) == want


def test_options_that_do_not_fit_are_refused_before_anything_is_opened(cli, tmp_path):
    store, target = tmp_path / "nothing-here", "milvus-lite:///nonexistent/x.db"
    cases = [
        (("--bulk-import-mb", "4"), "--bulk-import-mb needs --bulk-import-via"),
        (("--bulk-import-format", "binlog"), "--bulk-import-format needs --bulk-import-via"),
        (("--bulk-import-via", tmp_path, "--bulk-import-format", "parquet"),
         "--bulk-import-format 'parquet' is not an import format"),
        (("--bulk-import-via", tmp_path, "--run", "r", "--shard", "0/2", "--backup", "B"), "takes no --run"),
        (("--bulk-import-via", tmp_path, "--parallel", "2"), "--parallel sets inserts in flight"),
    ]
    for args, message in cases:
        r = cli("restore", store, target, *args)
        assert r.code == 2, (args, r.stderr)
        assert message in r.error_line(), args
        assert not store.exists()
