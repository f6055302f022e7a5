from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    AsOf,
    Json,
    KeyCommand,
    KeyId,
    PassphraseFile,
    Quiet,
    StoreArg,
    setup,
    store,
)
from vecbackup.words import plural


def stats(store_url: StoreArg,
          collection: Annotated[str | None, typer.Option(
              "--collection", "-c", metavar="NAME", help="List only this collection's backups (what is unique to "
              "one is still judged against every backup in the store).")] = None,
          passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
          locks: Annotated[bool, typer.Option(
              "--locks", help="Read each object's object lock (a HEAD request each) and show the bytes locked now, "
              "which no one can delete, and the others.")] = False,
          allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None, json: Json = False,
          quiet: Quiet = False) -> None:
    """Show what the store holds, the bytes unique to each backup (what deleting it frees) and the deduplication
    ratio."""
    setup(json, quiet)
    s = api.stats(store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                        allow_unencrypted=allow_unencrypted, as_of=as_of), collection, locks=locks)
    for p in s.unreadable:
        ui.warn(f"unreadable: {p}")
    if s.unreadable:
        ui.warn("unique and unreferenced bytes are unknown while a manifest or shard record cannot be read")
    ui.emit({"ok": True, **s.to_dict()}, lambda: _human(s))


def _size(n: int | None) -> str:
    return "?" if n is None else ui.human_bytes(n)


def _human(s: api.StoreStats) -> None:
    if s.backups:
        ui.table(["backup id", "collection", "completed", "rows", "size", "uploaded", "unique"],
                 [(b.backup_id, b.collection, b.completed_at, b.rows, _size(b.referenced_bytes),
                   "-" if b.uploaded_bytes is None else ui.human_bytes(b.uploaded_bytes), _size(b.unique_bytes))
                  for b in s.backups])
    else:
        ui.say("no backups" + (f" of collection {s.collection!r}" if s.collection else "") + f" in {s.store}")
    ui.say(f"store {s.store}: {ui.human_bytes(s.total_bytes)} (data {ui.human_bytes(s.data_bytes)} in "
           f"{plural(s.data_objects, 'object')}, row digests {ui.human_bytes(s.digests_bytes)}, manifests "
           f"{ui.human_bytes(s.manifests_bytes)}"
           + (f", shard records {ui.human_bytes(s.shard_records_bytes)}" if s.shard_records_bytes else "")
           + (f", tombstones {ui.human_bytes(s.tombstones_bytes)}" if s.tombstones_bytes else "") + ")")
    if s.object_lock is not None:
        ui.say(f"object lock {s.object_lock}: each object is locked {s.object_lock.days} days from its write and "
               "from each backup that reuses it; deleted objects stay billed as noncurrent versions until their "
               "lock ends (not counted above)")
    if s.locks is not None:
        lk = s.locks
        ends = f" (their locks end from {lk.earliest_end:%Y-%m-%d %H:%M} to {lk.latest_end:%Y-%m-%d %H:%M} UTC)" \
            if lk.earliest_end is not None and lk.latest_end is not None else ""
        ui.say(f"locked now: {ui.human_bytes(lk.locked_bytes)} in {plural(lk.locked_objects, 'object')}{ends}; "
               f"not locked: {ui.human_bytes(lk.unlocked_bytes)} in {plural(lk.unlocked_objects, 'object')}")
    ratio = s.dedup_ratio
    if ratio is not None:
        whose = f"{s.collection}'s backups" if s.collection else "the backups"
        ui.say(f"deduplication {ratio:.2f}x: {whose} reference {ui.human_bytes(s.referenced_bytes)} stored in "
               f"{ui.human_bytes(s.referenced_stored_bytes)}")
    if s.unreferenced_objects:
        ui.say(f"unreferenced: {_size(s.unreferenced_bytes)} in {plural(s.unreferenced_objects, 'object')}, "
               "which `vecbackup gc` removes once older than its --min-age")
    if s.missing_objects:
        ui.warn(f"{plural(s.missing_objects, 'data object')} the backups use missing from the store; run "
                "`vecbackup verify --all`")
    if s.pending_records:
        ui.say(f"{plural(s.pending_records, 'shard record')} of sharded backups not committed yet (their data is "
               "kept)")
