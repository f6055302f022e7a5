from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.api import Manifest
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
from vecbackup.words import plural


def _output(m: Manifest, name: str) -> str:
    fn = m.collection.output_of(name)
    return "" if fn is None else f"output of function {fn.name} (not stored)"


def _render(m: Manifest) -> None:
    c = m.collection
    ui.say(f"backup     {m.backup_id}")
    ui.say(f"collection {c.name}  ({plural(m.rows, 'row')}, {plural(len(m.objects), 'object')}, "
           f"{ui.human_bytes(m.size)})")
    ui.say(f"source     {m.source.engine} {m.source.server_version} at {m.source.address}")
    inc = m.incremental
    if inc is not None:
        reused = f", {plural(inc.reused_rows, 'row')} reused from backup {inc.base}" if inc.base is not None else ""
        ui.say(f"uploaded   {ui.human_bytes(inc.new_bytes)} in {plural(inc.new_objects, 'new object')} with their "
               f"row digests{reused}")
    ui.say(f"time       {m.started_at} .. {m.completed_at}  (vecbackup {m.tool_version}, format {m.format_version})")
    ui.table(["field", "type", "details"], [
        (f.name, f.type.value + (f"<{f.element_type.value}>" if f.element_type else ""),
         ", ".join(k for k in ("primary" if f.is_primary else "", "auto_id" if f.auto_id else "",
                               f"dim={f.dim}" if f.dim else "", "nullable" if f.nullable else "",
                               f"default={f.default_value}" if f.default_value is not None else "",
                               _output(m, f.name)) if k))
        for f in c.fields], title="fields")
    if c.functions:
        ui.table(["function", "type", "input", "output", "params"],
                 [(fn.name, fn.type, ", ".join(fn.input_field_names), ", ".join(fn.output_field_names),
                   ", ".join([*(f"{k}={v}" for k, v in fn.params.items()), *(f"{k}=(not recorded)"
                                                                            for k in fn.withheld)]))
                  for fn in c.functions], title="functions")
    ui.table(["field", "index", "metric", "params"],
             [(i.field_name, i.index_type, i.metric_type or "", "unknown" if i.params is None else i.params)
              for i in c.indexes], title="indexes")
    ui.table(["partition", "rows"], sorted(m.partition_rows.items()), title="partitions")
    if c.aliases:
        ui.say("aliases    " + ", ".join(c.aliases))
    for note in m.notes:
        ui.say(f"note: {note}")


def show(store_url: StoreArg,
         backup_id: Annotated[str, typer.Argument(
             metavar="BACKUP_ID", help="Backup id, unique prefix, or 'latest'.")] = "latest",
         collection: CollectionOpt = None, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
         key_id: KeyId = None,
         allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None,
         json: Json = False, quiet: Quiet = False) -> None:
    """Show a backup's manifest: schema, indexes, partitions, counts."""
    setup(json, quiet)
    m = api.show(store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                       allow_unencrypted=allow_unencrypted, as_of=as_of), backup_id, collection)
    ui.emit(m.to_dict(), lambda: _render(m))
