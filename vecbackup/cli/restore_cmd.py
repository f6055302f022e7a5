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
from vecbackup.errors import AlreadyExists, TargetRejected, Unsupported, UsageError
from vecbackup.format.shard import Shard, check_run
from vecbackup.ops.restore import DEFAULT_PARALLEL, RestoreOptions, RestorePreview
from vecbackup.ops.restore_shard import RestoreCommit, assigned, pinned
from vecbackup.urls import is_qdrant_url
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
        "takes: Qdrant local mode one).")] = DEFAULT_PARALLEL,
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
                             index_params=parse_index_params(index_params or []),
                             index_types=parse_index_types(index_type or []), index_fallback=index_fallback,
                             field_params=parse_field_params(field_params or []),
                             collection_params=parse_collection_params(collection_params or []),
                             shards=shards, replication_factor=replication_factor, parallel=parallel,
                             server_import=bulk_import_via is not None, duplicate_keys=duplicate_keys,
                             drop_functions=drop_functions)
    creds = credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)
    worker = _check_run_options(shard, run, commit, abandon, dry_run)
    bulk = _bulk_import(bulk_import_via, bulk_import_mb, run, parallel)
    if run is not None and not dry_run:
        _run_step(store_url, target_url, backup_id, collection, worker, run, commit, abandon, options, creds,
                  passphrase_file, key_command, key_id, allow_unencrypted, metrics_textfile, metrics_pushgateway,
                  metrics_job)
        return
    if dry_run:  # reads the store and the target, writes nothing, records no metrics
        s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                  allow_unencrypted=allow_unencrypted)
        preview = api.plan(s, target_url, backup=backup_id, collection=collection, options=options,
                           credentials=creds)
        _report_preview(preview, preview.target_display)
        return
    with recording("restore", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        source_store = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                             allow_unencrypted=allow_unencrypted)
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


def _check_run_options(shard: str | None, run: str | None, commit: bool, abandon: bool, dry_run: bool,
                       ) -> Shard | None:
    """The worker's shard, once the options of a restore by several workers are known to fit together."""
    if shard is not None and run is None:
        raise UsageError("--shard needs --run ID (the same for every worker of the restore)")
    if (commit or abandon) and run is None:
        raise UsageError(f"--{'commit' if commit else 'abandon'} needs --run ID")
    if abandon and (shard is not None or commit):
        raise UsageError("--abandon gives a run up: it takes neither --shard nor --commit")
    if dry_run and (commit or abandon):
        raise UsageError(f"--dry-run writes nothing: it takes no --{'commit' if commit else 'abandon'}")
    if run is not None and shard is None and not commit and not abandon and not dry_run:
        raise UsageError("--run needs --shard I/N (a worker), --commit or --abandon")
    if run is not None:
        check_run(run)
    return None if shard is None else Shard.parse(shard)


def _bulk_import(via: str | None, mb: int | None, run: str | None, parallel: int) -> api.BulkImport | None:
    """The --bulk-import-via restore asked for, once its options are known to fit the others."""
    if via is None:
        if mb is not None:
            raise UsageError("--bulk-import-mb needs --bulk-import-via URL")
        return None
    if run is not None:
        raise UsageError("--bulk-import-via restores in one process: it takes no --run, --shard, --commit or "
                         "--abandon")
    if parallel != DEFAULT_PARALLEL:
        raise UsageError("--parallel sets inserts in flight; --bulk-import-via imports files instead: drop one")
    return api.BulkImport(via) if mb is None else api.BulkImport(via, mb)


def _run_step(store_url: str, target_url: str, backup_id: str, collection: str | None, shard: Shard | None,
              run: str, commit: bool, abandon: bool, options: RestoreOptions, creds: api.Credentials,
              passphrase_file: str | None, key_command: str | None, key_id: str | None, allow_unencrypted: bool,
              metrics_textfile: str | None, metrics_pushgateway: str | None, metrics_job: str) -> None:
    """One step of a restore by several workers: a worker's share, a commit, or giving the run up."""
    pinned(backup_id)
    s = store(store_url, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
              allow_unencrypted=allow_unencrypted)
    if abandon:
        dropped = api.abandon_restore(s, target_url, backup=backup_id, collection=collection, run=run,
                                      options=options, credentials=creds)
        ui.emit({"ok": True, "run": run, "dropped": dropped},
                lambda: ui.say(f"run {run}: dropped {', '.join(dropped)}" if dropped else
                               f"run {run}: nothing of it on the target"))
        return
    if shard is None:
        done = api.commit_restore(s, target_url, backup=backup_id, collection=collection, run=run, options=options,
                                  credentials=creds)
        ui.emit({"ok": True, **done.to_dict()}, lambda: ui.say(_commit_line(done)))
        return
    with recording("restore", metrics_textfile, metrics_pushgateway, metrics_job,
                   [collection] if collection else None) as rec:
        manifest = api.show(s, backup_id, collection)
        rec.failure_names = [manifest.collection.name]
        result = api.restore_shard(s, target_url, backup=manifest, shard=shard, run=run, commit=commit,
                                   options=options, credentials=creds, progress=ui.TerminalProgress())
        rec.record(manifest.collection.name, True, seconds=result.seconds, rows=result.rows,
                   nbytes=sum(o.size for o in assigned(manifest.objects, shard)))
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
    if preview.exit_code == Unsupported.exit_code:
        raise m.error() if m.problems else Unsupported(preview.problems[-1])
    if preview.exit_code == AlreadyExists.exit_code:
        raise AlreadyExists(preview.problems[-1])
    if preview.exit_code == TargetRejected.exit_code:
        raise TargetRejected(preview.problems[-1])
