from __future__ import annotations

from vecbackup import ui
from vecbackup.cli.options import CollectionOpt, Json, Quiet, StoreArg, setup, store
from vecbackup.ops import catalog


def list_backups(store_url: StoreArg, collection: CollectionOpt = None, json: Json = False,
                 quiet: Quiet = False) -> None:
    """List the complete backups in a store, oldest first."""
    setup(json, quiet)
    s = store(store_url)
    manifests, problems = catalog.list_manifests(s, collection)
    for p in problems:
        ui.warn(f"unreadable manifest: {p}")
    docs = [{"backup_id": m.backup_id, "collection": m.collection.name, "completed_at": m.completed_at,
             "rows": m.rows, "bytes": m.size, "objects": len(m.objects), "engine": m.source.engine,
             "server_version": m.source.server_version} for m in manifests]
    ui.emit({"store": s.display, "backups": docs, "unreadable": problems},
            lambda: ui.table(["backup id", "collection", "completed", "rows", "size"],
                             [(d["backup_id"], d["collection"], d["completed_at"], d["rows"],
                               ui.human_bytes(d["bytes"])) for d in docs]))  # type: ignore[arg-type]
