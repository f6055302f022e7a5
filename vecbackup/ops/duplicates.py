"""Keys held by more than one partition: found while backing up (and again by ``verify --read-data``), recorded in
the manifest (format/duplicates.py), and planned for by a restore before anything is created.

A backup holds every copy of such a key, as the source did (docs/COMPATIBILITY.md, "Keys held by more than one
partition"). How a restore puts them back depends on the target (``Sink.key_copies``):

* it keeps every copy in its partition (Milvus; Qdrant with custom sharding): every row is restored. Where
  collection-level reads show the copy written last (Milvus Lite), the partitions are restored in an order that
  writes the copy the source showed (or the one ``--duplicate-keys`` names) last, settled (flushed) in between so the
  older copies stay; the count is compared the way the backup counted, partition by partition.
* it keeps one point per key (Qdrant): refused unless ``--duplicate-keys`` says which copy to keep; that copy is
  written last, and the rows of the other copies are not restored (the plan says how many).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from vecbackup.engines.base import KeyCopies, Sink, Source
from vecbackup.errors import RowCountMismatch, Unsupported, UsageError
from vecbackup.format.duplicates import DuplicateGroup, DuplicateKeys, KeyIndex
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.ops.fetch import iter_chunks
from vecbackup.schema import CollectionSpec, FieldType
from vecbackup.stores.base import BlobStore, in_flight
from vecbackup.words import param, plural

# -- finding them ----------------------------------------------------------------------------------


def key_index(spec: CollectionSpec, partitions: Sequence[str]) -> KeyIndex | None:
    """A KeyIndex for reading these partitions one by one; None when there is one (or the engine routes rows
    itself: one pass over the collection), where no key can be held twice and nothing is kept."""
    if len(partitions) < 2:
        return None
    return KeyIndex(partitions, exact=spec.primary.type is FieldType.INT64)


def held_keys(index: KeyIndex, store: BlobStore, objects: Sequence[DataObject], spec: CollectionSpec,
              ) -> list[tuple[int | str, tuple[str, ...]]]:
    """The keys ``index`` found in more than one partition. Hashed keys (not INT64) are confirmed against the keys
    themselves, read back from the objects of the partitions whose hashes matched (only there, only then)."""
    suspects = index.suspects()
    if suspects and not index.exact:
        wanted = [o for o in objects if o.partition in suspects]
        for obj, chunk in iter_chunks(store, wanted, read_ahead=in_flight(store)):
            index.confirm(obj.partition, chunk.columns[spec.primary.name].values)
    return index.held()


def found_duplicates(index: KeyIndex | None, store: BlobStore, objects: Sequence[DataObject], spec: CollectionSpec,
                     source: Source) -> DuplicateKeys:
    """What a backup records: the keys held twice, and which copy the source's collection-level reads show."""
    if index is None:
        return DuplicateKeys()
    held = held_keys(index, store, objects, spec)
    return DuplicateKeys.found(held, source.shown_partitions(spec, held) if held else [])


def duplicate_note(found: DuplicateKeys) -> str:
    return f"{found.summary()}: each copy is backed up in its partition (docs/COMPATIBILITY.md)"


# -- planning a restore ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """``restore --duplicate-keys``: ``keep`` every copy (refused where the target keeps one per key), the copy
    collection-level reads ``shown`` on the source, or the copy of the first of ``partitions`` that holds it."""

    mode: str = "keep"  # "keep" | "shown" | "partition"
    partitions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Choice:
        t = text.strip()
        if t in ("keep", "shown"):
            return cls(t)
        if t.startswith("partition:"):
            names = tuple(p.strip() for p in t[len("partition:"):].split(","))
            if names and all(names) and len(set(names)) == len(names):
                return cls("partition", names)
        raise UsageError(f"{param('duplicate_keys', text, quoted=True)} is not keep, shown or "
                         "partition:NAME[,NAME...]", hint="docs/COMPATIBILITY.md, \"Keys held by more than one "
                         "partition\"")

    @property
    def label(self) -> str:
        return f"partition:{','.join(self.partitions)}" if self.mode == "partition" else self.mode


@dataclass(frozen=True)
class DuplicatePlan:
    """What a restore does about the backup's keys held by more than one partition (part of the restore Plan)."""

    order: tuple[str, ...] = ()  # the backup's partitions in the order they are restored (empty: manifest order)
    settle: bool = False  # Sink.settle between two partitions
    count: int = 0  # what the target's count() must say at the end
    partition_rows: dict[str, int] | None = None  # the target's partitions' rows, counted as a backup counts them
    dropped: int = 0  # rows of the backup not restored (copies the target holds one of)
    notes: tuple[str, ...] = ()
    #: the backup does not record them (an earlier vecbackup): the order and the settling are a precaution, and a
    #: count that differs is accepted when every partition holds the backup's rows
    unrecorded: bool = False

    @property
    def ordered(self) -> bool:
        """Whether the restore is right only when the partitions are restored one after another, in order."""
        return not self.unrecorded and (self.settle or bool(self.order))


def _chosen(group: DuplicateGroup, choice: Choice) -> str | None:
    if choice.mode == "partition":
        return next((p for p in choice.partitions if p in group.partitions), None)
    return group.shown


def restore_order(partitions: Sequence[str], groups: Sequence[tuple[DuplicateGroup, str]]) -> tuple[str, ...] | None:
    """The partitions in an order that restores each group's chosen partition after the group's others (stable:
    the given order where nothing says otherwise); None if there is none (the choices go round in a circle)."""
    rank = {p: i for i, p in enumerate(partitions)}
    before: dict[str, set[str]] = {p: set() for p in partitions}  # p -> partitions that must come after p
    waiting = dict.fromkeys(partitions, 0)  # p -> partitions still to come before p
    for group, chosen in groups:
        for p in group.partitions:
            if p != chosen and chosen not in before[p]:
                before[p].add(chosen)
                waiting[chosen] += 1
    ready = [rank[p] for p in partitions if not waiting[p]]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        p = partitions[heapq.heappop(ready)]
        out.append(p)
        for q in before[p]:
            waiting[q] -= 1
            if not waiting[q]:
                heapq.heappush(ready, rank[q])
    return tuple(out) if len(out) == len(partitions) else None


def plan_duplicates(manifest: Manifest, copies: KeyCopies, choice: Choice, display: str,
                    partition_names: dict[str, str] | None = None) -> DuplicatePlan:
    """The restore's part for keys held by more than one partition (pure). Unsupported, before anything is created,
    where the target cannot do what was asked; UsageError for a partition the backup does not have."""
    rows = manifest.rows
    dup = manifest.duplicate_keys
    if choice.mode == "partition":
        unknown = [p for p in choice.partitions if p not in manifest.collection.partitions]
        if unknown:
            raise UsageError(f"{param('duplicate_keys')} names partition {unknown[0]!r}, which the backup does not "
                             "have",
                             hint="partitions: " + ", ".join(manifest.collection.partitions))
    names = partition_names or {}
    mapped = {names.get(p, p): n for p, n in manifest.partition_rows.items()}
    if dup is None or not dup.keys:
        if dup is not None or sum(1 for n in manifest.partition_rows.values() if n) < 2:
            return DuplicatePlan(count=rows)
        # not recorded (an earlier vecbackup): where order matters, restore as if there were some (cheap), and
        # accept a count that differs when every partition holds its rows (check_restored)
        in_order = copies.held and copies.last_shown
        return DuplicatePlan(order=tuple(manifest.collection.partitions) if in_order else (), settle=in_order,
                             count=rows, partition_rows=mapped if in_order else None, unrecorded=True)
    hint = (f"{param('duplicate_keys', 'shown')} keeps the copy collection-level reads showed on the source; "
            f"{param('duplicate_keys', 'partition:NAME[,NAME...]')} the copy of the first partition listed that "
            "holds the key")
    notes = [f"the backup holds {dup.summary()}"]
    chosen = [(g, _chosen(g, choice)) for g in dup.groups]
    if choice.mode == "shown":
        unknown_shown = sum(g.keys for g, c in chosen if c is None)
        if unknown_shown:
            raise Unsupported(f"{param('duplicate_keys', 'shown')}: the backup does not record which copy "
                              "collection-level reads "
                              f"showed for {unknown_shown} of its {dup.keys} keys held by more than one partition (the "
                              f"source, {manifest.source.engine}, does not tell)",
                              hint=f"{param('duplicate_keys', 'partition:NAME[,NAME...]')} keeps the copy of the "
                                   "first partition listed that holds the key")
    if choice.mode == "partition":
        uncovered = [g for g, c in chosen if c is None]
        if uncovered:
            raise Unsupported(f"{param('duplicate_keys', choice.label)}: "
                              f"{plural(sum(g.keys for g in uncovered), 'key is', 'keys are')} held "
                              f"by none of these partitions (e.g. {uncovered[0].keys} in "
                              f"{', '.join(repr(p) for p in uncovered[0].partitions)})",
                              hint="list a partition of each of them too")
    if not copies.held and choice.mode == "keep":
        raise Unsupported(f"the backup holds {dup.summary()}; {display} holds one point per key, so "
                          f"{plural(dup.copies, 'row')} of the backup cannot be restored as they are", hint=hint)
    ordered = [(g, c) for g, c in chosen if c is not None]
    order: tuple[str, ...] = ()
    if copies.last_shown:
        found = restore_order(manifest.collection.partitions, ordered)
        if found is None:
            if not copies.held or choice.mode != "keep":
                raise Unsupported(f"{param('duplicate_keys', choice.label)}: the copies to keep are in partitions "
                                  "that no one order of restoring puts last for every key (one partition's for some "
                                  "keys, another's for others)",
                                  hint=f"{param('duplicate_keys', 'partition:NAME[,NAME...]')} orders them")
            found = tuple(manifest.collection.partitions)
            notes.append(f"collection-level reads of {display} will show another copy than the source's for some "
                         "keys: the copies it showed are in partitions no one order of restoring puts last for every "
                         "key")
        order = found
    which = {"keep": "the copy collection-level reads showed on the source", "shown":
             "the copy collection-level reads showed on the source",
             "partition": f"the copy of the first of {', '.join(repr(p) for p in choice.partitions)} that holds it"}
    unshown = sum(g.keys for g, c in chosen if c is None)
    if not copies.held:
        notes.append(f"{display} holds one point per key: of each, {which[choice.mode]} is restored (written last); "
                     f"{plural(dup.copies, 'row')} of the backup {'is' if dup.copies == 1 else 'are'} not "
                     f"(--duplicate-keys {choice.label})")
    elif copies.last_shown:
        text = (f"{display} holds every copy in its partition, and its collection-level reads and count show one "
                "copy of each key")
        if unshown < dup.keys:
            text += f": {which[choice.mode]} (restored last)"
        if unshown:
            text += (f"{'; for' if unshown < dup.keys else ': for'} {plural(unshown, 'key')} the backup does not "
                     "know which "
                     "copy the source showed (a Milvus server does not tell): the copy of the partition restored last "
                     f"(order: {', '.join(repr(p) for p in order)})")
        notes.append(text)
    else:
        notes.append(f"{display} holds every copy in its partition and counts each; which copy its collection-level "
                     "reads return is not fixed by the engine" + (
                         f" (--duplicate-keys {choice.label} does not change that)" if choice.mode != "keep" else ""))
    return DuplicatePlan(order=order, settle=copies.held and copies.last_shown, notes=tuple(notes),
                         count=rows if copies.counted else rows - dup.copies,
                         partition_rows=mapped if copies.held and not copies.counted else None,
                         dropped=0 if copies.held else dup.copies)


def waves(objects: Sequence[DataObject], plan: DuplicatePlan) -> list[list[DataObject]]:
    """The objects to insert, one list per partition in the plan's order, or all in one list (manifest order) when
    the order does not matter."""
    if not plan.order:
        return [list(objects)]
    rank = {p: i for i, p in enumerate(plan.order)}
    by: dict[str, list[DataObject]] = {}
    for o in objects:
        by.setdefault(o.partition, []).append(o)
    return [by[p] for p in sorted(by, key=lambda p: rank.get(p, len(rank)))]


def check_restored(sink: Sink, spec: CollectionSpec, name: str, manifest: Manifest, plan: DuplicatePlan | None,
                   ) -> int:
    """The rows of the restored collection ``name`` (its count()), once they are what the backup holds, counted
    the way the target counts keys held by more than one partition; RowCountMismatch otherwise."""
    expected = manifest.rows if plan is None else plan.count
    count = sink.count(name)
    if count != expected and plan is not None and plan.unrecorded and plan.partition_rows is not None and \
            sink.partition_counts(spec, name, list(plan.partition_rows)) == plan.partition_rows:
        return count  # keys held by more than one partition the backup did not record, each copy restored
    if count != expected:
        why = " (duplicate primary keys in the backup?)" if plan is None or plan.count == manifest.rows else (
            f" (its {manifest.rows} rows less {manifest.rows - plan.count} copies of keys held by more than one "
            "partition)")
        if plan is not None and plan.unrecorded:
            why = (" (keys held by more than one partition? The backup does not record them: written by vecbackup "
                   f"{manifest.tool_version or '(unknown)'}; `vecbackup verify --read-data` counts them, and a new "
                   "backup records them)")
        raise RowCountMismatch(f"restored collection {name!r} holds {count} rows, the backup {expected}{why}",
                               rows=count, expected=expected)
    if plan is not None and plan.partition_rows is not None:
        got = sink.partition_counts(spec, name, list(plan.partition_rows))
        for p, n in plan.partition_rows.items():
            if got.get(p) != n:
                raise RowCountMismatch(f"restored collection {name!r} holds {got.get(p)} rows in partition {p!r}, "
                                       f"the backup {n}", rows=sum(got.values()),
                                       expected=sum(plan.partition_rows.values()))
    return count


def unrecorded_note(manifest: Manifest, plan: DuplicatePlan | None, count: int) -> list[str]:
    """What to say when a restore accepted a count that differs from the backup's it did not record a reason for."""
    if plan is None or not plan.unrecorded or count == plan.count:
        return []
    return [f"the restored collection counts {count} rows, the backup holds {manifest.rows} and every partition "
            f"holds its rows: {manifest.rows - count} of them are copies of keys held by more than one partition, "
            "which the target counts once (the backup, written by vecbackup "
            f"{manifest.tool_version or '(unknown)'}, does not record them; a new backup does)"]


def expected_rows(manifest: Manifest, plan: DuplicatePlan | None) -> int:
    return manifest.rows if plan is None else plan.count


__all__ = ["Choice", "DuplicatePlan", "check_restored", "duplicate_note", "expected_rows", "found_duplicates",
           "held_keys", "key_index", "plan_duplicates", "restore_order", "unrecorded_note", "waves"]
