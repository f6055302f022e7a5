"""The columnar insert (vecbackup.engines.milvus.inserts): the InsertRequest built straight from a chunk's columns
equals, field by field, the one pymilvus builds from the same rows (``MilvusClient.insert``'s own path), for every
type, nulls, auto-id and dynamic fields."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from pymilvus import DataType
from pymilvus.client.prepare import Prepare

from tests.unit.test_milvus_rows import sample_rows, spec_all
from vecbackup.engines.milvus.columnar import Unfit
from vecbackup.engines.milvus.inserts import insert_request
from vecbackup.engines.milvus.rows import chunk_to_rows, rows_to_chunk
from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import CollectionSpec, Field, FieldType


def fields_info(spec: CollectionSpec) -> list[dict[str, Any]]:
    """The schema as pymilvus's describe_collection gives it to its insert path."""
    out = []
    for f in spec.fields:
        params = {k: getattr(f, k) for k in ("dim", "max_length", "max_capacity") if getattr(f, k) is not None}
        d: dict[str, Any] = {"name": f.name, "type": getattr(DataType, f.type.value), "params": params,
                             "is_primary": f.is_primary, "auto_id": f.auto_id, "nullable": f.nullable}
        if f.element_type is not None:
            d["element_type"] = getattr(DataType, f.element_type.value)
        if f.default_value is not None:
            d["default_value"] = f.default_value
        out.append(d)
    return out


def by_field(request: Any) -> dict[str, Any]:
    return {fd.field_name: fd for fd in request.fields_data}


def pymilvus_request(spec: CollectionSpec, chunk: Chunk, keep_ids: bool = True) -> Any:
    rows = chunk_to_rows(spec, chunk, keep_ids=keep_ids)
    return Prepare.row_insert_param("c", rows, "p", fields_info(spec), enable_dynamic=spec.enable_dynamic_field)


def comparable_rows(dynamic: bool) -> list[dict[str, Any]]:
    """sample_rows without JSON values that are strings: pymilvus's row insert reads a str as JSON text (and
    refuses "just a string"), which is one reason restore inserts columns (test below)."""
    rows = sample_rows(dynamic=dynamic)
    for r in rows:
        if isinstance(r.get("j"), str):
            r["j"] = {"was": r["j"]}
    return rows


def test_json_strings_stay_strings():
    spec = spec_all()
    rows = sample_rows()
    strings = [i for i, r in enumerate(rows) if isinstance(r.get("j"), str)]
    assert strings  # the sample has a JSON value that is a string
    chunk = rows_to_chunk(spec, "p", rows)
    fd = by_field(insert_request(spec, chunk, "c", "p", keep_ids=True))["j"]
    sent = [v for ok, v in zip(fd.valid_data, rows, strict=True) if ok]
    assert [orjson.loads(b) for b in fd.scalars.json_data.data] == [r["j"] for r in sent]


@pytest.mark.parametrize("dynamic", [True, False])
def test_every_type_as_pymilvus_builds_it(dynamic: bool):
    spec = spec_all(dynamic=dynamic)
    chunk = rows_to_chunk(spec, "p", comparable_rows(dynamic))
    ours = insert_request(spec, chunk, "c", "p", keep_ids=True)
    theirs = pymilvus_request(spec, chunk)
    assert ours.collection_name == "c" and ours.partition_name == "p" and ours.num_rows == chunk.num_rows
    a, b = by_field(ours), by_field(theirs)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


def test_auto_id_keys_are_left_out_unless_kept():
    spec = spec_all(auto_id=True)
    chunk = rows_to_chunk(spec, "p", comparable_rows(True))
    assert "id" not in by_field(insert_request(spec, chunk, "c", "p", keep_ids=False))
    assert by_field(insert_request(spec, chunk, "c", "p", keep_ids=False)) == \
        by_field(pymilvus_request(spec, chunk, keep_ids=False))
    assert "id" in by_field(insert_request(spec, chunk, "c", "p", keep_ids=True))


def test_float_vectors_are_sent_exactly():
    rng = np.random.default_rng(4)
    vecs = rng.normal(size=(300, 96)).astype(np.float32)
    spec = CollectionSpec("v", (Field("id", FieldType.INT64, is_primary=True),
                                Field("v", FieldType.FLOAT_VECTOR, dim=96),
                                Field("x", FieldType.DOUBLE)))
    chunk = Chunk("p", 300, {"id": Column(np.arange(300, dtype=np.int64)), "v": Column(vecs),
                             "x": Column(rng.normal(size=300))})
    fd = by_field(insert_request(spec, chunk, "c", "p", keep_ids=True))
    assert np.array_equal(np.asarray(fd["v"].vectors.float_vector.data, dtype=np.float32).reshape(300, 96), vecs)
    assert fd["v"].vectors.dim == 96
    assert np.array_equal(np.asarray(fd["x"].scalars.double_data.data), chunk.columns["x"].values)
    assert by_field(insert_request(spec, chunk, "c", "p", keep_ids=True)) == by_field(pymilvus_request(spec, chunk))


def test_what_does_not_fit_says_so():
    spec = CollectionSpec("a", (Field("id", FieldType.INT64, is_primary=True),
                                Field("a", FieldType.ARRAY, element_type=FieldType.JSON, max_capacity=4)))
    chunk = Chunk("p", 1, {"id": Column(np.array([1])), "a": Column([[{"x": 1}]])})
    with pytest.raises(Unfit, match="ARRAY of JSON"):
        insert_request(spec, chunk, "c", "p", keep_ids=True)
    spec = CollectionSpec("b", (Field("id", FieldType.INT64, is_primary=True), Field("s", FieldType.VARCHAR)))
    chunk = Chunk("p", 2, {"id": Column(np.array([1, 2])), "s": Column(["x", None], np.array([True, False]))})
    with pytest.raises(Unfit, match="has nulls but is not nullable"):
        insert_request(spec, chunk, "c", "p", keep_ids=True)


class _RpcError(Exception):
    def __init__(self, code: str) -> None:
        self._code = code

    def code(self) -> Any:
        import grpc

        return getattr(grpc.StatusCode, self._code)


def test_transient_grpc_errors_are_retried_and_others_are_not():
    from vecbackup.engines.milvus.columnar import send_with_retries

    waits: list[float] = []
    calls = iter([_RpcError("UNAVAILABLE"), _RpcError("RESOURCE_EXHAUSTED"), "ok"])

    def send() -> Any:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert send_with_retries(send, sleep=waits.append) == "ok" and waits == [0.5, 1.0]
    with pytest.raises(_RpcError):  # not transient: at once
        send_with_retries(lambda: (_ for _ in ()).throw(_RpcError("INVALID_ARGUMENT")), sleep=waits.append)
    assert waits == [0.5, 1.0]
    with pytest.raises(_RpcError):  # transient every time: raised after the last attempt
        send_with_retries(lambda: (_ for _ in ()).throw(_RpcError("UNAVAILABLE")), attempts=3, sleep=waits.append)
    assert waits == [0.5, 1.0, 0.5, 1.0]
