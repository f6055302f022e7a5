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
         label: Label = "", passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
         json: Json = False, quiet: Quiet = False) -> None:
    """Prepare a store; with --encrypt, make it an encrypted store opened by a passphrase.

    Keep the passphrase safe: without it (or another key's) the backups cannot be read. Exit 5 if the store is
    already encrypted or holds unencrypted backups; exit 14 if it holds an encrypted store's objects but not its
    settings (--encrypt --recover writes them again)."""
    setup(json, quiet)
    # without --encrypt a passphrase given is passed on for api.init to refuse (it names --encrypt)
    pw = passphrase(passphrase_file, key_command, what="passphrase" if recover else "new passphrase",
                    confirm=not recover) if encrypt \
        else api.Passphrase.from_env(file=passphrase_file, command=key_command)
    r = api.init(store_url, encrypt=encrypt, passphrase=pw, label=label, recover=recover)

    def human() -> None:
        if r.recovered and r.key is not None:
            ui.say(f"encrypted store {r.store}: settings written again from key {r.key.id}")
            return
        if r.key is None:
            ui.say(f"store {r.store} is ready (unencrypted); `vecbackup init --encrypt` on a new, empty store "
                   "encrypts")
            return
        ui.say(f"encrypted store {r.store} created; key {r.key.id}" + (f" ({r.key.label})" if r.key.label else ""))
        ui.warn("keep the passphrase safe: without it (or another key's, `vecbackup key add`) the backups in "
                "this store cannot be read by anyone, including you")

    ui.emit({"ok": True, **r.to_dict()}, human)
