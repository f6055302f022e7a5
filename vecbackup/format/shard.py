"""Sharded backups: which rows a shard holds, and the record a shard leaves for ``commit`` (docs/FORMAT.md,
"Sharded backups"). Pure.

A sharded backup of one collection is written by n workers (``backup --shard i/n --run RUN``), each holding the
rows whose primary key falls in its shard, then joined by ``vecbackup commit`` into one ordinary backup. A worker
writes its data objects as any backup does, then its **shard record**
``shards/<collection>/<run>/<iiii>-of-<nnnn>.json`` (not a backup: ``list``/``restore`` never see it). ``commit``
writes the backup's manifest, the commit point, only when all n records are there, then removes them.
"""

from __future__ import annotations

import numbers
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from vecbackup.errors import CorruptData, UsageError
from vecbackup.format.layout import canonical_name, escape_name
from vecbackup.format.manifest import Manifest, count

SHARDS = "shards/"
RECORD_FORMAT = "vecbackup-shard"
RECORD_VERSION = 1
#: the rule that assigns a key to a shard, recorded so that every worker and commit agree on it
RULE = "int-mod/crc32-utf8-mod"
MAX_SHARDS = 1024

_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RECORD = re.compile(r"^(\d{4})-of-(\d{4})\.json$")


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
            raise UsageError(f"--shard {text!r} is not I/N", hint="e.g. --shard 0/4 for the first of 4 shards")
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
    if not _RUN.fullmatch(run):
        raise UsageError(f"--run {run!r} is not a valid run id",
                         hint="use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit "
                              "(e.g. the Kubernetes Job's name)")
    return run


def runs_prefix(collection: str | None = None) -> str:
    return SHARDS if collection is None else f"{SHARDS}{escape_name(collection)}/"


def run_prefix(collection: str, run: str) -> str:
    return f"{runs_prefix(collection)}{run}/"


def record_key(collection: str, run: str, shard: Shard) -> str:
    return f"{run_prefix(collection, run)}{shard.index:04d}-of-{shard.count:04d}.json"


def parse_record_key(key: str) -> tuple[str, str, Shard] | None:
    """(collection, run, shard) of a shard record key, or None for anything else."""
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
    return None if name is None else (name, parts[1], Shard(index, count))


@dataclass(frozen=True)
class ShardRecord:
    """What one worker backed up: a manifest of its rows (``backup_id`` is the run id until commit), and the sizes
    it measured for limits the source did not report (joined by taking the largest)."""

    run: str
    shard: Shard
    manifest: Manifest
    measured: dict[tuple[str, str], int]  # (field, limit) -> largest size seen in this shard

    def to_json(self) -> bytes:
        return orjson.dumps({
            "format": RECORD_FORMAT, "format_version": RECORD_VERSION, "run": self.run,
            "shard": self.shard.index, "shards": self.shard.count, "rule": RULE,
            "measured": [[name, limit, size] for (name, limit), size in sorted(self.measured.items())],
            "manifest": self.manifest.to_dict(),
        }, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> ShardRecord:
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise CorruptData(f"{where} is not valid JSON ({e})") from None
        if not isinstance(d, dict) or d.get("format") != RECORD_FORMAT or d.get("format_version") != RECORD_VERSION:
            raise CorruptData(f"{where} is not a vecbackup shard record of version {RECORD_VERSION}")
        if d.get("rule") != RULE:
            raise CorruptData(f"{where} assigns rows to shards by {d.get('rule')!r}, not {RULE!r}")
        try:
            shard = Shard(int(d["shard"]), int(d["shards"]))
            measured = {(str(n), str(lim)): count(size) for n, lim, size in d.get("measured", [])}
            manifest = Manifest.from_dict(d["manifest"], where=where)
            return cls(run=str(d["run"]), shard=shard, manifest=manifest, measured=measured)
        except (KeyError, TypeError, ValueError, UsageError) as e:
            raise CorruptData(f"{where} is missing or has a bad field ({e})") from None


__all__ = ["MAX_SHARDS", "RULE", "SHARDS", "Shard", "ShardRecord", "check_run", "owned_batches", "parse_record_key",
           "record_key", "run_prefix", "runs_prefix", "shard_of"]
