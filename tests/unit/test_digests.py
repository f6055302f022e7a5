"""Row digests (format/digests.py): one row, one digest, whatever chunk it travels in; and the .vbd object."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_codec import ALL_CASES, FAST, case_id, column_st, realistic_chunk, realistic_fields, rows_st
from vecbackup.errors import CorruptData
from vecbackup.format.codec import Chunk, Column, concat_chunks, decode_chunk, encode_chunk, take_rows
from vecbackup.format.digests import (
    DIGEST,
    decode_digests,
    encode_digests,
    encode_with_digests,
    row_digests,
)
from vecbackup.schema import FIXED_DTYPES, SCALAR_DTYPES, VECTOR_DTYPES, Field, FieldType


def _reference_cell(f: Field, col: Column, i: int) -> bytes:
    """The cell of row ``i`` exactly as docs/FORMAT.md ("Row digests") words it, written independently."""
    present = col.valid is None or bool(col.valid[i])
    out = b"\x01" if present else b"\x00"
    v = col.values[i] if present else None
    t = f.type
    if t in FIXED_DTYPES:  # the numbers, and TIMESTAMPTZ (int64 microseconds)
        dt = np.dtype(FIXED_DTYPES[t])
        return out + np.asarray(v if present else 0, dtype=dt).tobytes()
    if t.is_dense_vector:
        dt = np.dtype(VECTOR_DTYPES[t])
        arr = np.asarray(v, dtype=dt) if present else np.zeros(np.asarray(col.values[0]).shape, dtype=dt)
        return out + arr.tobytes()
    if t in (FieldType.VARCHAR, FieldType.GEOMETRY):
        b = v.encode() if present else b""
        return out + struct.pack("<I", len(b)) + b
    if f.is_struct_array:  # the struct count, then each struct field's part, over the row's structs
        structs = list(v) if present else []
        out += struct.pack("<I", len(structs))
        for m in f.struct_fields:
            items = [s[m.name] for s in structs]
            if m.type is FieldType.VARCHAR:
                enc = [x.encode() for x in items]
                out += b"".join(struct.pack("<I", len(b)) for b in enc) + b"".join(enc)
            else:
                dt = np.dtype(SCALAR_DTYPES.get(m.type) or VECTOR_DTYPES[m.type])
                out += np.asarray(items, dtype=dt).tobytes()
        return out
    if t is FieldType.JSON:
        b = orjson.dumps(v) if present else b""
        return out + struct.pack("<I", len(b)) + b
    if t is FieldType.ARRAY:
        items = list(v) if present else []
        out += struct.pack("<I", len(items))
        if f.element_type is FieldType.VARCHAR:
            enc = [s.encode() for s in items]
            return out + b"".join(struct.pack("<I", len(b)) for b in enc) + b"".join(enc)
        assert f.element_type is not None
        return out + np.asarray(items, dtype=np.dtype(SCALAR_DTYPES[f.element_type])).tobytes()
    assert t is FieldType.SPARSE_FLOAT_VECTOR
    items = sorted(v.items()) if present else []
    return (out + struct.pack("<I", len(items)) + np.asarray([k for k, _ in items], dtype="<u4").tobytes()
            + np.asarray([x for _, x in items], dtype="<f4").tobytes())


def reference_digest(fields: list[Field], chunk: Chunk, i: int) -> bytes:
    body = b"".join(_reference_cell(f, chunk.columns[f.name], i) for f in fields)
    return hashlib.sha256(body).digest()[:16]


def test_digest_is_the_documented_truncated_sha256_of_the_cells() -> None:
    fields, chunk = realistic_fields(), realistic_chunk(40, seed=3)
    got = row_digests(fields, chunk)
    assert got.dtype == DIGEST and got.shape == (40,)
    assert [bytes(d) for d in got] == [reference_digest(fields, chunk, i) for i in range(40)]


def test_a_row_has_one_digest_whatever_chunk_it_is_in() -> None:
    fields, chunk = realistic_fields(), realistic_chunk(120, seed=5)
    whole = row_digests(fields, chunk)
    assert len(set(whole.tobytes()[i:i + 16] for i in range(0, 120 * 16, 16))) == 120  # distinct rows differ
    rng = np.random.default_rng(1)
    for _ in range(5):
        idx = rng.permutation(120)[: rng.integers(1, 120)]
        assert (row_digests(fields, take_rows(chunk, idx)) == whole[idx]).all()
    # rows that happen to have no nulls: the chunk has no validity buffer, the digest is the same
    no_nulls = np.flatnonzero(chunk.columns["attrs"].valid & chunk.columns["scores"].valid)[:7]
    assert (row_digests(fields, take_rows(chunk, no_nulls)) == whole[no_nulls]).all()
    # joined back, and read back from the stored bytes: the same digests
    parts = [take_rows(chunk, np.arange(a, b)) for a, b in [(0, 50), (50, 51), (51, 120)]]
    assert (row_digests(fields, concat_chunks(parts)) == whole).all()
    assert (row_digests(fields, decode_chunk(encode_chunk(fields, chunk))) == whole).all()


def test_changing_one_value_changes_that_row_only() -> None:
    fields, chunk = realistic_fields(), realistic_chunk(30, seed=2)
    before = row_digests(fields, chunk)
    emb = np.array(chunk.columns["embedding"].values)
    emb[17, 100] = np.nextafter(emb[17, 100], np.float32(np.inf))  # one ulp
    chunk.columns["embedding"] = Column(emb)
    after = row_digests(fields, chunk)
    assert (before != after).tolist() == [i == 17 for i in range(30)]
    tags = list(chunk.columns["tags"].values)
    tags[3] = [*tags[3], ""]  # one more (empty) element
    chunk.columns["tags"] = Column(tags)
    again = row_digests(fields, chunk)
    assert (after != again).tolist() == [i == 3 for i in range(30)]


def test_moving_bytes_between_cells_changes_the_digest() -> None:
    f = [Field("a", FieldType.VARCHAR, max_length=8), Field("b", FieldType.VARCHAR, max_length=8)]
    one = Chunk("p", 1, {"a": Column(["ab"]), "b": Column(["c"])})
    two = Chunk("p", 1, {"a": Column(["a"]), "b": Column(["bc"])})
    assert row_digests(f, one)[0] != row_digests(f, two)[0]
    null = Chunk("p", 1, {"a": Column([None], np.array([False])), "b": Column(["c"])})
    empty = Chunk("p", 1, {"a": Column([""]), "b": Column(["c"])})
    f[0] = Field("a", FieldType.VARCHAR, max_length=8, nullable=True)
    assert row_digests(f, null)[0] != row_digests(f, empty)[0]


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
@FAST
@given(data=st.data())
def test_every_type_digest_matches_reference_and_survives_a_round_trip(case: Any, data: st.DataObject) -> None:
    n = data.draw(rows_st)
    field, col = data.draw(column_st(case[0], case[1], n))
    chunk = Chunk("p", n, {"c": col})
    got = row_digests([field], chunk)
    assert [bytes(d) for d in got] == [reference_digest([field], decode_chunk(encode_chunk([field], chunk)), i)
                                        for i in range(n)]
    assert (row_digests([field], decode_chunk(encode_chunk([field], chunk))) == got).all()
    if n:
        idx = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n)))
        assert (row_digests([field], take_rows(chunk, idx)) == got[idx]).all()


@FAST
@given(data=st.data())
def test_rows_of_several_fields_digest_as_the_reference(data: st.DataObject) -> None:
    """Columns of any types in any order, with vectors wide enough to be hashed where they lie among them: the
    narrow parts of a row gathered into one buffer (format/digests.py _parts) hash the bytes the reference does."""
    n = data.draw(rows_st)
    cases = data.draw(st.lists(st.sampled_from(ALL_CASES), min_size=1, max_size=4))
    fields, columns = [], {}
    for j, case in enumerate(cases):
        field, col = data.draw(column_st(case[0], case[1], n))
        fields.append(dataclasses.replace(field, name=f"c{j}"))
        columns[f"c{j}"] = col
    for j in range(data.draw(st.integers(0, 2))):  # a wide one: 64 bytes a row or more
        dim = data.draw(st.sampled_from([15, 16, 40]))
        wide = np.random.default_rng(j).normal(size=(n, dim)).astype(np.float32)
        at = data.draw(st.integers(0, len(fields)))
        fields.insert(at, Field(f"w{j}", FieldType.FLOAT_VECTOR, dim=dim))
        columns[f"w{j}"] = Column(wide)
    chunk = Chunk("p", n, columns)
    got = row_digests(fields, chunk)
    stored = decode_chunk(encode_chunk(fields, chunk))
    assert [bytes(d) for d in got] == [reference_digest(fields, stored, i) for i in range(n)]


def test_a_wide_vector_between_variable_length_fields() -> None:
    """The shapes digests_of_buffers hashes differently: fixed-width fields only, the key then a vector (two parts
    a row), fixed then variable, the key, a vector and variable-length fields (three parts), and a wide vector
    between variable-length fields."""
    n = 25
    rng = np.random.default_rng(4)
    vec = Column(rng.normal(size=(n, 32)).astype(np.float32))
    text = Column([f"t{i}" * (i % 4) for i in range(n)])
    ints = Column(np.arange(n, dtype=np.int64))
    doc = Column([{"i": i} if i % 3 else None for i in range(n)], np.array([i % 3 > 0 for i in range(n)]))
    f_vec, f_text = Field("v", FieldType.FLOAT_VECTOR, dim=32), Field("t", FieldType.VARCHAR, max_length=64)
    f_int, f_doc = Field("i", FieldType.INT64), Field("d", FieldType.JSON, nullable=True)
    f_int_b, f_vec_b = Field("j", FieldType.INT64), Field("w", FieldType.FLOAT_VECTOR, dim=32)
    for fields in ([f_int, f_vec], [f_int, f_vec, f_text, f_doc], [f_text, f_vec, f_int, f_doc], [f_text, f_doc],
                   [f_vec], [f_text, f_vec], [f_int], [f_int, f_vec, f_int_b, f_vec_b, f_text]):
        chunk = Chunk("p", n, {"v": vec, "t": text, "i": ints, "d": doc, "j": ints, "w": vec})
        chunk = Chunk("p", n, {f.name: chunk.columns[f.name] for f in fields})
        got = row_digests(fields, chunk)
        assert [bytes(d) for d in got] == [reference_digest(fields, chunk, i) for i in range(n)], fields


def test_the_array_of_varchar_example_of_format_md() -> None:
    """docs/FORMAT.md ("Row digests") spells out the cell of the ARRAY<VARCHAR> row ["ab", "c"]: the element count,
    all the element lengths, then all the bytes. The digest of that row, stored shuffled in a chunk, is the SHA-256
    of those bytes (values unshuffled), truncated to 16 bytes."""
    doc = (Path(__file__).parents[2] / "docs" / "FORMAT.md").read_text()
    m = re.search(r'The row `\["ab", "c"\]` present is the cell `([0-9a-f ]+)`', doc)
    assert m is not None, "the worked example is gone from docs/FORMAT.md"
    cell = bytes.fromhex(m.group(1))
    assert cell == b"\x01" + struct.pack("<III", 2, 2, 1) + b"abc"  # count, lengths, bytes: as the text says
    f = [Field("words", FieldType.ARRAY, element_type=FieldType.VARCHAR, max_capacity=4, max_length=4)]
    chunk = Chunk("p", 2, {"words": Column([["ab", "c"], ["xyz"]])})
    stored = encode_chunk(f, chunk)
    assert '"shuffle":4' in stored[16:16 + struct.unpack_from("<I", stored, 8)[0]].decode()  # lengths are shuffled
    expected = hashlib.sha256(cell).digest()[:16]
    assert bytes(row_digests(f, chunk)[0]) == expected
    assert bytes(row_digests(f, decode_chunk(stored))[0]) == expected
    assert bytes(encode_with_digests(f, chunk)[1][0]) == expected


def test_encode_with_digests_writes_the_same_chunk() -> None:
    fields, chunk = realistic_fields(), realistic_chunk(64)
    data, digests = encode_with_digests(fields, chunk, level=3)
    assert data == encode_chunk(fields, chunk, level=3)
    assert (digests == row_digests(fields, chunk)).all()


def test_digest_object_round_trip_and_damage() -> None:
    d = row_digests(realistic_fields(), realistic_chunk(33))
    blob = encode_digests(d)
    assert len(blob) == 16 + 33 * 16 and blob[:4] == b"VBRD"
    assert (decode_digests(blob) == d).all()
    assert decode_digests(encode_digests(np.empty(0, dtype=DIGEST))).size == 0
    for bad in (blob[:-1], blob + b"x", blob[:10], b"XXXX" + blob[4:],
                blob[:20] + bytes([blob[20] ^ 1]) + blob[21:],  # a digest bit
                blob[:8] + struct.pack("<I", 2**31) + blob[12:],  # a row count that does not fit: not allocated
                blob[:4] + struct.pack("<H", 2) + blob[6:]):
        with pytest.raises(CorruptData):
            decode_digests(bad)
