from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import api, ui
from vecbackup.api import (
    DEFAULT_COMPRESSION_LEVEL,
    BackupEvents,
    BackupOptions,
    BackupResult,
    BlobStore,
    CollectionFailure,
    Credentials,
    Shard,
)
from vecbackup.cli.options import (
    AllowUnencrypted,
    ApiKey,
    CaCert,
    ClientCert,
    ClientKey,
    Insecure,
    Json,
    KeyCommand,
    KeyId,
    LockWait,
    LogFormat,
    LogFormatName,
    MetricsJob,
    MetricsPushgateway,
    MetricsTextfile,
    PassphraseFile,
    Password,
    Quiet,
    Token,
    User,
    credentials,
    parse_percent,
    recording,
    setup,
    store,
)
from vecbackup.metrics import Recorder
from vecbackup.words import plural


class _Terminal(BackupEvents):
    """Each collection's outcome on the terminal as it finishes; with several, a failure is reported as it happens
    (with one, it is the command's error)."""

    several = False

    def started(self, collections: list[str]) -> None:
        self.several = len(collections) > 1

    def done(self, r: BackupResult) -> None:
        for note in r.notes:
            ui.warn(f"{r.collection}: {note}")
        what = f"backup {r.backup_id}" if r.shard is None else f"shard {r.shard.label} of run {r.run}"
        reused = f"; {plural(r.rows_reused, 'row')} reused from backup {r.base}" if r.base is not None else ""
        # uploaded counts the row digests written beside each new object: a first backup uploads more than its data
        with_digests = "with its row digests" if r.objects_new == 1 else "with their row digests"
        ui.say(f"{what} of {r.collection}: {plural(r.rows, 'row')}, {plural(r.objects, 'object')}, "
               f"{ui.human_bytes(r.bytes_stored)} of data ({ui.human_bytes(r.bytes_uploaded)} uploaded: "
               f"{plural(r.objects_new, 'new object')} {with_digests}{reused}), committed after {r.seconds:.1f}s")
        c = r.commit
        if c is not None and c.committed:
            ui.say(f"run {c.run} of {c.collection} ({plural(c.shards, 'shard')}) committed as backup {c.backup_id}: "
                   f"{plural(c.rows, 'row')}")
        elif c is not None:
            ui.say(f"run {c.run}: {len(c.present)} of {plural(c.shards, 'shard')} present; the last one to finish "
                   "commits")
        elif r.shard is not None:
            ui.say(f"the backup exists once every shard is done and `vecbackup commit -c {r.collection} --run {r.run}` "
                   "has run (or give each shard --commit)")

    def failed(self, f: CollectionFailure) -> None:
        if self.several:
            ui.error(f"{f.collection}: {f.error}", f.error.exit_code)


def backup(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL", help="milvus://host:19530, milvus-lite:///file.db, "
                                          "qdrant://host:6333, qdrant-local:///folder or "
                                          "qdrant-edge:///folder")],
    store_url: Annotated[str, typer.Argument(metavar="STORE_URL",
                                             help="file:///path, s3://bucket/prefix or azure://container/prefix")],
    collection: Annotated[list[str] | None, typer.Option("--collection", "-c", metavar="NAME",
                                                         help="Collection to back up (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Back up every collection.")] = False,
    batch_size: Annotated[int, typer.Option(
        metavar="ROWS", help="Rows per data chunk (1 to the engine's limit, 16384 for Milvus and Qdrant); memory is "
        "bounded by it.")] = 5000,
    compression_level: Annotated[int, typer.Option(metavar="LEVEL", help="zstd level (1-22).")] = (
        DEFAULT_COMPRESSION_LEVEL),
    parallel: Annotated[int, typer.Option(
        "--parallel", metavar="K", help="Read K streams at once (shards of the rows by primary key) into one "
        "backup; capped by the engine (Qdrant local mode: 1).")] = 1,
    shard: Annotated[str | None, typer.Option(
        "--shard", metavar="I/N", help="Back up only shard I of N (0 <= I < N; rows by primary key) as one worker "
        "of a sharded backup; needs --run. `vecbackup commit` joins the shards.")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", metavar="ID", help="The run id every worker of one sharded backup shares (e.g. the Kubernetes "
        "Job's name).")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Store every row anew instead of reusing the rows the newest earlier backup of the "
        "collection already stored (by default only new and changed rows are uploaded); every object already in "
        "the store that it would write is read back and rewritten if damaged (a repair).")] = False,
    check_reused: Annotated[str, typer.Option(
        "--check-reused", metavar="N%", help="Read back and check this share of the objects the backup reuses "
        "(at least one; 0% for none) before committing: a damaged one fails the backup instead of being built "
        "on.")] = "2%",
    segments_from: Annotated[str | None, typer.Option(
        "--segments-from", metavar="STORAGE_URL", help="Milvus servers: read the collection's sealed segments from "
        "the server's own storage instead of through its query path (much faster; the next backup reads only "
        "segments that changed): file:///PATH (a standalone server's local storage) or s3://BUCKET/ROOT_PATH (the "
        "cluster's MinIO/S3 bucket and root path). Rows written after the flush it starts with are not in the "
        "backup.")] = None,
    commit: Annotated[bool, typer.Option(
        "--commit", help="With --shard: afterwards commit the run if every shard is there (the last worker to "
        "finish commits).")] = False,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    client_cert: ClientCert = None, client_key: ClientKey = None, insecure: Insecure = False,
    api_key: ApiKey = None, lock_wait: LockWait = 0.0,
    passphrase_file: PassphraseFile = None, key_command: KeyCommand = None, key_id: KeyId = None,
    allow_unencrypted: AllowUnencrypted = False,
    json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text, metrics_textfile: MetricsTextfile = None,
    metrics_pushgateway: MetricsPushgateway = None, metrics_job: MetricsJob = "vecbackup",
) -> None:
    """Back up collections: data chunks first, the manifest last (a backup without one does not exist)."""
    setup(json, quiet, log_format)
    with recording("backup", metrics_textfile, metrics_pushgateway, metrics_job, collection) as rec:
        options = BackupOptions(batch_size, compression_level, lock_wait,
                                shard=None if shard is None else Shard.parse(shard), run=run, commit=commit,
                                parallel=parallel, full=full, allow_unencrypted=allow_unencrypted,
                                check_reused=parse_percent("--check-reused", check_reused),
                                segments_from=segments_from)
        target = store(store_url, create=True, passphrase_file=passphrase_file, key_command=key_command, key_id=key_id,
                       allow_unencrypted=allow_unencrypted)
        creds = credentials(token, user, password, ca_cert, api_key, client_cert, client_key, insecure)
        _backup(source, target, collection, all_, options, creds, rec)


def _backup(source: str, target: BlobStore, collection: list[str] | None, all_: bool, options: BackupOptions,
            credentials: Credentials, rec: Recorder) -> None:
    run = api.backup(source, target, collection, all=all_, options=options, credentials=credentials,
                     progress=ui.TerminalProgress, events=_Terminal())
    if len(run.collections) == 1:
        run.raise_for_failures()  # the collection's own error, recorded as its failure on the way out
    rec.backup_run(run)
    ui.emit(run.to_dict())
    run.raise_for_failures()
