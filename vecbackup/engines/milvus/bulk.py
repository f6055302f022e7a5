"""Milvus's own import ("bulk insert") as a way to restore: decoded chunks turned into the files the server imports.

The server reads import files from the object store it uses itself, so a restore stages them there (``restore
--bulk-import-via URL``), hands their paths to the server, waits for its import tasks and deletes the files. This
module is the pure part: which collections can go that way (:func:`refusal`), how chunks are grouped into one import
task's files (:class:`Group`), and how a group is encoded:

* **numpy**: one ``<field>.npy`` per field (``$meta.npy`` for the dynamic fields), the format whose vectors the server
  reads without parsing text. Strings are fixed-width there (numpy ``<U``, 4 bytes per character of the longest), so
  a group is sized by what its numpy files would take;
* **row JSON**: one ``rows.json`` (``{"rows": [...]}``) where numpy cannot say it: ARRAY fields (2.3 refuses them in
  numpy files), and a single chunk whose fixed-width strings would exceed the file size by themselves.

What the 2.3 server answered when each rule was made is in docs/SCALING.md ("The server's bulk import").
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from vecbackup.format.codec import Chunk
from vecbackup.schema import DYNAMIC_COLUMN, SCALAR_DTYPES, CollectionSpec, Field, FieldType

#: raw bytes of one import task's files unless told otherwise (--bulk-import-mb); the restore holds about one group
#: of decoded chunks and its encoded files in memory
DEFAULT_FILE_BYTES = 128 << 20
#: where under the staging location a restore puts its files: PREFIX/<staging collection>/<task number>/<file>
PREFIX = "vecbackup-import"
JSON_FILE = "rows.json"
#: the vector types the server imports (2.3: float16 in no format, "the numpy file dtype '<f2' is not supported")
_VECTORS = (FieldType.FLOAT_VECTOR, FieldType.BINARY_VECTOR)


def refusal(spec: CollectionSpec, keep_ids: bool) -> str | None:
    """Why this collection cannot be restored through the server's import, or None. Pure."""
    if spec.functions:
        return "it has functions (e.g. BM25), and a restore through the import is not tested with them"
    for f in spec.fields:
        if f.type in (FieldType.FLOAT16_VECTOR, FieldType.BFLOAT16_VECTOR, FieldType.INT8_VECTOR,
                      FieldType.SPARSE_FLOAT_VECTOR):
            return f"field {f.name!r} is a {f.type.value}, which Milvus does not import"
        if f.type in (FieldType.GEOMETRY, FieldType.TIMESTAMPTZ) or f.is_struct_array:
            return f"field {f.name!r} is a {f.type_name}, which vecbackup does not write into import files"
        if f.nullable or f.default_value is not None:
            return f"field {f.name!r} is nullable or has a default value, which import files cannot say"
        if f.is_primary and f.auto_id and keep_ids:
            return (f"primary key {f.name!r} is auto-id and the server's import assigns new ids (it refuses recorded "
                    "ones); pass --new-ids to accept that")
    return None


def _columns(spec: CollectionSpec, keep_ids: bool) -> list[Field]:
    """The fields an import file carries: all but an auto-id key the server assigns."""
    return [f for f in spec.stored_fields if not (f.is_primary and f.auto_id and not keep_ids)]


def uses_json(spec: CollectionSpec) -> bool:
    """Whether every group of this collection is written as row JSON (numpy files cannot hold ARRAY fields)."""
    return any(f.type is FieldType.ARRAY for f in spec.fields)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


#: the dynamic fields, as the JSON column ``$meta`` the import files carry
_META = Field(name=DYNAMIC_COLUMN, type=FieldType.JSON)


def _numpy_fields(spec: CollectionSpec, keep_ids: bool) -> list[Field]:
    """The columns of the numpy files: the fields an import file carries, and ``$meta`` with dynamic fields on."""
    return [*_columns(spec, keep_ids), *([_META] if spec.enable_dynamic_field else [])]


def _strings(chunk: Chunk, f: Field) -> list[str]:
    """A string column as numpy would take it: VARCHAR as is, JSON (and the dynamic fields, ``{}`` for a chunk
    without them) as JSON text."""
    column = chunk.columns.get(f.name)
    if column is None:
        return ["{}"] * chunk.num_rows
    if f.type is FieldType.VARCHAR:
        return list(column.values)
    return [_text(v if v is not None else {}) for v in column.values]


def _string_fields(spec: CollectionSpec, keep_ids: bool) -> list[Field]:
    return [f for f in _numpy_fields(spec, keep_ids) if f.type in (FieldType.VARCHAR, FieldType.JSON)]


@dataclass
class Group:
    """Consecutive chunks of one partition that become one import task. A group is measured as its numpy files
    would be (strings padded to the longest) or, for collections written as row JSON, about as that file; the
    restore closes it before it grows past the file size."""

    spec: CollectionSpec
    partition: str
    keep_ids: bool
    chunks: list[Chunk] = field(default_factory=list)
    rows: int = 0
    _fixed_row: int = 0  # bytes per row of the fixed-width fields
    _longest: dict[str, int] = field(default_factory=dict)  # per string field: its longest value, in characters
    _chars: int = 0  # characters of every string value (what row JSON takes of them)

    def __post_init__(self) -> None:
        self._fixed_row = sum(_fixed_width(f) for f in _columns(self.spec, self.keep_ids))

    def offer(self, chunk: Chunk, limit: int) -> bool:
        """Add ``chunk`` unless this group's files would then grow past ``limit`` bytes; a first chunk is always
        added (a group holds at least one)."""
        longest, chars = dict(self._longest), self._chars
        for f in _string_fields(self.spec, self.keep_ids):
            lengths = [len(s) for s in _strings(chunk, f)]
            longest[f.name] = max([longest.get(f.name, 0), *lengths])
            chars += sum(lengths)
        rows = self.rows + chunk.num_rows
        if self.chunks and self._bytes(rows, longest, chars) > limit:
            return False
        self.chunks.append(chunk)
        self.rows, self._longest, self._chars = rows, longest, chars
        return True

    @property
    def size(self) -> int:
        """What this group's files take, as measured for the file size."""
        return self._bytes(self.rows, self._longest, self._chars)

    def _numpy_bytes(self, rows: int, longest: dict[str, int]) -> int:
        return rows * (self._fixed_row + 4 * sum(longest.values()))

    def _bytes(self, rows: int, longest: dict[str, int], chars: int) -> int:
        if uses_json(self.spec):  # numbers as text: about 3 characters per byte of a float32
            return 3 * rows * self._fixed_row + chars
        return self._numpy_bytes(rows, longest)

    def encode(self, limit: int) -> dict[str, bytes]:
        """The group's import files, by file name: numpy when it holds no ARRAY field and its fixed-width strings
        stay within ``limit`` (a single chunk of long strings may not), else one row-JSON file."""
        if uses_json(self.spec) or self._numpy_bytes(self.rows, self._longest) > limit:
            return {JSON_FILE: json_rows(self.spec, self.chunks, self.keep_ids)}
        return numpy_files(self.spec, self.chunks, self.keep_ids)


def _fixed_width(f: Field) -> int:
    if f.type in SCALAR_DTYPES:
        return int(np.dtype(SCALAR_DTYPES[f.type]).itemsize)
    if f.type is FieldType.FLOAT_VECTOR:
        return 4 * int(f.dim or 0)
    if f.type is FieldType.BINARY_VECTOR:
        return int(f.dim or 0) // 8
    return 0


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def numpy_files(spec: CollectionSpec, chunks: list[Chunk], keep_ids: bool) -> dict[str, bytes]:
    """One ``<field>.npy`` per field of ``chunks`` (and ``$meta.npy``): numbers in their own dtype, vectors as 2-D
    arrays (float32; binary as uint8 bytes), VARCHAR as ``<U``, JSON as ``<U`` JSON text. Pure."""
    files: dict[str, bytes] = {}
    for f in _numpy_fields(spec, keep_ids):
        if f.type in (FieldType.VARCHAR, FieldType.JSON):
            array = np.array([s for c in chunks for s in _strings(c, f)], dtype=str)
        elif f.type in SCALAR_DTYPES:
            array = np.concatenate([np.asarray(c.columns[f.name].values, dtype=SCALAR_DTYPES[f.type])
                                    for c in chunks])
        elif f.type in _VECTORS:
            dtype = "<f4" if f.type is FieldType.FLOAT_VECTOR else np.uint8
            array = np.concatenate([np.asarray(c.columns[f.name].values, dtype=dtype)
                                    for c in chunks]).reshape(sum(c.num_rows for c in chunks), -1)
        else:  # refusal() and uses_json() keep every other type out
            raise AssertionError(f"no numpy file for a {f.type.value} field")
        files[f"{f.name}.npy"] = _npy(array)
    return files


def json_rows(spec: CollectionSpec, chunks: list[Chunk], keep_ids: bool) -> bytes:
    """``{"rows": [...]}``: each row an object of its fields (float vectors as numbers, binary vectors as lists of
    byte values, JSON as the value itself) and ``$meta`` with its dynamic fields. Pure."""
    fields = _columns(spec, keep_ids)
    rows: list[dict[str, Any]] = []
    for c in chunks:
        part: list[dict[str, Any]] = [{} for _ in range(c.num_rows)]
        for f in fields:
            values = c.columns[f.name].values
            if f.type is FieldType.FLOAT_VECTOR:
                cells: Any = np.asarray(values, dtype="<f4").reshape(c.num_rows, -1)
            elif f.type is FieldType.BINARY_VECTOR:
                cells = np.asarray(values, dtype=np.uint8).reshape(c.num_rows, -1)
            elif isinstance(values, np.ndarray):
                cells = values.tolist()
            else:
                cells = values
            for row, v in zip(part, cells, strict=True):
                row[f.name] = v
        if spec.enable_dynamic_field:
            extra = c.columns.get(DYNAMIC_COLUMN)
            for row, meta in zip(part, extra.values if extra is not None else [{}] * c.num_rows, strict=True):
                row[DYNAMIC_COLUMN] = meta or {}
        rows.extend(part)
    return orjson.dumps({"rows": rows}, option=orjson.OPT_SERIALIZE_NUMPY)


def import_path(scheme: str, location: str, prefix: str, key: str) -> str:
    """The path the server opens for staged object ``key``: for a bucket or container, the object's name in it
    (the server reads its own bucket); for a folder (a server with local storage), the file's absolute path."""
    if scheme == "file":
        return posixpath.join(location, key)
    return prefix + key


def task_dir(staging: str, task: int) -> str:
    """The store key of the folder of one task's files (ending in ``/``)."""
    return f"{PREFIX}/{staging}/{task:06d}/"


def task_keys(staging: str, task: int, files: dict[str, bytes]) -> dict[str, str]:
    """The store key of each of one task's files, by file name (a path under the task's folder)."""
    return {name: task_dir(staging, task) + name for name in files}


__all__ = ["DEFAULT_FILE_BYTES", "Group", "import_path", "json_rows", "numpy_files", "refusal", "task_dir", "task_keys",
           "uses_json"]
