from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import Json, KeyCommand, PassphraseFile, Quiet, StoreArg, passphrase, setup

Label = Annotated[str, typer.Option("--label", metavar="TEXT", help="A note kept with the key file, shown by "
                                    "`key list` (who or what uses this passphrase).")]


def init(store_url: StoreArg,
         encrypt: Annotated[bool, typer.Option(
             "--encrypt", help="Make an encrypted store: every object is encrypted and authenticated (AES-256-GCM) "
             "with a repository key, wrapped in a key file by the passphrase (scrypt). The store must be empty.")]
         = False,
         recover: Annotated[bool, typer.Option(
             "--recover", help="With --encrypt: write again the settings file (vecbackup.json) of an encrypted "
             "store that lost it, from the key file the passphrase opens, once that key opens the store's sealed "
             "objects. Nothing else is written.")] = False,
         object_lock: Annotated[str | None, typer.Option(
             "--object-lock", metavar="MODE:DAYSd", help="Lock every object the store keeps (S3 Object Lock, Azure "
             "immutability policies): MODE compliance or governance, for DAYS days after it is written, e.g. "
             "compliance:35d; each backup extends the lock of the objects it reuses to its own. The bucket must have "
             "Object Lock enabled, the Azure container version-level immutability support (exit 9 if not, and on a "
             "folder: nothing written). Chosen once, at init; with --encrypt too. Choose "
             "DAYS longer than the oldest backup prune keeps (docs/STORES.md, \"Object lock\").")] = None,
         label: Label = "", passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
         json: Json = False, quiet: Quiet = False) -> None:
    """Prepare a store; with --encrypt, make it an encrypted store opened by a passphrase; with --object-lock, one
    whose objects S3 Object Lock (or Azure immutability) keeps from deletion.

    Keep the passphrase safe: without it (or another key's) the backups cannot be read. Exit 5 if the store is
    already encrypted, has its settings already, or holds unencrypted backups (--encrypt); exit 9 for --object-lock
    on a bucket without Object Lock, an Azure container without version-level immutability, or a folder; exit 14
    if it holds an encrypted store's objects but not its settings (--encrypt --recover writes them again)."""
    setup(json, quiet)
    # without --encrypt a passphrase given is passed on for api.init to refuse (it names --encrypt)
    pw = passphrase(passphrase_file, key_command, what="passphrase" if recover else "new passphrase",
                    confirm=not recover) if encrypt \
        else api.Passphrase.from_env(file=passphrase_file, command=key_command)
    r = api.init(store_url, encrypt=encrypt, passphrase=pw, label=label, recover=recover, object_lock=object_lock)
    locked = "" if r.object_lock is None else \
        f"; every object it keeps is locked ({r.object_lock.mode}) for {r.object_lock.days} days after it is written"

    def human() -> None:
        if r.recovered and r.key is not None:
            ui.say(f"encrypted store {r.store}: settings written again from key {r.key.id}{locked}")
            return
        if r.key is None:
            ui.say(f"store {r.store} is ready (unencrypted{locked}); `vecbackup init --encrypt` on a new, empty "
                   "store encrypts" if r.object_lock is None else f"store {r.store} is ready (unencrypted){locked}")
            return
        ui.say(f"encrypted store {r.store} created; key {r.key.id}" + (f" ({r.key.label})" if r.key.label else "")
               + locked)
        ui.warn("keep the passphrase safe: without it (or another key's, `vecbackup key add`) the backups in "
                "this store cannot be read by anyone, including you")

    ui.emit({"ok": True, **r.to_dict()}, human)
