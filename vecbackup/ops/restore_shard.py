"""Restore by several workers: ``restore --shard I/N --run RUN`` on N processes or machines fills one staging
collection, worker I inserting the backup's data objects I, I+N, I+2N, ...; a commit (``--commit``: each worker's
after its share, or a step of its own) flushes, indexes and loads it, checks that it holds every row of the backup,
and only then gives it the target's name. Until then the target is untouched and there is nothing under its name.

The run's state is kept on the target server, as markers on the staging collection (Milvus aliases: atomic, listed
with the collection, never in its data): worker I's *started* marker, set before its first insert, and its *done*
marker, set after its last. A worker that finds its own *started* marker is a re-run: it deletes the keys of every
object before inserting it again, so each row is there once however often a worker runs, and a worker that finds
its *done* marker has nothing to do. The commit claims the run by renaming the staging collection (one rename
wins), so workers that finish together commit once. The names below are all derived from the target, the run and
the backup, so every worker of a run finds the same ones and nothing else does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from vecbackup.engines.base import RestorePlan, Sink, StagingSink
from vecbackup.errors import MissingData, NotFound, RowCountMismatch, Unsupported, UsageError, VecbackupError
from vecbackup.format.codec import Chunk
from vecbackup.format.manifest import DataObject, Manifest
from vecbackup.format.shard import Shard, check_run
from vecbackup.ops.duplicates import check_restored
from vecbackup.ops.leases import new_lease
from vecbackup.ops.progress import Progress, with_phases
from vecbackup.ops.restore import COUNTING, RENAMING, Plan, insert_objects
from vecbackup.schema import CollectionSpec
from vecbackup.stores.base import BlobStore
from vecbackup.words import either, param, plural


@dataclass(frozen=True)
class RunNames:
    """The names one run uses on the target server."""

    staging: str  # the collection the workers fill
    committing: str  # what the staging collection is renamed to by the commit that claims it
    prefix: str  # of the markers

    def started(self, shard: Shard) -> str:
        return f"{self.prefix}_{shard.index}of{shard.count}_started"

    def done(self, shard: Shard) -> str:
        return f"{self.prefix}_{shard.index}of{shard.count}_done"

    def done_shards(self, markers: set[str]) -> tuple[int | None, set[int]]:
        """(N, the indexes I of the *done* markers among ``markers``); N is None without any marker of the run.
        Workers started with different N are a UsageError naming them."""
        pattern = re.compile(re.escape(self.prefix) + r"_(\d+)of(\d+)_(started|done)$")
        counts: set[int] = set()
        done: set[int] = set()
        for marker in markers:
            m = pattern.match(marker)
            if m:
                counts.add(int(m.group(2)))
                if m.group(3) == "done":
                    done.add(int(m.group(1)))
        if len(counts) > 1:
            raise UsageError(f"the run's workers were started with different N ({', '.join(map(str, sorted(counts)))})",
                             hint=f"give every worker of one run the same {either('Shard(I, N)', '--shard I/N')}, "
                                  f"or {_abandon()} the run")
        return (counts.pop() if counts else None), done


def _abandon() -> str:
    return either("abandon_restore()", "restore --abandon")


def run_names(target: str, run: str, backup_id: str) -> RunNames:
    """The names of run ``run`` restoring ``backup_id`` into ``target``. Pure."""
    check_run(run)
    digest = hashlib.sha256(f"{target}\0{run}\0{backup_id}".encode()).hexdigest()[:12]
    base = target[:200]
    return RunNames(staging=f"{base}_vbrun_{digest}", committing=f"{base}_vbcommit_{digest}",
                    prefix=f"_vbrun_{digest}")


def pinned(backup_id: str) -> str:
    """The backup every worker of a run restores: a backup id, not "latest" (which could change between them)."""
    if backup_id == "latest":
        raise UsageError(f"a restore by several workers needs {either('backup=ID', '--backup ID')}, not latest",
                         hint="every worker must restore the same backup: "
                              + either("list_backups() shows the ids", "`vecbackup list --json` shows the ids"))
    return backup_id


def assigned(objects: Sequence[DataObject], shard: Shard) -> list[DataObject]:
    """The data objects worker ``shard`` inserts: every N-th, starting at its index. Pure."""
    return [o for j, o in enumerate(objects) if j % shard.count == shard.index]


@dataclass
class RestoreCommit:
    """What a commit found and did. ``state``: ``committed`` (by this call), ``waiting`` (workers have not
    finished: ``missing``), ``elsewhere`` (another commit claimed the run, or finished it)."""

    run: str
    collection: str
    state: str
    shards: int | None = None
    missing: list[int] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"run": self.run, "collection": self.collection, "state": self.state, "shards": self.shards,
                "missing": self.missing, "rows": self.rows, "seconds": round(self.seconds, 3), "notes": self.notes}


@dataclass
class ShardRestoreResult:
    backup_id: str
    source_collection: str
    collection: str  # the target
    staging: str
    shard: Shard
    run: str
    rows: int  # inserted by this worker (0 when its share was already done)
    seconds: float
    notes: list[str] = field(default_factory=list)
    commit: RestoreCommit | None = None
    share_bytes: int = 0  # the size of the data objects that are this worker's share (metrics; not in to_dict)

    def to_dict(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "source_collection": self.source_collection,
                "collection": self.collection, "staging": self.staging, "shard": self.shard.label, "run": self.run,
                "rows": self.rows, "seconds": round(self.seconds, 3), "notes": self.notes,
                "commit": None if self.commit is None else self.commit.to_dict()}


def staging_sink(sink: Sink, plan: Plan | None = None) -> StagingSink:
    if not isinstance(sink, StagingSink):
        raise Unsupported(f"{sink.display} cannot be restored into by several workers",
                          hint=f"restore with one process ({param('parallel', 'K')} keeps K inserts in flight)")
    if plan is not None and plan.duplicates is not None and plan.duplicates.ordered:
        raise Unsupported(f"the backup holds keys in more than one partition, which {sink.display} keeps only when "
                          "their partitions are restored one after the other, in order: several workers do not",
                          hint="restore with one process")
    return sink


def restore_shard(store: BlobStore, manifest: Manifest, sink: Sink, plan: Plan, shard: Shard, run: str, *,
                  commit: bool = False, progress: Progress | None = None) -> ShardRestoreResult:
    """Worker ``shard`` of run ``run``: insert its share of the backup into the run's staging collection (made by
    whichever worker comes first), mark it done, and with ``commit`` try the commit (it happens once every worker
    is done). A failure leaves the staging collection for the re-run, which continues."""
    target = staging_sink(sink, plan)
    progress = with_phases(progress)
    names = run_names(plan.target, run, manifest.backup_id)
    to_do = dataclasses.replace(plan.sink, staging=names.staging)
    plan = dataclasses.replace(plan, sink=to_do)
    t0 = time.monotonic()
    notes = list(plan.notes)
    result = ShardRestoreResult(backup_id=manifest.backup_id, source_collection=manifest.collection.name,
                                collection=plan.target, staging=names.staging, shard=shard, run=run, rows=0,
                                seconds=0.0, notes=notes,
                                share_bytes=sum(o.size for o in assigned(manifest.objects, shard)))
    if target.has_collection(names.committing):
        notes.append(f"run {run} is being committed: every worker had finished")
    else:
        run_lease = new_lease("run", plan.target, manifest.collection.name, manifest.backup_id, run=run)
        notes.extend(target.ensure_staging(plan.spec, to_do, lease=run_lease.to_json()))
        markers = target.markers(names.staging)
        count, _ = names.done_shards(markers)
        if count is not None and count != shard.count:
            raise UsageError(f"run {run} was started with {plural(count, 'worker')}, not {shard.count}",
                             hint=f"give every worker of the run {either(f'Shard(I, {count})', f'--shard I/{count}')}"
                                  f", or {_abandon()} the run")
        if names.done(shard) in markers:
            notes.append(f"shard {shard.label} of run {run} was already restored; nothing to do")
        else:
            result.rows = _insert_share(store, manifest, target, plan, shard, names, markers, progress)
    if commit:
        result.commit = commit_restore(manifest, sink, plan, run, worker=True, progress=progress)
    result.seconds = time.monotonic() - t0
    return result


def _insert_share(store: BlobStore, manifest: Manifest, sink: StagingSink, plan: Plan, shard: Shard,
                  names: RunNames, markers: set[str], progress: Progress) -> int:
    objects = assigned(manifest.objects, shard)
    expected = sum(o.rows for o in objects)
    rerun = names.started(shard) in markers
    if not rerun:
        sink.add_marker(names.staging, names.started(shard))  # before the first insert: a re-run knows

        def write(spec: CollectionSpec, to_do: RestorePlan, chunk: Chunk) -> int:
            return sink.write(spec, to_do, chunk)
    else:
        def write(spec: CollectionSpec, to_do: RestorePlan, chunk: Chunk) -> int:
            sink.delete_keys(spec, to_do, chunk)  # whatever an earlier run of this worker inserted of it
            return sink.write(spec, to_do, chunk)
    progress.start(f"restore {plan.target} shard {shard.label}", expected)
    written = insert_objects(store, objects, plan, write, progress)
    progress.finish()
    if written != expected:
        raise VecbackupError(f"shard {shard.label}: inserted {written} rows, its objects hold {expected}")
    sink.add_marker(names.staging, names.done(shard))
    return written


def commit_restore(manifest: Manifest, sink: Sink, plan: Plan, run: str, *, worker: bool = False,
                   progress: Progress | None = None) -> RestoreCommit:
    """Finish run ``run`` once every worker is done: claim it, flush, index, load, check the row count against the
    backup, drop the markers, give it the target's name (``progress`` hears each of these phases). Called by a
    worker (``worker``), an unfinished run or one another commit claimed is reported, not raised; called on its
    own, an unfinished run raises MissingData (8), and a run a commit claimed but did not finish (it died) is taken
    over."""
    target = staging_sink(sink, plan)
    progress = with_phases(progress)
    names = run_names(plan.target, run, manifest.backup_id)
    t0 = time.monotonic()
    result = RestoreCommit(run=run, collection=plan.target, state="elsewhere")
    staged = _markers_if_staged(target, names.staging)
    if staged is not None:
        count, done = names.done_shards(staged)
        result.shards = count
        result.missing = [] if count is None else sorted(set(range(count)) - done)
        if count is None or result.missing:
            result.state = "waiting"
            if worker:
                return result
            what = ("no worker has finished" if count is None else
                    f"shard{'s' if len(result.missing) > 1 else ''} {', '.join(map(str, result.missing))} of "
                    f"{count} {'have' if len(result.missing) > 1 else 'has'} not finished")
            raise MissingData(f"restore run {run} of backup {manifest.backup_id} into {plan.target!r}: {what}",
                              hint="run the missing workers (a re-run continues where it stopped), then commit again")
        if not target.claim(names.staging, names.committing):
            return result  # another worker's commit renamed it first
    elif worker or not target.has_collection(names.committing):
        if worker:
            return result  # claimed (or finished) by another worker's commit
        raise NotFound(f"no restore run {run} of backup {manifest.backup_id} into {plan.target!r} on "
                       f"{sink.display}", hint="start its workers with "
                       + either("restore_shard(..., shard=Shard(I, N), run=RUN)", "restore --shard I/N --run RUN"))
    # this call holds the claim (or, on its own, takes over one whose commit stopped)
    to_do = dataclasses.replace(plan.sink, staging=names.committing)
    result.notes.extend(target.prepare(plan.spec, to_do, progress.phase))
    progress.phase(COUNTING)
    try:
        rows = check_restored(target, plan.spec, names.committing, manifest, plan.duplicates)
    except RowCountMismatch as e:
        raise RowCountMismatch(f"restore run {run}: {e.message}; the target is untouched", rows=e.rows,
                               expected=e.expected, hint=either(f"abandon_restore(..., run={run!r})",
                                                                f"restore --abandon --run {run}")
                               + ", then run the workers again") from None
    markers = sorted(m for m in target.markers(names.committing) if m.startswith(names.prefix))
    result.shards = names.done_shards(set(markers))[0]
    target.drop_markers(markers)
    target.clear_lease(names.committing)  # the run's record: the target is an ordinary collection
    progress.phase(RENAMING)
    result.notes.extend(target.publish(plan.spec, to_do))
    progress.finish()
    result.state, result.rows, result.seconds = "committed", rows, time.monotonic() - t0
    return result


def _markers_if_staged(target: StagingSink, staging: str) -> set[str] | None:
    """The markers of the run's staging collection, or None if there is none: also when another worker's commit
    renamed it between the look and the listing (seen: two workers finishing together, each with --commit)."""
    if not target.has_collection(staging):
        return None
    try:
        markers = target.markers(staging)
    except VecbackupError:  # a server: "collection not found"
        if target.has_collection(staging):
            raise
        return None
    return markers if target.has_collection(staging) else None  # Milvus Lite lists none for a missing collection


def abandon_restore(manifest: Manifest, sink: Sink, target_name: str, run: str) -> list[str]:
    """Drop what run ``run`` left on the target server (its staging collection, claimed or not, and its markers);
    returns the collections dropped. The target is never touched."""
    target = staging_sink(sink)
    names = run_names(target_name, run, manifest.backup_id)
    dropped = []
    for name in (names.staging, names.committing):
        if target.has_collection(name):
            target.drop_markers(sorted(m for m in target.markers(name) if m.startswith(names.prefix)))
            target.drop_collection(name)
            dropped.append(name)
    return dropped
