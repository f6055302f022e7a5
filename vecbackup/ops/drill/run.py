"""Run a drill: restore into a scratch collection, run every check, drop the scratch collection."""

from __future__ import annotations

import random
import secrets
import time

from vecbackup.engines.base import Engine, Inspector
from vecbackup.errors import RowCountMismatch, UsageError, VecbackupError
from vecbackup.format.lease import drill_scratch
from vecbackup.format.manifest import Manifest
from vecbackup.ops.drill.checks import (
    SampledRow,
    check_age,
    check_row_count,
    check_sample,
    check_search,
    sample_backup,
    search_field,
    timed,
)
from vecbackup.ops.drill.options import DrillOptions
from vecbackup.ops.drill.report import CHECKS, PASSED, Check, DrillReport, Values
from vecbackup.ops.drill.text import check_text_search, text_function
from vecbackup.ops.duplicates import expected_rows
from vecbackup.ops.leases import HeldLease, new_lease
from vecbackup.ops.leftovers import of_drills_of, reap
from vecbackup.ops.progress import Progress, with_phases
from vecbackup.ops.restore import Plan, RestoreOptions, plan_restore, restore_backup
from vecbackup.stores.base import BlobStore
from vecbackup.times import now_z
from vecbackup.words import plural

# -- the drill -------------------------------------------------------------------------------------


def run_drill(store: BlobStore, manifest: Manifest, target: Engine, *, source: Inspector | None = None,
              opts: DrillOptions | None = None, progress: Progress | None = None) -> DrillReport:
    """Run every check and return the report; never raises for a failed check (the report says it), only for
    an interrupt. The scratch collection is dropped before returning unless ``opts.keep``."""
    opts = opts or DrillOptions()
    progress = with_phases(progress)
    spec = manifest.collection
    seed = opts.seed if opts.seed is not None else secrets.randbits(32)
    scratch = drill_scratch(spec.name, secrets.token_hex(4))
    values = Values.for_store(store, report_values=opts.report_values)
    report = DrillReport(backup_id=manifest.backup_id, collection=spec.name, store=store.display,
                         target=target.display, source=source.display if source is not None else None,
                         scratch_collection=scratch, started_at=now_z(), backup_completed_at=manifest.completed_at,
                         seed=seed, values=values.mode, checks=[Check(name) for name in CHECKS])
    rng = random.Random(seed)
    restored = False
    restored_spec = spec  # what the restore created (without functions after --drop-functions)
    counted: int | None = None  # the rows a restore found in its copy when it stopped on their number
    expected = manifest.rows  # what the restored copy's count says when complete (keys held twice: ops/duplicates)
    if manifest.duplicate_keys is not None and manifest.duplicate_keys.keys:
        report.notes.append(f"the backup holds {manifest.duplicate_keys.summary()}; the sampled rows are compared "
                            "with their partition's copy")
    # planned first: an option the backup or the target cannot take (a key its index type does not take) is bad
    # usage, refused before anything is created (exit 2), not a failed check; what the target cannot hold fails
    # the restore check, saying why
    t_plan = time.monotonic()
    planned: Plan | Exception
    try:
        planned = plan_restore(manifest, target, RestoreOptions(
            target=scratch, index_params=opts.index_params, index_types=opts.index_types,
            index_fallback=opts.index_fallback, field_params=opts.field_params,
            collection_params=opts.collection_params, drop_functions=opts.drop_functions))
    except UsageError:
        raise
    except Exception as e:  # raised again by the restore check, which reports it
        planned = e
    plan_seconds = time.monotonic() - t_plan
    report.notes.extend(_clear_dead_drills(target, spec.name))
    # held from the scratch collection's creation until it is dropped: a drill that dies leaves a collection
    # whose lease says so, and `gc` on the engine (or the next drill of this collection) drops it
    lease = HeldLease(target, new_lease("drill", scratch, spec.name, manifest.backup_id))
    try:
        restore = report.check("restore")

        def do_restore(check: Check) -> None:
            nonlocal restored, counted, expected, restored_spec
            t0 = time.monotonic() - plan_seconds  # the plan is part of the recovery time
            try:
                if isinstance(planned, Exception):
                    raise planned
                plan = planned
                expected = expected_rows(manifest, plan.duplicates)
                restored_spec = plan.spec
                try:
                    result = restore_backup(store, manifest, target, plan, progress=progress, lease=lease)
                except RowCountMismatch as e:
                    counted, expected = e.rows, e.expected  # as the restore counted them
                    raise
                if plan.duplicates is not None and plan.duplicates.unrecorded:
                    expected = result.rows  # counted again partition by partition by the restore (ops/duplicates)
                target.wait_index(scratch, progress.phase)  # searchable, not just loaded: part of the recovery time
            finally:
                report.rto_seconds = time.monotonic() - t0
                check.details["rto_seconds"] = round(report.rto_seconds, 3)
            restored = True
            report.notes.extend(result.notes)
            check.status = PASSED
            check.message = (f"{plural(result.rows, 'row')} restored into {scratch!r}, loaded after "
                             f"{result.seconds:.1f}s")

        timed(restore, do_restore)
        # a restore that stopped on the copy's row count counted it; one that failed after the copy took its
        # name (Qdrant's final count) left it there to count
        reason = f"skipped: restore failed ({restore.message})"
        if counted is not None or restored or _has(target, scratch):
            known = counted
            timed(report.check("row_count"), lambda c: check_row_count(
                c, manifest, target.count(scratch) if known is None else known, source, opts, expected))
        else:
            report.check("row_count").message = reason
        if restored:
            sample: list[SampledRow] = []

            def do_sample(check: Check) -> None:
                chosen = search_field(spec)
                sample.extend(sample_backup(store, manifest, target, max(opts.sample, opts.queries), rng,
                                            chosen[0] if chosen else None))
                check_sample(check, sample[:opts.sample], manifest, target, scratch, values)

            progress.phase("checking sampled rows")
            timed(report.check("sample_rows"), do_sample)
            if opts.queries > 0:
                progress.phase("checking search recall")
                timed(report.check("search_recall"), lambda c: check_search(
                    c, sample[:opts.queries], store, manifest, target, scratch, source, opts, values))
            else:
                report.check("search_recall").message = "skipped: --queries 0"
            if opts.queries > 0:
                if text_function(restored_spec) is not None:
                    progress.phase("checking text search")
                timed(report.check("text_search"), lambda c: check_text_search(
                    c, sample[:opts.queries], spec, restored_spec, target, scratch, source, opts, rng, values))
            else:
                report.check("text_search").message = "skipped: --queries 0"
        else:
            for name in ("sample_rows", "search_recall", "text_search"):
                report.check(name).message = reason
        timed(report.check("backup_age"), lambda c: check_age(c, report, manifest, opts))
    finally:
        if opts.keep:
            report.notes.append(f"kept the scratch collection {scratch!r} (--keep)")
            if _has(target, scratch):
                cleared = lease.release()  # an ordinary collection now, the user's to drop
                if cleared is not None:
                    report.notes.append(cleared)
            else:
                lease.stop()
        else:
            lease.stop()
            if restored:
                progress.phase("dropping the scratch collection")
            report.scratch_dropped = _drop(target, scratch, report)
        if restored:  # (after a failed restore its progress is left as it stopped)
            progress.finish()
        report.finished_at = now_z()
    return report


def _clear_dead_drills(engine: Engine, collection: str) -> list[str]:
    """Drop the scratch collections of drills of ``collection`` that died (ops/leftovers.py); what was done."""
    try:
        return reap(engine, scope=of_drills_of(collection)).notes()
    except VecbackupError as e:  # the drill itself says what is wrong with the engine
        return [f"could not look for scratch collections of earlier drills: {e}"]


def _has(engine: Inspector, name: str) -> bool:
    try:
        return bool(engine.has_collection(name))
    except VecbackupError:
        return False


def _drop(engine: Inspector, name: str, report: DrillReport) -> bool:
    """Drop the scratch collection if it exists; True when it is gone."""
    try:
        if engine.has_collection(name):
            engine.drop_collection(name)
        return not engine.has_collection(name)
    except VecbackupError as e:
        report.notes.append(f"could not drop the scratch collection {name!r}: {e}")
        return False
