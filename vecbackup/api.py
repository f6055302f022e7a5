"""The Python API: what the command line does, as functions (docs/API.md).

Each function takes URLs, or engines and stores you opened yourself (``connect``, ``open_store``), returns a
result object and raises the :mod:`vecbackup.errors` hierarchy (each error has the CLI's ``exit_code``). What it
opens from a URL it closes again. The ``vecbackup`` command and ``vecbackup schedule`` are thin clients of it:
they parse options, call one of these, and render the result.

    import vecbackup

    run = vecbackup.backup("milvus://db:19530", "s3://backups/milvus", collections=["articles"])
    run.raise_for_failures()
    vecbackup.restore("s3://backups/milvus", "milvus://dr:19530", collection="articles",
                      options=vecbackup.RestoreOptions(target="articles_dr"))
    vecbackup.prune("s3://backups/milvus", vecbackup.Policy(keep_daily=7, keep_weekly=4))
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from vecbackup.engines import Engine, engine_class, open_engine
from vecbackup.engines.base import SearchParams
from vecbackup.engines.milvus.bulk import DEFAULT_FILE_BYTES
from vecbackup.engines.milvus.segment_reader import segment_reader
from vecbackup.errors import (
    AlreadyExists,
    NotFound,
    PartialFailure,
    UsageError,
    VecbackupError,
    WrongKey,
    check_number,
    check_whole,
)
from vecbackup.format.codec import CHUNK_VERSION
from vecbackup.format.codec import DEFAULT_LEVEL as DEFAULT_COMPRESSION_LEVEL
from vecbackup.format.crypto import ObjectLock
from vecbackup.format.manifest import FORMAT_VERSION, Manifest
from vecbackup.format.shard import Shard, check_run
from vecbackup.ops import catalog
from vecbackup.ops.backup import CHECK_REUSED, BackupResult, backup_collection
from vecbackup.ops.bulk_restore import Staging, bulk_restore, remove_staged
from vecbackup.ops.commit import CommitResult, abandon_run, commit_run
from vecbackup.ops.delete import DeleteResult, delete_backup
from vecbackup.ops.drill import DrillOptions, DrillReport, run_drill
from vecbackup.ops.drill import report_hash as _report_hash
from vecbackup.ops.drill import write_json as _write_json
from vecbackup.ops.drill.junit import write_junit as _write_junit
from vecbackup.ops.gc import GcResult, collect_garbage
from vecbackup.ops.keys import InitResult, KeyInfo, init_store, list_keys, recover_store
from vecbackup.ops.keys import add_key as _add_key
from vecbackup.ops.keys import remove_key as _remove_key
from vecbackup.ops.leftovers import LeftoverResult, of_restores_into, reap
from vecbackup.ops.lock import LockInfo, list_locks, locked, remove_locks
from vecbackup.ops.progress import NullProgress, Progress
from vecbackup.ops.prune import PruneResult
from vecbackup.ops.prune import prune as prune_store
from vecbackup.ops.restore import (
    DEFAULT_PARALLEL,
    IMPORT_FORMATS,
    Plan,
    RestoreOptions,
    RestorePreview,
    RestoreResult,
    plan_restore,
    preview_restore,
    restore_mapping,
)
from vecbackup.ops.restore import restore_backup as run_restore
from vecbackup.ops.restore_shard import RestoreCommit, ShardRestoreResult, pinned, run_names
from vecbackup.ops.restore_shard import abandon_restore as run_abandon_restore
from vecbackup.ops.restore_shard import commit_restore as run_commit_restore
from vecbackup.ops.restore_shard import restore_shard as run_restore_shard
from vecbackup.ops.segment_backup import backup_segments
from vecbackup.ops.stats import BackupStats, StoreStats, collect_stats
from vecbackup.ops.undelete import UndeleteResult
from vecbackup.ops.undelete import undelete as run_undelete
from vecbackup.ops.verify import RepairResult, Subset, VerifyResult, raise_for_worst, remove_damaged, verify_backup
from vecbackup.passphrase import Passphrase
from vecbackup.retention import Policy, require_rules
from vecbackup.stores import open_raw_store
from vecbackup.stores import open_store as _open_store
from vecbackup.stores.base import BlobStore, cannot_lock
from vecbackup.stores.encrypted import is_encrypted
from vecbackup.stores.objectlock import check_lock_kept
from vecbackup.stores.versions import parse_as_of, present
from vecbackup.urls import is_engine_url, is_qdrant_url, parse_store_url
from vecbackup.words import either, param

SourceLike = str | Engine  # a URL, or an engine from connect()
StoreLike = str | BlobStore  # a URL, or a store from open_store()
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """Secrets and TLS settings for an engine; never printed (``repr`` leaves the secrets out)."""

    token: str | None = field(default=None, repr=False)  # Milvus token ("user:password" or an API key)
    user: str | None = None  # Milvus user name
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None  # PEM file to verify the server's TLS certificate
    api_key: str | None = field(default=None, repr=False)  # Qdrant API key
    client_cert: str | None = None  # PEM file: our certificate, for mutual TLS
    client_key: str | None = None  # PEM file: its private key (a path, not the key)
    insecure: bool = False  # do not verify the server's certificate (Qdrant REST only; gRPC cannot)


def connect(url: str, credentials: Credentials | None = None, *, existing: bool = False) -> Engine:
    """Open the engine a URL names: ``milvus://``, ``milvus+https://``, ``milvus-lite:///file.db``, ``qdrant://``,
    ``qdrant+grpc://``, ``qdrant-local:///folder``. Close it with ``.close()``. With ``existing`` (a source to read),
    a Milvus Lite file or Qdrant local-mode folder that is not there is NotFound instead of created empty."""
    if existing:
        _check_exists(url)
    c = credentials or Credentials()
    return open_engine(url, token=c.token, user=c.user, password=c.password, ca_cert=c.ca_cert, api_key=c.api_key,
                       client_cert=c.client_cert, client_key=c.client_key, insecure=c.insecure)


def open_store(url: str, *, create: bool = False, passphrase: Passphrase | None = None,
               allow_unencrypted: bool = False, ask: Callable[[], str] | None = None,
               as_of: datetime | None = None) -> BlobStore:
    """Open the store a URL names: ``file:///path``, ``s3://bucket/prefix?...``, ``azure://container/prefix``
    (docs/STORES.md); ``create`` makes a missing local folder. An encrypted store is unlocked with ``passphrase``
    (default: from the environment, ``VECBACKUP_PASSPHRASE`` / ``_FILE`` / ``VECBACKUP_KEY_COMMAND``, and
    ``VECBACKUP_KEY_ID``: ``Passphrase.key_id`` names the only key file tried); WrongKey (exit 13) without one that
    opens it. Where none was given, ``ask()`` (a prompt at a terminal) is called once for it. An unencrypted store
    opened with a passphrase is refused (UsageError) unless ``allow_unencrypted``. With ``as_of`` (an aware
    datetime: :func:`parse_as_of` reads ``--as-of``) the store is read as it was then, from its objects' versions
    (S3 with versioning; Unsupported, exit 9, elsewhere), and nothing can be written to it: list, show, verify and
    restore a backup deleted since. A store given to the other functions as a URL is opened this way."""
    pw = Passphrase.from_env() if passphrase is None else passphrase
    try:
        return _open_store(url, create=create, passphrase=pw, allow_unencrypted=allow_unencrypted, as_of=as_of)
    except WrongKey:
        if pw.given or ask is None:
            raise
    return _open_store(url, create=create, passphrase=Passphrase(ask(), key_id=pw.key_id),
                       allow_unencrypted=allow_unencrypted, as_of=as_of)


@contextmanager
def _engine(source: SourceLike, credentials: Credentials | None, *, existing: bool = False) -> Iterator[Engine]:
    """The engine a URL names, closed afterwards; ``existing``: a Milvus Lite file or a Qdrant local-mode folder
    must be there already (a source is read, never created: a mistyped path would leave a new empty database)."""
    if not isinstance(source, str):
        yield source
        return
    engine = connect(source, credentials, existing=existing)
    try:
        yield engine
    finally:
        engine.close()


def _check_exists(url: str) -> None:
    """NotFound (exit 4) for a Milvus Lite file or Qdrant local-mode folder that is not there; nothing is created."""
    from vecbackup.urls import LITE_SCHEME, QDRANT_LOCAL_SCHEME, parse_milvus_url, parse_qdrant_url

    scheme = url.partition(":")[0].lower()
    if scheme == LITE_SCHEME:
        path = parse_milvus_url(url).uri
        if not os.path.exists(path):  # Milvus Lite 3 keeps a folder under that name, 2 a file
            raise NotFound(f"no Milvus Lite database at {path}", hint="check the path: a restore into Milvus Lite "
                           "creates the file, a backup reads one that exists")
    elif scheme == QDRANT_LOCAL_SCHEME:
        folder = parse_qdrant_url(url).path
        if folder is not None and not os.path.isdir(folder):
            raise NotFound(f"no Qdrant local-mode folder at {folder}", hint="check the path: a restore into Qdrant "
                           "local mode creates the folder, a backup reads one that exists")


def _store(store: StoreLike, *, create: bool = False, allow_unencrypted: bool = False) -> BlobStore:
    return open_store(store, create=create, allow_unencrypted=allow_unencrypted) if isinstance(store, str) else store


# -- backup ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupOptions:
    batch_size: int = 5000  # rows per data chunk (memory is bounded by it)
    compression_level: int = DEFAULT_COMPRESSION_LEVEL  # zstd level, 1-22
    lock_wait: float = 0.0  # seconds to wait for a conflicting store lock (then Locked, exit 11)
    #: one shard of a sharded backup: only the rows it owns, then a shard record; the backup exists once
    #: :func:`commit` joined every shard of ``run`` (docs/FORMAT.md, "Sharded backups")
    shard: Shard | None = None
    run: str | None = None
    commit: bool = False  # after the shard, commit the run if every shard is there (the last worker does)
    parallel: int = 1  # streams read at once (shards 0/K .. K-1/K of the rows, in one backup)
    #: store every row anew instead of reusing the rows the newest earlier backup already stored
    full: bool = False
    #: use an unencrypted store although a passphrase was given (a store URL only; see open_store)
    allow_unencrypted: bool = False
    #: the share of reused objects read back and checked before the commit (at least one; 0 for none)
    check_reused: float = CHECK_REUSED
    #: read sealed segments from the Milvus server's own storage at this URL instead of through its query path
    #: (ops/segment_backup.py): file:///PATH or s3://BUCKET/ROOT_PATH
    segments_from: str | None = None

    def __post_init__(self) -> None:
        """UsageError naming the option that is out of range or does not combine, when the options are made."""
        check_whole("batch_size", self.batch_size, 1, of="BackupOptions")
        check_whole("compression_level", self.compression_level, 1, 22, of="BackupOptions")
        check_whole("parallel", self.parallel, 1, 64, of="BackupOptions")
        check_number("lock_wait", self.lock_wait, 0, of="BackupOptions")
        if self.shard is not None and not isinstance(self.shard, Shard):
            raise UsageError(f"{param('shard', self.shard, of='BackupOptions')} is not a Shard",
                             hint=either("give Shard(I, N), e.g. Shard(0, 4)", "e.g. --shard 0/4"))
        if self.shard is not None and self.run is None:
            raise UsageError(f"{param('shard')} needs {param('run')}",
                             hint=f"give every worker of one sharded backup the same {either('run', '--run ID')}, "
                             "e.g. the Kubernetes Job's name")
        if self.run is not None:
            if self.shard is None:
                raise UsageError(f"{param('run')} needs {param('shard')}",
                                 hint=either("shard=Shard(I, N), run=ID", "--shard I/N --run ID")
                                 + " backs up one shard of N")
            check_run(self.run)
        if self.parallel > 1 and self.shard is not None:
            raise UsageError(f"{param('parallel')} and {param('shard')} do not combine",
                             hint=f"run more shards instead: {either('Shard(I, N)', '--shard I/N')}")
        if self.commit and self.shard is None:
            raise UsageError(f"{param('commit')} needs {param('shard')}",
                             hint="it commits a sharded backup once its last shard is done")
        if self.segments_from is not None and (self.shard is not None or self.parallel > 1):
            raise UsageError(f"{param('segments_from')} reads whole segments in one process: it does not combine "
                             f"with {param('shard') if self.shard is not None else param('parallel')}",
                             hint="leave that option out (the encoding already runs on every core)")
        check_number("check_reused", self.check_reused, 0, 1, of="BackupOptions",
                     hint=either("use a fraction from 0 to 1", "use 0% to 100%"))

    def check(self, max_batch: int) -> None:
        """UsageError if ``batch_size`` is more than ``max_batch`` (the engine's limit on rows per request)."""
        if self.batch_size > max_batch:
            raise UsageError(f"{param('batch_size', self.batch_size, of='BackupOptions')} is out of range",
                             hint=f"use 1 to {max_batch}, the engine's limit")

    def check_source(self, source: SourceLike) -> None:
        """:meth:`check` against the limit of the engine ``source`` is or names (a URL: without connecting)."""
        self.check((engine_class(source) if isinstance(source, str) else type(source)).max_batch)


@dataclass(frozen=True)
class CollectionFailure:
    collection: str
    error: VecbackupError

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "error": str(self.error), "exit_code": self.error.exit_code}


@dataclass
class BackupRun:
    """The outcome of :func:`backup`: a backup per collection that succeeded, a failure per one that did not."""

    store: str  # the store's display URL
    collections: list[str]  # what was asked for, in order
    results: list[BackupResult] = field(default_factory=list)
    failures: list[CollectionFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        """Raise the collection's own error when one was asked for and failed; PartialFailure (exit 3) when some
        of several failed."""
        if not self.failures:
            return
        if len(self.collections) == 1:
            raise self.failures[0].error
        raise PartialFailure(f"{len(self.failures)} of {len(self.collections)} collections failed: "
                             + ", ".join(f.collection for f in self.failures))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "store": self.store, "backups": [r.to_dict() for r in self.results],
                "failures": [f.to_dict() for f in self.failures]}


class BackupEvents:
    """What :func:`backup` tells its caller as it goes (a front end prints it); override what you need."""

    def started(self, collections: list[str]) -> None:
        """The collections about to be backed up, in order."""

    def done(self, result: BackupResult) -> None:
        """One collection's backup is committed."""

    def failed(self, failure: CollectionFailure) -> None:
        """One collection failed; the others go on."""


def backup(source: SourceLike, store: StoreLike, collections: list[str] | str | None = None, *, all: bool = False,
           options: BackupOptions | None = None, credentials: Credentials | None = None,
           progress: Callable[[], Progress] = NullProgress, events: BackupEvents | None = None) -> BackupRun:
    """Back up ``collections`` (or every collection, ``all=True``) into ``store`` under one shared store lock.

    One collection failing does not stop the others: failures are collected in the returned run (call
    ``raise_for_failures()`` to raise them as the CLI does); errors before any collection is read (bad options,
    unreachable server or store, a conflicting lock) are raised. ``events`` hears of each collection as it
    finishes; ``progress`` makes one Progress per collection."""
    options = options or BackupOptions()
    events = events or BackupEvents()
    if isinstance(collections, str):  # one name, not its letters
        collections = [collections]
    options.check_source(source)
    if bool(collections) == all:
        raise UsageError("say which collections to back up",
                         hint=either("give collections=[NAME, ...] or all=True",
                                     "give --collection NAME (repeatable) or --all"))
    with _engine(source, credentials, existing=True) as engine:
        names = engine.list_collections() if all else list(dict.fromkeys(collections or []))
        target = _store(store, create=True, allow_unencrypted=options.allow_unencrypted)
        run = BackupRun(target.display, names)
        events.started(names)
        with locked(target, "backup", exclusive=False, wait=options.lock_wait):
            reader = None if options.segments_from is None else segment_reader(engine, options.segments_from)
            # once for the run, before anything is written: a listing of every manifest in the store and a read
            check_lock_kept(target, catalog.newest(target))
            for name in names:
                try:
                    if reader is not None:
                        r = backup_segments(engine, reader, target, name, batch_size=options.batch_size,
                                            compression_level=options.compression_level, progress=progress(),
                                            full=options.full, check_fraction=options.check_reused,
                                            settings_checked=True)
                    else:
                        r = backup_collection(engine, target, name, batch_size=options.batch_size,
                                              compression_level=options.compression_level, progress=progress(),
                                              shard=options.shard, run=options.run, parallel=options.parallel,
                                              full=options.full, check_fraction=options.check_reused,
                                              settings_checked=True)
                    if options.commit and options.run is not None:
                        r.commit = commit_run(target, name, options.run, if_complete=True)
                except VecbackupError as e:
                    failure = CollectionFailure(name, e)
                    run.failures.append(failure)
                    events.failed(failure)
                    continue
                run.results.append(r)
                events.done(r)
    return run


def commit(store: StoreLike, collection: str, run: str, *, if_complete: bool = False,
           lock_wait: float = 0.0) -> CommitResult:
    """Join the shards of sharded backup ``run`` of ``collection`` (``BackupOptions(shard=..., run=...)``) into one
    backup once all of them are in the store; MissingData (exit 8) names the missing ones (``if_complete``: return
    instead, with ``committed=False``). Committing a run twice finds the same backup."""
    check_run(run)
    s = _store(store)
    with locked(s, "commit", exclusive=False, wait=lock_wait):  # a backup's commit: shared, like a backup
        return commit_run(s, collection, run, if_complete=if_complete)


def abandon(store: StoreLike, collection: str, run: str, *, lock_wait: float = 0.0) -> int:
    """Give up sharded backup ``run``: remove its shard records (its data objects become garbage for :func:`gc`);
    returns how many were removed."""
    check_run(run)
    s = _store(store)
    with locked(s, "commit", exclusive=False, wait=lock_wait):
        return abandon_run(s, collection, run)


def collections(source: SourceLike, credentials: Credentials | None = None) -> list[str]:
    """The collections an engine holds, sorted."""
    with _engine(source, credentials, existing=True) as engine:
        return engine.list_collections()


# -- reading the store -----------------------------------------------------------------------------


@dataclass
class Listing:
    store: str
    backups: list[Manifest]  # oldest first
    unreadable: list[str]  # one message per manifest that could not be read
    encrypted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "encrypted": self.encrypted, "backups": [_summary(m) for m in self.backups],
                "unreadable": self.unreadable}


def _summary(m: Manifest) -> dict[str, Any]:
    return {"backup_id": m.backup_id, "collection": m.collection.name, "completed_at": m.completed_at,
            "rows": m.rows, "bytes": m.size, "objects": len(m.objects), "engine": m.source.engine,
            "server_version": m.source.server_version,
            "incremental": None if m.incremental is None else m.incremental.to_dict()}


def list_backups(store: StoreLike, collection: str | None = None) -> Listing:
    """Every complete backup in the store (of one collection, if given), oldest first."""
    s = _store(store)
    manifests, problems = catalog.list_manifests(s, collection)
    return Listing(s.display, manifests, problems, is_encrypted(s))


def show(store: StoreLike, backup: str = "latest", collection: str | None = None) -> Manifest:
    """A backup's manifest: by id, unique id prefix, or ``latest`` (of ``collection``)."""
    return catalog.find(_store(store), backup, collection)


VerifyDepth = Literal["quick", "checksum", "read-data"]


def verify(store: StoreLike, backup: str | None = "latest", collection: str | None = None, *,
           depth: VerifyDepth = "checksum", subset: Subset | str | None = None,
           progress: Callable[[], Progress] = NullProgress,
           on_result: Callable[[VerifyResult], None] | None = None) -> list[VerifyResult]:
    """Check one backup (or every backup, ``backup=None``): ``quick`` stats every object, ``checksum`` reads each
    back and checks its SHA-256 and header, ``read-data`` also decodes it; a ``subset`` (``Subset(...)``, or as
    ``--read-data-subset`` takes it: ``"10%"``, ``"3/7"``) decodes only part. Returns every problem found
    (``VerifyResult.raise_for_problems()`` raises them, :func:`raise_for_worst` the worst of several); ``on_result``
    hears of each backup as it is done."""
    if depth not in ("quick", "checksum", "read-data"):
        raise UsageError(f"unknown verify depth {depth!r}", hint="use quick, checksum or read-data")
    if isinstance(subset, str):
        subset = Subset.parse(subset)
    s = _store(store)
    refs = catalog.list_refs(s, collection) if backup is None else [catalog.resolve(s, backup, collection)]
    results = []
    for ref in refs:
        r = verify_backup(s, catalog.load(s, ref), quick=depth == "quick", read_data=depth == "read-data",
                          subset=subset, progress=progress())
        results.append(r)
        if on_result is not None:
            on_result(r)
    return results


def repair(store: StoreLike, results: list[VerifyResult], *, lock_wait: float = 0.0) -> RepairResult:
    """Remove the objects ``results`` (of :func:`verify`) found damaged, under an exclusive store lock, so the next
    backup stores their rows again instead of building on them (``verify --repair``; docs/OPERATIONS.md,
    "Repairing a store"). A data object is removed only if, read again, its bytes do not match its name."""
    s = _store(store)
    return _exclusive(s, "repair", lock_wait, lambda: remove_damaged(s, results))


# -- changing the store ----------------------------------------------------------------------------


def _exclusive(s: BlobStore, what: str, lock_wait: float, fn: Callable[[], T]) -> T:
    with locked(s, what, exclusive=True, wait=lock_wait):  # data objects are shared by every backup
        return fn()


def delete(store: StoreLike, backup: str, collection: str | None = None, *, lock_wait: float = 0.0,
           ) -> DeleteResult:
    """Delete one backup (by id or unique prefix, never ``latest``): its manifest first, then the data objects no
    other backup uses, under an exclusive store lock."""
    if backup == "latest":
        raise UsageError("delete takes an explicit backup id, not 'latest'", hint="`vecbackup list` shows them")
    s = _store(store)
    manifest = catalog.find(s, backup, collection)
    return _exclusive(s, "delete", lock_wait, lambda: delete_backup(s, manifest))


def gc(store: StoreLike, *, min_age: float = 86400.0, dry_run: bool = False, lock_wait: float = 0.0) -> GcResult:
    """Delete data objects no backup references, older than ``min_age`` seconds (younger ones may belong to a
    backup still running); ``dry_run`` only lists them."""
    s = _store(store)
    if dry_run:
        return collect_garbage(s, min_age=min_age, dry_run=True)
    return _exclusive(s, "gc", lock_wait, lambda: collect_garbage(s, min_age=min_age))


def undelete(store: StoreLike, as_of: datetime, *, dry_run: bool = False, lock_wait: float = 0.0) -> UndeleteResult:
    """Bring back what was deleted from a versioned store (S3 or Azure with versioning or object lock) since
    ``as_of``: remove the delete markers written since over the objects it held then (on Azure, which keeps no
    markers, copy those versions over the blobs; an object written again since is left as it is), and delete the
    tombstones written since, so that backups deleted since are listed again;
    ``dry_run`` only reports. Under an exclusive store lock; Unsupported (exit 9) for a store without versions.
    A store given as a URL is opened as it was at ``as_of``, so an encrypted store whose settings and key files
    were deleted too is unlocked with the key it had then (a store from ``open_store(..., as_of=...)`` likewise)."""
    s = present(open_store(store, as_of=as_of) if isinstance(store, str) else store)
    if dry_run:
        return run_undelete(s, as_of, dry_run=True)
    return _exclusive(s, "undelete", lock_wait, lambda: run_undelete(s, as_of))


def locks(store: StoreLike) -> list[LockInfo]:
    """The locks on a store (``vecbackup unlock --list``): each one's kind, whether it is exclusive, who holds it
    (user, host, process) and until when."""
    return list_locks(_store(store))


def unlock(store: StoreLike, *, all: bool = False) -> list[LockInfo]:
    """Remove the stale locks on a store, left by runs that died (their time ran out without a refresh); ``all``:
    every lock, even live ones, only when you are sure no other vecbackup run uses the store. Returns the locks
    removed."""
    return remove_locks(_store(store), all_locks=all)


def gc_engine(target: SourceLike, *, dry_run: bool = False, credentials: Credentials | None = None,
              ) -> LeftoverResult:
    """Drop what restores and drills that died left on an engine (``vecbackup gc ENGINE_URL``): every collection
    whose lease (docs/FORMAT.md, "Leases on the target") belongs to a process that is gone or ran out more than
    5 minutes ago; clear the lease of a collection a dead restore had completed; keep and report the rest (live
    leases, runs of several workers, collections named like staging collections without a lease). ``dry_run``
    only reports. Never touches a collection without a lease."""
    with _engine(target, credentials) as engine:
        return reap(engine, dry_run=dry_run)


def stats(store: StoreLike, collection: str | None = None, *, locks: bool = False) -> StoreStats:
    """What the store holds (data, row digests, manifests), what each backup costs (``unique_bytes``: exactly what
    deleting it alone frees; ``uploaded_bytes``: what it wrote), the garbage :func:`gc` would collect, and the
    deduplication ratio. ``collection`` lists only its backups; uniqueness is still judged against every backup in
    the store. Reads only, takes no lock; an unreadable manifest is reported in ``unreadable`` (unique and
    unreferenced bytes are then None). ``locks`` reads each object's object lock too (a HEAD each: ``locks``, the
    bytes locked now and the others; Unsupported on a store that cannot lock objects)."""
    return collect_stats(_store(store), collection, locks=locks)


def prune(store: StoreLike, policy: Policy, *, collection: str | None = None, dry_run: bool = False,
          gc_min_age: float = 86400.0, lock_wait: float = 0.0) -> PruneResult:
    """Apply a retention policy per collection (vecbackup.retention): delete the backups no rule keeps and the data
    only they used, then leftovers of failed backups older than ``gc_min_age``; ``dry_run`` decides and deletes
    nothing. Never removes a collection's newest backup."""
    require_rules(policy)
    s = _store(store)
    if dry_run:
        return prune_store(s, policy, collection=collection, dry_run=True, gc_min_age=gc_min_age)
    return _exclusive(s, "prune", lock_wait,
                      lambda: prune_store(s, policy, collection=collection, gc_min_age=gc_min_age))


@dataclass(frozen=True)
class CollectionPruned:
    """One collection's retention after a backup (:func:`prune_backed_up`): what :func:`prune` did, and how long it
    took."""

    collection: str
    result: PruneResult
    seconds: float

    @property
    def bytes_freed(self) -> int:
        """What it freed: the data only the removed backups used, and the leftovers of failed backups."""
        return self.result.bytes_freed + (self.result.gc.bytes_freed if self.result.gc is not None else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "kept": self.result.kept, "removed": self.result.removed,
                "bytes_freed": self.bytes_freed}


def prune_backed_up(store: StoreLike, run: BackupRun, policy: Policy, *, gc_min_age: float = 86400.0,
                    lock_wait: float = 0.0, on_pruned: Callable[[CollectionPruned], None] | None = None,
                    ) -> list[CollectionPruned]:
    """Retention after a backup (a ``vecbackup schedule`` job with ``keep_*`` keys): :func:`prune` by ``policy``
    each collection ``run`` backed up successfully, one after the other, in the run's order; a collection whose
    backup failed keeps every backup it has. ``on_pruned`` hears of each as it is done; an error stops there and is
    raised."""
    require_rules(policy)
    s = _store(store)
    out = []
    for r in run.results:
        t0 = time.monotonic()
        pruned = CollectionPruned(r.collection, prune(s, policy, collection=r.collection, gc_min_age=gc_min_age,
                                                      lock_wait=lock_wait), time.monotonic() - t0)
        out.append(pruned)
        if on_pruned is not None:
            on_pruned(pruned)
    return out


# -- encryption: init and keys ---------------------------------------------------------------------


def init(store: StoreLike, *, encrypt: bool = False, passphrase: Passphrase | None = None,
         label: str = "", recover: bool = False, object_lock: str | ObjectLock | None = None) -> InitResult:
    """Prepare a store. ``encrypt``: make it an encrypted store whose first key file opens with ``passphrase``
    (default: from the environment); it must be empty (AlreadyExists, exit 5, if it holds backups or is encrypted
    already). Keep the passphrase: without a key file it opens, the backups cannot be read.

    ``object_lock`` (``"compliance:35d"``, ``"governance:35d"`` or an ObjectLock): every object the store keeps is
    written with that retention (S3 Object Lock; Azure version-level immutability policies), and each backup extends
    it on the objects it reuses (docs/STORES.md, "Object lock"). The bucket must have Object Lock enabled (the Azure
    container version-level immutability support); refused on a folder (Unsupported, exit 9; nothing written).
    Chosen once: the settings file is written once.

    ``recover`` (with ``encrypt``): write again the settings file (vecbackup.json) of an encrypted store that lost
    it, from the key file ``passphrase`` opens; nothing else is written (give ``object_lock`` again if it had one)."""
    pw = Passphrase.from_env() if passphrase is None else passphrase
    lock = _object_lock(object_lock)
    if lock is not None and isinstance(store, str) and parse_store_url(store).scheme not in ("s3", "azure"):
        raise cannot_lock(parse_store_url(store).display)  # before a folder is created for it
    raw = open_raw_store(store, create=not recover) if isinstance(store, str) else store
    if not encrypt and (pw.given or recover):
        if recover:
            raise UsageError(f"{param('recover', True)} needs {param('encrypt', True)}",
                             hint=f"add {param('encrypt', True)} to give an encrypted store its settings back")
        raise UsageError(f"a passphrase was given but not {param('encrypt', True)}",
                         hint=f"add {param('encrypt', True)} to make an encrypted store, or unset the passphrase")
    if recover:
        return recover_store(raw, pw, object_lock=lock)
    return init_store(raw, pw.secret() if encrypt else None, label=label, object_lock=lock)


def _object_lock(value: str | ObjectLock | None) -> ObjectLock | None:
    if value is None or isinstance(value, ObjectLock):
        return value
    try:
        return ObjectLock.parse(value)
    except ValueError as e:
        raise UsageError(f"bad {param('object_lock', value)}: {e}") from None


def keys(store: StoreLike) -> list[KeyInfo]:
    """The key files of an encrypted store (each a passphrase that opens it), oldest first."""
    return list_keys(_store(store))


def add_key(store: StoreLike, new: Passphrase, *, label: str = "") -> KeyInfo:
    """Let passphrase ``new`` open the store too (a new key file; nothing is re-encrypted or uploaded again)."""
    return _add_key(_store(store), new.secret(), label=label)


def remove_key(store: StoreLike, key_id: str) -> KeyInfo:
    """Remove a key file, by id or unique prefix: its passphrase no longer opens the store. Refused for the key the
    store was opened with (so the last key cannot be removed)."""
    return _remove_key(_store(store), key_id)


# -- restoring -------------------------------------------------------------------------------------


BackupLike = str | Manifest  # a backup id, unique prefix or "latest"; or a manifest already read (show())


def _manifest(s: BlobStore, backup: BackupLike, collection: str | None) -> Manifest:
    return backup if isinstance(backup, Manifest) else catalog.find(s, backup, collection)


def plan(store: StoreLike, target: SourceLike, *, backup: BackupLike = "latest", collection: str | None = None,
         options: RestoreOptions | None = None, credentials: Credentials | None = None) -> RestorePreview:
    """What :func:`restore` would do, field by field (across engines too), and why it would fail: reads the store
    and the target, writes nothing (``restore --dry-run``)."""
    RestoreMode(dry_run=True).check(backup, target, options)
    manifest = _manifest(_store(store), backup, collection)
    with _engine(target, credentials) as engine:
        leftovers = reap(engine, scope=of_restores_into(_target_name(manifest, engine, options)), superseded=True,
                         dry_run=True)
        return preview_restore(manifest, engine, options, leftovers=leftovers)


@dataclass(frozen=True)
class BulkImport:
    """Restore through the Milvus server's own import (``restore --bulk-import-via URL``): the rows are staged as
    import files at ``via`` and imported by the server's tasks. ``via`` must be in the bucket the Milvus cluster
    stores its data in (``s3://<minio.bucketName>/prefix``; a folder for a server with local storage), writable with
    the store credentials of the environment; the files are deleted once imported. ``file_mb``: raw megabytes of
    one task's files (memory holds about two such groups). ``format``: what the server imports, ``"files"``
    (numpy, or row JSON where numpy cannot say it), ``"binlog"`` (its own insert binlogs, Milvus 2.3: every type
    2.3 holds in columns, auto-id keys kept) or ``"auto"``: the binlogs where the server takes them for the
    collection, else files."""

    via: str
    file_mb: int = DEFAULT_FILE_BYTES >> 20
    format: str = "auto"

    def __post_init__(self) -> None:
        """UsageError for a ``via`` that is no store URL, a ``file_mb`` out of range or an unknown ``format``, when
        it is made."""
        check_whole("file_mb", self.file_mb, 1, of="BulkImport", flag="--bulk-import-mb")
        if self.format not in IMPORT_FORMATS:
            said = param("format", self.format, flag="--bulk-import-format", quoted=True, of="BulkImport")
            raise UsageError(f"{said} is not an import format",
                             hint=f"use one of {', '.join(IMPORT_FORMATS)}")
        parse_store_url(self.via)

    def staging(self) -> Staging:
        url = parse_store_url(self.via)
        if url.scheme == "file":  # the server opens the files by absolute path
            url = dataclasses.replace(url, location=os.path.abspath(url.location))
        return Staging(open_raw_store(url, create=url.scheme == "file", keep_cached=True), url, self.file_mb << 20)


@dataclass(frozen=True)
class RestoreMode:
    """Which restore is asked for, checked when made (the combinations ``vecbackup restore`` takes, named as the
    caller names them): one process (the default: :func:`restore`, with ``bulk_import`` through the server's
    import), a preview (``dry_run``: :func:`plan`), or one step of a restore by several workers sharing ``run``:
    a worker's ``shard`` (:func:`restore_shard`, with ``commit`` then trying the commit), ``commit`` alone
    (:func:`commit_restore`) or ``abandon`` (:func:`abandon_restore`). :meth:`check` checks what the mode needs
    of the backup, the target and the options; every restoring function checks its own mode so."""

    shard: Shard | None = None
    run: str | None = None
    commit: bool = False
    abandon: bool = False
    dry_run: bool = False
    bulk_import: BulkImport | None = None

    def __post_init__(self) -> None:
        """UsageError naming the options that do not fit together, before anything is opened."""
        run_id = either("run", "--run ID")
        if self.shard is not None and not isinstance(self.shard, Shard):
            raise UsageError(f"{param('shard', self.shard)} is not a Shard",
                             hint=either("give Shard(I, N), e.g. Shard(0, 4)", "e.g. --shard 0/4"))
        if self.shard is not None and self.run is None:
            raise UsageError(f"{param('shard')} needs {run_id} (the same for every worker of the restore)")
        if (self.commit or self.abandon) and self.run is None:
            raise UsageError(f"{param('commit' if self.commit else 'abandon')} needs {run_id}")
        if self.abandon and (self.shard is not None or self.commit):
            raise UsageError(f"{param('abandon')} gives a run up: it takes neither {param('shard')} nor "
                             f"{param('commit')}")
        if self.dry_run and (self.commit or self.abandon):
            raise UsageError(f"{param('dry_run')} writes nothing: it takes no "
                             f"{param('commit' if self.commit else 'abandon')}")
        if self.run is not None and self.shard is None and not self.commit and not self.abandon and not self.dry_run:
            raise UsageError(f"{param('run')} needs {either('shard', '--shard I/N')} (a worker), {param('commit')} "
                             f"or {param('abandon')}")
        if self.run is not None:
            check_run(self.run)
        if self.bulk_import is not None and self.run is not None:
            raise UsageError(f"{param('bulk_import', flag='--bulk-import-via')} restores in one process: it takes no "
                             f"{param('run')}, {param('shard')}, {param('commit')} or {param('abandon')}")

    @property
    def step(self) -> Literal["restore", "plan", "shard", "commit", "abandon"]:
        """The function that runs it: restore, plan, restore_shard (shard), commit_restore or abandon_restore."""
        if self.run is not None and not self.dry_run:
            return "abandon" if self.abandon else "shard" if self.shard is not None else "commit"
        return "plan" if self.dry_run else "restore"

    def check(self, backup: BackupLike, target: SourceLike, options: RestoreOptions | None) -> None:
        """UsageError for what this mode cannot take of the backup, the target or the options: a step of a run
        needs one backup id (every worker must restore the same backup, not "latest"); ``replication_factor``
        applies to Qdrant targets only; ``bulk_import`` imports files, it takes no ``parallel`` inserts."""
        if options is not None and options.replication_factor is not None and not _is_qdrant(target):
            raise UsageError(f"{param('replication_factor')} applies to Qdrant targets only")
        if self.bulk_import is not None and options is not None and options.parallel != DEFAULT_PARALLEL:
            raise UsageError(f"{param('parallel')} sets inserts in flight; "
                             f"{param('bulk_import', flag='--bulk-import-via')} imports files instead: drop one")
        if self.run is not None and not self.dry_run and not isinstance(backup, Manifest):
            pinned(backup)


def _is_qdrant(target: SourceLike) -> bool:
    if isinstance(target, str):
        return is_qdrant_url(target)
    from vecbackup.engines.qdrant import QdrantEngine

    return isinstance(target, QdrantEngine)


def restore(store: StoreLike, target: SourceLike, *, backup: BackupLike = "latest", collection: str | None = None,
            options: RestoreOptions | None = None, credentials: Credentials | None = None,
            progress: Progress | None = None, bulk_import: BulkImport | None = None) -> RestoreResult:
    """Restore a backup: the schema, partitions, data, indexes and aliases, loaded under a staging name and given
    the final name only once complete; a failure drops the staging collection and leaves an existing one as it
    was. ``options`` carries everything that differs from the backup (name, --drop-existing, parameters);
    ``bulk_import`` has a Milvus server import the rows from files instead of taking inserts. First, what restores
    into the same target that died left there is dropped (``result.dropped``; see :func:`gc_engine`)."""
    RestoreMode(bulk_import=bulk_import).check(backup, target, options)
    s = _store(store)
    manifest = _manifest(s, backup, collection)
    if bulk_import is not None:
        options = dataclasses.replace(options or RestoreOptions(), server_import=True,
                                      import_format=bulk_import.format)
    with _engine(target, credentials) as engine:
        leftovers = reap(engine, scope=of_restores_into(_target_name(manifest, engine, options)), superseded=True)
        decided: Plan = plan_restore(manifest, engine, options)
        staged: list[str] = []
        if bulk_import is not None:
            staging = bulk_import.staging()
            staged = remove_staged(staging, leftovers.dropped)  # the files the dead restores staged
            result = bulk_restore(s, manifest, engine, decided, staging, progress=progress)
        else:
            result = run_restore(s, manifest, engine, decided, progress=progress)
        result.notes[:0] = leftovers.notes() + staged
        result.dropped = leftovers.dropped
        return result


def restore_shard(store: StoreLike, target: SourceLike, *, backup: BackupLike, shard: Shard, run: str,
                  collection: str | None = None, commit: bool = False, options: RestoreOptions | None = None,
                  credentials: Credentials | None = None, progress: Progress | None = None) -> ShardRestoreResult:
    """One worker of a restore by several (``restore --shard I/N --run RUN``, Milvus targets): insert this
    shard's share of the backup into the run's staging collection; with ``commit``, then commit the run if every
    worker is done (:func:`commit_restore`). ``backup`` must name one backup, not "latest": every worker must
    restore the same one. A re-run of a worker continues where it stopped."""
    RestoreMode(shard=shard, run=run, commit=commit).check(backup, target, options)
    s = _store(store)
    manifest = _manifest(s, backup, collection)
    with _engine(target, credentials) as engine:
        decided = plan_restore(manifest, engine, options)
        return run_restore_shard(s, manifest, engine, decided, shard, run, commit=commit, progress=progress)


def commit_restore(store: StoreLike, target: SourceLike, *, backup: BackupLike, run: str,
                   collection: str | None = None, options: RestoreOptions | None = None,
                   credentials: Credentials | None = None) -> RestoreCommit:
    """Commit restore run ``run`` once all its workers are done: flush, index and load the staging collection,
    check it holds every row of the backup, then give it the target's name. MissingData (8) names the workers that
    have not finished. ``options`` must be the workers' (the target name, --drop-existing, parameters)."""
    RestoreMode(run=run, commit=True).check(backup, target, options)
    s = _store(store)
    manifest = _manifest(s, backup, collection)
    with _engine(target, credentials) as engine:
        try:
            decided = plan_restore(manifest, engine, options)
        except AlreadyExists:  # the target: this run's, committed already, or another one
            names = run_names(_target_name(manifest, engine, options), run, manifest.backup_id)
            if engine.has_collection(names.staging) or engine.has_collection(names.committing):
                raise  # a run to commit over an existing target: the workers' drop_existing is missing
            raise NotFound(f"restore run {run} of backup {manifest.backup_id} has nothing to commit on "
                           f"{engine.display} and its target exists (committed already?)",
                           hint=f"`vecbackup collections` shows the target; {param('drop_existing', True)} commits "
                                "over it") from None
        return run_commit_restore(manifest, engine, decided, run)


def abandon_restore(store: StoreLike, target: SourceLike, *, backup: BackupLike, run: str,
                    collection: str | None = None, options: RestoreOptions | None = None,
                    credentials: Credentials | None = None) -> list[str]:
    """Give restore run ``run`` up: drop its staging collection and markers (never the target); returns the
    collections dropped."""
    RestoreMode(run=run, abandon=True).check(backup, target, options)
    s = _store(store)
    manifest = _manifest(s, backup, collection)
    with _engine(target, credentials) as engine:
        return run_abandon_restore(manifest, engine, _target_name(manifest, engine, options), run)


def _target_name(manifest: Manifest, engine: Engine, options: RestoreOptions | None) -> str:
    return (options.target if options else None) or restore_mapping(manifest, engine).spec.name


def drill(store: StoreLike, target: SourceLike, *, backup: BackupLike = "latest", collection: str | None = None,
          source: SourceLike | None = None, options: DrillOptions | None = None,
          credentials: Credentials | None = None, progress: Progress | None = None) -> DrillReport:
    """A disaster-recovery drill: restore into a scratch collection on ``target``, check it (rows, a sample field
    by field, search recall against exact search, the backup's age), report, drop it. With ``source`` (the live
    server) the row count and recall are compared with it. Never raises for a failed check: ``report.ok`` says."""
    s = _store(store)
    manifest = _manifest(s, backup, collection)
    with _engine(target, credentials) as engine:
        if source is None:
            return run_drill(s, manifest, engine, opts=options, progress=progress)
        if source == target:
            return run_drill(s, manifest, engine, source=engine, opts=options, progress=progress)
        with _engine(source, credentials, existing=True) as live:
            return run_drill(s, manifest, engine, source=live, opts=options, progress=progress)


def write_report(report: DrillReport, *, json_path: str | None = None, junit_path: str | None = None) -> None:
    """Write a drill report to files (``drill --report-json``, ``--junit``): ``json_path`` gets ``report.to_dict()``
    as JSON, ``junit_path`` JUnit XML with one test case per check, for a CI system to show."""
    if json_path:
        _write_json(report, json_path)
    if junit_path:
        _write_junit(report.to_dict(), junit_path)


def report_hash(store: StoreLike, value: Any) -> str:
    """What a drill report on the encrypted ``store`` shows in place of ``value``, a primary key or field value as
    the engine returns it (``42``, ``"doc-17"``): ``"hmac-sha256:"`` and 16 hex digits of an HMAC under the store's
    key, so a reported row can be matched with one you hold, but only by someone who can open the store
    (docs/SECURITY.md, "Drill reports"). UsageError for an unencrypted store, whose reports show values."""
    s = _store(store)
    try:
        return _report_hash(s, value)
    except ValueError as e:
        raise UsageError(str(e)) from None


__all__ = [
    "CHUNK_VERSION", "DEFAULT_COMPRESSION_LEVEL", "FORMAT_VERSION", "IMPORT_FORMATS", "BackupEvents", "BackupLike",
    "BackupOptions", "BackupResult", "BackupRun", "BackupStats", "BlobStore", "BulkImport", "CollectionFailure",
    "CollectionPruned", "CommitResult", "Credentials", "DeleteResult", "DrillOptions", "DrillReport", "Engine",
    "GcResult", "InitResult", "KeyInfo", "LeftoverResult", "Listing", "LockInfo", "Manifest", "NullProgress",
    "ObjectLock", "Passphrase", "Policy", "Progress", "PruneResult", "RepairResult", "RestoreCommit", "RestoreMode",
    "RestoreOptions", "RestorePreview", "RestoreResult", "SearchParams", "Shard", "ShardRestoreResult", "SourceLike",
    "StoreLike", "StoreStats", "Subset", "UndeleteResult", "VerifyDepth", "VerifyResult", "abandon", "abandon_restore",
    "add_key", "backup", "collections", "commit", "commit_restore", "connect", "delete", "drill", "gc", "gc_engine",
    "init", "is_engine_url", "keys", "list_backups", "locks", "open_store", "parse_as_of", "plan", "prune",
    "prune_backed_up", "raise_for_worst", "remove_key", "repair", "report_hash", "restore", "restore_shard", "show",
    "stats", "undelete", "unlock", "verify", "write_report",
]
