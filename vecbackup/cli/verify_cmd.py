from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import ui
from vecbackup.cli import app
from vecbackup.cli.options import CollectionOpt, Json, Quiet, StoreArg, setup, store
from vecbackup.errors import UsageError
from vecbackup.ops import catalog
from vecbackup.ops.verify import VerifyResult, verify_backup


@app.command("verify")
def verify(store_url: StoreArg,
           backup_id: Annotated[str | None, typer.Argument(help="Backup id, unique prefix, or 'latest'.")] = None,
           collection: CollectionOpt = None,
           all_: Annotated[bool, typer.Option("--all", help="Verify every backup in the store.")] = False,
           json: Json = False, quiet: Quiet = False) -> None:
    """Read back every data object of a backup and check size, SHA-256 and chunk header.

    Exit 8 if an object is missing, 7 if one is damaged."""
    setup(json, quiet)
    if all_ and backup_id:
        raise UsageError("give a backup id or --all, not both")
    s = store(store_url)
    refs = catalog.list_refs(s, collection) if all_ else [catalog.resolve(s, backup_id or "latest", collection)]
    results: list[VerifyResult] = []
    for ref in refs:
        r = verify_backup(s, catalog.load(s, ref), progress=ui.TerminalProgress())
        results.append(r)
        if r.ok:
            ui.say(f"backup {r.backup_id} of {r.collection}: ok, {r.objects} objects, {r.rows} rows, "
                   f"{ui.human_bytes(r.bytes_read)} read")
        else:
            for p in r.problems:
                ui.warn(f"{p.kind}: {p.message}")
    ui.emit({"ok": all(r.ok for r in results), "store": s.display, "backups": [r.to_dict() for r in results]})
    bad = [r for r in results if not r.ok]
    if bad:  # a missing object (exit 8) outranks a damaged one (exit 7)
        missing = [r for r in bad if any(p.kind == "missing" for p in r.problems)]
        (missing or bad)[0].raise_for_problems()
