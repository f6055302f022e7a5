from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    Json,
    KeyCommand,
    KeyId,
    LockWait,
    LogFormat,
    LogFormatName,
    PassphraseFile,
    Quiet,
    StoreArg,
    setup,
    store,
)
from vecbackup.words import plural


def commit(
    store_url: StoreArg,
    collection: Annotated[str, typer.Option("--collection", "-c", metavar="NAME",
                                            help="The collection the shards backed up.")],
    run: Annotated[str, typer.Option("--run", metavar="ID", help="The run id the shards were given (backup --run).")],
    if_complete: Annotated[bool, typer.Option(
        "--if-complete", help="Succeed without committing while shards are missing (what a worker does after its "
        "own shard: the last one to finish commits).")] = False,
    abandon: Annotated[bool, typer.Option(
        "--abandon", help="Give the run up: remove its shard records (its data objects become garbage for gc) and "
        "close its run id, which is not used again.")
    ] = False,
    lock_wait: LockWait = 0.0, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
    key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False,
    json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text,
) -> None:
    """Join the shards of a sharded backup (backup --shard I/N --run RUN) into one backup, once all N are in the
    store; until then there is no backup (exit 8 names the missing shards)."""
    setup(json, quiet, log_format)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    if abandon:
        removed = api.abandon(s, collection, run, lock_wait=lock_wait)
        ui.emit({"ok": True, "collection": collection, "run": run, "abandoned": removed},
                lambda: ui.say(f"run {run} of {collection}: removed {plural(removed, 'shard record')}; `vecbackup gc` "
                               "deletes their data"))
        return
    r = api.commit(s, collection, run, if_complete=if_complete, lock_wait=lock_wait)
    ui.emit({"ok": True, **r.to_dict()}, None if quiet else lambda: _show(r))


def _show(r: api.CommitResult) -> None:
    if not r.committed:
        ui.say(f"run {r.run} of {r.collection}: {len(r.present)} of {plural(r.shards, 'shard')} present (missing "
               f"{', '.join(f'{i}/{r.shards}' for i in r.missing)}); not committed yet")
        return
    for note in r.notes:
        ui.warn(f"{r.collection}: {note}")
    verb = "was already committed as" if r.already else "committed as"
    ui.say(f"run {r.run} of {r.collection} ({plural(r.shards, 'shard')}) {verb} backup {r.backup_id}: "
           f"{plural(r.rows, 'row')}, {plural(r.objects, 'object')}, {ui.human_bytes(r.bytes_stored)}")
