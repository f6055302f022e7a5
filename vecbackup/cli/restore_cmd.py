from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.api import RestoreCommit, RestoreMode, RestoreOptions, RestorePreview, Shard
from vecbackup.cli.options import (
    AllowUnencrypted,
    ApiKey,
    AsOf,
    BackupOpt,
    CaCert,
    ClientCert,
    ClientKey,
    CollectionOpt,
    CollectionParams,
    DropFunctions,
    FieldParams,
    IndexFallback,
    IndexParams,
    IndexType,
    Insecure,
    Json,
    KeyCommand,
    KeyId,
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
    parse_index_types,
    recording,
    setup,
    store,
)
from vecbackup.errors import UsageError
from vecbackup.words import number, plural


def restore(
    store_url: StoreArg,
    target_url: Annotated[str, typer.Argument(metavar="TARGET_URL",
                                              help="milvus://host:19530, milvus-lite:///file.db, "
                                                   "qdrant://host:6333, qdrant-local:///folder or "
                                                   "qdrant-edge:///folder")],
    backup_id: BackupOpt = "latest",
    collection: CollectionOpt = None,
    as_name: Annotated[str | None, typer.Option("--as", metavar="NAME",
                                                help="Restore under this collection name.")] = None,
    drop_existing: Annotated[bool, typer.Option(
        "--drop-existing", help="Replace an existing collection of that name (only once the restore is complete).")]
    = False,
    new_ids: Annotated[bool, typer.Option(
        "--new-ids", help="Let the server assign new primary keys to auto-id collections.")] = False,
    index_params: IndexParams = None,
    index_type: IndexType = None,
    index_fallback: IndexFallback = False,
    drop_functions: DropFunctions = False,
    field_params: FieldParams = None,
    collection_params: CollectionParams = None,
    shards: Shards = None,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", min=1, metavar="N",
        help="Qdrant: replicas of each shard instead of the recorded number.")] = None,
    parallel: Annotated[int, typer.Option(
        "--parallel", min=1, metavar="K", help="Insert requests in flight at once (capped by what the target "
        "takes: Qdrant local mode one).")] = RestoreOptions.parallel,
    shard: Annotated[str | None, typer.Option(
        "--shard", metavar="I/N", help="Restore as worker I of N (0 <= I < N) into one staging collection, Milvus "
        "targets; needs --run and --backup ID. A re-run of a worker continues.")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", metavar="ID", help="The run id every worker of one restore shares (e.g. the Kubernetes Job's "
        "name).")] = None,
    commit: Annotated[bool, typer.Option(
        "--commit", help="With --run: commit the run once every worker is done (flush, index, load, check the row "
        "count, take the target's name). With --shard, after this worker's share; without, on its own (exit 8 "
        "while a worker is missing).")] = False,
    abandon: Annotated[bool, typer.Option(
        "--abandon", help="With --run: give the run up, dropping its staging collection (never the target).")]
    = False,
    bulk_import_via: Annotated[str | None, typer.Option(
        "--bulk-import-via", metavar="URL", help="Milvus servers: have the server import the rows from files "
        "staged at URL, which must be in the bucket the cluster stores its data in (s3://BUCKET/prefix; a folder "
        "for a server with local storage), writable with the store credentials; deleted once imported.")] = None,
    bulk_import_mb: Annotated[int | None, typer.Option(
        "--bulk-import-mb", min=1, metavar="MB", help="With --bulk-import-via: raw megabytes of one import task's "
        "files [default: 128] (memory holds about two).")] = None,
    bulk_import_format: Annotated[str | None, typer.Option(
        "--bulk-import-format", metavar="auto|files|binlog", help="With --bulk-import-via: what the server imports, "
        "numpy or row-JSON files (files), or its own insert binlogs (binlog: Milvus 2.3; every type 2.3 holds in "
        "columns, auto-id keys kept); auto: the binlogs where the server takes them, else files. [default: auto]")]
    = None,
    duplicate_keys: Annotated[str, typer.Option(
        "--duplicate-keys", metavar="keep|shown|partition:NAME[,NAME...]", help="Keys the backup holds in more than "
        "one partition (an upsert without a partition name leaves the old row in its partition): keep every copy in "
        "its partition (refused by a target that holds one point per key, Qdrant); or which copy such a target keeps, "
        "and Milvus Lite's collection-level reads show: the one the source's collection-level reads showed (shown), "
        "or the one of the first partition listed that holds the key.")] = "keep",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show how the backup maps onto the target (field by field, across engines too) and "
        "whether it can be restored; write nothing. Exit 0 if it can, 9 if a field cannot be mapped.")] = False,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
    api_key: ApiKey = None, passphrase_file: PassphraseFile = None, key_command: KeyCommand = None,
    key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False, as_of: AsOf = None,
    json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text, metrics_textfile: MetricsTextfile = None,
    metrics_pushgateway: MetricsPushgateway = None, metrics_job: MetricsJob = "vecbackup",
) -> None:
    """Restore a backup: recreate the schema, data, partitions, indexes and aliases, then load it."""
    setup(json, quiet, log_format)
    options = RestoreOptions(target=as_name, drop_existing=drop_existing, new_ids=new_ids,
                             index_params=parse_index_params(index_params or []),
                             index_types=parse_index_types(index_type or []), index_fallback=index_fallback,
                             field_params=parse_field_params(field_params or []),
                             collection_params=parse_collection_params(collection_params or []),
                             shards=shards, replication_factor=replication_factor, parallel=parallel,
                             server_import=bulk_import_via is not None,
                             import_format=bulk_import_format or "auto", duplicate_keys=duplicate_keys,
                             drop_functions=drop_functions)
    creds = credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)
    for flag, given in (("--bulk-import-mb", bulk_import_mb), ("--bulk-import-format", bulk_import_format)):
        if given is not None and bulk_import_via is None:
            raise UsageError(f"{flag} needs --bulk-import-via URL")
    bulk = None
    if bulk_import_via is not None:
        sized = {} if bulk_import_mb is None else {"file_mb": bulk_import_mb}
        bulk = api.BulkImport(bulk_import_via, **sized, format=bulk_import_format or "auto")
    # which restore the flags ask for, and whether they fit together, the backup and the target: the API decides
    mode = RestoreMode(shard=None if shard is None else Shard.parse(shard), run=run, commit=commit, abandon=abandon,
                       dry_run=dry_run, bulk_import=bulk)
    mode.check(backup_id, target_url, options)
    if mode.step in ("shard", "commit", "abandon"):
        _run_step(store_url, target_url, backup_id, collection, mode, options, creds, passphrase_file, key_command,
                  key_id, allow_unencrypted, as_of, metrics_textfile, metrics_pushgateway, metrics_job)
        return
    if mode.step == "plan":  # reads the store and the target, writes nothing, records no metrics
        s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                  allow_unencrypted=allow_unencrypted, as_of=as_of)
        preview = api.plan(s, target_url, backup=backup_id, collection=collection, options=options,
                           credentials=creds)
        _report_preview(preview, preview.target_display)
        return
    with recording("restore", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        source_store = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                             allow_unencrypted=allow_unencrypted, as_of=as_of)
        manifest = api.show(source_store, backup_id, collection)
        rec.failure_names = [manifest.collection.name]  # a failure from here on is the backup's collection's
        result = api.restore(source_store, target_url, backup=manifest, options=options, credentials=creds,
                             progress=ui.TerminalProgress(), bulk_import=bulk)
        rec.record(manifest.collection.name, True, seconds=result.seconds, rows=result.rows, nbytes=manifest.size)
    for note in result.notes:
        ui.warn(note)
    ui.emit({"ok": True, **result.to_dict()},
            lambda: ui.say(f"restored backup {result.backup_id} of {result.source_collection} into "
                           f"{result.collection}: {plural(result.rows, 'row')}"
                           + (f" in {plural(result.import_tasks, 'import task')}" if result.import_tasks is not None
                              else "")
                           # the whole restore: created, filled, indexed and loaded (the progress lines on stderr
                           # time each step)
                           + f", loaded after {result.seconds:.1f}s"))


def _run_step(store_url: str, target_url: str, backup_id: str, collection: str | None, mode: RestoreMode,
              options: RestoreOptions, creds: api.Credentials, passphrase_file: str | None, key_command: str | None,
              key_id: str | None, allow_unencrypted: bool, as_of: str | None, metrics_textfile: str | None,
              metrics_pushgateway: str | None, metrics_job: str) -> None:
    """One step of a restore by several workers: a worker's share, a commit, or giving the run up."""
    run, shard = mode.run, mode.shard
    assert run is not None
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted, as_of=as_of)
    if mode.step == "abandon":
        dropped = api.abandon_restore(s, target_url, backup=backup_id, collection=collection, run=run,
                                      options=options, credentials=creds)
        ui.emit({"ok": True, "run": run, "dropped": dropped},
                lambda: ui.say(f"run {run}: dropped {', '.join(dropped)}" if dropped else
                               f"run {run}: nothing of it on the target"))
        return
    if mode.step == "commit":
        done = api.commit_restore(s, target_url, backup=backup_id, collection=collection, run=run, options=options,
                                  credentials=creds)
        ui.emit({"ok": True, **done.to_dict()}, lambda: ui.say(_commit_line(done)))
        return
    assert shard is not None
    with recording("restore", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        manifest = api.show(s, backup_id, collection)
        rec.failure_names = [manifest.collection.name]
        result = api.restore_shard(s, target_url, backup=manifest, shard=shard, run=run, commit=mode.commit,
                                   options=options, credentials=creds, progress=ui.TerminalProgress())
        rec.record(manifest.collection.name, True, seconds=result.seconds, rows=result.rows,
                   nbytes=result.share_bytes)
    for note in result.notes:
        ui.warn(note)

    def human() -> None:
        ui.say(f"restored shard {shard.label} of backup {result.backup_id} of {result.source_collection} into "
               f"{result.staging} (run {run}): {plural(result.rows, 'row')} in {result.seconds:.1f}s")
        if result.commit is not None:
            ui.say(_commit_line(result.commit))
        else:
            ui.say(f"the restore completes once every worker is done and `vecbackup restore ... --run {run} "
                   "--commit` has run (or give each worker --commit)")

    ui.emit({"ok": True, **result.to_dict()}, human)


def _commit_line(c: RestoreCommit) -> str:
    if c.state == "committed":
        return (f"run {c.run} ({plural(c.shards or 0, 'worker')}) committed into {c.collection}: "
                f"{plural(c.rows, 'row')}, loaded after {c.seconds:.1f}s")
    if c.state == "waiting":
        return (f"run {c.run}: {number(len(c.missing), 'shard')} {', '.join(map(str, c.missing))} of "
                f"{c.shards} not done yet; the last worker to finish commits")
    return f"run {c.run}: committed, or being committed, by another worker"


def _report_preview(preview: RestorePreview, display: str) -> None:
    """Print the --dry-run plan, then fail with the exit code the real restore would have."""
    m = preview.mapping

    def human() -> None:
        ui.say(f"dry run: backup {preview.backup_id} of {preview.source_collection} ({m.source_engine}) into "
               f"{preview.collection} at {display} ({m.target_engine})"
               + (" (exists)" if preview.target_exists else ""))
        for d in m.decisions:
            ui.say(f"  {d.source} -> {d.target or '(dropped)'}: {d.text}")
        for line in preview.index_lines():
            ui.say(f"  {line}")
        for note in preview.notes:
            if not any(note == d.text for d in m.decisions):
                ui.say(f"  note: {note}")
        for p in preview.problems:
            ui.say(f"  problem: {p}")
        ui.say("restorable: nothing was written" if preview.exit_code == 0 else "not restorable; nothing was written")

    ui.emit(preview.to_dict(), human)
    preview.raise_for_problems()
