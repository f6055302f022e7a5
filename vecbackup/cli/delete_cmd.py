from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    CollectionOpt,
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


def delete(store_url: StoreArg,
           backup_id: Annotated[str, typer.Argument(metavar="BACKUP_ID", help="Backup id or unique prefix.")],
           collection: CollectionOpt = None, lock_wait: LockWait = 0.0,
           passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
           allow_unencrypted: AllowUnencrypted = False,
           json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text) -> None:
    """Delete a backup: its manifest first, then the data objects no other backup uses."""
    setup(json, quiet, log_format)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    r = api.delete(s, backup_id, collection, lock_wait=lock_wait)
    for note in r.notes:
        ui.warn(note)
    ui.emit({"ok": True, **r.to_dict()},
            lambda: ui.say(f"deleted backup {r.backup_id} of {r.collection}: "
                           f"{plural(r.objects_deleted, 'object')} removed ({ui.human_bytes(r.bytes_freed)}), "
                           f"{r.objects_kept} kept for other backups"))
