"""``vecbackup key add|list|remove``: who can open an encrypted store. Key files wrap the one repository key, so
changing them re-encrypts and re-uploads nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.app import Command, Group
from vecbackup.cli.init_cmd import Label
from vecbackup.cli.options import Json, KeyCommand, KeyId, PassphraseFile, Quiet, StoreArg, passphrase, setup, store

key_app = typer.Typer(name="key", help="Manage the passphrases (key files) that open an encrypted store.",
                      no_args_is_help=True, rich_markup_mode=None, cls=Group)


def _row(k: api.KeyInfo) -> tuple[str, str, str, str, str]:
    return ("*" if k.current else "", k.id, k.created, k.host, k.label)


def add(store_url: StoreArg, label: Label = "",
        new_passphrase_file: Annotated[str | None, typer.Option(
            "--new-passphrase-file", metavar="FILE", envvar="VECBACKUP_NEW_PASSPHRASE_FILE", show_envvar=True,
            help="A file holding the new passphrase (else VECBACKUP_NEW_PASSPHRASE, --new-key-command, or asked at "
                 "a terminal).")] = None,
        new_key_command: Annotated[str | None, typer.Option(
            "--new-key-command", metavar="CMD", envvar="VECBACKUP_NEW_KEY_COMMAND", show_envvar=True,
            help="A command that prints the new passphrase.")] = None,
        passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
        json: Json = False, quiet: Quiet = False) -> None:
    """Add a passphrase that opens the store (a new key file; the store is opened with an existing one)."""
    setup(json, quiet)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id)
    new = passphrase(new_passphrase_file, new_key_command, what="new passphrase", confirm=True, new=True)
    k = api.add_key(s, new, label=label)
    ui.emit({"ok": True, "store": s.display, "key": k.to_dict()},
            lambda: ui.say(f"added key {k.id} to {s.display}" + (f" ({k.label})" if k.label else "")))


def list_(store_url: StoreArg, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
          key_id: KeyId = None, json: Json = False, quiet: Quiet = False) -> None:
    """List the key files of an encrypted store; * marks the one that opened it."""
    setup(json, quiet)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id)
    keys = api.keys(s)
    ui.emit({"ok": True, "store": s.display, "keys": [k.to_dict() for k in keys]},
            lambda: ui.table(["", "key id", "created", "host", "label"], [_row(k) for k in keys]))


def remove(store_url: StoreArg,
           key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id or unique prefix (`key list`).")],
           passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, open_with: KeyId = None,
           json: Json = False, quiet: Quiet = False) -> None:
    """Remove a key file: its passphrase no longer opens the store. Refused for the key this run opened the store
    with (open it with another key's passphrase), so the last key cannot be removed."""
    setup(json, quiet)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=open_with)
    k = api.remove_key(s, key_id)
    ui.emit({"ok": True, "store": s.display, "removed": k.to_dict()},
            lambda: ui.say(f"removed key {k.id} from {s.display}; its passphrase no longer opens the store"))


key_app.command("add", cls=Command)(add)
key_app.command("list", cls=Command)(list_)
key_app.command("remove", cls=Command)(remove)
