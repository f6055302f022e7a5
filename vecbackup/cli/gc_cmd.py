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
from vecbackup.times import parse_duration


def gc(store_url: StoreArg,
       min_age: Annotated[str, typer.Option("--min-age", help="Only delete unreferenced objects older than this "
                                            "(e.g. 24h, 7d): younger ones may belong to a backup still running.")]
       = "24h",
       dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")]
       = False,
       lock_wait: LockWait = 0.0, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
       key_id: KeyId = None,
       allow_unencrypted: AllowUnencrypted = False,
       json: Json = False, quiet: Quiet = False, log_format: LogFormat = LogFormatName.text) -> None:
    """Delete data objects that no backup references (leftovers of failed or interrupted backups)."""
    setup(json, quiet, log_format)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    r = api.gc(s, min_age=parse_duration(min_age), dry_run=dry_run, lock_wait=lock_wait)
    verb = "would delete" if dry_run else "deleted"
    ui.emit({"ok": True, **r.to_dict()},
            lambda: ui.say(f"{verb} {len(r.keys)} unreferenced objects ({ui.human_bytes(r.bytes_freed)}); "
                           f"{r.kept_young} younger than {min_age} kept; {r.referenced} in use"))
