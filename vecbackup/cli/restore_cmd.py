from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.cli.options import (
    AllowUnencrypted,
    ApiKey,
    BackupOpt,
    CaCert,
    ClientCert,
    ClientKey,
    CollectionOpt,
    CollectionParams,
    FieldParams,
    IndexFallback,
    IndexParams,
    Insecure,
    Json,
    KeyCommand,
    LogFormat,
    LogFormatName,
    MetricsJob,
    MetricsPushgateway,
    MetricsTextfile,
    PassphraseFile,
    Password,
    Quiet,
    Shards,
    StoreArg,
    Token,
    User,
    credentials,
    parse_collection_params,
    parse_field_params,
    parse_index_params,
    recording,
    setup,
    store,
)
from vecbackup.errors import AlreadyExists, TargetRejected, Unsupported, UsageError
from vecbackup.ops.restore import DEFAULT_PARALLEL, RestoreOptions, RestorePreview
from vecbackup.urls import is_qdrant_url


def restore(
    store_url: StoreArg,
    target_url: Annotated[str, typer.Argument(metavar="TARGET_URL",
                                              help="milvus://host:19530, milvus-lite:///file.db, "
                                                   "qdrant://host:6333 or qdrant-local:///folder")],
    backup_id: BackupOpt = "latest",
    collection: CollectionOpt = None,
    as_name: Annotated[str | None, typer.Option("--as", help="Restore under this collection name.")] = None,
    drop_existing: Annotated[bool, typer.Option(
        "--drop-existing", help="Replace an existing collection of that name (only once the restore is complete).")]
    = False,
    new_ids: Annotated[bool, typer.Option(
        "--new-ids", help="Let the server assign new primary keys to auto-id collections.")] = False,
    index_params: IndexParams = None,
    index_fallback: IndexFallback = False,
    field_params: FieldParams = None,
    collection_params: CollectionParams = None,
    shards: Shards = None,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", min=1, help="Qdrant: replicas of each shard instead of the recorded number.")] = None,
    parallel: Annotated[int, typer.Option(
        "--parallel", min=1, metavar="K", help="Insert requests in flight at once (capped by what the target "
        "takes: Qdrant local mode one).")] = DEFAULT_PARALLEL,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show how the backup maps onto the target (field by field, across engines too) and "
        "whether it can be restored; write nothing. Exit 0 if it can, 9 if a field cannot be mapped.")] = False,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
    api_key: ApiKey = None, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
    allow_unencrypted: AllowUnencrypted = False,
    json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text, metrics_textfile: MetricsTextfile = None,
    metrics_pushgateway: MetricsPushgateway = None, metrics_job: MetricsJob = "vecbackup",
) -> None:
    """Restore a backup: recreate the schema, data, partitions, indexes and aliases, then load it."""
    setup(json, quiet, log_format)
    if replication_factor is not None and not is_qdrant_url(target_url):
        raise UsageError("--replication-factor applies to Qdrant targets only")
    options = RestoreOptions(target=as_name, drop_existing=drop_existing, new_ids=new_ids,
                             index_params=parse_index_params(index_params or []), index_fallback=index_fallback,
                             field_params=parse_field_params(field_params or []),
                             collection_params=parse_collection_params(collection_params or []),
                             shards=shards, replication_factor=replication_factor, parallel=parallel)
    creds = credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)
    if dry_run:  # reads the store and the target, writes nothing, records no metrics
        s = store(store_url, passphrase_file=passphrase_file, key_command=key_command,
                  allow_unencrypted=allow_unencrypted)
        preview = api.plan(s, target_url, backup=backup_id, collection=collection, options=options,
                           credentials=creds)
        _report_preview(preview, preview.target_display)
        return
    with recording("restore", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        source_store = store(store_url, passphrase_file=passphrase_file, key_command=key_command,
                             allow_unencrypted=allow_unencrypted)
        manifest = api.show(source_store, backup_id, collection)
        rec.failure_names = [manifest.collection.name]  # a failure from here on is the backup's collection's
        result = api.restore(source_store, target_url, backup=manifest, options=options, credentials=creds,
                             progress=ui.TerminalProgress())
        rec.record(manifest.collection.name, True, seconds=result.seconds, rows=result.rows, nbytes=manifest.size)
    for note in result.notes:
        ui.warn(note)
    ui.emit({"ok": True, **result.to_dict()},
            lambda: ui.say(f"restored backup {result.backup_id} of {result.source_collection} into "
                           f"{result.collection}: {result.rows} rows in {result.seconds:.1f}s"))


def _report_preview(preview: RestorePreview, display: str) -> None:
    """Print the --dry-run plan, then fail with the exit code the real restore would have."""
    m = preview.mapping

    def human() -> None:
        ui.say(f"dry run: backup {preview.backup_id} of {preview.source_collection} ({m.source_engine}) into "
               f"{preview.collection} at {display} ({m.target_engine})"
               + (" (exists)" if preview.target_exists else ""))
        for d in m.decisions:
            ui.say(f"  {d.source} -> {d.target or '(dropped)'}: {d.text}")
        for note in preview.notes:
            if not any(note == d.text for d in m.decisions):
                ui.say(f"  note: {note}")
        for p in preview.problems:
            ui.say(f"  problem: {p}")
        ui.say("restorable: nothing was written" if preview.exit_code == 0 else "not restorable; nothing was written")

    ui.emit(preview.to_dict(), human)
    if preview.exit_code == Unsupported.exit_code:
        raise m.error() if m.problems else Unsupported(preview.problems[-1])
    if preview.exit_code == AlreadyExists.exit_code:
        raise AlreadyExists(preview.problems[-1])
    if preview.exit_code == TargetRejected.exit_code:
        raise TargetRejected(preview.problems[-1])
