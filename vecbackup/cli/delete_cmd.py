from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import ui
from vecbackup.cli.options import CollectionOpt, Json, LockWait, LogFormat, LogFormatName, Quiet, StoreArg, setup, store
from vecbackup.errors import UsageError
from vecbackup.ops import catalog
from vecbackup.ops.delete import delete_backup
from vecbackup.ops.lock import locked


def delete(store_url: StoreArg,
           backup_id: Annotated[str, typer.Argument(help="Backup id or unique prefix.")],
           collection: CollectionOpt = None, lock_wait: LockWait = 0.0, json: Json = False,
           quiet: Quiet = False, log_format: LogFormat = LogFormatName.text) -> None:
    """Delete a backup: its manifest first, then the data objects no other backup uses."""
    setup(json, quiet, log_format)
    s = store(store_url)
    if backup_id == "latest":
        raise UsageError("delete takes an explicit backup id, not 'latest'", hint="`vecbackup list` shows them")
    m = catalog.find(s, backup_id, collection)
    with locked(s, "delete", exclusive=True, wait=lock_wait):  # data objects are shared by every backup
        r = delete_backup(s, m)
    for note in r.notes:
        ui.warn(note)
    ui.emit({"ok": True, **r.to_dict()},
            lambda: ui.say(f"deleted backup {r.backup_id} of {r.collection}: {r.objects_deleted} objects removed "
                           f"({ui.human_bytes(r.bytes_freed)}), {r.objects_kept} kept for other backups"))
