"""Check that a backup is complete and intact, at one of three depths per object.

* ``stat`` (``verify --quick``): the object exists and has the recorded size; nothing is downloaded.
* ``checksum`` (the default): the object is read back; size, SHA-256 (in an encrypted store: authentication
  and the keyed MAC) and chunk header are checked; so is its row-digest object, where the store has one (header,
  CRC, authentication, one digest per row of the object).
* ``decode`` (``--read-data``): as ``checksum``, and the chunk is fully decoded: every buffer's CRC and
  zstd frame, the row count, and every column of the schema present with the right type and length.
  Catches codec-level damage even when the manifest's checksum was rewritten to match. The object's row
  digests, where the store has them, must match its rows (the next backup trusts them to find rows it has).
  The keys held by more than one partition are found in the data and must be those the manifest records
  (ops/duplicates.py; a restore counts the rows by them).

A problem is reported under the key of the object at fault (the data object, or its row digests), so that
:func:`remove_damaged` (``verify --repair``) can remove exactly the damaged objects.

``--read-data-subset`` decodes a sample of the objects (a random fraction, or one of N deterministic
slices by key hash) and only stats the rest.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vecbackup.errors import AuthenticationFailed, CorruptData, MissingData, UsageError
from vecbackup.format import layout
from vecbackup.format.codec import Chunk, decode_chunk, read_chunk_header
from vecbackup.format.digests import decode_digests, row_digests
from vecbackup.format.duplicates import DuplicateKeys, KeyIndex
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.ops.duplicates import held_keys, key_index
from vecbackup.ops.fetch import check_rows, fetch_object
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.schema import FIXED_DTYPES, VECTOR_DTYPES, Field, FieldType, vector_width
from vecbackup.stores.base import BlobStore, ObjectNotFound, content_hash
from vecbackup.words import either, param

Level = Literal["stat", "checksum", "decode"]
LEVELS: tuple[Level, ...] = ("stat", "checksum", "decode")


@dataclass(frozen=True)
class Subset:
    """Which objects ``--read-data-subset`` decodes: a random ``fraction``, or slice ``n`` of ``of``."""

    fraction: float | None = None
    n: int = 0
    of: int = 0

    def __post_init__(self) -> None:
        """UsageError for neither or both of a fraction and a slice, or one out of range, when it is made."""
        if self.fraction is not None:
            if self.n or self.of:
                raise UsageError("a Subset is a fraction or a slice n of N, not both",
                                 hint="Subset(fraction=0.1) or Subset(n=3, of=10)")
            if (isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float))
                    or not 0 < self.fraction <= 1):
                raise UsageError(f"Subset(fraction={self.fraction!r}) is out of range",
                                 hint="use a fraction above 0 and at most 1")
        elif not (isinstance(self.n, int) and isinstance(self.of, int) and 1 <= self.n <= self.of):
            raise UsageError(f"Subset(n={self.n!r}, of={self.of!r}) is out of range",
                             hint="slice n of N takes 1 <= n <= N")

    @classmethod
    def parse(cls, text: str) -> Subset:
        """``10%`` / ``2.5%`` (a random share) or ``3/10`` (the 3rd of 10 deterministic slices): what
        ``--read-data-subset`` and ``verify(subset=...)`` take; UsageError naming the option otherwise."""
        given = param("subset", text, flag="--read-data-subset", quoted=True)
        s = text.strip()
        if m := _FRACTION.match(s):
            pct = float(m.group(1))
            if not 0 < pct <= 100:
                raise UsageError(f"{given}: the percentage must be above 0 and at most 100")
            return cls(fraction=pct / 100)
        if m := _SLICE.match(s):
            n, of = (int(g) if len(g) <= 9 else -1 for g in m.groups())  # (int() refuses over 4300 digits)
            if not 1 <= n <= of:
                raise UsageError(f"{given}: need 1 <= n <= N in n/N")
            return cls(n=n, of=of)
        raise UsageError(f"bad {given}", hint="use a percentage (10%) or a slice n/N (3/7)")

    def describe(self) -> str:
        if self.fraction is not None:
            return f"{self.fraction * 100:g}%"
        return f"{self.n}/{self.of}"

    def select(self, keys: Sequence[str], rng: random.Random | None = None) -> set[str]:
        """The sampled keys. A fraction samples round(fraction * distinct keys) at random (at least one
        when the fraction is above zero); slice n/of takes the keys whose SHA-256 modulo ``of`` is n-1, so
        slices 1/of..of/of partition every store's objects, whatever the backup."""
        distinct = sorted(set(keys))
        if self.fraction is not None:
            k = round(self.fraction * len(distinct))
            if self.fraction > 0 and distinct:
                k = max(1, k)
            return set((rng or random.Random()).sample(distinct, min(k, len(distinct))))
        return {key for key in distinct if _key_slot(key, self.of) == self.n - 1}


def _key_slot(key: str, of: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % of


_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)%$")
_SLICE = re.compile(r"^(\d+)/(\d+)$")


@dataclass
class Problem:
    key: str
    kind: str  # one of PRECEDENCE: "missing" | "tampered" | "corrupt"
    message: str


@dataclass
class VerifyResult:
    backup_id: str
    collection: str
    objects: int
    rows: int
    bytes_read: int
    problems: list[Problem] = field(default_factory=list)
    mode: str = "checksum"  # "quick" | "checksum" | "read-data" | "read-data-subset N%" / "n/N"
    #: objects checked at each depth (each object is counted once, at the depth it got)
    checked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    #: keys held by more than one partition: as the manifest records them (None: not recorded) and as the data
    #: holds them (None: not read, or not all of it)
    duplicate_keys: dict[str, int | None] = field(default_factory=lambda: {"recorded": None, "found": None})

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "collection": self.collection, "ok": self.ok,
                "mode": self.mode, "objects": self.objects, "checked": dict(self.checked),
                "rows": self.rows, "bytes_read": self.bytes_read, "duplicate_keys": dict(self.duplicate_keys),
                "problems": [{"key": p.key, "kind": p.kind, "message": p.message} for p in self.problems]}

    def raise_for_problems(self) -> None:
        """MissingData if any object is missing (exit 8), else AuthenticationFailed if one of an encrypted store
        fails authentication (exit 14), else CorruptData if any is damaged (exit 7)."""
        missing = [p for p in self.problems if p.kind == "missing"]
        tampered = [p for p in self.problems if p.kind == "tampered"]
        corrupt = [p for p in self.problems if p.kind == "corrupt"]
        if missing:
            raise MissingData(f"backup {self.backup_id}: {len(missing)} of {self.objects} data objects missing, "
                              f"{len(corrupt) + len(tampered)} damaged; first: {missing[0].key}")
        if tampered:
            raise AuthenticationFailed(f"backup {self.backup_id}: {len(tampered)} of {self.objects} data objects "
                                       f"fail authentication; first: {tampered[0].message}")
        if corrupt:
            raise CorruptData(f"backup {self.backup_id}: {len(corrupt)} of {self.objects} data objects damaged; "
                              f"first: {corrupt[0].message}")


#: problem kinds in the order their exit codes outrank each other: missing (8), tampered (14), corrupt (7)
PRECEDENCE = ("missing", "tampered", "corrupt")


def rank(result: VerifyResult) -> int:
    """Where a result's worst problem stands in PRECEDENCE (0 = missing); len(PRECEDENCE) for a result without."""
    return min((PRECEDENCE.index(p.kind) for p in result.problems if p.kind in PRECEDENCE), default=len(PRECEDENCE))


def raise_for_worst(results: list[VerifyResult]) -> None:
    """Raise for the failed result whose problem outranks the others' (the first of equals); nothing if all are ok."""
    bad = [r for r in results if not r.ok]
    if bad:
        min(bad, key=rank).raise_for_problems()


def _stat(store: BlobStore, obj: DataObject) -> None:
    try:
        info = store.stat(obj.key)
    except ObjectNotFound:
        raise MissingData(f"data object {obj.key} is missing from {store.display}") from None
    if info.size != obj.size:
        raise CorruptData(f"data object {obj.key} has {info.size} bytes, the manifest says {obj.size}")


def _check_column(key: str, f: Field, col: dict[str, object], values: object, valid: np.ndarray | None,
                  n: int) -> None:
    where = f"data object {key} column {f.name!r}"
    if col.get("type") != f.type.value:
        raise CorruptData(f"{where} has type {col.get('type')}, the schema says {f.type.value}")
    if f.type.is_dense_vector and col.get("dim") != f.dim:
        raise CorruptData(f"{where} has dim {col.get('dim')}, the schema says {f.dim}")
    if f.type is FieldType.ARRAY and f.element_type is not None and col.get("element_type") != f.element_type.value:
        raise CorruptData(f"{where} holds {col.get('element_type')} elements, the schema says {f.element_type.value}")
    if f.is_struct_array:
        members = [{"name": m.name, "type": m.type.value, **({"dim": m.dim} if m.type.is_dense_vector else {})}
                   for m in f.struct_fields]
        if col.get("struct_fields") != members:
            raise CorruptData(f"{where} holds structs of {col.get('struct_fields')}, the schema says {members}")
    if valid is not None and len(valid) != n:
        raise CorruptData(f"{where} has a validity mask of {len(valid)} rows, expected {n}")
    if f.type in FIXED_DTYPES or f.type.is_dense_vector:
        dtype = np.dtype(FIXED_DTYPES.get(f.type) or VECTOR_DTYPES[f.type])
        shape: tuple[int, ...] = (n,) if f.type in FIXED_DTYPES else (n, vector_width(f.type, f.dim or 0))
        if not isinstance(values, np.ndarray) or values.dtype != dtype or values.shape != shape:
            got = f"{values.dtype} {values.shape}" if isinstance(values, np.ndarray) else type(values).__name__
            raise CorruptData(f"{where} decodes to {got}, expected {dtype} {shape}")
    elif not isinstance(values, list) or len(values) != n:
        what = str(len(values)) if isinstance(values, list) else type(values).__name__
        raise CorruptData(f"{where} decodes to {what} values, expected {n}")


def check_chunk(manifest: Manifest, obj: DataObject, data: bytes) -> Chunk:
    """Fully decode a chunk and check it against the manifest: rows, partition, and every column of the
    schema present (and no other) with the right type and length. CorruptData if not."""
    header = read_chunk_header(data)
    chunk = decode_chunk(data)
    check_rows(obj, chunk.num_rows)
    if chunk.partition != obj.partition:
        raise CorruptData(f"data object {obj.key} belongs to partition {chunk.partition!r}, "
                          f"the manifest says {obj.partition!r}")
    header_cols = {c["name"]: c for c in header["columns"]}
    expected = manifest.collection.columns
    for f in expected:
        if f.name not in chunk.columns:
            raise CorruptData(f"data object {obj.key} lacks column {f.name!r} of the schema")
        col = chunk.columns[f.name]
        _check_column(obj.key, f, header_cols[f.name], col.values, col.valid, chunk.num_rows)
    extra = sorted(set(chunk.columns) - {f.name for f in expected})
    if extra:
        raise CorruptData(f"data object {obj.key} holds columns {extra} the schema does not have")
    return chunk


_REPAIR = "`vecbackup verify --repair` removes it, and the next backup stores the rows of {} again"


def _check_digests(store: BlobStore, obj: DataObject, columns: Sequence[Field], rows: int,
                   chunk: Chunk | None) -> int:
    """CorruptData (AuthenticationFailed in an encrypted store) if the object's row digests (when there are any)
    are not one per row of its ``rows`` rows, or (given the decoded ``chunk``) not those of its rows; bytes read."""
    key = layout.digests_key(obj.sha256)
    try:
        data = store.get(key)
        stored = decode_digests(data, where=key)
    except ObjectNotFound:
        return 0  # written before vecbackup kept digests: the next backup stores these rows again
    except AuthenticationFailed as e:
        raise AuthenticationFailed(e.message, hint=_REPAIR.format(obj.key)) from None
    except CorruptData as e:
        raise CorruptData(e.message, hint=_REPAIR.format(obj.key)) from None
    if len(stored) != rows or (chunk is not None and not (stored == row_digests(columns, chunk)).all()):
        raise CorruptData(f"{key} does not match the rows of {obj.key}", hint=_REPAIR.format(obj.key))
    return len(data)


def _check(store: BlobStore, manifest: Manifest, obj: DataObject, level: Level, keys: KeyIndex | None = None,
           ) -> tuple[int, int, Chunk | None]:
    """Check one object at ``level`` (``decode``: adding the keys of its rows to ``keys``): the bytes downloaded, the
    rows the object holds and (``decode``) its chunk."""
    if level == "stat":
        _stat(store, obj)
        return 0, obj.rows, None
    data = fetch_object(store, obj)
    if level == "decode":
        chunk = check_chunk(manifest, obj, data)
        if keys is not None:
            column = chunk.columns[manifest.collection.primary.name].values
            if obj.select is not None:  # the rows the backup holds
                at = obj.positions()
                column = [column[i] for i in at.tolist()] if isinstance(column, list) else column[at]
            keys.add(obj.partition, column)
        return len(data), chunk.num_rows, chunk
    held = int(read_chunk_header(data)["rows"])
    check_rows(obj, held)
    return len(data), held, None


def _at_fault(obj: DataObject, e: CorruptData) -> str:
    """The key of the object a check of ``obj`` found damaged: its row digests when the message names them."""
    digests = layout.digests_key(obj.sha256)
    return digests if e.message.startswith(digests) else obj.key


@dataclass
class RepairResult:
    """What ``verify --repair`` removed: damaged data objects (with their row digests) and damaged row digests;
    and what it kept although a check failed (the object is sound: its manifest is what is wrong)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)  # backups that used a removed data object (now incomplete)

    def to_dict(self) -> dict[str, object]:
        return {"removed": self.removed, "kept": self.kept, "backups": self.backups}


def _data_damaged(store: BlobStore, key: str, sha: str) -> bool:
    """Whether data object ``key`` itself is damaged: its bytes fail authentication or do not have the content name
    its key gives (content addressing: a sound object always does). A missing object is not damaged."""
    try:
        data = store.get(key)
    except ObjectNotFound:
        return False
    except CorruptData:  # fails authentication
        return True
    return content_hash(store, data) != sha


def remove_damaged(store: BlobStore, results: Sequence[VerifyResult]) -> RepairResult:
    """Remove every object ``results`` found damaged or tampered with (never a missing one: nothing to remove), so
    that the next backup stores their rows again instead of building on them. A data object is removed only when
    read again it proves damaged itself (a check can also fail because a manifest is wrong: then it stays), with its
    row digests; row digests found wrong go alone (the data object stays usable; its rows are uploaded once more).
    The caller holds the store's exclusive lock."""
    out = RepairResult()
    for r in results:
        for key in sorted({p.key for p in r.problems if p.kind in ("corrupt", "tampered")}):
            sha = layout.parse_data_key(key)
            if key not in out.removed and key not in out.kept:
                if sha is not None and not _data_damaged(store, key, sha):
                    out.kept.append(key)
                    continue
                store.delete(key)
                out.removed.append(key)
                if sha is not None:
                    store.delete(layout.digests_key(sha))
            if sha is not None and key in out.removed and r.backup_id not in out.backups:
                out.backups.append(r.backup_id)
    return out


def verify_backup(store: BlobStore, manifest: Manifest, *, quick: bool = False, read_data: bool = False,
                  subset: Subset | None = None, rng: random.Random | None = None,
                  progress: Progress | None = None) -> VerifyResult:
    """Check every data object of a backup at the depth the mode asks for (see the module docstring).
    Finds every problem rather than stopping at the first."""
    if sum([quick, read_data, subset is not None]) > 1:
        raise UsageError(either("a subset is decoded at the default depth, checksum: give depth or subset",
                                "give at most one of --quick, --read-data and --read-data-subset"))
    progress = progress or NullProgress()
    mode = ("quick" if quick else "read-data" if read_data else
            f"read-data-subset {subset.describe()}" if subset is not None else "checksum")
    sampled = subset.select([o.key for o in manifest.objects], rng) if subset is not None else set()
    result = VerifyResult(manifest.backup_id, manifest.collection.name, len(manifest.objects), 0, 0, mode=mode)
    recorded = manifest.duplicate_keys
    result.duplicate_keys["recorded"] = None if recorded is None else recorded.keys
    read = set(o.partition for o in manifest.objects)  # in the collection's order, as the backup read them
    keys = key_index(manifest.collection, [p for p in manifest.collection.partitions if p in read]
                     if read <= set(manifest.collection.partitions) else sorted(read)) if read_data else None
    progress.start(f"verify {manifest.backup_id} ({mode})", manifest.rows)
    for obj in manifest.objects:
        level: Level
        if subset is not None:
            level = "decode" if obj.key in sampled else "stat"
        else:
            level = "stat" if quick else "decode" if read_data else "checksum"
        nbytes = 0
        try:
            nbytes, held, chunk = _check(store, manifest, obj, level, keys)
            result.rows += obj.rows
            if level != "stat":
                nbytes += _check_digests(store, obj, manifest.collection.columns, held, chunk)
            result.bytes_read += nbytes
        except MissingData as e:
            result.problems.append(Problem(obj.key, "missing", str(e)))
        except AuthenticationFailed as e:
            result.problems.append(Problem(_at_fault(obj, e), "tampered", str(e)))
        except CorruptData as e:
            result.problems.append(Problem(_at_fault(obj, e), "corrupt", str(e)))
        result.checked[level] += 1
        progress.advance(obj.rows, nbytes)
    progress.finish()
    if read_data and not result.problems:
        _check_duplicates(store, manifest, keys, result)
    return result


def _check_duplicates(store: BlobStore, manifest: Manifest, keys: KeyIndex | None, result: VerifyResult) -> None:
    """The keys held by more than one partition, as the data holds them, against the manifest's record."""
    held = [] if keys is None else held_keys(keys, store, manifest.objects, manifest.collection)
    found = DuplicateKeys.found(held)
    result.duplicate_keys["found"] = found.keys
    recorded = manifest.duplicate_keys
    if recorded is None:
        return
    where = dict(held)
    wrong = [x for x in recorded.listed if where.get(x.key) != x.partitions]
    if recorded.holdings != found.holdings or wrong:
        result.problems.append(Problem(
            layout.manifest_key(manifest.collection.name, manifest.backup_id), "corrupt",
            f"backup {manifest.backup_id}: the manifest records {recorded.summary()}, the data holds "
            f"{found.summary()}" + (f" (key {wrong[0].key!r} is not in {', '.join(map(repr, wrong[0].partitions))})"
                                    if wrong and recorded.holdings == found.holdings else "")
            + "; a restore would not count its rows right"))
