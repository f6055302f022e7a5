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
    PassphraseFile,
    Quiet,
    StoreArg,
    setup,
    store,
)
from vecbackup.words import plural


def undelete(store_url: StoreArg,
             as_of: Annotated[str, typer.Option(
                 "--as-of", metavar="TIME", show_default=False,
                 help="Bring back what was deleted since TIME (ISO 8601 with Z or an offset, or a duration ago such "
                 "as 3h): the delete markers written since over the objects the store held then are removed, and "
                 "the tombstones written since are deleted, so backups deleted since are listed again. Objects "
                 "written again since are left as they are (read them with --as-of).")],
             dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be brought back.")] = False,
             lock_wait: LockWait = 0.0,
             passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
             allow_unencrypted: AllowUnencrypted = False, json: Json = False, quiet: Quiet = False) -> None:
    """Bring back backups and objects deleted since a past time from an S3 bucket with versioning (or Object
    Lock), where a delete only hides an object."""
    setup(json, quiet)
    when = api.parse_as_of(as_of)  # once: "3h" is the same time for opening the store and for undelete
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted, as_of=when)  # unlocked with the key it had then
    r = api.undelete(s, when, dry_run=dry_run, lock_wait=lock_wait)
    would = "would bring" if dry_run else "brought"

    def human() -> None:
        ui.say(f"{would} back {plural(len(r.restored), 'object')} deleted since {r.as_of}"
               + (f" and {'would delete' if dry_run else 'deleted'} {plural(len(r.tombstones_deleted), 'tombstone')}"
                  " written since" if r.tombstones_deleted else ""))
        if r.overwritten:
            ui.warn(f"{plural(len(r.overwritten), 'object')} written again since {r.as_of} left as they are "
                    f"(read them with --as-of), e.g. {r.overwritten[0]}")

    ui.emit({"ok": True, **r.to_dict()}, human)
