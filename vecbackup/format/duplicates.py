"""Primary keys held by more than one partition (docs/FORMAT.md, "Keys held by more than one partition"). Pure.

Milvus does not keep a primary key unique across partitions: an upsert without a partition name (pymilvus's
default) writes the row into ``_default`` and leaves an older row of the same key in its own partition. Both are
rows of the collection, read partition by partition, so a backup holds both. What a backup records about them
(:class:`DuplicateKeys`, the manifest's ``duplicate_keys``) is what a restore needs to put them back, or to say
before anything is created that its target cannot: how many keys, which partitions hold them, and which copy the
source's collection-level reads showed where the engine tells. A few keys are listed as examples.

:class:`KeyIndex` finds them among the keys of every partition read, in any order: an 8-byte value per row (an
INT64 key itself, exact; any other key its BLAKE2b-64 hash, personalised and not keyed since it never leaves the
process, whose hits :meth:`KeyIndex.confirm` checks against the keys themselves, so no false duplicate is ever
recorded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecbackup.words import plural

#: keys a manifest lists as examples (the counts and groups say how many there are)
LISTED = 100

_U8 = np.dtype("<u8")
_I8 = np.dtype("<i8")
_PERSON = b"vbdupkey"  # BLAKE2b personalisation: these hashes are never mistaken for anything else


def key_values(keys: Any, exact: bool) -> np.ndarray:
    """The 8-byte values :class:`KeyIndex` keeps for these keys (a copy, never a view of the chunk): an integer
    key itself when ``exact``, else a BLAKE2b-64 hash of its text."""
    if exact:
        return np.array(keys, dtype=_I8).view(_U8)
    data = b"".join(hashlib.blake2b(str(k).encode(), digest_size=8, person=_PERSON).digest() for k in keys)
    return np.frombuffer(data, dtype=_U8).copy()


def _plain(key: Any) -> int | str:
    return int(key) if isinstance(key, (int, np.integer)) and not isinstance(key, bool) else str(key)


class KeyIndex:
    """The keys of each partition, to find those held by more than one. Memory: 8 bytes per row added, and for a
    moment in :meth:`suspects` 8 more per row; then only the suspects.

    Use: :meth:`add` every chunk's keys; :meth:`suspects` once; when not ``exact``, :meth:`confirm` every chunk of
    each partition :meth:`suspects` names (their keys again); then :meth:`held`."""

    def __init__(self, partitions: Sequence[str], *, exact: bool) -> None:
        self.partitions = list(partitions)
        self.exact = exact
        self._parts: dict[str, list[np.ndarray]] = {p: [] for p in self.partitions}
        self._suspects: dict[str, np.ndarray] | None = None
        self._found: dict[Any, set[str]] = {}

    def add(self, partition: str, keys: Any) -> None:
        """The keys of rows of ``partition`` (a chunk's primary-key column)."""
        if self._suspects is not None:
            raise RuntimeError("keys added after suspects()")
        parts = self._parts[partition]
        parts.append(key_values(keys, self.exact))
        if len(parts) > 64:  # many small chunks: join them now (the same memory, fewer arrays)
            self._parts[partition] = [np.concatenate(parts)]

    def suspects(self) -> dict[str, np.ndarray]:
        """Per partition, its sorted values that another partition holds too (exact keys when ``exact``); the
        partitions holding none are left out. Frees the per-row values."""
        if self._suspects is None:
            held: dict[str, np.ndarray] = {}
            for p in list(self._parts):  # each partition's values sorted and distinct, its chunks freed as it goes
                parts = self._parts.pop(p)
                if not parts:
                    continue
                values = parts[0] if len(parts) == 1 else np.concatenate(parts)
                del parts
                values.sort()
                distinct = np.empty(len(values), dtype=bool)
                distinct[:1] = True
                np.not_equal(values[1:], values[:-1], out=distinct[1:])
                held[p] = values if distinct.all() else values[distinct]
            every = np.concatenate(list(held.values())) if held else np.empty(0, dtype=_U8)
            every.sort()
            twice = np.unique(every[1:][every[1:] == every[:-1]])
            del every
            self._suspects = {}
            for p, values in held.items():
                mine = np.intersect1d(values, twice, assume_unique=True)
                if len(mine):
                    self._suspects[p] = mine
        return self._suspects

    def confirm(self, partition: str, keys: Any) -> None:
        """The keys of rows of ``partition`` read again (not ``exact`` only): those whose hash is a suspect are
        kept, to be compared as keys in :meth:`held`."""
        mine = self.suspects().get(partition)
        if mine is None or self.exact:
            return
        values = key_values(keys, False)
        hit = np.flatnonzero(np.isin(values, mine))
        listed = keys if isinstance(keys, list) else list(keys)
        for i in hit.tolist():
            self._found.setdefault(_plain(listed[i]), set()).add(partition)

    def held(self) -> list[tuple[int | str, tuple[str, ...]]]:
        """Every key held by more than one partition, in key order, with those partitions (in collection order)."""
        order = {p: i for i, p in enumerate(self.partitions)}
        if not self.exact:
            return sorted((k, tuple(sorted(ps, key=order.__getitem__))) for k, ps in self._found.items()
                          if len(ps) > 1)
        suspects = self.suspects()
        if not suspects:
            return []
        names = [p for p in self.partitions if p in suspects]
        values = np.concatenate([suspects[p].view(_I8) for p in names])
        owners = np.concatenate([np.full(len(suspects[p]), i, dtype=np.int32) for i, p in enumerate(names)])
        at = np.lexsort((owners, values))
        values, owners = values[at], owners[at]
        bounds = np.flatnonzero(np.diff(values)) + 1
        out: list[tuple[int | str, tuple[str, ...]]] = []
        for start, stop in zip([0, *bounds.tolist()], [*bounds.tolist(), len(values)], strict=True):
            out.append((int(values[start]), tuple(names[j] for j in owners[start:stop].tolist())))
        return out


@dataclass(frozen=True)
class DuplicateGroup:
    """``keys`` keys held by exactly these partitions, whose copy in ``shown`` is the one collection-level reads
    of the source returned (None: the engine does not tell)."""

    partitions: tuple[str, ...]
    keys: int
    shown: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"partitions": list(self.partitions), "keys": self.keys, "shown": self.shown}


@dataclass(frozen=True)
class ListedKey:
    key: int | str
    partitions: tuple[str, ...]
    shown: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "partitions": list(self.partitions), "shown": self.shown}


@dataclass(frozen=True)
class DuplicateKeys:
    """What a backup records about keys held by more than one partition (the manifest's ``duplicate_keys``):
    how many, grouped by the partitions holding them and the copy the source showed, and the first :data:`LISTED`
    of them. A manifest without it did not record them (written before vecbackup looked)."""

    keys: int = 0
    groups: tuple[DuplicateGroup, ...] = ()
    listed: tuple[ListedKey, ...] = ()

    @property
    def copies(self) -> int:
        """Rows beyond one per key: what a target holding one row per key has fewer than the backup."""
        return sum(g.keys * (len(g.partitions) - 1) for g in self.groups)

    @property
    def holdings(self) -> dict[tuple[str, ...], int]:
        """Keys per set of partitions holding them (whatever copy was shown): what the data alone tells."""
        out: dict[tuple[str, ...], int] = {}
        for g in self.groups:
            out[g.partitions] = out.get(g.partitions, 0) + g.keys
        return out

    @classmethod
    def found(cls, held: Sequence[tuple[int | str, tuple[str, ...]]], shown: Sequence[str | None] | None = None,
              ) -> DuplicateKeys:
        """The record of ``held`` (KeyIndex.held, in key order) with the copy the source showed of each."""
        shown = list(shown) if shown is not None else [None] * len(held)
        counts: dict[tuple[tuple[str, ...], str | None], int] = {}
        for (_, partitions), s in zip(held, shown, strict=True):
            counts[(partitions, s)] = counts.get((partitions, s), 0) + 1
        groups = tuple(DuplicateGroup(p, n, s) for (p, s), n in sorted(counts.items(), key=_group_order))
        listed = tuple(ListedKey(k, p, s) for (k, p), s in zip(held[:LISTED], shown[:LISTED], strict=True))
        return cls(len(held), groups, listed)

    @classmethod
    def join(cls, parts: Iterable[DuplicateKeys | None]) -> DuplicateKeys | None:
        """The record of a backup joined from parts holding disjoint keys (the shards of a sharded backup); None
        if any part did not record them."""
        parts = list(parts)
        if any(p is None for p in parts):
            return None
        counts: dict[tuple[tuple[str, ...], str | None], int] = {}
        listed: list[ListedKey] = []
        for p in parts:
            assert p is not None
            for g in p.groups:
                counts[(g.partitions, g.shown)] = counts.get((g.partitions, g.shown), 0) + g.keys
            listed.extend(p.listed)
        listed.sort(key=lambda x: (isinstance(x.key, str), x.key))
        groups = tuple(DuplicateGroup(p, n, s) for (p, s), n in sorted(counts.items(), key=_group_order))
        return cls(sum(p.keys for p in parts if p is not None), groups, tuple(listed[:LISTED]))

    def example(self) -> str:
        """One key and where it is, for a message ("key 17 in '_default' and 'p1'")."""
        if self.listed:
            x = self.listed[0]
            return f"key {x.key!r} in {_names(x.partitions)}"
        return f"{plural(self.groups[0].keys, 'key')} in {_names(self.groups[0].partitions)}" if self.groups else ""

    def summary(self) -> str:
        if not self.keys:
            return "no key is held by more than one partition"
        return (f"{plural(self.keys, 'key')} held by more than one partition ({plural(self.copies, 'row')} beyond "
                f"one copy each; e.g. {self.example()})")

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "groups": [g.to_dict() for g in self.groups],
                "listed": [x.to_dict() for x in self.listed]}

    @classmethod
    def from_dict(cls, d: Any, partitions: Sequence[str]) -> DuplicateKeys:
        """ValueError unless ``d`` is a consistent record over these partitions (the collection's)."""
        if not isinstance(d, dict):
            raise ValueError("duplicate_keys is not an object")
        keys = _count(d.get("keys"))
        groups = tuple(DuplicateGroup(_partitions(g.get("partitions"), partitions), _count(g.get("keys")),
                                      _shown(g.get("shown"), g.get("partitions")))
                       for g in _objects(d.get("groups", [])))
        listed = tuple(ListedKey(_key(x.get("key")), _partitions(x.get("partitions"), partitions),
                                 _shown(x.get("shown"), x.get("partitions")))
                       for x in _objects(d.get("listed", [])))
        if sum(g.keys for g in groups) != keys or any(g.keys < 1 for g in groups):
            raise ValueError(f"duplicate_keys: its groups hold {sum(g.keys for g in groups)} keys, 'keys' says "
                             f"{keys}")
        if len(listed) > keys:
            raise ValueError(f"duplicate_keys lists {len(listed)} keys of {keys}")
        return cls(keys, groups, listed)


def _group_order(item: tuple[tuple[tuple[str, ...], str | None], int]) -> tuple[Any, ...]:
    (partitions, shown), _ = item
    return partitions, shown is None, shown or ""


def _names(partitions: Sequence[str]) -> str:
    quoted = [repr(p) for p in partitions]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"duplicate_keys: {value!r} is not a count")
    return value


def _objects(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise ValueError("duplicate_keys: groups and listed must be arrays of objects")
    return value


def _partitions(value: Any, known: Sequence[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2 or len(set(value)) != len(value) or \
            not all(isinstance(p, str) and p in known for p in value):
        raise ValueError(f"duplicate_keys: {value!r} is not two or more partitions of the collection")
    return tuple(value)


def _shown(value: Any, partitions: Any) -> str | None:
    if value is not None and (not isinstance(partitions, list) or value not in partitions):
        raise ValueError(f"duplicate_keys: shown {value!r} is not one of the partitions holding the key")
    return value


def _key(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"duplicate_keys: {value!r} is not a primary key")
    return value


__all__ = ["LISTED", "DuplicateGroup", "DuplicateKeys", "KeyIndex", "ListedKey", "key_values"]
