"""Sharded backups: which rows a shard holds, and the record a shard leaves for ``commit`` (docs/FORMAT.md,
"Sharded backups"). Pure.

A sharded backup of one collection is written by n workers (``backup --shard i/n --run RUN``), each holding the
rows whose primary key falls in its shard, then joined by ``vecbackup commit`` into one ordinary backup. A worker
writes its data objects as any backup does, then its **shard record**
``shards/<collection>/<run>/<iiii>-of-<nnnn>.<attempt>.json`` (not a backup: ``list``/``restore`` never see it),
create-if-absent under a new attempt id: no record is ever rewritten under the same name, so an old record put back
is another attempt, which commit sees. ``commit`` writes the backup's manifest, the commit point, only when all n
records are there, then the run's **closed mark** ``shards/<collection>/<run>/closed.json`` (a run id is used once),
then removes the records.
"""

from __future__ import annotations

import numbers
import re
import secrets
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from vecbackup.errors import CorruptData, UsageError
from vecbackup.format.layout import canonical_name, escape_name
from vecbackup.format.manifest import Manifest
from vecbackup.format.ranges import count
from vecbackup.format.sealed import refuse_sealed
from vecbackup.words import param

SHARDS = "shards/"
RECORD_FORMAT = "vecbackup-shard"
#: version 2 adds ``attempt`` and ``supersedes``; version 1 records (written under ``<i>-of-<n>.json``) still read
RECORD_VERSION = 2
READABLE_RECORD_VERSIONS = (1, 2)
CLOSED_FORMAT = "vecbackup-closed-run"
#: the rule that assigns a key to a shard, recorded so that every worker and commit agree on it
RULE = "int-mod/crc32-utf8-mod"
MAX_SHARDS = 1024

_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RECORD = re.compile(r"^([0-9]{4})-of-([0-9]{4})(?:\.([0-9a-f]{16}))?\.json$")
_ATTEMPT = re.compile(r"^[0-9a-f]{16}$")
CLOSED_NAME = "closed.json"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, as a Kubernetes Indexed Job numbers its pods)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise UsageError(f"shard {self.index}/{self.count} is out of range",
                             hint=f"use I/N with 0 <= I < N <= {MAX_SHARDS}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (0-based I) -> Shard; UsageError naming the option otherwise."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m or len(m.group(1)) > 9 or len(m.group(2)) > 9:  # (int() takes at most 4300 digits)
            raise UsageError(f"{param('shard', text, quoted=True)} is not I/N",
                             hint=f"e.g. {param('shard', '0/4')} for the first of 4 shards")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: Any) -> bool:
        """Whether this shard holds the row with primary key ``key``: an integer key ``k`` belongs to shard
        ``k mod N`` (the non-negative remainder), any other key (a string, a UUID) to shard
        ``crc32(utf8(key)) mod N``."""
        return shard_of(key, self.count) == self.index


def owned_batches(shard: Shard, key_pages: Iterable[Iterable[Any]], size: int) -> Iterator[list[Any]]:
    """The keys ``shard`` owns out of pages of keys, ``size`` at a time (the last batch fewer), in page order."""
    pending: list[Any] = []
    for page in key_pages:
        pending.extend(k for k in page if shard.owns(k))
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending


def shard_of(key: Any, count: int) -> int:
    if isinstance(key, bool):
        raise TypeError("a boolean is not a primary key")
    if isinstance(key, numbers.Integral):  # int, and numpy's integers (a key read from a column)
        return int(key) % count
    return zlib.crc32(str(key).encode("utf-8")) % count


def check_run(run: str) -> str:
    """A run id as given to ``--run``: 1-128 of ``[A-Za-z0-9_.-]``, not starting with ``.``, ``_`` or ``-``."""
    if not isinstance(run, str) or not _RUN.fullmatch(run):
        raise UsageError(f"{param('run', run, quoted=True)} is not a valid run id",
                         hint="use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit, "
                              "e.g. the Kubernetes Job's name")
    return run


def runs_prefix(collection: str | None = None) -> str:
    return SHARDS if collection is None else f"{SHARDS}{escape_name(collection)}/"


def run_prefix(collection: str, run: str) -> str:
    return f"{runs_prefix(collection)}{run}/"


def new_attempt() -> str:
    """A new attempt id: 16 random hex digits (docs/FORMAT.md, "Sharded backups")."""
    return secrets.token_hex(8)


def record_key(collection: str, run: str, shard: Shard, attempt: str = "") -> str:
    """The key of a shard record: ``<iiii>-of-<nnnn>.<attempt>.json``, or ``<iiii>-of-<nnnn>.json`` for the one
    record (``attempt`` "") a vecbackup before 0.3 wrote per shard, rewriting it on a re-run."""
    if attempt and not _ATTEMPT.fullmatch(attempt):
        raise ValueError(f"not an attempt id: {attempt!r}")
    return f"{run_prefix(collection, run)}{shard.index:04d}-of-{shard.count:04d}{'.' + attempt if attempt else ''}.json"


def closed_key(collection: str, run: str) -> str:
    """The mark a run gets once committed or abandoned: its id is not used again."""
    return f"{run_prefix(collection, run)}{CLOSED_NAME}"


def parse_record_key(key: str) -> tuple[str, str, Shard, str] | None:
    """(collection, run, shard, attempt) of a shard record key (attempt "" for a record of a vecbackup before 0.3),
    or None for anything else."""
    if not key.startswith(SHARDS):
        return None
    parts = key[len(SHARDS):].split("/")
    if len(parts) != 3 or not _RUN.fullmatch(parts[1]):
        return None
    m = _RECORD.fullmatch(parts[2])
    if not m:
        return None
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        return None
    name = canonical_name(parts[0])
    return None if name is None else (name, parts[1], Shard(index, count), m.group(3) or "")


def parse_closed_key(key: str) -> tuple[str, str] | None:
    """(collection, run) of a closed-run mark's key, or None."""
    if not key.startswith(SHARDS) or not key.endswith("/" + CLOSED_NAME):
        return None
    parts = key[len(SHARDS):].split("/")
    if len(parts) != 3 or not _RUN.fullmatch(parts[1]):
        return None
    name = canonical_name(parts[0])
    return None if name is None else (name, parts[1])


@dataclass(frozen=True)
class ShardRecord:
    """What one worker backed up: a manifest of its rows (``backup_id`` is the run id until commit), and the sizes
    it measured for limits the source did not report (joined by taking the largest).

    ``attempt`` names this record among the shard's records (a re-run writes a new one, never over an old one);
    ``supersedes`` lists the attempts of the shard this worker found and replaces (it removes them once its own
    record is written), so that commit can tell one worker's re-run from two records neither knew of."""

    run: str
    shard: Shard
    manifest: Manifest
    measured: dict[tuple[str, str], int]  # (field, limit) -> largest size seen in this shard
    attempt: str = ""  # "" for a record of a vecbackup before 0.3 (format version 1)
    supersedes: tuple[str, ...] = ()

    @property
    def collection(self) -> str:
        return self.manifest.collection.name

    @property
    def key(self) -> str:
        return record_key(self.collection, self.run, self.shard, self.attempt)

    def to_json(self) -> bytes:
        d: dict[str, Any] = {"format": RECORD_FORMAT, "format_version": RECORD_VERSION if self.attempt else 1,
                             "run": self.run, "shard": self.shard.index, "shards": self.shard.count}
        if self.attempt:  # (a record without one is of version 1, as a vecbackup before 0.3 wrote it)
            d.update(attempt=self.attempt, supersedes=sorted(self.supersedes))
        d.update(rule=RULE, measured=[[name, limit, size] for (name, limit), size in sorted(self.measured.items())],
                 manifest=self.manifest.to_dict())
        return orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> ShardRecord:
        refuse_sealed(data, where)
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise CorruptData(f"{where} is not valid JSON ({e})") from None
        if not isinstance(d, dict) or d.get("format") != RECORD_FORMAT or \
                d.get("format_version") not in READABLE_RECORD_VERSIONS:
            raise CorruptData(f"{where} is not a vecbackup shard record of version "
                              f"{' or '.join(map(str, READABLE_RECORD_VERSIONS))}")
        if d.get("rule") != RULE:
            raise CorruptData(f"{where} assigns rows to shards by {d.get('rule')!r}, not {RULE!r}")
        try:
            shard = Shard(int(d["shard"]), int(d["shards"]))
            measured = {(str(n), str(lim)): count(size) for n, lim, size in d.get("measured", [])}
            manifest = Manifest.from_dict(d["manifest"], where=where)
            attempt: str = ""
            supersedes: tuple[str, ...] = ()
            if d["format_version"] >= 2:
                attempt = d["attempt"]
                supersedes = tuple(d["supersedes"])
                if not isinstance(attempt, str) or not _ATTEMPT.fullmatch(attempt) or not all(
                        isinstance(a, str) and (a == "" or _ATTEMPT.fullmatch(a)) for a in supersedes):
                    raise ValueError("attempt and supersedes must be attempt ids")
            return cls(run=str(d["run"]), shard=shard, manifest=manifest, measured=measured, attempt=attempt,
                       supersedes=supersedes)
        except (KeyError, TypeError, ValueError, UsageError) as e:
            raise CorruptData(f"{where} is missing or has a bad field ({e})") from None


@dataclass(frozen=True)
class ClosedRun:
    """``shards/<collection>/<run>/closed.json``: the run was committed as ``backup_id``, or abandoned (``""``).
    Written create-if-absent and never removed, so the run id cannot be used again: a shard record of an earlier
    use of the id, put back, can never be joined into a new backup."""

    collection: str
    run: str
    backup_id: str  # "" when abandoned
    closed_at: str

    @property
    def key(self) -> str:
        return closed_key(self.collection, self.run)

    def to_json(self) -> bytes:
        return orjson.dumps({"format": CLOSED_FORMAT, "version": 1, "collection": self.collection, "run": self.run,
                             "backup_id": self.backup_id or None, "closed_at": self.closed_at},
                            option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> ClosedRun:
        refuse_sealed(data, where)
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CorruptData(f"{where} is not valid JSON") from None
        if not isinstance(d, dict) or d.get("format") != CLOSED_FORMAT or d.get("version") != 1:
            raise CorruptData(f"{where} is not a vecbackup closed-run mark of version 1")
        collection, run, backup_id, closed_at = (d.get(k) for k in ("collection", "run", "backup_id", "closed_at"))
        if not isinstance(collection, str) or not isinstance(run, str) or not isinstance(closed_at, str) or not (
                backup_id is None or isinstance(backup_id, str)):
            raise CorruptData(f"{where} has a bad field")
        return cls(collection, run, backup_id or "", closed_at)


__all__ = ["MAX_SHARDS", "RULE", "SHARDS", "ClosedRun", "Shard", "ShardRecord", "check_run", "closed_key",
           "new_attempt", "owned_batches", "parse_closed_key", "parse_record_key", "record_key", "run_prefix",
           "runs_prefix", "shard_of"]
