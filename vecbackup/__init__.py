"""vecbackup: back up and restore vector-database collections (Milvus, Qdrant) to a folder, S3 or Azure Blob Storage.

The Python API (docs/API.md); the ``vecbackup`` command line and ``vecbackup schedule`` are thin clients of it::

    import vecbackup

    run = vecbackup.backup("milvus://db:19530", "s3://backups/milvus", collections=["articles"])
    run.raise_for_failures()
    vecbackup.restore("s3://backups/milvus", "milvus://dr:19530", collection="articles",
                      options=vecbackup.RestoreOptions(target="articles_dr"))
    report = vecbackup.drill("s3://backups/milvus", "milvus://dr:19530", collection="articles",
                             source="milvus://db:19530")
    vecbackup.prune("s3://backups/milvus", vecbackup.Policy(keep_daily=7, keep_weekly=4))

An encrypted store (``vecbackup.init(url, encrypt=True)``) opens with ``VECBACKUP_PASSPHRASE`` (or ``_FILE``, or
``VECBACKUP_KEY_COMMAND``) from the environment, or ``open_store(url, passphrase=vecbackup.Passphrase(file=...))``.

Sources, targets and stores are URLs or objects from :func:`connect` / :func:`open_store`. Every error is a
:class:`vecbackup.errors.VecbackupError` carrying the CLI's exit code (``e.exit_code``, docs/EXIT_CODES.md).
"""

from vecbackup import errors
from vecbackup.api import (
    BackupEvents,
    BackupOptions,
    BackupRun,
    BackupStats,
    BulkImport,
    CollectionFailure,
    CollectionPruned,
    CommitResult,
    Credentials,
    DrillOptions,
    DrillReport,
    InitResult,
    KeyInfo,
    LeftoverResult,
    Listing,
    Passphrase,
    Policy,
    RestoreCommit,
    RestoreMode,
    RestoreOptions,
    RestorePreview,
    RestoreResult,
    SearchParams,
    Shard,
    ShardRestoreResult,
    StoreStats,
    Subset,
    abandon,
    abandon_restore,
    add_key,
    backup,
    collections,
    commit,
    commit_restore,
    connect,
    delete,
    drill,
    gc,
    gc_engine,
    init,
    keys,
    list_backups,
    locks,
    open_store,
    plan,
    prune,
    prune_backed_up,
    raise_for_worst,
    remove_key,
    repair,
    report_hash,
    restore,
    restore_shard,
    show,
    stats,
    unlock,
    verify,
    write_report,
)
from vecbackup.version import __version__

__all__ = [
    "BackupEvents", "BackupOptions", "BackupRun", "BackupStats", "BulkImport", "CollectionFailure", "CollectionPruned",
    "CommitResult", "Credentials", "DrillOptions", "DrillReport", "InitResult", "KeyInfo", "LeftoverResult", "Listing",
    "Passphrase", "Policy", "RestoreCommit", "RestoreMode", "RestoreOptions", "RestorePreview", "RestoreResult",
    "SearchParams", "Shard", "ShardRestoreResult", "StoreStats", "Subset", "__version__", "abandon", "abandon_restore",
    "add_key", "backup", "collections", "commit", "commit_restore", "connect", "delete", "drill", "errors", "gc",
    "gc_engine", "init", "keys", "list_backups", "locks", "open_store", "plan", "prune", "prune_backed_up",
    "raise_for_worst", "remove_key", "repair", "report_hash", "restore", "restore_shard", "show", "stats", "unlock",
    "verify", "write_report",
]
