"""Size limits a collection's schema declares and its rows must respect: ``max_length`` and ``max_capacity``.

Pure functions over the schema and decoded chunks, used on both sides:

* backup: a source that does not report a limit (Milvus Lite leaves out ``max_length`` of ARRAY<VARCHAR>
  elements) gets it measured from the rows instead, recorded in the manifest and marked ``inferred``;
* restore: when a server refuses rows, find the field and the value that broke a limit, so the error can name
  them and the option that fixes it (``--field-params FIELD:max_length=N``).

Milvus counts ``max_length`` in UTF-8 bytes (a 2.3 server refuses ``"ééé"`` for ``max_length`` 3), so lengths
here are UTF-8 byte counts; ``max_capacity`` is the number of elements of an ARRAY.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vecbackup.format.codec import Chunk, Column
from vecbackup.schema import CollectionSpec, Field, FieldType

MAX_LENGTH = "max_length"
MAX_CAPACITY = "max_capacity"


def applicable(f: Field) -> tuple[str, ...]:
    """The limits a field of this type has: VARCHAR ``max_length``; ARRAY ``max_capacity`` and, for VARCHAR
    elements, ``max_length`` of each element."""
    if f.type is FieldType.VARCHAR:
        return (MAX_LENGTH,)
    if f.type is FieldType.ARRAY:
        return (MAX_CAPACITY, MAX_LENGTH) if f.element_type is FieldType.VARCHAR else (MAX_CAPACITY,)
    return ()


def unset(spec: CollectionSpec) -> dict[str, tuple[str, ...]]:
    """Per field, the limits its type has but the schema does not state."""
    out = {}
    for f in spec.fields:
        missing = tuple(limit for limit in applicable(f) if getattr(f, limit) is None)
        if missing:
            out[f.name] = missing
    return out


def _utf8_len(s: Any) -> int:
    return len(s.encode("utf-8")) if isinstance(s, str) else 0


def _present(column: Column) -> Iterable[tuple[int, Any]]:
    valid = column.valid
    for i, v in enumerate(column.values):
        if v is not None and (valid is None or valid[i]):
            yield i, v


def measure(f: Field, column: Column, limit: str) -> tuple[int, int]:
    """The largest size ``limit`` measures in this column, and the row that has it ((0, -1) for no value)."""
    best, row = 0, -1
    for i, v in _present(column):
        if limit == MAX_CAPACITY:
            size = len(v)
        elif f.type is FieldType.ARRAY:
            size = max((_utf8_len(e) for e in v), default=0)
        else:
            size = _utf8_len(v)
        if size > best:
            best, row = size, i
    return best, row


class LimitMeter:
    """Measures limits over the chunks of a backup (only the fields and limits asked for)."""

    def __init__(self, wanted: dict[str, tuple[str, ...]]) -> None:
        self.wanted = wanted
        self.largest: dict[tuple[str, str], int] = {(name, limit): 0 for name, limits in wanted.items()
                                                   for limit in limits}

    def add(self, spec: CollectionSpec, chunk: Chunk) -> None:
        for name, limits in self.wanted.items():
            f = spec.field(name)
            column = chunk.columns[name]
            for limit in limits:
                size, _ = measure(f, column, limit)
                if size > self.largest[(name, limit)]:
                    self.largest[(name, limit)] = size


def with_inferred(spec: CollectionSpec, largest: dict[tuple[str, str], int], source: str,
                  ) -> tuple[CollectionSpec, list[str]]:
    """``spec`` with each measured limit recorded (at least 1: an engine refuses 0) and marked inferred, and a note
    for each, for the manifest."""
    fields = []
    notes = []
    for f in spec.fields:
        changes: dict[str, Any] = {}
        for (name, limit), size in largest.items():
            if name == f.name:
                changes[limit] = max(size, 1)
                what = ("its longest array" if limit == MAX_CAPACITY
                        else "its longest element" if f.type is FieldType.ARRAY else "its longest value")
                unit = "elements" if limit == MAX_CAPACITY else "bytes"
                notes.append(f"field {f.name!r}: the source ({source}) does not report its {limit}; recorded "
                             f"{max(size, 1)}, {what} in this backup ({size} {unit}), marked inferred (restore "
                             f"--field-params {f.name}:{limit}=N sets another)")
        if changes:
            f = dataclasses.replace(f, inferred=tuple(sorted({*f.inferred, *changes})), **changes)
        fields.append(f)
    return dataclasses.replace(spec, fields=tuple(fields)), notes


@dataclass(frozen=True)
class Violation:
    """A value larger than its field's stated limit."""

    field: str
    limit: str
    allowed: int
    found: int
    row: int  # in its chunk

    def __str__(self) -> str:
        if self.limit == MAX_CAPACITY:
            return f"an array of {self.found} elements exceeds its {self.limit} {self.allowed}"
        return f"a value of {self.found} bytes exceeds its {self.limit} {self.allowed}"


def violations(spec: CollectionSpec, chunk: Chunk) -> list[Violation]:
    """Every field of ``chunk`` holding a value beyond the schema's stated limit (the largest per field and
    limit)."""
    out = []
    for f in spec.fields:
        column = chunk.columns.get(f.name)
        if column is None:
            continue
        for limit in applicable(f):
            allowed = getattr(f, limit)
            if allowed is None:
                continue
            size, row = measure(f, column, limit)
            if size > allowed:
                out.append(Violation(f.name, limit, allowed, size, row))
    return out


__all__ = ["MAX_CAPACITY", "MAX_LENGTH", "LimitMeter", "Violation", "applicable", "measure", "unset",
           "violations", "with_inferred"]
