from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
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


def unlock(store_url: StoreArg,
           all_: Annotated[bool, typer.Option("--all", help="Remove every lock, even live ones: only when you are "
                                              "sure no other vecbackup run uses this store.")] = False,
           list_only: Annotated[bool, typer.Option("--list", help="Only show the locks.")] = False,
           passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False, json: Json = False,
           quiet: Quiet = False) -> None:
    """Remove stale locks (left by runs that died), or list the locks on a store."""
    setup(json, quiet)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    if list_only:
        locks = api.locks(s)
        ui.emit({"locks": [lock.__dict__ for lock in locks]},
                lambda: ui.table(["lock", "kind", "owner", "expires"],
                                 [(lk.lock_id, ("exclusive " if lk.exclusive else "shared ") + lk.kind,
                                   f"{lk.user}@{lk.host} pid {lk.pid}", lk.describe().rsplit("expires ", 1)[-1])
                                  for lk in locks]))
        return
    removed = api.unlock(s, all=all_)
    ui.emit({"ok": True, "removed": [lock.__dict__ for lock in removed]},
            lambda: ui.say(f"removed {plural(len(removed), 'lock' if all_ else 'stale lock')}"))
