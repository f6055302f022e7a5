from __future__ import annotations

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    AsOf,
    CollectionOpt,
    Json,
    KeyCommand,
    KeyId,
    PassphraseFile,
    Quiet,
    StoreArg,
    setup,
    store,
)


def list_backups(store_url: StoreArg, collection: CollectionOpt = None,
                 passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
                 allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None,
                 json: Json = False, quiet: Quiet = False) -> None:
    """List the complete backups in a store, oldest first."""
    setup(json, quiet)
    listing = api.list_backups(store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                                     allow_unencrypted=allow_unencrypted, as_of=as_of),
                               collection)
    for p in listing.unreadable:
        ui.warn(f"unreadable manifest: {p}")
    doc = listing.to_dict()
    docs = doc["backups"]
    ui.emit(doc,
            lambda: ui.table(["backup id", "collection", "completed", "rows", "size"],
                             [(d["backup_id"], d["collection"], d["completed_at"], d["rows"],
                               ui.human_bytes(d["bytes"])) for d in docs]))
