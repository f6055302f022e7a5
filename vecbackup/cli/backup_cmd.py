from __future__ import annotations

from typing import Annotated

import typer

from vecbackup import ui
from vecbackup.cli.options import (
    ApiKey,
    CaCert,
    Json,
    LockWait,
    LogFormat,
    LogFormatName,
    MetricsJob,
    MetricsPushgateway,
    MetricsTextfile,
    Password,
    Quiet,
    Token,
    User,
    connect,
    recording,
    setup,
    store,
)
from vecbackup.errors import PartialFailure, UsageError, VecbackupError
from vecbackup.metrics import Recorder
from vecbackup.ops.backup import BackupResult, backup_collection
from vecbackup.ops.lock import locked
from vecbackup.sources.base import Source
from vecbackup.sources.milvus import MAX_BATCH
from vecbackup.stores.base import BlobStore


def _backup_each(engine: Source, target: BlobStore, names: list[str], batch_size: int,
                 compression_level: int) -> tuple[list[BackupResult], list[dict[str, object]]]:
    """Back up each collection; with several, one failing does not stop the others."""
    results, failures = [], []
    for name in names:
        try:
            r = backup_collection(engine, target, name, batch_size=batch_size,
                                  compression_level=compression_level, progress=ui.TerminalProgress())
        except VecbackupError as e:
            if len(names) == 1:
                raise
            ui.error(f"{name}: {e}", e.exit_code)
            failures.append({"collection": name, "error": str(e), "exit_code": e.exit_code})
            continue
        results.append(r)
        for note in r.notes:
            ui.warn(f"{name}: {note}")
        ui.say(f"backup {r.backup_id} of {name}: {r.rows} rows, {r.objects} objects, "
               f"{ui.human_bytes(r.bytes_stored)} stored ({ui.human_bytes(r.bytes_uploaded)} new) "
               f"in {r.seconds:.1f}s")
    return results, failures


def backup(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL", help="milvus://host:19530, milvus-lite:///file.db, "
                                          "qdrant://host:6333 or qdrant-local:///folder")],
    store_url: Annotated[str, typer.Argument(metavar="STORE_URL",
                                             help="file:///path, s3://bucket/prefix or azure://container/prefix")],
    collection: Annotated[list[str] | None, typer.Option("--collection", "-c",
                                                         help="Collection to back up (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Back up every collection.")] = False,
    batch_size: Annotated[int, typer.Option(help=f"Rows per data chunk (1-{MAX_BATCH}).")] = 5000,
    compression_level: Annotated[int, typer.Option(help="zstd level (1-22).")] = 3,
    token: Token = None, user: User = None, password: Password = None, ca_cert: CaCert = None,
    api_key: ApiKey = None, lock_wait: LockWait = 0.0, json: Json = False, quiet: Quiet = False,
    log_format: LogFormat = LogFormatName.text, metrics_textfile: MetricsTextfile = None,
    metrics_pushgateway: MetricsPushgateway = None, metrics_job: MetricsJob = "vecbackup",
) -> None:
    """Back up collections: data chunks first, the manifest last (a backup without one does not exist)."""
    setup(json, quiet, log_format)
    with recording("backup", metrics_textfile, metrics_pushgateway, metrics_job, collection) as rec:
        _backup(source, store_url, collection, all_, batch_size, compression_level, token, user, password, ca_cert,
                api_key, lock_wait, rec)


def _backup(source: str, store_url: str, collection: list[str] | None, all_: bool, batch_size: int,
            compression_level: int, token: str | None, user: str | None, password: str | None, ca_cert: str | None,
            api_key: str | None, lock_wait: float, rec: Recorder) -> None:
    if not 1 <= batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size {batch_size} is out of range", hint=f"use 1 to {MAX_BATCH}")
    if not 1 <= compression_level <= 22:
        raise UsageError(f"--compression-level {compression_level} is out of range", hint="use 1 to 22")
    if bool(collection) == all_:
        raise UsageError("say which collections to back up", hint="give --collection NAME (repeatable) or --all")
    engine = connect(source, token, user, password, ca_cert, api_key)
    try:
        names = engine.list_collections() if all_ else list(dict.fromkeys(collection or []))
        target = store(store_url, create=True)
        with locked(target, "backup", exclusive=False, wait=lock_wait):
            results, failures = _backup_each(engine, target, names, batch_size, compression_level)
    finally:
        engine.close()
    for r in results:
        rec.record(r.collection, True, seconds=r.seconds, rows=r.rows, nbytes=r.bytes_stored)
    for f in failures:
        rec.record(str(f["collection"]), False)
    ui.emit({"ok": not failures, "store": target.display, "backups": [r.to_dict() for r in results],
             "failures": failures})
    if failures:
        raise PartialFailure(f"{len(failures)} of {len(names)} collections failed: "
                             + ", ".join(f["collection"] for f in failures))  # type: ignore[misc]
